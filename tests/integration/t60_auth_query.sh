#!/bin/bash
# t60_auth_query — auth_query (#16): a user who is in PostgreSQL only (pg_authid, a SCRAM
# password) and not in auth_file logs in through warmpool, whose secret warmpool looks
# up by running auth_query as auth_user. As PgBouncer's docs recommend, auth_user
# (t60_auth) is no superuser: it may only call a SECURITY DEFINER function that reads
# pg_authid. A private warmpool (t30_lib.sh), scram-sha-256 (auth_hba_file),
# auth_query_cache_ttl = 1s. Its [databases] entry t60 forces the backend login
# (user=/password=); t60passthrough does not (SCRAM pass-through, see t61).
#   - t60_app logs in over SCRAM with its password (the raw client, access_client.py
#     trace, shows the whole exchange and runs SELECT current_user: the forced user);
#   - t60_md5 (an md5 password in pg_authid) logs in over md5 (an hba line for t60md5);
#   - an auth_query returning current_setting('search_path') as the secret: that
#     secret is "pg_catalog,pg_temp" (the lookup's session has search_path pinned);
#   - a wrong password gets FATAL 28P01 after the full exchange, as does an unknown user;
#   - ALTER ROLE … PASSWORD: the new password works within a generous bound (the TTL is
#     1 s; polled, no timed assertion) and the old one is refused from then on;
#   - eight logins at once, after the TTL, all get in (they share one lookup);
#   - an entry whose auth_user has no password anywhere gets 08006 at once, an entry
#     whose auth_query fails gets 08P01, each with a log line saying why;
#   - an entry forcing no backend user: the backend login passes the client's SCRAM
#     key through (SCRAM pass-through; t61 tests it further);
#   - a lookup whose server never answers: the client gets client_login_timeout's
#     08006, the lookup gives up at server_connect_timeout, warmpool serves on.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
AC="/usr/bin/python3 $(dirname "$0")/access_client.py"

cleanup_roles() {
    t3_direct -d wptest -c "DROP SCHEMA IF EXISTS t60 CASCADE" >/dev/null 2>&1 || true
    t3_direct -d postgres -c "DROP ROLE IF EXISTS t60_app" -c "DROP ROLE IF EXISTS t60_md5" \
        -c "DROP ROLE IF EXISTS t60_auth" >/dev/null 2>&1 || true
}
cleanup_roles
t3_atexit cleanup_roles
t3_direct -d postgres >/dev/null <<'SQL'
SET password_encryption = 'scram-sha-256';
CREATE ROLE t60_auth LOGIN PASSWORD 't60authpw';
CREATE ROLE t60_app LOGIN PASSWORD 't60apppw1';
SET password_encryption = 'md5';
CREATE ROLE t60_md5 LOGIN PASSWORD 't60md5pw';
GRANT CONNECT ON DATABASE wptest TO t60_auth;
SQL
t3_direct -d wptest >/dev/null <<'SQL'
CREATE SCHEMA t60;
CREATE FUNCTION t60.user_lookup(i_username text, OUT uname text, OUT phash text)
RETURNS record AS $$
BEGIN
    SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END
    FROM pg_authid
    WHERE rolname = i_username AND rolcanlogin
    INTO uname, phash;
    RETURN;
END;
$$ LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION t60.user_lookup(text) FROM public;
GRANT USAGE ON SCHEMA t60 TO t60_auth;
GRANT EXECUTE ON FUNCTION t60.user_lookup(text) TO t60_auth;
SQL

pg="host=127.0.0.1 port=$PG_PORT dbname=wptest"
forced="user=$WP_USER password=$WP_PASSWORD"
hba=$t3_tmp/hba.conf
printf 'host t60md5 all 127.0.0.1/32 md5\nhost all all 127.0.0.1/32 scram-sha-256\n' >"$hba"
settings="auth_hba_file = $hba
auth_user = t60_auth
auth_query = SELECT uname, phash FROM t60.user_lookup(\$1)
auth_query_cache_ttl = 1s"
dbs="t60 = $pg $forced
t60nopass = $pg $forced auth_user=t60_nobody
t60badquery = $pg $forced auth_query='SELECT uname FROM t60.user_lookup(\$1)'
t60passthrough = $pg
t60md5 = $pg $forced
t60path = $pg $forced auth_query='SELECT \$1::text, current_setting(\\'search_path\\')'"
t3_start "$settings" "$dbs"
# auth_user's own password comes from auth_file, as in PgBouncer.
printf '"t60_auth" "t60authpw"\n' >>"$t3_tmp/users.txt"
t3_reload "$settings" "$dbs"

trace() { $AC trace 127.0.0.1 "$t3_port" "$@"; }
expect() { # DESCRIPTION WANT GOT
    [ "$3" = "$2" ] || t3_fail "$1: got '$3', want '$2'"
}
refused() { echo "auth 10 11 -> 28P01 password authentication failed for user \"$1\""; }

expect "t60_app, right password" "auth 10 11 12 0 -> ok $WP_USER" \
    "$(trace t60_app t60apppw1 t60 "SELECT current_user")"
