#!/bin/bash
# demo.sh — warmpool in front of a throwaway PostgreSQL, and clients using it.
#
#   scripts/demo.sh              (after `make warmpool`; `make demo` does both)
#   DEMO_KEEP=1 scripts/demo.sh  keep everything running until Ctrl-C
#
# Starts PostgreSQL 15 in a temp dir (scripts/pg-throwaway.sh), creates role and database
# `demo` (password `demo`), starts ./warmpool in transaction mode with md5 client auth,
# then runs psql and a short `pgbench -S` through it. Everything is stopped and removed
# at the end (or on Ctrl-C).
set -eu

cd "$(dirname "$0")/.."
WARMPOOL=${WARMPOOL:-./warmpool}
[ -x "$WARMPOOL" ] || { echo "demo: no $WARMPOOL binary; run make warmpool" >&2; exit 1; }
unset PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGOPTIONS PGTZ PGAPPNAME PGSERVICE

tmp=$(mktemp -d /tmp/warmpool-demo.XXXXXX)
wp_pid=

cleanup() {
    trap - EXIT INT TERM
    if [ -n "$wp_pid" ] && kill -0 "$wp_pid" 2>/dev/null; then
        kill -QUIT "$wp_pid"
        wait "$wp_pid" 2>/dev/null || true
    fi
    scripts/pg-throwaway.sh stop "$tmp/pg" || true
    rm -rf "$tmp"
    echo "demo: stopped warmpool and PostgreSQL, removed $tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { printf '\n== %s\n' "$*"; }

read -r pgport wpport <<<"$(/usr/bin/python3 -c '
import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')"

step "PostgreSQL 15 on 127.0.0.1:$pgport (data in $tmp/pg)"
scripts/pg-throwaway.sh start "$tmp/pg" "$pgport" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -h "$tmp/pg" -p "$pgport" -U postgres -d postgres \
    -c "CREATE ROLE demo LOGIN PASSWORD 'demo'" -c "CREATE DATABASE demo OWNER demo"
echo "role demo (password demo), database demo"

step "warmpool on 127.0.0.1:$wpport (transaction pooling, md5 auth, 5 backends at most)"
printf '"demo" "demo"\n' >"$tmp/userlist.txt"
cat >"$tmp/warmpool.ini" <<INI
[warmpool]
listen_addr = 127.0.0.1
listen_port = $wpport
unix_socket_dir = $tmp
auth_type = md5
auth_file = $tmp/userlist.txt
pool_mode = transaction
max_pool_size = 5
max_client_conn = 200

[databases]
demo = host=127.0.0.1 port=$pgport dbname=demo
INI
cat "$tmp/warmpool.ini"
"$WARMPOOL" -c "$tmp/warmpool.ini" 2>"$tmp/warmpool.log" &
wp_pid=$!
for _ in $(seq 50); do
    pg_isready -q -h 127.0.0.1 -p "$wpport" -U demo -d demo -t 1 && break
    kill -0 "$wp_pid" 2>/dev/null || { cat "$tmp/warmpool.log" >&2; exit 1; }
    sleep 0.1
done

export PGPASSWORD=demo
step "psql through warmpool"
PGAPPNAME=warmpool-demo psql -X -h 127.0.0.1 -p "$wpport" -U demo -d demo \
    -c "SELECT version(), current_setting('application_name') AS application_name" \
    -c "SELECT now() AS server_time, pg_backend_pid() AS backend_pid"

step "pgbench -S: 50 clients through warmpool for 5 s"
pgbench -i -q -s 1 -h "$tmp/pg" -p "$pgport" -U demo demo >/dev/null 2>&1
pgbench -n -S -c 50 -j 2 -T 5 -h 127.0.0.1 -p "$wpport" -U demo demo 2>&1 |
    grep -E '^(number of clients|number of transactions actually|latency average|tps)'
backends=$(psql -X -At -h "$tmp/pg" -p "$pgport" -U postgres -d postgres \
    -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'demo' AND usename = 'demo'")
echo "PostgreSQL served those 50 clients with $backends connections from warmpool."

step "connect yourself"
echo "  PGPASSWORD=demo psql -h 127.0.0.1 -p $wpport -U demo demo"
echo "  warmpool log: $tmp/warmpool.log"
if [ "${DEMO_KEEP:-0}" = 1 ]; then
    echo "DEMO_KEEP=1: running until Ctrl-C"
    wait "$wp_pid" || true
else
    echo "(run with DEMO_KEEP=1 to keep it running)"
fi
