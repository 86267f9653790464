#!/bin/bash
# t36_pg_restart — issue 3, acceptance 6: PostgreSQL stopped for 3 s (longer than
# query_wait_timeout) under load: clients get errors, not hangs, and the pool recovers by
# itself within 5 s of PostgreSQL being back. Runs its own PostgreSQL (so the shared one of run.sh stays up) and a private
# warmpool (t30_lib.sh); the assertions are in t36_pg_restart.c.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
pgdir=$t3_tmp/pg
pgport=$(t3_free_port)
"$t3_root/scripts/pg-throwaway.sh" start "$pgdir" "$pgport" >/dev/null
t3_atexit '"$t3_root/scripts/pg-throwaway.sh" stop "$pgdir"'
psql -X -q -v ON_ERROR_STOP=1 -h "$pgdir" -p "$pgport" -U postgres -d postgres \
    -c "CREATE ROLE $WP_USER LOGIN PASSWORD '$WP_PASSWORD'" -c "CREATE DATABASE t36 OWNER $WP_USER"
t3_ok "private PostgreSQL on port $pgport"
# Under valgrind, opening the pool's backends alone can take 2 s (t36_pg_restart.c scales
# its bounds the same way).
wait_timeout=2s
[ "${WP_VALGRIND:-0}" = 1 ] && wait_timeout=10s
t3_start "min_pool_size = 2
max_pool_size = 5
query_wait_timeout = $wait_timeout
server_login_retry = 1s" "t36 = host=127.0.0.1 port=$pgport dbname=t36"
export T36_STOP_CMD="'$t3_root/scripts/pg-throwaway.sh' stop '$pgdir'"
export T36_START_CMD="'$t3_root/scripts/pg-throwaway.sh' start '$pgdir' $pgport >/dev/null"
t3_run t36_pg_restart
t3_stop
