#!/bin/bash
# run.sh — integration tests: a real PostgreSQL, real warmpool processes, and libpq, psql
# and pgbench clients (see README.md in this directory).
#
#   tests/integration/run.sh [--direct] [--keep] [-v] [TEST...]
#
# Starts a throwaway PostgreSQL (scripts/pg-throwaway.sh) and five warmpool instances
# (one per client auth setup) in a temp dir, runs every test or only the named ones
# (e.g. `run.sh t05_copy`), prints PASS/FAIL per test and a summary, stops everything,
# and exits 1 if anything failed (printing the tail of warmpool's logs).
#   --direct  point the tests at PostgreSQL itself: validates the tests; assertions that
#             only hold through a pooler are skipped
#   --keep    after the tests, keep everything running and print how to reach it
#   -v        print every test's output, not only failing ones
# Environment: BUILD (default build) holds itests/<name>; WARMPOOL (default ./warmpool).
#   WP_VALGRIND=1 runs every warmpool process (these five, the tests' private ones and
#   `warmpool --check`) under valgrind through tests/valgrind/warmpool.sh, scales the
#   time limits, and fails the run on any memory error or definite/indirect leak
#   (`make valgrind`; tests skip the few assertions valgrind cannot meet).
set -eu

cd "$(dirname "$0")/../.."
root=$(pwd)
here=$root/tests/integration
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$root/$BUILD ;; esac
WARMPOOL=${WARMPOOL:-$root/warmpool}
case $WARMPOOL in /*) ;; *) WARMPOOL=$root/$WARMPOOL ;; esac
export WARMPOOL # private instances in tests use the same binary

direct=0 keep=0 verbose=0 only=()
for a in "$@"; do
    case $a in
    --direct) direct=1 ;;
    --keep) keep=1 ;;
    -v) verbose=1 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $a" >&2; exit 2 ;;
    *) only+=("${a%.*}") ;;
    esac
done

# libpq settings from the caller's environment would change what the tests send.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGPASSWORD PGDATABASE PGOPTIONS PGAPPNAME PGTZ \
    PGDATESTYLE PGGEQO PGCLIENTENCODING PGSERVICE PGSERVICEFILE PGSSLMODE PGREQUIRESSL \
    PGGSSENCMODE PGTARGETSESSIONATTRS PGCONNECT_TIMEOUT PGSYSCONFDIR
tmp=$(mktemp -d /tmp/warmpool-itest.XXXXXX)
export PGPASSFILE=$tmp/no-such-pgpass
wp_names=() wp_pids=() test_pid=
failed=()
reasons=() # why, one line per failure, repeated at the very end
declare -A dead=() # index in wp_pids -> 1 once reported dead

# Under valgrind the pooler runs 20-50 times slower: every wait on it is scaled.
WP_VALGRIND=${WP_VALGRIND:-0}
slow=1
if [ "$WP_VALGRIND" = 1 ] && [ "$direct" = 0 ]; then
    command -v valgrind >/dev/null || { echo "run.sh: WP_VALGRIND=1 needs valgrind (scripts/install-deps.sh)" >&2; exit 1; }
    export WP_VALGRIND WP_VALGRIND_BIN=$WARMPOOL WP_VALGRIND_DIR=$tmp/valgrind
    export WARMPOOL=$root/tests/valgrind/warmpool.sh
    mkdir -p "$WP_VALGRIND_DIR"
    slow=6
else
    WP_VALGRIND=0
fi
export WP_VALGRIND

# WP_WORKERS=N runs every warmpool process with `--workers N` (tests/workers/warmpool.sh):
# its socket I/O batched over N threads. Not with valgrind, which runs the binary itself.
if [ -n "${WP_WORKERS:-}" ] && [ "$WP_VALGRIND" != 1 ]; then
    export WP_WORKERS WP_WORKERS_BIN=$WARMPOOL
    export WARMPOOL=$root/tests/workers/warmpool.sh
fi

# fd 3 is the terminal even while a test's output is redirected (traps can fire then).
exec 3>&1
say() { printf '%s\n' "$*" >&3; }

# Valgrind reports of the warmpool processes that ended since the last call.
valgrind_check() { # LABEL
    local report
    [ "$WP_VALGRIND" = 1 ] || return 0
    report=$("$root/tests/valgrind/check.sh" "$WP_VALGRIND_DIR") && return 0
    say "FAIL valgrind($1):"
    printf '%s\n' "$report" | sed 's/^/    /' >&3
    failed+=("valgrind($1)")
    reasons+=("valgrind($1): $(head -n 1 <<<"$report")")
}

stop_warmpools() {
    local i pid st n
    [ ${#wp_pids[@]} -gt 0 ] || return 0
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
            wait "$pid" 2>/dev/null || true
            continue
        fi
        st=0
        wait "$pid" 2>/dev/null || st=$?
        if [ "$st" != 0 ]; then
            say "FAIL shutdown(${wp_names[$i]}): exit status $st after SIGQUIT"
            failed+=("shutdown(${wp_names[$i]})")
        fi
    done
    wp_pids=()
    valgrind_check "harness instances at shutdown"
    # Under `make asan` (`make tsan`) the pooler reports memory errors and leaks (data races)
    # on stderr (its log).
    for n in "${wp_names[@]}"; do
        if grep -qE 'ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$tmp/$n.log" 2>/dev/null; then
            say "FAIL sanitizer($n): see $tmp/$n.log"
            grep -E -A 12 'ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$tmp/$n.log" | head -n 40 | sed 's/^/    /' >&3
            failed+=("sanitizer($n)")
        fi
    done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e # clean up as much as possible whatever fails
    if [ -n "$test_pid" ]; then
        kill -TERM "$test_pid" 2>/dev/null
        wait "$test_pid" 2>/dev/null
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
    /usr/bin/python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# ---------------------------------------------------------------- PostgreSQL
read -r pgport wpports <<<"$(free_ports 6)"
read -r -a wpports <<<"$wpports"
say "== PostgreSQL 15 in $tmp/pg, port $pgport"
"$root/scripts/pg-throwaway.sh" start "$tmp/pg" "$pgport" >/dev/null 3>&-
psql_su() { psql -X -q -v ON_ERROR_STOP=1 -h "$tmp/pg" -p "$pgport" -U postgres "$@"; }
psql_su -d postgres <<'SQL'
CREATE ROLE wpuser LOGIN PASSWORD 'wppass';
CREATE DATABASE wptest OWNER wpuser;
CREATE DATABASE wpload OWNER wpuser;
SQL
scram_secret=$(psql_su -d postgres -Atc "SELECT rolpassword FROM pg_authid WHERE rolname = 'wpuser'")
md5_hash=$(psql_su -d postgres -Atc "SELECT 'md5' || md5('wppass' || 'wpuser')")

# ---------------------------------------------------------------- warmpool instances
write_ini() { # NAME PORT AUTH_TYPE USERLIST EXTRA_CONNSTRING
    local name=$1 port=$2 auth=$3 users=$4 extra=$5
    cat >"$tmp/$name.ini" <<INI
; generated by tests/integration/run.sh
[warmpool]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir = $tmp
auth_type = $auth
auth_file = $tmp/$users
pool_mode = transaction
min_pool_size = 0
max_pool_size = 10
reserve_pool_size = 0
max_client_conn = 1000
server_reset_query = DISCARD ALL

[databases]
wptest = host=127.0.0.1 port=$pgport dbname=wptest$extra
wpload = host=127.0.0.1 port=$pgport dbname=wpload$extra
wpsess = host=127.0.0.1 port=$pgport dbname=wptest pool_mode=session max_pool_size=1$extra
one = host=127.0.0.1 port=$pgport dbname=wptest max_pool_size=1$extra
INI
}

start_warmpool() { # NAME
    local name=$1 port
    port=$(sed -n 's/^listen_port = //p' "$tmp/$name.ini")
    if ! "$WARMPOOL" --check -c "$tmp/$name.ini" >"$tmp/$name.check" 2>&1; then
        say "FAIL config($name): warmpool --check -c $tmp/$name.ini rejected the config:"
        sed 's/^/    /' "$tmp/$name.check"
        failed+=("config($name)")
    fi
    "$WARMPOOL" -c "$tmp/$name.ini" 2>"$tmp/$name.log" 3>&- &
    wp_names+=("$name") wp_pids+=($!)
    for _ in $(seq $((100 * slow))); do
        if ! kill -0 "${wp_pids[-1]}" 2>/dev/null; then
            dead[$((${#wp_pids[@]} - 1))]=1
            say "FAIL start($name): warmpool exited at startup; log:"
            tail -n 20 "$tmp/$name.log" | sed 's/^/    /'
            failed+=("start($name)")
            return 0
        fi
        pg_isready -q -h 127.0.0.1 -p "$port" -U wpuser -d wptest -t 1 && return 0
        sleep 0.1
    done
    say "FAIL start($name): warmpool not accepting on 127.0.0.1:$port after $((10 * slow)) s"
    failed+=("start($name)")
}

printf '"wpuser" "wppass"\n' >"$tmp/users-plain.txt"
printf '"wpuser" "%s"\n' "$scram_secret" >"$tmp/users-scram.txt"
printf '"wpuser" "%s"\n' "$md5_hash" >"$tmp/users-md5.txt"

if [ "$direct" = 1 ]; then
    say "== --direct: tests talk to PostgreSQL itself; pooler-only checks are skipped"
    cat >"$tmp/env.sh" <<ENV
export WP_HOST=127.0.0.1 WP_PORT=$pgport WP_USER=wpuser WP_PASSWORD=wppass
export WP_DB=wptest WP_DB_LOAD=wpload WP_DB_SESSION=wptest WP_DB_ONE=wptest
export WP_DIRECT=1 WP_MAX_BACKENDS=0 WP_SOCKET_DIR=$tmp/pg
export WP_AUTH_TARGETS="direct:scram-sha-256:$pgport"
ENV
else
    [ -x "$WARMPOOL" ] || { say "no warmpool binary at $WARMPOOL (run make warmpool)"; exit 1; }
    pw=" password=wppass"
    write_ini main "${wpports[0]}" md5 users-plain.txt ""
    write_ini scram "${wpports[1]}" scram-sha-256 users-plain.txt ""
    write_ini scramsecret "${wpports[2]}" scram-sha-256 users-scram.txt "$pw"
    write_ini md5hash "${wpports[3]}" md5 users-md5.txt "$pw"
    write_ini trust "${wpports[4]}" trust users-plain.txt "$pw"
    for n in main scram scramsecret md5hash trust; do
        start_warmpool "$n"
    done
    say "== warmpool: main (md5) on ${wpports[0]}, scram ${wpports[1]}," \
        "scramsecret ${wpports[2]}, md5hash ${wpports[3]}, trust ${wpports[4]}"
    cat >"$tmp/env.sh" <<ENV
export WP_HOST=127.0.0.1 WP_PORT=${wpports[0]} WP_USER=wpuser WP_PASSWORD=wppass
export WP_DB=wptest WP_DB_LOAD=wpload WP_DB_SESSION=wpsess WP_DB_ONE=one
export WP_DIRECT=0 WP_MAX_BACKENDS=10 WP_SOCKET_DIR=$tmp
export WP_AUTH_TARGETS="main:md5:${wpports[0]} scram:scram-sha-256:${wpports[1]} scramsecret:scram-sha-256:${wpports[2]} md5hash:md5:${wpports[3]} trust:trust:${wpports[4]}"
ENV
fi
cat >>"$tmp/env.sh" <<ENV
export PG_HOST=$tmp/pg PG_PORT=$pgport PG_SUPERUSER=postgres PG_DB=wptest PG_DB_LOAD=wpload
export PGPASSFILE=$tmp/no-such-pgpass
ENV
# shellcheck disable=SC1091
. "$tmp/env.sh"

# ---------------------------------------------------------------- tests
all=()
for f in "$here"/t*.c "$here"/t*.sh; do
    [ -e "$f" ] && all+=("$(basename "${f%.*}")")
done
mapfile -t all < <(printf '%s\n' "${all[@]}" | sort -u)
[ ${#only[@]} -gt 0 ] && all=("${only[@]}")

run_one() { # NAME -> exit status of the test
    local name=$1 cmd limit=120
    if [ -f "$here/$name.sh" ]; then
        cmd=("$here/$name.sh")
    elif [ -x "$BUILD/itests/$name" ]; then
        cmd=("$BUILD/itests/$name")
    else
        echo "no test $name: neither $here/$name.sh nor $BUILD/itests/$name (make itests)"
        return 127
    fi
    case $name in t09*) limit=240 ;; esac
    [ "$WP_VALGRIND" = 1 ] && limit=$((limit * 3))
    # In the background so that Ctrl-C reaches the trap at once (bash defers traps
    # until a foreground child ends); `timeout` turns a hang into a failure.
    timeout -k 5 "$limit" "${cmd[@]}" 3>&- &
    test_pid=$!
    local rc=0
    wait "$test_pid" || rc=$?
    test_pid=
    [ "$rc" = 124 ] && echo "TIMEOUT: $name still running after ${limit} s, killed"
    return "$rc"
}

# A pooler that died fails the run even if the tests passed; say during which test.
check_alive() { # AFTER
    local i st
    for i in "${!wp_pids[@]}"; do
        if [ -n "${dead[$i]:-}" ] || kill -0 "${wp_pids[$i]}" 2>/dev/null; then
            continue
        fi
        st=0
        wait "${wp_pids[$i]}" 2>/dev/null || st=$?
        dead[$i]=1
        say "FAIL alive(${wp_names[$i]}): warmpool exited (status $st) during $1; log tail:"
        tail -n 15 "$tmp/${wp_names[$i]}.log" | sed 's/^/    /' >&3
        failed+=("alive(${wp_names[$i]})")
    done
}
check_alive "startup"
valgrind_check "startup (warmpool --check)"

passed=0
for name in "${all[@]}"; do
    start=$(date +%s%3N)
    rc=0
    run_one "$name" >"$tmp/$name.out" 2>&1 || rc=$?
    ms=$(($(date +%s%3N) - start))
    secs=$(printf '%d.%02d' $((ms / 1000)) $((ms % 1000 / 10)))
    if [ "$rc" = 0 ]; then
        passed=$((passed + 1))
        say "PASS $name (${secs}s)"
        [ "$verbose" = 1 ] && sed 's/^/    /' "$tmp/$name.out"
    else
        say "FAIL $name (${secs}s, exit $rc)"
        failed+=("$name")
        # Why it failed first: the tail of a long output may not hold the reason.
        why=$(grep -m 3 -E '^(FAIL|TIMEOUT|valgrind|Traceback|AssertionError)' "$tmp/$name.out" || true)
        reasons+=("$name: ${why:-exit $rc, no FAIL line}")
        [ -n "$why" ] && printf '%s\n' "$why" | sed 's/^/    /' >&3
        if [ "$verbose" = 1 ]; then sed 's/^/    /' "$tmp/$name.out"; else tail -n 25 "$tmp/$name.out" | sed 's/^/    /'; fi
    fi
    check_alive "$name"
    valgrind_check "$name"
done

if [ "$keep" = 1 ]; then
    say "== --keep: everything is still running; environment for running tests by hand:"
    say "   . $tmp/env.sh; $BUILD/itests/t05_copy"
    say "   PGPASSWORD=wppass psql -h 127.0.0.1 -p $WP_PORT -U wpuser $WP_DB"
    say "   Ctrl-C stops everything."
    while :; do sleep 1; done
fi

stop_warmpools
say "== $passed/${#all[@]} tests passed${failed[*]:+; failed: ${failed[*]}}"
if [ ${#failed[@]} -gt 0 ]; then
    for n in "${wp_names[@]}"; do
        [ -s "$tmp/$n.log" ] || continue
        say "-- tail of warmpool $n log ($tmp/$n.log)"
        tail -n 40 "$tmp/$n.log" | sed 's/^/    /'
    done
    # Last, so that a reader of only the end of the output sees why.
    for r in "${reasons[@]}"; do
        say "== failed $r"
    done
    exit 1
fi
