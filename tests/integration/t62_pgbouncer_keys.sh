#!/bin/bash
# t62_pgbouncer_keys — issue #16: PgBouncer keys that reach the backend connection.
#
# A private PostgreSQL (scripts/pg-throwaway.sh) with ssl = on and a certificate from a
# test CA; its pg_hba.conf refuses the test user over TCP without TLS. Private
# warmpools, plain to their clients, with PgBouncer's keys in [pgbouncer]:
#   req    server_tls_sslmode = require, server_tls_protocols = tlsv1.3: the backend's
#          pg_stat_ssl row says TLS 1.3; an entry with its own sslmode=disable wins
#          over the global (refused by pg_hba: "server login failed"); an entry whose
#          connect_query fails gets its backends closed with a log line, and its client
#          a clean error (query_wait_timeout), not a loop of connects;
#          max_user_client_connections = 2: the third client of the user gets 53300;
#          query_wait_notify = 1: a client queued behind the one backend of its pool
#          gets PgBouncer's NOTICE, then its answer; a reload that changes
#          server_tls_protocols to tlsv1.2 retires the backends: the next is TLS 1.2
#   vfull  server_tls_sslmode = verify-full, server_tls_ca_file = the CA: an entry at
#          host=localhost works; one whose own sslrootcert is another CA fails cleanly
#          (the client: "server login failed: could not connect to the server"; the
#          log: libpq's certificate error)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib_tls.sh"

if [ "${WP_DIRECT:-0}" = 1 ]; then
    echo "skip: tests warmpool's backend settings (WP_DIRECT=1)"
    exit 0
fi

tl_ca ca
tl_ca otherca
tl_tls_postgres t62
tl_ok "PostgreSQL on $pgs_port: ssl = on, $WP_USER admitted over TCP only with TLS"

printf '"%s" "%s"\n' "$WP_USER" "$WP_PASSWORD" >"$TL_DIR/users.txt"
tl_start req "auth_type = md5
auth_file = $TL_DIR/users.txt
server_tls_sslmode = require
server_tls_protocols = tlsv1.3
max_user_client_connections = 2
query_wait_timeout = 3s
query_wait_notify = 1
server_login_retry = 1s

[databases]
t62 = host=127.0.0.1 port=$pgs_port dbname=t62
plain = host=127.0.0.1 port=$pgs_port dbname=t62 sslmode=disable
cqbad = host=127.0.0.1 port=$pgs_port dbname=t62 connect_query='SELECT no_such_function()'
one = host=127.0.0.1 port=$pgs_port dbname=t62 pool_size=1 query_wait_timeout=20s"
wp() { # INSTANCE DB [psql args]
    local name=$1 db=$2
    shift 2
    PGPASSWORD=$WP_PASSWORD tl_psql "$name" "host=127.0.0.1 user=$WP_USER dbname=$db sslmode=disable" "$@"
}

got=$(wp req t62 -c "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()") ||
    tl_fail "server_tls_sslmode = require: $got"
[ "$got" = "t|TLSv1.3" ] || tl_fail "server_tls_sslmode = require, protocols tlsv1.3: pg_stat_ssl '$got'"
tl_ok "server_tls_sslmode = require, server_tls_protocols = tlsv1.3: pg_stat_ssl says $got"

if out=$(wp req plain -c "SELECT 1" 2>&1); then
    tl_fail "an entry's sslmode=disable did not win over server_tls_sslmode (pg_hba rejects it)"
fi
echo "$out" | grep -q "server login failed" || tl_fail "sslmode=disable entry: $out"
grep -q "connect failed: .*pg_hba.conf rejects connection.*no encryption" "$(tl_log req)" ||
    tl_fail "sslmode=disable entry: the log has no pg_hba refusal without encryption"
tl_ok "an entry's own sslmode=disable wins over server_tls_sslmode"

start=$(date +%s)
if out=$(wp req cqbad -c "SELECT 1" 2>&1); then
    tl_fail "a client of an entry whose connect_query fails got an answer"
fi
took=$(($(date +%s) - start))
[ "$took" -le 10 ] || tl_fail "failing connect_query: the client waited ${took}s"
grep -q "internal query failed: function no_such_function() does not exist" "$(tl_log req)" ||
    tl_fail "failing connect_query: the backend's error is not in the log"
