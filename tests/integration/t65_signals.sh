#!/bin/bash
# t65_signals — issue 17: PgBouncer 1.25's signals. SIGUSR1 pauses every pool (new
# queries wait), SIGUSR2 resumes them, and the process lives on through both; SIGINT
# is the safe shutdown (an open transaction finishes, idle clients go, then exit),
# SIGTERM the super safe one (clients keep working until they leave, then exit), a
# second SIGTERM is immediate, SIGQUIT is immediate; each exits with status 0 and
# says so in the log (t65_signals.py drives the clients).
set -eu
. "$(dirname "$0")/lib_private_warmpool.sh"
pw_start

wp_col() { # DB COLUMN: that SHOW POOLS column (by name) of the DB/$WP_USER pool
    pw_show_col "SHOW POOLS" "$1|$WP_USER|" "$2"
}
wait_log() { # PATTERN: wait (10 s x slowness) until the log holds it
    for _ in $(seq $((100 * pw_slow))); do
        grep -q "$1" "$PW_LOG" && return 0
        sleep 0.1
    done
    fail "no '$1' in the log"
}

expect_exit() { # SIGNAL TEXT: warmpool exits (status 0), logging the signal and TEXT
    for _ in $(seq $((100 * pw_slow))); do
        kill -0 "$PW_PID" 2>/dev/null || break
        [ "$(awk '{print $3}' /proc/"$PW_PID"/stat 2>/dev/null)" = Z ] && break
        sleep 0.1
    done
    local rc=0
    wait "$PW_PID" || rc=$?
    [ "$rc" = 0 ] || fail "warmpool exit status $rc after $1"
    PW_PID=
    [ "$(grep -c "got $1" "$PW_LOG")" -ge 1 ] || fail "$1 not logged"
    grep -q "$2" "$PW_LOG" || fail "no '$2' in the log after $1"
    grep -q "warmpool stopped" "$PW_LOG" || fail "no 'warmpool stopped' after $1"
}

pw_app wptest -c "SELECT 1" >/dev/null || fail "query before the signals"

# ---------------------------------------------------------------- SIGUSR1 = PAUSE
kill -USR1 "$PW_PID"
wait_log "got SIGUSR1: PAUSE all"
[ "$(wp_col wptest paused)" = 1 ] || fail "after SIGUSR1 SHOW POOLS paused is not 1"
pw_app wptest -c "SELECT 'released'" >"$PW_DIR/paused.out" 2>&1 &
waiter=$!
waiting=0
for _ in $(seq $((100 * pw_slow))); do
    waiting=$(wp_col wptest cl_waiting)
    [ "$waiting" = 1 ] && break
    sleep 0.1
done
[ "$waiting" = 1 ] || fail "after SIGUSR1 the new query is not waiting (cl_waiting $waiting)"
kill -0 "$waiter" 2>/dev/null || fail "a query ran while paused: $(cat "$PW_DIR/paused.out")"
kill -0 "$PW_PID" || fail "warmpool died of SIGUSR1"
ok "SIGUSR1 paused the pools: a new query waits (cl_waiting 1), warmpool alive"

# ---------------------------------------------------------------- SIGUSR2 = RESUME
kill -USR2 "$PW_PID"
wait "$waiter" || fail "query after SIGUSR2 failed: $(cat "$PW_DIR/paused.out")"
[ "$(cat "$PW_DIR/paused.out")" = released ] || fail "after SIGUSR2: $(cat "$PW_DIR/paused.out")"
grep -q "got SIGUSR2: RESUME all" "$PW_LOG" || fail "SIGUSR2 not logged"
[ "$(wp_col wptest paused)" = 0 ] || fail "after SIGUSR2 SHOW POOLS paused is not 0"
pw_app wpload -c "SELECT 1" >/dev/null || fail "query after SIGUSR2"
kill -0 "$PW_PID" || fail "warmpool died of SIGUSR2"
[ "$(grep -c "got SIGUSR1" "$PW_LOG")" = 1 ] || fail "SIGUSR1 logged more than once"
[ "$(grep -c "got SIGUSR2" "$PW_LOG")" = 1 ] || fail "SIGUSR2 logged more than once"
ok "SIGUSR2 resumed: the waiting query answered, new ones run, warmpool alive"

# ---------------------------------------------------------------- SIGQUIT = immediate shutdown
pw_app wptest -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
sleeper=$!
for _ in $(seq $((100 * pw_slow))); do
    pw_admin -F '|' -c "SHOW CLIENTS" | grep -q "^C|$WP_USER|wptest|none|active|" && break
    sleep 0.1
done
kill -QUIT "$PW_PID"
expect_exit "SIGQUIT" "immediate shutdown"
wait "$sleeper" 2>/dev/null && fail "the running query survived SIGQUIT"
ok "SIGQUIT: immediate shutdown (running query cut), exit 0, logged once"

# ---------------------------------------------------------------- SIGINT, SIGTERM
for scenario in safe super twice; do
    pw_stop
    pw_start
    $PY "$here/t65_signals.py" "$scenario" 127.0.0.1 "$PW_PORT" "$PW_PID" \
        "$WP_USER" "$WP_PASSWORD" wptest || fail "scenario $scenario"
    case $scenario in
    safe) expect_exit SIGINT "safe shutdown (WAIT_FOR_SERVERS)" ;;
    super) expect_exit SIGTERM "super safe shutdown (WAIT_FOR_CLIENTS)" ;;
    twice)
        expect_exit SIGTERM "immediate shutdown"
        grep -q "super safe shutdown" "$PW_LOG" || fail "the first SIGTERM was not a super safe shutdown"
        ;;
    esac
    ok "$scenario: exit status 0, the shutdown logged"
done
