#!/bin/bash
# t50_tls — issue 5, acceptance 1: TLS between clients and warmpool.
#
# A test CA made here with the openssl CLI signs a server certificate (CN=localhost,
# SAN DNS:localhost, IP:127.0.0.1) and client certificates CN=wpuser and
# CN=someoneelse; a second CA plays the wrong one. Two private warmpools run against
# run.sh's PostgreSQL (plain TCP to it; backend TLS is t51):
#   main: md5 auth, client_tls_sslmode = require
#   cert: auth_type = cert, client_tls_sslmode = verify-full
# Asserts: verify-full connects and SELECT works, and the session really is TLS (psql
# \conninfo, SHOW CLIENTS' tls column, the login log line); sslmode=disable is refused
# with SQLSTATE 28000; bytes stuffed after SSLRequest are refused (08P01); the wrong CA
# fails verification; pgbench -M simple and -M prepared over TLS with 0 failures; a
# 50 MB result, COPY out and COPY in arrive intact (compared with PostgreSQL's own);
# a CancelRequest inside TLS cancels; cert auth accepts CN=wpuser and refuses
# CN=someoneelse, no certificate and the wrong CA; SIGHUP with a re-issued server
# certificate: new connections get the new one while an open one keeps working, and
# a broken certificate file on reload is logged and the running one stays.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib_tls.sh"

if [ "${WP_DIRECT:-0}" = 1 ]; then
    echo "skip: tests warmpool's own TLS (WP_DIRECT=1)"
    exit 0
fi
PY=/usr/bin/python3
direct() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" "$@"; }

# ---------------------------------------------------------------- certificates
tl_ca ca
tl_ca otherca
tl_issue ca server localhost "DNS:localhost,IP:127.0.0.1"
tl_issue ca wpuser wpuser
tl_issue ca someone someoneelse
tl_issue otherca stranger wpuser
tl_ok "test CA, server and client certificates made with openssl"

direct -U postgres -d postgres -c "DROP DATABASE IF EXISTS t50 WITH (FORCE)" \
    -c "CREATE DATABASE t50 OWNER $WP_USER" >/dev/null
pgbench -i -q -s 2 -h "$PG_HOST" -p "$PG_PORT" -U "$WP_USER" t50 >/dev/null 2>&1 ||
    tl_fail "pgbench -i on PostgreSQL failed"

printf '"%s" "%s"\n"admin" "adminpass"\n' "$WP_USER" "$WP_PASSWORD" >"$TL_DIR/users.txt"
tls_keys="client_tls_key_file = $TL_DIR/server.key
client_tls_cert_file = $TL_DIR/server.crt
client_tls_ca_file = $TL_DIR/ca.crt"
tl_start main "auth_type = md5
auth_file = $TL_DIR/users.txt
admin_users = admin
pool_mode = transaction
max_pool_size = 6
max_client_conn = 200
client_tls_sslmode = require
$tls_keys

[databases]
t50 = host=127.0.0.1 port=$PG_PORT dbname=t50"
tl_start cert "auth_type = cert
pool_mode = transaction
client_tls_sslmode = verify-full
$tls_keys

[databases]
t50 = host=127.0.0.1 port=$PG_PORT dbname=t50 user=$WP_USER password=$WP_PASSWORD"
main_port=$(tl_port main)
V="user=$WP_USER password=$WP_PASSWORD dbname=t50 sslmode=verify-full sslrootcert=$TL_DIR/ca.crt"

# ---------------------------------------------------------------- connect, and it is TLS
got=$(tl_psql main "$V" -c "SELECT 40 + 2") || tl_fail "verify-full through warmpool failed"
[ "$got" = 42 ] || tl_fail "SELECT 40 + 2 gave '$got'"
tl_ok "sslmode=verify-full sslrootcert=CA host=localhost: SELECT works"
info=$(tl_psql main "$V" -c '\conninfo')
echo "$info" | grep -q 'SSL connection (protocol: TLSv1\.[23]' ||
    tl_fail "psql \\conninfo does not report TLS: $info"
tl_ok "psql reports: $(echo "$info" | grep -o 'SSL connection ([^)]*)')"
row=$(tl_psql main "user=admin password=adminpass dbname=warmpool sslmode=require" \
    -F '|' -c "SHOW CLIENTS" | grep '|warmpool|' | head -n 1)
echo "$row" | grep -qE '\|TLSv1\.[23]/[A-Z0-9_-]+\|' ||
    tl_fail "SHOW CLIENTS has no TLS column value for the admin's own TLS connection: $row"
