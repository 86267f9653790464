#!/bin/bash
# t76_peering — issue #19: peering as PgBouncer 1.21+ defines it (peer_id, [peers]).
#
# Two private warmpools on the harness's PostgreSQL, as behind one load balancer:
# A (peer_id 1) and B (peer_id 2), each listing both in [peers] (A learns B's port by a
# reload, which also shows that SIGHUP updates [peers]; B reaches A by its Unix
# socket). Raw protocol clients (t76_peering.py: libpq does not show the cancel key)
# check that:
#   - SHOW PEERS / SHOW PEER_POOLS / SHOW LISTS on B show the configured peers
#   - SELECT pg_sleep(30) through A, cancelled by a CancelRequest sent to B with A's
#     key, ends with SQLSTATE 57014 (elapsed time printed, not asserted)
#   - sent to B, a wrong key, a key naming an unknown peer and one whose hop count is
#     spent cancel nothing (A sends no cancel; the sleep still runs and a right key
#     still cancels it); a drop is logged once per peer id, not once per request
#   - malformed and short CancelRequests do not hurt B
#   - a peer that never answers ties up a forward for server_connect_timeout at most,
#     then B logs why; with its pool_size=1 further forwards queue (SHOW PEER_POOLS)
#     and all fail once it goes away
#   - B's /metrics counts forwards and failures per peer
#   - with 4 forwards in flight to a peer that drops SYNs (pool_size=4), B's own cancel
#     of a pg_sleep(30) still gives 57014 while they are in flight (they do not use
#     the workpool), and SIGQUIT closes them and stops B
#   - PgBouncer (peer_id 3, $PGBOUNCER or /work/pgb-src/pgbouncer) peered with A: a
#     cancel sent to PgBouncer with A's key cancels A's query, and one sent to A with
#     PgBouncer's key cancels PgBouncer's; skipped when there is no PgBouncer binary
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib_tls.sh"
PY="/usr/bin/python3 $here/t76_peering.py"

if [ "${WP_DIRECT:-0}" = 1 ]; then
    echo "skip: tests warmpool's peering (WP_DIRECT=1)"
    exit 0
fi

common="auth_type = trust
admin_users = $WP_USER
server_connect_timeout = 3s"
dbs="[databases]
wptest = host=127.0.0.1 port=$PG_PORT dbname=wptest user=$WP_USER password=$WP_PASSWORD"

