# bench: midbench's unit tests link its own sources (tools/bench_*.c), and
# `make bench` runs the side-by-side benchmark (tests/bench/run.sh; not part
# of `make test`). BENCH_CREDS sets the preloaded credential count.
BENCH_TOOL_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tools/bench_*.c))

$(BUILD)/tests/test_bench_%: $(BUILD)/obj/tests/unit/test_bench_%.o $(BENCH_TOOL_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

bench: all
	@bash tests/bench/run.sh
