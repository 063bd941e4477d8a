#!/usr/bin/env bash
# `make bench`: midnode side by side with Redis and etcd on this machine, in
# one run. Prints a table of figures and ratios and writes the same to
# build/bench/results.json. Not part of `make test`.
#   BENCH_CREDS    credentials preloaded (default 1000000; 100000 for a quick run)
#   BENCH_SECONDS  seconds per measured phase (default 10)
#   BENCH_BATCH    issuances per preload transaction (default 1 below 200000
#                  credentials, else 1000: ISSUE_BATCH, the migration path)
#   BENCH_KEEP=1   keep the work directory
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=$ROOT/build/bin
PY=/usr/bin/python3
CREDS=${BENCH_CREDS:-1000000}
SECS=${BENCH_SECONDS:-10}
if [ "$CREDS" -ge 200000 ]; then BATCH=${BENCH_BATCH:-1000}; else BATCH=${BENCH_BATCH:-1}; fi
OUT=$ROOT/build/bench
mkdir -p "$OUT"
W=$(mktemp -d /tmp/midbench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  [ "${BENCH_KEEP:-0}" = 1 ] && echo "work dir kept: $W" || rm -rf "$W"
}
trap cleanup EXIT
say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }

EXTRA_DEPS="redis-server redis-tools etcd-server etcd-client" bash tools/deps.sh || die "deps failed"
[ -x "$BIN/midbench" ] && [ -x "$BIN/midnode" ] || die "build first (make)"

. "$(dirname "$0")/lib.sh"
verifs() { # total midnode_signature_verifications over the http addrs
  local t=0 a v
  for a in "$@"; do
    v=$(curl -s "http://$a/metrics" | awk '$1 == "midnode_signature_verifications" {printf "%d", $2}')
    t=$((t + ${v:-0}))
  done
  echo $t
}
TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- midnode
base=$(free_base 12)
"$BIN/midctl" testnet --dir "$W/tn" --validators 4 --base-port "$base" >/dev/null || die "midctl testnet failed"
mapfile -t HOMES < <($PY -c 'import json,sys; [print(n["home"]) for n in json.load(open(sys.argv[1]))["nodes"]]' "$W/tn/testnet.json")
mapfile -t RPCS < <($PY -c 'import json,sys; [print(n["rpc"]) for n in json.load(open(sys.argv[1]))["nodes"]]' "$W/tn/testnet.json")
mapfile -t HTTPS < <($PY -c 'import json,sys; [print(n["http"]) for n in json.load(open(sys.argv[1]))["nodes"]]' "$W/tn/testnet.json")
NODE_PIDS=()
for i in "${!HOMES[@]}"; do
  "$BIN/midnode" --home "${HOMES[$i]}" >"$W/node$i.log" 2>&1 &
  NODE_PIDS+=($!); PIDS+=($!)
done
for a in "${RPCS[@]}"; do wait_rpc "$a"; done
say "4 validators up (ports from $base)"
MB="$BIN/midbench --testnet $W/tn --node ${RPCS[0]} --json"

say "preloading $CREDS credentials (transactions of $BATCH)"
t0=$SECONDS
if [ "$BATCH" -gt 1 ]; then
  $MB preload --count "$CREDS" --batch "$BATCH" --connections 8 --timeout-ms 120000 >"$OUT/preload.json" ||
    die "preload failed"
else
  $MB preload --count "$CREDS" --connections 16 --depth 64 >"$OUT/preload.json" || die "preload failed"
fi
preload_s=$((SECONDS - t0))
# A bulk preload leaves each validator's LevelDB with compactions to finish
# in the background; measuring while four of them compact on two cores would
# measure the preload's aftermath. Wait (up to BENCH_SETTLE_MAX seconds) until
# the validators together use under a tenth of a core over two seconds, as an
# operator's node would be some minutes after a migration.
settle_max=${BENCH_SETTLE_MAX:-900}
if settle_s=$(settle "$settle_max" "${NODE_PIDS[@]}"); then
  say "validators settled after ${settle_s}s"
else
  say "validators still busy after ${settle_s}s: measuring anyway"
fi
data_bytes=$(du -sb "${HOMES[0]}/data" | awk '{print $1}')
rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/${NODE_PIDS[0]}/status")

