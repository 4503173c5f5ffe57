#!/usr/bin/env python3
"""Side by side: clio's `fuse-bn` against onnxoptimizer's `fuse_bn_into_conv` (optionally
followed by onnxsim, which folds the arithmetic onnxoptimizer leaves behind).

Measures, on the same ONNX models and the same random inputs:
  (a) numerics: each fused model against the unfused model, evaluated in the same engine
      (clio's interpreter for clio, onnxruntime for onnxoptimizer), as max |diff| relative to
      the output range; plus clio's fused output against onnxruntime on the unfused model;
  (b) wall time of the whole process (start-up, load, fuse, save), median of several runs
      after one untimed warm-up run.

Usage (from the repository root, after `cargo build --release`):
    pip install onnx onnxruntime onnxoptimizer onnxsim numpy
    python3 scripts/bench_fuse_bn.py [--runs 5] [--inputs 4]
Prints a Markdown table (pasted into docs/benchmarks.md).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIO = os.path.join(ROOT, "target", "release", "clio")

MODELS = [
    ("MobileNetV2 224", "testdata/models/graph_only/mobilenet_v2_224.onnx", [1, 3, 224, 224]),
    ("ResNet-18 224", "testdata/models/graph_only/resnet18_224.onnx", [1, 3, 224, 224]),
    ("MobileNetV2 32 (tiny)", "testdata/models/mobilenet_v2_tiny.onnx", [1, 3, 32, 32]),
    ("ResNet tiny 32", "testdata/models/resnet_tiny.onnx", [1, 3, 32, 32]),
]

OPTIMIZER = """
import sys, onnx, onnxoptimizer
m = onnx.load(sys.argv[1])
m = onnxoptimizer.optimize(m, ["fuse_bn_into_conv"])
if sys.argv[3] == "sim":
    import onnxsim
    m, ok = onnxsim.simplify(m)
    assert ok
onnx.save(m, sys.argv[2])
"""


def materialize(path, tmp):
    """Copies `path` to `tmp`, writing deterministic random external weights if it has any."""
    m = onnx.load(path, load_external_data=False)
    rng = np.random.default_rng(7)
    dst = os.path.join(tmp, os.path.basename(path))
    external = [t for t in m.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if not external:
        shutil.copy(path, dst)
        return dst
    blobs = {}
    for t in external:
        info = {e.key: e.value for e in t.external_data}
        n = int(np.prod(t.dims)) if len(t.dims) else 1
        fan_in = int(np.prod(t.dims[1:])) if len(t.dims) > 1 else 1
        if t.name.endswith("running_var"):
            v = rng.uniform(0.5, 2.0, n)
        elif len(t.dims) == 1 and t.name.endswith("weight"):
            v = rng.uniform(0.5, 1.5, n)
        elif len(t.dims) == 1:
            v = rng.normal(0, 0.1, n)
        else:
            v = rng.uniform(-1, 1, n) * np.sqrt(3.0 / fan_in)
        blobs.setdefault(info["location"], []).append((int(info.get("offset", 0)), v.astype("<f4").tobytes()))
    for loc, parts in blobs.items():
        size = max(off + len(b) for off, b in parts)
        buf = bytearray(size)
        for off, b in parts:
            buf[off:off + len(b)] = b
        with open(os.path.join(tmp, loc), "wb") as f:
            f.write(buf)
    shutil.copy(path, dst)
    return dst


def timed(cmd, runs):
    # One untimed warm-up run (page cache, first write of the output), as compile_speed.py.
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(float(np.max(b) - np.min(b)), 1e-12))


def clio_run(model, x, tmp):
    xp, yp = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    np.save(xp, x)
    subprocess.run([CLIO, "run", model, "--input", xp, "-o", yp], check=True)
    return np.load(yp)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--inputs", type=int, default=4)
    args = ap.parse_args()
    if not os.path.exists(CLIO):
        sys.exit("build first: cargo build --release")
    rows = []
    for label, rel_path, shape in MODELS:
        with tempfile.TemporaryDirectory() as tmp:
            src = materialize(os.path.join(ROOT, rel_path), tmp)
            ours = os.path.join(tmp, "fused.clio")
            theirs = os.path.join(tmp, "fused.onnx")
            theirs_sim = os.path.join(tmp, "fused_sim.onnx")
            t_clio = timed([CLIO, "opt", src, "-p", "fuse-bn", "-o", ours], args.runs)
            t_opt = timed([sys.executable, "-c", OPTIMIZER, src, theirs, "nosim"], args.runs)
            t_sim = timed([sys.executable, "-c", OPTIMIZER, src, theirs_sim, "sim"], max(1, args.runs // 2))
            # onnxruntime would fuse BN into conv itself at its default optimisation level,
            # making the "unfused" reference fused: disable its graph optimisations.
            so = ort.SessionOptions()
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            ref = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
            opt = ort.InferenceSession(theirs_sim, so, providers=["CPUExecutionProvider"])
            bn_left = sum(n.op_type == "BatchNormalization" for n in onnx.load(theirs, load_external_data=False).graph.node)
            rng = np.random.default_rng(1)
            d_clio, d_opt, d_cross = [], [], []
            for _ in range(args.inputs):
                x = rng.normal(0, 1, shape).astype(np.float32)
                y_ref = ref.run(None, {ref.get_inputs()[0].name: x})[0]
                y_opt = opt.run(None, {opt.get_inputs()[0].name: x})[0]
                y_clio_unfused = clio_run(src, x, tmp)
                y_clio_fused = clio_run(ours, x, tmp)
                d_clio.append(rel(y_clio_fused, y_clio_unfused))
                d_opt.append(rel(y_opt, y_ref))
                d_cross.append(rel(y_clio_fused, y_ref))
            rows.append((label, max(d_clio), max(d_opt), max(d_cross), bn_left, t_clio, t_opt, t_sim))
    print("| model | clio fused vs unfused (clio) | onnxoptimizer+onnxsim fused vs unfused (ort) | clio fused vs unfused (ort) | BNs left by onnxoptimizer alone | clio opt (s) | onnxoptimizer (s) | onnxoptimizer+onnxsim (s) | speed-up vs fastest peer |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, dc, do, dx, left, tc, to, ts in rows:
        print(f"| {label} | {dc:.2e} | {do:.2e} | {dx:.2e} | {left} | {tc:.3f} | {to:.3f} | {ts:.3f} | {min(to, ts) / tc:.1f}x |")


if __name__ == "__main__":
    main()
