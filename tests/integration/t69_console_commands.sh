#!/bin/bash
# t69_console_commands — issue 17: the console's process-control commands with
# PgBouncer 1.25's semantics (PAUSE waits for an open transaction, DISABLE/ENABLE,
# KILL_CLIENT, RECONNECT + WAIT_CLOSE, SUSPEND/RESUME, SHUTDOWN WAIT_FOR_CLIENTS),
# driven by t69_console_commands.py; then the process's exit status and log.
set -eu
. "$(dirname "$0")/lib_private_warmpool.sh"
pw_start

$PY "$here/t69_console_commands.py" 127.0.0.1 "$PW_PORT" "$PW_PID" "$WP_USER" "$WP_PASSWORD" ||
    fail "console commands"
rc=0
wait "$PW_PID" || rc=$?
[ "$rc" = 0 ] || fail "warmpool exit status $rc after SHUTDOWN WAIT_FOR_CLIENTS"
PW_PID=
for line in "PAUSE wptest" "DISABLE wptest" "ENABLE wptest" "KILL_CLIENT" "RECONNECT wptest" \
    "SUSPEND" "dropping 1 connections whose output was not flushed within suspend_timeout" \
    "SHUTDOWN WAIT_FOR_CLIENTS" "super safe shutdown" "warmpool stopped"; do
    grep -q "$line" "$PW_LOG" || fail "no '$line' in the log"
done
ok "each command logged; exit status 0"
