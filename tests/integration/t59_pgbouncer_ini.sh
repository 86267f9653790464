#!/bin/bash
# t59_pgbouncer_ini — warmpool runs from a PgBouncer 1.25 configuration (issue #16):
# tests/compat/pgbouncer.ini, which %includes tests/compat/pgbouncer-databases.ini and
# names tests/compat/userlist.txt, all relative to the working directory as PgBouncer
# reads them. The checked-in files pass --check unchanged from the repository root.
# For the run, a copy under a private root differs only where this machine differs:
# PostgreSQL's port, warmpool's port and its unix socket directory. Then:
#   - clients log in over TCP (both addresses of listen_addr = 127.0.0.1,::1) and over
#     the unix socket, to a database of the main file and to one defined in the
#     included file;
#   - per-database datestyle and timezone reach the server;
#   - wptest's connect_query ran once on the client's backend (it inserts the backend's
#     pid into a table);
#   - application_name_add_host: "app - 127.0.0.1:port" in SHOW application_name and in
#     pg_stat_activity;
#   - max_db_client_connections = 2 on the included database: the third client gets
#     53300, and log_pooler_errors logs it;
#   - log_stats with stats_period = 2: a stats line per pool;
#   - SHOW CONFIG on the admin console lists every key of the file under its PgBouncer
#     name, with the file's values, and marks the keys without effect;
#   - each PgBouncer key without effect is one warning line in the log;
#   - `warmpool --from-pgbouncer` turns the file into a warmpool.ini that passes --check
#     and runs (a login through it);
#   - an unknown key is still an error naming file:line.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct

cd "$t3_root"
"$WARMPOOL" --check -c tests/compat/pgbouncer.ini >"$t3_tmp/check.out" 2>&1 ||
    t3_fail "--check rejected tests/compat/pgbouncer.ini: $(cat "$t3_tmp/check.out")"
grep -q '^tests/compat/pgbouncer.ini:[0-9]*: accepted, no effect: dns_max_ttl$' "$t3_tmp/check.out" ||
    t3_fail "--check does not list dns_max_ttl as accepted without effect"
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

# wptest's connect_query inserts into this table.
t3_direct -d wptest -c "DROP TABLE IF EXISTS wp_connect_query" \
    -c "CREATE TABLE wp_connect_query (pid int)" -c "GRANT ALL ON wp_connect_query TO $WP_USER" >/dev/null
t3_atexit "t3_direct -d wptest -c 'DROP TABLE IF EXISTS wp_connect_query' >/dev/null"

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

for host in 127.0.0.1 ::1 "$root/sock"; do
    for db in wptest included wpload; do
        got=$(q "$host" "$db" "SELECT 'in ' || current_database()") ||
            t3_fail "$db over $host: $got"
        [ "$got" = "in wptest" ] || [ "$got" = "in wpload" ] || t3_fail "$db over $host: got '$got'"
    done
done
t3_ok "logins over TCP (127.0.0.1 and ::1) and the unix socket, to databases of the main and the included file"

got=$(q 127.0.0.1 wptest "SHOW timezone") || t3_fail "SHOW timezone: $got"
[ "$got" = UTC ] || t3_fail "wptest timezone: got '$got', want UTC"
got=$(q 127.0.0.1 wptest "SHOW datestyle") || t3_fail "SHOW datestyle: $got"
[ "$got" = "ISO, MDY" ] || t3_fail "wptest datestyle: got '$got', want 'ISO, MDY'"
t3_ok "per-database datestyle and timezone reach the server"

got=$(q 127.0.0.1 wptest "SELECT count(*) FROM wp_connect_query WHERE pid = pg_backend_pid()") ||
    t3_fail "reading wp_connect_query: $got"
[ "$got" = 1 ] || t3_fail "connect_query: the client's backend inserted $got rows, want 1"
t3_ok "wptest's connect_query ran once on the backend the client got"

got=$(PGAPPNAME=t59 q 127.0.0.1 wptest "SHOW application_name") || t3_fail "SHOW application_name: $got"
[[ $got == "t59 - 127.0.0.1:"[0-9]* ]] || t3_fail "application_name_add_host: SHOW application_name '$got'"
got=$(PGAPPNAME=t59 q 127.0.0.1 wptest \
    "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()") || t3_fail "$got"
[[ $got == "t59 - 127.0.0.1:"[0-9]* ]] || t3_fail "application_name_add_host: pg_stat_activity '$got'"
t3_ok "application_name_add_host: '$got' in SHOW application_name and pg_stat_activity"

got=$(/usr/bin/python3 "$t3_root/tests/integration/access_client.py" hold 127.0.0.1 "$t3_port" \
    "$WP_USER" "$WP_PASSWORD" included 2 2>&1)
[ "$got" = "53300 client connections exceeded (max_db_client_connections)" ] ||
    t3_fail "the third client of included (max_db_client_connections=2) got: $got"
grep -q "pooler error: 53300 client connections exceeded (max_db_client_connections)" \
    "$t3_tmp/stderr.log" || t3_fail "log_pooler_errors: the refusal is not in the log"
t3_ok "max_db_client_connections = 2: the third client gets 53300, and the log says so"

for t in $(seq 50); do
    grep -q "LOG wptest/$WP_USER stats: [0-9]* xacts/s, [0-9]* queries/s" "$t3_tmp/stderr.log" && break
    sleep 0.1
done
grep -q "LOG wptest/$WP_USER stats: [0-9]* xacts/s, [0-9]* queries/s" "$t3_tmp/stderr.log" ||
    t3_fail "log_stats: no stats line for wptest after 5 s (stats_period = 2)"
