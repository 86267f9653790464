#!/bin/bash
# t63_round_robin — server_round_robin = 1 lends the idle backend used longest ago, and
# when the pool must shrink it closes that same end (the one used longest ago), not the
# one just used. Private warmpool (t30_lib.sh), transaction mode.
#   1. Two warm backends (min_pool_size = 2): two queries in a row run on different
#      backends (without round robin the second would reuse the first's).
#   2. A reload lowers max_pool_size to 1: the backend the first query used (now the
#      oldest) is closed and the second query's stays: the next query runs on it. (The
#      idle list's oldest end is its head under round robin; idle expiry took the tail,
#      and so closed the backend just used.)
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
t3_database t63

db="t63 = host=127.0.0.1 port=$PG_PORT dbname=t63"
t3_start "server_round_robin = 1
min_pool_size = 2
max_pool_size = 2
server_idle_timeout = 0" "$db"

pid_of_query() {
    PGPASSWORD=$WP_PASSWORD psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$t3_port" \
        -U "$WP_USER" -d t63 -c "SELECT pg_backend_pid()"
}
backends() {
    t3_direct -d postgres -Atc "SELECT count(*) FROM pg_stat_activity WHERE datname = 't63'"
}

# The pool exists from its first client on; then min_pool_size fills it.
pid_of_query >/dev/null || t3_fail "no query through warmpool"
for _ in $(seq $((100 * t3_slow))); do
    [ "$(backends)" = 2 ] && break
    sleep 0.1
done
[ "$(backends)" = 2 ] || t3_fail "min_pool_size = 2 gave $(backends) backends"

first=$(pid_of_query) || t3_fail "first query: $first"
second=$(pid_of_query) || t3_fail "second query: $second"
[ "$first" != "$second" ] ||
    t3_fail "two queries in a row ran on the same backend ($first) with server_round_robin = 1"
t3_ok "round robin: two queries in a row ran on backends $first and $second"

t3_reload "server_round_robin = 1
min_pool_size = 0
max_pool_size = 1
server_idle_timeout = 0" "$db"
for _ in $(seq $((100 * t3_slow))); do
    [ "$(backends)" = 1 ] && break
    sleep 0.1
done
[ "$(backends)" = 1 ] || t3_fail "max_pool_size lowered to 1: still $(backends) backends"
left=$(t3_direct -d postgres -Atc "SELECT pid FROM pg_stat_activity WHERE datname = 't63'")
[ "$left" = "$second" ] ||
    t3_fail "the pool shrank to backend $left; want $second (the one used last), not $first"
third=$(pid_of_query) || t3_fail "third query: $third"
[ "$third" = "$second" ] || t3_fail "the next query ran on $third, want $second"
t3_ok "max_pool_size lowered to 1: the backend used longest ago ($first) was closed"
t3_stop
