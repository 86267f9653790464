#!/bin/bash
# t40_admin_console — issue 4: the admin console through a real warmpool and psql.
#
# A private warmpool (lib_private_warmpool.sh) with admin_users = admin and
# stats_users = monitor. Checks: every SHOW answers with PgBouncer's column names;
# `pgbouncer` is an alias of `warmpool`; stats_users may SHOW but not PAUSE (42501);
# other users cannot log in to the console; the extended protocol is refused with
# 0A000 while the session stays usable; PAUSE makes new queries wait and RESUME
# releases them with no error; KILL closes a database's clients; RELOAD applies a
# changed setting; SHUTDOWN stops warmpool (immediate, as PgBouncer's).
set -eu
. "$(dirname "$0")/lib_private_warmpool.sh"
pw_start

# ---------------------------------------------------------------- SHOW columns
expect_columns() { # COMMAND "col|col|..."
    local got
    got=$(pw_admin -F '|' -P footer=off -P tuples_only=off -c "$1" | head -n 1)
    [ "$got" = "$2" ] || fail "$1: columns '$got', want '$2'"
}
pw_app wptest -c "SELECT 1" >/dev/null || fail "query through the private warmpool"
conn="type|user|database|replication|state|addr|port|local_addr|local_port|connect_time|request_time|wait|wait_us|close_needed|ptr|link|remote_pid|tls|application_name|prepared_statements|id"
expect_columns "SHOW POOLS" "database|user|cl_active|cl_waiting|cl_active_cancel_req|cl_waiting_cancel_req|sv_active|sv_active_cancel|sv_being_canceled|sv_idle|sv_used|sv_tested|sv_login|maxwait|maxwait_us|pool_mode|load_balance_hosts|cl_idle|paused|cl_pinned|host|failovers|fleet_cap|fleet_backends"
expect_columns "SHOW STATS" "database|total_server_assignment_count|total_xact_count|total_query_count|total_received|total_sent|total_xact_time|total_query_time|total_wait_time|total_client_parse_count|total_server_parse_count|total_bind_count|avg_server_assignment_count|avg_xact_count|avg_query_count|avg_recv|avg_sent|avg_xact_time|avg_query_time|avg_wait_time|avg_client_parse_count|avg_server_parse_count|avg_bind_count|total_query_errors|query_p50_us|query_p95_us|query_p99_us|xact_p95_us|wait_p95_us|wait_p99_us"
expect_columns "SHOW SERVERS" "$conn"
expect_columns "SHOW CLIENTS" "$conn"
expect_columns "SHOW DATABASES" "name|host|port|database|force_user|pool_size|min_pool_size|reserve_pool_size|server_lifetime|pool_mode|load_balance_hosts|max_connections|current_connections|max_client_connections|current_client_connections|paused|disabled"
expect_columns "SHOW CONFIG" "key|value|default|changeable|effect"
expect_columns "SHOW PREPARED" "name|uses|refs|params|validated|query"
expect_columns "SHOW STATEMENTS" "database|user|fingerprint|calls|total_time_us|mean_time_us|max_time_us|errors|nplus1_bursts|query"
expect_columns "SHOW VERSION" "version"
ok "every SHOW answers with the expected columns"

mode=$(pw_show_col "SHOW POOLS" "wptest|$WP_USER|" pool_mode)
[ "$mode" = transaction ] || fail "SHOW POOLS wptest/$WP_USER pool_mode: '$mode'"
queries=$(pw_show_col "SHOW STATS" "wptest|" total_query_count)
[ -n "$queries" ] || fail "SHOW STATS has no wptest row"
[ "$queries" -ge 1 ] || fail "SHOW STATS total_query_count: $queries"
pw_admin -F '|' -c "SHOW SERVERS" | grep -q "^S|$WP_USER|wptest|none|idle|127.0.0.1|$PG_PORT|" ||
    fail "SHOW SERVERS has no idle wptest server: $(pw_admin -c 'SHOW SERVERS')"
pw_admin -F '|' -c "SHOW CLIENTS" | grep -q "^C|admin|warmpool|" ||
    fail "SHOW CLIENTS does not list the console client"
pw_admin -F '|' -c "SHOW DATABASES" | grep -q "^two|127.0.0.1|$PG_PORT|wptest||2|" ||
    fail "SHOW DATABASES row of 'two': $(pw_admin -c 'SHOW DATABASES')"
pw_admin -F '|' -c "SHOW CONFIG" | grep -qx "admin_users|admin||yes|yes" || fail "SHOW CONFIG admin_users"
pw_admin -F '|' -c "SHOW STATEMENTS" | grep -q "|SELECT ?\$" || fail "SHOW STATEMENTS lacks 'SELECT ?'"
pw_admin -c "SHOW VERSION" | grep -q "^warmpool " || fail "SHOW VERSION"
pw_admin -c "show help;" 2>&1 | grep -q "SHOW HELP|POOLS" || fail "SHOW HELP"
ok "SHOW rows: pools, stats, servers, clients, databases, config, statements, version, help"

PGPASSWORD=adminpass psql -X -At -h 127.0.0.1 -p "$PW_PORT" -U admin pgbouncer -c "SHOW VERSION" |
    grep -q "^warmpool " || fail "database pgbouncer is not the console"
ok "database 'pgbouncer' is the console too"

# ---------------------------------------------------------------- who may do what
pw_psql monitor monpass warmpool -c "SHOW POOLS" >/dev/null || fail "stats user cannot SHOW"
out=$(pw_psql monitor monpass warmpool -v VERBOSITY=verbose -c "PAUSE" 2>&1) &&
    fail "stats user could PAUSE"
