#!/usr/bin/env bash
# Split execution on loopback (issue 12, point 4): the cloud server and several device programs,
# each following its own HSDPA bandwidth trace scaled into the BLE band, on real Fashion-MNIST
# test images; then the same frames through `clio simulate`, and a side-by-side comparison.
#
#   scripts/results/demo.sh [E2E_DIR]      (default results/end-to-end)
#
# Needs the outputs of scripts/results/end_to_end.sh in E2E_DIR (plan.json, profile.json and
# cutK.stm32f7/ for every chosen cut). Writes E2E_DIR/demo/: serve.log, device-TRACE.jsonl
# (one JSON line per decision and per frame), device-TRACE.json (summary), simulate.json
# (per-frame replay) and compare.md (the table in docs/results.md).
#
# Environment: CLIO (binary, target/release/clio), TRACES (directory,
# ../shared/traces/hsdpa-3g-norway), DEVICES (trace names, space-separated), SCALE (0.05),
# FRAMES (60), PERIOD_S (1), WINDOW_S (10), SWITCH_MS (20), OFFSET_S (0: trace start).
set -euo pipefail
E2E=${1:-results/end-to-end}
CLIO=${CLIO:-target/release/clio}
TRACES=${TRACES:-../shared/traces/hsdpa-3g-norway}
DEVICES=${DEVICES:-norway_tram_29 norway_metro_3 norway_train_4 norway_bus_9}
SCALE=${SCALE:-0.05}
FRAMES=${FRAMES:-60}
PERIOD_S=${PERIOD_S:-1}
WINDOW_S=${WINDOW_S:-10}
SWITCH_MS=${SWITCH_MS:-20}
OFFSET_S=${OFFSET_S:-0}
OUT="$E2E/demo"
rm -rf "$OUT"
mkdir -p "$OUT"

cuts=$(python3 -c 'import json,sys; print(" ".join(map(str, json.load(open(sys.argv[1]))["chosen"])))' "$E2E/plan.json")
deploy=()
dirs=()
for k in $cuts; do
  deploy+=(--deploy "$k=$E2E/cut$k.stm32f7")
  dirs+=("$E2E/cut$k.stm32f7")
done

# 1. The server, on a free port; its first line is `listening on ADDR (...)`.
"$CLIO" serve "${dirs[@]}" --listen 127.0.0.1:0 >"$OUT/serve.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null || true' EXIT
addr=""
for _ in $(seq 1 600); do
  addr=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$OUT/serve.log" | head -1)
  [ -n "$addr" ] && break
  kill -0 $server 2>/dev/null || { cat "$OUT/serve.log"; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "the server did not start" >&2; exit 1; }
echo "server on $addr (cuts $cuts)"

# 2. The devices, in parallel, each on its own trace and its own test images.
pids=()
i=0
for name in $DEVICES; do
  "$CLIO" device --server "$addr" --plan "$E2E/plan.json" --profile "$E2E/profile.json" "${deploy[@]}" \
    --trace "$TRACES/$name" --scale "$SCALE" --link ble --frames "$FRAMES" --period-s "$PERIOD_S" \
    --window-s "$WINDOW_S" --switch-ms "$SWITCH_MS" --trace-offset-s "$OFFSET_S" \
    --data fashion-mnist --first-image $((i * FRAMES)) --log "$OUT/device-$name.jsonl" --json \
    >"$OUT/device-$name.json" &
  pids+=($!)
  i=$((i + 1))
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done

# 3. Stop the server (SIGTERM: graceful shutdown, one summary line).
kill -TERM $server
wait $server || true
trap - EXIT
[ $status -eq 0 ] || { echo "a device program failed" >&2; exit 1; }

# 4. The same frames through the simulator, counting the protocol's bytes as the device does:
#    `Begin` = 17-byte frame head + the wire header, 17 bytes per channel group.
framing=$(python3 -c '
import json, sys, math
d = json.load(open(sys.argv[1]))["device"]["output"]
header = d["bytes"] - math.prod(d["shape"][1:])
print(f"{17 + header}:17")' "${dirs[0]}/manifest.json")
traces=()
for name in $DEVICES; do traces+=(--trace "$TRACES/$name"); done
"$CLIO" simulate --plan "$E2E/plan.json" --profile "$E2E/profile.json" "${traces[@]}" --scale "$SCALE" \
  --link ble --period-s "$PERIOD_S" --window-s "$WINDOW_S" --switch-ms "$SWITCH_MS" \
  --frames "$FRAMES" --start-s "$OFFSET_S" --framing "$framing" --json --per-frame >"$OUT/simulate.json"

# 5. Side by side.
python3 "$(dirname "$0")/demo_compare.py" "$OUT" --plan "$E2E/plan.json" --profile "$E2E/profile.json" \
  --switch-ms "$SWITCH_MS" --framing "$framing" $DEVICES
