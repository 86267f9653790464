#!/bin/bash
# t41_stats_http — issue 4: the stats endpoint through a real warmpool and PostgreSQL.
#
# A private warmpool (lib_private_warmpool.sh) with stats_socket and stats_listen.
#   1. Under a 50-client pgbench run /metrics passes a strict text-format parser
#      (stats_client.py), and the query/transaction counters match pgbench within 1 %
#      (select-only, then TPC-B where each transaction is 7 queries).
#   2. Pool max 2, 10 clients running pg_sleep(0.5) (long enough that their logins overlap on a loaded machine): /pools shows waiting clients and
#      the wait histogram's p95 is at least 0.2 s.
#   3. 50 executions of one statement in a transaction (extended protocol with $1, and
#      simple protocol with literals) are one N+1 burst with count 50 each; 50
#      different statements are none. The two bursts are one statement: one log line.
#   4. /statements ranks a 100 ms statement above a 1 ms one; WHERE bid = 1 and = 2
#      are one row.
#   5. Bad requests: no request line 400, unknown path 404, POST 405, 100 KB and 1 MiB
#      headers 431, a large body 413; a slowloris client is closed at the 10 s read
#      deadline and queries meanwhile run at normal speed; connections beyond the
#      limit get 503.
#   6. The socket has mode 0660; TCP works; /health is 200, then 503 once a pool
#      cannot reach its database.
#   7. On the fresh instance, before any client: /metrics parses strictly and has the
#      process_* metrics of the Prometheus client libraries with plausible values. A
#      pool that has had no error shows warmpool_errors_total at 0 for the watched
#      SQLSTATE classes (so rate() works from its first scrape); the first error of
#      class 42 makes that one 1 and leaves the others at 0.
set -eu
. "$(dirname "$0")/lib_private_warmpool.sh"
PW_EXTRA="nplus1_threshold = 10"
pw_start
U=unix:$PW_SOCK
T=tcp:127.0.0.1:$PW_HTTP_PORT

http_status() { $STATS_CLIENT get "$1" "$2" | head -n 1; }
metric() { # NAME DB -> value or 0
    local v
    v=$($STATS_CLIENT metric "$U" "$1" database="$2" user="$WP_USER")
    [ "$v" = none ] && v=0
    echo "$v"
}
within_1pct() { # GOT WANT
    local got=$1 want=$2 diff
    diff=$((got > want ? got - want : want - got))
    [ $((diff * 100)) -le "$want" ] || [ "$diff" -le 2 ]
}
pool_json() { # DB EXPR-over-p
    $STATS_CLIENT json "$U" /stats \
        "[$2 for p in d['pools'] if p['database'] == '$1' and p['user'] == '$WP_USER'][0]"
}

# ---------------------------------------------------------------- 6. socket, TCP, health
mode=$(stat -c %a "$PW_SOCK")
[ "$mode" = 660 ] || fail "stats socket mode $mode, want 660"
[ "$(http_status "$U" /health)" = 200 ] || fail "/health before any pool"
[ "$(http_status "$T" /health)" = 200 ] || fail "/health over TCP"
ok "stats socket mode 0660, TCP endpoint answers, /health 200"

# ---------------------------------------------------------------- 7. present from the start
$STATS_CLIENT promcheck "$U" >/dev/null || fail "/metrics of a fresh instance: strict parse failed"
proc() { # NAME: the unlabelled sample's value, or fail
    local v
    v=$($STATS_CLIENT metric "$U" "$1")
    [ "$v" != none ] || fail "no $1 sample on a fresh instance"
    echo "${v%.*}"
}
now=$(date +%s)
start=$(proc process_start_time_seconds)
[ "$start" -le "$now" ] && [ "$start" -gt $((now - 600)) ] ||
    fail "process_start_time_seconds $start, now $now"
[ "$(proc process_cpu_seconds_total)" -ge 0 ] || fail "process_cpu_seconds_total"
rss=$(proc process_resident_memory_bytes)
vsz=$(proc process_virtual_memory_bytes)
[ "$rss" -gt 1000000 ] && [ "$vsz" -ge "$rss" ] || fail "resident $rss, virtual $vsz bytes"
fds=$(proc process_open_fds)
maxfds=$(proc process_max_fds)
[ "$fds" -ge 3 ] && [ "$maxfds" -ge "$fds" ] || fail "open fds $fds, max $maxfds"
ok "fresh instance: process_* present (started $((now - start)) s ago, $fds of $maxfds fds, $((rss >> 20)) MiB resident)"

