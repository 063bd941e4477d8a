# harden: crash loop, static analysis and fuzzing (issue 8).
#   make crash-loop   CRASH_KILLS (default 50) kill -9s of random validators
#                     under load; checks no committed tx is lost, no fork,
#                     no equivocation (tests/crash/crashloop.py)
#   make lint         cppcheck + clang-tidy over node/ consensus/ tools/
#                     tests/fuzz/ tests/crash/ (tools/lint/lint.sh); findings
#                     not in tools/lint/*.supp fail the target
#   make fuzz         builds the libFuzzer targets with clang and runs each
#                     for FUZZ_SECONDS (default 60) (tests/fuzz/run.sh)
.PHONY: crash-loop fuzz-build
CRASH_KILLS ?= 50
FUZZ_SECONDS ?= 60

crash-loop: all
	CRASH_KILLS=$(CRASH_KILLS) $(PYTHON) tests/crash/crashloop.py

lint: $(PROTO_H)
	@EXTRA_DEPS="cppcheck clang-tidy" bash tools/deps.sh
	@bash tools/lint/lint.sh

fuzz:
	@EXTRA_DEPS="clang libclang-rt-14-dev" bash tools/deps.sh
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh

# libFuzzer targets: tests/fuzz/fuzz_NAME.c -> $(BUILD)/fuzzers/fuzz_NAME.
# Only meaningful in the clang build tests/fuzz/run.sh asks for:
#   make BUILD=build/fuzz CC=clang SAN=1 SANFLAGS="... fuzzer-no-link" fuzz-build
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzzers/%,$(FUZZ_SRCS))

fuzz-build: $(FUZZ_BINS)

$(BUILD)/obj/tests/fuzz/%.o: CPPFLAGS += -Itests/unit

$(BUILD)/fuzzers/%: $(BUILD)/obj/tests/fuzz/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

# The gcc builds enforce the warnings; clang has a few more (net.c:
# -Wstring-plus-int), reported to their owners rather than failing fuzzing.
ifeq ($(BUILD),build/fuzz)
CFLAGS += -Wno-error
endif
