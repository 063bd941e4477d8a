#!/usr/bin/env bash
# Runs every test suite and ends with one line: "N passed, N failed".
# Suites: the cmocka unit tests (plain and under ASan+UBSan), then every
# tests/*/suite.sh, each of which ends its own output with "N passed, N failed".
# Set ONLY=name to run one suite (unit, asan, or a tests/ folder name).
set -uo pipefail
cd "$(dirname "$0")/.."
total_pass=0
total_fail=0
log_dir=build/test-logs
mkdir -p "$log_dir"

add_counts() { # $1 suite name, $2 passed, $3 failed
  total_pass=$((total_pass + $2))
  total_fail=$((total_fail + $3))
  printf '== %-12s %d passed, %d failed\n' "$1" "$2" "$3"
}

run_cmocka_dir() { # $1 suite name, $2 directory of test binaries
  local pass=0 fail=0 bin out rc p f
  for bin in "$2"/test_*; do
    [ -x "$bin" ] || continue
    out="$log_dir/$1-$(basename "$bin").log"
    CMOCKA_MESSAGE_OUTPUT=TAP timeout 600 "$bin" >"$out" 2>&1
    rc=$?
    p=$(grep -c '^ok ' "$out")
    f=$(grep -c '^not ok ' "$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      f=1 # crashed, sanitizer report, or timed out before reporting
    fi
    if [ "$f" -ne 0 ]; then
      echo "-- FAILED: $bin (exit $rc), log $out"
      grep -E '^not ok |ERROR|runtime error|Sanitizer' "$out" | head -20
    fi
    pass=$((pass + p)); fail=$((fail + f))
  done
  add_counts "$1" "$pass" "$fail"
}

want() { [ -z "${ONLY:-}" ] || [ "$ONLY" = "$1" ]; }

want unit && run_cmocka_dir unit build/tests
want asan && run_cmocka_dir asan build/asan/tests

for suite in tests/*/suite.sh; do
  [ -f "$suite" ] || continue
  name=$(basename "$(dirname "$suite")")
  want "$name" || continue
  out="$log_dir/$name.log"
  bash "$suite" 2>&1 | tee "$out" | grep -vE '^[0-9]+ passed, [0-9]+ failed' | tail -n 40
  last=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
  if [ -z "$last" ]; then
    echo "-- suite $name printed no result line; counted as one failure"
    add_counts "$name" 0 1
  else
    p=$(sed -E 's/^([A-Za-z]+: )?([0-9]+) passed, ([0-9]+) failed.*/\2/' <<<"$last")
    f=$(sed -E 's/^([A-Za-z]+: )?([0-9]+) passed, ([0-9]+) failed.*/\3/' <<<"$last")
    add_counts "$name" "$p" "$f"
  fi
done

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
