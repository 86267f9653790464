#!/bin/bash
# run.sh — operations tests of the packaged warmpool: online reload and rolling restart
# under pgbench load (issue 6, acceptance 2 and 3).
#
#   tests/packaging/run.sh [--installed] [--keep] [TEST...]     TEST: reload rolling rolling_connect
#
# Uses the package's own files: the newest build/deb/warmpool_*.deb is unpacked into a
# temp dir (built with packaging/build-deb.sh first if there is none), or with
# --installed the files of the installed package under /. warmpool runs as the unit
# would run it (as user `warmpool` when that user exists and we are root) but without
# systemd: `-d` with a pidfile. Its config is the packaged /etc/warmpool/warmpool.ini
# with the test's port, socket dir, auth file and database put in. PostgreSQL is a
# throwaway server (scripts/pg-throwaway.sh); pgbench talks to warmpool over TCP.
#
#   reload           pgbench -c 16 runs while max_pool_size goes 4 → 10 → (invalid
#                    file, rejected) → 2 with SIGHUP; the server connections seen in
#                    pg_stat_activity must follow, and pgbench must finish with 0 failed
#                    transactions and no aborted client.
#   rolling          pgbench -c 50 runs on warmpool A (so_reuseport = 1); B starts on
#                    the same port, A gets SIGTERM: 0 failed transactions, A exits, B
#                    serves TCP and the unix socket afterwards.
#   rolling_connect  the same with pgbench -C (a new connection per transaction) through
#                    B → C: 0 failed transactions, 0 refused connections.
#
# Prints PASS/FAIL per check and "N passed, N failed"; exits 1 if anything failed.
# Environment: WARMPOOL_DEB (a .deb to test), WP_ROLLING_UNIX=0 (rolling tests without
# the unix socket), PGBENCH_SECONDS (default 12).
set -eu

cd "$(dirname "$0")/../.."
root=$(pwd)

installed=0 keep=0 only=()
for a in "$@"; do
    case $a in
    --installed) installed=1 ;;
    --keep) keep=1 ;;
    -h | --help) sed -n '2,27p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $a" >&2; exit 2 ;;
    *) only+=("$a") ;;
    esac
