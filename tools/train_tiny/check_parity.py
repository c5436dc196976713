#!/usr/bin/env python3
"""Parity of the PyTorch model (train.py checkpoint) and the engine on its converted GGUF.

Runs `chunkwise run -m MODEL.gguf -f PROMPT --temp 0 -n N --json --logits-top K` and, for the same token ids
(the engine's prompt_tokens, BOS included, followed by the tokens it generated), the PyTorch forward pass in
fp32 on the CPU. For every generated step it compares the engine's top-K logits with PyTorch's logits at the
same ids, checks that PyTorch's argmax is the engine's greedy token, and that the two top-K id lists agree.
Exit code 0 when max |diff| <= --tol and the greedy tokens agree, else 1.

  python3 tools/train_tiny/check_parity.py --ckpt run/ckpt.pt --gguf model-f32.gguf \
      --bin build/release/apps/chunkwise/chunkwise --data eval.jsonl --index 0 -n 20
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train import load_checkpoint  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True, help="train.py checkpoint (ckpt.pt)")
    ap.add_argument("--gguf", required=True, help="the same weights converted (use --type f32 for a 1e-3 check)")
    ap.add_argument("--bin", default="build/release/apps/chunkwise/chunkwise")
    ap.add_argument("--prompt", help="prompt text")
    ap.add_argument("--data", help="gen-data JSON lines: the prompt of line --index (its prompt_tokens are checked too)")
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("-n", type=int, default=20, help="generated steps to compare")
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    want_tokens = None
    if args.data:
        with open(args.data) as f:
            d = json.loads(f.readlines()[args.index])
        prompt = d["text"] + "\nQuestion: " + d["question"] + "\nAnswer:"  # gen-data's prompt format
        want_tokens = d.get("prompt_tokens")
    elif args.prompt is not None:
        prompt = args.prompt
    else:
        sys.exit("give --prompt or --data")

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(prompt)
        prompt_file = f.name
    try:
        cmd = [args.bin, "run", "-m", args.gguf, "-f", prompt_file, "--temp", "0", "-n", str(args.n), "--json",
               "--logits-top", str(args.top), "--threads", str(args.threads), "--seed", "1"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(prompt_file)
    eng = json.loads(out)
    p_ids, steps = eng["prompt_tokens"], eng["steps"]
    if want_tokens is not None and want_tokens != p_ids:
        print(f"note: engine prompt_tokens differ from the data's prompt_tokens ({len(p_ids)} vs {len(want_tokens)})")

    model, _ = load_checkpoint(args.ckpt, "cpu")
    model.float().eval()
    ids = p_ids + [s["token"] for s in steps[:-1]]
    with torch.no_grad():
        logits = model(torch.tensor([ids]))[0].double()

    max_diff, greedy_ok, topk_ok = 0.0, 0, 0
    for s_i, s in enumerate(steps):
        row = logits[len(p_ids) - 1 + s_i]
        for tid, val in s["top"]:
            max_diff = max(max_diff, abs(float(row[tid]) - val))
        greedy_ok += int(int(row.argmax()) == s["token"])
        pt_top = [int(i) for i in torch.topk(row, len(s["top"])).indices]
        topk_ok += int(pt_top == [t for t, _ in s["top"]])
    n = len(steps)
    ok = max_diff <= args.tol and greedy_ok == n
    print(json.dumps({"prompt_tokens": len(p_ids), "steps": n, "top": args.top, "max_abs_diff": max_diff,
                      "greedy_agree": greedy_ok, "topk_order_agree": topk_ok,
                      "data_prompt_tokens_match": None if want_tokens is None else want_tokens == p_ids,
                      "tol": args.tol, "pass": ok}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
