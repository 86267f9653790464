#!/bin/bash
# t52_tls_hba — issue 5: where client TLS meets auth_hba_file (hostssl/hostnossl rules
# follow the client's TLS state; the cert method is certificate login).
#
# A test CA (lib_tls.sh) signs the server certificate and client certificates
# CN=certuser, CN=other and CN=wpuser. Private warmpools against run.sh's PostgreSQL,
# all with this auth_hba_file:
#   local     all  nobody                 reject
#   local     all  all                    trust
#   hostssl   all  certuser  127.0.0.1/32 cert
#   hostssl   all  all       127.0.0.1/32 scram-sha-256
#   hostnossl all  all       all          reject
#   pref: client_tls_sslmode = prefer + client_tls_ca_file (certificates asked for,
#         optional at the TLS level), unix socket on
#   vca:  client_tls_sslmode = verify-ca (every TLS client needs a certificate)
# Asserts (raw protocol via tls_probe.py auth, which shows the first answer):
#   pref: a TCP client without TLS is refused by the hostnossl reject (28000, hba
#   wording); wpuser over TLS is asked for SCRAM-SHA-256 and logs in with its password;
#   certuser with CN=certuser logs in without being asked for a password; CN=other as
#   certuser and certuser without a certificate get 28000; the unix socket follows the
#   local lines (trust for wpuser/certuser, reject for nobody).
#   vca: CN=certuser logs in, CN=other gets 28000, no certificate fails the handshake,
#   wpuser with a certificate is still asked for SCRAM, a client without TLS gets
#   "SSL required".
#   cert rules without client_tls_ca_file, or on a host line, are refused by --check
#   (file:line and the reason); the same file on SIGHUP is logged and the rules stay.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib_tls.sh"

if [ "${WP_DIRECT:-0}" = 1 ]; then
    echo "skip: tests warmpool's own TLS and hba rules (WP_DIRECT=1)"
    exit 0
fi
PY=/usr/bin/python3
probe() { $PY "$here/tls_probe.py" auth "$@"; }
expect() { # WANT_PREFIX DESCRIPTION GOT
    case $3 in "$1"*) ;; *) tl_fail "$2: got '$3', want '$1…'" ;; esac
}

tl_ca ca
tl_ca otherca
tl_issue ca server localhost "DNS:localhost,IP:127.0.0.1"
tl_issue ca certuser certuser
tl_issue ca other other
tl_issue ca wpuser "$WP_USER"
tl_issue otherca stranger certuser
tl_ok "test CA, server and client certificates (CN=certuser, other, $WP_USER) made"

cat >"$TL_DIR/hba.conf" <<HBA
local     all  nobody                 reject
local     all  all                    trust
hostssl   all  certuser  127.0.0.1/32 cert
hostssl   all  all       127.0.0.1/32 scram-sha-256
hostnossl all  all       all          reject
HBA
printf '"%s" "%s"\n' "$WP_USER" "$WP_PASSWORD" >"$TL_DIR/users.txt"
common="auth_type = md5
auth_file = $TL_DIR/users.txt
auth_hba_file = $TL_DIR/hba.conf
client_tls_key_file = $TL_DIR/server.key
client_tls_cert_file = $TL_DIR/server.crt
client_tls_ca_file = $TL_DIR/ca.crt"
dbs="[databases]
wptest = host=127.0.0.1 port=$PG_PORT dbname=wptest user=$WP_USER password=$WP_PASSWORD"
mkdir -m 755 "$TL_DIR/sock"
TL_SOCKET_DIR=$TL_DIR/sock tl_start pref "$common
client_tls_sslmode = prefer

$dbs"
tl_start vca "$common
client_tls_sslmode = verify-ca

$dbs"
pref=$(tl_port pref) vca=$(tl_port vca)
CA=$TL_DIR/ca.crt

# ---------------------------------------------------------------- prefer
expect "E 28000 hba rejects connection for host \"127.0.0.1\", user \"$WP_USER\", database \"wptest\"" \
    "pref: TCP without TLS" "$(probe "$pref" "$WP_USER" wptest -)"
