#!/usr/bin/env python3
"""The model card's evaluation tables (models/README.md) as Markdown, from the JSON that
tools/train_tiny/eval_card.sh writes (default docs/needle). Prints to stdout; nothing is edited in place.

usage: python3 tools/train_tiny/card_tables.py [DIR]
"""
import json
import os
import sys


def load(d, name):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def pct(x):
    v = 100.0 * x
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:.1f}"


def grid(doc, policy, title):
    cells = [c for c in doc["cells"] if c["policy"] == policy]
    lengths = sorted({c["length"] for c in cells})
    depths = sorted({c["depth"] for c in cells})
    trials = cells[0]["trials"]
    out = [f"**{title}** ({trials} haystacks a cell; accuracy %; columns: document tokens)", "",
           "| depth | " + " | ".join(f"{n:,}" for n in lengths) + " |",
           "|---" * (len(lengths) + 1) + "|"]
    by = {(c["length"], c["depth"]): c for c in cells}
    for d in depths:
        out.append(f"| {d:g} | " + " | ".join(pct(by[(n, d)]["accuracy"]) for n in lengths) + " |")
    correct = sum(c["correct"] for c in cells)
    total = sum(c["trials"] for c in cells)
    worst = min(cells, key=lambda c: c["accuracy"])
    out += ["", f"All cells: {correct:,} / {total:,} ({100.0 * correct / total:.2f}%); lowest cell "
            f"{pct(worst['accuracy'])}% (length {worst['length']:,}, depth {worst['depth']:g})."]
    return "\n".join(out)


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../docs/needle")
    parts = []
    pw = load(d, "passkey-window.json")
    if pw:
        parts.append(grid(pw, "full", "Pass key within the window"))
    mw = load(d, "multi4-window.json")
    if mw:
        parts.append(grid(mw, "full", "Four needles, one asked (multi) within the window"))
    rows, trials = [], 0
    for r, label in (("kv", "kv (4 facts, near-miss distractors)"), ("extract", "extract (Who / What / Where)"),
                     ("quote", "quote (paraphrased questions, 3..8 one-anchor distractors)")):
        j = load(d, f"{r}-1w.json")
        if not j:
            continue
        by = {c["depth"]: c for c in j["cells"]}
        trials = j["cells"][0]["trials"]
        correct = sum(c["correct"] for c in j["cells"])
        total = sum(c["trials"] for c in j["cells"])
        rows.append(f"| {label} | " + " | ".join(pct(by[x]["accuracy"]) for x in sorted(by)) +
                    f" | {100.0 * correct / total:.1f} |")
    if rows:
        parts.append("**The other recipes at the full window** (1,984 document tokens, "
                     f"{trials} haystacks a cell)\n\n| recipe | depth 0 | depth 0.5 | depth 1 | all |\n"
                     "|---|---|---|---|---|\n" + "\n".join(rows))
    pb = load(d, "passkey-beyond.json")
    if pb:
        for p in pb["policies"]:
            parts.append(grid(pb, p["policy"], f"Pass key beyond the window (2x, 4x, 8x W)** — **`{p['policy']}`"))
    # Issue 16 (tools/train_tiny/eval_beyond.sh): chunk-selective attention, sink_window beside it, compress.
    for name, title in (("chunk-select-8w.json", "Pass key at 8x W"), ("chunk-select-32w.json", "Pass key at 32x W"),
                        ("sink-window-8w-32w.json", "Pass key at 8x and 32x W"),
                        ("compress-window.json", "Pass key within the window, keeping 12% of the prompt's KV"),
                        ("retain-8w.json", "Pass key at 8x W, reading chunk by chunk in 800 slots of KV"),
                        ("retain-32w.json", "Pass key at 32x W, the same"),
                        ("retain-128w.json", "Pass key at 128x W (262,080 tokens), the same"),
                        ("retain-512w.json", "Pass key at 512x W (1,048,512 tokens), the same")):
        j = load(d, name)
        if j:
            for p in j["policies"]:
                parts.append(grid(j, p["policy"], f"{title}** — **`{p['policy']}`"))
    for name, title in (("ask-passkey-retrieval.json", "pass key"),):
        r, a = load(d, name), load(d, name.replace("retrieval", "attention"))
        if r and a:
            t = [f"**`ask` retrieval vs attention ({title})** (haystacks a cell: {r['cells'][0]['trials']}; "
                 "accuracy %; s: wall seconds a question with two questions at a time, one thread each)", "", "| length | depth | retrieval | s | attention | s |",
                 "|---|---|---|---|---|---|"]
            for cr, ca in zip(r["cells"], a["cells"]):
                t.append(f"| {cr['length']:,} | {cr['depth']:g} | {pct(cr['accuracy'])} | {2 * cr['seconds'] / cr['trials']:.2f} | "
                         f"{pct(ca['accuracy'])} | {2 * ca['seconds'] / ca['trials']:.2f} |")
            parts.append("\n".join(t))
    rows = []
    for name, label in (("eval-ask-chunking_eval.json", "this model through `ask` (quoting, the default)"),
                        ("eval-ask-chunking_eval-free.json", "this model through `ask --free-answer`")):
        j = load(d, name)
        if j:
            rows.append((label, j))
    if rows:
        t = ["**Real documents** (`eval ask` on the %d questions of `../shared/data/chunking_eval`)" % rows[0][1]["questions"],
             "", "| answerer | inside a reference passage | a span of its chunks | mean answer length (chars) |",
             "|---|---|---|---|"]
        for label, j in rows:
            t.append(f"| {label} | {100 * j['model_inside']:.1f}% | {100 * j['model_in_sources']:.1f}% | "
                     f"{j['model_mean_chars']:.1f} |")
        j = rows[0][1]
        t.append(f"| no-model baseline: best sentence of the top BM25 chunk | {100 * j['baseline_inside']:.1f}% | 100% | "
                 f"{j['baseline_mean_chars']:.1f} |")
        parts.append("\n".join(t))
    print("\n\n".join(parts))


if __name__ == "__main__":
    main()
