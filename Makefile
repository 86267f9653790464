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

.PHONY: all test unit integration demo bench clean asan format format-check deps fuzz faults faults-asan

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

# The one command that runs every test (README, .ci/run).
test: unit integration

demo:
	scripts/install-deps.sh
	$(MAKE) warmpool
	scripts/demo.sh

bench: warmpool
	bench/run.sh $(BENCH_ARGS)

asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
		LDFLAGS="-fsanitize=address,undefined" test

# libFuzzer targets (clang): each runs FUZZ_SECONDS on its seeds plus a scratch corpus.
FUZZ_SECONDS ?= 60
FUZZ_FLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined $(CPPFLAGS)
FUZZ_SRC_startup = pooler/proto.c pooler/buf.c
FUZZ_SRC_scan = pooler/proto.c pooler/buf.c
FUZZ_SRC_sqlprep = pooler/sqlprep.c
FUZZ_SRC_fingerprint = pooler/fingerprint.c
FUZZ_SRC_http = $(SRC) # it brings its own wp_rt
FUZZ_TARGETS = startup scan sqlprep fingerprint http

fuzz:
	mkdir -p build-fuzz
	@set -e; for t in $(FUZZ_TARGETS); do \
		case $$t in startup|scan) src="$(FUZZ_SRC_startup)";; sqlprep) src="$(FUZZ_SRC_sqlprep)";; \
		fingerprint) src="$(FUZZ_SRC_fingerprint)";; http) src="$(FUZZ_SRC_http)";; esac; \
		echo "== fuzz_$$t ($(FUZZ_SECONDS) s)"; \
		clang $(FUZZ_FLAGS) tests/fuzz/fuzz_$$t.c $$src -o build-fuzz/fuzz_$$t $(LIBS); \
		mkdir -p build-fuzz/corpus/$$t; \
		build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			build-fuzz/corpus/$$t tests/fuzz/corpus/$$t 2>&1 | grep -E "stat::number_of_executed_units|ERROR|SUMMARY" || true; \
		test -z "$$(ls crash-* leak-* timeout-* 2>/dev/null)" || { echo "fuzz_$$t found a problem"; exit 1; }; \
	done

format:
	clang-format -i pooler/*.c include/warmpool/*.h tests/unit/*.c tests/integration/*.c

format-check:
	clang-format --dry-run --Werror pooler/*.c include/warmpool/*.h tests/unit/*.c tests/integration/*.c

deps:
	scripts/install-deps.sh

clean:
	rm -rf build build-asan build-fuzz warmpool

include packaging/Makefile.inc
