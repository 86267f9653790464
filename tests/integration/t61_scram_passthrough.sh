#!/bin/bash
# t61_scram_passthrough — SCRAM pass-through (#16): users warmpool has no plaintext
# password for log in to the server with the ClientKey of their own SCRAM login
# (server_login.c), and plaintext passwords derive their SCRAM keys once.
# A private warmpool (t30_lib.sh), scram-sha-256 for clients (auth_hba_file), auth_query
# as t61_auth, a role with no password that reaches PostgreSQL over its unix socket
# (trusted there: auth_dbname = t61lookup), so no file the test writes holds a password
# of the users under test. The entry t61 (TCP, scram-sha-256 on the server) forces no
# backend user.
#   (i)   t61_app, only in pg_authid, logs in and its queries run on the server as
#         t61_app; none of its passwords is in any file of the test (log included);
#   (ii)  a wrong password: 28P01;
#   (iii) ALTER ROLE … PASSWORD: once auth_query_cache_ttl (1 s) has passed (polled
#         until a deadline) the new password works, also on a fresh backend, and the
#         old one fails;
#   (iv)  t61_file, whose SCRAM secret is copied into auth_file, logs in the same way;
#   (v)   t61_plain, a plaintext password in auth_file, min_pool_size = 2: once its
#         backends are ended, the new ones reuse the SCRAM keys derived for the first
#         (debug log line "SCRAM keys reused");
#         TLS backends do the same (t51 checks it on its sslmode=require entry);
#   (vi)  t61_off, NOLOGIN on the server: the client gets FATAL 28000, the log has the
#         server's reason, warmpool serves on;
#   (vii) an entry only libpq serves (host=localhost, a name): t61_app gets FATAL 28P01,
#         the log says why pass-through could not serve it;
#   (viii) a server that never answers: server_connect_timeout ends the login, 08006;
#   (ix)  t61_md5, whose password PostgreSQL stores as md5 (and asks md5 for, a line the
#         test puts first in the server's pg_hba.conf), found by auth_query: the client
#         logs in with md5 and its backend login answers the server's md5 challenge from
#         the stored hash, as PgBouncer passes md5 secrets through.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
AC="/usr/bin/python3 $(dirname "$0")/access_client.py"

cleanup_roles() {
    t3_direct -d wptest -c "DROP SCHEMA IF EXISTS t61 CASCADE" >/dev/null 2>&1 || true
    for r in t61_app t61_file t61_plain t61_off t61_auth t61_md5; do
        t3_direct -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1 || true
    done
}
cleanup_roles
t3_atexit cleanup_roles
t3_direct -d postgres >/dev/null <<'SQL'
SET password_encryption = 'scram-sha-256';
CREATE ROLE t61_auth LOGIN;
CREATE ROLE t61_app LOGIN PASSWORD 't61-app-pw1';
CREATE ROLE t61_file LOGIN PASSWORD 't61-file-pw';
CREATE ROLE t61_plain LOGIN PASSWORD 't61-plain-pw';
CREATE ROLE t61_off LOGIN PASSWORD 't61-off-pw';
GRANT CONNECT ON DATABASE wptest TO t61_app, t61_file, t61_plain, t61_off;
SQL
t3_direct -d wptest >/dev/null <<'SQL'
CREATE SCHEMA t61;
CREATE FUNCTION t61.user_lookup(i_username text, OUT uname text, OUT phash text)
RETURNS record AS $$
BEGIN
    SELECT rolname, rolpassword FROM pg_authid
    WHERE rolname = i_username AND rolcanlogin INTO uname, phash;
    RETURN;
END;
$$ LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION t61.user_lookup(text) FROM public;
GRANT USAGE ON SCHEMA t61 TO t61_auth;
GRANT EXECUTE ON FUNCTION t61.user_lookup(text) TO t61_auth;
SQL

hba=$t3_tmp/hba.conf
printf 'host all all 127.0.0.1/32 scram-sha-256\n' >"$hba"
settings="auth_hba_file = $hba
auth_user = t61_auth
auth_dbname = t61lookup
auth_query = SELECT uname, phash FROM t61.user_lookup(\$1)
auth_query_cache_ttl = 1s
server_login_retry = 100ms
verbose = 2"
dbs="t61 = host=127.0.0.1 port=$PG_PORT dbname=wptest
t61lookup = host=$PG_HOST port=$PG_PORT dbname=wptest
t61min = host=127.0.0.1 port=$PG_PORT dbname=wptest min_pool_size=2
t61byname = host=localhost port=$PG_PORT dbname=wptest"
t3_start "$settings" "$dbs"

