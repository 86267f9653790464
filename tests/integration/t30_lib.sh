#!/bin/bash
# t30_lib — helpers for the issue-3 tests (t31…t38). Timeouts and pool sizes need their
# own settings, so each of those tests runs a private warmpool (own config, port, log)
# against run.sh's PostgreSQL, and stops it when it exits. Sourced by them:
#
#   . "$(dirname "$0")/t30_lib.sh"
#   t3_database t31                       # fresh database, so its backends can be counted
#   t3_start "query_timeout = 1s" "t31 = host=127.0.0.1 port=$PG_PORT dbname=t31"
#   t3_run t31_query_timeout              # build/itests/<name> with WP_PORT/WP_DB set
#   t3_reload "<[warmpool] lines>" "<[databases] lines>"   # rewrite config, SIGHUP
#   export T37_RELOAD=$(t3_reload_script name "<…>" "<…>")  # the same, run later
#
# t3_stop (also run on exit) sends SIGQUIT (immediate shutdown) and fails the test if warmpool does not exit
# with status 0 within the limit, or if its log holds a sanitizer or valgrind report.
# Under WP_VALGRIND=1 (run.sh points $WARMPOOL at tests/valgrind/warmpool.sh) the waits
# for start and stop are six times longer; run.sh reads the valgrind logs.
#
# Run directly (as run.sh does, since it is a t*.sh), it checks itself: an instance
# starts, answers through psql, reloads on SIGHUP with the client still connected, and
# stops cleanly.
set -eu

t3_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WARMPOOL=${WARMPOOL:-$t3_root/warmpool}
T3_BUILD=${BUILD:-build}
case $T3_BUILD in /*) ;; *) T3_BUILD=$t3_root/$T3_BUILD ;; esac
t3_tmp=$(mktemp -d /tmp/warmpool-t3.XXXXXX)
t3_pid= t3_port= t3_ini=$t3_tmp/warmpool.ini t3_log=$t3_tmp/warmpool.log
t3_stopped=0 t3_atexit_cmds=()
t3_slow=1
[ "${WP_VALGRIND:-0}" = 1 ] && t3_slow=6

t3_fail() {
    echo "FAIL: $*" >&2
    exit 1
}

t3_ok() { echo "ok: $*"; }

t3_skip_direct() {
    if [ "${WP_DIRECT:-0}" = 1 ]; then
        echo "skip: needs warmpool itself (WP_DIRECT=1)"
        exit 0
    fi
}

# Superuser psql straight to PostgreSQL (unix socket, trusted).
t3_direct() {
    PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 \
        -h "$PG_HOST" -p "$PG_PORT" -U "${PG_SUPERUSER:-postgres}" "$@"
}

t3_database() { # NAME: a fresh database owned by the test user
    t3_direct -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" \
        -c "CREATE DATABASE $1 OWNER $WP_USER" >/dev/null
}

t3_free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

t3_write_ini() { # WARMPOOL_LINES DATABASES_LINES
    cat >"$t3_ini" <<INI
; written by tests/integration/t30_lib.sh
[warmpool]
listen_addr = 127.0.0.1
listen_port = $t3_port
unix_socket_dir =
auth_type = md5
auth_file = $t3_tmp/users.txt
logfile = $t3_log
pool_mode = transaction
max_client_conn = 500
$1

[databases]
$2
INI
}

t3_start() { # WARMPOOL_LINES DATABASES_LINES
    local t db
    [ -x "$WARMPOOL" ] || t3_fail "no warmpool binary at $WARMPOOL"
    t3_port=$(t3_free_port)
    printf '"%s" "%s"\n' "$WP_USER" "$WP_PASSWORD" >"$t3_tmp/users.txt"
    t3_write_ini "$1" "$2"
    "$WARMPOOL" --check -c "$t3_ini" >"$t3_tmp/check.out" 2>&1 ||
        t3_fail "warmpool --check rejected $t3_ini: $(cat "$t3_tmp/check.out")"
    "$WARMPOOL" -c "$t3_ini" 2>"$t3_tmp/stderr.log" &
    t3_pid=$!
    db=$(printf '%s\n' "$2" | sed -n '1s/ *=.*//p')
    for t in $(seq $((150 * t3_slow))); do
        kill -0 "$t3_pid" 2>/dev/null || t3_fail "warmpool exited at startup: $(tail -n 5 "$t3_log" "$t3_tmp/stderr.log" 2>&1)"
        if pg_isready -q -h 127.0.0.1 -p "$t3_port" -U "$WP_USER" -d "$db" -t 1; then
            export WP_HOST=127.0.0.1 WP_PORT=$t3_port WP_DB=$db
            return 0
        fi
        sleep 0.1
    done
    t3_fail "warmpool not accepting on 127.0.0.1:$t3_port after $((15 * t3_slow)) s"
}

