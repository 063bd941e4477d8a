#!/usr/bin/env bash
# Functional tests: real midnode processes (tests/functional/test_*.py).
cd "$(dirname "$0")/../.."
out=$(mktemp)
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/functional "$@" 2>&1 | tee "$out"
line=$(grep -E '^(=+ )?[0-9]+ (passed|failed)|no tests ran' "$out" | tail -n 1)
passed=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || true)
failed=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+' || true)
errors=$(grep -oE '[0-9]+ errors?' <<<"$line" | grep -oE '[0-9]+' || true)
rm -f "$out"
passed=${passed:-0}; failed=$(( ${failed:-0} + ${errors:-0} ))
if [ -z "$line" ]; then failed=1; fi
echo "$passed passed, $failed failed"