say "status"
$MB status --count "$CREDS" --connections 50 --depth 1 --duration "$SECS" >"$OUT/status.json" || die "status failed"
$MB status --count "$CREDS" --connections 50 --depth 16 --duration "$SECS" >"$OUT/status_pipelined.json" || die "status pipelined failed"
$MB status-proof --count "$CREDS" --connections 50 --depth 1 --duration "$SECS" >"$OUT/status_proof.json" || die "status-proof failed"

say "commit (256 in flight)"
v0=$(verifs "${HTTPS[@]}"); c0=$(cpu_ticks "${NODE_PIDS[@]}")
$MB submit --connections 16 --depth 16 --duration "$SECS" >"$OUT/submit.json" || die "submit failed"
v1=$(verifs "${HTTPS[@]}"); c1=$(cpu_ticks "${NODE_PIDS[@]}")

say "propagation at 2500 tx/s"
NODES=$(IFS=,; echo "${RPCS[*]}")
$MB propagation --rate 2500 --duration "$SECS" --connections 16 --depth 16 --nodes "$NODES" >"$OUT/propagation.json" ||
  say "propagation failed"
# The same at a tenth of the rate: what a loss report takes when the cluster keeps up.
$MB propagation --rate 250 --duration "$SECS" --connections 4 --depth 16 --nodes "$NODES" >"$OUT/propagation_250.json" ||
  say "propagation at 250/s failed"
for p in "${NODE_PIDS[@]}"; do kill "$p"; done
for p in "${NODE_PIDS[@]}"; do wait "$p" 2>/dev/null; done
# The same store once LevelDB has compacted it (no write-ahead log, no
# overwritten tree nodes): validator 0's data dir, now that it is stopped,
# per credential it holds (the later phases issued some more).
if [ -x "$BIN/store_stats" ]; then
  "$BIN/store_stats" --compact "${HOMES[0]}/data" >"$W/store_stats.txt" 2>&1 || say "store_stats failed"
  tail -n 1 "$W/store_stats.txt" >"$OUT/store_stats.json"
  grep -v '^{' "$W/store_stats.txt" >&2
else
  say "no $BIN/store_stats (make build/bin/store_stats): no compacted figure"
  echo '{}' >"$OUT/store_stats.json"
fi

