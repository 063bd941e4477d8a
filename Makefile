# midnode build. `make` builds the four binaries under build/bin; `make test`
# runs every suite (see tests/run.sh) and ends with "N passed, N failed".
# SAN=1 builds everything with AddressSanitizer and UBSan into build/asan.

SHELL := /bin/bash
PYTHON := /usr/bin/python3
CC ?= cc
ifeq ($(CC),cc)
CC := gcc
endif

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT := -O1 -g
else
BUILD ?= build
SANFLAGS :=
OPT := -O2 -g
endif

PKGS := libsecp256k1 libuv libprotobuf-c openssl jansson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

GEN := $(BUILD)/gen
CPPFLAGS += -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Inode -Iconsensus -Itests/sim -Itools -I$(GEN)
CFLAGS += -std=c11 -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers $(OPT) $(SANFLAGS) $(PKG_CFLAGS) -MMD -MP
LDFLAGS += $(SANFLAGS)
# LevelDB ships no pkg-config file in Debian 12.
LDLIBS += $(PKG_LIBS) -lleveldb -lpthread -lm

PROTO_C := $(GEN)/midnode.pb-c.c
PROTO_H := $(GEN)/midnode.pb-c.h
PROTO_PY := build/gen/py/midnode_pb2.py

LIB_SRCS := $(filter-out node/main.c,$(wildcard node/*.c)) $(wildcard consensus/*.c)
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS)) $(BUILD)/obj/gen/midnode.pb-c.o
LIB := $(BUILD)/lib/libmidnode.a

SIM_SRCS := $(filter-out tests/sim/test_%.c,$(wildcard tests/sim/*.c))
SIM_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(SIM_SRCS))
SIMLIB := $(BUILD)/lib/libmidsim.a

CTL_SRCS := tools/midctl.c $(wildcard tools/ctl_*.c)
BENCH_SRCS := tools/midbench.c $(wildcard tools/bench_*.c)
TOOLS_COMMON := $(wildcard tools/tool_*.c)

# A binary is built once its main source exists.
BINS := $(if $(wildcard node/main.c),$(BUILD)/bin/midnode) \
        $(if $(wildcard tools/midctl.c),$(BUILD)/bin/midctl) \
        $(if $(wildcard tools/midbench.c),$(BUILD)/bin/midbench) \
        $(if $(wildcard tools/midsim.c),$(BUILD)/bin/midsim)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
SIMTEST_SRCS := $(wildcard tests/sim/test_*.c)
SIMTEST_BINS := $(patsubst tests/sim/%.c,$(BUILD)/tests/%,$(SIMTEST_SRCS))

.PHONY: all deps test unit-tests demo clean asan python-proto bench bench-scale fuzz lint docker docker-up docker-down
.DEFAULT_GOAL := all

all: deps-check $(BINS) unit-tests python-proto

deps-check:
	@if ! pkg-config --exists $(PKGS) || ! command -v protoc-c >/dev/null; then $(MAKE) --no-print-directory deps; fi

deps:
	@bash tools/deps.sh

$(PROTO_C) $(PROTO_H): proto/midnode.proto
	@mkdir -p $(GEN)
	protoc-c --proto_path=proto --c_out=$(GEN) proto/midnode.proto

$(PROTO_PY): proto/midnode.proto
	@mkdir -p build/gen/py
	protoc --proto_path=proto --python_out=build/gen/py proto/midnode.proto

python-proto: $(PROTO_PY)

$(BUILD)/obj/gen/midnode.pb-c.o: $(PROTO_C)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(filter-out -Wshadow,$(CFLAGS)) -c -o $@ $<

$(BUILD)/obj/%.o: %.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SIMLIB): $(SIM_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^ $(if $(SIM_OBJS),,/dev/null)

$(BUILD)/bin/midnode: $(BUILD)/obj/node/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/midctl: $(patsubst %.c,$(BUILD)/obj/%.o,$(CTL_SRCS) $(TOOLS_COMMON)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/midbench: $(patsubst %.c,$(BUILD)/obj/%.o,$(BENCH_SRCS) $(TOOLS_COMMON)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/midsim: $(BUILD)/obj/tools/midsim.o $(SIMLIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/tests/test_sim%: $(BUILD)/obj/tests/sim/test_sim%.o $(SIMLIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

unit-tests: $(UNIT_BINS) $(SIMTEST_BINS)

asan:
	$(MAKE) --no-print-directory SAN=1 $(BUILD_ASAN_TARGETS) all

test: all
	$(MAKE) --no-print-directory SAN=1 all
	@bash tests/run.sh

demo: all
	@bash tools/demo.sh

clean:
	rm -rf build

# Extra rules of individual parts (benchmarks, standalone checks) live in mk/.
-include $(wildcard mk/*.mk)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Keep object files that pattern rules produce as intermediates.
.SECONDARY:
