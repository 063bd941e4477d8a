# Peer-link throughput: `make net-bench` prints frames/s between two nodes
# over loopback TLS (NET_BENCH_ARGS="FRAMES BYTES").
NET_BENCH := $(BUILD)/bin/net_bench
NET_BENCH_ARGS ?=

$(NET_BENCH): $(BUILD)/obj/tests/perf/net_bench.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: net-bench
net-bench: $(NET_BENCH)
	$(NET_BENCH) 200000 200
	$(NET_BENCH) 20000 65536
