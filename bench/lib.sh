# bench/lib.sh — helpers shared by bench/run.sh and bench/exact.sh.
#
# Sourced, never executed. It knows how to:
#   - start the throwaway PostgreSQL with the pgbench database (role bench/benchpw, SCRAM),
#   - launch PgBouncer (Debian package) and warmpool with the same auth and pool size,
#     optionally under a wrapper (valgrind, strace) for the --exact case,
#   - run one pgbench measurement and turn its output and per-transaction log into
#     tps, mean/p50/p99 latency, failures and the pooler's CPU per 1 000 transactions.
#
# The caller sets `set -eu` and these globals: ROOT (repository), WORK (private temp dir),
# RESULTS (output dir), PG_MAX_CONN, SCALE, POOL_SIZE, JOBS, NOFILE, PGBOUNCER, WARMPOOL.
# PostgreSQL and PgBouncer run as the postgres user when we are root (both refuse root).

export PGPASSWORD=benchpw
# As warmpool's systemd unit does: GnuTLS (loaded by libpq through libldap, never used
# here) does not initialise itself at load. Every process of the run gets it alike;
# PgBouncer does not load GnuTLS, so it changes nothing for it.
export GNUTLS_NO_IMPLICIT_INIT=1
CLK_TCK=$(getconf CLK_TCK)

log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    # Let the kernel pick an unused port, as scripts/pg-throwaway.sh does.
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- PostgreSQL

pg_sql() { # DB SQL — run SQL as the superuser over the unix socket
    as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U postgres -d "$1" -c "$2"
}

pg_setup() {
    PG_DIR=$WORK/pg
    log "starting PostgreSQL (max_connections=$PG_MAX_CONN) and building pgbench scale $SCALE"
    PG_PORT=$(PG_MAX_CONNECTIONS=$PG_MAX_CONN "$ROOT/scripts/pg-throwaway.sh" start "$PG_DIR")
    pg_sql postgres "set password_encryption = 'scram-sha-256'; create role bench login password 'benchpw'"
    pg_sql postgres "create database bench owner bench"
    # Server-side data generation (G) is the fastest way to scale 10 here.
    pgbench -i -I dtGvp -s "$SCALE" -h "$PG_DIR" -p "$PG_PORT" -U bench bench \
        >"$WORK/pgbench-init.log" 2>&1 || { cat "$WORK/pgbench-init.log" >&2; die "pgbench -i failed"; }
    log "PostgreSQL $(pg_sql postgres 'show server_version') on 127.0.0.1:$PG_PORT"
}

pg_teardown() {
    [ -n "${PG_DIR:-}" ] && "$ROOT/scripts/pg-throwaway.sh" stop "$PG_DIR"
    PG_DIR=
}

# TPC-B grows pgbench_history and bloats the small tables; start every TPC-B cell clean
# so that later cells and later targets are not penalised.
pg_refresh_tpcb() {
    pg_sql bench "truncate pgbench_history" >/dev/null
    pg_sql bench "vacuum pgbench_branches, pgbench_tellers, pgbench_accounts" >/dev/null
}

write_userlist() { # FILE — PgBouncer-format auth file with bench's SCRAM secret
    local secret
    secret=$(pg_sql postgres "select rolpassword from pg_authid where rolname = 'bench'")
    printf '"bench" "%s"\n' "$secret" >"$1"
}

# ---------------------------------------------------------------- processes

cpu_ticks() { # PID — "utime+stime utime" of the whole process (all threads), "- -" if gone
    awk '{ print $14 + $15, $14 }' "/proc/$1/stat" 2>/dev/null || echo - -
}

per_1k_xact() { # TICKS_BEFORE TICKS_AFTER XACTS — CPU ms per 1 000 transactions, or "-"
    if [ "$1" = - ] || [ "$2" = - ] || [ "$3" -le 0 ]; then echo -; return; fi
    awk -v d=$(($2 - $1)) -v hz="$CLK_TCK" -v n="$3" 'BEGIN { printf "%.2f", d * 1000 / hz / n * 1000 }'
}

proc_status_kb() { # PID FIELD — e.g. VmRSS, VmHWM, in kB; "-" if gone
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo -
}