# Unix sockets too (both instances, each .s.PGSQL.<its port>): B reaches A through one.
TL_SOCKET_DIR=$TL_DIR/sock
mkdir -p "$TL_SOCKET_DIR"
tl_start A "$common
peer_id = 1
$dbs
[peers]
1 = host=127.0.0.1 port=1"
portA=$(tl_port A)
httpB=$(tl_free_port)
tl_start B "$common
peer_id = 2
stats_listen = 127.0.0.1:$httpB
$dbs
[peers]
1 = host=$TL_SOCKET_DIR port=$portA pool_size=2
2 = host=127.0.0.1 port=1"
portB=$(tl_port B)
# A's own entry is allowed and never used; now give A B's real port.
sed -i "s/^1 = host=127.0.0.1 port=1\$/1 = host=127.0.0.1 port=$portA\n2 = host=127.0.0.1 port=$portB/" "$TL_DIR/A.ini"
tl_reload A
grep -q "configuration reloaded" "$(tl_log A)" || tl_fail "A rejected the reload: $(tail -n 3 "$(tl_log A)")"
console() { tl_psql "$1" "user=$WP_USER dbname=pgbouncer" -c "$2"; }
got=$(console A "SHOW PEERS")
[ "$got" = "1|127.0.0.1|$portA|20
2|127.0.0.1|$portB|20" ] || tl_fail "SHOW PEERS on A after the reload: $got"
got=$(console B "SHOW PEERS")
[ "$got" = "1|$TL_SOCKET_DIR|$portA|2
2|127.0.0.1|1|20" ] || tl_fail "SHOW PEERS on B: $got"
got=$(console B "SHOW PEER_POOLS")
[ "$got" = "1|0|0|0|0
2|0|0|0|0" ] || tl_fail "SHOW PEER_POOLS on B: $got"
got=$(console B "SHOW LISTS" | grep '^peer')
[ "$got" = "peers|2
peer_pools|2" ] || tl_fail "SHOW LISTS on B: $got"
tl_ok "A (peer_id 1, [peers] updated by SIGHUP) and B (peer_id 2): SHOW PEERS, PEER_POOLS, LISTS"

count() { grep -c "$1" "$2" || true; }
running() { # pg_sleep(30) queries PostgreSQL is running
    PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -h "$PG_HOST" -p "$PG_PORT" \
        -U "${PG_SUPERUSER:-postgres}" -d postgres -c \
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'"
}
wait_log() { # PATTERN LOG N: until LOG has N lines matching
    for _ in $(seq $((100 * tl_slow))); do
        [ "$(count "$1" "$2")" -ge "$3" ] && return 0
        sleep 0.1
    done
    tl_fail "no ${3}th \"$1\" in $2: $(tail -n 5 "$2")"
}
start_sleep() { # INSTANCE_PORT NAME [HOW_MANY_RUNNING]: pg_sleep(30) in the background; $NAME.key holds its key
    rm -f "$TL_DIR/$2.key"
    $PY sleep 127.0.0.1 "$1" "$WP_USER" wptest 30 "$TL_DIR/$2.key" >"$TL_DIR/$2.out" 2>&1 &
    eval "sleep_$2=\$!"
    for _ in $(seq $((100 * tl_slow))); do
        [ -s "$TL_DIR/$2.key" ] && break
        sleep 0.1
    done
    [ -s "$TL_DIR/$2.key" ] || tl_fail "no login through port $1: $(cat "$TL_DIR/$2.out")"
    read -r kpid kkey <"$TL_DIR/$2.key"
    # The query must be running in PostgreSQL before a cancel can mean anything.
    for _ in $(seq $((100 * tl_slow))); do
        [ "$(running)" -ge "${3:-1}" ] && return 0
        sleep 0.1
    done
    tl_fail "pg_sleep(30) never showed up in pg_stat_activity"
}
cancel_key_peer_of() { echo $(((($1 >> 16) & 0xFF) | ((($1 >> 8) & 0xFF) << 8))); }
sleep_result() { # NAME: sets got to the client's last line (not in $(...): wait needs the parent)
    local pid_var="sleep_$1"
    wait "${!pid_var}" || true
    got=$(tail -n 1 "$TL_DIR/$1.out")
}

# 1. The acceptance test of #19: cancelled through the other instance.
start_sleep "$portA" s1
$PY cancel 127.0.0.1 "$portB" "$kpid" "$kkey" >/dev/null
sleep_result s1
case $got in "error 57014 "*) ;; *) tl_fail "sleep through A, cancel sent to B with A's key: $got" ;; esac
wait_log "cancel request forwarded to peer 1 ($TL_SOCKET_DIR:$portA)" "$(tl_log B)" 1
[ "$(count "cancel sent" "$(tl_log A)")" = 1 ] || tl_fail "A did not log one cancel sent"
tl_ok "pg_sleep(30) through A, CancelRequest to B with A's key: SQLSTATE 57014 after ${got##* }s"

# 2. Keys that must cancel nothing, sent to B while a sleep runs through A.
start_sleep "$portA" s2
$PY cancel 127.0.0.1 "$portB" "$kpid" $((kkey ^ 0x100)) >/dev/null # wrong secret, same peer
wait_log "cancel request forwarded to peer 1" "$(tl_log B)" 2     # A has answered it then
unknown=$(((kpid & 0xFF0000FF) | (77 << 16)))                       # names peer 77
for _ in 1 2 3 4 5; do
    $PY cancel 127.0.0.1 "$portB" "$unknown" "$kkey" >/dev/null
done
$PY cancel 127.0.0.1 "$portB" "$kpid" $((kkey & ~3)) >/dev/null # hop count spent
$PY cancel 127.0.0.1 "$portB" "$kpid" $((kkey & ~3)) >/dev/null
[ "$(count "cancel request for peer 77 dropped: no such peer" "$(tl_log B)")" = 1 ] ||
    tl_fail "unknown peer 77, 5 requests: want 1 log line, got $(count "peer 77 dropped" "$(tl_log B)")"
[ "$(count "cancel request for peer 1 dropped: forwarded too often" "$(tl_log B)")" = 1 ] ||
    tl_fail "spent hop count, 2 requests: want 1 log line"
[ "$(count "cancel sent" "$(tl_log A)")" = 1 ] || tl_fail "a bad key made A send a cancel"
[ "$(running)" = 1 ] || tl_fail "the sleep is no longer running after bad keys: $(cat "$TL_DIR/s2.out")"
metric() { /usr/bin/python3 "$here/stats_client.py" metric "tcp:127.0.0.1:$httpB" "$@"; }
got=$(metric warmpool_cancel_forwards_total peer=1)
[ "$got" = 2 ] || tl_fail "B's warmpool_cancel_forwards_total{peer=\"1\"} = $got, want 2"
tl_ok "sent to B: a wrong key, unknown peer 77 (x5), a spent hop count (x2) cancel nothing; one log line each"

# A key with its hops spent is still good at the instance that issued it (as in PgBouncer).
$PY cancel 127.0.0.1 "$portA" "$kpid" $((kkey & ~3)) >/dev/null
sleep_result s2
case $got in "error 57014 "*) ;; *) tl_fail "the right key sent to A after the bad ones: $got" ;; esac
tl_ok "the sleep kept running; the right key (hops spent) sent to A then cancelled it (${got##* }s)"

