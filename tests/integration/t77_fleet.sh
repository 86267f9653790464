#!/bin/bash
# t77_fleet — issue #19: a fleet connection budget. Three warmpools (A, B, C) with the
# same fleet_name and fleet_max_db_connections = 12 (transaction mode, max_pool_size
# 20) in front of one PostgreSQL; t77_fleet.py drives the load and samples
# pg_stat_activity every 200 ms:
#   30 clients on A while B and C idle: never more than 12 fleet backends, and A holds
#   more than 4 (its three-way share);
#   30 clients on B and C too: every cap comes to 4;
#   C stops (SIGQUIT): A's and B's caps and backends grow beyond 4.
# Backends carry the stamp wp:t77:<instance>. The times the rebalances took are
# printed, not asserted. Then SHOW FLEET, SHOW POOLS and /metrics on A agree; a killed
# monitor connection gives one fallback line and the next read recovers; reloads
# lower the budget at once and end the fleet.
set -eu
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
t3_database t77
budget=12
declare -A port pid

start_instance() { # NAME
    local name=$1 t
    port[$name]=$(t3_free_port)
    t3_port=${port[$name]} t3_ini=$t3_tmp/$name.ini t3_log=$t3_tmp/$name.log \
        t3_write_ini "admin_users = $WP_USER
max_pool_size = 20
query_wait_timeout = 2min
fleet_name = t77
fleet_instance = $name
fleet_max_db_connections = $budget
stats_listen = 127.0.0.1:$(t3_free_port)" "t77 = host=127.0.0.1 port=$PG_PORT dbname=t77"
    "$WARMPOOL" --check -c "$t3_tmp/$name.ini" >"$t3_tmp/$name.check" 2>&1 ||
        t3_fail "warmpool --check: $(cat "$t3_tmp/$name.check")"
    "$WARMPOOL" -c "$t3_tmp/$name.ini" 2>"$t3_tmp/$name.stderr" &
    pid[$name]=$!
    t3_atexit "stop_instance $name"
    for t in $(seq $((150 * t3_slow))); do
        pg_isready -q -h 127.0.0.1 -p "${port[$name]}" -t 1 && return 0
        sleep 0.1
    done
    t3_fail "instance $name not accepting"
}

declare -A stopped
stop_instance() { # NAME: SIGQUIT unless gone; exit status 0, no sanitizer report
    local name=$1 st=0
    [ -z "${stopped[$name]:-}" ] || return 0
    stopped[$name]=1
    kill -QUIT "${pid[$name]}" 2>/dev/null || true
    wait "${pid[$name]}" 2>/dev/null || st=$?
    [ "$st" = 0 ] || { echo "FAIL: instance $name exited with $st" >&2; return 1; }
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$t3_tmp/$name.stderr" \
        "$t3_tmp/$name.log"; then
        grep -E -A 12 'Sanitizer|runtime error:' "$t3_tmp/$name.stderr" "$t3_tmp/$name.log" | head -40 >&2
        echo "FAIL: sanitizer report from instance $name" >&2
        return 1
    fi
}
printf '"%s" "%s"\n' "$WP_USER" "$WP_PASSWORD" >"$t3_tmp/users.txt"
for name in A B C; do start_instance $name; done
# Pools start at their first client: one query through each starts its monitor.
for name in A B C; do
    PGPASSWORD=$WP_PASSWORD psql -X -q -At -h 127.0.0.1 -p "${port[$name]}" -U "$WP_USER" \
        -d t77 -c "SELECT 1" >/dev/null || t3_fail "a query through $name"
done

/usr/bin/python3 "$(dirname "$0")/t77_fleet.py" "$PG_HOST" "$PG_PORT" "$WP_USER" \
    "$WP_PASSWORD" t77 "${port[A]}" "${port[B]}" "${port[C]}" "${pid[C]}" $budget "$t3_slow" ||
    t3_fail "t77_fleet.py"
t3_ok "fleet budget held and rebalanced (figures above)"

console() { # SQL on A's console
    PGPASSWORD=$WP_PASSWORD psql -X -q -A -F '|' -P footer=off -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "${port[A]}" -U "$WP_USER" -d warmpool -c "$1"
}
pool_cap() {
    console "SHOW POOLS" | awk -F '|' 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        $1 == "t77" { print $c["fleet_cap"] }'
}
http=$(sed -n 's/^stats_listen = //p' "$t3_tmp/A.ini")
# With the load gone the caps settle (the idle instances keep what they hold unless
# the other wants it); the views must then agree.
views_agree() {
    fleet=$(console "SHOW FLEET") cap=$(pool_cap)
    metrics=$(curl -sf "http://$http/metrics") || return 1
    echo "$fleet" | awk -F '|' -v cap="$cap" '$2 == "A" && $3 == cap && $8 == "ok" { ok = 1 }
        END { exit !ok }' &&
        echo "$metrics" | grep -q "^warmpool_fleet_cap{database=\"t77\"} $cap$"
}
agreed=0
for _ in $(seq $((100 * t3_slow))); do
    if views_agree; then agreed=1 && break; fi
    sleep 0.1
