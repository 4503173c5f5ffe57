#!/usr/bin/env python3
"""Generated-code quality of the device parts: MobileNetV2 (width 0.35, 0.5, 1.0; CIFAR 32x32)
at the cut points `clio plan` chooses for the STM32F7 over BLE at 300 ms, plus fixed cuts 3 and 8
for comparison. For each: the STM32F7 C module's activation arena against the liveness lower
bound and TFLite Micro's greedy (size-ordered first fit) planner, its const (flash) bytes
against the parameter count, and the cost models' latency / energy estimates for STM32F7 and
GAP8 (the GAP8 module's L2 / L1 use too).

Usage (repository root, after `cargo build --release`):
    python3 scripts/bench/codegen_quality.py
Prints a Markdown table (pasted into docs/benchmarks.md).
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIO = os.path.join(ROOT, "target", "release", "clio")


def clio(*args):
    r = subprocess.run([CLIO, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"clio {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def main():
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for width in ["0.35", "0.5", "1.0"]:
            model = os.path.join(d, f"m{width}.clio")
            clio("build-model", "mobilenet_v2", "--width", width, "--input", "32", "--classes", "10", "-o", model)
            plan_path = os.path.join(d, f"plan{width}.json")
            clio("plan", model, "--target", "stm32f7", "--link", "ble", "--latency-ms", "300", "-o", plan_path)
            plan = json.load(open(plan_path))
            cuts = sorted(set([3, 8] + plan["chosen"]))
            for k in cuts:
                cut = plan["cuts"][k]
                out = os.path.join(d, f"s{width}_{k}")
                clio("compile", model, "--target", "stm32f7", "--cut", str(k), "--calib", "random:1", "-o", out)
                s = json.load(open(os.path.join(out, "manifest.json")))["device"]
                gout = os.path.join(d, f"g{width}_{k}")
                clio("compile", model, "--target", "gap8", "--cut", str(k), "--calib", "random:1", "-o", gout)
                g = json.load(open(os.path.join(gout, "manifest.json")))["device"]
                params = cut["device_weight_bytes"] // 4
                rows.append(
                    (
                        width,
                        f"{k}{' (planned)' if k in plan['chosen'] else ''}",
                        s["arena_bytes"],
                        s["arena_lower_bound_bytes"],
                        s["arena_tflm_greedy_bytes"],
                        s["flash_const_bytes"],
                        params,
                        s["estimate"]["latency_s"] * 1e3,
                        s["estimate"]["energy_j"] * 1e3,
                        g["report"]["l2_bytes"],
                        g["report"]["l1_bytes"],
                        g["estimate"]["latency_s"] * 1e3,
                        g["estimate"]["energy_j"] * 1e3,
                    )
                )
    print(
        "| width | cut | STM32 arena | lower bound | TFLM greedy | flash const B | device params (f32 count) "
        "| STM32 ms | STM32 mJ | GAP8 L2 B | GAP8 L1 B | GAP8 ms | GAP8 mJ |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r) + " |")


if __name__ == "__main__":
    main()
