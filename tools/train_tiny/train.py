#!/usr/bin/env python3
"""Train a tiny Llama-architecture model on `chunkwise gen-data` JSON lines (issue 14 step 3).

The model is exactly what the engine runs for `general.architecture = llama` (src/model/forward.cc):
  x = token_embd[ids]
  per layer: x += Wo . attn(rope(Wq . rms(x)), rope(Wk . rms(x)), Wv . rms(x))
             x += Wdown . (silu(Wgate . rms(x)) * Wup . rms(x))
  logits = output . rms(x)            (output = token_embd when tied)
with RoPE over ADJACENT pairs (x[2i], x[2i+1]) -- llama.cpp's "normal" style, the engine's llama style
(src/kernels/cpu/ops_ref.cc rope_apply) -- inv_freq_i = base^(-2i/head_dim) over the whole head, and query
head h reading KV head h // (n_head / n_head_kv). The weights are exported under llama.cpp's GGUF tensor
names in PyTorch's [n_out, n_in] layout, so `chunkwise convert` needs no permutation.

See tools/train_tiny/README.md for commands and docs/design/train_tiny.md for the design.
"""
import argparse
import csv
import json
import math
import os
import random
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------------------------- model
class Config:
    KEYS = ("n_vocab", "n_embd", "n_layer", "n_head", "n_head_kv", "n_ff", "n_ctx", "rope_freq_base",
            "rms_eps", "tied")

    def __init__(self, **kw):
        self.n_vocab = int(kw["n_vocab"])
        self.n_embd = int(kw["n_embd"])
        self.n_layer = int(kw["n_layer"])
        self.n_head = int(kw["n_head"])
        self.n_head_kv = int(kw["n_head_kv"])
        self.n_ff = int(kw["n_ff"])
        self.n_ctx = int(kw["n_ctx"])
        self.rope_freq_base = float(kw.get("rope_freq_base", 10000.0))
        self.rms_eps = float(kw.get("rms_eps", 1e-5))
        self.tied = bool(kw.get("tied", False))
        if self.n_embd % self.n_head or self.n_head % self.n_head_kv or (self.n_embd // self.n_head) % 2:
            raise ValueError("n_embd must split into n_head even-sized heads; n_head a multiple of n_head_kv")

    @property
    def head_dim(self):
        return self.n_embd // self.n_head

    def to_dict(self):
        return {k: getattr(self, k) for k in self.KEYS}

    def engine_config(self, name=None):
        """config.json for `chunkwise convert` (src/model/convert.h parse_convert_config: these keys exactly)."""
        c = {"arch": "llama", "n_embd": self.n_embd, "n_layer": self.n_layer, "n_head": self.n_head,
             "n_head_kv": self.n_head_kv, "n_ff": self.n_ff, "n_ctx": self.n_ctx,
             "rope_freq_base": self.rope_freq_base, "rms_eps": self.rms_eps}
        if name:
            c["name"] = name
        return c


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n))

    def forward(self, x):
        xf = x.float()  # fp32 statistics, as the engine (fp32 squares, summed)
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(x.dtype)


def rope_tables(n_pos, head_dim, base, device):
    """cos/sin [n_pos, head_dim/2] computed in float64 then rounded to fp32, as kernels::rope_angles."""
    i = torch.arange(head_dim // 2, dtype=torch.float64)
    inv_freq = torch.pow(torch.tensor(base, dtype=torch.float64), -2.0 * i / head_dim)
    theta = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return torch.cos(theta).float().to(device), torch.sin(theta).float().to(device)


def apply_rope(x, cos, sin):
    """x [B, H, T, D]; rotates adjacent pairs (x[2i], x[2i+1]) by theta_i (llama.cpp 'normal' rope)."""
    xf = x.float()
    x0, x1 = xf[..., 0::2], xf[..., 1::2]
    c, s = cos[None, None], sin[None, None]
    y = torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)
    return y.to(x.dtype)


