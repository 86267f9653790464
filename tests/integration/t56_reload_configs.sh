#!/bin/bash
# t56_reload_configs — a configuration replaced by a reload is freed once nothing uses
# it ("Correctness first", item 14a). Private warmpool (t30_lib.sh) with a stats
# endpoint; the gauge warmpool_configurations counts the configurations in memory.
#   - 500 SIGHUPs (200 under valgrind): resident memory grows by less than 512 kB (it
#     grew by ~1 MB: each reload kept the replaced configuration for the life of the
#     process; not checked under valgrind or ASan, which hold freed memory), and there
#     is 1 configuration in memory afterwards.
#   - A client in its password exchange for database `gone` when a reload removes that
#     entry (and frees the configuration it was found in) is refused with 3D000 once
#     its password is in, and 1 configuration is in memory (it used to be logged in
#     to the removed entry; a pointer kept into the freed configuration would be a
#     use after free, which `make valgrind` reports).
#   - A client of database `gone` stays connected while a reload removes that entry:
#     its pool still uses the old configuration (2 in memory), the client is still
#     served, and another reload still leaves 2 (the one in between is freed).
#   - Once the client leaves, its pool goes after server_idle_timeout and takes the
#     old configuration with it: 1 again (polled for up to 30 s).
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct

http_port=$(t3_free_port)
settings="server_idle_timeout = 1s
stats_listen = 127.0.0.1:$http_port"
wptest="wptest = host=127.0.0.1 port=$PG_PORT dbname=wptest"
gone="gone = host=127.0.0.1 port=$PG_PORT dbname=wptest"
t3_start "$settings" "$wptest
$gone"

configurations() {
    /usr/bin/python3 "$(dirname "$0")/stats_client.py" metric "tcp:127.0.0.1:$http_port" \
        warmpool_configurations
}

