#!/usr/bin/env bash
# Adaptive partitioning vs fixed cuts vs the oracle over the HSDPA traces, for trained cuts of one
# model, across deadlines and trace scales (docs/results.md, "Adaptive partitioning on a
# ResNet"). Needs the outputs of scripts/results/fashion_mnist.sh (base.clio and the per-cut
# profiles cutK.profile.json) in DIR.
#
#   scripts/results/adaptive_sweep.sh DIR [OUT]      (OUT default: DIR/adaptive)
#
# Environment: CLIO (binary), TARGET (stm32f7), CUTS ("2 4 6": the trained cuts, all deployed),
# DEADLINES ("30 35 40 50" ms), SCALES ("0.4 0.6 1.0": trace bandwidth multipliers),
# SWITCH_MS (20), WINDOW_S (60), BAND (20k:2M, the plan's band), TRACES
# (../shared/traces/hsdpa-3g-norway).
set -euo pipefail
DIR=${1:?usage: adaptive_sweep.sh DIR [OUT]}
OUT=${2:-$DIR/adaptive}
CLIO=${CLIO:-target/release/clio}
TARGET=${TARGET:-stm32f7}
CUTS=${CUTS:-"2 4 6"}
DEADLINES=${DEADLINES:-"30 35 40 50"}
SCALES=${SCALES:-"0.4 0.6 1.0"}
SWITCH_MS=${SWITCH_MS:-20}
WINDOW_S=${WINDOW_S:-60}
BAND=${BAND:-20k:2M}
TRACES=${TRACES:-../shared/traces/hsdpa-3g-norway}
mkdir -p "$OUT"
python3 - "$DIR" "$OUT/profile.json" $CUTS <<'PY'
import json, sys
d, out, cuts = sys.argv[1], sys.argv[2], sys.argv[3:]
entries = [e for k in cuts for e in json.load(open(f"{d}/cut{k}.profile.json"))["entries"]]
json.dump({"entries": entries}, open(out, "w"), indent=1)
PY
traces=()
for t in "$TRACES"/*; do traces+=(--trace "$t"); done
deploy=$(echo $CUTS | tr ' ' ',')
for d in $DEADLINES; do
  "$CLIO" plan "$DIR/base.clio" --latency-ms "$d" --bandwidth "$BAND" --link ble --target "$TARGET" \
    -o "$OUT/plan_$d.json" > /dev/null
  for sc in $SCALES; do
    common=(--plan "$OUT/plan_$d.json" --profile "$OUT/profile.json" "${traces[@]}" --scale "$sc" --link ble
      --switch-ms "$SWITCH_MS" --window-s "$WINDOW_S" --deploy "$deploy" --json)
    for est in mean distribution; do
      "$CLIO" simulate "${common[@]}" --estimator "$est" > "$OUT/sim_${d}_${sc}_$est.json"
    done
    for k in $CUTS; do
      "$CLIO" simulate "${common[@]}" --fixed-cut "$k" > "$OUT/sim_${d}_${sc}_fixed$k.json"
    done
  done
done
python3 - "$OUT" "$DEADLINES" "$SCALES" "$CUTS" <<'PY' | tee "$OUT/table.md"
import json, sys
out, deadlines, scales, cuts = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
def totals(path):
    acc = {}
    for trace in json.load(open(path)):
        for s in trace["results"]:
            a = acc.setdefault(s["strategy"], [0.0, 0, 0])
            a[0] += s["mean_accuracy"] * s["frames"]; a[1] += s["frames"]; a[2] += s["switches"]
    return {k: (100 * v[0] / max(v[1], 1), v[2]) for k, v in acc.items()}
head = ["deadline", "trace scale"] + [f"fixed cut {k}" for k in cuts] + [
    "best fixed per trace", "adaptive (mean)", "adaptive (distribution)", "oracle"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * 2 + "---:|" * (len(head) - 2))
for d in deadlines:
    for sc in scales:
        m = totals(f"{out}/sim_{d}_{sc}_mean.json")
        dist = totals(f"{out}/sim_{d}_{sc}_distribution.json")
        fixed = [totals(f"{out}/sim_{d}_{sc}_fixed{k}.json")["fixed"][0] for k in cuts]
        row = [f"{d} ms", f"x{sc}"] + [f"{v:.2f}" for v in fixed] + [
            f"{m['fixed'][0]:.2f}", f"{m['adaptive'][0]:.2f} ({m['adaptive'][1]} sw)",
            f"{dist['adaptive'][0]:.2f} ({dist['adaptive'][1]} sw)", f"{m['oracle'][0]:.2f} ({m['oracle'][1]} sw)"]
        print("| " + " | ".join(row) + " |")
PY