echo "$out" | grep -q "42501" || fail "stats user PAUSE: want 42501, got: $out"
out=$(pw_psql "$WP_USER" "$WP_PASSWORD" warmpool -c "SHOW POOLS" 2>&1) &&
    fail "a plain user logged in to the console"
echo "$out" | grep -q "not allowed to use the admin console" || fail "plain user: $out"
out=$(pw_psql admin wrongpass warmpool -c "SHOW POOLS" 2>&1) && fail "wrong password accepted"
echo "$out" | grep -q "password authentication failed" || fail "wrong password: $out"
out=$(pw_admin -v VERBOSITY=verbose -c "SHOW NOTHING" 2>&1) && fail "SHOW NOTHING succeeded"
echo "$out" | grep -q "42601" || fail "unknown SHOW: want 42601, got: $out"
out=$(pw_admin -v VERBOSITY=verbose -c "DROP TABLE x" 2>&1) && fail "DROP TABLE succeeded"
echo "$out" | grep -q "42601" || fail "unknown command: want 42601, got: $out"
ok "stats_users SHOW only (42501), others refused at login, unknown commands 42601"

$STATS_CLIENT pgwire-extended 127.0.0.1 "$PW_PORT" admin adminpass warmpool >/dev/null ||
    fail "extended protocol on the console"
ok "extended protocol refused with 0A000, session still usable"

# ---------------------------------------------------------------- PAUSE / RESUME
pw_admin -c "PAUSE wptest" >/dev/null || fail "PAUSE wptest"
[ "$(pw_show_col "SHOW POOLS" "wptest|$WP_USER|" paused)" = 1 ] ||
    fail "SHOW POOLS does not show wptest paused"
start=$(date +%s%3N)
pw_app wptest -c "SELECT 'released'" >"$PW_DIR/paused.out" 2>&1 &
waiter=$!
sleep 1
kill -0 "$waiter" 2>/dev/null || fail "a query ran on a paused pool: $(cat "$PW_DIR/paused.out")"
waiting=$(pw_show_col "SHOW POOLS" "wptest|$WP_USER|" cl_waiting)
[ "$waiting" -ge 1 ] || fail "paused pool: cl_waiting $waiting"
pw_app wpload -c "SELECT 1" >/dev/null || fail "PAUSE wptest also stopped wpload"
pw_admin -c "RESUME wptest" >/dev/null || fail "RESUME wptest"
wait "$waiter" || fail "query after RESUME failed: $(cat "$PW_DIR/paused.out")"
[ "$(cat "$PW_DIR/paused.out")" = released ] || fail "after RESUME: $(cat "$PW_DIR/paused.out")"
ms=$(($(date +%s%3N) - start))
[ "$ms" -ge 1000 ] || fail "the paused query finished after only $ms ms"
ok "PAUSE wptest held a query ${ms} ms (cl_waiting $waiting); RESUME released it without error"

pw_admin -c "PAUSE" >/dev/null && pw_admin -c "RESUME" >/dev/null || fail "PAUSE/RESUME all"
pw_app wptest -c "SELECT 1" >/dev/null || fail "query after global RESUME"
ok "PAUSE and RESUME without a database"

# ---------------------------------------------------------------- KILL
pw_app wpload -c "SELECT pg_sleep(30)" >"$PW_DIR/kill.out" 2>&1 &
victim=$!
for _ in $(seq 50); do
    pw_admin -F '|' -c "SHOW CLIENTS" | grep -q "^C|$WP_USER|wpload|none|active|" && break
    sleep 0.1
done
pw_admin -c "KILL wpload" >/dev/null || fail "KILL wpload"
for _ in $(seq 50); do
    kill -0 "$victim" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$victim" 2>/dev/null && fail "KILL wpload left its client connected"
wait "$victim" && fail "the killed client's query succeeded"
pw_admin -F '|' -c "SHOW CLIENTS" | grep -q "|wpload|" && fail "SHOW CLIENTS still lists wpload"
pw_admin -c "RESUME wpload" >/dev/null || fail "RESUME wpload after KILL (KILL pauses, as PgBouncer's)"
pw_app wpload -c "SELECT 1" >/dev/null || fail "wpload unusable after KILL and RESUME"
ok "KILL wpload closed its client and paused it; after RESUME new clients are served"

# ---------------------------------------------------------------- RELOAD
sed -i 's/^max_pool_size = 10$/max_pool_size = 7/' "$PW_INI"
pw_admin -c "RELOAD" >/dev/null || fail "RELOAD"
for _ in $(seq 30); do
    v=$(pw_admin -F '|' -c "SHOW CONFIG" | grep "^max_pool_size|" | cut -d'|' -f2)
    [ "$v" = 7 ] && break
    sleep 0.1
done
[ "$v" = 7 ] || fail "after RELOAD max_pool_size is $v, want 7"
ok "RELOAD applied max_pool_size = 7"

# ---------------------------------------------------------------- SHUTDOWN (last)
pw_admin -c "SHUTDOWN" >/dev/null 2>&1 || true
for _ in $(seq 100); do
    kill -0 "$PW_PID" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$PW_PID" 2>/dev/null && fail "warmpool still running 10 s after SHUTDOWN"
rc=0
wait "$PW_PID" || rc=$?
[ "$rc" = 0 ] || fail "warmpool exit status $rc after SHUTDOWN"
grep -q "immediate shutdown" "$PW_LOG" || fail "no immediate shutdown in the log"
PW_PID=
ok "SHUTDOWN stopped warmpool at once, as PgBouncer's (exit 0)"
