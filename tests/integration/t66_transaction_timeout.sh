#!/bin/bash
# t66_transaction_timeout — PgBouncer's transaction_timeout: a client whose transaction
# has lasted that long since its first request is closed (FATAL 25P04), whether its
# query is still running or it sits idle in the transaction; its backend's query is
# stopped and the transaction rolled back; short transactions are untouched. Private
# warmpool (t30_lib.sh), transaction mode, transaction_timeout = 2s.
#   1. BEGIN; INSERT; SELECT pg_sleep(60): the client gets 25P04, the sleep no longer runs
#      on the server (polled), the INSERT was rolled back, the pool serves on.
#   2. BEGIN; SELECT 1; then idle in the transaction: 25P04 too.
#   3. A client running 20 short transactions one after the other keeps its connection.
#   4. warmpool_timeouts_total{kind="transaction_timeout"} counts the two.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
t3_database t66
t3_direct -d t66 -c "CREATE TABLE t66 (v int)" -c "GRANT ALL ON t66 TO $WP_USER" >/dev/null

http_port=$(t3_free_port)
t3_start "transaction_timeout = 2s
stats_listen = 127.0.0.1:$http_port" "t66 = host=127.0.0.1 port=$PG_PORT dbname=t66"

psql_wp() {
    PGPASSWORD=$WP_PASSWORD psql -X -q -At -h 127.0.0.1 -p "$t3_port" -U "$WP_USER" -d t66 "$@"
}
sleeping() {
    t3_direct -d postgres -Atc "SELECT count(*) FROM pg_stat_activity
        WHERE datname = 't66' AND query LIKE 'SELECT pg_sleep(60)%'"
}

# 1. A running query.
out=$(psql_wp -v ON_ERROR_STOP=1 -c "BEGIN" -c "INSERT INTO t66 VALUES (1)" \
    -c "SELECT pg_sleep(60)" 2>&1) && t3_fail "the 60 s transaction finished: $out"
echo "$out" | grep -q "transaction_timeout (2s) exceeded" ||
    t3_fail "the running transaction did not get transaction_timeout: $out"
for _ in $(seq $((300 * t3_slow))); do
    [ "$(sleeping)" = 0 ] && break
    sleep 0.1
done
[ "$(sleeping)" = 0 ] || t3_fail "pg_sleep(60) still runs on the server after the timeout"
[ "$(t3_direct -d t66 -Atc "SELECT count(*) FROM t66")" = 0 ] ||
    t3_fail "the INSERT of the timed-out transaction was kept"
[ "$(psql_wp -c "SELECT 'served'")" = served ] || t3_fail "the pool does not serve after it"
t3_ok "a running transaction: FATAL after transaction_timeout, its query stopped, rolled back"

# 2. Idle in the transaction. psql reads the socket only when it has a command, so the
# closing is seen from warmpool's side first (the counter), then by the next command.
timeouts() {
    /usr/bin/python3 "$(dirname "$0")/stats_client.py" metric "tcp:127.0.0.1:$http_port" \
        warmpool_timeouts_total database=t66 user="$WP_USER" kind=transaction_timeout
}
coproc IDLE { psql_wp 2>&1; }
echo "BEGIN; SELECT 'in';" >&"${IDLE[1]}"
read -r -t $((30 * t3_slow)) line <&"${IDLE[0]}" || t3_fail "no answer to BEGIN; SELECT 'in'"
[ "$line" = in ] || t3_fail "idle client: got '$line'"
for _ in $(seq $((300 * t3_slow))); do
    [ "$(timeouts)" = 2 ] && break
    sleep 0.1
done
[ "$(timeouts)" = 2 ] || t3_fail "the client idle in its transaction was not closed ($(timeouts))"
echo "SELECT 'after';" >&"${IDLE[1]}"
got=
while read -r -t $((30 * t3_slow)) line <&"${IDLE[0]}"; do
    got="$got $line"
    case $line in *"transaction_timeout (2s) exceeded"*) break ;; esac
done
case $got in
*"transaction_timeout (2s) exceeded"*) ;;
*) t3_fail "the idle client's next command got '$got', want the transaction_timeout error" ;;
esac
t3_ok "idle in a transaction: FATAL after transaction_timeout"

# 3. Short transactions, one after the other, for longer than the limit in all.
script=$t3_tmp/short.sql
for i in $(seq 20); do
    echo "BEGIN; SELECT pg_sleep(0.05); INSERT INTO t66 VALUES ($i); COMMIT;"
done >"$script"
out=$(psql_wp -v ON_ERROR_STOP=1 -f "$script" 2>&1) || t3_fail "short transactions: $out"
[ "$(t3_direct -d t66 -Atc "SELECT count(*) FROM t66")" = 20 ] ||
    t3_fail "short transactions: not all 20 committed"
t3_ok "20 short transactions in one connection: none cut"

n=$(timeouts)
[ "$n" = 2 ] || t3_fail "warmpool_timeouts_total{kind=\"transaction_timeout\"} = $n, want 2"
t3_ok "the two are counted in warmpool_timeouts_total"
t3_stop
