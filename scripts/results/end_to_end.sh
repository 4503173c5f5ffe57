#!/usr/bin/env bash
# The whole Clio loop in one command sequence (issue 11, point 5):
#   build a small MobileNetV2 -> plan partition points for BLE at a deadline -> slice and train
#   every chosen cut with progressive slicing -> accuracy profiles -> compile each chosen cut's
#   device part for STM32F7 (CMSIS-NN) and GAP8 -> replay the HSDPA traces, scaled into the BLE
#   band, through `clio simulate`: fixed cut vs adaptive partitioning vs oracle.
#
#   scripts/results/end_to_end.sh [OUT]      (default results/end-to-end)
#
# Environment: CLIO (binary), DEADLINE_MS (100), BAND (20k:500k), TRAIN_LIMIT (20000),
# EPOCHS (1), SCALE (trace scale, 0.05: the 3G traces' ~1-6 Mbit/s become ~50-300 kbit/s),
# TRACES (directory, ../shared/traces/hsdpa-3g-norway), WIDTH (0.5), SEED (1).
set -euo pipefail
OUT=${1:-results/end-to-end}
CLIO=${CLIO:-target/release/clio}
DEADLINE_MS=${DEADLINE_MS:-100}
BAND=${BAND:-20k:500k}
TRAIN_LIMIT=${TRAIN_LIMIT:-20000}
EPOCHS=${EPOCHS:-1}
SCALE=${SCALE:-0.05}
TRACES=${TRACES:-../shared/traces/hsdpa-3g-norway}
WIDTH=${WIDTH:-0.5}
SEED=${SEED:-1}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}
mkdir -p "$OUT"
set -x
"$CLIO" build-model mobilenet_v2_small --width "$WIDTH" --seed "$SEED" -o "$OUT/base.clio"
"$CLIO" plan "$OUT/base.clio" --latency-ms "$DEADLINE_MS" --bandwidth "$BAND" --link ble --target gap8 \
  -o "$OUT/plan.json"
cuts=$(python3 -c 'import json,sys; print(" ".join(map(str, json.load(open(sys.argv[1]))["chosen"])))' "$OUT/plan.json")
for k in $cuts; do
  "$CLIO" opt "$OUT/base.clio" -p "slice{cut=$k,bandwidth=none}" -o "$OUT/cut$k.clio"
  "$CLIO" train "$OUT/cut$k.clio" --data fashion-mnist --train-limit "$TRAIN_LIMIT" --epochs "$EPOCHS" \
    --seed "$SEED" --quiet -o "$OUT/cut$k.trained.clio" --profile "$OUT/cut$k.profile.json"
  "$CLIO" samples --like "$OUT/cut$k.trained.clio" --train-split --count 64 -o "$OUT/calib$k"
  "$CLIO" compile "$OUT/cut$k.trained.clio" --target stm32f7 \
    --pipeline "fuse-bn,quantize{scheme=int8,calib=\"$OUT/calib$k\",graph=device}" -o "$OUT/cut$k.stm32f7"
  "$CLIO" compile "$OUT/cut$k.trained.clio" --target gap8 \
    --pipeline "fuse-bn,quantize{scheme=q8,calib=\"$OUT/calib$k\",graph=device}" -o "$OUT/cut$k.gap8"
done
python3 - "$OUT" $cuts <<'PY'
import json, sys
out, cuts = sys.argv[1], sys.argv[2:]
entries = [e for k in cuts for e in json.load(open(f"{out}/cut{k}.profile.json"))["entries"]]
json.dump({"entries": entries}, open(f"{out}/profile.json", "w"), indent=1)
PY
traces=()
for t in "$TRACES"/*; do traces+=(--trace "$t"); done
"$CLIO" simulate --plan "$OUT/plan.json" --profile "$OUT/profile.json" "${traces[@]}" --scale "$SCALE" \
  --link ble --svg-dir "$OUT/svg" | tee "$OUT/simulate.txt"
