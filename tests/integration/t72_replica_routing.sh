#!/bin/bash
# t72_replica_routing — issue #18, first part: a primary and a streaming standby
# (lib_replica.sh) behind one warmpool. Reads through an entry on the standby report
# pg_is_in_recovery() = true and cannot write (25006); writes through the primary's
# entry land on the primary and reach the standby; an entry with both hosts and
# target_session_attrs=read-write writes to the primary whichever host comes first, and
# one with target_session_attrs=standby reads from the standby.
set -eu
. "$(dirname "$0")/t30_lib.sh"
. "$(dirname "$0")/lib_replica.sh"
rp_start_pair

h=127.0.0.1 pp=$RP_PRIMARY_PORT sp=$RP_STANDBY_PORT
t3_start "max_pool_size = 4" "primary = host=$h port=$pp dbname=wptest
standby = host=$h port=$sp dbname=wptest
rw = host=$h,$h port=$sp,$pp dbname=wptest target_session_attrs=read-write
ro = host=$h,$h port=$pp,$sp dbname=wptest target_session_attrs=standby"

q() { # DB SQL: one value through warmpool
    PGPASSWORD=$WP_PASSWORD psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$t3_port" \
        -U "$WP_USER" -d "$1" -c "$2"
}

[ "$(q standby "SELECT pg_is_in_recovery()")" = t ] || t3_fail "the standby entry is not on a standby"
out=$(q standby "CREATE TABLE t72_nope (i int)" 2>&1) && t3_fail "a write on the standby succeeded"
echo "$out" | grep -q "read-only transaction" || t3_fail "standby write: $out"
t3_ok "standby entry: pg_is_in_recovery() = true, writes refused (read-only transaction)"

[ "$(q primary "SELECT pg_is_in_recovery()")" = f ] || t3_fail "the primary entry is in recovery"
q primary "CREATE TABLE t72 (i int); INSERT INTO t72 VALUES (1)" >/dev/null
rp_wait_replayed
[ "$(rp_sql "$pp" "SELECT count(*) FROM pg_database WHERE datname = 'wptest'")" = 1 ] ||
    t3_fail "no wptest on the primary"
[ "$(q standby "SELECT count(*) FROM t72")" = 1 ] || t3_fail "the row did not reach the standby"
t3_ok "primary entry: writes land on the primary and reach the standby"

q rw "INSERT INTO t72 VALUES (2)" >/dev/null || t3_fail "read-write entry could not write"
[ "$(q rw "SELECT pg_is_in_recovery()")" = f ] || t3_fail "read-write entry on a standby"
[ "$(q ro "SELECT pg_is_in_recovery()")" = t ] || t3_fail "standby entry (target_session_attrs) on the primary"
t3_ok "multi-host entries: read-write finds the primary listed second, standby finds the standby listed second"
