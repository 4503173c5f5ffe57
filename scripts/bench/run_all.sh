#!/usr/bin/env bash
# One command for the performance tables of docs/benchmarks.md (issue 10): scaling, in-process
# compile speed (criterion), whole-process comparison with onnxoptimizer / onnxsim /
# onnxruntime, and the fuse-bn numerics comparison. Prints Markdown tables; criterion also
# keeps its history under target/criterion, so a later run reports the change.
#   pip install onnx onnxruntime onnxoptimizer onnxsim numpy
#   bash scripts/bench/run_all.sh [--quick]      # --quick: 1k and 10k layers only
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=1000,10000,100000
if [ "${1:-}" = "--quick" ]; then sizes=1000,10000; fi
cargo build --release
echo "## Scaling"
cargo bench -p clio --bench scaling -- --sizes "$sizes" --reps 3 --quadratic-max 1000
echo "## Compile speed (in process)"
cargo bench -p clio --bench compile
echo "## Compile speed (whole processes)"
python3 scripts/bench/compile_speed.py --runs 3
echo "## fuse-bn against onnxoptimizer"
python3 scripts/bench_fuse_bn.py --runs 3
echo "## Generated-code quality"
python3 scripts/bench/codegen_quality.py
