#!/usr/bin/env python3
"""The "Quantization quality" table of docs/benchmarks.md, regenerated (issue 10, point 4).

For each test model and each clio configuration, runs `clio quantize` on the calibration and
evaluation samples of scripts/quant/make_calib.py and reads the output SQNR it prints; with
--tf-python (an interpreter with tensorflow-cpu), adds TensorFlow Lite's own int8 PTQ columns
from scripts/quant/tflite_ptq.py on the same model and data. Prints one Markdown table.

Usage: sqnr_table.py [--clio target/release/clio] [--work /tmp/qcalib] [--tf-python PATH]
"""
import argparse
import os
import re
import subprocess
import sys

MODELS = [("MobileNetV2 (tiny)", "testdata/models/mobilenet_v2_tiny.onnx"),
          ("ResNet (tiny)", "testdata/models/resnet_tiny.onnx")]
# (column, clio quantize arguments)
CONFIGS = [
    ("clio int8 per-channel", ["--scheme", "int8"]),
    ("clio int8 per-tensor", ["--scheme", "int8", "--weights", "per-tensor"]),
    ("clio int8, range=mse", ["--scheme", "int8", "--range", "mse"]),
    ("clio int8, bias-correction=weights", ["--scheme", "int8", "--bias-correction", "weights"]),
    ("clio int8, bias-correction=measured", ["--scheme", "int8", "--bias-correction", "measured"]),
    ("clio q8 per-channel", ["--scheme", "q8"]),
    ("clio q8, range=mse", ["--scheme", "q8", "--range", "mse"]),
    ("clio q8, align", ["--scheme", "q8", "--align"]),
    ("clio q8, align, range=percentile", ["--scheme", "q8", "--align", "--range", "percentile"]),
    ("clio q8, align, bias-correction=measured", ["--scheme", "q8", "--align", "--bias-correction", "measured"]),
    ("clio q8, align, range=mse, bias-correction=measured",
     ["--scheme", "q8", "--align", "--range", "mse", "--bias-correction", "measured"]),
    ("clio q16 per-channel", ["--scheme", "q16"]),
    ("clio q16, align", ["--scheme", "q16", "--align"]),
    ("clio q16, bias-correction=measured", ["--scheme", "q16", "--bias-correction", "measured"]),
]
OUTPUT = re.compile(r"output 0: SQNR ([-0-9.]+) dB")
TFLITE = re.compile(r"TFLite int8 PTQ, (.*?): output SQNR ([-0-9.]+) dB")


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr.strip()}")
    return p.stdout + p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clio", default="target/release/clio")
    ap.add_argument("--work", default="/tmp/qcalib")
    ap.add_argument("--tf-python", default=None, help="python with tensorflow-cpu for the TFLite columns")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    calib, ev = os.path.join(a.work, "calib.npy"), os.path.join(a.work, "eval.npy")
    here = os.path.dirname(os.path.abspath(__file__))
    run([sys.executable, os.path.join(here, "make_calib.py"), calib, "128", "1"])
    run([sys.executable, os.path.join(here, "make_calib.py"), ev, "128", "2"])
    columns = [c for c, _ in CONFIGS]
    rows = []
    for name, path in MODELS:
        cells = {}
        for col, args in CONFIGS:
            out = run([a.clio, "quantize", path, *args, "--calib", calib, "--eval", ev,
                       "-o", os.path.join(a.work, "q.clio")])
            m = OUTPUT.search(out)
            cells[col] = m.group(1) if m else "?"
        if a.tf_python:
            out = run([a.tf_python, os.path.join(here, "tflite_ptq.py"), path, calib, ev])
            for label, db in TFLITE.findall(out):
                col = f"TFLite int8 PTQ, {label}"
                cells[col] = db
                if col not in columns:
                    columns.append(col)
        rows.append((name, cells))
    print("| model | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, cells in rows:
        print(f"| {name} | " + " | ".join(cells.get(c, "-") for c in columns) + " |")


if __name__ == "__main__":
    main()
