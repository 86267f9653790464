#!/bin/bash
# t31_query_timeout — issue 3, acceptance 1: query_timeout = 1s cancels a long query on
# the backend (simple, extended, pipelined), the client gets 57014 naming the timeout,
# the backend goes back idle and the client keeps working. Private warmpool (t30_lib.sh);
# the assertions are in t31_query_timeout.c.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
t3_database t31
t3_start "query_timeout = 1s
max_pool_size = 2" "t31 = host=127.0.0.1 port=$PG_PORT dbname=t31"
t3_run t31_query_timeout
t3_stop