# Memory only this process pays for (USS: private clean + dirty pages) and its
# proportional share of the pages it shares (PSS), in kB; "-" if gone. RSS counts every
# shared library page the process has touched in full, however many others map it.
uss_kb() { # PID
    awk '$1 == "Private_Clean:" || $1 == "Private_Dirty:" { kb += $2; n++ }
        END { print n ? kb : "-" }' "/proc/$1/smaps_rollup" 2>/dev/null || echo -
}

pss_kb() { # PID
    awk '$1 == "Pss:" { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo -
}

fd_count() { # PID
    ls "/proc/$1/fd" 2>/dev/null | wc -l
}

alive() { kill -0 "$1" 2>/dev/null; }

wait_gone() { # PID SECONDS — true once PID has exited
    local i=0
    while alive "$1"; do
        [ "$i" -ge $(($2 * 10)) ] && return 1
        sleep 0.1; i=$((i + 1))
    done
}

stop_pid() { # PID SIGNAL — signal, then escalate: TERM after 15 s, KILL after 15 more
    local pid=$1
    alive "$pid" || return 0
    kill "-$2" "$pid" 2>/dev/null || true
    wait_gone "$pid" 15 && return 0
    log "pid $pid ignored SIG$2, sending TERM"
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 15 && return 0
    log "pid $pid ignored TERM, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || true
}

wait_ready() { # PORT PID SECONDS — a query through 127.0.0.1:PORT succeeds
    local i=0
    while [ "$i" -lt $(($3 * 2)) ]; do
        alive "$2" || return 1
        PGCONNECT_TIMEOUT=3 psql -X -At -q -h 127.0.0.1 -p "$1" -U bench -d bench \
            -c 'select 1' >/dev/null 2>&1 && return 0
        sleep 0.5; i=$((i + 1))
    done
    return 1
}

# ---------------------------------------------------------------- poolers
#
# Each pooler instance lives in its own directory DIR and is launched in the background,
# optionally under a WRAPPER command (valgrind …, strace …). The launch functions set
# LAUNCH_PID (the background job, to `wait` for) and POOLER_PID (the pooler process itself,
# whose /proc figures we read and which we signal).

pgb_write_config() { # DIR PORT
    cat >"$1/pgbouncer.ini" <<EOF
[databases]
bench = host=127.0.0.1 port=$PG_PORT dbname=bench password=benchpw
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $2
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $1/userlist.txt
pool_mode = transaction
default_pool_size = $POOL_SIZE
min_pool_size = ${MIN_POOL:-0}
server_connect_timeout = ${CONNECT_TIMEOUT:-15}
max_client_conn = 5000
logfile = $1/pgbouncer.log
pidfile = $1/pgbouncer.pid
EOF
}

wp_write_config() { # DIR PORT
    cat >"$1/warmpool.ini" <<EOF
[warmpool]
listen_addr = 127.0.0.1
listen_port = $2
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $1/userlist.txt
pool_mode = transaction
max_pool_size = $POOL_SIZE
min_pool_size = ${MIN_POOL:-0}
server_connect_timeout = ${CONNECT_TIMEOUT:-15}
max_client_conn = 5000
logfile = $1/warmpool.log
pidfile = $1/warmpool.pid
[databases]
bench = host=127.0.0.1 port=$PG_PORT dbname=bench password=benchpw
EOF
}

# POOLER_PID from the pidfile the launched process writes, waiting up to TENTHS tenths
# of a second while LAUNCH_PID lives. The pidfile names the pooler itself even under a
# wrapper (runuser, strace) that forks it.
pid_from_file() { # FILE TENTHS
    local i=0
    POOLER_PID=
    while [ "$i" -lt "$2" ]; do
        [ -s "$1" ] && POOLER_PID=$(cat "$1") && return 0
        alive "$LAUNCH_PID" || return 1
        sleep 0.1; i=$((i + 1))
    done
    return 1
}

pgb_launch() { # DIR PORT [WRAPPER...]
    local dir=$1 port=$2
    shift 2
    mkdir -p "$dir"
    write_userlist "$dir/userlist.txt"
    pgb_write_config "$dir" "$port"
    rm -f "$dir/pgbouncer.pid"
    [ "$(id -u)" = 0 ] && chown -R postgres "$dir"
    # Foreground PgBouncer as a background job: its pidfile names the real process even
    # when a wrapper sits between us and it.
    # -q: no copy of the log on stderr (it goes to logfile).
    as_pg sh -c 'ulimit -n "$0"; exec "$@"' "$NOFILE" "$@" "$PGBOUNCER" -q "$dir/pgbouncer.ini" \
        >"$dir/stdout.log" 2>&1 &
    LAUNCH_PID=$!
    pid_from_file "$dir/pgbouncer.pid" 600
}

