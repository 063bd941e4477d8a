# scale: `make bench-scale` builds a large state through ISSUE_BATCH
# transactions and measures status throughput, p99, disk and memory at
# SCALE_MID and at SCALE_CREDS credentials (tests/bench/scale.sh; long, not
# part of `make test`).
.PHONY: bench-scale
bench-scale: all
	@bash tests/bench/scale.sh
