#!/bin/bash
# t48_login_retry — server_login_retry holds between any two backend connection attempts
# of a pool, however they fail and however many clients keep asking. A private warmpool
# (t30_lib.sh) with server_login_retry = 2s and two pools that cannot log in:
#   nodb   PostgreSQL answers at once: the server database does not exist (3D000)
#   stuck  a listener that accepts and never answers: server_connect_timeout (1s)
# For about 6 s clients keep connecting to each, one after another (each waits for its
# error). The attempts counted: for nodb the "connect failed" WARNINGs in the log, for
# stuck the connections the listener accepted. Consecutive ones of a pool must be at
# least the retry apart (1.8 s allows for the log's wall clock against the pooler's
# monotonic one). Before the fix the close of a failed server started the next attempt
# at once, so they came in pairs (nodb: milliseconds apart; stuck: one connect timeout
# apart). At least two attempts per pool are required, so the spacing was measured.
# Then, after a reload to server_login_retry = 0, a pool whose connects fail inside
# libpq's start call (min_pool_size = 1) is retried without crashing warmpool.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
AC="/usr/bin/python3 $(dirname "$0")/access_client.py"
stuck_port=$(t3_free_port)
accepts=$t3_tmp/stuck-accepts
/usr/bin/python3 - "$stuck_port" "$accepts" <<'PY' &
import socket, sys, time
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(64)
held = []
with open(sys.argv[2], "w") as log:
    while True:
        held.append(listener.accept()[0])  # never answers
        print(int(time.monotonic() * 1000), file=log, flush=True)
PY
stuck_pid=$!
t3_atexit "kill $stuck_pid 2>/dev/null"
t3_start "server_login_retry = 2s
server_connect_timeout = 1s" "wptest = host=127.0.0.1 port=$PG_PORT dbname=wptest
nodb = host=127.0.0.1 port=$PG_PORT dbname=t48_no_such_db
stuck = host=127.0.0.1 port=$stuck_port dbname=wptest"

keep_asking() { # DATABASE WANT_PREFIX [OR_PREFIX]: connect again and again for 6 s
    local end=$((SECONDS + 6)) got
    while [ "$SECONDS" -lt "$end" ]; do
        got=$($AC connect 127.0.0.1 "$t3_port" "$WP_USER" "$WP_PASSWORD" "$1")
        case $got in "$2"* | "${3:-$2}"*) ;; *) echo "$1: unexpected answer '$got'" >&2; return 1 ;; esac
    done
}
# nodb's server answers at once, unless a loaded machine makes its login outlast
# server_connect_timeout: then 08006 (the attempts are spaced all the same).
keep_asking nodb "3D000 server login failed" "08006 server login failed" & nodb_pid=$!
keep_asking stuck "08006 server login failed" & stuck_clients=$!
wait "$nodb_pid" || t3_fail "a client of nodb got an unexpected answer"
wait "$stuck_clients" || t3_fail "a client of stuck got an unexpected answer"

# Milliseconds of the day of each "connect failed" of pool $1, one a line.
failures_logged() {
    grep -E "WARNING S-[0-9]+ $1/$WP_USER: connect failed" "$t3_log" |
        awk '{ split($2, t, /[:.]/); print ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 + t[4] }'
}
check_spacing() { # POOL TIMES
    local times=$2 n gap
    n=$(printf '%s\n' "$times" | grep -c .)
    [ "$n" -ge 2 ] || t3_fail "$1: only $n failed attempt(s) logged; the spacing was not exercised"
    gap=$(printf '%s\n' "$times" | awk 'NR > 1 { g = $1 - prev; if (min == "" || g < min) min = g }
                                        { prev = $1 } END { print min }')
    [ "$gap" -ge 1800 ] ||
        t3_fail "$1: two connection attempts only ${gap} ms apart with server_login_retry = 2s" \
            "($n attempts: $(printf '%s ' $times))"
    t3_ok "$1: $n failed attempts in ~6 s of clients asking, at least ${gap} ms apart"
}
check_spacing nodb "$(failures_logged nodb)"
check_spacing stuck "$(cat "$accepts")"
grep -Eq "WARNING S-[0-9]+ stuck/$WP_USER: connect failed: server_connect_timeout reached" "$t3_log" ||
    t3_fail "no WARNING in the log for the connect timeouts of stuck"
t3_ok "stuck: each connect timeout is a WARNING in the log"

# server_login_retry = 0, min_pool_size = 1, and a connect that libpq fails at once (no
# such socket directory): the failed server's close used to launch the next connect from
# inside the launch, without end, until the stack overflowed. Now the janitor's next tick
# tries again.
t3_reload "server_login_retry = 0" "wptest = host=127.0.0.1 port=$PG_PORT dbname=wptest
gone = host=/nonexistent-t48 port=5999 dbname=wptest user=$WP_USER min_pool_size=1"
for _ in $(seq $((100 * t3_slow))); do
    [ "$(grep -c "gone/$WP_USER: connect failed" "$t3_log")" -ge 5 ] && break
    kill -0 "$t3_pid" 2>/dev/null || t3_fail "warmpool died retrying gone with server_login_retry = 0"
    sleep 0.1
done
[ "$(grep -c "gone/$WP_USER: connect failed" "$t3_log")" -ge 5 ] ||
    t3_fail "gone: fewer than 5 attempts logged with server_login_retry = 0"
got=$($AC connect 127.0.0.1 "$t3_port" "$WP_USER" "$WP_PASSWORD" wptest)
[ "$got" = "ok 1" ] || t3_fail "wptest while gone keeps failing: '$got'"
t3_ok "server_login_retry = 0 with a connect failing at once: retried, warmpool keeps serving"
t3_stop
