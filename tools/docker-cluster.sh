#!/usr/bin/env bash
# docker-cluster.sh: starts and removes the docker/compose.yaml cluster.
#
# Usage: tools/docker-cluster.sh up|down|ps
#   up    makes the node homes when missing (midctl testnet --hosts ...),
#         creates the containers, copies each home into its volume (owned
#         by uid 10001, keys stay 0600) unless the volume already holds
#         one, starts them and waits until all five are healthy.
#   down  removes containers, network, volumes and the node homes.
#   ps    lists the cluster's containers.
# Environment: COMPOSE_PROJECT_NAME (default midnode), MIDNODE_NET_DIR
# (default build/docker-net), MIDNODE_UP_TIMEOUT seconds (default 120),
# MIDCTL (default build/bin/midctl), and the variables docker/compose.yaml
# reads (MIDNODE_IMAGE, MIDNODE_RESTART, *_RPC_PORT, *_HTTP_PORT).
set -euo pipefail
cd "$(dirname "$0")/.."

project=${COMPOSE_PROJECT_NAME:-midnode}
net=${MIDNODE_NET_DIR:-build/docker-net}
midctl=${MIDCTL:-build/bin/midctl}
timeout=${MIDNODE_UP_TIMEOUT:-120}
nodes=(mois skt kt lgu obs1)

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose)
else
  echo "docker-cluster: neither 'docker compose' nor docker-compose is installed" >&2
  exit 1
fi
dc() { "${compose[@]}" --project-name "$project" --file docker/compose.yaml "$@"; }

# docker-compose itself takes seconds per call: look containers up by label.
container() {
  docker ps -aq --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$1" | head -n 1
}

up() {
  if [ ! -f "$net/genesis.json" ]; then
    "$midctl" testnet --dir "$net" --validators 4 --observers 1 \
      --hosts "$(IFS=,; echo "${nodes[*]}")" >/dev/null
  fi
  local t0=$SECONDS c ids=()
  dc up --no-start >/dev/null 2>&1 || dc up --no-start
  for n in "${nodes[@]}"; do
    c=$(container "$n")
    [ -n "$c" ] || { echo "docker-cluster: no container for $n" >&2; exit 1; }
    # A volume that already holds a home keeps it (and its chain data).
    if ! docker cp "$c:/data/genesis.json" - >/dev/null 2>&1; then
      tar -C "$net/$n" --owner=10001 --group=10001 --numeric-owner -cf - . | docker cp - "$c:/data"
    fi
    ids+=("$c")
  done
  docker start "${ids[@]}" >/dev/null
  echo "docker-cluster: $project created, homes copied and started in $((SECONDS - t0))s"
  wait_healthy "$t0"
}

wait_healthy() {
  local t0=$1 deadline=$((SECONDS + timeout)) n c s pending
  while :; do
    pending=()
    for n in "${nodes[@]}"; do
      c=$(container "$n")
      s=$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$c" 2>/dev/null || echo missing)
      [ "$s" = healthy ] || pending+=("$n=$s")
    done
    if [ ${#pending[@]} -eq 0 ]; then
      echo "docker-cluster: $project healthy after $((SECONDS - t0))s (${nodes[*]})"
      return 0
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "docker-cluster: not healthy after ${timeout}s: ${pending[*]}" >&2
      for n in "${nodes[@]}"; do dc logs --no-color --tail 20 "$n" >&2 || true; done
      return 1
    fi
    sleep 1
  done
}

down() {
  dc down --volumes --remove-orphans --timeout 20 >/dev/null 2>&1 || dc down --volumes --remove-orphans --timeout 20
  rm -rf "$net"
  echo "docker-cluster: $project removed (containers, network, volumes, $net)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  ps) dc ps ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
