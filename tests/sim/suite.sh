#!/usr/bin/env bash
# Consensus simulation suite: many seeds of the real engine under faults
# (n = 4 and n = 7, f Byzantine; a few n = 10 and n = 1), then every deliberately broken variant,
# each of which the simulator must catch within its seed budget.
# Last line: "N passed, N failed" (a seed or a caught variant is one test).
set -uo pipefail
cd "$(dirname "$0")/../.."
SIM=${MIDSIM:-build/bin/midsim}
[ -x "$SIM" ] || { echo "missing $SIM"; echo "0 passed, 1 failed"; exit 1; }
pass=0
fail=0

count() { # $1 output of a midsim run
  local last p f
  last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' <<<"$1" | tail -n 1)
  if [ -z "$last" ]; then fail=$((fail + 1)); return; fi
  p=${last%% passed*}
  f=${last#*, }; f=${f%% failed*}
  pass=$((pass + p)); fail=$((fail + f))
}

start=$(date +%s.%N)
for spec in "4 600" "7 400" "10 20" "1 30"; do
  set -- $spec
  out=$("$SIM" --n "$1" --seeds "$2" --first-seed 1 2>&1)
  grep -E '^(FAIL|  replay|n=)' <<<"$out"
  count "$out"
done
end=$(date +%s.%N)
echo "safety+liveness seeds: $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}') s"

# Broken variants and their seed budgets: each must be caught.
for spec in "skip-lock 4 400" "skip-lock 7 200" "quorum-2f 4 20" "quorum-2f 7 20" \
            "forget-vote-log 4 40" "forget-vote-log 7 40" "no-sig-check 4 20" "no-sig-check 7 20"; do
  set -- $spec
  out=$("$SIM" --variant "$1" --n "$2" --seeds "$3" --first-seed 1 --expect-fail 2>&1)
  grep -E '^(caught|variant)' <<<"$out"
  count "$out"
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