expect "E 28000 hba rejects connection for host \"127.0.0.1\", user \"certuser\"" \
    "pref: certuser without TLS" "$(probe "$pref" certuser wptest -)"
grep -q "C-[0-9]* wptest/$WP_USER@127.0.0.1:[0-9]*: hba rejects connection (auth_hba_file line 5)" \
    "$(tl_log pref)" || tl_fail "pref: the log does not name the hostnossl line (5)"
tl_ok "prefer: TCP clients without TLS are refused by 'hostnossl all all all reject' (28000)"

expect "R 10 SCRAM-SHA-256" "pref: $WP_USER over TLS" "$(probe "$pref" "$WP_USER" wptest "$CA")"
got=$(PGPASSWORD=$WP_PASSWORD tl_psql pref "user=$WP_USER dbname=wptest sslmode=verify-full \
    sslrootcert=$CA" -c "SELECT 'scram ok'") || tl_fail "pref: $WP_USER over TLS with a password failed"
[ "$got" = "scram ok" ] || tl_fail "pref: $WP_USER over TLS: '$got'"
if out=$(PGPASSWORD=wrong tl_psql pref "user=$WP_USER dbname=wptest sslmode=require" -c "SELECT 1" 2>&1); then
    tl_fail "pref: a wrong password was accepted over TLS"
fi
echo "$out" | grep -q "password authentication failed" || tl_fail "pref: wrong password: $out"
tl_ok "prefer: $WP_USER over TLS is asked for SCRAM-SHA-256 and logs in with its password"

expect "R 0" "pref: certuser with CN=certuser" \
    "$(probe "$pref" certuser wptest "$CA" "$TL_DIR/certuser.crt" "$TL_DIR/certuser.key")"
C="user=certuser dbname=wptest sslmode=verify-full sslrootcert=$CA"
got=$(tl_psql pref "$C sslcert=$TL_DIR/certuser.crt sslkey=$TL_DIR/certuser.key" \
    -c "SELECT 'cert ok'") || tl_fail "pref: certuser with its certificate could not log in"
[ "$got" = "cert ok" ] || tl_fail "pref: certuser: '$got'"
grep -qE "C-[0-9]+ wptest/certuser@127\.0\.0\.1:[0-9]+: login, TLS TLSv1\.[23]/" "$(tl_log pref)" ||
    tl_fail "pref: no TLS login line for certuser"
tl_ok "prefer: certuser with a CN=certuser certificate logs in without a password"

expect "E 28000 certificate authentication failed for user \"certuser\"" "pref: CN=other as certuser" \
    "$(probe "$pref" certuser wptest "$CA" "$TL_DIR/other.crt" "$TL_DIR/other.key")"
expect "E 28000 connection requires a valid client certificate" "pref: certuser without a certificate" \
    "$(probe "$pref" certuser wptest "$CA")"
if out=$(tl_psql pref "$C" -c "SELECT 1" 2>&1); then
    tl_fail "pref: psql as certuser without a certificate got in"
fi
echo "$out" | grep -q "connection requires a valid client certificate" ||
    tl_fail "pref: psql as certuser without a certificate: $out"
expect "tls-error" "pref: certificate from another CA" \
    "$(probe "$pref" certuser wptest "$CA" "$TL_DIR/stranger.crt" "$TL_DIR/stranger.key")"
tl_ok "prefer: certuser with CN=other or without a certificate gets 28000; another CA's certificate fails the handshake"

sock=$TL_DIR/sock
got=$(PGCONNECT_TIMEOUT=10 psql -X -At -h "$sock" -p "$pref" -U certuser -d wptest -c "SELECT 'local ok'" 2>&1) ||
    tl_fail "pref: certuser over the unix socket (local trust): $got"
[ "$got" = "local ok" ] || tl_fail "pref: unix socket: '$got'"
if out=$(PGCONNECT_TIMEOUT=10 psql -X -At -h "$sock" -p "$pref" -U nobody -d wptest -c "SELECT 1" 2>&1); then
    tl_fail "pref: 'local all nobody reject' let nobody in"