wp_launch() { # DIR PORT [WRAPPER...]
    local dir=$1 port=$2
    shift 2
    mkdir -p "$dir"
    write_userlist "$dir/userlist.txt"
    wp_write_config "$dir" "$port"
    # WP_WORKERS_ARG (set by pooler_launch for warmpool-w2): --workers N on the command
    # line, which overrides the file; empty for the plain warmpool target, whose config
    # leaves workers at its default (1), so that older binaries still run.
    (ulimit -n "$NOFILE"; exec "$@" "$WARMPOOL" ${WP_WORKERS_ARG:+--workers "$WP_WORKERS_ARG"} \
        -c "$dir/warmpool.ini") >"$dir/stdout.log" 2>&1 &
    LAUNCH_PID=$!
    POOLER_PID=$LAUNCH_PID
    # strace forks the pooler as its child; valgrind runs it in-process. The pooler's
    # own pidfile names it (a child list read too early can name another process).
    if [ "${1:-}" = strace ]; then
        pid_from_file "$dir/warmpool.pid" 100 || return 1
    fi
    return 0
}

floor_launch() { # DIR PORT [WRAPPER...] — the floor relay (bench/floor/relay.c)
    local dir=$1 port=$2
    shift 2
    mkdir -p "$dir"
    (ulimit -n "$NOFILE"; exec "$@" "$FLOOR_RELAY" "$port" "$PG_PORT" "$dir/floor.pid") \
        >"$dir/stdout.log" 2>&1 &
    LAUNCH_PID=$!
    pid_from_file "$dir/floor.pid" 100
}

# Every launched pooler is registered as KIND:POOLER_PID:LAUNCH_PID so that the exit trap
# can stop whatever is still running (pooler_stop_all).
RUNNING_POOLERS=

# warmpool-w2 is the same binary and config as warmpool, started with --workers 2.
pooler_launch() { # pgbouncer|warmpool|warmpool-w2|floor DIR PORT [WRAPPER...]
    local kind=$1 rc=0 WP_WORKERS_ARG= # seen by wp_launch
    shift
    case $kind in
    pgbouncer) pgb_launch "$@" || rc=$? ;;
    warmpool) wp_launch "$@" || rc=$? ;;
    warmpool-w2) WP_WORKERS_ARG=2; wp_launch "$@" || rc=$? ;;
    floor) floor_launch "$@" || rc=$? ;;
    esac
    RUNNING_POOLERS="$RUNNING_POOLERS $kind:${POOLER_PID:-0}:$LAUNCH_PID"
    return $rc
}

pooler_stop() { # KIND POOLER_PID LAUNCH_PID
    # PgBouncer: SIGTERM (immediate before 1.23; 1.23+ waits for clients, gone by now).
    # warmpool: SIGQUIT is the immediate stop.
    # Both let valgrind/strace write their reports on the way out.
    local entry rest=
    case $1 in
    pgbouncer | floor) [ "$2" = 0 ] || stop_pid "$2" TERM ;;
    warmpool | warmpool-w2) [ "$2" = 0 ] || stop_pid "$2" QUIT ;;
    esac
    # The launch job (runuser, strace, valgrind) ends with the pooler; make sure of it.
    wait_gone "$3" 10 || kill -KILL "$3" 2>/dev/null || true
    wait "$3" 2>/dev/null || true
    for entry in $RUNNING_POOLERS; do
        [ "$entry" = "$1:$2:$3" ] || rest="$rest $entry"
    done
    RUNNING_POOLERS=$rest
}

pooler_stop_all() {
    local entry
    for entry in $RUNNING_POOLERS; do
        pooler_stop $(echo "$entry" | tr ':' ' ')
    done
}

