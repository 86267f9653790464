#!/bin/bash
# tests/valgrind/warmpool.sh — runs the real warmpool binary under valgrind (memcheck).
#
# The test harnesses (tests/integration/run.sh, tests/faults/run.sh) point $WARMPOOL at
# this script when WP_VALGRIND=1, so every pooler any test starts — the harness's own
# instances, the private ones of t30_lib.sh, lib_private_warmpool.sh, lib_tls.sh and
# prepared_lib.py, and `warmpool --check` — runs under valgrind without those scripts
# knowing. It execs valgrind, so the pid the caller holds is valgrind's and SIGQUIT,
# SIGINT, SIGHUP and SIGTERM reach the pooler as usual.
#
# Environment:
#   WP_VALGRIND_BIN   the warmpool binary to run (required)
#   WP_VALGRIND_DIR   directory for the logs, one per process: <pid>.log (required);
#                     tests/valgrind/check.sh reads them once the processes are gone
#   WP_VALGRIND_OPTS  extra valgrind options, e.g. --track-origins=yes (where an
#                     uninitialised value came from; about 1.5x slower) or
#                     --gen-suppressions=all (suppression entries for tests/valgrind.supp)
#
# A process reports at exit: memory errors (invalid reads and writes, uses of
# uninitialised values, bad frees) and definitely or indirectly lost blocks. Either
# makes valgrind exit with status 66, and check.sh prints the report. Still-reachable
# and "possibly lost" blocks are not errors: the pooler frees what it owns at shutdown,
# but libraries keep one-time state (see tests/valgrind.supp).
set -eu
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${WP_VALGRIND_BIN:?tests/valgrind/warmpool.sh: set WP_VALGRIND_BIN to the warmpool binary}"
: "${WP_VALGRIND_DIR:?tests/valgrind/warmpool.sh: set WP_VALGRIND_DIR to a log directory}"
# shellcheck disable=SC2086 # WP_VALGRIND_OPTS is a list of options
exec valgrind --tool=memcheck --error-exitcode=66 \
    --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect \
    --track-fds=no --num-callers=30 \
    --suppressions="$here/../valgrind.supp" \
    --log-file="$WP_VALGRIND_DIR/%p.log" ${WP_VALGRIND_OPTS:-} \
    "$WP_VALGRIND_BIN" "$@"
