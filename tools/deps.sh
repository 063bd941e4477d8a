#!/usr/bin/env bash
# Installs the Debian packages midnode needs to build, test and run, and only
# those that are missing. Uses sudo when not root.
set -euo pipefail
want=(gcc make pkg-config libsecp256k1-dev libleveldb-dev libuv1-dev libprotobuf-c-dev
      protobuf-c-compiler libssl-dev libjansson-dev libcmocka-dev protobuf-compiler
      python3-pytest python3-protobuf openssl curl procps iproute2
      clang libclang-rt-14-dev ${EXTRA_DEPS:-})  # clang: the libFuzzer targets (tests/fuzz)
missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