def causal_attention(q, k, v):
    """q [B,H,T,D], k/v [B,H,T,D] (KV heads already expanded)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.shape[-2]
    att = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    att = att.masked_fill(~mask, float("-inf"))
    return torch.softmax(att.float(), dim=-1).to(q.dtype) @ v


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        D = c.head_dim
        self.attn_norm = RMSNorm(c.n_embd, c.rms_eps)
        self.wq = nn.Linear(c.n_embd, c.n_head * D, bias=False)
        self.wk = nn.Linear(c.n_embd, c.n_head_kv * D, bias=False)
        self.wv = nn.Linear(c.n_embd, c.n_head_kv * D, bias=False)
        self.wo = nn.Linear(c.n_head * D, c.n_embd, bias=False)
        self.ffn_norm = RMSNorm(c.n_embd, c.rms_eps)
        self.w_gate = nn.Linear(c.n_embd, c.n_ff, bias=False)
        self.w_up = nn.Linear(c.n_embd, c.n_ff, bias=False)
        self.w_down = nn.Linear(c.n_ff, c.n_embd, bias=False)

    def forward(self, x, cos, sin):
        c = self.c
        B, T, _ = x.shape
        D, H, HKV = c.head_dim, c.n_head, c.n_head_kv
        h = self.attn_norm(x)
        q = self.wq(h).view(B, T, H, D).transpose(1, 2)
        k = self.wk(h).view(B, T, HKV, D).transpose(1, 2)
        v = self.wv(h).view(B, T, HKV, D).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if HKV != H:  # query head h reads KV head h // group (forward.cc: heads g*group .. (g+1)*group - 1)
            k = k.repeat_interleave(H // HKV, dim=1)
            v = v.repeat_interleave(H // HKV, dim=1)
        a = causal_attention(q, k, v).transpose(1, 2).reshape(B, T, H * D)
        x = x + self.wo(a)
        h = self.ffn_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.tok_embd = nn.Embedding(c.n_vocab, c.n_embd)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.output_norm = RMSNorm(c.n_embd, c.rms_eps)
        self.output = None if c.tied else nn.Linear(c.n_embd, c.n_vocab, bias=False)
        self._rope = None

    def init_weights(self, gen):
        std = 0.02
        for name, p in self.named_parameters():
            if p.dim() == 1:
                continue  # norms stay 1
            s = std / math.sqrt(2 * self.c.n_layer) if name.endswith(("wo.weight", "w_down.weight")) else std
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=gen) * s)

    def rope(self, T, device):
        if self._rope is None or self._rope[0].shape[0] < T or self._rope[0].device != device:
            self._rope = rope_tables(max(T, 16), self.c.head_dim, self.c.rope_freq_base, device)
        return self._rope[0][:T], self._rope[1][:T]

    def forward(self, ids):
        T = ids.shape[1]
        cos, sin = self.rope(T, ids.device)
        x = self.tok_embd(ids)
        for b in self.blocks:
            x = b(x, cos, sin)
        x = self.output_norm(x)
        w = self.tok_embd.weight if self.output is None else self.output.weight
        return F.linear(x, w)

    def gguf_tensors(self):
        """name -> fp32 tensor, llama.cpp GGUF names, PyTorch [n_out, n_in] layout."""
        t = {"token_embd.weight": self.tok_embd.weight, "output_norm.weight": self.output_norm.weight}
        if self.output is not None:
            t["output.weight"] = self.output.weight
        for i, b in enumerate(self.blocks):
            p = f"blk.{i}."
            t[p + "attn_norm.weight"] = b.attn_norm.weight
            t[p + "attn_q.weight"] = b.wq.weight
            t[p + "attn_k.weight"] = b.wk.weight
            t[p + "attn_v.weight"] = b.wv.weight
            t[p + "attn_output.weight"] = b.wo.weight
            t[p + "ffn_norm.weight"] = b.ffn_norm.weight
            t[p + "ffn_gate.weight"] = b.w_gate.weight
            t[p + "ffn_up.weight"] = b.w_up.weight
            t[p + "ffn_down.weight"] = b.w_down.weight
        return {k: v.detach().float().cpu().contiguous() for k, v in t.items()}


# ---------------------------------------------------------------------------------------------- export
def write_safetensors(path, tensors, metadata=None):
    """Minimal safetensors writer (F32, little-endian): 8-byte header length, JSON header, data."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        data = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def export(model, path, config_path, name=None):
    write_safetensors(path, model.gguf_tensors(), {"format": "pt", "source": "tools/train_tiny/train.py"})
    with open(config_path, "w") as f:
        json.dump(model.c.engine_config(name), f, indent=1)
        f.write("\n")


