#!/bin/bash
# t64_console_exporter — issue 17: every SHOW of PgBouncer 1.25 (STATS, STATS_TOTALS,
# STATS_AVERAGES, TOTALS, SERVERS, CLIENTS, POOLS, PEER_POOLS, LISTS, USERS, DATABASES,
# PEERS, FDS, SOCKETS, ACTIVE_SOCKETS, CONFIG, MEM, DNS_HOSTS, DNS_ZONES, VERSION, STATE)
# answers with 1.25's column names, order and type OIDs first, read from RowDescription
# by psycopg 3 (t64_console_exporter.py, whose table was taken from PgBouncer 1.25.2);
# the console's rows, client ids and Parse/Bind counts are checked too. A stats user
# may not SHOW FDS.
set -eu
. "$(dirname "$0")/lib_private_warmpool.sh"
pw_start

pw_app wptest -c "SELECT 1" >/dev/null || fail "query through the private warmpool"
PW_DIR=$PW_DIR $PY "$here/t64_console_exporter.py" 127.0.0.1 "$PW_PORT" admin adminpass || fail "console checks"

out=$(pw_psql monitor monpass pgbouncer -v VERBOSITY=verbose -c "SHOW FDS" 2>&1) &&
    fail "a stats user could SHOW FDS"
echo "$out" | grep -q 42501 || fail "stats user SHOW FDS: want 42501, got: $out"
pw_psql monitor monpass pgbouncer -c "SHOW LISTS" >/dev/null || fail "stats user SHOW LISTS"
ok "SHOW FDS needs admin_users (42501); stats users read the rest"
