#!/bin/bash
# t34_min_pool — issue 3, acceptance 4: min_pool_size = 3 is warm at start and refilled
# within 2 s after pg_terminate_backend on all of them, and a query right after the
# terminate succeeds (server_check_delay = 0: every lend is health-checked). Private
# warmpool (t30_lib.sh); the assertions are in t34_min_pool.c.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
t3_database t34
t3_start "min_pool_size = 3
max_pool_size = 5
server_check_delay = 0" \
    "t34 = host=127.0.0.1 port=$PG_PORT dbname=t34 user=$WP_USER password=$WP_PASSWORD"
t3_run t34_min_pool
t3_stop
