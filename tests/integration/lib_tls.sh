#!/bin/bash
# lib_tls.sh — helpers for the TLS tests (t50_tls.sh … t53_tls_client_idle.sh). Sourced.
#
#   tl_ca NAME                      a CA: $TL_DIR/NAME.key, NAME.crt
#   tl_issue CA NAME CN [SAN]       a certificate signed by CA: NAME.key (0600), NAME.crt
#   tl_start NAME INI_BODY          a private warmpool with that ini ($TL_DIR/NAME.ini;
#                                   unix socket in $TL_SOCKET_DIR if set, else none);
#                                   sets TL_PORT_<NAME>, TL_PID_<NAME>, TL_LOG_<NAME>
#   tl_psql NAME CONNINFO [psql args...]   psql through that instance (host=localhost)
#   tl_stop_all                     SIGQUIT every instance, fail on a bad exit status or a
#                                   sanitizer report (also run at exit)
#   tl_tls_postgres DB              a throwaway PostgreSQL in $TL_DIR/pg with ssl = on (a
#                                   server certificate from the CA "ca", which the test
#                                   made), $WP_USER (its password) admitted over TCP only
#                                   with TLS, owner of DB; sets pgs and pgs_port, defines
#                                   tl_direct (superuser psql over its unix socket);
#                                   returns once a TLS login of $WP_USER works
# Certificates are made with the openssl command line in a fresh temp dir ($TL_DIR),
# which is removed at exit unless the test failed.
set -eu

tl_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WARMPOOL=${WARMPOOL:-$tl_root/warmpool}
TL_DIR=$(mktemp -d /tmp/warmpool-tls.XXXXXX)
chmod 755 "$TL_DIR" # PostgreSQL (user postgres) reads certificates from here in t51
tl_names=() tl_atexit=() tl_why=
tl_slow=1 # WP_VALGRIND=1: warmpool runs under valgrind; its start and stop take longer
[ "${WP_VALGRIND:-0}" = 1 ] && tl_slow=6

tl_fail() {
    tl_why="FAIL: $*"
    echo "$tl_why" >&2
    exit 1
}
tl_ok() { echo "ok: $*"; }

tl_free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

tl_tls_postgres() { # DB
    pgs=$TL_DIR/pg
    tl_issue ca server localhost "DNS:localhost,IP:127.0.0.1"
    pgs_port=$("$tl_root/scripts/pg-throwaway.sh" start "$pgs") || tl_fail "cannot start PostgreSQL"
    tl_atexit+=("'$tl_root/scripts/pg-throwaway.sh' stop '$pgs'")
    install -o postgres -m 600 "$TL_DIR/server.key" "$pgs/data/server.key"
    install -o postgres -m 644 "$TL_DIR/server.crt" "$pgs/data/server.crt"
    cat >>"$pgs/data/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
CONF
    local hba=$pgs/data/pg_hba.conf
    {
        echo "hostnossl all $WP_USER 127.0.0.1/32 reject"
        echo "hostssl all $WP_USER 127.0.0.1/32 scram-sha-256"
        cat "$hba"
    } >"$hba.new"
    cat "$hba.new" >"$hba" # cat keeps the file's owner
    tl_direct -U postgres -d postgres -c "CREATE ROLE $WP_USER LOGIN PASSWORD '$WP_PASSWORD'" \
        -c "CREATE DATABASE $1 OWNER $WP_USER" -c "SELECT pg_reload_conf()" >/dev/null
    # The reload is asynchronous: wait until the postmaster applies the new rules.
    for _ in $(seq 100); do
        PGPASSWORD=$WP_PASSWORD PGCONNECT_TIMEOUT=10 psql -X -At "host=127.0.0.1 port=$pgs_port \
            user=$WP_USER dbname=$1 sslmode=require" -c "SELECT 1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    tl_fail "PostgreSQL with ssl = on does not take TLS logins"
}

tl_direct() {
    PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 \
        -h "$pgs" -p "$pgs_port" "$@"
}

tl_ca() {
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -days 2 \
        -subj "/CN=$1" -keyout "$TL_DIR/$1.key" -out "$TL_DIR/$1.crt" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || tl_fail "openssl: CA $1"
}

tl_issue() { # CA NAME CN [SAN]
    local ca=$1 name=$2 cn=$3 san=${4:-}
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/CN=$cn" \
        -keyout "$TL_DIR/$name.key" -out "$TL_DIR/$name.csr" 2>/dev/null ||
        tl_fail "openssl: request for $name"
    : >"$TL_DIR/$name.ext"
    [ -n "$san" ] && echo "subjectAltName=$san" >"$TL_DIR/$name.ext"
    openssl x509 -req -in "$TL_DIR/$name.csr" -CA "$TL_DIR/$ca.crt" -CAkey "$TL_DIR/$ca.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days 2 -sha256 -extfile "$TL_DIR/$name.ext" \
        -out "$TL_DIR/$name.crt" 2>/dev/null || tl_fail "openssl: sign $name"
    chmod 600 "$TL_DIR/$name.key"
}

