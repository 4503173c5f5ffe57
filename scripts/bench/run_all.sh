#!/usr/bin/env bash
# One command for the measured tables of docs/benchmarks.md (issue 10): scaling, in-process
# compile speed (criterion), whole-process comparison with onnxoptimizer / onnxsim /
# onnxruntime, the fuse-bn numerics comparison, generated-code quality and quantization
# quality (SQNR; with TF_PYTHON set, TensorFlow Lite's own int8 PTQ next to clio's).
#
#   pip install onnx onnxruntime onnxoptimizer onnxsim numpy
#   bash scripts/bench/run_all.sh [--quick] [--out FILE]
#     --quick     1k and 10k layers only in the scaling bench
#     --out FILE  where the Markdown report goes (default results/benchmarks.md), headed by the
#                 date, commit and machine, so two runs can be diffed; docs/benchmarks.md
#                 holds the reviewed copy with its analysis
#   TF_PYTHON=/tmp/tfenv/bin/python   an interpreter with tensorflow-cpu for the TFLite columns
#
# criterion also keeps its history under target/criterion, so a later run reports the change.
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=1000,10000,100000
out=results/benchmarks.md
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) sizes=1000,10000 ;;
    --out) out="$2"; shift ;;
    *) echo "run_all.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$(dirname "$out")"
cargo build --release
{
  echo "# clio benchmarks ($(date -u +%Y-%m-%dT%H:%MZ), $(git describe --always --dirty))"
  echo
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(rustc --version)."
  echo
  echo "## Scaling"
  cargo bench -q -p clio --bench scaling -- --sizes "$sizes" --reps 3 --quadratic-max 100000
  echo "## Compile speed (in process)"
  cargo bench -q -p clio --bench compile
  echo "## Compile speed: quantize, plan-partitions and the backends (in process)"
  cargo bench -q -p clio-targets --bench backends
  echo "## Compile speed (whole processes)"
  python3 scripts/bench/compile_speed.py --runs 3
  echo "## fuse-bn against onnxoptimizer"
  python3 scripts/bench_fuse_bn.py --runs 3
  echo "## Generated-code quality"
  python3 scripts/bench/codegen_quality.py
  echo "## Quantization quality (output SQNR, dB)"
  python3 scripts/quant/sqnr_table.py --clio target/release/clio ${TF_PYTHON:+--tf-python "$TF_PYTHON"}
} 2>&1 | tee "$out"
echo "report written to $out" >&2
