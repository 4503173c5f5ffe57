#!/usr/bin/env bash
# The whole Clio loop in one command sequence (issue 11, point 5):
#   build a small MobileNetV2 -> plan partition points for BLE at a deadline -> slice and train
#   every chosen cut with progressive slicing -> accuracy profiles -> compile each chosen cut's
#   device part for STM32F7 (CMSIS-NN) and GAP8 -> replay the HSDPA traces, scaled into the BLE
#   band, through `clio simulate`: fixed cut vs adaptive partitioning vs oracle.
#
#   scripts/results/end_to_end.sh [OUT]      (default results/end-to-end)
#
# Environment: CLIO (binary), DEADLINE_MS (100), BAND (20k:500k), TRAIN_LIMIT (60000),
# EPOCHS (1), SCALE (trace scale, 0.05: the 3G traces' ~1-6 Mbit/s become ~50-300 kbit/s),
# TRACES (directory, ../shared/traces/hsdpa-3g-norway), WIDTH (0.5), SEED (1),
# SLICE_BANDWIDTH (traces): the `slice` pass's `bandwidth` option, i.e. the distribution that
#   weights the heads' losses (pi_i); `none` = equal weights, `traces` = every trace of TRACES
#   scaled by SCALE, concatenated into OUT/traces-all.txt (the distribution the replay below
#   sees), or any `uniform:LO:HI` / `loguniform:LO:HI` / `trace:PATH`. The radio budget behind
#   pi is the plan's (GAP8, BLE, DEADLINE_MS).
# OPTIMIZER (adam), LR (0.003): `clio train --optimizer/--lr`. With SGD a head's own weights get
#   their gradient scaled by its pi_i (at cut 9 a head is a linear layer on the pooled slice,
#   all its own: 32 heads with equal pi train at 1/32 of the rate); Adam's steps do not depend
#   on that scale. The settings before (SLICE_BANDWIDTH=none OPTIMIZER=sgd LR=0.05
#   TRAIN_LIMIT=20000) gave cut 9's heads 23-57 % (docs/results.md).
# SWITCH_MS (20): the partition-switch cost the replay charges (`clio simulate --switch-ms`).
set -euo pipefail
OUT=${1:-results/end-to-end}
CLIO=${CLIO:-target/release/clio}
DEADLINE_MS=${DEADLINE_MS:-100}
BAND=${BAND:-20k:500k}
TRAIN_LIMIT=${TRAIN_LIMIT:-60000}
EPOCHS=${EPOCHS:-1}
SCALE=${SCALE:-0.05}
TRACES=${TRACES:-../shared/traces/hsdpa-3g-norway}
WIDTH=${WIDTH:-0.5}
SEED=${SEED:-1}
SLICE_BANDWIDTH=${SLICE_BANDWIDTH:-traces}
OPTIMIZER=${OPTIMIZER:-adam}
LR=${LR:-0.003}
SWITCH_MS=${SWITCH_MS:-20}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}
mkdir -p "$OUT"
set -x
"$CLIO" build-model mobilenet_v2_small --width "$WIDTH" --seed "$SEED" -o "$OUT/base.clio"
"$CLIO" plan "$OUT/base.clio" --latency-ms "$DEADLINE_MS" --bandwidth "$BAND" --link ble --target gap8 \
  -o "$OUT/plan.json"
slice_bw=$SLICE_BANDWIDTH
if [ "$SLICE_BANDWIDTH" = traces ]; then
  # One trace made of all of them, end to end (each keeps its own sample times).
  python3 - "$TRACES" "$OUT/traces-all.txt" <<'PY'
import os, sys
src, dst = sys.argv[1], sys.argv[2]
offset = 0.0
with open(dst, "w") as out:
    for name in sorted(os.listdir(src)):
        rows = [l.split("#")[0].split() for l in open(os.path.join(src, name))]
        s = [(float(r[0]), float(r[1])) for r in rows if r]
        for t, b in s:
            out.write(f"{offset + t - s[0][0]:.3f}\t{b}\n")
        offset += s[-1][0] - s[0][0] + (s[-1][0] - s[-2][0])
PY
  slice_bw="trace:$OUT/traces-all.txt,trace-scale=$SCALE"
fi
cuts=$(python3 -c 'import json,sys; print(" ".join(map(str, json.load(open(sys.argv[1]))["chosen"])))' "$OUT/plan.json")
for k in $cuts; do
  "$CLIO" opt "$OUT/base.clio" --target gap8 --link ble \
    -p "slice{cut=$k,bandwidth=$slice_bw,latency-ms=$DEADLINE_MS,objective=\"$OUT/cut$k.slice.json\"}" -o "$OUT/cut$k.clio"
  "$CLIO" train "$OUT/cut$k.clio" --data fashion-mnist --train-limit "$TRAIN_LIMIT" --epochs "$EPOCHS" \
    --optimizer "$OPTIMIZER" --lr "$LR" --seed "$SEED" --quiet --report "$OUT/cut$k.report.json" \
    -o "$OUT/cut$k.trained.clio" --profile "$OUT/cut$k.profile.json"
  "$CLIO" samples --like "$OUT/cut$k.trained.clio" --train-split --count 64 -o "$OUT/calib$k"
  "$CLIO" compile "$OUT/cut$k.trained.clio" --target stm32f7 \
    --pipeline "fuse-bn,quantize{scheme=int8,calib=\"$OUT/calib$k\",graph=device}" -o "$OUT/cut$k.stm32f7"
  # GAP8 has no global_avg_pool kernel: a cut after the pool (k = 10 at DEADLINE_MS=40) builds
  # for STM32F7 only.
  "$CLIO" compile "$OUT/cut$k.trained.clio" --target gap8 \
    --pipeline "fuse-bn,quantize{scheme=q8,calib=\"$OUT/calib$k\",graph=device}" -o "$OUT/cut$k.gap8" ||
    echo "cut $k: no GAP8 build" >&2
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
  --link ble --switch-ms "$SWITCH_MS" --svg-dir "$OUT/svg" | tee "$OUT/simulate.txt"
