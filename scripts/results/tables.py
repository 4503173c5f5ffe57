#!/usr/bin/env python3
"""Tables and SVG plots for docs/results.md from the runs of fashion_mnist.sh and jpeg.sh.

    python3 scripts/results/tables.py OUT [--svg-dir DIR] [--ble repo/targets/data/ble.json]

Reads OUT/cuts.txt, OUT/full.json, OUT/cut<k>.{progressive,only<s>,full-sliced}.json and
OUT/jpeg/*.json; prints Markdown tables on stdout and writes two SVG plots:
* accuracy vs bytes sent per image: progressive slicing at each cut, baseline JPEG (whole
  files and without headers), progressive JPEG cut after whole scans;
* accuracy vs end-to-end deadline over BLE at fixed bandwidths, with the link model of
  targets/data/ble.json (set-up latency + payload * (1 + overhead) / bandwidth) and the device
  and cloud compute times of `clio cuts` (GAP8, cloud GPU). A frame whose smallest option does
  not arrive in time counts as wrong. JPEG encoding on the device is taken as free, which
  favours JPEG.
Standard library only.
"""
import argparse
import glob
import json
import os
import re
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def cuts_table(out):
    """k -> (channels, h, w, device ms, cloud ms) from `clio cuts`."""
    rows = {}
    for line in open(os.path.join(out, "cuts.txt")):
        f = line.split()
        if len(f) > 7 and f[0].isdigit() and re.match(r"^\d+(x\d+)+$", f[2]):
            dims = [int(d) for d in f[2].split("x")]
            ch, h, w = (dims + [1, 1])[1:4] if len(dims) >= 2 else (dims[0], 1, 1)
            rows[int(f[0])] = (ch, h, w, float(f[5]), float(f[7]))
    return rows


def head_accuracy(entries, size):
    for e in entries:
        if e["size"] == size:
            return e["accuracy"]
    return None


def slicing_results(out):
    """k -> list of dict(size, bytes, progressive, separate, sliced_full)."""
    cuts = cuts_table(out)
    full = load(os.path.join(out, "full.json"))["accuracy"][0]["accuracy"]
    res = {}
    for p in sorted(glob.glob(os.path.join(out, "cut*.progressive.json"))):
        k = int(re.search(r"cut(\d+)\.progressive", p).group(1))
        prog = load(p)["accuracy"]
        sliced = os.path.join(out, f"cut{k}.full-sliced.json")
        sliced = load(sliced) if os.path.exists(sliced) else []
        ch, h, w, _, _ = cuts[k]
        rows = []
        for e in prog:
            s = e["size"]
            only = os.path.join(out, f"cut{k}.only{s}.json")
            sep = head_accuracy(load(only)["accuracy"], s) if os.path.exists(only) else (full if s == ch else None)
            rows.append(dict(size=s, bytes=s * h * w, progressive=e["accuracy"], separate=sep,
                             sliced_full=head_accuracy(sliced, s)))
        res[k] = rows
    return cuts, full, res


def jpeg_results(out):
    """(baseline rows, progressive rows) with bytes, header bytes, accuracy."""
    base, prog = [], []
    for p in glob.glob(os.path.join(out, "jpeg", "*.json")):
        r = load(p)
        row = dict(q=r["jpeg_quality"], scans=r["jpeg_scans"], keep=r["jpeg_keep"], bytes=r["bytes"]["mean_bytes"],
                   header=r["bytes"]["mean_header_bytes"], accuracy=r["accuracy"][0]["accuracy"])
        (prog if r["jpeg_scans"] else base).append(row)
    base.sort(key=lambda r: r["q"])
    prog.sort(key=lambda r: (r["q"], r["keep"]))
    return base, prog


def pct(a):
    return "-" if a is None else f"{100 * a:.2f}"


def transfer_s(link, nbytes, bw):
    return link["setup_latency_s"] + nbytes * 8 * (1 + link["overhead_fraction"]) / bw


def best_within(options, budget_s, link, bw):
    """Highest accuracy among (bytes, accuracy) options that arrive within budget_s."""
    ok = [a for b, a in options if budget_s > 0 and transfer_s(link, b, bw) <= budget_s]
    return max(ok) if ok else 0.0


def deadline_curves(cuts, res, base, prog, link, bw, deadlines):
    curves = {}
    for k, rows in res.items():
        _, _, _, dev_ms, cloud_ms = cuts[k]
        opts = [(r["bytes"], r["progressive"]) for r in rows]
        curves[f"slicing, cut {k}"] = [best_within(opts, (d - dev_ms - cloud_ms) / 1e3, link, bw) for d in deadlines]
    cloud0 = cuts[0][4]
    if base:
        opts = [(r["bytes"], r["accuracy"]) for r in base]
        curves["JPEG"] = [best_within(opts, (d - cloud0) / 1e3, link, bw) for d in deadlines]
        opts = [(r["bytes"] - r["header"], r["accuracy"]) for r in base]
        curves["JPEG, no headers"] = [best_within(opts, (d - cloud0) / 1e3, link, bw) for d in deadlines]
    if prog:
        opts = [(r["bytes"], r["accuracy"]) for r in prog]
        curves["progressive JPEG"] = [best_within(opts, (d - cloud0) / 1e3, link, bw) for d in deadlines]
    return curves


COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f"]


