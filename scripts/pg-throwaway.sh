#!/bin/sh
# pg-throwaway.sh — start or stop a temporary PostgreSQL 15 server for tests, demos, benches.
#
#   scripts/pg-throwaway.sh start DIR [PORT]   initdb into DIR/data, start, print the port
#   scripts/pg-throwaway.sh stop DIR           fast shutdown (leaves DIR for inspection)
#
# The server listens on 127.0.0.1:PORT (random free port by default) and on a unix socket
# in DIR. Local (unix) connections are trusted; TCP uses scram-sha-256. When run as root,
# everything runs as the `postgres` user, since PostgreSQL refuses to run as root.
set -eu

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2; }

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    # Ask the kernel for an unused port by binding port 0.
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case "$cmd" in
start)
    port=${3:-$(free_port)}
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$dir"
        # mktemp -d makes 0700 directories: let postgres traverse the parent.
        chmod a+x "$(dirname "$(realpath "$dir")")"
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres --auth-local=trust \
            --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; exit 1; }
        cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = ${PG_MAX_CONNECTIONS:-300}
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
password_encryption = 'scram-sha-256'
CONF
    else
        sed -i "s/^port = .*/port = $port/" "$dir/data/postgresql.conf"
    fi
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
        { cat "$dir/server.log" >&2; exit 1; }
    echo "$port"
    ;;
stop)
    [ -f "$dir/data/postmaster.pid" ] || exit 0
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
*)
    echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2 ;;
esac