tl_ok "SHOW CLIENTS tls column: $(echo "$row" | grep -oE 'TLSv1\.[23]/[A-Z0-9_-]+')"
grep -qE "C-[0-9]+ t50/$WP_USER@127\.0\.0\.1:[0-9]+: login, TLS TLSv1\.[23]/" "$(tl_log main)" ||
    tl_fail "no 'login, TLS …' line in the log"
tl_ok "the login log line names the TLS version and cipher"

# ---------------------------------------------------------------- refusals
if out=$(tl_psql main "$V sslmode=disable" -c "SELECT 1" 2>&1); then
    tl_fail "sslmode=disable was let in with client_tls_sslmode = require"
fi
echo "$out" | grep -q "SSL required" || tl_fail "sslmode=disable refused, but not with 'SSL required': $out"
state=$($PY "$here/tls_probe.py" plain-startup "$main_port" "$WP_USER" t50)
[ "$state" = 28000 ] || tl_fail "plain startup got SQLSTATE '$state', want 28000"
tl_ok "a client without TLS is refused: FATAL 28000 SSL required"
got=$($PY "$here/tls_probe.py" stuffed "$main_port")
[ "$got" = "E 08P01" ] || tl_fail "bytes after SSLRequest: got '$got', want 'E 08P01'"
tl_ok "bytes sent after SSLRequest, before the handshake: refused with 08P01"
if out=$(tl_psql main "$V sslrootcert=$TL_DIR/otherca.crt" -c "SELECT 1" 2>&1); then
    tl_fail "verify-full against the wrong CA connected"
fi
echo "$out" | grep -q "certificate verify failed" || tl_fail "wrong CA: unexpected error: $out"
tl_ok "verify-full with the wrong CA fails: certificate verify failed"

# ---------------------------------------------------------------- cert auth
C="user=$WP_USER dbname=t50 sslmode=verify-full sslrootcert=$TL_DIR/ca.crt"
got=$(tl_psql cert "$C sslcert=$TL_DIR/wpuser.crt sslkey=$TL_DIR/wpuser.key" \
    -c "SELECT current_user") || tl_fail "cert auth with CN=$WP_USER failed"
[ "$got" = "$WP_USER" ] || tl_fail "cert auth: current_user '$got'"
tl_ok "auth_type = cert: certificate CN=$WP_USER logs in as $WP_USER"
if out=$(tl_psql cert "$C sslcert=$TL_DIR/someone.crt sslkey=$TL_DIR/someone.key" -c "SELECT 1" 2>&1); then
    tl_fail "cert auth let CN=someoneelse in as $WP_USER"
fi
echo "$out" | grep -q "certificate authentication failed for user \"$WP_USER\"" ||
    tl_fail "CN=someoneelse: unexpected error: $out"
tl_ok "auth_type = cert: CN=someoneelse refused for user $WP_USER"
if out=$(tl_psql cert "$C sslcert=/nonexistent sslkey=/nonexistent" -c "SELECT 1" 2>&1); then
    tl_fail "verify-full let a client without a certificate in"
fi
tl_ok "no client certificate: refused ($(echo "$out" | head -n 1 | cut -c1-90))"
if out=$(tl_psql cert "$C sslcert=$TL_DIR/stranger.crt sslkey=$TL_DIR/stranger.key" -c "SELECT 1" 2>&1); then
    tl_fail "a client certificate from another CA was accepted"
fi
tl_ok "client certificate from another CA: refused"

# ---------------------------------------------------------------- volume
out=$TL_DIR/pgbench.out
for mode in simple prepared; do
    rc=0
    PGPASSWORD=$WP_PASSWORD PGSSLMODE=verify-full PGSSLROOTCERT=$TL_DIR/ca.crt PGCONNECT_TIMEOUT=10 \
        pgbench -n -M "$mode" -c 8 -j 2 -T 5 -h localhost -p "$main_port" -U "$WP_USER" t50 \
        >"$out" 2>&1 || rc=$?
    processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
    if [ "$rc" != 0 ] || [ -z "$processed" ] || [ "$processed" = 0 ] || [ "$failed" != 0 ]; then
        tail -n 20 "$out" >&2
        tl_fail "pgbench -M $mode over TLS: exit $rc, processed '$processed', failed '$failed'"
    fi
    tl_ok "pgbench -M $mode -c 8 -T 5 over TLS (transaction mode): $processed transactions, 0 failed"
done

big="SELECT i, repeat(md5(i::text), 32) FROM generate_series(1, 50000) i"
want=$(direct -U "$WP_USER" -d t50 -c "$big" | md5sum)
tl_psql main "$V" -c "$big" >"$TL_DIR/big.out"
bytes=$(wc -c <"$TL_DIR/big.out")
[ "$(md5sum <"$TL_DIR/big.out")" = "$want" ] || tl_fail "the 50 MB result through TLS differs from PostgreSQL's"
rm -f "$TL_DIR/big.out"
[ "$bytes" -gt 50000000 ] || tl_fail "the big result was only $bytes bytes"
tl_ok "a $bytes-byte result through TLS is identical to PostgreSQL's"

