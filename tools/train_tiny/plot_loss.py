#!/usr/bin/env python3
"""Loss curve of a train.py run as an SVG (no plotting package needed):
loss and answer loss (left axis) and eval exact match (right axis, 0..1) against the step.

  python3 plot_loss.py logs/r3/loss.csv -o logs/r3/loss.svg [--title TEXT]
"""
import argparse
import csv
import os


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--title", default="")
    a = ap.parse_args()
    rows = [r for r in csv.DictReader(open(a.csv)) if r["loss"]]
    evals = [r for r in csv.DictReader(open(a.csv)) if r["eval_exact"]]
    if not rows:
        raise SystemExit(f"{a.csv}: no loss rows")
    W, H, L, R, T, B = 760, 400, 60, 60, 40, 50
    max_step = max(int(r["step"]) for r in rows + evals)
    max_loss = max(max(float(r["loss"]), float(r["answer_loss"])) for r in rows)

    def x(step):
        return L + (W - L - R) * step / max_step

    def y_loss(v):
        return T + (H - T - B) * (1 - v / max_loss)

    def y_acc(v):
        return T + (H - T - B) * (1 - v)

    def line(points, colour):
        pts = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}"/>'

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="monospace" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="13">{a.title}</text>',
           f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>',
           f'<line x1="{W - R}" y1="{T}" x2="{W - R}" y2="{H - B}" stroke="black"/>']
    for i in range(6):
        v = max_loss * i / 5
        out.append(f'<text x="{L - 5}" y="{y_loss(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
        out.append(f'<text x="{W - R + 5}" y="{y_acc(i / 5) + 4:.1f}">{i / 5:.1f}</text>')
    for i in range(6):
        s = max_step * i / 5
        out.append(f'<text x="{x(s):.1f}" y="{H - B + 15}" text-anchor="middle">{int(s)}</text>')
    out.append(f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle">step</text>')
    out.append(line([(x(int(r["step"])), y_loss(float(r["loss"]))) for r in rows], "#1f77b4"))
    out.append(line([(x(int(r["step"])), y_loss(float(r["answer_loss"]))) for r in rows], "#ff7f0e"))
    if evals:
        out.append(line([(x(int(r["step"])), y_acc(float(r["eval_exact"]))) for r in evals], "#2ca02c"))
    for i, (name, colour) in enumerate((("loss (left)", "#1f77b4"), ("answer loss (left)", "#ff7f0e"),
                                        ("eval exact match (right)", "#2ca02c"))):
        out.append(f'<rect x="{L + 10}" y="{T + 8 + 16 * i}" width="12" height="3" fill="{colour}"/>')
        out.append(f'<text x="{L + 28}" y="{T + 13 + 16 * i}">{name}</text>')
    out.append("</svg>\n")
    tmp = a.output + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(out))
    os.replace(tmp, a.output)


if __name__ == "__main__":
    main()