fi
echo "$out" | grep -q "hba rejects connection" || tl_fail "pref: nobody over the unix socket: $out"
tl_ok "prefer: the unix socket follows its local lines (trust; reject for nobody)"

# ---------------------------------------------------------------- verify-ca
expect "R 0" "vca: certuser with CN=certuser" \
    "$(probe "$vca" certuser wptest "$CA" "$TL_DIR/certuser.crt" "$TL_DIR/certuser.key")"
expect "E 28000 certificate authentication failed for user \"certuser\"" "vca: CN=other as certuser" \
    "$(probe "$vca" certuser wptest "$CA" "$TL_DIR/other.crt" "$TL_DIR/other.key")"
expect "tls-error" "vca: certuser without a certificate" "$(probe "$vca" certuser wptest "$CA")"
expect "R 10 SCRAM-SHA-256" "vca: $WP_USER with a certificate" \
    "$(probe "$vca" "$WP_USER" wptest "$CA" "$TL_DIR/wpuser.crt" "$TL_DIR/wpuser.key")"
got=$(PGPASSWORD=$WP_PASSWORD tl_psql vca "user=$WP_USER dbname=wptest sslmode=verify-full \
    sslrootcert=$CA sslcert=$TL_DIR/wpuser.crt sslkey=$TL_DIR/wpuser.key" -c "SELECT 'both'") ||
    tl_fail "vca: $WP_USER with certificate and password failed"
[ "$got" = both ] || tl_fail "vca: $WP_USER: '$got'"
expect "E 28000 SSL required" "vca: no TLS" "$(probe "$vca" "$WP_USER" wptest -)"
tl_ok "verify-ca: CN=certuser logs in, CN=other 28000, no certificate fails the handshake, $WP_USER still needs SCRAM, no TLS: SSL required"

# ---------------------------------------------------------------- cert rules that cannot work
bad_ini=$TL_DIR/nocacheck.ini
cat >"$bad_ini" <<INI
[warmpool]
listen_addr = 127.0.0.1
listen_port = $(tl_free_port)
unix_socket_dir =
auth_type = md5
auth_file = $TL_DIR/users.txt
auth_hba_file = $TL_DIR/hba.conf
client_tls_sslmode = require
client_tls_key_file = $TL_DIR/server.key
client_tls_cert_file = $TL_DIR/server.crt

$dbs
INI
if out=$("$WARMPOOL" --check -c "$bad_ini" 2>&1); then
    tl_fail "--check accepted cert rules without client_tls_ca_file"
fi
echo "$out" | grep -q "hba.conf:3: cert needs client_tls_sslmode other than disable and client_tls_ca_file" ||
    tl_fail "--check, cert without client_tls_ca_file: unexpected message: $out"
tl_ok "cert rules with client_tls_sslmode = require and no client_tls_ca_file: startup refused ($(echo "$out" | head -n 1 | sed 's|.*/||' | cut -c1-70)…)"

cp "$TL_DIR/hba.conf" "$TL_DIR/hba.good"
sed -i 's/^hostssl   all  certuser/host      all  certuser/' "$TL_DIR/hba.conf"
if out=$("$WARMPOOL" --check -c "$(dirname "$(tl_log pref)")/pref.ini" 2>&1); then
    tl_fail "--check accepted a cert rule on a host line"
fi
echo "$out" | grep -q "hba.conf:3: cert authentication is only supported on hostssl lines" ||
    tl_fail "--check, cert on a host line: unexpected message: $out"
tl_reload pref
grep -q "hba.conf:3: cert authentication is only supported on hostssl lines" "$(tl_log pref)" ||
    tl_fail "SIGHUP with a cert rule on a host line: not logged"
expect "R 0" "pref after the rejected reload: certuser" \
    "$(probe "$pref" certuser wptest "$CA" "$TL_DIR/certuser.crt" "$TL_DIR/certuser.key")"
cp "$TL_DIR/hba.good" "$TL_DIR/hba.conf"
tl_ok "a cert rule on a host line: --check refuses it, SIGHUP logs it and the previous rules stay"