def svg_plot(title, xlabel, series, logx=False, y_range=(0.0, 1.0)):
    """series: name -> list of (x, y). Returns SVG text."""
    import math
    W, H, L, R, T, B = 720, 440, 70, 200, 40, 50
    xs = [x for pts in series.values() for x, _ in pts]
    if not xs:
        return ""
    fx = (lambda v: math.log10(v)) if logx else (lambda v: v)
    x0, x1 = fx(min(xs)), fx(max(xs))
    x1 = x1 if x1 > x0 else x0 + 1
    y0, y1 = y_range
    px = lambda v: L + (fx(v) - x0) / (x1 - x0) * (W - L - R)
    py = lambda v: H - B - (v - y0) / (y1 - y0) * (H - T - B)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
           f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>',
           f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">{xlabel}</text>',
           f'<text x="16" y="{(T + H - B) / 2}" transform="rotate(-90 16 {(T + H - B) / 2})" text-anchor="middle">'
           f'test accuracy</text>']
    for i in range(6):
        v = y0 + (y1 - y0) * i / 5
        out.append(f'<line x1="{L - 4}" y1="{py(v):.1f}" x2="{W - R}" y2="{py(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 8}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    ticks = sorted(set(xs)) if not logx else [10 ** e for e in range(int(math.floor(x0)), int(math.ceil(x1)) + 1)]
    if not logx and len(ticks) > 8:
        step = (max(xs) - min(xs)) / 6
        ticks = [min(xs) + step * i for i in range(7)]
    for t in ticks:
        if fx(t) < x0 - 1e-9 or fx(t) > x1 + 1e-9:
            continue
        out.append(f'<text x="{px(t):.1f}" y="{H - B + 16}" text-anchor="middle">{t:g}</text>')
    for i, (name, pts) in enumerate(series.items()):
        c = COLORS[i % len(COLORS)]
        pts = sorted(pts)
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{path}"/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{c}"/>')
        out.append(f'<rect x="{W - R + 12}" y="{T + 18 * i}" width="12" height="3" fill="{c}"/>')
        out.append(f'<text x="{W - R + 30}" y="{T + 18 * i + 5}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--svg-dir")
    ap.add_argument("--ble", default=os.path.join(os.path.dirname(__file__), "..", "..", "targets", "data", "ble.json"))
    a = ap.parse_args()
    cuts, full, res = slicing_results(a.out)
    print(f"Full model (no slicing): **{pct(full)} %** test accuracy.\n")
    for k, rows in res.items():
        ch, h, w, dev, cloud = cuts[k]
        print(f"Cut {k} (cut tensor {ch}x{h}x{w}; GAP8 device part {dev} ms, cloud part {cloud} ms):\n")
        print("| channels sent | bytes (q8) | progressive slicing | separately trained | full model, sliced after training |")
        print("|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['size']} | {r['bytes']} | {pct(r['progressive'])} | {pct(r['separate'])} | {pct(r['sliced_full'])} |")
        print()
    base, prog = jpeg_results(a.out)
    if base or prog:
        print("| JPEG | bytes per image | of which headers | accuracy |")
        print("|---|---:|---:|---:|")
        for r in base:
            print(f"| baseline q{r['q']} | {r['bytes']:.1f} | {r['header']:.1f} | {pct(r['accuracy'])} |")
        for r in prog:
            print(f"| progressive q{r['q']}, {r['keep']} of {r['scans']} scans | {r['bytes']:.1f} | {r['header']:.1f} | "
                  f"{pct(r['accuracy'])} |")
        print()
    link = load(a.ble)
    deadlines = list(range(20, 301, 10))
    for bw in (250e3, 100e3, 50e3):
        curves = deadline_curves(cuts, res, base, prog, link, bw, deadlines)
        print(f"Accuracy vs deadline over BLE at {bw / 1e3:g} kbps:\n")
        shown = [20, 30, 40, 50, 60, 80, 100, 150, 200, 300]
        print("| deadline (ms) | " + " | ".join(str(d) for d in shown) + " |")
        print("|---|" + "---:|" * len(shown))
        for name, ys in curves.items():
            print(f"| {name} | " + " | ".join(pct(ys[deadlines.index(d)]) for d in shown) + " |")
        print()
        if a.svg_dir:
            series = {n: list(zip(deadlines, ys)) for n, ys in curves.items()}
            svg = svg_plot(f"Fashion-MNIST over BLE at {bw / 1e3:g} kbps", "end-to-end deadline (ms)", series)
            with open(os.path.join(a.svg_dir, f"deadline_{int(bw / 1e3)}kbps.svg"), "w") as f:
                f.write(svg)
    if a.svg_dir:
        series = {f"slicing, cut {k}": [(r["bytes"], r["progressive"]) for r in rows] for k, rows in res.items()}
        if base:
            series["JPEG"] = [(r["bytes"], r["accuracy"]) for r in base]
            series["JPEG, no headers"] = [(r["bytes"] - r["header"], r["accuracy"]) for r in base]
        for q in sorted({r["q"] for r in prog}):
            series[f"progressive JPEG q{q}"] = [(r["bytes"], r["accuracy"]) for r in prog if r["q"] == q]
        svg = svg_plot("Fashion-MNIST: accuracy vs bytes sent per image", "bytes per image (log scale)", series,
                       logx=True)
        with open(os.path.join(a.svg_dir, "accuracy_vs_bytes.svg"), "w") as f:
            f.write(svg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