grep -q "cqbad/$WP_USER pid=[0-9]*: connect_query failed: closing the connection" "$(tl_log req)" ||
    tl_fail "failing connect_query: no log line for the closed backend"
n=$(grep -c "cqbad/$WP_USER pid=[0-9]*: connect_query failed" "$(tl_log req)")
[ "$n" -le 6 ] || tl_fail "failing connect_query: $n backends in ${took}s (server_login_retry = 1s)"
tl_ok "a failing connect_query closes its backend ($n in ${took}s, log says why); the client gets: $(echo "$out" | head -n 1)"

got=$(/usr/bin/python3 "$here/access_client.py" hold 127.0.0.1 "$(tl_port req)" \
    "$WP_USER" "$WP_PASSWORD" t62 2 2>&1)
[ "$got" = "53300 client connections exceeded (max_user_client_connections)" ] ||
    tl_fail "the third client of $WP_USER (max_user_client_connections = 2) got: $got"
tl_ok "max_user_client_connections = 2: the third client gets $got"

wp req one -c "SELECT pg_sleep(4)" >/dev/null 2>&1 &
holder=$!
sleep 0.5
out=$(wp req one -c "SELECT 'served'" 2>&1) || tl_fail "the queued client of one: $out"
wait "$holder" || tl_fail "the client holding one's backend failed"
echo "$out" | grep -q "NOTICE:  No server connection available in postgres backend, client being queued" ||
    tl_fail "query_wait_notify = 1: no NOTICE for the queued client: $out"
echo "$out" | grep -qx "served" || tl_fail "query_wait_notify: the queued client got no answer: $out"
[ "$(echo "$out" | grep -c NOTICE)" = 1 ] || tl_fail "query_wait_notify: more than one NOTICE: $out"
tl_ok "query_wait_notify = 1: the queued client gets one NOTICE, then its answer"

sed -i 's/^server_tls_protocols = tlsv1.3$/server_tls_protocols = tlsv1.2/' "$TL_DIR/req.ini"
tl_reload req
got=$(wp req t62 -c "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()") ||
    tl_fail "after the reload to tlsv1.2: $got"
[ "$got" = TLSv1.2 ] || tl_fail "a reload to server_tls_protocols = tlsv1.2: the backend uses '$got'"
grep -q "pool t62/$WP_USER: connection string changed; retiring its servers" "$(tl_log req)" ||
    tl_fail "the reload did not retire t62's servers"
tl_ok "a reload changing server_tls_protocols retires the servers: the next backend uses $got"

tl_start vfull "auth_type = md5
auth_file = $TL_DIR/users.txt
server_tls_sslmode = verify-full
server_tls_ca_file = $TL_DIR/ca.crt
server_login_retry = 200ms

[databases]
t62 = host=localhost port=$pgs_port dbname=t62
other = host=localhost port=$pgs_port dbname=t62 sslrootcert=$TL_DIR/otherca.crt"

got=$(wp vfull t62 -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") ||
    tl_fail "server_tls_sslmode = verify-full with the right CA: $got"
[ "$got" = t ] || tl_fail "verify-full: pg_stat_ssl '$got'"
tl_ok "server_tls_sslmode = verify-full, server_tls_ca_file = the CA: TLS backend"

if out=$(timeout 30 bash -c "$(declare -f wp tl_psql tl_port); TL_PORT_vfull=$(tl_port vfull) \
    WP_USER=$WP_USER WP_PASSWORD=$WP_PASSWORD wp vfull other -c 'SELECT 1'" 2>&1); then
    tl_fail "verify-full against another CA succeeded"
fi
echo "$out" | grep -q "server login failed: could not connect to the server" ||
    tl_fail "verify-full against another CA: unclear error: $out"
grep -Eq "WARNING S-[0-9]+ other/$WP_USER: connect failed: .*certificate verify failed" "$(tl_log vfull)" ||
    tl_fail "verify-full against another CA: libpq's certificate error not in the log"
tl_ok "verify-full with another CA in the entry fails cleanly (client: server login failed; log: certificate verify failed)"
