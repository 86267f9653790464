#!/bin/bash
# t71_check_errors — issue 17: `warmpool --check` prints each error of a file exactly
# once, as file:line: message on stderr, nothing on stdout, and exits 1. Before, every
# error came twice: once on stderr and once more in the log, which before the
# configuration applies is stderr too. Covered: a line that is not "key = value", an
# unknown key, a value of the wrong type, an invalid value, a broken auth_file and a
# broken auth_hba_file. Then a running warmpool logging to stderr (no logfile) gets
# the same bad file on SIGHUP: the log says it was rejected, each error once, and the
# process keeps running.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
WARMPOOL=${WARMPOOL:-$root/warmpool}
slow=1
[ "${WP_VALGRIND:-0}" = 1 ] && slow=6
dir=$(mktemp -d /tmp/warmpool-t69.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
ok() { echo "ok: $*"; }

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '"u" "p"\n' >"$dir/users.txt"
write_ini() { # FILE EXTRA-[warmpool]-LINES...
    local f=$1
    shift
    {
        echo "[warmpool]"
        echo "listen_addr = 127.0.0.1"
        echo "listen_port = $port"
        echo "unix_socket_dir ="
        printf '%s\n' "$@"
        echo "[databases]"
        echo "x = host=127.0.0.1 port=${PG_PORT:-5432}"
    } >"$f"
}

# check_once FILE EXPECTED-LINE...: --check FILE fails, stdout is empty, and each
# expected line appears on stderr exactly once, nothing else does.
check_once() {
    local f=$1 line n rc=0
    shift
    "$WARMPOOL" --check -c "$f" >"$dir/out" 2>"$dir/err" || rc=$?
    [ "$rc" = 1 ] || fail "--check $f exited $rc, want 1; stderr: $(cat "$dir/err")"
    [ ! -s "$dir/out" ] || fail "--check $f wrote to stdout: $(cat "$dir/out")"
    for line in "$@"; do
        n=$(grep -cxF "$line" "$dir/err" || true)
        [ "$n" = 1 ] || fail "'$line' is on stderr $n times, want 1; stderr:
$(cat "$dir/err")"
    done
    n=$(wc -l <"$dir/err")
    [ "$n" = $# ] || fail "--check $f printed $n lines, want $#:
$(cat "$dir/err")"
}

ini=$dir/bad.ini
write_ini "$ini" "auth_type = md5" "auth_file = $dir/users.txt" "this is not a setting" \
    "no_such_key = 1" "max_client_conn = many" "pool_mode = sideways"
check_once "$ini" \
    "$ini:7: syntax error: expected \"key = value\", \"[section]\" or a comment" \
    "$ini:8: unknown key \"no_such_key\" in [warmpool]" \
    "$ini:9: max_client_conn: \"many\" is not an integer" \
    "$ini:10: pool_mode: \"sideways\" is not a pool mode (session, transaction, statement)"
ok "--check prints a syntax error, an unknown key and two bad values once each, with file:line"

printf '"u" "p"\nbroken line\n' >"$dir/broken-users.txt"
write_ini "$dir/users.ini" "auth_type = md5" "auth_file = $dir/broken-users.txt"
check_once "$dir/users.ini" "$dir/broken-users.txt:2: expected a quoted user name"
printf 'host all all 0.0.0.0/0 nosuchmethod\n' >"$dir/hba.conf"
write_ini "$dir/hba.ini" "auth_type = hba" "auth_file = $dir/users.txt" "auth_hba_file = $dir/hba.conf"
check_once "$dir/hba.ini" \
    "$dir/hba.conf:1: invalid method (expected trust, reject, md5, scram-sha-256, password or cert)"
ok "--check prints an auth_file error and an auth_hba_file error once each, with file:line"

# ---------------------------------------------------------------- the same on SIGHUP
live=$dir/live.ini
write_ini "$live" "auth_type = md5" "auth_file = $dir/users.txt"
"$WARMPOOL" --check -c "$live" >/dev/null 2>&1 || fail "--check rejected $live"
"$WARMPOOL" -c "$live" 2>"$dir/stderr.log" &
pid=$!
for _ in $(seq $((100 * slow))); do
    grep -q "listening on" "$dir/stderr.log" && break
    kill -0 "$pid" 2>/dev/null || fail "warmpool exited at startup: $(cat "$dir/stderr.log")"
    sleep 0.1
done
grep -q "listening on" "$dir/stderr.log" || fail "warmpool did not start: $(cat "$dir/stderr.log")"
cp "$ini" "$live"
sed -i "s|$ini|$live|" "$live"
kill -HUP "$pid"
for _ in $(seq $((100 * slow))); do
    grep -q "rejected" "$dir/stderr.log" && break
    sleep 0.1
done
n=$(grep -c "ERROR configuration $live rejected:$" "$dir/stderr.log" || true)
[ "$n" = 1 ] || fail "'configuration $live rejected' logged $n times, want 1: $(cat "$dir/stderr.log")"
for key in ":7: syntax error" ":8: unknown key" ":9: max_client_conn" ":10: pool_mode"; do
    n=$(grep -c "^$live$key" "$dir/stderr.log" || true)
    [ "$n" = 1 ] || fail "'$live$key' on stderr $n times after SIGHUP, want 1:
$(cat "$dir/stderr.log")"
done
kill -0 "$pid" 2>/dev/null || fail "warmpool exited on the rejected reload"
ok "a rejected reload logged to stderr names the file once and each error once; warmpool runs on"

kill -QUIT "$pid"
st=0
wait "$pid" || st=$?
pid=
[ "$st" = 0 ] || fail "warmpool exited with status $st on SIGQUIT: $(tail -n 5 "$dir/stderr.log")"
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$dir/stderr.log"; then
    fail "sanitizer report: $(grep -E -A 12 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$dir/stderr.log" | head -n 30)"
fi
ok "SIGQUIT: exit 0, no sanitizer report"
