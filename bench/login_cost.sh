#!/bin/bash
# login_cost.sh — user-space instructions (callgrind, all threads) per backend login
# with a plaintext password (issue #16, acceptance 3), for one or more warmpool binaries.
#
#   bench/login_cost.sh BINARY...       e.g. bench/login_cost.sh /tmp/main/warmpool ./warmpool
#
# A throwaway PostgreSQL 15 (scripts/pg-throwaway.sh; TCP logins use scram-sha-256, 4096
# iterations). Each binary runs twice under valgrind --tool=callgrind, with one client
# login (psql SELECT 1) that creates the pool: min_pool_size = 20 (the pool opens 20
# backends) and min_pool_size = 0 (one backend). It is stopped (SIGQUIT) once its log
# shows the backends connected. (Ir(20) - Ir(0)) / 19 = instructions per backend login.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/warmpool-login-cost.XXXXXX)
pg=$work/pg
pgport=$("$root/scripts/pg-throwaway.sh" start "$pg")
trap '"$root/scripts/pg-throwaway.sh" stop "$pg" >/dev/null 2>&1 || true' EXIT
psql -X -q -h "$pg" -p "$pgport" -U postgres -d postgres \
    -c "SET password_encryption = 'scram-sha-256'" \
    -c "CREATE ROLE costuser LOGIN PASSWORD 'costpass'" >/dev/null
printf '"costuser" "costpass"\n' >"$work/users.txt"

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

run() { # BINARY MIN_POOL_SIZE TAG: prints the Ir total
    local bin=$1 min=$2 dir=$work/$3 port pid want
    mkdir -p "$dir"
    port=$(free_port)
    cat >"$dir/warmpool.ini" <<INI
[warmpool]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = md5
auth_file = $work/users.txt
logfile = $dir/warmpool.log
min_pool_size = $min
max_pool_size = 30
[databases]
postgres = host=127.0.0.1 port=$pgport dbname=postgres
INI
    valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" --dump-instr=no \
        "$bin" -c "$dir/warmpool.ini" 2>"$dir/valgrind.log" &
    pid=$!
    for _ in $(seq 600); do
        PGPASSWORD=costpass psql -X -q -At -h 127.0.0.1 -p "$port" -U costuser -d postgres \
            -c "SELECT 1" >/dev/null 2>&1 && break
        sleep 0.2
    done
    want=$((min > 1 ? min : 1))
    for _ in $(seq 1200); do
        [ "$(grep -c ': connected' "$dir/warmpool.log" 2>/dev/null || echo 0)" -ge "$want" ] && break
        sleep 0.2
    done
    kill -QUIT "$pid"
    wait "$pid" || true
    awk '/^summary:/ { print $2; exit }' "$dir/callgrind.out"
}

echo "| binary | Ir, min_pool_size=20 | Ir, min_pool_size=0 | instructions per login |"
echo "|---|---|---|---|"
i=0
for bin in "$@"; do
    i=$((i + 1))
    full=$(run "$bin" 20 "b$i-20")
    base=$(run "$bin" 0 "b$i-0")
    echo "| $bin | $full | $base | $(((full - base) / 19)) |"
done
