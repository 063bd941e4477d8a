#!/usr/bin/env bash
# `make bench-scale`: builds a state of SCALE_CREDS credentials through the
# ledger's own rules (ISSUE_BATCH transactions, `midbench preload --batch`)
# on a local chain and measures, at SCALE_MID credentials and again at
# SCALE_CREDS: GetStatus throughput and p99 (plain and with proof), build
# time and rate, disk bytes per credential (du -sb of the data dir, and at
# the end after a full compaction) and the validator's RSS. Then a fresh
# node joins from a certified snapshot (tests/bench/scale_join.sh): the
# validator is stopped, its state exported (midctl snapshot export) and the
# validator restarted; one more block is committed, and an observer with an
# empty data dir starts with `midnode --import-snapshot` (certificate
# checked against genesis, state root rebuilt, indexes checked, the rebuilt
# tree kept) and must catch up and answer. The join is that start; the
# export is reported beside it.
# Prints a summary and writes build/bench/scale.json.
# Not part of `make test`; at the default 50 M it takes hours on 2 cores.
#   SCALE_CREDS       credentials to build (default 50000000)
#   SCALE_MID         the comparison point (default 1000000; capped at SCALE_CREDS)
#   SCALE_CHUNK       credentials per preload step (default 1000000)
#   SCALE_VALIDATORS  validators of the chain (default 1)
#   SCALE_BATCH       issuances per ISSUE_BATCH (default 1000)
#   SCALE_CONN        preload connections (default 8)
#   SCALE_SECONDS     seconds per status measurement (default 10; status is
#                     read twice, the first pass reported beside the figure)
#   SCALE_BUDGET_S    stop building after this many seconds (at the end of a
#                     step) and measure at the size reached (default 0: none)
#   SCALE_READ_CACHE_MB  the nodes' limits.read_cache_mb (default 4096: about
#                     eight million credentials kept in memory)
#   SCALE_SETTLE_MAX  seconds to wait for the validator's compactions before
#                     each measurement (default 600)
#   SCALE_JOIN=0      skip the snapshot join (run it later on the kept
#                     directory: SCALE_DIR=DIR bash tests/bench/scale_join.sh)
#   SCALE_JOIN_READ_CACHE_MB  both nodes' read cache for the join (see scale_join.sh)
#   SCALE_DIR         work directory (default a new /tmp/midscale.*)
#   SCALE_KEEP=1      keep the work directory (the built chain)
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=$ROOT/build/bin
PY=/usr/bin/python3
CREDS=${SCALE_CREDS:-50000000}
MID=${SCALE_MID:-1000000}
CHUNK=${SCALE_CHUNK:-1000000}
VALS=${SCALE_VALIDATORS:-1}
BATCH=${SCALE_BATCH:-1000}
CONN=${SCALE_CONN:-8}
SECS=${SCALE_SECONDS:-10}
BUDGET=${SCALE_BUDGET_S:-0}
JOIN=${SCALE_JOIN:-1}
SETTLE_MAX=${SCALE_SETTLE_MAX:-600}
READ_CACHE_MB=${SCALE_READ_CACHE_MB:-4096}
export SCALE_READ_CACHE_MB_USED=$READ_CACHE_MB
[ "$MID" -gt "$CREDS" ] && MID=$CREDS
[ "$CHUNK" -gt "$MID" ] && CHUNK=$MID
OUT=$ROOT/build/bench
mkdir -p "$OUT"
W=${SCALE_DIR:-$(mktemp -d /tmp/midscale.XXXXXX)}
mkdir -p "$W"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  [ "${SCALE_KEEP:-0}" = 1 ] && echo "scale: work dir kept: $W" >&2 || rm -rf "$W"
}
trap cleanup EXIT
say() { echo "scale: $*" >&2; }
die() { say "$*"; exit 1; }
[ -x "$BIN/midbench" ] && [ -x "$BIN/midnode" ] && [ -x "$BIN/midctl" ] || die "build first (make)"