trace() { $AC trace 127.0.0.1 "$t3_port" "$@"; }
expect() { # DESCRIPTION WANT GOT
    [ "$3" = "$2" ] || t3_fail "$1: got '$3', want '$2'"
}
refused() { echo "auth 10 11 -> 28P01 password authentication failed for user \"$1\""; }
terminate() { # ROLE: end its backends (warmpool sees them close and opens new ones)
    t3_direct -d postgres -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
        WHERE usename = '$1'" >/dev/null
}

# (i)
expect "t61_app, right password" "auth 10 11 12 0 -> ok t61_app" \
    "$(trace t61_app t61-app-pw1 t61 "SELECT current_user")"
grep -q 't61/t61_app: SCRAM keys for backend logins taken from the client' "$t3_log" ||
    t3_fail "no log line for the ClientKey taken from t61_app's login"
grep -Eq 'S-[0-9]+ t61/t61_app pid=[0-9]+: connected' "$t3_log" || t3_fail "no backend for t61_app"
t3_ok "a user known only to pg_authid runs queries on the server as itself (pass-through)"

# (ii)
expect "t61_app, wrong password" "$(refused t61_app)" "$(trace t61_app guess t61)"
t3_ok "a wrong password gets 28P01"

# (iii)
t3_direct -d postgres -c "SET password_encryption = 'scram-sha-256'" \
    -c "ALTER ROLE t61_app PASSWORD 't61-app-pw2'" >/dev/null
got=
for _ in $(seq $((300 * t3_slow))); do
    got=$(trace t61_app t61-app-pw2 t61 "SELECT current_user")
    [ "$got" = "auth 10 11 12 0 -> ok t61_app" ] && break
    sleep 0.1
done
expect "t61_app, new password" "auth 10 11 12 0 -> ok t61_app" "$got"
expect "t61_app, old password after the change" "$(refused t61_app)" \
    "$(trace t61_app t61-app-pw1 t61)"
# A fresh backend must log in with the new key: end the old ones, then ask until the
# answer comes from a backend that started after the change.
before=$(grep -Ec 'S-[0-9]+ t61/t61_app pid=[0-9]+: connected' "$t3_log")
terminate t61_app
for _ in $(seq $((300 * t3_slow))); do
    got=$(trace t61_app t61-app-pw2 t61 "SELECT current_user")
    [ "$(grep -Ec 'S-[0-9]+ t61/t61_app pid=[0-9]+: connected' "$t3_log")" -gt "$before" ] &&
        [ "$got" = "auth 10 11 12 0 -> ok t61_app" ] && break
    sleep 0.1
done
[ "$(grep -Ec 'S-[0-9]+ t61/t61_app pid=[0-9]+: connected' "$t3_log")" -gt "$before" ] ||
    t3_fail "no new backend for t61_app after its old ones ended"
expect "t61_app, new password, fresh backend" "auth 10 11 12 0 -> ok t61_app" "$got"
t3_ok "after ALTER ROLE … PASSWORD and the TTL: the new password works (on a new backend too), the old fails"

# (iv)
secret=$(t3_direct -d postgres -c "SELECT rolpassword FROM pg_authid WHERE rolname = 't61_file'")
case $secret in SCRAM-SHA-256\$*) ;; *) t3_fail "t61_file has no SCRAM secret: $secret" ;; esac
printf '"t61_file" "%s"\n' "$secret" >>"$t3_tmp/users.txt"
t3_reload "$settings" "$dbs"
expect "t61_file, SCRAM secret in auth_file" "auth 10 11 12 0 -> ok t61_file" \
    "$(trace t61_file t61-file-pw t61 "SELECT current_user")"
t3_ok "a SCRAM secret copied into auth_file: the backend login passes the key through"

for pw in t61-app-pw1 t61-app-pw2 t61-file-pw; do
    if grep -rlF -- "$pw" "$t3_tmp" >/dev/null; then
        t3_fail "the password $pw is in a file of the test: $(grep -rlF -- "$pw" "$t3_tmp")"
    fi
done
t3_ok "no file the test wrote (warmpool's log included) holds those users' passwords"

# (v)
printf '"t61_plain" "t61-plain-pw"\n' >>"$t3_tmp/users.txt"
t3_reload "$settings" "$dbs"
expect "t61_plain, plaintext password" "auth 10 11 12 0 -> ok t61_plain" \
    "$(trace t61_plain t61-plain-pw t61min "SELECT current_user")"
# min_pool_size opens two backends at once (both derive the keys); ended, they are
# replaced, and the replacements reuse the keys.
for _ in $(seq $((100 * t3_slow))); do
    grep -q 't61min/t61_plain: SCRAM keys reused (derived from the password before)' \
        "$t3_log" && break
    terminate t61_plain
    sleep 0.3
done
grep -q 't61min/t61_plain: SCRAM keys reused (derived from the password before)' "$t3_log" ||
    t3_fail "the second backend of t61min/t61_plain did not reuse the derived SCRAM keys"