pooler_log_tail() { # DIR — the last lines a pooler wrote, for error notes
    tail -n 3 "$1"/*.log 2>/dev/null | grep -v '^==>' | grep -v '^$' | tail -n 3 | tr '\n' ' '
}

# ---------------------------------------------------------------- measuring

# pgbench_errors FILE — "CONN ABORTED" from a pgbench output: connections that failed
# (libpq's "connection to server ... failed", one line per attempt; pgbench's own "could
# not create connection for client N" that follows it is not counted again) and clients
# aborted mid-run ("client N [script S] aborted ..."; with -C that includes "aborted while
# establishing connection", so such a client counts in both). Failed transactions are
# pgbench's own count ("number of failed transactions").
pgbench_errors() {
    awk '/connection to server .*failed|could not connect to server/ { c++ }
         /client [0-9]+ (script [0-9]+ )?aborted/ { a++ }
         END { print c + 0, a + 0 }' "$1" 2>/dev/null || echo 0 0
}

# pgbench_measure TAG PORT PID CLIENTS [pgbench args...]
# One pgbench run against 127.0.0.1:PORT, -j min(JOBS, CLIENTS), with a per-transaction
# log. PID is the pooler charged for CPU ("-" for direct). Sets M_TPS M_AVG M_P50 M_P99
# (ms) M_XACTS M_FAILED M_CONN (initial connection time, ms) M_CPU (ms per 1 000
# transactions; M_CPU_USER the user-space part of it) M_CONN_ERRORS M_ABORTED (see
# pgbench_errors) M_STATUS (ok|fails|hangs|crashed) and M_NOTE (first error line).
pgbench_measure() {
    local tag=$1 port=$2 pid=$3 clients=$4 jobs t0=- t1=- rc=0
    shift 4
    jobs=$((clients < JOBS ? clients : JOBS))
    local txlog=$WORK/txlog out=$RESULTS/runs/$tag.txt
    rm -rf "$txlog"; mkdir -p "$txlog" "$RESULTS/runs"
    local u0=- u1=-
    [ "$pid" = - ] || read -r t0 u0 < <(cpu_ticks "$pid")
    timeout -k 10 "$PGBENCH_TIMEOUT" \
        pgbench -h 127.0.0.1 -p "$port" -U bench -n -c "$clients" -j "$jobs" \
        -l --log-prefix="$txlog/tx" "$@" bench >"$out" 2>&1 || rc=$?
    [ "$pid" = - ] || read -r t1 u1 < <(cpu_ticks "$pid")

    M_TPS=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out")
    M_AVG=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$out")
    M_XACTS=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
    M_FAILED=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
    M_CONN=$(sed -n 's/^initial connection time = \([0-9.]*\) ms.*/\1/p' "$out")
    M_NOTE=$(grep -m 1 -E 'error|fatal|FATAL|ERROR' "$out" | cut -c1-160 | tr ',' ';' || true)
    : "${M_TPS:=0}" "${M_XACTS:=0}" "${M_FAILED:=0}"
    read -r M_CONN_ERRORS M_ABORTED < <(pgbench_errors "$out")

    # p50/p99 from the per-transaction latencies (3rd field, µs; "failed"/"skipped" are
    # not numbers and are left out — they are counted in M_FAILED).
    set -- $(cat "$txlog"/tx.* 2>/dev/null | awk '$3 ~ /^[0-9]+$/ { print $3 }' | sort -n |
        awk '{ v[NR] = $1 }
             END { if (NR == 0) { print "- -"; exit }
                   i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999)
                   printf "%.3f %.3f\n", v[i50] / 1000, v[i99] / 1000 }')
    M_P50=$1 M_P99=$2
    rm -rf "$txlog"

    M_CPU=$(per_1k_xact "$t0" "$t1" "$M_XACTS")
    M_CPU_USER=$(per_1k_xact "$u0" "$u1" "$M_XACTS")

    M_STATUS=ok
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        M_STATUS=hangs M_NOTE="pgbench killed after ${PGBENCH_TIMEOUT}s"
    elif [ "$pid" != - ] && ! alive "$pid"; then
        M_STATUS=crashed M_NOTE="pooler process $pid exited during the run"
    elif [ "$rc" != 0 ] || [ "$M_FAILED" != 0 ] || [ "$M_XACTS" = 0 ]; then
        M_STATUS=fails
        # pgbench starts its -T clock before the logins; when they take all of it (a busy
        # machine, many SCRAM logins) it ends with exit 0 and no transaction at all.
        if [ -z "$M_NOTE" ] && [ "$rc" = 0 ] && [ "$M_XACTS" = 0 ] && [ "$M_FAILED" = 0 ]; then
            M_NOTE="pgbench exit 0 with no transaction: the $clients clients' logins outlasted -T (machine busy?)"
        fi
        [ -n "$M_NOTE" ] || M_NOTE="pgbench exit $rc, $M_XACTS transactions, $M_FAILED failed"
    fi
}
