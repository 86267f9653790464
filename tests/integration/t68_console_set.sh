#!/bin/bash
# t68_console_set — issue 17: the console's SET key = value (PgBouncer 1.25's "changes a
# configuration setting"). A SET shows in SHOW CONFIG and takes effect as a reload of
# the file with that key changed would; a second SET keeps the first; PgBouncer's name
# and bare or quoted values are taken; an unknown key (42704), a bad value (22023), a
# key only a restart changes (55P02) and a malformed SET (42601) are refused, and so is
# a stats user (42501); a RELOAD rereads the file and drops every SET value.
set -eu
. "$(dirname "$0")/lib_private_warmpool.sh"
pw_start

config_row() { pw_admin -F '|' -c "SHOW CONFIG" | grep "^$1|" | cut -d'|' -f1-4; }
expect_row() {
    local got
    got=$(config_row "$1")
    [ "$got" = "$2" ] || fail "SHOW CONFIG $1: want '$2', got '$got'"
}

pw_admin -c "SET query_wait_timeout = 7" || fail "SET query_wait_timeout = 7"
expect_row query_wait_timeout "query_wait_timeout|7|120|yes"
pw_admin -c "set server_check_query to 'select 2';" || fail "SET server_check_query TO 'select 2'"
expect_row server_check_query "server_check_query|select 2|<empty>|yes"
expect_row query_wait_timeout "query_wait_timeout|7|120|yes"
pw_admin -c "SET default_pool_size=3" -c "SET log_connections = 0" -c "SET query_wait_timeout = '0.5'" ||
    fail "SET under PgBouncer's name, bare and quoted"
expect_row max_pool_size "max_pool_size|3|20|yes"
expect_row default_pool_size "default_pool_size|3|20|yes"
expect_row log_connections "log_connections|0|1|yes"
expect_row query_wait_timeout "query_wait_timeout|0.5|120|yes"
ok "SET shows in SHOW CONFIG, under either name, and a later SET keeps the earlier ones"

# want SQLSTATE USER PASSWORD COMMAND
want_error() {
    local out
    out=$(pw_psql "$2" "$3" pgbouncer -v VERBOSITY=verbose -c "$4" 2>&1) && fail "'$4' succeeded"
    grep -q "ERROR:  $1:" <<<"$out" || fail "'$4': want SQLSTATE $1, got: $out"
}
want_error 42704 admin adminpass "SET no_such_key = 1"
want_error 22023 admin adminpass "SET query_wait_timeout = 'soon'"
want_error 22023 admin adminpass "SET max_client_conn = 0"
want_error 55P02 admin adminpass "SET listen_port = 7000"
want_error 42601 admin adminpass "SET query_wait_timeout"
want_error 42601 admin adminpass "SET query_wait_timeout = 'unterminated"
want_error 42501 monitor monpass "SET query_wait_timeout = 9"
expect_row query_wait_timeout "query_wait_timeout|0.5|120|yes"
ok "unknown key 42704, bad value 22023, restart-only key 55P02, malformed 42601, stats user 42501"

# max_client_conn = 1 while one client is connected: the next login is refused (53300).
pw_app wptest -c "SELECT pg_sleep(3)" >/dev/null &
sleeper=$!
for _ in $(seq 50); do
    [ "$(pw_admin -c "SHOW CLIENTS" | grep -c "|wptest|")" -ge 1 ] && break
    sleep 0.1
done
pw_admin -c "SET max_client_conn = 1" || fail "SET max_client_conn = 1"
out=$(PGSSLMODE=disable pw_app wptest -c "SELECT 1" 2>&1) && fail "a second client got in with max_client_conn = 1"
grep -q "max_client_conn" <<<"$out" || fail "second client: want the max_client_conn refusal, got: $out"
wait "$sleeper" || fail "the connected client failed"
ok "SET max_client_conn = 1 takes effect: a second client is refused"

pw_admin -c "RELOAD" || fail "RELOAD"
expect_row max_client_conn "max_client_conn|500|100|yes"
expect_row query_wait_timeout "query_wait_timeout|120|120|yes"
expect_row server_check_query "server_check_query|<empty>|<empty>|yes"
expect_row max_pool_size "max_pool_size|10|20|yes"
grep -q "reload: 5 SET values dropped" "$PW_LOG" || fail "no log line for the dropped SET values"
pw_app wptest -c "SELECT 1" >/dev/null || fail "login after RELOAD"
ok "RELOAD drops every SET value (the file's are in force) and says so in the log"