done
[ "$agreed" = 1 ] || t3_fail "views disagree: SHOW FLEET $(echo "$fleet" | tr "\n" " "); SHOW POOLS fleet_cap $cap; $(echo "$metrics" | grep "^warmpool_fleet" | tr "\n" " ")"
echo "$fleet"
echo "$fleet" | grep -q "^t77|B|" || t3_fail "SHOW FLEET has no row for B"
echo "$fleet" | grep -q "^t77|C|" && t3_fail "SHOW FLEET still lists C"
t3_ok "SHOW FLEET lists A (state ok) and B, not C; SHOW POOLS fleet_cap $cap as SHOW FLEET"
echo "$metrics" | grep -q "^warmpool_fleet_instances{database=\"t77\"} 2$" ||
    t3_fail "metrics: $(echo "$metrics" | grep fleet)"
echo "$metrics" | grep -q "^warmpool_fleet_fallback{database=\"t77\"} 0$" ||
    t3_fail "metrics: $(echo "$metrics" | grep fleet)"
t3_ok "/metrics: warmpool_fleet_cap $cap, 2 instances, no fallback"

# Fallback: A's monitor connection is killed; the read fails, A falls back to
# 12 / 2 instances = 6 (logged once), and the next poll reads the fleet again.
t3_direct -d t77 -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE application_name LIKE 'wpfleet:t77:A:%'" >/dev/null
for _ in $(seq $((600 * t3_slow))); do
    grep -q "fleet t77/A database \"t77\": fleet state read" <(sed -n '/cannot read the fleet/,$p' "$t3_tmp/A.log") && break
    sleep 0.1
done
fallbacks=$(grep -c "fleet t77/A database \"t77\": cannot read the fleet's state" "$t3_tmp/A.log" || true)
[ "$fallbacks" = 1 ] || t3_fail "fallback logged $fallbacks times: $(grep fleet "$t3_tmp/A.log")"
grep -q "cannot read the fleet's state (.*): cap 6 (budget 12 / 2 instances)" "$t3_tmp/A.log" ||
    t3_fail "fallback line: $(grep 'cannot read' "$t3_tmp/A.log")"
console "SHOW FLEET" | awk -F '|' '$2 == "A" && $8 == "ok" { found = 1 } END { exit !found }' ||
    t3_fail "A not back to ok: $(console "SHOW FLEET")"
t3_ok "monitor killed: fallback cap 6 logged once, then the fleet read again (state ok)"

reload_a() { # SED-EXPRESSION: edit A's file, SIGHUP, wait until reloaded
    local before
    before=$(grep -c 'configuration reloaded' "$t3_tmp/A.log" || true)
    sed -i "$1" "$t3_tmp/A.ini"
    kill -HUP "${pid[A]}"
    for _ in $(seq $((100 * t3_slow))); do
        [ "$(grep -c 'configuration reloaded' "$t3_tmp/A.log" || true)" -gt "$before" ] && return 0
        sleep 0.1
    done
    t3_fail "A did not reload"
}
# Reloads: a lower budget caps A at once; an empty fleet_name ends the fleet for A.
reload_a "s/^fleet_max_db_connections = .*/fleet_max_db_connections = 3/"
cap=$(pool_cap)
[ "$cap" -le 3 ] || t3_fail "fleet_cap $cap after the budget was lowered to 3"
reload_a "s/^fleet_name = .*/fleet_name =/"
[ -z "$(console "SHOW FLEET" | sed 1d)" ] || t3_fail "SHOW FLEET after fleet_name was emptied: $(console "SHOW FLEET")"
gone() {
    [ "$(t3_direct -d t77 -c "SELECT count(*) FROM pg_stat_activity
        WHERE application_name LIKE 'wpfleet:t77:A:%'")" = 0 ]
}
for _ in $(seq $((100 * t3_slow))); do gone && break; sleep 0.1; done
gone || t3_fail "A's monitor connection still open after fleet_name was emptied"
t3_ok "reload: budget 3 caps A at $cap at once; fleet_name emptied: no SHOW FLEET rows, monitor closed"

for name in A B C; do stop_instance $name || t3_fail "instance $name did not stop cleanly"; done
t3_ok "A, B and C (stopped by SIGQUIT during the run) exited with status 0, no sanitizer report"
