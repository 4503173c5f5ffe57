#!/usr/bin/env python3
"""Compile speed, whole processes (issue 10, point 1): `clio opt` against onnxoptimizer,
onnxsim and onnxruntime's offline graph optimisation on the same ONNX files.

Each tool runs as a separate process (start-up, load, optimise, save), several times; the
median wall time is reported (after one untimed warm-up run per command). Models are the graph-only torchvision exports in
testdata/models/graph_only with deterministic random weights written next to a copy
(`materialize` from scripts/bench_fuse_bn.py).

What each column does:
  clio fuse-bn,dce          `clio opt M -p fuse-bn,dce -o out.clio` (BN folding + cleanup)
  clio full                 `clio opt M -p fuse-bn,canonicalize,fold-constants,dce -o out.clio`
  onnxoptimizer             fuse_bn_into_conv + onnxoptimizer's default fuse/elimination passes
  onnxsim                   onnxsim.simplify (constant folding, its own optimiser passes)
  onnxruntime               ORT_ENABLE_BASIC offline optimisation, saved with optimized_model_filepath

Usage (from the repository root, after `cargo build --release`):
    pip install onnx onnxruntime onnxoptimizer onnxsim numpy
    python3 scripts/bench/compile_speed.py [--runs 5]
Prints the versions and a Markdown table (pasted into docs/benchmarks.md).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
from bench_fuse_bn import materialize  # noqa: E402  (same random weights as the fuse-bn bench)

CLIO = os.path.join(ROOT, "target", "release", "clio")

MODELS = [
    ("MobileNetV2 224", "testdata/models/graph_only/mobilenet_v2_224.onnx"),
    ("MobileNetV2 32 (CIFAR input)", "testdata/models/graph_only/mobilenet_v2_32.onnx"),
    ("ResNet-18 224", "testdata/models/graph_only/resnet18_224.onnx"),
    ("ResNet-18 32 (CIFAR input)", "testdata/models/graph_only/resnet18_32.onnx"),
]

OPTIMIZER = """
import sys, onnx, onnxoptimizer
m = onnx.load(sys.argv[1])
passes = ["fuse_bn_into_conv"] + [p for p in onnxoptimizer.get_fuse_and_elimination_passes() if p != "fuse_bn_into_conv"]
m = onnxoptimizer.optimize(m, passes)
onnx.save(m, sys.argv[2])
"""

SIMPLIFIER = """
import sys, onnx, onnxsim
m = onnx.load(sys.argv[1])
m, ok = onnxsim.simplify(m)
assert ok
onnx.save(m, sys.argv[2])
"""

ORT = """
import sys, onnxruntime as ort
so = ort.SessionOptions()
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
so.optimized_model_filepath = sys.argv[2]
ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
"""


def timed(cmd, runs):
    # One untimed run first, for every tool alike: the first run after the model files were
    # written meets their writeback and a cold page cache (medians of 7 runs moved by 3x).
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def versions():
    import onnx
    import onnxoptimizer
    import onnxruntime
    import onnxsim
    return f"onnx {onnx.__version__}, onnxoptimizer {onnxoptimizer.__version__}, onnxsim {onnxsim.__version__}, onnxruntime {onnxruntime.__version__}, python {sys.version.split()[0]}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if not os.path.exists(CLIO):
        sys.exit("build first: cargo build --release")
    print(f"versions: {versions()}\n")
    py = sys.executable
    print("| model | clio fuse-bn,dce (s) | clio fuse-bn,canonicalize,fold-constants,dce (s) | onnxoptimizer (s) | onnxsim (s) | onnxruntime basic (s) | fastest peer / clio full |")
    print("|---|---|---|---|---|---|---|")
    for label, rel_path in MODELS:
        with tempfile.TemporaryDirectory() as tmp:
            src = materialize(os.path.join(ROOT, rel_path), tmp)
            out_clio = os.path.join(tmp, "out.clio")
            out_onnx = os.path.join(tmp, "out.onnx")
            t_fuse = timed([CLIO, "opt", src, "-p", "fuse-bn,dce", "-o", out_clio], args.runs)
            t_full = timed([CLIO, "opt", src, "-p", "fuse-bn,canonicalize,fold-constants,dce", "-o", out_clio], args.runs)
            t_opt = timed([py, "-c", OPTIMIZER, src, out_onnx], args.runs)
            t_sim = timed([py, "-c", SIMPLIFIER, src, out_onnx], args.runs)
            t_ort = timed([py, "-c", ORT, src, out_onnx], args.runs)
            fastest = min(t_opt, t_sim, t_ort)
            print(f"| {label} | {t_fuse:.3f} | {t_full:.3f} | {t_opt:.3f} | {t_sim:.3f} | {t_ort:.3f} | {fastest / t_full:.1f}x |")


if __name__ == "__main__":
    main()