t3_ok "log_stats: $(grep -o "wptest/$WP_USER stats: .*" "$t3_tmp/stderr.log" | head -n 1)"

config=$(q 127.0.0.1 pgbouncer "SHOW CONFIG") || t3_fail "SHOW CONFIG: $config"
for want in "max_packet_size|2147483647|1073741824|yes|yes" "tcp_keepidle|7200|0|yes|yes" \
    "server_login_retry|15|1|yes|yes" "reserve_pool_timeout|5|5|yes|yes" \
    "syslog_ident|pgbouncer|warmpool|yes|yes" "default_pool_size|20|20|yes|yes" \
    "max_pool_size|20|20|yes|yes" "listen_addr|127.0.0.1,::1|127.0.0.1|no|yes" \
    "application_name_add_host|1|0|yes|yes" "stats_period|2|60|yes|yes" \
    "log_stats|1|1|yes|yes" "log_pooler_errors|1|1|yes|yes" \
    "max_db_client_connections|0|0|yes|yes" "max_user_client_connections|0|0|yes|yes" \
    "server_tls_sslmode|prefer|prefer|yes|yes" "server_tls_protocols|secure|secure|yes|yes" \
    "server_tls_ca_file|||yes|yes" "dns_max_ttl|15|15|yes|no" \
    "track_extra_parameters|IntervalStyle|IntervalStyle|no|no" "query_wait_notify|5|5|yes|yes"; do
    grep -qxF "$want" <<<"$config" || t3_fail "SHOW CONFIG has no row '$want'"
done
keys=$(sed -n '/^\[pgbouncer\]/,/^\[/s/^\([a-z_0-9]*\) *=.*/\1/p' tests/compat/pgbouncer.ini)
for key in $keys; do
    grep -q "^$key|" <<<"$config" || t3_fail "SHOW CONFIG has no row for the file's $key"
done
t3_ok "SHOW CONFIG lists all $(wc -w <<<"$keys") keys of [pgbouncer] under their PgBouncer names, with the file's values"

n=$(grep -c 'accepted, no effect: ' "$t3_tmp/stderr.log" || true)
want=$(grep -c "accepted, no effect: " "$t3_tmp/check.out")
[ "$n" = "$want" ] || t3_fail "the log has $n 'accepted, no effect' lines, --check listed $want"
grep -q 'WARNING tests/compat/pgbouncer.ini:[0-9]*: accepted, no effect: dns_max_ttl$' "$t3_tmp/stderr.log" ||
    t3_fail "no warning for dns_max_ttl in the log"
t3_ok "one warning line per key without effect ($n)"
t3_stop

"$WARMPOOL" --from-pgbouncer tests/compat/pgbouncer.ini >native.ini 2>"$t3_tmp/from.err" ||
    t3_fail "--from-pgbouncer failed: $(cat "$t3_tmp/from.err")"
grep -qx '\[warmpool\]' native.ini && ! grep -q '^\[pgbouncer\]' native.ini ||
    t3_fail "--from-pgbouncer: no [warmpool] section, or a [pgbouncer] one"
grep -A1 -x "; PgBouncer's default_pool_size" native.ini | grep -qx "max_pool_size = 20" ||
    t3_fail "--from-pgbouncer: default_pool_size not renamed max_pool_size under a comment"
grep -B1 -x ';dns_max_ttl = 15' native.ini | grep -q '^; no effect in warmpool' ||
    t3_fail "--from-pgbouncer: dns_max_ttl not commented out as without effect"
grep -q '^included = ' native.ini || t3_fail "--from-pgbouncer: the %include'd entry is not inlined"
"$WARMPOOL" --check -c native.ini >"$t3_tmp/native.check" 2>&1 ||
    t3_fail "--from-pgbouncer output rejected by --check: $(cat "$t3_tmp/native.check")"
"$WARMPOOL" -c native.ini 2>"$t3_tmp/native.log" &
t3_pid=$! t3_stopped=0
for t in $(seq $((150 * t3_slow))); do
    kill -0 "$t3_pid" 2>/dev/null || t3_fail "warmpool exited at startup on native.ini: $(tail -n 5 "$t3_tmp/native.log")"
    pg_isready -q -h 127.0.0.1 -p "$t3_port" -U "$WP_USER" -d wptest -t 1 && break
    sleep 0.1
done
got=$(q 127.0.0.1 included "SELECT 'native ' || current_database()") || t3_fail "login through native.ini: $got"
[ "$got" = "native wptest" ] || t3_fail "login through native.ini: got '$got'"
t3_stop
t3_ok "--from-pgbouncer: a warmpool.ini that passes --check and runs ($(grep -c '^; ' native.ini) comment lines)"

printf '[pgbouncer]\nauth_type = trust\nlisten_port = %s\n%%include tests/compat/extra.ini\n' "$t3_port" \
    >"$root/bad.ini"
printf '[pgbouncer]\nserver_reset_qeury = DISCARD ALL\n' >"$root/tests/compat/extra.ini"
if "$WARMPOOL" --check -c bad.ini >"$t3_tmp/bad.out" 2>&1; then
    t3_fail "--check accepted an unknown key"
fi
grep -qxF 'tests/compat/extra.ini:2: unknown key "server_reset_qeury" in [pgbouncer]' "$t3_tmp/bad.out" ||
    t3_fail "unexpected --check output: $(cat "$t3_tmp/bad.out")"
t3_ok "an unknown key in an included file fails with its file:line"
