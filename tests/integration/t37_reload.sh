#!/bin/bash
# t37_reload — issue 3, acceptance 7: SIGHUP with a smaller max_pool_size and a new
# query_timeout applies live without disconnecting any client; so does a changed
# connection string. Private warmpool (t30_lib.sh); the assertions are in t37_reload.c.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
t3_database t37
PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" \
    -U "$WP_USER" -d t37 -c "CREATE TABLE t37 (id int)"
db="t37 = host=127.0.0.1 port=$PG_PORT dbname=t37"
t3_start "max_pool_size = 4" "$db"
T37_RELOAD_SMALLER=$(t3_reload_script smaller "max_pool_size = 2
query_timeout = 1s" "$db")
T37_RELOAD_CONNSTR=$(t3_reload_script connstr "max_pool_size = 2
query_timeout = 1s" "$db application_name=t37b")
export T37_RELOAD_SMALLER T37_RELOAD_CONNSTR
t3_run t37_reload
t3_stop
