#!/usr/bin/env python3
"""Compares top-5 logits of greedy runs: reference file vs llama.cpp on this machine vs chunkwise.

usage: compare_greedy.py MODEL.gguf REFERENCE.jsonl CHUNKWISE_BIN PROBE_BIN

For every reference prompt, runs `chunkwise run --temp 0 --json --logits-top 5` and the llama.cpp probe
(tools/peers/llama_greedy_probe.cpp) and reports, over the steps where all agree on the token so far:
the share of top-5 logits within 1e-3 and the max difference, for each pair.
"""
import json
import subprocess
import sys


def stats(pairs):
    n = len(pairs)
    within = sum(1 for d in pairs if d <= 1e-3)
    return f"{within}/{n} within 1e-3 ({100.0 * within / max(n, 1):.1f}%), max {max(pairs, default=0):.5f}"


def main():
    model, ref_path, cw, probe = sys.argv[1:5]
    refs = [json.loads(line) for line in open(ref_path) if line.strip()]
    d_ref_llama, d_ref_cw, d_cw_llama = [], [], []
    for r in refs:
        n = len(r["steps"])
        ours = json.loads(subprocess.run(
            [cw, "run", "-m", model, "-p", r["prompt"], "--temp", "0", "-n", str(n), "--json", "--logits-top", "5",
             "--threads", "2"], capture_output=True, text=True, check=True).stdout)
        if ours["prompt_tokens"] != r["prompt_tokens"]:
            sys.exit(f"prompt tokens differ for {r['prompt']!r}")
        lines = subprocess.run([probe, model, str(n)] + [str(t) for t in r["prompt_tokens"]],
                               capture_output=True, text=True, check=True).stdout.split("\n")
        for i, st in enumerate(r["steps"]):
            parts = lines[i].split()
            lc = {int(p.split(":")[0]): float(p.split(":")[1]) for p in parts[1:]}
            cw_top = dict((int(t), float(l)) for t, l in ours["steps"][i]["top"])
            if not (int(parts[0]) == st["token"] == ours["steps"][i]["token"]):
                break
            for tid, logit in st["top"]:
                if tid in lc:
                    d_ref_llama.append(abs(lc[tid] - logit))
                if tid in cw_top:
                    d_ref_cw.append(abs(cw_top[tid] - logit))
                if tid in lc and tid in cw_top:
                    d_cw_llama.append(abs(cw_top[tid] - lc[tid]))
    print(f"reference vs llama.cpp here: {stats(d_ref_llama)}")
    print(f"reference vs chunkwise:      {stats(d_ref_cw)}")
    print(f"chunkwise vs llama.cpp here: {stats(d_cw_llama)}")


if __name__ == "__main__":
    main()
