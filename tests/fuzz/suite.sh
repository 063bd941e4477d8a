#!/usr/bin/env bash
# make test: builds every libFuzzer target and runs each for a few seconds
# (FUZZ_SECONDS, default 3) so they keep building and running; `make fuzz`
# runs them for longer. Ends with "N passed, N failed".
cd "$(dirname "$0")/../.."
FUZZ_SECONDS=${FUZZ_SECONDS:-3} bash tests/fuzz/run.sh
