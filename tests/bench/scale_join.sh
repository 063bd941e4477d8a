#!/usr/bin/env bash
# A fresh node joins a built chain from a certified snapshot: the second
# half of `make bench-scale` (tests/bench/scale.sh calls it), and on its own
# the join of a chain that scale.sh kept (SCALE_KEEP=1, or SCALE_JOIN=0):
#   SCALE_DIR=/work/sc50 bash tests/bench/scale_join.sh
# Validator 0 must be stopped. Its store is compacted once to measure the
# bytes per credential (store_stats --compact), its state exported (midctl
# snapshot export), and it is restarted; one more block is committed, and
# the observer, with an empty data dir, starts with `midnode
# --import-snapshot` (certificate checked against genesis, state root
# rebuilt, indexes checked, the rebuilt tree kept) and must catch up and
# answer for the credentials of that block. The join is that start; the
# export is reported beside it. Writes build/bench/scale_join.json.
#   SCALE_DIR         the kept work directory (required)
#   SCALE_BATCH       issuances of the block after the snapshot (default 1000)
#   SCALE_SETTLE_MAX  seconds to wait for the validator's start (default 600)
#   SCALE_COMPACT=0   skip the compacted figure (a full compaction: minutes at 50 M)
#   SCALE_JOIN_READ_CACHE_MB  sets both nodes' limits.read_cache_mb first
#                     (two large nodes on one machine: each node's tree is
#                     in memory, about 150 bytes per credential)
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=$ROOT/build/bin
PY=/usr/bin/python3
W=${SCALE_DIR:?set SCALE_DIR to the kept work directory}
BATCH=${SCALE_BATCH:-1000}
SETTLE_MAX=${SCALE_SETTLE_MAX:-600}
COMPACT=${SCALE_COMPACT:-1}
OUT=$ROOT/build/bench
mkdir -p "$OUT"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -f "$W/state.snap"
}
trap cleanup EXIT
say() { echo "scale: $*" >&2; }
die() { say "$*"; exit 1; }
[ -f "$W/tn/testnet.json" ] || die "$W/tn/testnet.json: no kept chain there"
[ -x "$BIN/midbench" ] && [ -x "$BIN/midnode" ] && [ -x "$BIN/midctl" ] || die "build first (make)"
. "$(dirname "$0")/lib.sh"
now() { date +%s.%N; }
elapsed() { $PY -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$2"; }
kib() { awk -v k="$2" '$1 == k":" {printf "%.1f", $2 / 1024}' "/proc/$1/status"; } # PID VmRSS|VmHWM -> MB

# Validators first, the observer (the joining node) last.
mapfile -t HOMES < <($PY -c 'import json,sys; [print(n["home"]) for n in json.load(open(sys.argv[1]))["nodes"]]' "$W/tn/testnet.json")
mapfile -t RPCS < <($PY -c 'import json,sys; [print(n["rpc"]) for n in json.load(open(sys.argv[1]))["nodes"]]' "$W/tn/testnet.json")
LAST=$((${#HOMES[@]} - 1))
OBS_HOME=${HOMES[$LAST]} OBS_RPC=${RPCS[$LAST]}
"$BIN/midctl" --node "${RPCS[0]}" info >/dev/null 2>&1 && die "validator 0 (${RPCS[0]}) is running: stop it first"
[ -e "$OBS_HOME/data" ] && [ -n "$(ls -A "$OBS_HOME/data" 2>/dev/null)" ] && die "$OBS_HOME/data is not empty: the observer must join from nothing"
if [ -n "${SCALE_JOIN_READ_CACHE_MB:-}" ]; then
  for h in "${HOMES[0]}" "$OBS_HOME"; do
    set_read_cache_mb "$h" "$SCALE_JOIN_READ_CACHE_MB" || die "cannot set read_cache_mb in $h"
  done
fi

# The store once compacted (no write-ahead log, no overwritten entries).
COMPACT_BYTES=0
if [ "$COMPACT" = 1 ]; then
  if [ -x "$BIN/store_stats" ] && "$BIN/store_stats" --compact "${HOMES[0]}/data" >"$W/store_stats.txt" 2>&1; then
    COMPACT_BYTES=$(tail -n 1 "$W/store_stats.txt" | $PY -c 'import json,sys; print(json.load(sys.stdin)["bytes_compacted"])')
    say "compacted store: $COMPACT_BYTES B ($(grep -A20 'after compaction' "$W/store_stats.txt" | grep '^  all'))"
  else
    say "no compacted figure (build/bin/store_stats missing or failed)"
  fi
fi
t0=$(now)
"$BIN/midctl" --json snapshot export --home "${HOMES[0]}" --file "$W/state.snap" >"$W/export.json" ||
  die "snapshot export failed: $(cat "$W/export.json")"
t1=$(now)
EXPORT_S=$(elapsed "$t0" "$t1")
SNAP_BYTES=$(stat -c %s "$W/state.snap")
say "exported $SNAP_BYTES bytes in ${EXPORT_S} s"
# The validators serve before the new node imports: a node joins a running
# chain, and the two do not share the cores while timed.
for i in $(seq 0 $((LAST - 1))); do
  "$BIN/midctl" --node "${RPCS[$i]}" info >/dev/null 2>&1 && continue # scale.sh's, still running
  "$BIN/midnode" --home "${HOMES[$i]}" >>"$W/node$i.log" 2>&1 &
  PIDS+=($!)
  [ "$i" = 0 ] && NODE0=$!
done
wait_rpc "${RPCS[0]}" 900 # a 50 M node builds its tree first
# ... and has finished its own start (the read cache's warm-up), as a node
# serving for a while has.
waited=$(settle "$SETTLE_MAX" "$NODE0") && say "validator restarted and settled after ${waited}s" ||
  say "validator still busy after ${waited}s: importing anyway"
# A new block after the snapshot, so the new node must also sync past it.
"$BIN/midbench" preload --testnet "$W/tn" --node "${RPCS[0]}" --seed 99 --count "$BATCH" --batch "$BATCH" \
  --connections 1 --json >/dev/null || die "issuance after the snapshot failed"
target=$("$BIN/midctl" --node "${RPCS[0]}" --json info | $PY -c 'import json,sys; print(json.load(sys.stdin)["height"])')
t2=$(now)
"$BIN/midnode" --home "$OBS_HOME" --import-snapshot "$W/state.snap" >"$W/observer.log" 2>&1 &
OBS=$!
PIDS+=($OBS)
deadline=$((SECONDS + 3600))
until h=$("$BIN/midctl" --node "$OBS_RPC" --json info 2>/dev/null | $PY -c 'import json,sys; print(json.load(sys.stdin)["height"])' 2>/dev/null) &&
  [ "${h:-0}" -ge "$target" ]; do
  [ $SECONDS -ge $deadline ] && die "the observer did not reach height $target (see $W/observer.log)"
  kill -0 "$OBS" 2>/dev/null || die "the observer stopped (see $W/observer.log)"
  sleep 0.2
done
t3=$(now)
OBS_PEAK_MB=$(kib "$OBS" VmHWM) OBS_RSS_MB=$(kib "$OBS" VmRSS) VAL_RSS_MB=$(kib "$NODE0" VmRSS)
# The import's own figures, from the node's snapshot_imported line.
$PY - "$W/observer.log" "$OUT/scale_import.json" <<'PYEOF' || die "no snapshot_imported line in $W/observer.log"
import json, re, sys
line = next(l for l in open(sys.argv[1]) if "snapshot_imported" in l)
f = dict(re.findall(r"(\w+)=(\S+)", line))
json.dump({k: int(f[k]) for k in ("height", "records", "load_ms", "tree_ms", "index_ms", "ms")}, open(sys.argv[2], "w"))
PYEOF
IMPORT_S=$($PY -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["ms"] / 1000, 1))' "$OUT/scale_import.json")
JOIN_S=$(elapsed "$t2" "$t3")
CATCHUP_S=$($PY -c "print(round($JOIN_S - $IMPORT_S, 1))")
say "snapshot of height $(jget "$OUT/scale_import.json" height): the new node imported it in ${IMPORT_S} s" \
  "(load $(jget "$OUT/scale_import.json" load_ms) ms, tree $(jget "$OUT/scale_import.json" tree_ms) ms," \
  "indexes $(jget "$OUT/scale_import.json" index_ms) ms) and was at height $h ${JOIN_S} s after its launch;" \
  "its RSS $OBS_RSS_MB MB (peak $OBS_PEAK_MB), the validator's $VAL_RSS_MB MB"
"$BIN/midbench" status --node "$OBS_RPC" --seed 99 --count "$BATCH" --miss-ratio 0 --connections 4 --duration 1 \
  --json >"$W/obs_status.json" || die "status on the observer failed"
[ "$(jget "$W/obs_status.json" errors)" = 0 ] && [ "$(jget "$W/obs_status.json" hits)" -gt 0 ] ||
  die "the observer does not answer for credentials issued after the snapshot"
say "observer answering"
$PY - "$OUT/scale_join.json" <<PYEOF
import json, sys
json.dump({"snapshot_bytes": $SNAP_BYTES, "snapshot_export_s": $EXPORT_S, "snapshot_import_s": $IMPORT_S,
           "join_catchup_s": $CATCHUP_S, "compacted_bytes": $COMPACT_BYTES,
           "observer_rss_mb": $OBS_RSS_MB, "observer_peak_rss_mb": $OBS_PEAK_MB, "validator_rss_mb": $VAL_RSS_MB},
          open(sys.argv[1], "w"), indent=1)
PYEOF
