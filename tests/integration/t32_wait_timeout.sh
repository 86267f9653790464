#!/bin/bash
# t32_wait_timeout — issue 3, acceptance 2: with max_pool_size = 2 and
# query_wait_timeout = 1s, a third client behind two pg_sleep(3) gets the wait-timeout
# error after ~1 s while the first two succeed. Private warmpool (t30_lib.sh); the
# assertions are in t32_wait_timeout.c.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
t3_database t32
t3_start "max_pool_size = 2
query_wait_timeout = 1s" "t32 = host=127.0.0.1 port=$PG_PORT dbname=t32"
t3_run t32_wait_timeout
t3_stop
