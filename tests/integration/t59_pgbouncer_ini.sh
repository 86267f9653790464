#!/bin/bash
# t59_pgbouncer_ini — warmpool runs from a PgBouncer 1.25 configuration (issue #16):
# tests/compat/pgbouncer.ini, which %includes tests/compat/pgbouncer-databases.ini and
# names tests/compat/userlist.txt, all relative to the working directory as PgBouncer
# reads them. The checked-in files pass --check unchanged from the repository root.
# For the run, a copy under a private root differs only where this machine differs:
# PostgreSQL's port, warmpool's port and its unix socket directory. Then:
#   - clients log in over TCP and over the unix socket, to a database of the main file
#     and to one defined in the included file;
#   - per-database datestyle and timezone reach the server;
#   - SHOW CONFIG on the admin console shows the file's values;
#   - each PgBouncer key without effect is one warning line in the log;
#   - an unknown key is still an error naming file:line.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct

cd "$t3_root"
"$WARMPOOL" --check -c tests/compat/pgbouncer.ini >"$t3_tmp/check.out" 2>&1 ||
    t3_fail "--check rejected tests/compat/pgbouncer.ini: $(cat "$t3_tmp/check.out")"
grep -q '^tests/compat/pgbouncer.ini:[0-9]*: accepted, no effect: stats_period$' "$t3_tmp/check.out" ||
    t3_fail "--check does not list stats_period as accepted without effect"
t3_ok "tests/compat/pgbouncer.ini passes --check unchanged, naming the keys without effect"

root=$t3_tmp/root
mkdir -p "$root/tests/compat" "$root/sock"
t3_port=$(t3_free_port)
for f in pgbouncer.ini pgbouncer-databases.ini userlist.txt; do
    sed -e "s/port=5432/port=$PG_PORT/g" -e "s/^listen_port = .*/listen_port = $t3_port/" \
        -e "s|^unix_socket_dir = .*|unix_socket_dir = $root/sock|" \
        "tests/compat/$f" >"$root/tests/compat/$f"
done
# The test user's password is whatever the harness chose.
printf '"%s" "%s"\n' "$WP_USER" "$WP_PASSWORD" >"$root/tests/compat/userlist.txt"
sed -i "s/password=wppass/password=$WP_PASSWORD/" "$root/tests/compat/pgbouncer.ini"

cd "$root"
"$WARMPOOL" -c tests/compat/pgbouncer.ini 2>"$t3_tmp/stderr.log" &
t3_pid=$!
for t in $(seq $((150 * t3_slow))); do
    kill -0 "$t3_pid" 2>/dev/null || t3_fail "warmpool exited at startup: $(tail -n 5 "$t3_tmp/stderr.log")"
    pg_isready -q -h 127.0.0.1 -p "$t3_port" -U "$WP_USER" -d wptest -t 1 && break
    sleep 0.1
done

q() { # HOST DATABASE SQL
    PGPASSWORD=$WP_PASSWORD psql -X -q -At -v ON_ERROR_STOP=1 -h "$1" -p "$t3_port" \
        -U "$WP_USER" -d "$2" -c "$3" 2>&1
}

for host in 127.0.0.1 "$root/sock"; do
    for db in wptest included wpload; do
        got=$(q "$host" "$db" "SELECT 'in ' || current_database()") ||
            t3_fail "$db over $host: $got"
        [ "$got" = "in wptest" ] || [ "$got" = "in wpload" ] || t3_fail "$db over $host: got '$got'"
    done
done
t3_ok "logins over TCP and the unix socket, to databases of the main and the included file"

got=$(q 127.0.0.1 wptest "SHOW timezone") || t3_fail "SHOW timezone: $got"
[ "$got" = UTC ] || t3_fail "wptest timezone: got '$got', want UTC"
got=$(q 127.0.0.1 wptest "SHOW datestyle") || t3_fail "SHOW datestyle: $got"
[ "$got" = "ISO, MDY" ] || t3_fail "wptest datestyle: got '$got', want 'ISO, MDY'"
t3_ok "per-database datestyle and timezone reach the server"

config=$(q 127.0.0.1 pgbouncer "SHOW CONFIG") || t3_fail "SHOW CONFIG: $config"
for want in "max_packet_size|2147483647|1GB|yes" "tcp_keepidle|7200|0|yes" \
    "server_login_retry|15s|1s|yes" "reserve_pool_timeout|5s|5s|yes" "syslog_ident|pgbouncer|warmpool|yes"; do
    grep -qxF "$want" <<<"$config" || t3_fail "SHOW CONFIG has no row '$want'"
done
t3_ok "SHOW CONFIG shows the file's values"

n=$(grep -c 'accepted, no effect: ' "$t3_tmp/stderr.log" || true)
want=$(grep -c "accepted, no effect: " "$t3_tmp/check.out")
[ "$n" = "$want" ] || t3_fail "the log has $n 'accepted, no effect' lines, --check listed $want"
grep -q 'WARNING tests/compat/pgbouncer.ini:[0-9]*: accepted, no effect: dns_max_ttl$' "$t3_tmp/stderr.log" ||
    t3_fail "no warning for dns_max_ttl in the log"
t3_ok "one warning line per key without effect ($n)"
t3_stop

printf '[pgbouncer]\nauth_type = trust\nlisten_port = %s\n%%include tests/compat/extra.ini\n' "$t3_port" \
    >"$root/bad.ini"
printf '[pgbouncer]\nserver_reset_qeury = DISCARD ALL\n' >"$root/tests/compat/extra.ini"
if "$WARMPOOL" --check -c bad.ini >"$t3_tmp/bad.out" 2>&1; then
    t3_fail "--check accepted an unknown key"
fi
grep -qxF 'tests/compat/extra.ini:2: unknown key "server_reset_qeury" in [pgbouncer]' "$t3_tmp/bad.out" ||
    t3_fail "unexpected --check output: $(cat "$t3_tmp/bad.out")"
t3_ok "an unknown key in an included file fails with its file:line"
