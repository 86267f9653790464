# lib_replica.sh — a primary and a streaming standby of it, for the replica tests
# (issue #18). Sourced after t30_lib.sh (it uses t3_fail and t3_atexit_cmds):
#
#   rp_start_pair            primary in $t3_tmp/primary, standby (pg_basebackup -R) in
#                            $t3_tmp/standby; sets RP_PRIMARY_PORT, RP_STANDBY_PORT; the
#                            test user owns database wptest on both (replicated)
#   rp_start_standby NAME    another standby of that primary in $t3_tmp/NAME; sets
#                            RP_PORT (its port); stopped when the test exits
#   rp_stop NAME             stop $t3_tmp/NAME's server now (fast shutdown)
#   rp_sql PORT SQL          one value from that server, as postgres, over its socket
#   rp_wait_replayed [PORT]  wait until the standby (default RP_STANDBY_PORT) has replayed
#                            the primary's WAL
#
# Both servers are throwaway (scripts/pg-throwaway.sh): trust on their unix sockets,
# scram-sha-256 over TCP, fsync off. They are stopped when the test exits.

rp_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
rp_pgbin=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

declare -A rp_dirs=() # port -> the server's directory (its unix socket)

rp_sql() { # PORT SQL
    local dir=${rp_dirs[$1]:-$t3_tmp/primary}
    psql -X -q -At -v ON_ERROR_STOP=1 -h "$dir" -p "$1" -U postgres -d postgres -c "$2"
}

rp_start_pair() {
    local p=$t3_tmp/primary
    RP_PRIMARY_PORT=$("$rp_root/scripts/pg-throwaway.sh" start "$p") ||
        t3_fail "cannot start the primary"
    rp_dirs[$RP_PRIMARY_PORT]=$p
    t3_atexit_cmds+=("'$rp_root/scripts/pg-throwaway.sh' stop '$p'")
    rp_sql "$RP_PRIMARY_PORT" "CREATE ROLE $WP_USER LOGIN PASSWORD '$WP_PASSWORD'" >/dev/null
    rp_sql "$RP_PRIMARY_PORT" "CREATE DATABASE wptest OWNER $WP_USER" >/dev/null
    rp_start_standby standby
    RP_STANDBY_PORT=$RP_PORT
}

rp_start_standby() { # NAME
    local p=$t3_tmp/primary s=$t3_tmp/$1
    mkdir -p "$s" && chown postgres "$s"
    runuser -u postgres -- "$rp_pgbin/pg_basebackup" -h "$p" -p "$RP_PRIMARY_PORT" -U postgres \
        -D "$s/data" -R -X stream -c fast >"$s/basebackup.log" 2>&1 ||
        t3_fail "pg_basebackup: $(cat "$s/basebackup.log")"
    RP_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    rp_dirs[$RP_PORT]=$s
    # The copied postgresql.conf names the primary's port and socket directory.
    sed -i -e "s/^port = .*/port = $RP_PORT/" \
        -e "s|^unix_socket_directories = .*|unix_socket_directories = '$s'|" "$s/data/postgresql.conf"
    runuser -u postgres -- "$rp_pgbin/pg_ctl" -D "$s/data" -l "$s/server.log" -w -t 60 start \
        >/dev/null || t3_fail "cannot start the standby $1: $(tail -n 20 "$s/server.log")"
    t3_atexit_cmds+=("'$rp_root/scripts/pg-throwaway.sh' stop '$s'")
    [ "$(rp_sql "$RP_PORT" "SELECT pg_is_in_recovery()")" = t ] ||
        t3_fail "the standby $1 is not in recovery"
    rp_wait_replayed "$RP_PORT"
}

rp_stop() { # NAME
    "$rp_root/scripts/pg-throwaway.sh" stop "$t3_tmp/$1"
}

rp_wait_replayed() { # [PORT]
    local lsn port=${1:-$RP_STANDBY_PORT}
    lsn=$(rp_sql "$RP_PRIMARY_PORT" "SELECT pg_current_wal_lsn()")
    for _ in $(seq 200); do
        [ "$(rp_sql "$port" \
            "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn")" = t ] && return 0
        sleep 0.05
    done
    t3_fail "the standby on port $port did not replay up to $lsn within 10 s"
}
