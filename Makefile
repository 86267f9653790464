# warmpool — build, test, bench.
# Every pooler/*.c except main.c goes into libwarmpool.a, which the binary and the
# unit tests link against, so a new module needs no Makefile change.

CC       ?= cc
CFLAGS   ?= -O2 -g
WARN      = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
CPPFLAGS += -Iinclude -I$(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
LIBS      = -lpq -levent_core -linih -lssl -lcrypto -lpthread

BUILD    ?= build
SRC       = $(filter-out pooler/main.c,$(wildcard pooler/*.c))
OBJ       = $(SRC:pooler/%.c=$(BUILD)/%.o)
UNIT_SRC  = $(wildcard tests/unit/test_*.c)
UNIT_BIN  = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
ITEST_SRC = $(wildcard tests/integration/*.c)
ITEST_BIN = $(ITEST_SRC:tests/integration/%.c=$(BUILD)/itests/%)

.PHONY: all test unit integration demo bench clean asan format format-check deps fuzz \
	fuzz-build fuzz-regress faults faults-asan valgrind faults-valgrind tsan

all: warmpool

warmpool: $(BUILD)/warmpool
	rm -f $@ && cp $< $@

$(BUILD)/warmpool: $(BUILD)/main.o $(BUILD)/libwarmpool.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/libwarmpool.a: $(OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: pooler/%.c $(wildcard include/warmpool/*.h) | $(BUILD)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libwarmpool.a | $(BUILD)/tests
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libwarmpool.a -lcmocka $(LIBS)

$(BUILD)/itests/%: tests/integration/%.c tests/integration/itest.h | $(BUILD)/itests
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) $(LDFLAGS) -o $@ $< -lpq -lpthread

$(BUILD) $(BUILD)/tests $(BUILD)/itests:
	mkdir -p $@

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

itests: $(ITEST_BIN)

# The binary under test is $(BUILD)/warmpool, so `make asan` tests the ASan build.
integration: $(BUILD)/warmpool $(ITEST_BIN)
	BUILD=$(BUILD) WARMPOOL=$(CURDIR)/$(BUILD)/warmpool tests/integration/run.sh

# Fault injection (tests/faults/README.md): kills, restarts, freezes, hostile clients.
faults: $(BUILD)/warmpool
	WARMPOOL=$(CURDIR)/$(BUILD)/warmpool tests/faults/run.sh $(FAULTS)

faults-asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
		LDFLAGS="-fsanitize=address,undefined" faults

# Every warmpool process of the integration suite (and of the fault suite) under valgrind
# memcheck: tests/valgrind/warmpool.sh wraps the binary, tests/valgrind/check.sh fails the
# run on a memory error or a definite/indirect leak, tests/valgrind.supp lists the
# library noise. VALGRIND_TESTS / FAULTS restrict the run to the named tests.
VALGRIND_BUILD = build-valgrind
VALGRIND_MAKE = $(MAKE) BUILD=$(VALGRIND_BUILD) CFLAGS="-O1 -g" LDFLAGS=
VALGRIND_ENV = WP_VALGRIND=1 BUILD=$(VALGRIND_BUILD) WARMPOOL=$(CURDIR)/$(VALGRIND_BUILD)/warmpool

valgrind:
	$(VALGRIND_MAKE) $(VALGRIND_BUILD)/warmpool itests
	$(VALGRIND_ENV) tests/integration/run.sh $(VALGRIND_TESTS)

faults-valgrind:
	$(VALGRIND_MAKE) $(VALGRIND_BUILD)/warmpool
	$(VALGRIND_ENV) tests/faults/run.sh $(FAULTS)

# The one command that runs every test (README, .ci/run). fuzz-regress replays the
# checked-in fuzz inputs (the cve-* regressions among them) once: about 20 s with the build.
test: unit integration faults fuzz-regress

demo:
	scripts/install-deps.sh
	$(MAKE) warmpool
	scripts/demo.sh

bench: warmpool $(BUILD)/floor-relay
	FLOOR_RELAY=$(BUILD)/floor-relay bench/run.sh $(BENCH_ARGS)

# The bench's yardstick: a 1:1 relay with nothing but a read and a write per event.
$(BUILD)/floor-relay: bench/floor/relay.c | $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -o $@ $<

# The whole suite again under ASan+UBSan, every pooler with `--workers 2` (WP_WORKERS,
# tests/workers/warmpool.sh): the batched socket I/O of workers = N is checked by the
# sanitizers and by every integration and fault test; `make test` and valgrind run with 1.
ASAN_WORKERS ?= 2
asan:
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 WP_WORKERS=$(ASAN_WORKERS) \
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
		LDFLAGS="-fsanitize=address,undefined" test

# The pooler under ThreadSanitizer with `--workers 2`: the I/O threads' hand-offs, the
# workpool (cancels to servers, DNS) and the test clients' threads, over the integration
# and fault suites. Not in CI (time); run it when threads change. tests/tsan.supp lists
# what it hides and why. A report fails the test whose pooler logged it (exit code 66).
TSAN_FLAGS = CFLAGS="-O1 -g -fsanitize=thread -fno-omit-frame-pointer" LDFLAGS="-fsanitize=thread"
tsan:
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp second_deadlock_stack=1" WP_WORKERS=2 \
	$(MAKE) BUILD=build-tsan $(TSAN_FLAGS) integration faults

# libFuzzer targets (clang). The pooler is compiled once with coverage and sanitizers
# into build-fuzz/libwarmpool.a; each tests/fuzz/fuzz_<t>.c links against it (wp_rt
# comes from runtime.c in the library; harnesses fill it in, as the unit tests do).
#   make fuzz           build every target and run each FUZZ_SECONDS on its seeds plus
#                       a scratch corpus in build-fuzz/corpus/<t>
#   make fuzz-regress   build every target and run it once over each checked-in input
#                       (tests/fuzz/corpus/<t>/*, including the cve-* regressions)
FUZZ_SECONDS ?= 60
FUZZ_BUILD = build-fuzz
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined $(CPPFLAGS)
FUZZ_TARGETS = startup scan sqlprep fingerprint http scram config prepared admin owed session_sql session_state backend_login
FUZZ_BIN = $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_OBJ = $(SRC:pooler/%.c=$(FUZZ_BUILD)/obj/%.o)

$(FUZZ_BUILD)/obj/%.o: pooler/%.c $(wildcard include/warmpool/*.h)
	@mkdir -p $(FUZZ_BUILD)/obj
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/libwarmpool.a: $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libwarmpool.a $(wildcard include/warmpool/*.h)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libwarmpool.a $(LIBS)

fuzz-build: $(FUZZ_BIN)

# Targets run FUZZ_JOBS at a time (one core each; default: every core), each for its
# full FUZZ_SECONDS; a target's lines are printed together when it ends.
FUZZ_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
fuzz: fuzz-build
	@$(MAKE) --no-print-directory --output-sync=target -j$(FUZZ_JOBS) $(FUZZ_TARGETS:%=fuzz-run-%)

fuzz-run-%:
	@echo "== fuzz_$* ($(FUZZ_SECONDS) s)"; \
	rm -rf $(FUZZ_BUILD)/findings/$*; mkdir -p $(FUZZ_BUILD)/corpus/$* $(FUZZ_BUILD)/findings/$*; \
	$(FUZZ_BUILD)/fuzz_$* -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_BUILD)/findings/$*/ \
		$(FUZZ_BUILD)/corpus/$* tests/fuzz/corpus/$* >$(FUZZ_BUILD)/fuzz_$*.log 2>&1 || true; \
	grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Test unit written" $(FUZZ_BUILD)/fuzz_$*.log || true; \
	test -z "$$(ls $(FUZZ_BUILD)/findings/$*)" || \
		{ echo "fuzz_$* found a problem: $$(ls $(FUZZ_BUILD)/findings/$*/*), log in $(FUZZ_BUILD)/fuzz_$*.log"; exit 1; }

# Every checked-in input once; a crash, sanitizer report or broken property fails.
fuzz-regress: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
		n=$$(ls tests/fuzz/corpus/$$t | wc -l); \
		echo "== fuzz_$$t: $$n checked-in inputs"; \
		$(FUZZ_BUILD)/fuzz_$$t -runs=1 tests/fuzz/corpus/$$t/* >$(FUZZ_BUILD)/regress_$$t.log 2>&1 || \
			{ tail -40 $(FUZZ_BUILD)/regress_$$t.log; echo "fuzz_$$t failed on a checked-in input"; exit 1; }; \
	done

format:
	clang-format -i pooler/*.c include/warmpool/*.h tests/unit/*.c tests/integration/*.c bench/floor/*.c

format-check:
	clang-format --dry-run --Werror pooler/*.c include/warmpool/*.h tests/unit/*.c tests/integration/*.c bench/floor/*.c

deps:
	scripts/install-deps.sh

clean:
	rm -rf build build-asan build-fuzz build-valgrind build-tsan warmpool

include packaging/Makefile.inc