done
[ ${#only[@]} -gt 0 ] || only=(reload rolling rolling_connect)
seconds=${PGBENCH_SECONDS:-12}
rolling_unix=${WP_ROLLING_UNIX:-1}

unset PGHOST PGHOSTADDR PGPORT PGUSER PGPASSWORD PGDATABASE PGOPTIONS PGSERVICE PGSSLMODE \
    PGPASSFILE PGCONNECT_TIMEOUT PGAPPNAME
tmp=$(mktemp -d /tmp/warmpool-pkgtest.XXXXXX)
chmod 0755 "$tmp" # the warmpool user must reach its config and binary in here
npass=0 nfail=0
wp_pids=()
declare -A wp_pid # name -> pid of the warmpool started by start_wp

say() { printf '%s\n' "$*"; }
pass() { say "PASS $*"; npass=$((npass + 1)); }
fail() { say "FAIL $*"; nfail=$((nfail + 1)); }
check() { # check "description" command...
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${wp_pids[@]}"; do
        kill -QUIT "$pid" 2>/dev/null || true
    done
    sleep 0.5
    for pid in "${wp_pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    "$root/scripts/pg-throwaway.sh" stop "$tmp/pg" || true
    [ "$nfail" = 0 ] || rc=1
    if [ "$rc" = 0 ] && [ "$keep" = 0 ]; then
        rm -rf "$tmp"
    else
        for f in "$tmp"/log/*.log; do
            [ -f "$f" ] || continue
            say "--- tail of $f"
            tail -n 15 "$f"
        done
        say "logs and data kept in $tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- package files

if [ "$installed" = 1 ]; then
    pkgroot=
    [ -x /usr/sbin/warmpool ] || { say "FAIL --installed: /usr/sbin/warmpool missing"; exit 1; }
else
    deb=${WARMPOOL_DEB:-$(ls -t "$root"/build/deb/warmpool_*.deb 2>/dev/null | head -n 1 || true)}
    if [ -z "$deb" ]; then
        say "+ packaging/build-deb.sh (no .deb yet)"
        DEB_BUILD_OPTIONS=nocheck "$root/packaging/build-deb.sh" >"$tmp/build-deb.out" 2>&1 ||
            { tail -n 30 "$tmp/build-deb.out"; exit 1; }
        deb=$(ls -t "$root"/build/deb/warmpool_*.deb | head -n 1)
    fi
    pkgroot=$tmp/pkg
    dpkg-deb -x "$deb" "$pkgroot"
    say "package: $deb"
fi
bin=$pkgroot/usr/sbin/warmpool
packaged_ini=$pkgroot/etc/warmpool/warmpool.ini

as_wp=()
if [ "$(id -u)" = 0 ] && id warmpool >/dev/null 2>&1; then
    as_wp=(runuser -u warmpool --)
fi
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- PostgreSQL

pgport=$("$root/scripts/pg-throwaway.sh" start "$tmp/pg")
pgsql() { as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h "$tmp/pg" -p "$pgport" -U postgres -d postgres "$@"; }
pgsql -c "CREATE ROLE wpuser LOGIN PASSWORD 'wppass'" -c "CREATE DATABASE wpdb OWNER wpuser"
PGPASSWORD=wppass pgbench -i -q -s 2 -h 127.0.0.1 -p "$pgport" -U wpuser wpdb \
    >"$tmp/pgbench-init.out" 2>&1 || { cat "$tmp/pgbench-init.out"; exit 1; }
backends() { # server connections warmpool holds to wpdb
    pgsql -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'wpuser' AND datname = 'wpdb'"
}

# ---------------------------------------------------------------- warmpool config

mkdir -p "$tmp/etc" "$tmp/run" "$tmp/log"
printf '"wpuser" "wppass"\n' >"$tmp/etc/userlist.txt"
if [ ${#as_wp[@]} -gt 0 ]; then
    chgrp warmpool "$tmp/etc/userlist.txt"
    chmod 0640 "$tmp/etc/userlist.txt"
    chown warmpool "$tmp/run" "$tmp/log"
fi
wpport=$(free_port)

# set_key FILE KEY VALUE: the key must be in the packaged file exactly once.
set_key() {
    local n
    n=$(grep -c "^$2 =\( \|$\)" "$1" || true)
    [ "$n" = 1 ] || { say "FAIL packaged warmpool.ini has $n lines for $2"; exit 1; }
    sed -i "s|^$2 =\( .*\)\?$|$2 = $3|" "$1"
}

# make_conf NAME [KEY VALUE]...: $tmp/etc/NAME.ini from the packaged file.
make_conf() {
    local name=$1 f=$tmp/etc/$1.ini
    shift
    cp "$packaged_ini" "$f"
    set_key "$f" listen_port "$wpport"
    set_key "$f" unix_socket_dir "$tmp/run"
    set_key "$f" auth_file "$tmp/etc/userlist.txt"
    set_key "$f" pool_mode transaction
    set_key "$f" logfile "$tmp/log/$name.log"
    set_key "$f" pidfile "$tmp/run/$name.pid"
    # /run/warmpool is made by systemd (RuntimeDirectory), which does not run here.
    set_key "$f" stats_socket "$tmp/run/$name.stats.sock"
    while [ $# -gt 0 ]; do
        set_key "$f" "$1" "$2"
        shift 2
    done
    grep -q '^appdb = ' "$f" || { say "FAIL packaged warmpool.ini has no appdb entry"; exit 1; }
    sed -i "s|^appdb = .*|wpdb = host=127.0.0.1 port=$pgport dbname=wpdb|" "$f"
    chmod 0644 "$f"
}

# start_wp NAME: `warmpool -d` returns once it listens; the pid comes from the pidfile.
start_wp() {
    local pid
    if ! "${as_wp[@]}" "$bin" -d -c "$tmp/etc/$1.ini" 2>"$tmp/$1.stderr"; then
        fail "warmpool $1 did not start: $(cat "$tmp/$1.stderr")"
        return 1
    fi
    pid=$(cat "$tmp/run/$1.pid")
    wp_pids+=("$pid")
    wp_pid[$1]=$pid
}

# wait_gone PID SECONDS
wait_gone() {
    local _
    for _ in $(seq $(($2 * 10))); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

via_wp() { # via_wp HOST SQL: one query through warmpool
    PGPASSWORD=wppass PGCONNECT_TIMEOUT=5 psql -X -At -h "$1" -p "$wpport" -U wpuser -d wpdb -c "$2"
}

# run_pgbench NAME ARGS...: in the background; output in $tmp/NAME.out, exit code in .rc.
run_pgbench() {
    local name=$1
    shift
    (
        rc=0
        PGPASSWORD=wppass pgbench -n -h 127.0.0.1 -p "$wpport" -U wpuser -j 2 -T "$seconds" \
            "$@" wpdb >"$tmp/$name.out" 2>&1 || rc=$?
        echo "$rc" >"$tmp/$name.rc"
    ) &
    pgbench_pid=$!
}

# pgbench_ok NAME: exit 0, every client finished, 0 failed transactions, no errors.
pgbench_ok() {
    local out=$tmp/$1.out
    wait "$pgbench_pid" || true
    say "  pgbench $1: $(grep -E '^(number of transactions actually processed|number of failed transactions|tps = )' "$out" | tr '\n' ';')"
    local ok=0
    [ "$(cat "$tmp/$1.rc")" = 0 ] || { say "  pgbench exit code $(cat "$tmp/$1.rc")"; ok=1; }
    grep -q '^number of failed transactions: 0 ' "$out" || ok=1
    if grep -qiE 'aborted|error|fatal|refused|could not|failed:' "$out"; then
        grep -iE 'aborted|error|fatal|refused|could not|failed:' "$out" | sort | uniq -c | head -n 5 |
            sed 's/^/  /'
        ok=1
    fi
    return $ok
}

# ---------------------------------------------------------------- tests

test_reload() {
    local n
    make_conf reload max_pool_size 4
    start_wp reload || return 0
    run_pgbench reload -c 16
    sleep 3
    n=$(backends)
    check "reload: $n server connections with max_pool_size = 4" test "$n" -ge 1 -a "$n" -le 4
    set_key "$tmp/etc/reload.ini" max_pool_size 10
    kill -HUP "${wp_pid[reload]}"
    sleep 3
    n=$(backends)
    check "reload: $n server connections after SIGHUP with max_pool_size = 10" \
        test "$n" -gt 4 -a "$n" -le 10
    # An invalid file is rejected whole; the pool keeps working with the old settings.
    cp "$tmp/etc/reload.ini" "$tmp/etc/reload.good"
    set_key "$tmp/etc/reload.ini" max_pool_size 2
    sed -i 's/^min_pool_size = .*/min_pool_size = lots/' "$tmp/etc/reload.ini"
    kill -HUP "${wp_pid[reload]}"
    sleep 1
    check "reload: invalid file rejected with file:line" \
        grep -q "reload.ini:[0-9]*: min_pool_size" "$tmp/log/reload.log"
    n=$(backends)
    check "reload: rejected file left max_pool_size at 10 ($n connections)" test "$n" -gt 4
    cp "$tmp/etc/reload.good" "$tmp/etc/reload.ini"
    set_key "$tmp/etc/reload.ini" max_pool_size 2
    kill -HUP "${wp_pid[reload]}"
    sleep 3
    n=$(backends)
    check "reload: $n server connections after SIGHUP with max_pool_size = 2" test "$n" -le 2
    check "reload: pgbench -c 16 through three reloads" pgbench_ok reload
    check "reload: the two valid reloads logged" \
        test "$(grep -c 'configuration reloaded' "$tmp/log/reload.log")" = 2
    kill -TERM "${wp_pid[reload]}"
    check "reload: warmpool exits on SIGTERM" wait_gone "${wp_pid[reload]}" 10
    check "reload: pidfile removed" test ! -e "$tmp/run/reload.pid"
}

# rolling OLD NEW NAME PGBENCH-ARGS...: restart from OLD to NEW under pgbench.
rolling() {
    local old=$1 new=$2 name=$3 pid_old
    shift 3
    pid_old=${wp_pid[$old]}
    run_pgbench "$name" "$@"
    sleep 3
    start_wp "$new" || { wait "$pgbench_pid" || true; return 0; }
    pass "$name: $new started on port $wpport beside $old (so_reuseport)"
    sleep 1
    kill -TERM "$pid_old"
    check "$name: pgbench $* through the restart" pgbench_ok "$name"
    check "$name: old warmpool $old exited" wait_gone "$pid_old" 30
    check "$name: $new answers over TCP" test "$(via_wp 127.0.0.1 'SELECT 1' 2>&1)" = 1
    if [ "$rolling_unix" = 1 ]; then
        check "$name: $new answers on the unix socket" \
            test "$(via_wp "$tmp/run" 'SELECT 1' 2>&1)" = 1
    fi
    check "$name: the stats socket survived the old warmpool's exit" \
        test -S "$tmp/run/rolling.stats.sock"
}

rolling_conf() {
    local unixdir=$tmp/run
    [ "$rolling_unix" = 1 ] || unixdir=
    make_conf "$1" so_reuseport 1 max_pool_size 20 shutdown_wait_timeout 60s
    set_key "$tmp/etc/$1.ini" unix_socket_dir "$unixdir"
    # Both generations share one stats socket, as they share /run/warmpool in production.
    set_key "$tmp/etc/$1.ini" stats_socket "$tmp/run/rolling.stats.sock"
}

test_rolling() {
    rolling_conf a
    rolling_conf b
    start_wp a || return 0
    rolling a b rolling -c 50
}

test_rolling_connect() {
    # A left over from a failed `rolling` would hold the port's unix socket.
    if [ -n "${wp_pid[a]:-}" ] && kill -TERM "${wp_pid[a]}" 2>/dev/null; then
        wait_gone "${wp_pid[a]}" 60 || true
    fi
    if [ -z "${wp_pid[b]:-}" ] || ! kill -0 "${wp_pid[b]}" 2>/dev/null; then
        rolling_conf b
        start_wp b || return 0
    fi
    rolling_conf c
    rolling b c rolling_connect -c 50 -C
}

start=$(date +%s)
for t in "${only[@]}"; do
    case $t in
    reload | rolling | rolling_connect) "test_$t" || fail "$t: test stopped early" ;;
    *) say "run.sh: unknown test $t"; exit 2 ;;
    esac
done
say "packaging tests took $(($(date +%s) - start)) s"
say "$npass passed, $nfail failed"
