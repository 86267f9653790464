#!/bin/bash
# run.sh — fault-injection suite: a real PostgreSQL and real warmpool processes, hurt on
# purpose (backends killed, PostgreSQL restarted or frozen, clients that vanish or stop
# reading, password storms, hostile lengths). See README.md in this directory.
#
#   tests/faults/run.sh [--keep] [-v] [CASE...]
#
# Starts a throwaway PostgreSQL (scripts/pg-throwaway.sh) and two warmpool instances
# (md5 and scram-sha-256 client auth) on free ports in a temp dir, runs every case
# (fNN_*.py) or only the named ones (e.g. `run.sh f05_slow_reader`), prints PASS/FAIL per
# case and a summary, stops everything, and exits 1 if anything failed (printing the
# tail of warmpool's logs). Every case ends with the shared invariants of faultlib.py.
#   --keep  keep the temp dir (logs, PostgreSQL data) even when everything passed
#   -v      print every case's output, not only failing ones
# Environment: WARMPOOL (default ./warmpool) is the binary under test.
#   WP_VALGRIND=1 runs both poolers under valgrind (tests/valgrind/warmpool.sh), scales
#   the waits on them, skips the RSS bounds (valgrind's own memory) and fails the run on
#   a memory error or definite/indirect leak (`make faults-valgrind`).
set -eu

