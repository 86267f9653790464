#!/bin/bash
# t75_demoted_primary — issue #18: a read-write entry (target_session_attrs=read-write,
# the primary listed first, its standby second) never writes to a server that cannot
# take writes. A primary fenced read-only by a reload: its backend is closed, not lent
# again (t75_demoted_primary.py). A standby entry's backend whose server is promoted is
# closed too. Then the old primary comes back as a standby of the new one while
# warmpool runs: backends opened afterwards (libpq tries the old primary first) land on
# the new primary and every write succeeds.
set -eu
. "$(dirname "$0")/t30_lib.sh"
. "$(dirname "$0")/lib_replica.sh"
rp_start_pair

h=127.0.0.1 pp=$RP_PRIMARY_PORT sp=$RP_STANDBY_PORT
t3_start "max_pool_size = 4
query_wait_timeout = 3s" "rw = host=$h,$h port=$pp,$sp dbname=wptest target_session_attrs=read-write
ro = host=$h port=$sp dbname=wptest target_session_attrs=standby min_pool_size=2"

q() { # DB SQL: one value through warmpool
    PGPASSWORD=$WP_PASSWORD psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$t3_port" \
        -U "$WP_USER" -d "$1" -c "$2"
}

/usr/bin/python3 "$(dirname "$0")/t75_demoted_primary.py" "$h" "$t3_port" "$WP_USER" \
    "$WP_PASSWORD" "$t3_tmp/primary" "$pp" || t3_fail "the fenced primary"
grep -q "default_transaction_read_only = on, which does not fit target_session_attrs=read-write" \
    "$t3_log" || t3_fail "the fenced backend's close is not logged"
rp_wait_replayed

# Promotion: the standby entry's idle backend answers once more, then is closed, and
# its other idle backend (min_pool_size=2) with it.
[ "$(q ro "SELECT pg_is_in_recovery()")" = t ] || t3_fail "the standby entry is not on a standby"
runuser -u postgres -- "$rp_pgbin/pg_ctl" -D "$t3_tmp/primary/data" -m fast -w stop >/dev/null
runuser -u postgres -- "$rp_pgbin/pg_ctl" -D "$t3_tmp/standby/data" -w promote >/dev/null ||
    t3_fail "promote failed"
q ro "SELECT 1" >/dev/null 2>&1 || true # the promoted server reports in_hot_standby = off
grep -q "in_hot_standby = off, which does not fit target_session_attrs=standby" "$t3_log" ||
    t3_fail "the promoted standby's backend was not closed: $(grep -i standby "$t3_log" | tail -n 3)"
grep -q "closing: the server's role changed" "$t3_log" ||
    t3_fail "the standby entry's other idle backend on the promoted server was not closed"
out=$(q ro "SELECT pg_is_in_recovery()" 2>&1) && t3_fail "the standby entry still reads from the promoted server: $out"
t3_ok "standby entry: the backends on the promoted server are closed, no other standby: $out"

for _ in $(seq 100); do q rw "INSERT INTO t75 VALUES (100)" >/dev/null 2>&1 && break; sleep 0.1; done
[ "$(q rw "SELECT pg_is_in_recovery()")" = f ] || t3_fail "read-write entry not on the new primary"

# The old primary comes back as a standby of the new one (a fresh base backup).
old=$t3_tmp/primary
rm -rf "$old/data"
runuser -u postgres -- "$rp_pgbin/pg_basebackup" -h "$t3_tmp/standby" -p "$sp" -U postgres \
    -D "$old/data" -R -X stream -c fast >"$old/basebackup.log" 2>&1 ||
    t3_fail "pg_basebackup from the new primary: $(cat "$old/basebackup.log")"
sed -i -e "s/^port = .*/port = $pp/" \
    -e "s|^unix_socket_directories = .*|unix_socket_directories = '$old'|" "$old/data/postgresql.conf"
runuser -u postgres -- "$rp_pgbin/pg_ctl" -D "$old/data" -l "$old/server.log" -w -t 60 start \
    >/dev/null || t3_fail "the old primary did not start as a standby"
[ "$(rp_sql "$pp" "SELECT pg_is_in_recovery()")" = t ] || t3_fail "the old primary is not a standby"

# New backends: libpq tries the old primary first, finds it in recovery, goes on.
rp_sql "$sp" "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
    WHERE usename = '$WP_USER' AND datname = 'wptest'" >/dev/null
errors=0
for i in $(seq 101 120); do
    q rw "INSERT INTO t75 VALUES ($i)" >/dev/null 2>&1 || errors=$((errors + 1))
done
ok_rows=$(psql -X -q -At -h "$t3_tmp/standby" -p "$sp" -U postgres -d wptest \
    -c "SELECT count(*) FROM t75 WHERE n BETWEEN 101 AND 120")
[ "$((ok_rows + errors))" = 20 ] || t3_fail "$ok_rows rows on the new primary, $errors errors, of 20"
[ "$ok_rows" -ge 19 ] || t3_fail "only $ok_rows of 20 writes after the old primary came back"
[ "$(q rw "SELECT pg_is_in_recovery()")" = f ] || t3_fail "read-write entry on a standby"
t3_ok "old primary back as a standby: $ok_rows of 20 writes on the new primary ($errors refused by a backend terminated under it), none on the standby"
kill -0 "$t3_pid" || t3_fail "warmpool went away"
