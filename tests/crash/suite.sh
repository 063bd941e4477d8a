#!/usr/bin/env bash
# Crash durability and clean-shutdown checks with real midnode processes.
#   crashloop.py (short: CRASH_KILLS=6) kill -9 of random validators under load;
#   asan_cluster.py: a cluster of the ASan+UBSan build stopped with SIGTERM
#   must exit 0 with no sanitizer or leak report.
# The long crash loop is `make crash-loop` (CRASH_KILLS=50).
cd "$(dirname "$0")/../.."
pass=0; fail=0
run() { # $1 name, rest: command
  local name=$1; shift
  local out; out=$(mktemp)
  "$@" >"$out" 2>&1
  local rc=$?
  grep -vE '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 25
  if [ "$rc" -eq 0 ] && grep -qE '^1 passed, 0 failed' "$out"; then
    pass=$((pass + 1)); echo "ok   $name"
  else
    fail=$((fail + 1)); echo "FAIL $name (exit $rc)"
  fi
  rm -f "$out"
}
run crashloop env CRASH_KILLS="${CRASH_KILLS:-6}" timeout 300 /usr/bin/python3 tests/crash/crashloop.py
if [ -x build/asan/bin/midnode ] && [ -x build/asan/bin/midctl ]; then
  run asan_cluster timeout 300 /usr/bin/python3 tests/crash/asan_cluster.py
else
  echo "FAIL asan_cluster: build/asan/bin/midnode missing (make SAN=1)"; fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