errors() { $STATS_CLIENT metric "$U" warmpool_errors_total database=wpload user="$WP_USER" class="$1"; }
pw_app wpload -c "SELECT 1" >/dev/null || fail "first query on wpload"
for class in 08 22 23 25 40 42 53 57; do
    [ "$(errors $class)" = 0 ] || fail "warmpool_errors_total class $class before any error: $(errors $class)"
done
pw_app wpload -c "SELECT * FROM no_such_table" >/dev/null 2>&1 && fail "a query on a missing table worked"
[ "$(errors 42)" = 1 ] || fail "warmpool_errors_total class 42 after one 42P01: $(errors 42)"
[ "$(errors 08)" = 0 ] && [ "$(errors 57)" = 0 ] || fail "other classes moved with a 42P01"
ok "warmpool_errors_total: 0 for the watched classes before any error; class 42 counts the first one"

# ---------------------------------------------------------------- 1. pgbench and counters
pgbench -i -q -s 1 -h "$PG_HOST" -p "$PG_PORT" -U "$WP_USER" wpload >/dev/null 2>&1 ||
    fail "pgbench -i on PostgreSQL"
run_pgbench() { # OUT ARGS... (through the private warmpool, database wpload)
    local out=$1
    shift
    PGPASSWORD=$WP_PASSWORD pgbench -n -h 127.0.0.1 -p "$PW_PORT" -U "$WP_USER" "$@" wpload \
        >"$out" 2>&1 || { cat "$out" >&2; fail "pgbench $*"; }
    sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out"
}
pw_app wpload -c "SELECT 1" >/dev/null
q0=$(metric warmpool_queries_total wpload)
x0=$(metric warmpool_transactions_total wpload)
run_pgbench "$PW_DIR/bench-s.out" -S -c 50 -j 4 -T 6 >"$PW_DIR/processed" &
bench=$!
checks=0
while kill -0 "$bench" 2>/dev/null; do
    $STATS_CLIENT promcheck "$U" >/dev/null || fail "/metrics under load: strict parse failed"
    checks=$((checks + 1))
    sleep 0.5
done
wait "$bench" || fail "pgbench -S"
processed=$(cat "$PW_DIR/processed")
[ -n "$processed" ] && [ "$processed" -gt 0 ] || fail "pgbench processed '$processed'"
q1=$(metric warmpool_queries_total wpload)
x1=$(metric warmpool_transactions_total wpload)
# pgbench itself asks for the scale once (one more query, one more transaction).
within_1pct $((x1 - x0)) "$processed" || fail "transactions counted $((x1 - x0)), pgbench $processed"
within_1pct $((q1 - q0)) "$processed" || fail "queries counted $((q1 - q0)), pgbench $processed"
ok "pgbench -S 50 clients: $processed transactions; warmpool counted $((x1 - x0)) transactions," \
    "$((q1 - q0)) queries; /metrics parsed strictly $checks times under load"

processed=$(run_pgbench "$PW_DIR/bench-b.out" -c 10 -j 2 -T 3)
q2=$(metric warmpool_queries_total wpload)
x2=$(metric warmpool_transactions_total wpload)
within_1pct $((x2 - x1)) "$processed" || fail "TPC-B transactions $((x2 - x1)), pgbench $processed"
within_1pct $((q2 - q1)) $((processed * 7)) || fail "TPC-B queries $((q2 - q1)), want 7 x $processed"
ok "pgbench TPC-B: $processed transactions; counted $((x2 - x1)) transactions, $((q2 - q1)) queries"

$STATS_CLIENT promcheck "$T" >/dev/null || fail "/metrics over TCP"
n=$($STATS_CLIENT get "$U" /metrics | grep -c "^warmpool_query_duration_seconds_bucket{database=\"wpload\",user=\"$WP_USER\",le=")
[ "$n" = 29 ] || fail "wpload query histogram has $n buckets, want 29"
ok "/metrics: warmpool_* samples with database/user labels, histogram of 29 buckets"

