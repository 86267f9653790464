#!/bin/bash
# t38_client_idle — client_idle_timeout = 1s closes idle clients (transaction and session
# mode) but not busy ones. Private warmpool (t30_lib.sh); the assertions are in
# t38_client_idle.c.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
t3_start "client_idle_timeout = 1s
query_wait_timeout = 5s" "wptest = host=127.0.0.1 port=$PG_PORT dbname=wptest
sess = host=127.0.0.1 port=$PG_PORT dbname=wptest pool_mode=session max_pool_size=1"
export T38_DB_SESSION=sess
t3_run t38_client_idle
t3_stop
