#!/bin/bash
# t51_backend_tls — issue 5, acceptance 1: TLS between warmpool and PostgreSQL.
#
# A private PostgreSQL (scripts/pg-throwaway.sh) gets ssl = on with a certificate from
# a test CA, and a pg_hba.conf that admits the test user over TCP only with TLS
# (hostssl; hostnossl is rejected). A private warmpool (plain to its clients) has:
#   tls    sslmode=require                         (transaction mode, health check
#                                                   before every lend: internal
#                                                   queries go through TLS too)
#   verify sslmode=verify-full sslrootcert=CA host=localhost
#   nossl  sslmode=require to run.sh's PostgreSQL, which has no TLS
# The tls entry's backends log in with warmpool's own login (server_login.c, #16): its
# debug log shows later logins reusing the SCRAM keys derived once.
# Asserts: queries work and pg_stat_ssl shows ssl = true for the pooler's backends
# (and none without); SHOW SERVERS has the tls column; session parameters synced by
# warmpool's internal SET arrive; pgbench -M prepared with 0 failures; a 50 MB result
# and COPY in cross the TLS backend intact; a cancel reaches a TLS backend; the
# verify-full entry works; sslmode=require against a server without TLS gives the
# client a clear error quickly instead of a hang (libpq's reason is in the log). A fourth warmpool (dead: one
# backend, no periodic check): its idle TLS backend terminated, the next query gets a
# fresh one; a 1 MB request that reaches warmpool while it is stopped, with the
# backend killed before warmpool resumes and writes it, ends in a clear error or a
# fresh backend's answer within 60 s (libpq reports hard TLS write errors as success,
# so only the read that follows can notice), three rounds; the pool recovers.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib_tls.sh"

if [ "${WP_DIRECT:-0}" = 1 ]; then
    echo "skip: tests warmpool's backend TLS (WP_DIRECT=1)"
    exit 0
fi
PY=/usr/bin/python3

tl_ca ca
tl_tls_postgres t51
got=$(PGPASSWORD=$WP_PASSWORD PGCONNECT_TIMEOUT=10 psql -X -At "host=127.0.0.1 port=$pgs_port \
    user=$WP_USER dbname=t51 sslmode=require" -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") ||
    tl_fail "PostgreSQL with ssl = on does not take TLS logins"
[ "$got" = t ] || tl_fail "direct TLS login: pg_stat_ssl says '$got'"
if PGPASSWORD=$WP_PASSWORD PGCONNECT_TIMEOUT=10 psql -X -At "host=127.0.0.1 port=$pgs_port \
    user=$WP_USER dbname=t51 sslmode=disable" -c "SELECT 1" >/dev/null 2>&1; then
    tl_fail "PostgreSQL let $WP_USER in without TLS (pg_hba.conf not applied)"
fi
pgbench -i -q -s 2 -h "$pgs" -p "$pgs_port" -U "$WP_USER" t51 >/dev/null 2>&1 ||
    tl_fail "pgbench -i failed"
tl_ok "PostgreSQL on $pgs_port: ssl = on, $WP_USER admitted over TCP only with TLS"

printf '"%s" "%s"\n"admin" "adminpass"\n' "$WP_USER" "$WP_PASSWORD" >"$TL_DIR/users.txt"
tl_start main "auth_type = md5
auth_file = $TL_DIR/users.txt
admin_users = admin
pool_mode = transaction
max_pool_size = 4
server_check_delay = 0
server_login_retry = 200ms
verbose = 2

[databases]
tls = host=127.0.0.1 port=$pgs_port dbname=t51 sslmode=require
verify = host=localhost port=$pgs_port dbname=t51 sslmode=verify-full sslrootcert=$TL_DIR/ca.crt
nossl = host=127.0.0.1 port=$PG_PORT dbname=wptest sslmode=require"
port=$(tl_port main)
wp() { # DB [psql args]: plain client through warmpool
    local db=$1
    shift
    PGPASSWORD=$WP_PASSWORD PGCONNECT_TIMEOUT=10 psql -X -q -At -v ON_ERROR_STOP=1 \
        "host=127.0.0.1 port=$port user=$WP_USER dbname=$db sslmode=disable" "$@"
}

got=$(wp tls -c "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()") ||
    tl_fail "query through the sslmode=require backend failed"
case $got in "t|TLSv1."*) ;; *) tl_fail "pg_stat_ssl for the pooler's backend: '$got'" ;; esac
tl_ok "through warmpool: the backend's pg_stat_ssl row says $got"

got=$(PGOPTIONS="-c work_mem=7MB" wp tls -c "SHOW work_mem")
[ "$got" = 7MB ] || tl_fail "startup option synced by warmpool's internal SET: work_mem '$got'"
tl_ok "warmpool's internal parameter SET reaches the TLS backend (work_mem = 7MB)"