# ---------------------------------------------------------------- 2. waiting clients
pw_app two -c "SELECT 1" >/dev/null
sleepers=()
for i in $(seq 10); do
    pw_app two -c "SELECT pg_sleep(0.5)" >/dev/null 2>"$PW_DIR/sleep$i.err" &
    sleepers+=($!)
done
max_waiting=0
for _ in $(seq 40); do
    w=$($STATS_CLIENT json "$U" /pools \
        "[p for p in d['pools'] if p['database'] == 'two'][0]['clients']['waiting']")
    [ "$w" -gt "$max_waiting" ] && max_waiting=$w
    running=0
    for pid in "${sleepers[@]}"; do kill -0 "$pid" 2>/dev/null && running=1; done
    [ "$running" = 1 ] || break
    sleep 0.05
done
for pid in "${sleepers[@]}"; do
    wait "$pid" || fail "a pg_sleep client failed: $(cat "$PW_DIR"/sleep*.err)"
done
[ "$max_waiting" -gt 0 ] || fail "/pools never showed a waiting client on pool two"
p95=$(pool_json two "p['wait_us']['p95']")
[ "$p95" -ge 200000 ] || fail "wait p95 ${p95} us, want >= 200000"
ok "pool max 2, 10 x pg_sleep(0.5): up to $max_waiting waiting, wait p95 ${p95} us"

# ---------------------------------------------------------------- 3. N+1
bursts() { pool_json "$1" "p['nplus1_bursts']"; }
{
    echo "BEGIN;"
    for _ in $(seq 50); do
        echo "\\set aid random(1, 100000)"
        echo "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;"
    done
    echo "END;"
} >"$PW_DIR/nplus1.sql"
b0=$(bursts wpload)
run_pgbench "$PW_DIR/bench-n.out" -M extended -c 1 -t 1 -f "$PW_DIR/nplus1.sql" >/dev/null
b1=$(bursts wpload)
[ "$b1" = $((b0 + 1)) ] || fail "extended N+1: bursts $b0 -> $b1, want one more"
[ "$(pool_json wpload "p['last_nplus1']['count']")" = 50 ] || fail "extended N+1 count"
pool_json wpload "p['last_nplus1']['query']" | grep -q 'WHERE aid = \$1' ||
    fail "N+1 statement text: $(pool_json wpload "p['last_nplus1']['query']")"
ok "50 x 'WHERE aid = \$1' in one transaction (extended protocol): one burst, count 50"

{
    echo "BEGIN;"
    for i in $(seq 50); do echo "SELECT abalance FROM pgbench_accounts WHERE aid = $i;"; done
    echo "COMMIT;"
} | pw_app wpload >/dev/null || fail "simple-protocol N+1 transaction"
b2=$(bursts wpload)
[ "$b2" = $((b1 + 1)) ] || fail "simple N+1: bursts $b1 -> $b2, want one more"
[ "$(pool_json wpload "p['last_nplus1']['count']")" = 50 ] || fail "simple N+1 count"
{
    echo "BEGIN;"
    for i in $(seq 50); do echo "SELECT $i AS column_$i;"; done
    echo "COMMIT;"
} | pw_app wpload >/dev/null || fail "50 different statements"
b3=$(bursts wpload)
[ "$b3" = "$b2" ] || fail "50 different statements counted as N+1 ($b2 -> $b3)"
# Both bursts are one statement (one fingerprint): the second, within
# nplus1_log_interval_ms (default 1 min) of the first, is counted but not logged.
[ "$(grep -c 'N+1 pattern: statement executed 50 times in one transaction' "$PW_LOG")" = 1 ] ||
    fail "expected one N+1 log line with count 50: $(grep 'N+1' "$PW_LOG")"
ok "50 literal variants: one burst of 50; 50 different statements: none; two bursts of one statement within a minute: one log line"