# ---------------------------------------------------------------- redis
rport=$(free_base 1)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >"$W/redis.log" 2>&1 &
RPID=$!; PIDS+=($RPID)
until redis-cli -p "$rport" ping >/dev/null 2>&1; do sleep 0.1; done
say "redis: preloading $CREDS keys"
$PY - "$CREDS" <<'PYEOF' | redis-cli -p "$rport" --pipe >/dev/null
import sys
n = int(sys.argv[1]); v = "x" * 200; out = sys.stdout
for i in range(n):
    k = "key:%012d" % i
    out.write("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
PYEOF
rcount=$(redis-cli -p "$rport" dbsize)
reqs=$((SECS * 60000))
redis-benchmark -p "$rport" -c 50 -n "$reqs" -r "$CREDS" -t get --csv >"$OUT/redis_get.csv" 2>/dev/null
redis-benchmark -p "$rport" -c 50 -n $((reqs * 4)) -r "$CREDS" -t get -P 16 --csv >"$OUT/redis_get_pipelined.csv" 2>/dev/null
kill "$RPID"

# ---------------------------------------------------------------- etcd
eb=$(free_base 6)
CL=""
for i in 0 1 2; do CL="$CL${CL:+,}e$i=http://127.0.0.1:$((eb + 2 * i + 1))"; done
ETCD_PIDS=()
for i in 0 1 2; do
  etcd --name "e$i" --data-dir "$W/etcd$i" \
    --listen-client-urls "http://127.0.0.1:$((eb + 2 * i))" --advertise-client-urls "http://127.0.0.1:$((eb + 2 * i))" \
    --listen-peer-urls "http://127.0.0.1:$((eb + 2 * i + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((eb + 2 * i + 1))" \
    --initial-cluster "$CL" --initial-cluster-state new >"$W/etcd$i.log" 2>&1 &
  ETCD_PIDS+=($!); PIDS+=($!)
done
deadline=$((SECONDS + 60))
until ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$eb" put warmup 1 >/dev/null 2>&1; do
  [ $SECONDS -ge $deadline ] && die "etcd did not start"
  sleep 0.2
done
say "etcd: puts (256 in flight, then 2500/s)"
EB="$BIN/midbench etcd-put --node 127.0.0.1:$eb --json"
e0=$(cpu_ticks "${ETCD_PIDS[@]}")
$EB --connections 256 --duration "$SECS" >"$OUT/etcd_put.json" || die "etcd put failed"
e1=$(cpu_ticks "${ETCD_PIDS[@]}")
$EB --connections 256 --rate 2500 --duration "$SECS" >"$OUT/etcd_put_rate.json" || die "etcd put at rate failed"
for p in "${ETCD_PIDS[@]}"; do kill "$p"; done

# ---------------------------------------------------------------- table
$PY - "$OUT" "$CREDS" "$data_bytes" "$v0" "$v1" "$c0" "$c1" "$e0" "$e1" "$TCK" "$preload_s" "$rcount" "$rss_kb" "$BATCH" "$settle_s" <<'PYEOF'
import csv, json, os, platform, sys
out, creds, data_bytes, v0, v1, c0, c1, e0, e1, tck, preload_s, rcount, rss_kb, batch, settle_s = sys.argv[1:]
creds, data_bytes = int(creds), int(data_bytes)
tck = float(tck)
def j(name):
    try:
        return json.load(open(os.path.join(out, name)))
    except Exception:
        return {}
def redis_rps(name):
    try:
        rows = list(csv.reader(open(os.path.join(out, name))))
        for r in rows:
            if r and r[0] == "GET":
                return float(r[1])
    except Exception:
        pass
    return 0.0
cpu = "?"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip(); break
except OSError:
    pass
st, stp, pr, sub, prop = j("status.json"), j("status_pipelined.json"), j("status_proof.json"), j("submit.json"), j("propagation.json")
et, etr, pre = j("etcd_put.json"), j("etcd_put_rate.json"), j("preload.json")
ss = j("store_stats.json")
committed = sub.get("ops", 0)
res = {
    "machine": "%s, %d cores, %s" % (cpu, os.cpu_count() or 0, platform.platform()),
    "credentials": creds,
    "preload_s": int(preload_s), "preload_tps": pre.get("throughput", 0), "preload_batch": int(batch), "settle_s": int(settle_s),
    "status_qps": st.get("throughput", 0), "redis_get_qps": redis_rps("redis_get.csv"),
    "status_pipelined_qps": stp.get("throughput", 0), "redis_get_pipelined_qps": redis_rps("redis_get_pipelined.csv"),
    "status_proof_qps": pr.get("throughput", 0),
    "status_p99_ms": st.get("p99_ms", 0),
    "commit_tps": sub.get("throughput", 0), "commit_p50_ms": sub.get("p50_ms", 0), "commit_p99_ms": sub.get("p99_ms", 0),
    "etcd_put_tps": et.get("throughput", 0), "etcd_put_p99_ms": et.get("p99_ms", 0),
    "propagation_p50_ms": prop.get("propagation_p50_ms", 0), "propagation_p99_ms": prop.get("propagation_p99_ms", 0),
    "etcd_put_p99_at_rate_ms": etr.get("p99_ms", 0),
    "verifies_per_tx": (int(v1) - int(v0)) / 4.0 / committed if committed else 0,
    "cpu_ms_per_tx": (int(c1) - int(c0)) / tck * 1000.0 / committed if committed else 0,
    "etcd_cpu_ms_per_put": (int(e1) - int(e0)) / tck * 1000.0 / et["ops"] if et.get("ops") else 0,
    # du -sb of validator 0's data dir after the preload has settled, as LevelDB
    # left it: write-ahead log (up to the 32 MB write buffer) and tables
    # still holding overwritten tree nodes included.
    "bytes_per_credential": data_bytes / creds if creds else 0,
    # The same data dir at the end of the run, after a full compaction,
    # divided by the credentials it then holds.
    "bytes_per_credential_compacted": ss["bytes_compacted"] / ss["records"] if ss.get("records") else 0,
    "credentials_at_compaction": ss.get("records", 0),
    "redis_keys": int(rcount),
    "node_rss_mb": int(rss_kb or 0) / 1024.0,
    "propagation_p50_ms_at_250": j("propagation_250.json").get("propagation_p50_ms", 0),
    "propagation_p99_ms_at_250": j("propagation_250.json").get("propagation_p99_ms", 0),
    "errors": {k: v.get("errors", -1) for k, v in
               [("status", st), ("status_pipelined", stp), ("status_proof", pr), ("submit", sub),
                ("propagation", prop), ("propagation_250", j("propagation_250.json")), ("etcd_put", et), ("etcd_put_rate", etr), ("preload", pre)]},
}
json.dump(res, open(os.path.join(out, "results.json"), "w"), indent=2)
def num(v):  # small figures (CPU ms per transaction) keep their digits
    return "%12.3f" % v if abs(v) < 10 else "%12.1f" % v
def ratio(a, b):
    return "%.2fx" % (a / b) if b else "-"
rows = [
    ("status qps, 50 conn x 1", res["status_qps"], "redis GET", res["redis_get_qps"], ">= 1.0", lambda a, b: a / b if b else 0, 1.0, True),
    ("status qps, 50 conn x 16", res["status_pipelined_qps"], "redis GET -P 16", res["redis_get_pipelined_qps"], ">= 1.0", None, 1.0, True),
    ("status+proof qps, 50 conn", res["status_proof_qps"], "redis GET", res["redis_get_qps"], ">= 0.3", None, 0.3, True),
    ("commit tx/s, 256 in flight", res["commit_tps"], "etcd put/s", res["etcd_put_tps"], ">= 2.0", None, 2.0, True),
    ("commit p99 ms", res["commit_p99_ms"], "etcd put p99 ms", res["etcd_put_p99_ms"], "-", None, None, False),
    ("propagation p99 ms @2500/s", res["propagation_p99_ms"], "etcd put p99 @2500/s", res["etcd_put_p99_at_rate_ms"], "<= 0.5", None, 0.5, False),
    ("cpu ms per tx (4 nodes)", res["cpu_ms_per_tx"], "etcd cpu ms/put (3)", res["etcd_cpu_ms_per_put"], "<= 1.0", None, 1.0, False),
]
print("%-30s %12s   %-22s %12s  %8s  %-8s %s" % ("midnode", "", "comparison", "", "ratio", "target", "met"))
for name, a, cname, b, tgt, _, lim, higher in rows:
    r = a / b if b else 0
    met = "-" if lim is None or not b else ("yes" if (r >= lim if higher else r <= lim) else "no")
    print("%-30s %s   %-22s %s  %8s  %-8s %s" % (name, num(a), cname, num(b), ratio(a, b), tgt, met))
print("%-30s %12.2f   (floor 1.0, target <= 1.05: %s)" % ("verifies per tx per node", res["verifies_per_tx"], "yes" if 0 < res["verifies_per_tx"] <= 1.05 else "no"))
print("%-30s %12.0f   (du after preload and settle; target <= 400: %s)" % ("bytes per credential", res["bytes_per_credential"], "yes" if res["bytes_per_credential"] <= 400 else "no"))
print("%-30s %12.0f   (compacted, %d credentials; target <= 400: %s)" % ("bytes per credential", res["bytes_per_credential_compacted"],
      res["credentials_at_compaction"], "yes" if 0 < res["bytes_per_credential_compacted"] <= 400 else "no"))
print("%-30s %12.1f / %.1f ms" % ("commit p50 / p99", res["commit_p50_ms"], res["commit_p99_ms"]))
print("%-30s %12.1f / %.1f ms" % ("propagation p50 / p99", res["propagation_p50_ms"], res["propagation_p99_ms"]))
print("%-30s %12.1f / %.1f ms" % ("propagation p50 / p99 @250/s", res["propagation_p50_ms_at_250"], res["propagation_p99_ms_at_250"]))
print("credentials %d (preload %ss, %d per transaction); machine: %s" % (creds, preload_s, int(batch), res["machine"]))
print("errors: %s" % json.dumps(res["errors"]))
print("written: %s" % os.path.join(out, "results.json"))
PYEOF
