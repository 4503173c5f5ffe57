#!/usr/bin/env python3
"""Side-by-side comparison of the loopback demo (scripts/results/demo.sh) with `clio simulate`
over the same traces, frames, period, window and switch cost.

    demo_compare.py DEMO_DIR --plan plan.json --profile profile.json TRACE_NAME...

Reads DEMO_DIR/device-TRACE.jsonl (the device programs' frame logs) and DEMO_DIR/simulate.json
(`clio simulate --json --per-frame`, adaptive strategy), prints a Markdown table per device and
overall, and writes it to DEMO_DIR/compare.md.

Columns (demo | simulator):
* accuracy: the demo's fraction of test images classified correctly | the simulator's mean
  profiled accuracy of the slices it credits;
* profile acc.: the demo's mean profiled accuracy of the slices the server actually used (what the
  simulator would credit for the same slices) | the simulator's credit when the cloud uses the
  largest slice delivered (what the server does; the simulator's own rule credits the most
  accurate fitting slice, which differs only where the profile is not monotone);
* misses (no head ran), switches, mean channels used, mean end-to-end latency;
* same cut: frames where the demo and the simulator used the same cut.
"""
import argparse
import json
import math
import os
import sys


def load_link(name="ble"):
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "targets", "data", f"{name}.json")) as f:
        d = json.load(f)
    return d["setup_latency_s"], d["overhead_fraction"]


def bytes_within(seconds, bw, link):
    setup, overhead = link
    room = seconds - setup
    if room <= 0 or bw <= 0:
        return 0
    return math.floor(room * bw / (8.0 * (1.0 + overhead)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("demo_dir")
    ap.add_argument("--plan", required=True)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--switch-ms", type=float, default=20.0)
    ap.add_argument("--framing", default="0:0", help="BEGIN:GROUP protocol bytes, as given to clio simulate")
    ap.add_argument("traces", nargs="+")
    a = ap.parse_args()
    plan = json.load(open(a.plan))
    cuts = {c["k"]: c for c in plan["cuts"]}
    curve = {}
    for e in json.load(open(a.profile))["entries"]:
        curve.setdefault(e["cut"], []).append((e["channels"], e["accuracy"]))
    for k in curve:
        curve[k].sort()
    link = load_link(plan.get("link", "ble"))
    sim = {t["trace"]: t for t in json.load(open(os.path.join(a.demo_dir, "simulate.json")))}

    begin, group = (int(v) for v in a.framing.split(":"))

    def wire(c, ch):
        g = max(c["slices"][0]["channels"], 1) if c["slices"] else 1
        return ch * c["bytes_per_channel"] + ((begin + -(-ch // g) * group) if (begin or group) else 0)

    def largest_delivered(f):
        c = cuts[f["cut"]]
        budget = c["radio_budget_s"] - (a.switch_ms / 1e3 if f["switched"] else 0.0)
        room = bytes_within(budget, f["actual_bps"], link)
        fit = [(ch, acc) for ch, acc in curve[f["cut"]] if wire(c, ch) <= room]
        return fit[-1] if fit else (0, 0.0)

    rows = []
    totals = {"demo": [], "sim": []}
    for name in a.traces:
        frames = [json.loads(l) for l in open(os.path.join(a.demo_dir, f"device-{name}.jsonl"))]
        demo = [f for f in frames if f["event"] == "frame"]
        adaptive = next(r for r in sim[name]["results"] if r["strategy"] == "adaptive")
        sf = adaptive["frame_log"]
        n = min(len(demo), len(sf))
        demo, sf = demo[:n], sf[:n]
        largest = [largest_delivered(f) for f in sf]
        rows.append((name, demo, sf, largest))
        totals["demo"] += demo
        totals["sim"] += list(zip(sf, largest))

    def mean(v):
        v = list(v)
        return sum(v) / len(v) if v else 0.0

    def line(name, demo, sf, largest):
        n = len(demo)
        acc_d = mean(f["correct"] for f in demo)
        # Binomial standard error of the demo's accuracy on n images.
        se = math.sqrt(max(acc_d * (1 - acc_d), 1e-9) / max(n, 1))
        return {
            "device": name,
            "frames": n,
            "acc_demo": acc_d,
            "acc_se": se,
            "acc_sim": mean(f["accuracy"] for f in sf),
            "prof_demo": mean(f["expected_accuracy"] for f in demo),
            "prof_sim": mean(acc for _, acc in largest),
            "miss_demo": sum(f["miss"] for f in demo),
            "miss_sim": sum(f["channels"] == 0 for f in sf),
            "sw_demo": sum(f["switched"] for f in demo),
            "sw_sim": sum(f["switched"] for f in sf),
            "ch_demo": mean(f["used"] for f in demo),
            "ch_sim": mean(ch for ch, _ in largest),
            "ch_sim_best": mean(f["channels"] for f in sf),
            "lat_demo": mean(f["latency_ms"] for f in demo),
            "lat_sim": mean(f["latency_s"] * 1e3 for f in sf),
            "same_cut": mean(d["cut"] == s["cut"] for d, s in zip(demo, sf)),
            "same_ch": mean(d["used"] == l[0] for d, l in zip(demo, largest)),
        }

    table = [line(*r) for r in rows]
    all_sf = [s for s, _ in totals["sim"]]
    all_l = [l for _, l in totals["sim"]]
    table.append(line("all", totals["demo"], all_sf, all_l))
    out = []
    out.append(
        "| device (trace) | frames | accuracy demo / sim | profile acc. demo / sim | misses demo / sim "
        "| switches demo / sim | channels demo / sim | latency ms demo / sim | same cut | same slice |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in table:
        out.append(
            f"| {r['device']} | {r['frames']} | {r['acc_demo']:.3f} (±{r['acc_se']:.3f}) / {r['acc_sim']:.3f} "
            f"| {r['prof_demo']:.4f} / {r['prof_sim']:.4f} | {r['miss_demo']} / {r['miss_sim']} "
            f"| {r['sw_demo']} / {r['sw_sim']} | {r['ch_demo']:.2f} / {r['ch_sim']:.2f} "
            f"| {r['lat_demo']:.1f} / {r['lat_sim']:.1f} | {100 * r['same_cut']:.0f} % | {100 * r['same_ch']:.0f} % |"
        )
    overall = table[-1]
    checks = [
        ("profiled accuracy within 0.02", abs(overall["prof_demo"] - overall["prof_sim"]) <= 0.02),
        ("real accuracy within 2 standard errors of the simulator's",
         abs(overall["acc_demo"] - overall["acc_sim"]) <= 2 * overall["acc_se"]),
        ("misses within 2 % of frames", abs(overall["miss_demo"] - overall["miss_sim"]) <= 0.02 * overall["frames"]),
        ("switches within 2 % of frames", abs(overall["sw_demo"] - overall["sw_sim"]) <= 0.02 * overall["frames"]),
        ("mean channels within 10 %", abs(overall["ch_demo"] - overall["ch_sim"]) <= 0.1 * max(overall["ch_sim"], 1)),
        ("mean latency within 15 ms", abs(overall["lat_demo"] - overall["lat_sim"]) <= 15.0),
    ]
    out.append("")
    for what, ok in checks:
        out.append(f"* {what}: {'yes' if ok else 'NO'}")
    text = "\n".join(out) + "\n"
    print(text, end="")
    with open(os.path.join(a.demo_dir, "compare.md"), "w") as f:
        f.write(text)
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