# ---------------------------------------------------------------- 4. top statements
pw_app wptest -c "SELECT pg_sleep(0.1)" >/dev/null
pw_app wptest -c "SELECT count(*) FROM pg_class WHERE relpages = 1" >/dev/null
pw_app wptest -c "SELECT count(*) FROM pg_class WHERE relpages = 2" >/dev/null
rank() { # FRAGMENT -> "index calls" of the first statement of wptest containing it
    $STATS_CLIENT json "$U" "/statements?limit=100000" "next('%d %d %s' % (i, s['calls'], s['query']) for i, s in enumerate(d['statements']) if s['database'] == 'wptest' and '$1' in s['query'])"
}
read -r slow_i slow_calls slow_q <<<"$(rank 'pg_sleep')"
read -r fast_i fast_calls fast_q <<<"$(rank 'relpages')"
[ "$slow_q" = "SELECT pg_sleep(?)" ] || fail "slow statement text '$slow_q'"
[ "$fast_q" = "SELECT count(*) FROM pg_class WHERE relpages = ?" ] || fail "fast text '$fast_q'"
[ "$fast_calls" = 2 ] || fail "relpages = 1 and = 2 are not one row (calls $fast_calls)"
[ "$slow_i" -lt "$fast_i" ] || fail "100 ms statement ranked $slow_i, 1 ms one $fast_i"
ok "/statements: pg_sleep(?) (rank $slow_i) above relpages = ? (rank $fast_i, 2 calls)"

# ---------------------------------------------------------------- 5. bad requests
[ "$(printf '\r\n\r\n' | $STATS_CLIENT raw "$U")" = 400 ] || fail "no request line"
[ "$(printf 'hello\r\n\r\n' | $STATS_CLIENT raw "$U")" = 400 ] || fail "garbage request line"
[ "$(http_status "$U" /nope)" = 404 ] || fail "unknown path"
[ "$(printf 'POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi' | $STATS_CLIENT raw "$U")" = 405 ] ||
    fail "POST"
[ "$(printf 'GET /metrics HTTP/1.1\r\nContent-Length: 100000\r\n\r\n' | $STATS_CLIENT raw "$U")" = 413 ] ||
    fail "large body"
big=$($STATS_CLIENT big "$U" 102400)
[ "$big" = 431 ] || fail "100 KB request: $big"
big=$($STATS_CLIENT big "$U" 1048576)
[ "$big" = 431 ] || [ "$big" = closed ] || fail "1 MiB request: $big"
ok "no request line 400, unknown path 404, POST 405, large body 413, 100 KB/1 MiB headers 431/$big"

# A client sending one byte a second must neither hold up the pooler nor keep its
# connection past the 10 s read deadline. No upper time bound is asserted (load only
# delays things): the queries must complete, and the server, not the helper's own 20
# steps (one per recv timeout of 2 s, so >= 20 s), must end the connection.
$STATS_CLIENT slowloris "$U" 20 >"$PW_DIR/slowloris" &
slow=$!
sleep 1
for _ in $(seq 20); do pw_app wptest -c "SELECT 1" >/dev/null || fail "query during slowloris"; done
[ "$(http_status "$U" /health)" = 200 ] || fail "/health during slowloris"
wait "$slow" || fail "slowloris helper"
read -r secs status ended_by <"$PW_DIR/slowloris"
[ "$ended_by" = server ] || fail "slowloris connection not closed by the server (after $secs s)"
awk -v s="$secs" 'BEGIN { exit !(s >= 9) }' ||
    fail "slowloris connection closed after $secs s, before the 10 s read deadline"
ok "slowloris closed by the server after ${secs} s (response: $status); 20 queries served meanwhile"

cap=$($STATS_CLIENT conncap "$U" 64)
[ "$cap" = 503 ] || fail "65th connection: $cap, want 503"
[ "$(http_status "$U" /health)" = 200 ] || fail "/health after the connection flood"
ok "connection 65 refused with 503, endpoint fine afterwards"

# ---------------------------------------------------------------- 6. health 503
pw_app dead -c "SELECT 1" >/dev/null 2>&1 && fail "a query through the dead database worked"
code=$(http_status "$U" /health)
[ "$code" = 503 ] || fail "/health with an unreachable pool: $code"
$STATS_CLIENT get "$U" /health | grep -q '"database":"dead"' || fail "/health does not name 'dead'"
[ "$($STATS_CLIENT metric "$U" warmpool_pool_healthy database=dead user="$WP_USER")" = 0 ] ||
    fail "warmpool_pool_healthy for dead"
ok "/health 503 naming the unreachable pool; warmpool_pool_healthy 0"