t3_ok "a user known only to PostgreSQL logs in over SCRAM through auth_query"
expect "t60_app again (cached)" "auth 10 11 12 0 -> ok 1" "$(trace t60_app t60apppw1 t60)"
expect "t60_md5 over md5" "auth 5 0 -> ok 1" "$(trace t60_md5 t60md5pw t60md5)"
expect "t60_md5, wrong password over md5" "auth 5 -> 28P01 password authentication failed for user \"t60_md5\"" \
    "$(trace t60_md5 guess t60md5)"
t3_ok "an md5 hash found by auth_query checks an md5 login"
# The lookup's session reports its own search_path as the "password": it is pinned.
expect "search_path of the lookup" "auth 10 11 12 0 -> ok 1" \
    "$(trace anyone "pg_catalog,pg_temp" t60path)"
t3_ok "the lookup runs with search_path pinned to pg_catalog, pg_temp"

expect "t60_app, wrong password" "$(refused t60_app)" "$(trace t60_app guess t60)"
expect "unknown user" "$(refused t60_nobody)" "$(trace t60_nobody guess t60)"
grep -q 't60/t60_nobody@127.0.0.1:[0-9]*: password authentication failed (user not found by auth_query)' \
    "$t3_log" || t3_fail "the log does not say that t60_nobody was not found by auth_query"
t3_ok "a wrong password and an unknown user get 28P01 after the full exchange"

t3_direct -d postgres -c "ALTER ROLE t60_app PASSWORD 't60apppw2'" >/dev/null
got=
for _ in $(seq 300); do
    got=$(trace t60_app t60apppw2 t60)
    [ "$got" = "auth 10 11 12 0 -> ok 1" ] && break
    sleep 0.1
done
expect "t60_app, new password" "auth 10 11 12 0 -> ok 1" "$got"
expect "t60_app, old password after the change" "$(refused t60_app)" "$(trace t60_app t60apppw1 t60)"
t3_ok "a changed password is honoured once the cache's TTL has passed"

sleep 1.5 # past the TTL: the next logins ask again, together
pids=()
for i in 1 2 3 4 5 6 7 8; do
    trace t60_app t60apppw2 t60 >"$t3_tmp/together.$i" &
    pids+=($!)
done
wait "${pids[@]}" # not warmpool, which is a child too
for i in 1 2 3 4 5 6 7 8; do
    expect "concurrent login $i" "auth 10 11 12 0 -> ok 1" "$(cat "$t3_tmp/together.$i")"
done
t3_ok "eight concurrent logins of the same user all get in"

got=$(trace t60_app t60apppw2 t60nopass)
expect "auth_user without a password" \
    "auth  -> 08006 could not look up the password: auth_user cannot connect" "$got"
grep -q 'auth_query for user "t60_app" (database "wptest" as "t60_nobody") failed: .*(auth_user has no plaintext password in auth_file)' \
    "$t3_log" || t3_fail "no log line for the auth_user that cannot connect"
got=$(trace t60_app t60apppw2 t60badquery)
expect "a failing auth_query" "auth  -> 08P01 could not look up the password: auth_query failed" "$got"
grep -q 'auth_query for user "t60_app" (database "wptest" as "t60_auth") failed: auth_query must return two columns' \
    "$t3_log" || t3_fail "no log line for the failing auth_query"
t3_ok "auth_user unable to connect: 08006; auth_query failing: 08P01; a log line each"

got=$(trace t60_app t60apppw2 t60passthrough "SELECT current_user")
expect "no forced backend user" "auth 10 11 12 0 -> ok t60_app" "$got"
t3_ok "without a forced backend login: the backend login passes the client's SCRAM key through (t61 has more)"

# A server that never answers: a socket that listens and never accepts (the kernel
# completes the handshake, nobody reads).
hang_port_file=$t3_tmp/hang.port
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
time.sleep(120)' "$hang_port_file" &
hang_pid=$!
t3_atexit "kill $hang_pid 2>/dev/null"
for _ in $(seq 100); do [ -s "$hang_port_file" ] && break; sleep 0.1; done
t3_reload "$settings
client_login_timeout = 2s
server_connect_timeout = 6s" "$dbs
t60hang = host=127.0.0.1 port=$(cat "$hang_port_file") dbname=wptest $forced"
expect "a lookup that hangs" "auth  -> 08006 client_login_timeout: login took too long" \
    "$(trace t60_app t60apppw2 t60hang)"
for _ in $(seq 300); do
    grep -q 'auth_query for user "t60_app" (database "wptest" as "t60_auth") failed: timed out' \
        "$t3_log" && break
    sleep 0.1
done
grep -q 'auth_query for user "t60_app" (database "wptest" as "t60_auth") failed: timed out' \
    "$t3_log" || t3_fail "the hanging lookup was never given up"
expect "t60_app after the hang" "auth 10 11 12 0 -> ok 1" "$(trace t60_app t60apppw2 t60)"
t3_ok "a lookup that hangs: the client's login timeout applies, the lookup ends at server_connect_timeout"
t3_stop
