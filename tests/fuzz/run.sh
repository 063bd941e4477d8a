#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang, ASan and
# UBSan into build/fuzz, and runs each for FUZZ_SECONDS (default 60) starting
# from its committed seed corpus tests/fuzz/corpus/NAME (new inputs go to
# build/fuzz/corpus/NAME, crashes to build/fuzz/artifacts/). Prints one line
# per target (executions, coverage) into build/fuzz/report.txt (edge coverage
# per source file in build/fuzz/fuzz_NAME.cov) and ends with
# "N passed, N failed". FUZZ_TARGETS="tx rpc" limits the targets.
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-60}
if ! command -v clang >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  EXTRA_DEPS="clang libclang-rt-14-dev" bash tools/deps.sh || { echo "0 passed, 1 failed"; exit 1; }
fi
fuzzflags="-fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer -fno-sanitize-recover=all"
if ! make -j2 --no-print-directory BUILD=build/fuzz CC=clang SAN=1 SANFLAGS="$fuzzflags" fuzz-build \
     >build/fuzz-build.log 2>&1; then
  tail -n 30 build/fuzz-build.log
  echo "fuzz: build failed (build/fuzz-build.log)"
  echo "0 passed, 1 failed"
  exit 1
fi
mkdir -p build/fuzz/artifacts build/fuzz/corpus
report=build/fuzz/report.txt
: >"$report"
pass=0; fail=0
export ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}"
for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c); short=${name#fuzz_}
  if [ -n "${FUZZ_TARGETS:-}" ] && ! grep -qw "$short" <<<"$FUZZ_TARGETS"; then continue; fi
  bin=build/fuzz/fuzzers/$name
  seeds=tests/fuzz/corpus/$short
  work=build/fuzz/corpus/$short
  mkdir -p "$work" "$seeds"
  log=build/fuzz/$name.log
  "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=20 -rss_limit_mb=2048 -max_len=8192 \
    -artifact_prefix="build/fuzz/artifacts/$short-" "$work" "$seeds" >"$log" 2>&1
  rc=$?
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+')
  ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+')
  # edges instrumented in the whole binary (library included): cov is of these
  edges=$(grep -oE 'Loaded 1 modules +\([0-9]+ inline 8-bit counters' "$log" | grep -oE '[0-9]+ inline' | grep -oE '[0-9]+')
  units=$(ls "$work" | wc -l)
  # Edge coverage of the project files the target reaches: replay the corpus
  # once with -print_coverage and add up covered/total edges per source file
  # of node/ and consensus/ that has any covered function.
  files_cov=$("$bin" -runs=0 -print_coverage=1 "$work" "$seeds" 2>&1 | awk -v out="build/fuzz/$name.cov" '
    /^(UN)?COVERED_FUNC:/ {
      split($5, e, "/"); file = $NF; sub(/:[0-9]+$/, "", file)
      if (file !~ /\/(node|consensus)\//) next
      sub(/.*\/(node|consensus)\//, "", file)
      cov[file] += e[1]; tot[file] += e[2]
    }
    END { c = 0; t = 0
          for (f in cov) if (cov[f] > 0) { c += cov[f]; t += tot[f]; n++; printf "%-16s %5d/%-5d edges\n", f, cov[f], tot[f] > out }
          if (t) printf "%d/%d edges (%.0f%%) in %d files", c, t, 100 * c / t, n; else printf "?" }')
  line=$(printf '%-8s %4ss  execs=%-9s cov=%-5s of %-6s ft=%-6s corpus=%s seeds+%s exit=%s; project code: %s' "$short" "$secs" \
    "${execs:-?}" "${cov:-?}" "${edges:-?}" "${ft:-?}" "$(ls "$seeds" | wc -l)" "$units" "$rc" "$files_cov")
  echo "$line" | tee -a "$report"
  if [ "$rc" -eq 0 ] && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    grep -E 'ERROR|runtime error|SUMMARY|^    #[0-9] ' "$log" | head -20
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
