#!/usr/bin/env bash
# make demo: a local 4-validator cluster on 127.0.0.1, one credential issued,
# the carrier's loss report, and the credential read as SUSPENDED, with a
# verified proof, on every node. The cluster is stopped at the end (also on
# failure or Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/bin
dir=$(mktemp -d /tmp/midnode-demo-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  echo "demo: cluster stopped; files kept in $dir"
}
trap cleanup EXIT INT TERM

free_base() {
  for _ in $(seq 1 100); do
    local base=$(( (RANDOM % 120) * 100 + 20000 )) ok=1  # below the ephemeral port range
    for p in $(seq "$base" $((base + 15))); do
      if (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null; then ok=0; break; fi
    done
    [ $ok -eq 1 ] && { echo "$base"; return; }
  done
  echo 26600
}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

base=$(free_base)
step "writing a 4-validator testnet to $dir (ports from $base)"
$BIN/midctl testnet --dir "$dir" --validators 4 --base-port "$base" >/dev/null
rpc=()
for i in 0 1 2 3; do rpc+=("127.0.0.1:$((base + 3 * i + 1))"); done
names=(mois skt kt lgu)

step "starting mois, skt, kt and lgu"
for n in "${names[@]}"; do
  $BIN/midnode --home "$dir/$n" 2>"$dir/$n.log" &
  pids+=($!)
done

wait_for() { # $1 seconds, rest: command that must succeed
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then echo "demo: timed out waiting for: $*" >&2; return 1; fi
    sleep 0.2
  done
}
height_at_least() { local h; h=$($BIN/midctl --node "$1" --json info | sed -E 's/.*"height": ?([0-9]+).*/\1/'); [ "$h" -ge "$2" ]; }
for r in "${rpc[@]}"; do wait_for 30 height_at_least "$r" 1; done
$BIN/midctl --node "${rpc[0]}" info

cred=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
holder=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
device=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')

step "the Interior ministry (mois) issues a resident card on a phone of SKT's network"
$BIN/midctl --node "${rpc[0]}" issue --key "$dir/keys/mois.key" --type resident \
  --credential "$cred" --holder "$holder" --device "$device" --carrier skt --wait

step "a bank asks another node (kt) and verifies the answer against genesis"
$BIN/midctl --node "${rpc[2]}" status "$cred" --verify --genesis "$dir/genesis.json" --max-age 30

step "the phone is lost: SKT files the loss report"
$BIN/midctl --node "${rpc[1]}" report-loss --key "$dir/keys/skt.key" --device "$device" --wait

step "every node now answers SUSPENDED, with a proof checked against the validators' keys"
for i in 0 1 2 3; do
  wait_for 10 bash -c "$BIN/midctl --node ${rpc[$i]} --json status $cred | grep -q SUSPENDED"
  printf '%-5s ' "${names[$i]}"
  $BIN/midctl --node "${rpc[$i]}" status "$cred" --verify --genesis "$dir/genesis.json" --max-age 30
done

step "a forged answer is refused: verifying against another chain's genesis"
other=$(mktemp -d /tmp/midnode-demo-other-XXXXXX)
$BIN/midctl testnet --dir "$other" --validators 4 --base-port "$base" >/dev/null
if $BIN/midctl --node "${rpc[0]}" status "$cred" --verify --genesis "$other/genesis.json"; then
  echo "demo: ERROR: a proof verified against the wrong genesis" >&2; exit 1
fi
rm -rf "$other"
step "done"