# SIGHUP, then wait (10 s at most) until warmpool logged one more reload than before
# (t3_reload's reloads are logged too: the count is taken each time).
sighup() {
    local t before
    before=$(grep -c 'configuration reloaded' "$t3_log" || true)
    kill -HUP "$t3_pid"
    for t in $(seq $((1000 * t3_slow))); do
        [ "$(grep -c 'configuration reloaded' "$t3_log" || true)" -gt "$before" ] && return 0
        sleep 0.01
    done
    t3_fail "reload $((before + 1)) not logged within $((10 * t3_slow)) s of SIGHUP"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$t3_pid/status"; }

count=500
[ "${WP_VALGRIND:-0}" = 1 ] && count=200
sighup # the first reload's one-time allocations are not a leak
rss_before=$(rss_kb)
for _ in $(seq "$count"); do
    sighup
done
rss_after=$(rss_kb)
# Under ASan (and TSan) freed memory sits in its quarantine and under valgrind in valgrind's own
# heap, so resident memory says nothing there; the configuration count below is exact.
if [ "${WP_VALGRIND:-0}" = 1 ] || ldd "${WP_WORKERS_BIN:-$WARMPOOL}" 2>/dev/null | grep -qE "lib(a|t)san"; then
    t3_ok "$count reloads: resident memory not checked (a sanitizer or valgrind holds freed memory)"
else
    [ $((rss_after - rss_before)) -lt 512 ] ||
        t3_fail "resident memory grew from $rss_before kB to $rss_after kB over $count reloads"
    t3_ok "$count reloads: resident memory $rss_before kB -> $rss_after kB (< 512 kB more)"
fi
n=$(configurations)
[ "$n" = 1 ] || t3_fail "warmpool_configurations = $n after $count reloads, want 1"
t3_ok "$count reloads: 1 configuration in memory"

# Half a login: startup and the md5 request, then the password once told to go on.
cat >"$t3_tmp/half_login.py" <<'PY'
import hashlib, socket, struct, sys
port, user, password, here = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
sys.path.insert(0, here)
from stats_client import error_code, pg_message, pg_read
s = socket.create_connection(("127.0.0.1", port), timeout=30)
body = struct.pack("!I", 196608) + b"user\0" + user.encode() + b"\0database\0gone\0\0"
s.sendall(struct.pack("!I", len(body) + 4) + body)
kind, body = pg_read(s)
if kind != b"R" or struct.unpack("!I", body[:4])[0] != 5:
    sys.exit("expected an md5 request, got %r %r" % (kind, body[:4]))
print("asked", flush=True)
sys.stdin.readline()
inner = hashlib.md5(password.encode() + user.encode()).hexdigest()
outer = "md5" + hashlib.md5(inner.encode() + body[4:8]).hexdigest()
s.sendall(pg_message(b"p", outer.encode() + b"\0"))
while True:
    kind, body = pg_read(s)
    if kind == b"E":
        print("error", error_code(body), flush=True)
        break
    if kind == b"Z":
        print("logged in", flush=True)
        break
PY
coproc HALF {
    /usr/bin/python3 "$t3_tmp/half_login.py" "$t3_port" "$WP_USER" "$WP_PASSWORD" \
        "$(cd "$(dirname "$0")" && pwd)"
}
# bash unsets HALF and HALF_PID once the coprocess ends (set -u: fatal): keep copies.
half_pid=$HALF_PID half_out=${HALF[0]} half_in=${HALF[1]}
read -r -t $((10 * t3_slow)) line <&"$half_out" || t3_fail "no md5 request for the login to gone"
[ "$line" = asked ] || t3_fail "half login: $line"
t3_reload "$settings" "$wptest"
n=$(configurations)
[ "$n" = 1 ] || t3_fail "warmpool_configurations = $n after removing gone, want 1"
echo go >&"$half_in"
read -r -t $((10 * t3_slow)) line <&"$half_out" || t3_fail "no answer to the password"
[ "$line" = "error 3D000" ] ||
    t3_fail "a login to gone that a reload removed during its password exchange: '$line', want 'error 3D000'"
t3_ok "entry removed during a client's password exchange: 3D000 once the password is in"
wait "$half_pid" || true
t3_reload "$settings" "$wptest
$gone"

coproc PSQL { PGPASSWORD=$WP_PASSWORD psql -X -q -At -h 127.0.0.1 -p "$t3_port" -U "$WP_USER" gone 2>&1; }
psql_pid=$PSQL_PID psql_in=${PSQL[1]} # kept: bash unsets them once psql ends
ask() { # SQL: one answer line from the held client
    echo "$1" >&"${PSQL[1]}"
    read -r -t $((10 * t3_slow)) line <&"${PSQL[0]}" || t3_fail "no answer from the client of gone"
    echo "$line"
}
[ "$(ask "SELECT 'before';")" = before ] || t3_fail "the client of gone is not served"

t3_reload "$settings" "$wptest"
n=$(configurations)
[ "$n" = 2 ] || t3_fail "warmpool_configurations = $n with a pool on a removed entry, want 2"
[ "$(ask "SELECT 'after';")" = after ] || t3_fail "the client of gone is not served after the reload"
t3_ok "entry removed under a connected client: it is still served; 2 configurations in memory"
sighup
n=$(configurations)
[ "$n" = 2 ] || t3_fail "warmpool_configurations = $n after one more reload, want 2"
t3_ok "one more reload: still 2 (the one in between was freed)"

exec {psql_in}>&-
wait "$psql_pid" || true
for _ in $(seq $((300 * t3_slow))); do
    n=$(configurations)
    [ "$n" = 1 ] && break
    sleep 0.1
done
[ "$n" = 1 ] || t3_fail "warmpool_configurations = $n 30 s after the last client of gone left, want 1"
t3_ok "the client left: its pool and the old configuration were freed"
t3_stop
t3_ok "SIGQUIT: warmpool exited with status 0"
