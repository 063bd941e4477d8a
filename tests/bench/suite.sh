#!/usr/bin/env bash
# midbench against a real one-validator chain: every workload runs for a
# moment and its JSON must show work done and no errors. Also checks that
# usage errors exit 2. Last line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BENCH_BIN:-build/bin} # BENCH_BIN=build/asan/bin runs the sanitizer build
PY=/usr/bin/python3
pass=0
fail=0
tmp=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok - $1"; }
ko() { fail=$((fail + 1)); echo "not ok - $1"; [ -n "${2:-}" ] && echo "$2" | head -20; }

# Three consecutive free ports (p2p, rpc, http).
. tests/bench/lib.sh
base=$(free_base 3)
if [ -z "$base" ] || [ ! -x $BIN/midbench ] || [ ! -x $BIN/midnode ]; then
  ko "set-up (binaries or free ports missing)"
  echo "$pass passed, $fail failed"; exit 0
fi
rpc="127.0.0.1:$((base + 1))"
$BIN/midctl testnet --dir "$tmp/tn" --validators 1 --base-port "$base" >/dev/null 2>"$tmp/testnet.err" ||
  { ko "midctl testnet" "$(cat "$tmp/testnet.err")"; echo "$pass passed, $fail failed"; exit 0; }
home=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"][0]["home"])' "$tmp/tn/testnet.json")
$BIN/midnode --home "$home" >"$tmp/node.log" 2>&1 &
pid=$!
deadline=$((SECONDS + 20))
until $BIN/midctl --node "$rpc" info >/dev/null 2>&1; do
  if [ $SECONDS -ge $deadline ] || ! kill -0 "$pid" 2>/dev/null; then
    ko "node starts" "$(tail -20 "$tmp/node.log")"; echo "$pass passed, $fail failed"; exit 0
  fi
  sleep 0.1
done
ok "node starts"

# check NAME JSON-FILE PYTHON-EXPR: the expression over j (the parsed JSON) must hold.
check() {
  local name=$1 file=$2 expr=$3
  if $PY -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($expr) else 1)" "$file" 2>/dev/null; then
    ok "$name"
  else
    ko "$name" "$(cat "$file" "$file.err" 2>/dev/null)"
  fi
}

B="$BIN/midbench --testnet $tmp/tn --node $rpc --json"
$B preload --count 300 --connections 4 --depth 16 >"$tmp/preload.json" 2>"$tmp/preload.json.err"
check "preload issues every credential" "$tmp/preload.json" 'j["ops"] == 300 and j["errors"] == 0 and j["p99_ms"] > 0'

$B status --count 300 --duration 1 --connections 4 --depth 4 >"$tmp/status.json" 2>"$tmp/status.json.err"
check "status: hits and misses, no errors" "$tmp/status.json" \
  'j["ops"] > 0 and j["errors"] == 0 and j["hits"] > 0 and j["misses"] > 0 and j["throughput"] > 0 and 0 < j["p50_ms"] <= j["p90_ms"] <= j["p99_ms"] <= j["max_ms"]'

$B status-proof --count 300 --duration 1 --connections 2 >"$tmp/proof.json" 2>"$tmp/proof.json.err"
check "status-proof" "$tmp/proof.json" 'j["ops"] > 0 and j["errors"] == 0 and j["hits"] > 0'

$B status --count 300 --duration 1 --connections 2 --rate 200 >"$tmp/rate.json" 2>"$tmp/rate.json.err"
check "fixed rate holds the offered rate" "$tmp/rate.json" 'j["mode"] == "rate" and j["errors"] == 0 and 120 <= j["ops"] <= 260'

$B submit --duration 1 --connections 2 --depth 8 >"$tmp/submit.json" 2>"$tmp/submit.json.err"
check "submit commits" "$tmp/submit.json" 'j["ops"] > 0 and j["errors"] == 0 and j["p50_ms"] > 0'

$B submit --duration 1.5 --connections 2 --depth 8 --loss-share 0.25 --revoke-share 0.25 >"$tmp/mix.json" 2>"$tmp/mix.json.err"
check "submit mix: issuances, loss reports and revocations commit" "$tmp/mix.json" \
  'j["ops"] > 0 and j["errors"] == 0 and j["issued"] > 0 and j["loss_reports"] > 0 and j["revocations"] > 0'

$B propagation --rate 100 --duration 1 --connections 2 --depth 8 >"$tmp/prop.json" 2>"$tmp/prop.json.err"
check "propagation: every loss report read SUSPENDED" "$tmp/prop.json" \
  'j["loss_reports"] > 0 and j["propagated"] == j["loss_reports"] and j["errors"] == 0 and j["nodes"] == 1 and j["propagation_p99_ms"] > 0 and j["read_back"] == j["propagated"] * j["nodes"]'

# Usage errors exit 2; a node that is not there exits 1.
$BIN/midbench >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "no workload exits 2" || ko "no workload exits 2 (got $rc)"
$BIN/midbench status --depth zero >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "bad value exits 2" || ko "bad value exits 2 (got $rc)"
$BIN/midbench submit >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "submit without --testnet exits 2" || ko "submit without --testnet exits 2 (got $rc)"
$BIN/midbench status --node 127.0.0.1:1 --duration 0.1 --json >"$tmp/down.json" 2>/dev/null; rc=$?
[ $rc -eq 1 ] && ok "unreachable node exits 1" || ko "unreachable node exits 1 (got $rc)"

echo "$pass passed, $fail failed"