# 3. Malformed and short requests.
$PY raw 127.0.0.1 "$portB" 0000001004d2162e0000 >/dev/null # 10 of 16 bytes
$PY raw 127.0.0.1 "$portB" 0000000c04d2162e00000001 >/dev/null # length 12
$PY raw 127.0.0.1 "$portB" 0000001404d2162e000102030405060700000000 >/dev/null # length 20
got=$(tl_psql B "user=$WP_USER dbname=wptest" -c "SELECT 41 + 1") || tl_fail "B after malformed requests: $got"
[ "$got" = 42 ] || tl_fail "B after malformed requests: $got"
tl_ok "malformed and short CancelRequests: B still serves"

# 4. A peer that accepts but never answers (a listen queue nobody reads).
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
time.sleep(120)' >"$TL_DIR/mute.port" &
mute=$!
tl_atexit+=("kill $mute 2>/dev/null")
for _ in $(seq 50); do [ -s "$TL_DIR/mute.port" ] && break; sleep 0.1; done
echo "5 = host=127.0.0.1 port=$(cat "$TL_DIR/mute.port") pool_size=1" >>"$TL_DIR/B.ini"
tl_reload B
to_mute=$(((kpid & 0xFF0000FF) | (5 << 16)))
t0=$(date +%s.%N)
$PY cancel 127.0.0.1 "$portB" "$to_mute" "$kkey" >/dev/null
wait_log "cancel request not forwarded to peer 5: .*did not close the connection in time" "$(tl_log B)" 1
got=$(metric warmpool_cancel_forward_failures_total peer=5)
[ "$got" = 1 ] || tl_fail "B's warmpool_cancel_forward_failures_total{peer=\"5\"} = $got, want 1"
/usr/bin/python3 "$here/stats_client.py" promcheck "tcp:127.0.0.1:$httpB" >/dev/null ||
    tl_fail "B's /metrics fails the strict format check"
tl_ok "a peer that never answers: B gave up after $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }")s (server_connect_timeout = 3s) and logged it"

