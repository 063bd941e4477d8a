#!/usr/bin/env bash
# Docker tests (tests/docker/test_docker.py) against the compose cluster.
# Skipped, with the reason, when no Docker engine answers. Otherwise builds
# the binaries and an image under a tag of its own, runs the tests under a
# compose project name of its own, and removes both afterwards (also when a
# test fails or the run is interrupted).
cd "$(dirname "$0")/../.."

skip() {
  echo "docker: skipped ($1)"
  echo "0 passed, 0 failed"
  exit 0
}
command -v docker >/dev/null 2>&1 || skip "no docker command"
if ! why=$(timeout 20 docker info 2>&1 >/dev/null); then
  skip "docker info failed: $(tr '\n' ' ' <<<"$why" | cut -c1-200)"
fi
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  skip "neither 'docker compose' nor docker-compose is installed"
fi

project="midtest$$$(printf '%04x' $((RANDOM)))"
image="midnode:$project"
ctx="build/docker-$project"
export MIDNODE_TEST_PROJECT=$project MIDNODE_IMAGE=$image
cleanup() {
  COMPOSE_PROJECT_NAME=$project MIDNODE_NET_DIR="build/docker-net-$project" \
    bash tools/docker-cluster.sh down >/dev/null 2>&1 || true
  # Anything of this project that compose did not remove.
  ids=$(docker ps -aq --filter "label=com.docker.compose.project=$project")
  [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
  vols=$(docker volume ls -q --filter "label=com.docker.compose.project=$project")
  [ -n "$vols" ] && docker volume rm $vols >/dev/null 2>&1
  nets=$(docker network ls -q --filter "label=com.docker.compose.project=$project")
  [ -n "$nets" ] && docker network rm $nets >/dev/null 2>&1
  docker rmi "$image" >/dev/null 2>&1
  rm -rf "$ctx" "build/docker-net-$project"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! make --no-print-directory -j2 SAN=0 BUILD=build all >build/docker-suite-make.log 2>&1; then
  tail -20 build/docker-suite-make.log
  echo "docker: build failed (see build/docker-suite-make.log)"
  echo "0 passed, 1 failed"
  exit 0
fi
if ! bash tools/docker-image.sh --tag "$image" --context "$ctx"; then
  echo "docker: image build failed"
  echo "0 passed, 1 failed"
  exit 0
fi

out=$(mktemp)
timeout 600 /usr/bin/python3 -m pytest -q -s -p no:cacheprovider tests/docker "$@" 2>&1 | tee "$out"
line=$(grep -E '^(=+ )?[0-9]+ (passed|failed)|no tests ran' "$out" | tail -n 1)
passed=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || true)
failed=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+' || true)
errors=$(grep -oE '[0-9]+ errors?' <<<"$line" | grep -oE '[0-9]+' || true)
rm -f "$out"
passed=${passed:-0}; failed=$(( ${failed:-0} + ${errors:-0} ))
if [ -z "$line" ]; then failed=1; fi
echo "$passed passed, $failed failed"