tl_start() { # NAME INI_BODY ([warmpool] lines after listen/log settings, then sections)
    local name=$1 port ini log pid
    port=$(tl_free_port)
    ini=$TL_DIR/$name.ini log=$TL_DIR/$name.log
    cat >"$ini" <<INI
[warmpool]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir = ${TL_SOCKET_DIR:-}
logfile = $log
$2
INI
    "$WARMPOOL" --check -c "$ini" >"$TL_DIR/$name.check" 2>&1 ||
        tl_fail "warmpool --check rejected $ini: $(cat "$TL_DIR/$name.check")"
    "$WARMPOOL" -c "$ini" 2>"$TL_DIR/$name.stderr" &
    pid=$!
    tl_names+=("$name")
    printf -v "TL_PORT_$name" '%s' "$port"
    printf -v "TL_PID_$name" '%s' "$pid"
    printf -v "TL_LOG_$name" '%s' "$log"
    for _ in $(seq $((150 * tl_slow))); do
        kill -0 "$pid" 2>/dev/null || tl_fail "warmpool $name exited at startup: $(tail -n 5 "$log" "$TL_DIR/$name.stderr" 2>&1)"
        # A TCP connect is enough: the startup packet is the tests' business.
        if /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    tl_fail "warmpool $name not accepting on 127.0.0.1:$port after $((15 * tl_slow)) s"
}

tl_port() { local v="TL_PORT_$1"; echo "${!v}"; }
tl_pid() { local v="TL_PID_$1"; echo "${!v}"; }
tl_log() { local v="TL_LOG_$1"; echo "${!v}"; }

# psql through instance NAME: tl_psql NAME "extra conninfo" [psql args...]
tl_psql() {
    local name=$1 conninfo=$2
    shift 2
    PGCONNECT_TIMEOUT=10 psql -X -q -At -v ON_ERROR_STOP=1 \
        "host=localhost port=$(tl_port "$name") $conninfo" "$@"
}

# SIGHUP and wait until the instance logged a reload (done or rejected).
tl_reload() {
    local name=$1 log before
    log=$(tl_log "$name")
    before=$(grep -c 'configuration reloaded\|rejected' "$log" || true)
    kill -HUP "$(tl_pid "$name")"
    for _ in $(seq $((100 * tl_slow))); do
        [ "$(grep -c 'configuration reloaded\|rejected' "$log" || true)" -gt "$before" ] && return 0
        sleep 0.1
    done
    tl_fail "$name did not log a reload within $((10 * tl_slow)) s of SIGHUP"
}

tl_stop_all() {
    local name pid st bad=0
    for name in "${tl_names[@]}"; do
        pid=$(tl_pid "$name")
        [ -n "$pid" ] || continue
        printf -v "TL_PID_$name" '%s' ""
        kill -QUIT "$pid" 2>/dev/null || true
        for _ in $(seq $((100 * tl_slow))); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            echo "FAIL: warmpool $name still running $((10 * tl_slow)) s after SIGQUIT" >&2
            bad=1
        fi
        st=0
        wait "$pid" 2>/dev/null || st=$?
        [ "$st" = 0 ] || { echo "FAIL: warmpool $name exited with status $st" >&2; bad=1; }
        if grep -qE 'ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$TL_DIR/$name.stderr" \
            "$(tl_log "$name")" 2>/dev/null; then
            grep -E -A 12 'ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$TL_DIR/$name.stderr" \
                "$(tl_log "$name")" | head -n 40 >&2
            echo "FAIL: sanitizer report from warmpool $name" >&2
            bad=1
        fi
    done
    return $bad
}

tl_cleanup() {
    local rc=$? cmd name
    trap - EXIT
    set +e
    tl_stop_all || rc=1
    for cmd in "${tl_atexit[@]}"; do
        eval "$cmd"
    done
    if [ "$rc" != 0 ]; then
        for name in "${tl_names[@]}"; do
            echo "-- tail of $name's log" >&2
            tail -n 12 "$(tl_log "$name")" >&2 2>/dev/null
        done
        echo "-- kept $TL_DIR" >&2
        [ -n "$tl_why" ] && echo "$tl_why" >&2 # again, after the logs
    else
        rm -rf "$TL_DIR"
    fi
    exit "$rc"
}
trap tl_cleanup EXIT
