#!/usr/bin/env bash
# JPEG baselines (issue 11, point 4): the full model trained by fashion_mnist.sh, evaluated on
# the Fashion-MNIST test images after baseline JPEG at several qualities and progressive JPEG
# (4 scans) cut after 1..4 scans. Writes OUT/jpeg/*.json (bytes per image and accuracy).
#
#   scripts/results/jpeg.sh [OUT]        (OUT as for fashion_mnist.sh; needs OUT/full.clio)
set -euo pipefail
OUT=${1:-results/fashion-mnist}
CLIO=${CLIO:-target/release/clio}
QUALITIES=${QUALITIES:-"5 10 20 30 50 75 95"}
PROGRESSIVE_QUALITIES=${PROGRESSIVE_QUALITIES:-"30 75"}
export RAYON_NUM_THREADS=1
mkdir -p "$OUT/jpeg"
for q in $QUALITIES; do
  "$CLIO" evaluate "$OUT/full.clio" --data fashion-mnist --jpeg-quality "$q" --json > "$OUT/jpeg/baseline-q$q.json"
done
for q in $PROGRESSIVE_QUALITIES; do
  for k in 1 2 3 4; do
    "$CLIO" evaluate "$OUT/full.clio" --data fashion-mnist --jpeg-quality "$q" --jpeg-scans 4 --jpeg-keep "$k" \
      --json > "$OUT/jpeg/progressive-q$q-k$k.json"
  done
done
echo "JPEG evaluations in $OUT/jpeg"