# pool_size = 1: more forwards wait in order. With a long timeout they stay put until
# the mute peer goes away (its queued connections are reset, then refused).
sed -i 's/^server_connect_timeout = 3s$/server_connect_timeout = 60s/' "$TL_DIR/B.ini"
tl_reload B
for _ in 1 2 3; do
    $PY cancel 127.0.0.1 "$portB" "$to_mute" "$kkey" >/dev/null
done
got=$(console B "SHOW PEER_POOLS" | grep '^5|')
[ "$got" = "5|1|2|1|0" ] || tl_fail "3 forwards to a mute peer with pool_size=1: SHOW PEER_POOLS says $got"
kill "$mute"
wait "$mute" 2>/dev/null || true
for _ in $(seq $((100 * tl_slow))); do
    [ "$(metric warmpool_cancel_forward_failures_total peer=5)" = 4 ] && break
    sleep 0.1
done
[ "$(metric warmpool_cancel_forward_failures_total peer=5)" = 4 ] ||
    tl_fail "the queued forwards to a gone peer did not all fail: $(console B "SHOW PEER_POOLS")"
got=$(console B "SHOW PEER_POOLS" | grep '^5|')
[ "$got" = "5|0|0|0|0" ] || tl_fail "after the mute peer went away: SHOW PEER_POOLS says $got"
tl_ok "pool_size=1: 1 forward in flight and 2 queued (SHOW PEER_POOLS), all failed once the peer went away"

# 4b. A peer that drops SYNs (an instance the autoscaler removed): forwards to it must not
# hold up this instance's own cancels. The blackhole is a listen socket with backlog 0
# that is full (one connection nobody accepts): Linux drops the SYNs after that, so
# B's connects stay in flight until server_connect_timeout (60 s now). Before forwards
# ran on the event loop, 2 of them took both workpool threads and B's own cancel
# waited behind them: the pg_sleep(30) below ended without 57014.
/usr/bin/python3 -c '
import select, socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
fill = []
while True:
    c = socket.socket(); c.setblocking(False); c.connect_ex(s.getsockname()); fill.append(c)
    if not select.select([], [c], [], 0.5)[1]:
        break  # this SYN was dropped: the accept queue is full
    if len(fill) > 64:
        sys.exit("the accept queue never filled")
print(s.getsockname()[1], flush=True)
time.sleep(300)' >"$TL_DIR/blackhole.port" &
blackhole=$!
tl_atexit+=("kill $blackhole 2>/dev/null")
for _ in $(seq 50); do [ -s "$TL_DIR/blackhole.port" ] && break; sleep 0.1; done
[ -s "$TL_DIR/blackhole.port" ] || tl_fail "no blackhole port"
echo "6 = host=127.0.0.1 port=$(cat "$TL_DIR/blackhole.port") pool_size=4" >>"$TL_DIR/B.ini"
tl_reload B
to_blackhole=$(((kpid & 0xFF0000FF) | (6 << 16)))
for _ in 1 2 3 4; do
    $PY cancel 127.0.0.1 "$portB" "$to_blackhole" "$kkey" >/dev/null
done
got=$(console B "SHOW PEER_POOLS" | grep '^6|')
[ "$got" = "6|4|0|4|0" ] || tl_fail "4 forwards to a blackholed peer: SHOW PEER_POOLS says $got"
start_sleep "$portB" s5
t0=$(date +%s.%N)
$PY cancel 127.0.0.1 "$portB" "$kpid" "$kkey" >/dev/null # B's own key: a local cancel
sleep_result s5
t1=$(date +%s.%N)
case $got in "error 57014 "*) ;; *) tl_fail "sleep through B, B's own cancel with 4 forwards to a blackhole in flight: $got" ;; esac
peer6=$(console B "SHOW PEER_POOLS" | grep '^6|')
[ "$peer6" = "6|4|0|4|0" ] || tl_fail "the forwards to the blackhole ended before the local cancel was answered: SHOW PEER_POOLS says $peer6"
tl_ok "4 forwards to a peer that drops SYNs in flight: B's own cancel still gave 57014 after ${got##* }s ($(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")s from the CancelRequest), and the forwards were still in flight then"