cd "$(dirname "$0")/../.."
root=$(pwd)
here=$root/tests/faults
WARMPOOL=${WARMPOOL:-$root/warmpool}
case $WARMPOOL in /*) ;; *) WARMPOOL=$root/$WARMPOOL ;; esac
PY=/usr/bin/python3 # the Debian python3 has psycopg 3; the first on PATH may not
CASE_LIMIT=180      # seconds; a case still running then is a hang, hence a failure

keep=0 verbose=0 only=()
for a in "$@"; do
    case $a in
    --keep) keep=1 ;;
    -v) verbose=1 ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $a" >&2; exit 2 ;;
    *) only+=("${a%.py}") ;;
    esac
done

unset PGHOST PGHOSTADDR PGPORT PGUSER PGPASSWORD PGDATABASE PGOPTIONS PGAPPNAME PGTZ \
    PGDATESTYLE PGCLIENTENCODING PGSERVICE PGSERVICEFILE PGSSLMODE PGREQUIRESSL \
    PGGSSENCMODE PGTARGETSESSIONATTRS PGCONNECT_TIMEOUT PGSYSCONFDIR
tmp=$(mktemp -d /tmp/warmpool-faults.XXXXXX)
export PGPASSFILE=$tmp/no-such-pgpass
wp_names=() wp_pids=() case_pid=
failed=()

exec 3>&1
say() { printf '%s\n' "$*" >&3; }

WP_VALGRIND=${WP_VALGRIND:-0}
slow=1
if [ "$WP_VALGRIND" = 1 ]; then
    command -v valgrind >/dev/null || { echo "run.sh: WP_VALGRIND=1 needs valgrind (scripts/install-deps.sh)" >&2; exit 1; }
    export WP_VALGRIND WP_VALGRIND_BIN=$WARMPOOL WP_VALGRIND_DIR=$tmp/valgrind
    WARMPOOL=$root/tests/valgrind/warmpool.sh
    mkdir -p "$WP_VALGRIND_DIR"
    slow=6
    CASE_LIMIT=$((CASE_LIMIT * 3))
fi

# WP_WORKERS=N runs both poolers with `--workers N` (tests/workers/warmpool.sh): their
# socket I/O batched over N threads. Not with valgrind, which runs the binary itself.
if [ -n "${WP_WORKERS:-}" ] && [ "$WP_VALGRIND" != 1 ]; then
    export WP_WORKERS WP_WORKERS_BIN=$WARMPOOL
    WARMPOOL=$root/tests/workers/warmpool.sh
fi

# Valgrind reports of the warmpool processes that ended since the last call.
valgrind_check() { # LABEL
    local report
    [ "$WP_VALGRIND" = 1 ] || return 0
    report=$("$root/tests/valgrind/check.sh" "$WP_VALGRIND_DIR") && return 0
    say "FAIL valgrind($1):"
    printf '%s\n' "$report" | sed 's/^/    /' >&3
    failed+=("valgrind($1)")
}

stop_warmpools() {
    local i pid st n
    for i in "${!wp_pids[@]}"; do
        pid=${wp_pids[$i]}
        kill -0 "$pid" 2>/dev/null || continue
        kill -QUIT "$pid" 2>/dev/null || true
        for _ in $(seq $((100 * slow))); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "FAIL shutdown(${wp_names[$i]}): still running $((10 * slow)) s after SIGQUIT; killed"
            failed+=("shutdown(${wp_names[$i]})")
            kill -KILL "$pid" 2>/dev/null || true
        fi
        st=0
        wait "$pid" 2>/dev/null || st=$?
        if [ "$st" != 0 ]; then
            say "FAIL shutdown(${wp_names[$i]}): exit status $st after SIGQUIT"
            failed+=("shutdown(${wp_names[$i]})")
        fi
    done
    wp_pids=()
    valgrind_check "poolers at shutdown"
    for n in "${wp_names[@]}"; do
        if grep -qE 'ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$tmp/$n.log" 2>/dev/null; then
            say "FAIL sanitizer($n): see $tmp/$n.log"
            grep -E -A 12 'ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$tmp/$n.log" |
                head -n 40 | sed 's/^/    /' >&3
            failed+=("sanitizer($n)")
        fi
    done
}

log_tails() {
    local n
    for n in "${wp_names[@]}"; do
        [ -s "$tmp/$n.log" ] || continue
        say "-- tail of warmpool $n log ($tmp/$n.log)"
        tail -n 40 "$tmp/$n.log" | sed 's/^/    /' >&3
    done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [ -n "$case_pid" ]; then
        kill -TERM "$case_pid" 2>/dev/null
        wait "$case_pid" 2>/dev/null
    fi
    # A case interrupted while PostgreSQL was frozen must not leave it stopped.
    if [ -f "$tmp/pg/data/postmaster.pid" ]; then
        pm=$(head -n 1 "$tmp/pg/data/postmaster.pid")
        kill -CONT "$pm" $(pgrep -P "$pm") 2>/dev/null
    fi
    stop_warmpools
    "$root/scripts/pg-throwaway.sh" stop "$tmp/pg" || true
    [ ${#failed[@]} -eq 0 ] || rc=1
    if [ "$rc" = 0 ] && [ "$keep" = 0 ]; then
        rm -rf "$tmp"
    else
        say "logs and data kept in $tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'exit 143' TERM

free_ports() { # N: N distinct free TCP ports on 127.0.0.1
    $PY - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

[ -x "$WARMPOOL" ] || { say "no warmpool binary at $WARMPOOL (run make warmpool)"; exit 1; }

# ---------------------------------------------------------------- PostgreSQL
read -r pgport md5port scramport <<<"$(free_ports 3)"
say "== PostgreSQL in $tmp/pg, port $pgport"
"$root/scripts/pg-throwaway.sh" start "$tmp/pg" "$pgport" >/dev/null 3>&-
psql_su() { psql -X -q -v ON_ERROR_STOP=1 -h "$tmp/pg" -p "$pgport" -U postgres "$@"; }
# Durable commits: the kill -9 case makes PostgreSQL reinitialise shared memory, which
# drops WAL not yet written out; with synchronous_commit = off (the throwaway default)
# a transaction could be reported committed and then vanish, and the suite must only
# fail for the pooler's faults.
psql_su -d postgres <<'SQL'
ALTER SYSTEM SET synchronous_commit = on;
SELECT pg_reload_conf() \gset
CREATE ROLE wpuser LOGIN PASSWORD 'wppass';
CREATE DATABASE wpfault OWNER wpuser;
SQL
PGPASSWORD=wppass psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pgport" -U wpuser -d wpfault <<'SQL'
CREATE TABLE ledger (run text, cid int, seq int, amount bigint, PRIMARY KEY (run, cid, seq));
CREATE TABLE copy_sink (run text, n int, pad text);
CREATE TABLE pipe_sink (run text, n int);
SQL

# ---------------------------------------------------------------- warmpool instances
printf '"wpuser" "wppass"\n' >"$tmp/users.txt"
write_ini() { # NAME PORT AUTH_TYPE
    cat >"$tmp/$1.ini" <<INI
; generated by tests/faults/run.sh: timeouts as a production deployment would set them
[warmpool]
listen_addr = 127.0.0.1
listen_port = $2
unix_socket_dir = $tmp
auth_type = $3
auth_file = $tmp/users.txt
pool_mode = transaction
min_pool_size = 0
max_pool_size = 40
max_client_conn = 500
server_connect_timeout = 5s
server_login_retry = 1s
query_wait_timeout = 15s
query_timeout = 60s
client_login_timeout = 10s
idle_transaction_timeout = 60s
server_check_delay = 10s
max_packet_size = 64MB
stats_socket = $tmp/$1.stats

[databases]
wpfault = host=127.0.0.1 port=$pgport dbname=wpfault
small = host=127.0.0.1 port=$pgport dbname=wpfault max_pool_size=2
fresh = host=127.0.0.1 port=$pgport dbname=wpfault max_pool_size=2
tiny = host=127.0.0.1 port=$pgport dbname=wpfault max_pool_size=1
INI
}

start_warmpool() { # NAME PORT
    local name=$1 port=$2
    if ! "$WARMPOOL" --check -c "$tmp/$name.ini" >"$tmp/$name.check" 2>&1; then
        say "FAIL config($name): warmpool --check rejected $tmp/$name.ini:"
        sed 's/^/    /' "$tmp/$name.check" >&3
        exit 1
    fi
    # Small ASan quarantine so that RSS measures what the pooler holds, not what it
    # freed recently (ignored by a build without ASan); FT_ASAN_SLACK_KB covers it.
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4 \
        "$WARMPOOL" -c "$tmp/$name.ini" 2>"$tmp/$name.log" 3>&- &
    wp_names+=("$name") wp_pids+=($!)
    for _ in $(seq $((100 * slow))); do
        kill -0 "${wp_pids[-1]}" 2>/dev/null || { say "FAIL start($name)"; log_tails; exit 1; }
        pg_isready -q -h 127.0.0.1 -p "$port" -U wpuser -d wpfault -t 1 && return 0
        sleep 0.1
    done
    say "FAIL start($name): not accepting on 127.0.0.1:$port after $((10 * slow)) s"
    exit 1
}

write_ini md5 "$md5port" md5
write_ini scram "$scramport" scram-sha-256
start_warmpool md5 "$md5port"
start_warmpool scram "$scramport"
say "== warmpool md5 on $md5port (pid ${wp_pids[0]}), scram on $scramport (pid ${wp_pids[1]})"
valgrind_check "startup (warmpool --check)"

# Under ASan (or TSan), RSS bounds allow for the quarantine and the allocator's caches.
asan_slack=0
ldd "${WP_WORKERS_BIN:-$WARMPOOL}" 2>/dev/null | grep -qE "lib(a|t)san" && asan_slack=$((8 * 1024))
export FT_ASAN_SLACK_KB=$asan_slack
# Under TSan, bounds on RSS growth from buffered data are 3 times larger (shadow memory).
ldd "${WP_WORKERS_BIN:-$WARMPOOL}" 2>/dev/null | grep -q libtsan && export FT_RSS_FACTOR=3
# f08_stress_oracle runs 1/5 of its full size under ASan or valgrind (FT_STRESS_SCALE
# set by the caller wins).
if [ -z "${FT_STRESS_SCALE:-}" ] && { [ "$asan_slack" -gt 0 ] || [ "$WP_VALGRIND" = 1 ]; }; then
    FT_STRESS_SCALE=0.2
fi
export FT_STRESS_SCALE=${FT_STRESS_SCALE:-1}
export FT_ROOT=$root FT_TMP=$tmp FT_PG_DIR=$tmp/pg FT_PG_PORT=$pgport
export FT_WP_MD5_PORT=$md5port FT_WP_MD5_PID=${wp_pids[0]} FT_WP_MD5_LOG=$tmp/md5.log
export FT_WP_SCRAM_PORT=$scramport FT_WP_SCRAM_PID=${wp_pids[1]} FT_WP_SCRAM_LOG=$tmp/scram.log

# ---------------------------------------------------------------- cases
all=()
for f in "$here"/f[0-9]*.py; do all+=("$(basename "${f%.py}")"); done
[ ${#only[@]} -gt 0 ] && all=("${only[@]}")

check_alive() { # AFTER
    local i
    for i in "${!wp_pids[@]}"; do
        kill -0 "${wp_pids[$i]}" 2>/dev/null && continue
        say "FAIL alive(${wp_names[$i]}): warmpool exited during $1"
        failed+=("alive(${wp_names[$i]})")
        log_tails
        exit 1
    done
}

suite_start=$(date +%s)
passed=0
reasons=() # why, one line per failure, repeated at the very end
for name in "${all[@]}"; do
    start=$(date +%s%3N)
    rc=0
    if [ -f "$here/$name.py" ]; then
        timeout -k 5 "$CASE_LIMIT" $PY "$here/$name.py" >"$tmp/$name.out" 2>&1 3>&- &
        case_pid=$!
        wait "$case_pid" || rc=$?
        case_pid=
        [ "$rc" = 124 ] && echo "TIMEOUT: still running after $CASE_LIMIT s, killed" >>"$tmp/$name.out"
    else
        echo "no case $here/$name.py" >"$tmp/$name.out"
        rc=127
    fi
    ms=$(($(date +%s%3N) - start))
    secs=$(printf '%d.%01d' $((ms / 1000)) $((ms % 1000 / 100)))
    if [ "$rc" = 0 ]; then
        passed=$((passed + 1))
        say "PASS $name (${secs}s)"
        [ "$verbose" = 1 ] && sed 's/^/    /' "$tmp/$name.out" >&3
    else
        say "FAIL $name (${secs}s, exit $rc)"
        failed+=("$name")
        # Why it failed first: the tail of a long output may not hold the reason.
        why=$(grep -m 3 -E '^(FAIL|TIMEOUT|valgrind|Traceback|AssertionError)' "$tmp/$name.out" || true)
        reasons+=("$name: ${why:-exit $rc, no FAIL line}")
        [ -n "$why" ] && printf '%s\n' "$why" | sed 's/^/    /' >&3
        if [ "$verbose" = 1 ]; then sed 's/^/    /' "$tmp/$name.out" >&3; else tail -n 30 "$tmp/$name.out" | sed 's/^/    /' >&3; fi
    fi
    check_alive "$name"
done

stop_warmpools
say "== $passed/${#all[@]} fault cases passed in $(($(date +%s) - suite_start)) s${failed[*]:+; failed: ${failed[*]}}"
if [ ${#failed[@]} -gt 0 ]; then
    log_tails
    # Last, so that a reader of only the end of the output sees why.
    for r in "${reasons[@]}"; do
        say "== failed $r"
    done
    exit 1
fi