copy="COPY (SELECT i, md5(i::text) FROM generate_series(1, 300000) i) TO STDOUT"
direct -U "$WP_USER" -d t50 -c "$copy" >"$TL_DIR/copy.tsv"
got=$(tl_psql main "$V" -c "$copy" | md5sum)
[ "$got" = "$(md5sum <"$TL_DIR/copy.tsv")" ] || tl_fail "COPY TO STDOUT through TLS differs"
PGOPTIONS="-c client_min_messages=warning" tl_psql main "$V" -c "DROP TABLE IF EXISTS t50_copy" -c "CREATE TABLE t50_copy (i int, t text)" \
    -c "\\copy t50_copy FROM '$TL_DIR/copy.tsv'"
got=$(direct -U "$WP_USER" -d t50 -c "SELECT count(*), sum(i), md5(string_agg(t, ',' ORDER BY i)) FROM t50_copy")
want=$(direct -U "$WP_USER" -d t50 -c "SELECT count(*), sum(i), md5(string_agg(md5(i::text), ',' ORDER BY i)) FROM generate_series(1, 300000) i")
[ "$got" = "$want" ] || tl_fail "COPY FROM STDIN through TLS: table has '$got', want '$want'"
tl_ok "COPY out ($(wc -c <"$TL_DIR/copy.tsv") bytes) and COPY in through TLS arrive intact"

state=$($PY "$here/tls_probe.py" cancel-in-tls "$main_port" "$WP_USER" "$WP_PASSWORD" t50 "$TL_DIR/ca.crt")
[ "$state" = 57014 ] || tl_fail "CancelRequest inside TLS: query ended with '$state', want 57014"
tl_ok "a CancelRequest sent inside TLS cancels the query (57014)"

# ---------------------------------------------------------------- reload
served_serial() {
    openssl s_client -starttls postgres -connect "127.0.0.1:$main_port" -servername localhost \
        </dev/null 2>/dev/null | openssl x509 -noout -serial
}
old_serial=$(openssl x509 -noout -serial -in "$TL_DIR/server.crt")
[ "$(served_serial)" = "$old_serial" ] || tl_fail "served certificate is not server.crt"
coproc OPEN { tl_psql main "$V" 2>&1; }
# bash unsets OPEN and OPEN_PID once the coprocess ends: keep copies.
open_pid=$OPEN_PID open_in=${OPEN[1]} open_out=${OPEN[0]}
echo "SELECT 'before';" >&"$open_in"
read -r -t 10 line <&"$open_out" || tl_fail "no answer on the open TLS connection"
[ "$line" = before ] || tl_fail "open connection answered '$line'"

tl_issue ca server2 localhost "DNS:localhost,IP:127.0.0.1"
cp "$TL_DIR/server2.key" "$TL_DIR/server.key"
cp "$TL_DIR/server2.crt" "$TL_DIR/server.crt"
tl_reload main
new_serial=$(openssl x509 -noout -serial -in "$TL_DIR/server2.crt")
[ "$(served_serial)" = "$new_serial" ] ||
    tl_fail "after SIGHUP new connections get $(served_serial), want the new $new_serial"
got=$(tl_psql main "$V" -c "SELECT 'new'") || tl_fail "verify-full after the certificate change failed"
[ "$got" = new ] || tl_fail "after reload: '$got'"
echo "SELECT 'after';" >&"$open_in"
read -r -t 10 line <&"$open_out" || tl_fail "the open TLS connection stopped answering after SIGHUP"
[ "$line" = after ] || tl_fail "open connection answered '$line' after SIGHUP"
tl_ok "SIGHUP: new connections get the re-issued certificate ($old_serial -> $new_serial); the open one keeps working"

echo "not a certificate" >"$TL_DIR/server.crt"
tl_reload main
grep -q "rejected.*client_tls_cert_file $TL_DIR/server.crt" "$(tl_log main)" ||
    tl_fail "a broken certificate on reload was not logged with its file name"
[ "$(served_serial)" = "$new_serial" ] || tl_fail "after a failed reload the served certificate changed"
got=$(tl_psql main "$V" -c "SELECT 'still'") || tl_fail "connections fail after a rejected reload"
[ "$got" = still ] || tl_fail "after rejected reload: '$got'"
tl_ok "a broken certificate file on SIGHUP is logged ($(grep -o 'client_tls_cert_file [^:]*: .*' "$(tl_log main)" | tail -n 1)); the running one stays"
exec {open_in}>&-
wait "$open_pid" 2>/dev/null || true
