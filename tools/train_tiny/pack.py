#!/usr/bin/env python3
"""Pack `chunkwise gen-data --vocab` JSON lines into a compact token file for train.py (issue 14).
(`chunkwise gen-data --vocab V --format tok` writes the same format directly, uncompressed.)

Format (.tok.xz, xz-compressed): magic b"CWTOK1\\n", then per sample little-endian uint16 n_prompt,
uint16 n_answer, then n_prompt + n_answer uint16 token ids. The device machine takes at most 64 MiB per
call, and token ids packed this way compress to ~0.8 bytes a token (gzipped JSON: ~1.6).

  python3 pack.py train.jsonl [more.jsonl(.gz) ...] -o train.tok.xz
"""
import argparse
import array
import gzip
import json
import lzma
import os
import sys

MAGIC = b"CWTOK1\n"


def read_jsonl(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            d = json.loads(line)
            p, a = d.get("prompt_tokens"), d.get("answer_tokens")
            if p is None or a is None:
                raise SystemExit(f"{path}:{n}: no prompt_tokens/answer_tokens (run gen-data with --vocab)")
            yield p, a


def read_raw(path):
    """The bytes of a packed token file: .tok (as `chunkwise gen-data --format tok` writes it) or .tok.xz."""
    if path.endswith(".xz"):
        with lzma.open(path, "rb") as f:
            buf = f.read()
    else:
        with open(path, "rb") as f:
            buf = f.read()
    if not buf.startswith(MAGIC):
        raise SystemExit(f"{path}: not a packed token file (magic {MAGIC!r} missing)")
    if (len(buf) - len(MAGIC)) % 2:
        raise SystemExit(f"{path}: truncated (odd byte count)")
    return buf


def read_packed(path):
    """-> iterator of (prompt_tokens, answer_tokens) lists from a .tok or .tok.xz file."""
    buf = read_raw(path)
    if not buf.startswith(MAGIC):
        raise SystemExit(f"{path}: not a packed token file (magic {MAGIC!r} missing)")
    arr = array.array("H")
    body = buf[len(MAGIC):]
    if len(body) % 2:
        raise SystemExit(f"{path}: truncated (odd byte count)")
    arr.frombytes(body)
    if sys.byteorder != "little":
        arr.byteswap()
    i, n = 0, len(arr)
    while i < n:
        if i + 2 > n:
            raise SystemExit(f"{path}: truncated sample header at token {i}")
        n_p, n_a = arr[i], arr[i + 1]
        i += 2
        if i + n_p + n_a > n:
            raise SystemExit(f"{path}: truncated sample at token {i}")
        yield arr[i:i + n_p].tolist(), arr[i + n_p:i + n_p + n_a].tolist()
        i += n_p + n_a


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", help="gen-data JSON lines (.jsonl or .jsonl.gz)")
    ap.add_argument("-o", "--output", required=True, help="output .tok.xz")
    args = ap.parse_args()
    arr = array.array("H")
    count = 0
    for path in args.inputs:
        for p, a in read_jsonl(path):
            if len(p) > 65535 or len(a) > 65535 or max(p + a, default=0) > 65535:
                raise SystemExit(f"{path}: sample {count} does not fit uint16 (length or token id > 65535)")
            arr.append(len(p))
            arr.append(len(a))
            arr.extend(p)
            arr.extend(a)
            count += 1
    if sys.byteorder != "little":
        arr.byteswap()
    tmp = args.output + ".tmp"
    with lzma.open(tmp, "wb", preset=6) as f:
        f.write(MAGIC)
        f.write(arr.tobytes())
    os.replace(tmp, args.output)
    print(f"{count} samples, {len(arr) - 2 * count} tokens -> {args.output} ({os.path.getsize(args.output)} bytes)")


if __name__ == "__main__":
    main()
