# lib_private_warmpool.sh — sourced by t40_admin_console.sh and t41_stats_http.sh.
#
# The harness's warmpool instances have no admin users and no stats endpoint, so
# these tests start their own, against the harness's PostgreSQL (PG_HOST, PG_PORT,
# WP_USER/WP_PASSWORD, databases wptest and wpload), with:
#   users: $WP_USER (app), admin/adminpass (admin_users), monitor/monpass (stats_users)
#   stats_socket $PW_DIR/stats.sock, stats_listen 127.0.0.1:$PW_HTTP_PORT
#   databases: wptest, wpload (transaction mode), two (max_pool_size 2),
#              dead (a port nothing listens on)
# Sets PW_DIR PW_PORT PW_HTTP_PORT PW_SOCK PW_INI PW_LOG PW_PID. Extra [warmpool] lines
# can be passed in PW_EXTRA. pw_stop (also run at exit) stops it with SIGQUIT (immediate shutdown).
# Under WP_VALGRIND=1 (tests/valgrind/warmpool.sh) the start and stop waits are 6x longer.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
WARMPOOL=${WARMPOOL:-$root/warmpool}
PY=/usr/bin/python3
STATS_CLIENT="$PY $here/stats_client.py"
pw_slow=1
[ "${WP_VALGRIND:-0}" = 1 ] && pw_slow=6

fail() {
    echo "FAIL: $*" >&2
    [ -n "${PW_LOG:-}" ] && [ -f "$PW_LOG" ] && tail -n 30 "$PW_LOG" | sed 's/^/    log: /' >&2
    exit 1
}
ok() { echo "ok: $*"; }

pw_free_ports() {
    $PY - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

pw_stop() {
    if [ -n "${PW_PID:-}" ] && kill -0 "$PW_PID" 2>/dev/null; then
        kill -QUIT "$PW_PID" 2>/dev/null || true
        for _ in $(seq $((100 * pw_slow))); do
            kill -0 "$PW_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$PW_PID" 2>/dev/null || true
    fi
    PW_PID=
    [ -n "${PW_DIR:-}" ] && [ "${PW_KEEP:-0}" = 0 ] && rm -rf "$PW_DIR"
    return 0
}

pw_start() {
    [ -x "$WARMPOOL" ] || fail "no warmpool binary at $WARMPOOL"
    PW_DIR=$(mktemp -d /tmp/warmpool-pw.XXXXXX)
    trap pw_stop EXIT
    read -r PW_PORT PW_HTTP_PORT PW_DEAD_PORT <<<"$(pw_free_ports 3)"
    PW_SOCK=$PW_DIR/stats.sock
    PW_INI=$PW_DIR/warmpool.ini
    PW_LOG=$PW_DIR/warmpool.log
    printf '"%s" "%s"\n"admin" "adminpass"\n"monitor" "monpass"\n' \
        "$WP_USER" "$WP_PASSWORD" >"$PW_DIR/users.txt"
    cat >"$PW_INI" <<INI
[warmpool]
listen_addr = 127.0.0.1
listen_port = $PW_PORT
unix_socket_dir = $PW_DIR
auth_type = md5
auth_file = $PW_DIR/users.txt
admin_users = admin
stats_users = monitor
pool_mode = transaction
max_pool_size = 10
max_client_conn = 500
server_login_retry = 200ms
stats_socket = $PW_SOCK
stats_listen = 127.0.0.1:$PW_HTTP_PORT
${PW_EXTRA:-}

[databases]
wptest = host=127.0.0.1 port=$PG_PORT dbname=wptest
wpload = host=127.0.0.1 port=$PG_PORT dbname=wpload
two = host=127.0.0.1 port=$PG_PORT dbname=wptest max_pool_size=2
dead = host=127.0.0.1 port=$PW_DEAD_PORT dbname=wptest connect_timeout=2
INI
    "$WARMPOOL" -c "$PW_INI" 2>"$PW_LOG" &
    PW_PID=$!
    for _ in $(seq $((100 * pw_slow))); do
        kill -0 "$PW_PID" 2>/dev/null || fail "private warmpool exited at startup"
        if pg_isready -q -h 127.0.0.1 -p "$PW_PORT" -t 1; then
            [ -S "$PW_SOCK" ] && return 0
            sleep 0.5
            [ -S "$PW_SOCK" ] || fail "warmpool runs but opened no stats_socket" \
                "(is stats_http_start() called from main.c?)"
            return 0
        fi
        sleep 0.1
    done
    fail "private warmpool not ready after $((10 * pw_slow)) s"
}

# psql through the private warmpool: pw_psql USER PASSWORD DB [psql args...]
pw_psql() {
    local user=$1 pass=$2 db=$3
    shift 3
    PGPASSWORD=$pass PGCONNECT_TIMEOUT=10 psql -X -q -At -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$PW_PORT" -U "$user" -d "$db" "$@"
}

pw_admin() { pw_psql admin adminpass warmpool "$@"; }
pw_app() { pw_psql "$WP_USER" "$WP_PASSWORD" "$@"; }

# One value of a console SHOW, found by column name (PgBouncer adds columns between
# versions): pw_show_col COMMAND ROW_PREFIX COLUMN prints COLUMN of the first row whose
# '|'-joined text starts with ROW_PREFIX (e.g. "wptest|$WP_USER|"), nothing when none.
pw_show_col() {
    pw_admin -F '|' -P footer=off -P tuples_only=off -c "$1" |
        awk -F'|' -v pre="$2" -v col="$3" '
            NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) n = i; next }
            n && index($0, pre) == 1 { print $n; exit }'
}
