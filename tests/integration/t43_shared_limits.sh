#!/bin/bash
# t43_shared_limits — max_user_connections and max_db_connections count the backends of
# every pool of a user (resp. database), not of one pool. Private warmpool (t30_lib.sh).
#
# 1. One user, two databases, max_user_connections = 3, both pools loaded by pgbench at
#    once: PostgreSQL (pg_stat_activity, sampled directly) never shows more than 3
#    backends of that user on the two databases, and every transaction succeeds (the
#    pools queue, and a pool that has the room hands it to one that waits).
# 2. One database, two users, max_db_connections = 3: the same for the database.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
t3_database t43a
t3_database t43b
t3_database t43c
other=t43_other
t3_direct -d postgres -c "DROP ROLE IF EXISTS $other" -c "CREATE ROLE $other LOGIN PASSWORD 'otherpw'" \
    -c "GRANT CONNECT ON DATABASE t43c TO $other" >/dev/null
t3_atexit "t3_direct -d postgres -c 'DROP DATABASE IF EXISTS t43c WITH (FORCE)' -c 'DROP ROLE IF EXISTS $other' >/dev/null"

dbs="t43a = host=127.0.0.1 port=$PG_PORT dbname=t43a
t43b = host=127.0.0.1 port=$PG_PORT dbname=t43b
t43c = host=127.0.0.1 port=$PG_PORT dbname=t43c max_db_connections=3"
t3_start "max_pool_size = 10
max_user_connections = 3
server_idle_timeout = 0
query_wait_timeout = 60s" "$dbs"
printf '"%s" "otherpw"\n' "$other" >>"$t3_tmp/users.txt"
# [users] lifts the user limit for the other role in part 2 (1000 > 3).
t3_reload "max_pool_size = 10
max_user_connections = 3
server_idle_timeout = 0
query_wait_timeout = 60s" "$dbs

[users]
$other = max_user_connections=1000"

echo "SELECT pg_sleep(0.005);" >"$t3_tmp/sleep.sql"

# load USER PASSWORD DB OUT: pgbench through warmpool in the background
load() {
    PGPASSWORD=$2 pgbench -n -c 6 -j 2 -T 6 -f "$t3_tmp/sleep.sql" -h 127.0.0.1 -p "$t3_port" \
        -U "$1" "$3" >"$4" 2>&1 &
    loaders+=($!)
}
loaders=()

# sample WHERE OUT: the largest count of matching backends while both pgbench runs last
sample() {
    local max=0 n
    while kill -0 "${loaders[@]}" 2>/dev/null; do
        n=$(t3_direct -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE $1")
        [ "$n" -gt "$max" ] && max=$n
        sleep 0.05
    done
    echo "$max" >"$2"
}

check_pgbench() { # OUT LABEL: prints the number of transactions
    local done
    grep -q "^number of failed transactions: 0 " "$1" ||
        t3_fail "$2: pgbench failed: $(tail -n 8 "$1")"
    done=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$1")
    [ "${done:-0}" -gt 0 ] || t3_fail "$2: no transaction processed: $(tail -n 5 "$1")"
    echo "$done"
}

# ---------------------------------------------------------------- max_user_connections
load "$WP_USER" "$WP_PASSWORD" t43a "$t3_tmp/a.out"
load "$WP_USER" "$WP_PASSWORD" t43b "$t3_tmp/b.out"
sample "usename = '$WP_USER' AND datname IN ('t43a', 't43b')" "$t3_tmp/max1"
wait "${loaders[@]}" || true
loaders=()
na=$(check_pgbench "$t3_tmp/a.out" t43a)
nb=$(check_pgbench "$t3_tmp/b.out" t43b)
max=$(cat "$t3_tmp/max1")
[ "$max" -le 3 ] || t3_fail "max_user_connections = 3 but PostgreSQL showed $max backends of $WP_USER"
[ "$max" -ge 2 ] || t3_fail "only $max backend seen: the load did not reach the limit"
t3_ok "max_user_connections = 3 across t43a and t43b: at most $max backends; $na + $nb transactions, none failed"

# ---------------------------------------------------------------- max_db_connections
load "$WP_USER" "$WP_PASSWORD" t43c "$t3_tmp/c1.out"
load "$other" otherpw t43c "$t3_tmp/c2.out"
sample "datname = 't43c'" "$t3_tmp/max2"
wait "${loaders[@]}" || true
loaders=()
n1=$(check_pgbench "$t3_tmp/c1.out" "t43c as $WP_USER")
n2=$(check_pgbench "$t3_tmp/c2.out" "t43c as $other")
max=$(cat "$t3_tmp/max2")
[ "$max" -le 3 ] || t3_fail "max_db_connections = 3 but PostgreSQL showed $max backends on t43c"
[ "$max" -ge 2 ] || t3_fail "only $max backend seen on t43c: the load did not reach the limit"
t3_ok "max_db_connections = 3 across two users of t43c: at most $max backends; $n1 + $n2 transactions, none failed"
t3_stop