# t3_reload_script NAME WARMPOOL_LINES DATABASES_LINES: print the path of a script
# that installs that config, sends SIGHUP and waits (10 s at most) until warmpool logged
# the reload; for test programs that reload at a moment of their choosing.
t3_reload_script() {
    local ini=$t3_tmp/$1.ini script=$t3_tmp/$1.sh
    t3_ini=$ini t3_write_ini "$2" "$3"
    cat >"$script" <<SH
#!/bin/bash
before=\$(grep -c 'configuration reloaded' '$t3_log' || true)
cp '$ini' '$t3_ini' && kill -HUP $t3_pid || exit 1
for t in \$(seq 100); do
    [ "\$(grep -c 'configuration reloaded' '$t3_log' || true)" -gt "\$before" ] && exit 0
    sleep 0.1
done
echo "warmpool did not log 'configuration reloaded' within 10 s of SIGHUP" >&2
exit 1
SH
    chmod +x "$script"
    echo "$script"
}

t3_reload() { # WARMPOOL_LINES DATABASES_LINES: new config, SIGHUP, wait until applied
    local script
    script=$(t3_reload_script reload-now "$1" "$2")
    "$script" || t3_fail "reload failed"
}

t3_run() { # NAME [ARGS...]: a test program built by `make itests`
    local bin=$T3_BUILD/itests/$1
    shift
    [ -x "$bin" ] || t3_fail "no test program $bin (make itests)"
    "$bin" "$@"
}

# Stop the private warmpool; prints what went wrong and returns 1 on a bad exit.
t3_halt() {
    local t st=0 limit=$((100 * t3_slow))
    [ -n "$t3_pid" ] && [ "$t3_stopped" = 0 ] || return 0
    t3_stopped=1
    kill -QUIT "$t3_pid" 2>/dev/null || true
    for t in $(seq $limit); do
        kill -0 "$t3_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$t3_pid" 2>/dev/null; then
        kill -KILL "$t3_pid" 2>/dev/null || true
        wait "$t3_pid" 2>/dev/null || true
        echo "FAIL: warmpool still running $((limit / 10)) s after SIGQUIT" >&2
        return 1
    fi
    wait "$t3_pid" 2>/dev/null || st=$?
    if [ "$st" != 0 ]; then
        echo "FAIL: warmpool exited with status $st after SIGQUIT" >&2
        [ -s "${WP_VALGRIND_DIR:-/nonexistent}/$t3_pid.log" ] && head -n 80 "$WP_VALGRIND_DIR/$t3_pid.log" >&2
        return 1
    fi
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$t3_tmp/stderr.log" "$t3_log" 2>/dev/null; then
        grep -E -A 12 'ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$t3_tmp/stderr.log" "$t3_log" | head -n 40 >&2
        echo "FAIL: sanitizer report in warmpool's output" >&2
        return 1
    fi
    return 0
}

t3_stop() {
    t3_halt || exit 1
}

# t3_atexit CMD: run CMD on exit, after the private warmpool has stopped.
t3_atexit() { t3_atexit_cmds+=("$1"); }

t3_cleanup() {
    local rc=$? cmd
    trap - EXIT
    set +e
    t3_halt || rc=1
    for cmd in "${t3_atexit_cmds[@]}"; do
        eval "$cmd"
    done
    if [ "$rc" != 0 ]; then
        echo "-- tail of the private warmpool log ($t3_log)" >&2
        tail -n 30 "$t3_log" >&2 2>/dev/null
        tail -n 10 "$t3_tmp/stderr.log" >&2 2>/dev/null
        echo "-- kept $t3_tmp" >&2
    else
        rm -rf "$t3_tmp"
    fi
    exit "$rc"
}
trap t3_cleanup EXIT

# ---------------------------------------------------------------- self-check
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    t3_skip_direct
    t3_start "max_pool_size = 2" "wptest = host=127.0.0.1 port=$PG_PORT dbname=wptest"
    t3_ok "private warmpool on port $t3_port"
    coproc PSQL { PGPASSWORD=$WP_PASSWORD psql -X -q -At -h 127.0.0.1 -p "$t3_port" -U "$WP_USER" wptest 2>&1; }
    # bash unsets PSQL and PSQL_PID once the coprocess ends (set -u: fatal): keep copies.
    psql_pid=$PSQL_PID psql_in=${PSQL[1]}
    echo "SELECT 'before';" >&"${PSQL[1]}"
    read -r -t 10 line <&"${PSQL[0]}" || t3_fail "no answer through the private warmpool"
    [ "$line" = before ] || t3_fail "got '$line', want 'before'"
    t3_ok "a client gets answers"
    t3_reload "max_pool_size = 3" "wptest = host=127.0.0.1 port=$PG_PORT dbname=wptest"
    echo "SELECT 'after';" >&"${PSQL[1]}"
    read -r -t 10 line <&"${PSQL[0]}" || t3_fail "no answer after SIGHUP"
    [ "$line" = after ] || t3_fail "got '$line' after SIGHUP, want 'after'"
    t3_ok "SIGHUP reload applied; the same client still gets answers"
    exec {psql_in}>&-
    wait "$psql_pid" || true
    t3_stop
    t3_ok "SIGQUIT: warmpool exited with status 0, no sanitizer report"
fi
