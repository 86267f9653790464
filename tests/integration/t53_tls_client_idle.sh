#!/bin/bash
# t53_tls_client_idle — client_idle_timeout and a TLS client still being sent its answer.
#
# With TLS, warmpool hands a client's output to OpenSSL (tls->out) at once, and the
# backend goes back to the pool while a slow reader is still being sent the end of
# its result. The client is then "idle" by every buffer but that one; before the fix
# client_idle_timeout closed it mid-answer (the client saw a truncated result), which
# a plain TCP client never suffers (its pending output keeps the backend and the
# client busy). A private warmpool (TLS prefer, trust, client_idle_timeout = 1s,
# pkt_buf = 16MB so the tail of a result is read in one piece) against run.sh's
# PostgreSQL. Asserts: clients with a 4 kB receive buffer that ask for one row of
# 2-6 MB and read nothing for 3 s get the whole row and ReadyForQuery; a TLS client
# that really is idle is still closed after client_idle_timeout with 57P05.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib_tls.sh"

if [ "${WP_DIRECT:-0}" = 1 ]; then
    echo "skip: tests warmpool's own TLS (WP_DIRECT=1)"
    exit 0
fi
PY=/usr/bin/python3

tl_ca ca
tl_issue ca server localhost "DNS:localhost,IP:127.0.0.1"
tl_start idle "auth_type = trust
pool_mode = transaction
client_idle_timeout = 1s
pkt_buf = 16MB
client_tls_sslmode = prefer
client_tls_key_file = $TL_DIR/server.key
client_tls_cert_file = $TL_DIR/server.crt

[databases]
wptest = host=127.0.0.1 port=$PG_PORT dbname=wptest user=$WP_USER password=$WP_PASSWORD"
port=$(tl_port idle)

for n in 2000000 3000000 4000000 6000000; do
    got=$($PY "$here/tls_probe.py" slow-reader "$port" "$WP_USER" wptest "$n" 3)
    [ "$got" = complete ] ||
        tl_fail "a TLS client reading a $n-byte row after 3 s (client_idle_timeout = 1s) got: $got"
done
tl_ok "slow TLS readers of 2-6 MB rows are not closed by client_idle_timeout while output is pending"

got=$($PY "$here/tls_probe.py" slow-reader "$port" "$WP_USER" wptest 0 3)
case $got in "E 57P05 client_idle_timeout"*) ;; *) tl_fail "an idle TLS client after 3 s: '$got', want E 57P05" ;; esac
tl_ok "an idle TLS client is still closed: $got"
