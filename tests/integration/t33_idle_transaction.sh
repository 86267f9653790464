#!/bin/bash
# t33_idle_transaction — issue 3, acceptance 3: idle_transaction_timeout = 1s closes a
# client idle inside BEGIN; INSERT …, its insert is rolled back and its backend reused.
# Private warmpool (t30_lib.sh) with one backend; the assertions are in
# t33_idle_transaction.c.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
t3_database t33
PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" \
    -U "$WP_USER" -d t33 -c "CREATE TABLE t33 (id int)"
t3_start "max_pool_size = 1
idle_transaction_timeout = 1s" "t33 = host=127.0.0.1 port=$PG_PORT dbname=t33"
t3_run t33_idle_transaction
t3_stop