# Shutdown with those forwards in flight: closed at once, not waited for (tl_stop_all
# also checks the exit status and sanitizer reports at the end).
t0=$(date +%s.%N)
kill -QUIT "$(tl_pid B)"
for _ in $(seq $((100 * tl_slow))); do
    kill -0 "$(tl_pid B)" 2>/dev/null || break
    sleep 0.05
done
kill -0 "$(tl_pid B)" 2>/dev/null && tl_fail "B still running after SIGQUIT with forwards in flight"
grep -q "warmpool stopped" "$(tl_log B)" || tl_fail "B did not log its stop: $(tail -n 3 "$(tl_log B)")"
tl_ok "SIGQUIT with 4 forwards to the blackhole in flight: B stopped after $(awk "BEGIN { printf \"%.2f\", $(date +%s.%N) - $t0 }")s"

# 5. A mixed fleet: PgBouncer 1.21+ (peer_id 3) peered with A, both ways.
PGBOUNCER=${PGBOUNCER:-/work/pgb-src/pgbouncer}
if [ ! -x "$PGBOUNCER" ]; then
    echo "skip: no PgBouncer at $PGBOUNCER (set PGBOUNCER to test a mixed fleet)"
    exit 0
fi
portP=$(tl_free_port)
pgb=$TL_DIR/pgb
mkdir -p "$pgb"
printf '"%s" ""\n' "$WP_USER" >"$pgb/users.txt"
cat >"$pgb/pgbouncer.ini" <<INI
[databases]
wptest = host=127.0.0.1 port=$PG_PORT dbname=wptest user=$WP_USER password=$WP_PASSWORD
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $portP
unix_socket_dir =
auth_type = trust
auth_file = $pgb/users.txt
logfile = $pgb/pgbouncer.log
pidfile = $pgb/pgbouncer.pid
peer_id = 3
[peers]
1 = host=127.0.0.1 port=$portA
3 = host=127.0.0.1 port=$portP
INI
run_as=()
[ "$(id -u)" = 0 ] && { chown -R postgres "$pgb"; run_as=(runuser -u postgres --); } # it refuses root
"${run_as[@]}" "$PGBOUNCER" "$pgb/pgbouncer.ini" >"$pgb/stderr" 2>&1 &
pgb_pid=$!
tl_atexit+=("kill $pgb_pid 2>/dev/null")
for _ in $(seq 100); do
    /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $portP), 1)" 2>/dev/null && break
    kill -0 "$pgb_pid" 2>/dev/null || tl_fail "PgBouncer exited: $(cat "$pgb/stderr" "$pgb/pgbouncer.log")"
    sleep 0.1
done
# A host name (resolved when the reload loads [peers], not by each forward).
echo "3 = host=localhost port=$portP" >>"$TL_DIR/A.ini"
tl_reload A

start_sleep "$portA" s3
$PY cancel 127.0.0.1 "$portP" "$kpid" "$kkey" >/dev/null
sleep_result s3
case $got in "error 57014 "*) ;; *) tl_fail "sleep through A, cancel sent to PgBouncer with A's key: $got ($(tail -n 5 "$pgb/pgbouncer.log"))" ;; esac
tl_ok "$("$PGBOUNCER" --version | head -n 1) (peer_id 3) forwarded A's key to A: SQLSTATE 57014 after ${got##* }s"

start_sleep "$portP" s4
[ "$(cancel_key_peer_of "$kpid")" = 3 ] || tl_fail "PgBouncer's key names peer $(cancel_key_peer_of "$kpid"), not 3"
$PY cancel 127.0.0.1 "$portA" "$kpid" "$kkey" >/dev/null
sleep_result s4
case $got in "error 57014 "*) ;; *) tl_fail "sleep through PgBouncer, cancel sent to A with its key: $got" ;; esac
wait_log "cancel request forwarded to peer 3 (localhost:$portP)" "$(tl_log A)" 1
tl_ok "A forwarded PgBouncer's key (peer 3) to PgBouncer: SQLSTATE 57014 after ${got##* }s"
