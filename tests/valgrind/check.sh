#!/bin/bash
# tests/valgrind/check.sh DIR — reads the logs tests/valgrind/warmpool.sh left in DIR
# (<pid>.log, one per warmpool process) and prints the report of every process that
# ended with memory errors or definitely/indirectly lost blocks, or that was killed
# before valgrind could check for leaks (no "ERROR SUMMARY" line: SIGKILL).
# Logs of processes still running are left for a later call; the others are moved to
# DIR/checked/, so each call reports only what ended since the previous one.
# Exit status: 0 all clean (or nothing ended), 1 at least one report printed.
# Environment: WP_VALGRIND_REPORT_LINES (default 150) caps each printed report.
set -u
dir=${1:?usage: tests/valgrind/check.sh DIR}
lines=${WP_VALGRIND_REPORT_LINES:-150}
bad=0

running() { # PID: a live process, not a zombie waiting to be reaped
    local state
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

mkdir -p "$dir/checked"
for log in "$dir"/*.log; do
    [ -e "$log" ] || continue
    pid=$(basename "$log" .log)
    running "$pid" && continue
    cmd=$(sed -n 's/^==[0-9]*== Command: //p' "$log" | head -n 1)
    summary=$(grep -E '^==[0-9]+== ERROR SUMMARY: ' "$log" | tail -n 1)
    if [ -z "$summary" ]; then
        echo "valgrind: pid $pid ($cmd) was killed before its exit report (no leak check); log $dir/checked/$pid.log"
        bad=1
    elif ! grep -qE 'ERROR SUMMARY: 0 errors' <<<"$summary"; then
        echo "valgrind: pid $pid ($cmd): ${summary#*== }; log $dir/checked/$pid.log"
        # The report without valgrind's banner and the closing hints.
        grep -vE '^==[0-9]+== (Memcheck,|Copyright|Using Valgrind|Parent PID|For lists of|For counts of|Command:)' "$log" |
            sed 's/^==[0-9]*== //' | cat -s | head -n "$lines" | sed 's/^/    /'
        bad=1
    fi
    mv "$log" "$dir/checked/"
done
exit "$bad"
