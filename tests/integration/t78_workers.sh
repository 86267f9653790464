#!/bin/bash
# t78_workers — `workers = N`: one event loop whose socket reads and writes are shared,
# turn by turn, with N - 1 I/O threads (io_threads.c, conn_batch.c).
# A private warmpool (lib_private_warmpool.sh) with `workers = 3` in its file (the
# harness's WP_WORKERS, when set, overrides it through --workers, as it does for every
# test's pooler):
#   1. /metrics says how many workers run, and SHOW CONFIG agrees.
#   2. 8 pgbench clients (simple, then extended protocol) for 3 s each: no failed
#      transaction, and warmpool_io_batches_total grew: turns really were shared.
#   3. A 20 MB result (larger than any socket buffer: partial batched writes) reaches
#      psql whole, and the pool serves the next query.
#   4. A reload with another `workers` keeps the running number and says so in the log
#      (--workers wins over the file silently); the console's SET workers is refused.
set -eu
. "$(dirname "$0")/lib_private_warmpool.sh"
PW_EXTRA="workers = 3"
pw_start
U=unix:$PW_SOCK
want=${WP_WORKERS:-3}
[ "${WP_VALGRIND:-0}" = 1 ] && want=3 # valgrind runs the binary without the wrapper

metric() { $STATS_CLIENT metric "$U" "$1"; }

got=$(metric warmpool_workers)
[ "$got" = "$want" ] || fail "warmpool_workers is $got, want $want"
cfg=$(pw_show_col "SHOW CONFIG" "workers|" value)
[ "$cfg" = "$want" ] || fail "SHOW CONFIG workers is '$cfg', want $want"
ok "$want workers run (/metrics and SHOW CONFIG)"

script=$PW_DIR/select1.sql
echo "SELECT 1;" >"$script"
for mode in simple extended; do
    before=$(metric warmpool_io_batches_total)
    out=$(PGPASSWORD=$WP_PASSWORD pgbench -n -h 127.0.0.1 -p "$PW_PORT" -U "$WP_USER" \
        -c 8 -j 2 -T 3 -M "$mode" -f "$script" wpload 2>&1) ||
        fail "pgbench -M $mode through $want workers failed: $out"
    echo "$out" | grep -q "number of failed transactions: 0" ||
        fail "pgbench -M $mode: failed transactions: $(echo "$out" | grep -i failed)"
    done_tx=$(echo "$out" | awk '/number of transactions actually processed/ {print $6}')
    after=$(metric warmpool_io_batches_total)
    [ "$after" -gt "$before" ] || fail "-M $mode: no loop turn was shared ($before -> $after)"
    ok "pgbench -M $mode, 8 clients: $done_tx transactions, 0 failed; $((after - before)) turns shared"
done

len=$(pw_app wpload -c "select repeat('x', 20000000)" | wc -c)
[ "$len" = 20000001 ] || fail "a 20 MB result arrived as $len bytes"
[ "$(pw_app wpload -c 'select 41 + 1')" = 42 ] || fail "no answer after the 20 MB result"
ok "a 20 MB result arrived whole (20000001 bytes with the newline); the next query answered"

sed -i 's/^workers = 3$/workers = 5/' "$PW_INI"
kill -HUP "$PW_PID"
said="workers = 5 takes effect at the next start; $want are running"
if [ "$want" = 3 ]; then
    for _ in $(seq $((50 * pw_slow))); do
        grep -q "$said" "$PW_LOG" && break
        sleep 0.1
    done
    grep -q "$said" "$PW_LOG" || fail "the reload did not say that workers = 5 waits for a restart"
else # --workers from the harness wins over the file, at reloads too
    for _ in $(seq $((50 * pw_slow))); do
        grep -q "configuration reloaded" "$PW_LOG" && break
        sleep 0.1
    done
    grep -q "configuration reloaded" "$PW_LOG" || fail "the reload did not happen"
fi
[ "$(metric warmpool_workers)" = "$want" ] || fail "the reload changed the running workers"
[ "$(pw_show_col "SHOW CONFIG" "workers|" value)" = "$want" ] ||
    fail "SHOW CONFIG shows the file's workers, not the running ones"
set_out=$(pw_admin -c "SET workers = 2" 2>&1) && fail "SET workers was accepted: $set_out"
echo "$set_out" | grep -q "cannot be changed without a restart" ||
    fail "SET workers: unexpected answer: $set_out"
ok "a reload keeps $want workers and logs it; SET workers is refused"
