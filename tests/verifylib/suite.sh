#!/usr/bin/env bash
# The verifier library links with nothing but libsecp256k1, libcrypto and
# libprotobuf-c (no LevelDB, libuv, jansson or libssl): a bank can embed it.
# Builds tests/verifylib/mini.c with exactly those sources and libraries,
# checks what the binary needs, and runs it. Last line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
out=build/verifylib
mkdir -p "$out"
pass=0
fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
bad() { echo "not ok - $1"; fail=$((fail + 1)); }

gen=build/gen
if [ ! -f "$gen/midnode.pb-c.c" ]; then
  gen="$out/gen"
  mkdir -p "$gen"
  protoc-c --proto_path=proto --c_out="$gen" proto/midnode.proto || bad "protoc-c"
fi

srcs=(node/verify.c node/cert.c node/smt_verify.c node/smt.c node/kvmap.c node/crypto.c
      consensus/signbytes.c "$gen/midnode.pb-c.c" tests/verifylib/mini.c)
flags=(-std=c11 -O1 -g -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Inode -Iconsensus -I"$gen"
       $(pkg-config --cflags libsecp256k1 libprotobuf-c libcrypto))
libs=($(pkg-config --libs libsecp256k1 libprotobuf-c libcrypto))
if gcc "${flags[@]}" -o "$out/mini" "${srcs[@]}" "${libs[@]}" 2>"$out/link.log"; then
  ok "verifier links with only ${libs[*]}"
else
  bad "verifier links with only ${libs[*]}"
  cat "$out/link.log"
fi

if [ -x "$out/mini" ]; then
  needed=$(objdump -p "$out/mini" 2>/dev/null | awk '/NEEDED/ {print $2}' | tr '\n' ' ')
  if grep -Eq 'leveldb|libuv|jansson|libssl' <<<"$needed"; then
    bad "binary needs only libc, secp256k1, crypto, protobuf-c (needs: $needed)"
  else
    ok "binary needs only: $needed"
  fi
  run=$("$out/mini")
  echo "$run"
  p=$(grep -c '^ok ' <<<"$run")
  f=$(grep -c '^not ok ' <<<"$run")
  pass=$((pass + p))
  fail=$((fail + f))
  [ "$p" -ge 4 ] || bad "mini ran all its checks"
fi
# The client library: one header per part, one archive.
if make -s build/lib/libmidclient.a >/dev/null 2>&1 &&
   gcc "${flags[@]}" -o "$out/client_example" tests/verifylib/client_example.c build/lib/libmidclient.a "${libs[@]}" \
     2>"$out/client_link.log"; then
  ok "client example links with libmidclient.a and only ${libs[*]}"
  run=$("$out/client_example")
  echo "$run"
  p=$(grep -c '^ok ' <<<"$run")
  f=$(grep -c '^not ok ' <<<"$run")
  pass=$((pass + p))
  fail=$((fail + f))
  [ "$p" -ge 3 ] || bad "client example ran all its checks"
else
  bad "client example links with libmidclient.a"
  cat "$out/client_link.log"
fi
echo "$pass passed, $fail failed"
