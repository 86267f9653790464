#!/bin/bash
# t47_backend_error_text — when warmpool cannot log in to a server, its clients get a
# clean FATAL with the inferred SQLSTATE and none of libpq's text (which names socket
# paths, host names, ports and the server's database names); the operator gets all of
# it: a WARNING with the pool's identity in the log, and last_error in /pools.
# A private warmpool (t30_lib.sh) with four databases that cannot log in:
#   nosocket  a unix socket directory that does not exist      → 08006
#   nodb      a server database that does not exist            → 3D000
#   badpass   a forced user with a wrong password              → 28P01
#   full      a role with CONNECTION LIMIT 0                   → 53300
# Each is asked by a raw client (access_client.py connect), which prints the SQLSTATE
# and message it got.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
AC="/usr/bin/python3 $(dirname "$0")/access_client.py"
STATS="/usr/bin/python3 $(dirname "$0")/stats_client.py"
hidden_dir=/tmp/t47-hidden-socket-dir-$$
t3_direct -d postgres -c "DROP ROLE IF EXISTS t47_limited" \
    -c "CREATE ROLE t47_limited LOGIN PASSWORD 't47pass' CONNECTION LIMIT 0" >/dev/null
t3_atexit 't3_direct -d postgres -c "DROP ROLE IF EXISTS t47_limited" >/dev/null'
t3_start "stats_socket = $t3_tmp/stats.sock
server_login_retry = 100ms" "wptest = host=127.0.0.1 port=$PG_PORT dbname=wptest
nosocket = host=$hidden_dir port=5999 dbname=wptest
nodb = host=127.0.0.1 port=$PG_PORT dbname=t47_hidden_server_db
badpass = host=127.0.0.1 port=$PG_PORT dbname=wptest user=$WP_USER password=t47-wrong
full = host=127.0.0.1 port=$PG_PORT dbname=wptest user=t47_limited password=t47pass"

connect() { $AC connect 127.0.0.1 "$t3_port" "$WP_USER" "$WP_PASSWORD" "$1"; }
expect() { # DATABASE WANT
    local got
    got=$(connect "$1")
    [ "$got" = "$2" ] || t3_fail "$1: the client got '$got', want '$2'"
}
expect wptest "ok 1"
expect nosocket "08006 server login failed: could not connect to the server"
expect nodb "3D000 server login failed: database does not exist"
expect badpass "28P01 server login failed: password authentication failed"
expect full "53300 server login failed: too many connections"
t3_ok "clients get 08006/3D000/28P01/53300 with a fixed text, no socket path, host or server database"

logged() { # DATABASE PATTERN: a WARNING with the pool's identity and libpq's text
    grep -Eq "WARNING S-[0-9]+ $1/$WP_USER: connect failed: .*$2" "$t3_log" ||
        t3_fail "no WARNING with libpq's text ($2) for pool $1/$WP_USER in the log"
}
logged nosocket "$hidden_dir/.s.PGSQL.5999"
logged nodb 'database "t47_hidden_server_db" does not exist'
logged badpass "password authentication failed for user \"$WP_USER\""
logged full 'too many connections for role "t47_limited"'
t3_ok "the log has libpq's whole text for each, with the pool's identity"

last_error() {
    $STATS json "unix:$t3_tmp/stats.sock" /pools \
        "[p['last_error'] for p in d['pools'] if p['database'] == '$1'][0]"
}
case $(last_error nosocket) in
*"$hidden_dir/.s.PGSQL.5999"*) ;;
*) t3_fail "/pools last_error of nosocket lacks the socket path: $(last_error nosocket)" ;;
esac
case $(last_error nodb) in
*t47_hidden_server_db*) ;;
*) t3_fail "/pools last_error of nodb lacks the server database: $(last_error nodb)" ;;
esac
t3_ok "/pools last_error keeps the details for operators"
t3_stop