t3_ok "a plaintext password: the SCRAM keys are derived once and reused by later logins"

# (vi)
secret=$(t3_direct -d postgres -c "SELECT rolpassword FROM pg_authid WHERE rolname = 't61_off'")
printf '"t61_off" "%s"\n' "$secret" >>"$t3_tmp/users.txt"
t3_direct -d postgres -c "ALTER ROLE t61_off NOLOGIN" >/dev/null
t3_reload "$settings" "$dbs"
expect "t61_off, NOLOGIN on the server" \
    "auth 10 11 12 0 -> 28000 server login failed: the server refused the login" \
    "$(trace t61_off t61-off-pw t61)"
grep -q 't61/t61_off: connect failed: .*role "t61_off" is not permitted to log in' "$t3_log" ||
    t3_fail "the log lacks the server's reason for refusing t61_off"
expect "t61_app after the refused login" "auth 10 11 12 0 -> ok t61_app" \
    "$(trace t61_app t61-app-pw2 t61 "SELECT current_user")"
t3_ok "a login the server refuses: FATAL 28000 to the client, the reason in the log, warmpool serves on"

# (vii)
expect "t61_app on an entry only libpq serves" \
    "auth 10 11 12 0 -> 28P01 server login failed: password authentication failed" \
    "$(trace t61_app t61-app-pw2 t61byname)"
grep -q 't61byname/t61_app: connect failed: .*SCRAM pass-through cannot serve this entry: host= is not a numeric address' \
    "$t3_log" || t3_fail "no log line saying why pass-through could not serve t61byname"
expect "t61_app after that" "auth 10 11 12 0 -> ok t61_app" \
    "$(trace t61_app t61-app-pw2 t61 "SELECT current_user")"
t3_ok "an entry pass-through cannot serve (a host name): 28P01 to the client, the reason in the log"

# (viii) A server that never answers (a socket that listens and never accepts: the
# kernel completes the handshake, nobody reads the SSLRequest): server_connect_timeout
# ends warmpool's own login too.
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
server_connect_timeout = 2s" "$dbs
t61hang = host=127.0.0.1 port=$(cat "$hang_port_file") dbname=wptest"
expect "t61_app, a server that never answers" \
    "auth 10 11 12 0 -> 08006 server login failed: could not connect to the server" \
    "$(trace t61_app t61-app-pw2 t61hang)"
grep -q 't61hang/t61_app: connect failed: server_connect_timeout' "$t3_log" ||
    t3_fail "no log line for the login that timed out"
expect "t61_app after the hang" "auth 10 11 12 0 -> ok t61_app" \
    "$(trace t61_app t61-app-pw2 t61 "SELECT current_user")"
t3_ok "a server that never answers: server_connect_timeout ends the login, 08006 to the client"

# (ix)
t3_direct -d postgres >/dev/null <<'SQL'
SET password_encryption = 'md5';
CREATE ROLE t61_md5 LOGIN PASSWORD 't61-md5-pw';
GRANT CONNECT ON DATABASE wptest TO t61_md5;
SQL
pg_hba=$(t3_direct -d postgres -Atc "SHOW hba_file")
cp "$pg_hba" "$t3_tmp/pg_hba.saved"
restore_pg_hba() {
    cat "$t3_tmp/pg_hba.saved" >"$pg_hba" # cat keeps the file's owner
    t3_direct -d postgres -c "SELECT pg_reload_conf()" >/dev/null
}
t3_atexit restore_pg_hba
{ echo "host all t61_md5 127.0.0.1/32 md5"; cat "$t3_tmp/pg_hba.saved"; } >"$t3_tmp/pg_hba.new"
cat "$t3_tmp/pg_hba.new" >"$pg_hba"
t3_direct -d postgres -c "SELECT pg_reload_conf()" >/dev/null
printf 'host all t61_md5 127.0.0.1/32 md5\nhost all all 127.0.0.1/32 scram-sha-256\n' >"$hba"
t3_reload "$settings" "$dbs"
got=
for _ in $(seq $((100 * t3_slow))); do # until PostgreSQL has read its pg_hba.conf
    got=$(trace t61_md5 t61-md5-pw t61 "SELECT current_user")
    [ "$got" = "auth 5 0 -> ok t61_md5" ] && break
    sleep 0.1
done
expect "t61_md5, md5 through auth_query" "auth 5 0 -> ok t61_md5" "$got"
grep -Eq 'S-[0-9]+ t61/t61_md5 pid=[0-9]+: connected' "$t3_log" || t3_fail "no backend for t61_md5"
expect "t61_md5, wrong password" "auth 5 -> 28P01 password authentication failed for user \"t61_md5\"" \
    "$(trace t61_md5 guess t61)"
t3_ok "an md5 secret from auth_query: md5 from the client, the server's md5 challenge answered from the hash"
t3_stop
