#!/bin/bash
# t55_idle_pools — pools made at a client's first login are freed once unused
# ("Correctness first", item 14b). Private warmpool (t30_lib.sh) with a `*` entry,
# server_idle_timeout = 1s and the test user as admin; the assertions are in
# t55_idle_pools.c.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
t3_start "server_idle_timeout = 1s
admin_users = $WP_USER" "wptest = host=127.0.0.1 port=$PG_PORT dbname=wptest
* = host=127.0.0.1 port=$PG_PORT dbname=wptest"
t3_run t55_idle_pools
t3_stop
t3_ok "SIGQUIT: warmpool exited with status 0"
