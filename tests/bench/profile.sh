#!/usr/bin/env bash
# Profiles one validator of a local 4-validator cluster with `perf record`
# while midbench loads it: first commits (256 in flight), then GetStatus
# (50 connections). Prints the top entries of each profile, and the shares
# by library. Not part of `make test`.   PROFILE_SECONDS (default 10),
# PROFILE_CREDS (default 5000; from 200,000 up preloaded in ISSUE_BATCH
# transactions of 1,000 and left to settle, as `make bench` does).
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=$PWD/build/bin
PY=/usr/bin/python3
SECS=${PROFILE_SECONDS:-10}
CREDS=${PROFILE_CREDS:-5000}
OUT=$PWD/build/bench
mkdir -p "$OUT"
W=$(mktemp -d /tmp/midprof.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
command -v perf >/dev/null || { echo "profile: perf is not installed (apt-get install linux-perf)"; exit 1; }
base=$($PY -c 'import random; print(random.randint(20000, 59000))')
"$BIN/midctl" testnet --dir "$W/tn" --validators 4 --base-port "$base" >/dev/null || exit 1
mapfile -t HOMES < <($PY -c 'import json,sys; [print(n["home"]) for n in json.load(open(sys.argv[1]))["nodes"]]' "$W/tn/testnet.json")
mapfile -t RPCS < <($PY -c 'import json,sys; [print(n["rpc"]) for n in json.load(open(sys.argv[1]))["nodes"]]' "$W/tn/testnet.json")
for h in "${HOMES[@]}"; do "$BIN/midnode" --home "$h" >>"$W/nodes.log" 2>&1 & PIDS+=($!); done
for a in "${RPCS[@]}"; do
  until "$BIN/midctl" --node "$a" info >/dev/null 2>&1; do sleep 0.2; done
done
MB="$BIN/midbench --testnet $W/tn --node ${RPCS[0]}"
if [ "$CREDS" -ge 200000 ]; then
  $MB preload --count "$CREDS" --batch 1000 --connections 8 --timeout-ms 120000 | head -1
  echo "settled after $(settle 900 "${PIDS[@]}")s"
else
  $MB preload --count "$CREDS" --connections 16 --depth 64 | head -1
fi
report() {
  perf report -i "$1" --stdio --no-children --sort symbol 2>/dev/null | grep -E '^ +[0-9]' | head -25
  echo "-- by library"
  perf report -i "$1" --stdio --no-children --sort dso 2>/dev/null | grep -E '^ +[0-9]' | head -10
}

echo "== commits: validator 0, 256 in flight"
perf record -q -F 499 -g -o "$OUT/perf-commit.data" -p "${PIDS[0]}" -- sleep "$SECS" 2>/dev/null &
pp=$!
$MB submit --connections 16 --depth 16 --duration "$SECS" | head -2
wait $pp
report "$OUT/perf-commit.data"

echo "== GetStatus: validator 0, 50 connections x 1"
perf record -q -F 499 -g -o "$OUT/perf-status.data" -p "${PIDS[0]}" -- sleep "$SECS" 2>/dev/null &
pp=$!
$MB status --count "$CREDS" --connections 50 --duration "$SECS" | head -2
wait $pp
report "$OUT/perf-status.data"
