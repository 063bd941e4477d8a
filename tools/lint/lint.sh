#!/usr/bin/env bash
# make lint: cppcheck and clang-tidy over the project's C code.
#
# Every finding is reduced to "file|check|message" (no line number, so the
# key survives edits elsewhere in the file) and dropped when it matches a
# pattern (shell glob) in tools/lint/suppressions.txt, where each entry says
# why it is not a defect. Anything left is printed and makes the target fail.
#   LINT_FILES="node/x.c ..." limits the files; LINT_JOBS (default 2).
set -uo pipefail
cd "$(dirname "$0")/../.."
supp=tools/lint/suppressions.txt
out=build/lint
mkdir -p "$out"
files=${LINT_FILES:-$(ls node/*.c consensus/*.c tools/*.c tests/fuzz/*.c 2>/dev/null)}
jobs=${LINT_JOBS:-2}
incs="-Inode -Iconsensus -Itools -Itests/sim -Itests/unit -Ibuild/gen"
defs="-D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE"

# cppcheck does not read system headers; the generated protobuf header
# checks the library version with macros it would otherwise miss.
# shellcheck disable=SC2086
cppcheck --quiet -j"$jobs" --enable=style,warning,portability,performance --std=c11 $defs $incs \
  -DPROTOBUF_C_VERSION_NUMBER=1004001 -DPROTOBUF_C_MIN_COMPILER_VERSION=1000000 \
  -DPROTOBUF_C__BEGIN_DECLS= -DPROTOBUF_C__END_DECLS= \
  --suppress=missingIncludeSystem --template='{file}|cppcheck-{id}|{message}|{line}' \
  $files 2>"$out/cppcheck.txt" >/dev/null

checks='-*,clang-analyzer-*,bugprone-*,cert-err34-c,cert-str34-c,cert-flp30-c'
# Style-only or noisy for this code base (explained in suppressions.txt's header).
checks+=',-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier'
checks+=',-bugprone-narrowing-conversions,-bugprone-assignment-in-if-condition,-bugprone-branch-clone'
checks+=',-bugprone-implicit-widening-of-multiplication-result,-clang-analyzer-optin.performance.Padding'
checks+=',-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling'
# LINT_REUSE=1 keeps the last clang-tidy output (slow to make) and only
# re-applies the suppressions.
if [ "${LINT_REUSE:-0}" != 1 ] || [ ! -s "$out/clang-tidy.raw" ]; then
  # shellcheck disable=SC2086
  printf '%s\n' $files | xargs -P "$jobs" -I{} sh -c \
    "clang-tidy --quiet --checks='$checks' {} -- -std=c11 $defs $incs 2>/dev/null" >"$out/clang-tidy.raw"
fi
# "path:line:col: warning: message [check]" -> "file|check|message|line"
sed -nE "s#^$(pwd)/##; s#^([^:]+):([0-9]+):[0-9]+: (warning|error): (.*) \[([^]]+)\]\$#\1|\5|\4|\2#p" \
  "$out/clang-tidy.raw" | sort -u >"$out/clang-tidy.txt"

cat "$out/cppcheck.txt" "$out/clang-tidy.txt" | grep -v '^$' | sort -u >"$out/all.txt"
# A suppression line: PATTERN  # why (the reason is required)
if grep -vE '^\s*(#|$)' "$supp" | grep -vqE '\s#\s*\S'; then
  echo "lint: every line of $supp needs a reason after ' # ':"
  grep -vE '^\s*(#|$)' "$supp" | grep -vE '\s#\s*\S'
  exit 1
fi
mapfile -t pats < <(grep -vE '^\s*(#|$)' "$supp" | sed -E 's/\s+#.*$//; s/\s+$//')
total=0; suppressed=0; left=0
while IFS= read -r f; do
  total=$((total + 1))
  key=${f%|*}
  hit=0
  for pat in "${pats[@]}"; do
    # shellcheck disable=SC2053
    if [[ $key == $pat ]]; then hit=1; break; fi
  done
  if [ "$hit" -eq 1 ]; then
    suppressed=$((suppressed + 1))
  else
    left=$((left + 1))
    IFS='|' read -r file check msg line <<<"$f"
    echo "$file:$line: [$check] $msg"
  fi
done <"$out/all.txt"
echo "lint: $total findings, $suppressed explained in $supp, $left left"
[ "$left" -eq 0 ]
