#!/bin/bash
# t39_statement_mode — pool_mode = statement: each statement may run on another backend;
# a transaction block is refused with FATAL 0A000 and its work is rolled back, and the
# backend serves the next client cleanly. Private warmpool (t30_lib.sh).
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
t3_database wpstmt
t3_start "" "wpstmt = host=127.0.0.1 port=$PG_PORT dbname=wpstmt pool_mode=statement max_pool_size=1"
run() { PGPASSWORD=$WP_PASSWORD psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$t3_port" -U "$WP_USER" wpstmt "$@"; }

run -c "CREATE TABLE t (x int)" || t3_fail "autocommit statement through statement mode"
[ "$(run -c "SELECT 6 * 7")" = 42 ] || t3_fail "plain SELECT in statement mode"
t3_ok "single statements run"

out=$(run -c "BEGIN" -c "INSERT INTO t VALUES (1)" -c "COMMIT" 2>&1) &&
    t3_fail "a transaction block was allowed in statement mode: $out"
echo "$out" | grep -q "transaction blocks are not allowed in statement pooling mode" ||
    t3_fail "unexpected error for BEGIN in statement mode: $out"
t3_ok "BEGIN refused: $(echo "$out" | head -n 1)"

[ "$(run -c "SELECT count(*) FROM t")" = 0 ] || t3_fail "the refused transaction left a row"
[ "$(run -c "SELECT txid_current_if_assigned() IS NULL")" = t ] ||
    t3_fail "the next client found the backend inside a transaction"
t3_ok "nothing committed; the backend (pool of 1) serves the next client outside a transaction"
t3_stop