def read_safetensors(path):
    """F32 safetensors (as write_safetensors writes) -> {name: tensor}."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        if h["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} is {h['dtype']}; only F32 is read")
        b, e = h["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32).reshape(h["shape"])
    return out


def load_checkpoint(path, device="cpu"):
    """ckpt.pt, or an exported .safetensors with its config.json beside it (the GPU machine returns only
    the export, split into parts: `cat model.safetensors.part* > model.safetensors`)."""
    if path.endswith(".safetensors"):
        with open(os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")) as f:
            ec = json.load(f)
        t = read_safetensors(path)
        c = Config(n_vocab=t["token_embd.weight"].shape[0], tied="output.weight" not in t,
                   **{k: ec[k] for k in ("n_embd", "n_layer", "n_head", "n_head_kv", "n_ff", "n_ctx",
                                         "rope_freq_base", "rms_eps")})
        model = Llama(c)
        own = model.gguf_tensors()
        if set(own) != set(t):
            raise SystemExit(f"{path}: tensor names differ from the config's model")
        with torch.no_grad():
            model.tok_embd.weight.copy_(t["token_embd.weight"])
            model.output_norm.weight.copy_(t["output_norm.weight"])
            if model.output is not None:
                model.output.weight.copy_(t["output.weight"])
            for i, b in enumerate(model.blocks):
                for mod, key in ((b.attn_norm, "attn_norm"), (b.wq, "attn_q"), (b.wk, "attn_k"), (b.wv, "attn_v"),
                                 (b.wo, "attn_output"), (b.ffn_norm, "ffn_norm"), (b.w_gate, "ffn_gate"),
                                 (b.w_up, "ffn_up"), (b.w_down, "ffn_down")):
                    mod.weight.copy_(t[f"blk.{i}.{key}.weight"])
        return model.to(device), {"config": c.to_dict()}
    ck = torch.load(path, map_location="cpu")
    model = Llama(Config(**ck["config"]))
    model.load_state_dict(ck["model"])
    return model.to(device), ck


# ------------------------------------------------------------------------------------------------ data
def load_samples(path, n_ctx):
    """-> list of (tokens, n_prompt), tokens a numpy uint16 view, from `gen-data --format tok` files (.tok, or
    xz-compressed .tok.xz, as pack.py writes them) or gen-data JSON lines (.jsonl, .jsonl.gz). Samples longer
    than n_ctx are dropped (counted). Views into one flat array keep 10^8 tokens at 2 bytes each."""
    import numpy as np
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import pack  # noqa: E402  (tools/train_tiny/pack.py)
    out, dropped = [], 0
    if path.endswith((".tok", ".tok.xz")):
        raw = pack.read_raw(path)
        arr = np.frombuffer(raw, dtype="<u2", offset=len(pack.MAGIC))
        i, n = 0, len(arr)
        hdr = arr  # header words are read one by one below
        while i < n:
            if i + 2 > n:
                raise SystemExit(f"{path}: truncated sample header at token {i}")
            n_p, n_a = int(hdr[i]), int(hdr[i + 1])
            i += 2
            if i + n_p + n_a > n:
                raise SystemExit(f"{path}: truncated sample at token {i}")
            if n_p + n_a > n_ctx:
                dropped += 1
            else:
                out.append((arr[i:i + n_p + n_a], n_p))
            i += n_p + n_a
        return out, dropped
    for p, a in pack.read_jsonl(path):
        if len(p) + len(a) > n_ctx:
            dropped += 1
            continue
        out.append((np.array(p + a, dtype=np.uint16), len(p)))
    return out, dropped


def parse_curriculum(spec, n_ctx):
    """'512:300,2048:700' -> [(max_len, steps), ...]; a stage trains on the samples of length <= max_len."""
    stages = []
    for part in spec.split(","):
        L, s = part.split(":")
        stages.append((min(int(L), n_ctx), int(s)))
    return stages


def make_batch(samples, prompt_weight, device, pad_to=0):
    """Right-padded inputs/targets/weights: target j (predicting token j+1) weighs 1 on answer tokens,
    prompt_weight on prompt tokens, 0 on padding. pad_to: at least this many positions."""
    T = max(max(len(t) for t, _ in samples) - 1, pad_to)
    ids = torch.zeros(len(samples), T, dtype=torch.long)
    tgt = torch.zeros(len(samples), T, dtype=torch.long)
    w = torch.zeros(len(samples), T)
    ans = torch.zeros(len(samples), T, dtype=torch.bool)
    for r, (toks, n_p) in enumerate(samples):
        n = len(toks) - 1
        t = torch.from_numpy(toks.astype("int64"))
        ids[r, :n] = t[:-1]
        tgt[r, :n] = t[1:]
        w[r, :n] = prompt_weight
        w[r, n_p - 1:n] = 1.0  # targets n_p-1 .. n-1 are the answer tokens
        ans[r, n_p - 1:n] = True
    return ids.to(device), tgt.to(device), w.to(device), ans.to(device)


@torch.no_grad()
def evaluate(model, samples, batch_tokens, device, autocast):
    """Teacher-forced answer exact match (= greedy exact match of the answer tokens) and answer loss."""
    model.eval()
    n_ok = n = 0
    loss_sum = tok = 0.0
    samples = sorted(samples, key=lambda s: len(s[0]))
    i = 0
    while i < len(samples):
        L = len(samples[i][0])
        bs = max(1, batch_tokens // max(L, 1))
        chunk = samples[i:i + bs]
        i += bs
        ids, tgt, _, ans = make_batch(chunk, 0.0, device)
        with autocast():
            logits = model(ids)
        logits = logits.float()
        ok = (logits.argmax(-1) == tgt) | ~ans
        n_ok += int(ok.all(dim=1).sum())
        n += len(chunk)
        l = F.cross_entropy(logits.transpose(1, 2), tgt, reduction="none")
        loss_sum += float((l * ans).sum())
        tok += float(ans.sum())
    model.train()
    return n_ok / max(n, 1), loss_sum / max(tok, 1)


# ----------------------------------------------------------------------------------------------- train
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", default=[], help="gen-data JSON lines (repeatable)")
    ap.add_argument("--eval-data", help="held-out JSON lines: answer exact match every --eval-every steps")
    ap.add_argument("--vocab-size", type=int, help="n_vocab: the vocabulary GGUF's size (train-tokenizer --vocab-size)")
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--n-layer", type=int, default=6)
    ap.add_argument("--n-head", type=int, default=8)
    ap.add_argument("--n-head-kv", type=int, default=2)
    ap.add_argument("--n-ff", type=int, default=0, help="default: 8/3 n_embd rounded up to 64")
    ap.add_argument("--n-ctx", type=int, default=2048, help="trained window W (= the GGUF's n_ctx)")
    ap.add_argument("--rope-base", type=float, default=10000.0)
    ap.add_argument("--rms-eps", type=float, default=1e-5)
    ap.add_argument("--tied", action="store_true", help="output = token_embd (no output.weight)")
    ap.add_argument("--curriculum", default="", help="MAXLEN:STEPS,... (default: W for --steps steps)")
    ap.add_argument("--steps", type=int, default=1000, help="total steps when --curriculum is not given")
    ap.add_argument("--max-seconds", type=float, default=0,
                    help="time budget: stages and the lr schedule advance by max(step/total, elapsed/this); elapsed counts "
                         "from the 5th step, after compilation")
    ap.add_argument("--bucket", type=int, default=512, help="batches pad to a multiple of this (length buckets)")
    ap.add_argument("--batch-tokens", type=int, default=32768, help="tokens per step (batch = this / stage length)")
    ap.add_argument("--prompt-weight", type=float, default=0.1, help="loss weight of prompt tokens (answer: 1)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-every", type=int, default=0)
    ap.add_argument("--out-dir", default="run", help="log.txt, loss.csv, ckpt.pt go here")
    ap.add_argument("--load", help="start from a checkpoint (its config wins over the shape flags)")
    ap.add_argument("--export", help="write the weights here (safetensors, GGUF names) after training")
    ap.add_argument("--export-config", help="config.json for chunkwise convert (default: beside --export)")
    ap.add_argument("--name", help="general.name in config.json")
    args = ap.parse_args(argv)

    os.makedirs(args.out_dir, exist_ok=True)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(args.device == "cpu", warn_only=True)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    def autocast():
        if cuda:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    log_f = open(os.path.join(args.out_dir, "log.txt"), "a")

    def log(msg):
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        log_f.write(line + "\n")
        log_f.flush()

    log("args " + json.dumps(vars(args), sort_keys=True))

    samples, dropped = [], 0
    for p in args.data:
        s, d = load_samples(p, args.n_ctx + 1)  # n_ctx inputs predict n_ctx targets
        samples += s
        dropped += d
    eval_samples = load_samples(args.eval_data, args.n_ctx + 1)[0] if args.eval_data else []

    if args.load:
        model, ck = load_checkpoint(args.load)
        cfg = model.c
    else:
        if not args.vocab_size:
            raise SystemExit("--vocab-size is required (the vocabulary GGUF's token count, e.g. 2048)")
        n_vocab = args.vocab_size
        n_ff = args.n_ff or 64 * math.ceil(8 * args.n_embd / 3 / 64)
        cfg = Config(n_vocab=n_vocab, n_embd=args.n_embd, n_layer=args.n_layer, n_head=args.n_head,
                     n_head_kv=args.n_head_kv, n_ff=n_ff, n_ctx=args.n_ctx, rope_freq_base=args.rope_base,
                     rms_eps=args.rms_eps, tied=args.tied)
        model = Llama(cfg)
        model.init_weights(torch.Generator().manual_seed(args.seed))
    model.to(device)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model {json.dumps(cfg.to_dict())} params {n_params} ({n_params / 1e6:.2f}M) device {device}")
    log(f"data {len(samples)} samples ({dropped} longer than n_ctx+1 dropped), eval {len(eval_samples)}")

    stages = parse_curriculum(args.curriculum, cfg.n_ctx) if args.curriculum else [(cfg.n_ctx, args.steps)]
    total = sum(s for _, s in stages)
    if total > 0 and not samples:
        raise SystemExit("no training samples (--data)")
    fwd = torch.compile(model) if args.compile and hasattr(torch, "compile") else model

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, **({"fused": True} if cuda else {}))

    csv_path = os.path.join(args.out_dir, "loss.csv")
    new_csv = not os.path.exists(csv_path)
    csv_f = open(csv_path, "a", newline="")
    cw = csv.writer(csv_f)
    if new_csv:
        cw.writerow(["step", "stage_len", "batch", "lr", "loss", "answer_loss", "tokens", "elapsed_s",
                     "eval_exact", "eval_answer_loss"])

    rng = random.Random(args.seed)
    # Progress p in [0, 1] drives the curriculum stage and the learning rate: p = step / total, or, with
    # --max-seconds, the larger of that and elapsed / max_seconds, so a time budget still runs every stage
    # (shortened in proportion) and ends on the decayed learning rate.
    bounds, acc = [], 0
    for max_len, n_steps in stages:
        acc += max(0, n_steps)
        bounds.append(acc / max(total, 1))

    def stage_at(p):
        for i, b in enumerate(bounds):
            if p < b:
                return i
        return len(stages) - 1

    def lr_p(p, step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))

    # Length buckets: a batch holds samples of one bucket (padded length a multiple of --bucket), and
    # batch size = --batch-tokens / padded length, so steps see about the same tokens and the compiled
    # model sees few shapes.
    def bucket_of(n):
        return min(max(args.bucket, -(-(n - 1) // args.bucket) * args.bucket), cfg.n_ctx)

    step, tokens, t0 = 0, 0, time.time()
    acc_loss = acc_ans = acc_n = 0.0
    cur_stage, pools = -1, None
    compiled_ok = fwd is model
    t_budget = None  # the time budget starts after the first steps (torch.compile's compiles happen there)
    while total > 0:
        p = step / total
        if args.max_seconds > 0 and t_budget is not None:
            p = max(p, (time.time() - t_budget) / args.max_seconds)
        if p >= 1.0:
            break
        si = stage_at(p)
        if si != cur_stage:
            cur_stage = si
            max_len = stages[si][0]
            pools = {}
            for smp in samples:
                if len(smp[0]) <= max_len + 1:
                    pools.setdefault(bucket_of(len(smp[0])), []).append(smp)
            if not pools:
                raise SystemExit(f"curriculum stage {max_len}: no sample of length <= {max_len + 1}")
            keys = sorted(pools)
            weights = [len(pools[k]) for k in keys]
            orders = {k: [list(range(len(pools[k]))), len(pools[k])] for k in keys}
            log(f"stage max_len {max_len}: {sum(weights)} samples in buckets "
                + ", ".join(f"{k}:{len(pools[k])}" for k in keys) + f" at progress {p:.3f} (step {step})")
        T = rng.choices(keys, weights)[0]
        bs = max(1, args.batch_tokens // T)
        order = orders[T]
        batch = []
        for _ in range(bs):
            if order[1] >= len(order[0]):
                rng.shuffle(order[0])
                order[1] = 0
            batch.append(pools[T][order[0][order[1]]])
            order[1] += 1
        ids, tgt, w, ans = make_batch(batch, args.prompt_weight, device, pad_to=T)
        lr = lr_p(p, step)
        for g in opt.param_groups:
            g["lr"] = lr
        try:
            with autocast():
                logits = fwd(ids)
            l = F.cross_entropy(logits.float().transpose(1, 2), tgt, reduction="none")
            loss = (l * w).sum() / w.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
        except Exception as e:  # torch.compile trouble on the first steps: fall back to eager, once
            if compiled_ok or step > 3:
                raise
            log(f"torch.compile failed ({type(e).__name__}: {str(e)[:200]}); continuing eager")
            fwd, compiled_ok = model, True
            opt.zero_grad(set_to_none=True)
            continue
        if args.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        step += 1
        if step == 4:
            t_budget = time.time()
            log(f"first 4 steps (compile, warm-up) took {t_budget - t0:.1f}s; the time budget starts now")
        tokens += int((w > 0).sum())
        acc_loss += float(loss)
        acc_ans += float((l.detach() * ans).sum() / ans.sum().clamp(min=1))
        acc_n += 1
        ev = (None, None)
        if eval_samples and args.eval_every and step % args.eval_every == 0:
            ev = evaluate(model, eval_samples, args.batch_tokens, device, autocast)
        if step % args.log_every == 0 or ev[0] is not None:
            el = time.time() - t0
            msg = (f"step {step} p {p:.3f} len {stages[cur_stage][0]} T {T} bs {bs} lr {lr:.2e} "
                   f"loss {acc_loss / acc_n:.4f} answer_loss {acc_ans / acc_n:.4f} tok {tokens} "
                   f"{el:.1f}s {tokens / max(el, 1e-9):.0f} tok/s")
            if ev[0] is not None:
                msg += f" eval_exact {ev[0]:.4f} eval_answer_loss {ev[1]:.4f}"
            log(msg)
            cw.writerow([step, stages[cur_stage][0], bs, f"{lr:.6g}", f"{acc_loss / acc_n:.6f}",
                         f"{acc_ans / acc_n:.6f}", tokens, f"{el:.2f}",
                         "" if ev[0] is None else f"{ev[0]:.6f}", "" if ev[1] is None else f"{ev[1]:.6f}"])
            csv_f.flush()
            acc_loss = acc_ans = acc_n = 0.0
    if total > 0 and eval_samples:
        ev = evaluate(model, eval_samples, args.batch_tokens, device, autocast)
        el = time.time() - t0
        log(f"final step {step} {el:.1f}s eval_exact {ev[0]:.4f} eval_answer_loss {ev[1]:.4f}")
        cw.writerow([step, stages[cur_stage][0], "", "", "", "", tokens, f"{el:.2f}", f"{ev[0]:.6f}", f"{ev[1]:.6f}"])
        csv_f.flush()

    if total > 0:
        torch.save({"config": cfg.to_dict(), "model": model.state_dict(), "args": vars(args), "step": step},
                   os.path.join(args.out_dir, "ckpt.pt"))
        log(f"saved {os.path.join(args.out_dir, 'ckpt.pt')} after {step} steps, {time.time() - t0:.1f}s")
    if args.export:
        cfg_path = args.export_config or os.path.join(os.path.dirname(os.path.abspath(args.export)), "config.json")
        export(model.cpu(), args.export, cfg_path, args.name)
        log(f"exported {args.export} + {cfg_path}")
    log_f.close()
    csv_f.close()


if __name__ == "__main__":
    main()