. "$(dirname "$0")/lib.sh"
now() { date +%s.%N; }
elapsed() { $PY -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$2"; }

# Validators first, then one observer: the node that joins from the snapshot.
base=$(free_base $((3 * VALS + 3)))
"$BIN/midctl" testnet --dir "$W/tn" --validators "$VALS" --observers 1 --base-port "$base" >/dev/null ||
  die "midctl testnet failed"
mapfile -t HOMES < <($PY -c 'import json,sys; [print(n["home"]) for n in json.load(open(sys.argv[1]))["nodes"]]' "$W/tn/testnet.json")
mapfile -t RPCS < <($PY -c 'import json,sys; [print(n["rpc"]) for n in json.load(open(sys.argv[1]))["nodes"]]' "$W/tn/testnet.json")
for h in "${HOMES[@]}"; do
  set_read_cache_mb "$h" "$READ_CACHE_MB" || die "cannot set read_cache_mb in $h"
done
OBS_HOME=${HOMES[$VALS]} OBS_RPC=${RPCS[$VALS]}
unset "HOMES[$VALS]" "RPCS[$VALS]"
for i in "${!HOMES[@]}"; do
  "$BIN/midnode" --home "${HOMES[$i]}" >"$W/node$i.log" 2>&1 &
  PIDS+=($!)
done
NODE0=${PIDS[0]}
wait_rpc "${RPCS[0]}" 120
say "$VALS validator(s) up; building $CREDS credentials in steps of $CHUNK (ISSUE_BATCH of $BATCH)"

rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$NODE0/status"; }
disk_bytes() { du -sb "${HOMES[0]}/data" 2>/dev/null | cut -f1; } # LevelDB may delete a table while du reads

# The status set is the first step's credentials (seed 100), queried at
# every size, so both measurements ask for the same keys in a larger tree.
# Measured once the validator has finished the compactions the build left
# (at most SCALE_SETTLE_MAX s), as tests/bench/run.sh does after its preload.
measure() { # $1 label
  local waited
  if waited=$(settle "$SETTLE_MAX" "$NODE0"); then say "at $1: settled after ${waited}s"
  else say "at $1: still busy after ${waited}s: measuring anyway"; fi
  # Twice: the first pass reads the set into the node's record cache where
  # the build's later steps pushed it out (cold), the second is the
  # figure, as at SCALE_MID, where the set had just been written.
  "$BIN/midbench" status --node "${RPCS[0]}" --seed 100 --count "$CHUNK" --connections 50 --depth 1 \
    --duration "$SECS" --json >"$OUT/scale_status_$1_first.json" || die "status at $1 failed"
  "$BIN/midbench" status --node "${RPCS[0]}" --seed 100 --count "$CHUNK" --connections 50 --depth 1 \
    --duration "$SECS" --json >"$OUT/scale_status_$1.json" || die "status at $1 failed"
  "$BIN/midbench" status-proof --node "${RPCS[0]}" --seed 100 --count "$CHUNK" --connections 50 --depth 1 \
    --duration "$SECS" --json >"$OUT/scale_proof_$1.json" || die "status-proof at $1 failed"
  say "at $1: status first pass $(jget "$OUT/scale_status_$1_first.json" throughput)/s p99 $(jget "$OUT/scale_status_$1_first.json" p99_ms) ms," \
    "then $(jget "$OUT/scale_status_$1.json" throughput)/s p99 $(jget "$OUT/scale_status_$1.json" p99_ms) ms;" \
    "with proof $(jget "$OUT/scale_proof_$1.json" throughput)/s p99 $(jget "$OUT/scale_proof_$1.json" p99_ms) ms;" \
    "rss $(rss_mb) MB; disk $(disk_bytes) B"
}

built=0
step=0
build_s=0
MID_RSS=0 MID_DISK=0 MID_BUILD_S=0
: >"$OUT/scale_steps.jsonl"
rm -f "$OUT/scale_import.json"
while [ "$built" -lt "$CREDS" ]; do
  n=$CHUNK
  [ $((built + n)) -gt "$CREDS" ] && n=$((CREDS - built))
  t0=$(now)
  "$BIN/midbench" preload --testnet "$W/tn" --node "${RPCS[0]}" --seed $((100 + step)) --count "$n" \
    --batch "$BATCH" --connections "$CONN" --timeout-ms 120000 --json >"$W/preload.json" || die "preload step $step failed"
  t1=$(now)
  [ "$(jget "$W/preload.json" errors)" = 0 ] || die "preload step $step had errors (see $W/node0.log)"
  dt=$(elapsed "$t0" "$t1")
  build_s=$($PY -c "print(round($build_s + $dt, 1))")
  built=$((built + n))
  step=$((step + 1))
  rate=$($PY -c "print(round($n / $dt))")
  echo "{\"credentials\": $built, \"step_s\": $dt, \"step_creds_per_s\": $rate, \"rss_mb\": $(rss_mb), \"disk_bytes\": $(disk_bytes)}" >>"$OUT/scale_steps.jsonl"
  say "$built credentials ($rate/s in this step, ${build_s} s in all)"
  if [ "$built" -eq "$MID" ]; then
    MID_BUILD_S=$build_s MID_RSS=$(rss_mb) MID_DISK=$(disk_bytes)
    measure mid
  fi
  if [ "$BUDGET" -gt 0 ] && [ "$built" -ge "$MID" ] && [ "$built" -lt "$CREDS" ] &&
    $PY -c "import sys; sys.exit(0 if $build_s >= $BUDGET else 1)"; then
    say "time budget of $BUDGET s reached: stopping at $built credentials (of $CREDS)"
    CREDS=$built
  fi
done
TOP_RSS=$(rss_mb) TOP_DISK=$(disk_bytes)
if [ "$CREDS" -gt "$MID" ]; then measure top; else
  cp "$OUT/scale_status_mid.json" "$OUT/scale_status_top.json"
  cp "$OUT/scale_status_mid_first.json" "$OUT/scale_status_top_first.json"
  cp "$OUT/scale_proof_mid.json" "$OUT/scale_proof_top.json"
fi

# ---------------------------------------------------------------- join
EXPORT_S=0 IMPORT_S=0 CATCHUP_S=0 SNAP_BYTES=0 COMPACT_BYTES=0
rm -f "$OUT/scale_join.json"
if [ "$JOIN" = 1 ]; then
  kill "$NODE0" && wait "$NODE0" 2>/dev/null
  PIDS=("${PIDS[@]:1}")
  SCALE_DIR=$W SCALE_BATCH=$BATCH SCALE_SETTLE_MAX=$SETTLE_MAX bash "$(dirname "$0")/scale_join.sh" ||
    die "the join failed"
  for k in EXPORT_S:snapshot_export_s IMPORT_S:snapshot_import_s CATCHUP_S:join_catchup_s \
    SNAP_BYTES:snapshot_bytes COMPACT_BYTES:compacted_bytes; do
    printf -v "${k%%:*}" '%s' "$(jget "$OUT/scale_join.json" "${k#*:}")"
  done
fi

$PY - "$OUT" "$CREDS" "$MID" "$VALS" "$BATCH" "$build_s" "$MID_BUILD_S" "$MID_RSS" "$MID_DISK" "$TOP_RSS" "$TOP_DISK" \
  "$EXPORT_S" "$IMPORT_S" "$CATCHUP_S" "$SNAP_BYTES" "$COMPACT_BYTES" <<'PYEOF'
import json, os, platform, sys
out, creds, mid, vals, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
build_s, mid_build_s = float(sys.argv[6]), float(sys.argv[7])
mid_rss, mid_disk, top_rss, top_disk = float(sys.argv[8]), int(sys.argv[9]), float(sys.argv[10]), int(sys.argv[11])
export_s, import_s, catchup_s, snap_bytes = float(sys.argv[12]), float(sys.argv[13]), float(sys.argv[14]), int(sys.argv[15])
compact_bytes = int(sys.argv[16])
ld = lambda n: json.load(open(os.path.join(out, n)))
sm, pm, st, pt = ld("scale_status_mid.json"), ld("scale_proof_mid.json"), ld("scale_status_top.json"), ld("scale_proof_top.json")
sm1, st1 = ld("scale_status_mid_first.json"), ld("scale_status_top_first.json")
r = {
    "machine": "%s, %d cores, %s" % (platform.processor() or platform.machine(), os.cpu_count(), platform.platform()),
    "load_avg": os.getloadavg()[0], "validators": vals, "batch": batch,
    "read_cache_mb": int(os.environ.get("SCALE_READ_CACHE_MB_USED", "0")),
    "credentials": creds, "build_s": build_s, "build_creds_per_s": round(creds / build_s) if build_s else 0,
    "bytes_per_credential": round(top_disk / creds, 1), "node_rss_mb": top_rss,
    # after a full compaction of the stopped validator's store (0: not measured, SCALE_JOIN=0)
    "bytes_per_credential_compacted": round(compact_bytes / creds, 1),
    "status_qps": st["throughput"], "status_p99_ms": st["p99_ms"],
    "status_proof_qps": pt["throughput"], "status_proof_p99_ms": pt["p99_ms"],
    "status_first_pass_qps": st1["throughput"], "status_first_pass_p99_ms": st1["p99_ms"],
    "mid_status_first_pass_qps": sm1["throughput"], "mid_status_first_pass_p99_ms": sm1["p99_ms"],
    "mid_credentials": mid, "mid_build_s": mid_build_s, "mid_bytes_per_credential": round(mid_disk / mid, 1),
    "mid_node_rss_mb": mid_rss,
    "mid_status_qps": sm["throughput"], "mid_status_p99_ms": sm["p99_ms"],
    "mid_status_proof_qps": pm["throughput"], "mid_status_proof_p99_ms": pm["p99_ms"],
    "snapshot_bytes": snap_bytes, "snapshot_export_s": export_s, "snapshot_import_s": import_s,
    # a new node's join: verified import, then start and catch up (the
    # export is the serving node's, once for every node that joins)
    "join_catchup_s": catchup_s, "join_s": round(import_s + catchup_s, 1),
}
if os.path.exists(os.path.join(out, "scale_import.json")) and import_s:
    imp = ld("scale_import.json")
    r.update({"snapshot_import_%s" % k: imp.get(k, 0) for k in ("load_ms", "tree_ms", "index_ms")})
if os.path.exists(os.path.join(out, "scale_join.json")):
    j = ld("scale_join.json")
    r.update({"join_" + k: j[k] for k in ("observer_rss_mb", "observer_peak_rss_mb", "validator_rss_mb")})
r["status_qps_ratio"] = round(r["status_qps"] / r["mid_status_qps"], 3) if r["mid_status_qps"] else 0
r["status_p99_ratio"] = round(r["status_p99_ms"] / r["mid_status_p99_ms"], 3) if r["mid_status_p99_ms"] else 0
json.dump(r, open(os.path.join(out, "scale.json"), "w"), indent=1)
print("| figure | at %s | at %s | ratio |" % (format(mid, ","), format(creds, ",")))
print("| --- | ---: | ---: | ---: |")
def row(name, a, b, fmt="{:,.1f}"):
    ratio = "%.2fx" % (b / a) if a else "-"
    print("| %s | %s | %s | %s |" % (name, fmt.format(a), fmt.format(b), ratio))
row("status queries/s, first pass over the set", sm1["throughput"], st1["throughput"], "{:,.0f}")
row("status p99 ms, first pass", sm1["p99_ms"], st1["p99_ms"], "{:.2f}")
row("status queries/s, 50 conn x 1", sm["throughput"], st["throughput"], "{:,.0f}")
row("status p99 ms", sm["p99_ms"], st["p99_ms"], "{:.2f}")
row("status with proof/s, 50 conn x 1", pm["throughput"], pt["throughput"], "{:,.0f}")
row("status with proof p99 ms", pm["p99_ms"], pt["p99_ms"], "{:.2f}")
row("build time s (cumulative)", mid_build_s, build_s)
row("disk bytes per credential", mid_disk / mid, top_disk / creds)
row("validator RSS MB", mid_rss, top_rss)
if compact_bytes:
    print("disk bytes per credential after compaction (validator stopped) at %s: %.1f" % (format(creds, ","), compact_bytes / creds))
if snap_bytes:
    print("join from a snapshot: verified import %.1f s, start and catch up %.1f s: %.1f s (export %.1f s; %s bytes, %.0f per credential)"
          % (import_s, catchup_s, import_s + catchup_s, export_s, format(snap_bytes, ","), snap_bytes / creds))
print("build rate: %s credentials/s overall (%d validator(s), batches of %d)" % (format(r["build_creds_per_s"], ","), vals, batch))
PYEOF