rc=0
PGPASSWORD=$WP_PASSWORD PGCONNECT_TIMEOUT=10 PGSSLMODE=disable pgbench -n -M prepared -c 8 -j 2 \
    -T 5 -h 127.0.0.1 -p "$port" -U "$WP_USER" tls >"$TL_DIR/pgbench.out" 2>&1 || rc=$?
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$TL_DIR/pgbench.out")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$TL_DIR/pgbench.out")
if [ "$rc" != 0 ] || [ -z "$processed" ] || [ "$processed" = 0 ] || [ "$failed" != 0 ]; then
    tail -n 20 "$TL_DIR/pgbench.out" >&2
    tl_fail "pgbench -M prepared to TLS backends: exit $rc, processed '$processed', failed '$failed'"
fi
tl_ok "pgbench -M prepared -c 8 -T 5 to TLS backends (check query before every lend): $processed transactions, 0 failed"

pids=$(tl_direct -U postgres -d t51 -c "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
    FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
    WHERE a.usename = '$WP_USER' AND a.datname = 't51'")
read -r with_ssl without_ssl <<<"${pids/|/ }"
[ "$with_ssl" -gt 0 ] && [ "$without_ssl" = 0 ] ||
    tl_fail "pooler backends: $with_ssl with TLS, $without_ssl without (want >0 and 0)"
tl_ok "pg_stat_ssl: all $with_ssl of the pooler's backends use TLS"

servers=$(PGPASSWORD=adminpass psql -X -q -At -F '|' "host=127.0.0.1 port=$port user=admin \
    dbname=warmpool sslmode=disable" -c "SHOW SERVERS")
echo "$servers" | grep '|tls|' | grep -qE '\|TLSv1\.[23]/[A-Z0-9_-]+\|' ||
    tl_fail "SHOW SERVERS has no TLS value for the tls pool's backends: $servers"
tl_ok "SHOW SERVERS tls column: $(echo "$servers" | grep -oE 'TLSv1\.[23]/[A-Z0-9_-]+' | head -n 1)"
grep -Eq "S-[0-9]+ tls/$WP_USER: SCRAM keys reused \(derived from the password before\)" \
    "$TL_DIR/main.log" ||
    tl_fail "the TLS backends' logins did not reuse the SCRAM keys derived once"
tl_ok "TLS backends log in with warmpool's own login (#16), reusing the SCRAM keys derived once"

big="SELECT i, repeat(md5(i::text), 32) FROM generate_series(1, 50000) i"
want=$(tl_direct -U "$WP_USER" -d t51 -c "$big" | md5sum)
[ "$(wp tls -c "$big" | md5sum)" = "$want" ] || tl_fail "the 50 MB result from a TLS backend differs"
tl_direct -U "$WP_USER" -d t51 -c "COPY (SELECT i, md5(i::text) FROM generate_series(1, 300000) i) TO STDOUT" \
    >"$TL_DIR/copy.tsv"
wp tls -c "CREATE TABLE t51_copy (i int, t text)" -c "\\copy t51_copy FROM '$TL_DIR/copy.tsv'"
got=$(tl_direct -U "$WP_USER" -d t51 -c "SELECT count(*), sum(i), md5(string_agg(t, ',' ORDER BY i)) FROM t51_copy")
want=$(tl_direct -U "$WP_USER" -d t51 -c "SELECT count(*), sum(i), md5(string_agg(md5(i::text), ',' ORDER BY i)) FROM generate_series(1, 300000) i")
[ "$got" = "$want" ] || tl_fail "COPY in to a TLS backend: '$got', want '$want'"
tl_ok "a 50 MB result and $(wc -c <"$TL_DIR/copy.tsv") bytes of COPY in cross the TLS backend intact"

state=$($PY "$here/tls_probe.py" cancel-in-tls "$port" "$WP_USER" "$WP_PASSWORD" tls -)
[ "$state" = 57014 ] || tl_fail "cancel of a query on a TLS backend: '$state', want 57014"
tl_ok "a cancel reaches the TLS backend (57014)"

got=$(wp verify -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") ||
    tl_fail "sslmode=verify-full backend entry failed"
[ "$got" = t ] || tl_fail "verify-full backend: pg_stat_ssl '$got'"
tl_ok "backend sslmode=verify-full sslrootcert=CA host=localhost works"

start=$(date +%s)
if out=$(timeout 60 bash -c "$(declare -f wp); port=$port WP_USER=$WP_USER WP_PASSWORD=$WP_PASSWORD wp nossl -c 'SELECT 1'" 2>&1); then
    tl_fail "sslmode=require to a server without TLS succeeded"
fi
took=$(($(date +%s) - start))
# The client gets a clean message; libpq's own text is for the operator, in the log.
echo "$out" | grep -q "server login failed: could not connect to the server" ||
    tl_fail "sslmode=require to a server without TLS: unclear error after ${took}s: $out"
grep -Eq "WARNING S-[0-9]+ nossl/$WP_USER: connect failed: .*server does not support SSL, but SSL was required" \
    "$TL_DIR/main.log" || tl_fail "sslmode=require to a server without TLS: libpq's reason not in the log"
tl_ok "sslmode=require to a server without TLS: the client gets \"server login failed: could not connect to the server\" (${took}s), the log libpq's reason"

# ---------------------------------------------------------------- a TLS backend that died
# libpq's TLS write path reports a hard write error (EPIPE/ECONNRESET) as success and
# keeps the error for later, so warmpool notices a dead TLS backend on its next read,
# not on the write. That read follows at once (the socket is readable with EOF/RST),
# so a client whose request went into a dead backend must get a clear error, or a
# fresh backend must answer; never a hang. max_pool_size = 1 and no periodic check, so
# the one backend is the one killed.
tl_start dead "auth_type = md5
auth_file = $TL_DIR/users.txt
pool_mode = transaction
max_pool_size = 1
server_check_delay = 1h
server_login_retry = 200ms
verbose = 2

[databases]
tls = host=127.0.0.1 port=$pgs_port dbname=t51 sslmode=require"
dport=$(tl_port dead) dpid=$(tl_pid dead)
dwp() { PGPASSWORD=$WP_PASSWORD PGCONNECT_TIMEOUT=10 psql -X -q -At "host=127.0.0.1 port=$dport \
    user=$WP_USER dbname=tls sslmode=disable" "$@"; }
wait_gone() { # PID: until PostgreSQL no longer lists that backend
    for _ in $(seq 100); do
        [ "$(tl_direct -U postgres -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE pid = $1")" = 0 ] && return 0
        sleep 0.1
    done
    tl_fail "backend $1 still there 10 s after pg_terminate_backend"
}
# A clean answer, or an error that says the backend went away.
judge() { # WHAT RC OUTPUT WANT
    if [ "$2" = 124 ]; then tl_fail "$1: no answer within 60 s (hang)"; fi
    if [ "$2" = 0 ] && [ "$3" = "$4" ]; then echo fresh; return; fi
    echo "$3" | grep -qE "server connection lost|terminating connection due to administrator command|server closed the connection" ||
        tl_fail "$1: exit $2 and neither the answer nor a clear error: $3"
    echo "error: $(echo "$3" | grep -oE 'server connection lost|terminating connection due to administrator command|server closed the connection' | head -n 1)"
}

pid=$(dwp -c "SELECT pg_backend_pid()")
tl_direct -U postgres -d postgres -c "SELECT pg_terminate_backend($pid)" >/dev/null
wait_gone "$pid"
rc=0
out=$(timeout 60 bash -c "$(declare -f dwp); dport=$dport WP_USER=$WP_USER WP_PASSWORD=$WP_PASSWORD dwp -c 'SELECT 41 + 1'" 2>&1) || rc=$?
how=$(judge "query after the idle TLS backend was terminated" "$rc" "$out" 42)
tl_ok "idle TLS backend terminated, then a query: $how"

# The request reaches warmpool while it is stopped, the backend dies after it, and
# warmpool resumes: it sees the request first and writes it (1 MB, several writes)
# into the dead TLS connection.
big=$(head -c 1000000 /dev/zero | tr '\0' x)
for round in 1 2 3; do
    fifo=$TL_DIR/fifo.$round
    mkfifo "$fifo"
    (
        rc=0
        timeout 60 bash -c "$(declare -f dwp); dport=$dport WP_USER=$WP_USER WP_PASSWORD=$WP_PASSWORD dwp" \
            <"$fifo" >"$fifo.out" 2>&1 || rc=$?
        echo "$rc" >"$fifo.rc"
    ) &
    reader=$!
    exec 7>"$fifo"
    echo "SELECT pg_backend_pid();" >&7
    for _ in $(seq 100); do [ -s "$fifo.out" ] && break; sleep 0.1; done
    pid=$(head -n 1 "$fifo.out")
    [ -n "$pid" ] || tl_fail "round $round: no backend pid from the held session"
    kill -STOP "$dpid"
    echo "SELECT length('$big');" >&7
    tl_direct -U postgres -d postgres -c "SELECT pg_terminate_backend($pid)" >/dev/null
    wait_gone "$pid"
    kill -CONT "$dpid"
    exec 7>&-
    wait "$reader" || true
    out=$(tail -n +2 "$fifo.out")
    how=$(judge "round $round: 1 MB query written while the TLS backend died" "$(cat "$fifo.rc")" "$out" 1000000)
    tl_ok "round $round: a 1 MB request into a TLS backend that died meanwhile: $how"
done
got=$(dwp -c "SELECT 'alive'") || tl_fail "the pool did not recover after its TLS backend died"
[ "$got" = alive ] || tl_fail "after the dead backends: '$got'"
tl_ok "the pool serves again afterwards"
