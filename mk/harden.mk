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
