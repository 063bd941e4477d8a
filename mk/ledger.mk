# Ledger benchmark: build/bin/ledger_bench (100k ISSUE txs, blocks of 1000).
.PHONY: ledger-bench

$(BUILD)/bin/ledger_bench: $(BUILD)/obj/tests/bench/ledger_bench.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

ledger-bench: $(BUILD)/bin/ledger_bench
	$(BUILD)/bin/ledger_bench

# Disk accounting of a data directory: build/bin/store_stats [--compact] DIR.
$(BUILD)/bin/store_stats: $(BUILD)/obj/tests/bench/store_stats.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
# tests/bench/run.sh and scale.sh measure the compacted store with it.
bench bench-scale: $(BUILD)/bin/store_stats
