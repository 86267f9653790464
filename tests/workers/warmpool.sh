#!/bin/bash
# tests/workers/warmpool.sh — runs the real warmpool binary with `--workers N`.
#
# The test harnesses (tests/integration/run.sh, tests/faults/run.sh) point $WARMPOOL at
# this script when WP_WORKERS is set (e.g. `make asan`, which runs with WP_WORKERS=2), so
# every pooler any test starts — the harness's own instances and the tests' private ones
# — batches its socket I/O over that many threads (io_threads.h) without those scripts
# knowing. It execs the binary, so the pid the caller holds is the pooler's.
#
# Environment:
#   WP_WORKERS_BIN  the warmpool binary to run (required)
#   WP_WORKERS      the number of workers (required)
set -eu
: "${WP_WORKERS_BIN:?tests/workers/warmpool.sh: set WP_WORKERS_BIN to the warmpool binary}"
: "${WP_WORKERS:?tests/workers/warmpool.sh: set WP_WORKERS to the number of workers}"
exec "$WP_WORKERS_BIN" --workers "$WP_WORKERS" "$@"
