#!/bin/bash
# t35_lifetime — issue 3, acceptance 5: server_lifetime = 2s under a steady 10-client
# load for 10 s replaces backends (new pids) with 0 client errors. Private warmpool
# (t30_lib.sh); the assertions are in t35_lifetime.c.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
t3_database t35
t3_start "max_pool_size = 10
server_lifetime = 2s" "t35 = host=127.0.0.1 port=$PG_PORT dbname=t35"
t3_run t35_lifetime
t3_stop
