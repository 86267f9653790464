#!/bin/bash
# t74_load_balance — issue #18, load balancing and visibility: a primary and two
# standbys (lib_replica.sh) behind one warmpool.
#   ro  = both standbys, load_balance_hosts=random, target_session_attrs=standby,
#         min_pool_size 16: backends land on both standbys (counted in pg_stat_activity
#         on each), SHOW POOLS host "several";
#   dis = both standbys, load_balance_hosts=disable (the default), min_pool_size 2: its
#         backends are on the first standby.
# The first standby then stops and every backend is replaced (RECONNECT): all land on
# the second standby and 20 queries through each entry get no error; dis counts one
# failover (SHOW POOLS, /metrics) logged once, ro none; SHOW SERVERS shows the second
# standby's port.
set -eu
. "$(dirname "$0")/t30_lib.sh"
. "$(dirname "$0")/lib_replica.sh"
rp_start_pair
s1=$RP_STANDBY_PORT
rp_start_standby standby2
s2=$RP_PORT
h=127.0.0.1 n=16

http=$(t3_free_port)
t3_start "admin_users = $WP_USER
max_pool_size = $n
server_login_retry = 200ms
stats_listen = 127.0.0.1:$http" "ro = host=$h,$h port=$s1,$s2 dbname=wptest load_balance_hosts=random target_session_attrs=standby min_pool_size=$n
dis = host=$h,$h port=$s1,$s2 dbname=wptest min_pool_size=2"

q() { # DB SQL: the output through warmpool (the console is database warmpool)
    PGPASSWORD=$WP_PASSWORD psql -X -q -At -F '|' -v ON_ERROR_STOP=1 -h "$h" -p "$t3_port" \
        -U "$WP_USER" -d "$1" -c "$2"
}
pool_col() { # DB COLUMN: that column of SHOW POOLS for the pool of DB
    PGPASSWORD=$WP_PASSWORD psql -X -q -A -F '|' -P footer=off -v ON_ERROR_STOP=1 -h "$h" \
        -p "$t3_port" -U "$WP_USER" -d warmpool -c "SHOW POOLS" |
        awk -F '|' -v db="$1" -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
            $1 == db { print $c[col] }'
}
backends_on() { # PORT: the test user's warmpool backends on that server
    rp_sql "$1" "SELECT count(*) FROM pg_stat_activity WHERE usename = '$WP_USER'
        AND datname = 'wptest'"
}
wait_for() { # DESCRIPTION COMMAND...: until the command succeeds, 15 s at most
    local what=$1
    shift
    for _ in $(seq $((150 * t3_slow))); do
        "$@" && return 0
        sleep 0.1
    done
    t3_fail "not within 15 s: $what"
}
servers_ports() { # DB: the port of each of its backends, from SHOW SERVERS
    q warmpool "SHOW SERVERS" | awk -F '|' -v db="$1" '$3 == db { print $7 }' | sort | uniq -c
}

# Pools of entries without a forced user start at their first client.
[ "$(q ro "SELECT pg_is_in_recovery()")" = t ] || t3_fail "ro is not on a standby"
[ "$(q dis "SELECT pg_is_in_recovery()")" = t ] || t3_fail "dis is not on a standby"
all_up() { [ $(($(backends_on "$s1") + $(backends_on "$s2"))) -ge $((n + 2)) ]; }
wait_for "$((n + 2)) backends open" all_up
on1=$(backends_on "$s1") on2=$(backends_on "$s2")
[ "$on1" -gt 2 ] && [ "$on2" -gt 0 ] ||
    t3_fail "random: $on1 backends on the first standby (2 of them dis'), $on2 on the second"
[ "$(pool_col ro host)" = several ] || t3_fail "SHOW POOLS ro host: $(pool_col ro host)"
[ "$(pool_col ro load_balance_hosts)" = random ] || t3_fail "SHOW POOLS ro load_balance_hosts"
[ "$(pool_col dis host)" = "$h:$s1" ] || t3_fail "SHOW POOLS dis host: $(pool_col dis host)"
[ "$(servers_ports dis | awk '{ print $2 }')" = "$s1" ] ||
    t3_fail "SHOW SERVERS dis ports: $(servers_ports dis)"
q warmpool "SHOW DATABASES" | grep -q "^ro|$h,$h|.*|random|" || t3_fail "SHOW DATABASES ro"
q warmpool "SHOW DATABASES" | grep -q "^dis|$h,$h|.*|disable|" || t3_fail "SHOW DATABASES dis"
t3_ok "random: $n backends spread over both standbys ($((on1 - 2)) and $on2); disable: both on the first"

rp_stop standby
q warmpool "RECONNECT" >/dev/null
moved() {
    [ "$(backends_on "$s2")" -ge $((n + 2)) ] &&
        [ "$(servers_ports ro | awk '{ print $2 }')" = "$s2" ] &&
        [ "$(servers_ports dis | awk '{ print $2 }')" = "$s2" ]
}
wait_for "every backend on the second standby" moved
errors=0
for _ in $(seq 20); do
    q ro "SELECT 1" >/dev/null 2>&1 || errors=$((errors + 1))
    q dis "SELECT 1" >/dev/null 2>&1 || errors=$((errors + 1))
done
[ "$errors" = 0 ] || t3_fail "$errors of 40 queries failed after the first standby stopped"
t3_ok "first standby stopped: every backend on the second (SHOW SERVERS port $s2), 40 queries, 0 errors"

[ "$(pool_col dis host)" = "$h:$s2" ] || t3_fail "SHOW POOLS dis host: $(pool_col dis host)"
[ "$(pool_col dis failovers)" = 1 ] || t3_fail "SHOW POOLS dis failovers: $(pool_col dis failovers)"
[ "$(pool_col ro failovers)" = 0 ] || t3_fail "SHOW POOLS ro failovers: $(pool_col ro failovers)"
[ "$(pool_col ro host)" = "$h:$s2" ] || t3_fail "SHOW POOLS ro host: $(pool_col ro host)"
logged=$(grep -c "pool dis/$WP_USER: backends now on $h:$s2 (were on $h:$s1)" "$t3_log" || true)
[ "$logged" = 1 ] || t3_fail "failover logged $logged times"
[ "$(grep -c "pool ro/.*backends now on" "$t3_log" || true)" = 0 ] ||
    t3_fail "a random pool logged a failover"
metrics=$(curl -sf "http://127.0.0.1:$http/metrics") || t3_fail "GET /metrics"
echo "$metrics" | grep -qx "warmpool_pool_failovers_total{database=\"dis\",user=\"$WP_USER\"} 1" ||
    t3_fail "metrics: $(echo "$metrics" | grep failovers)"
echo "$metrics" |
    grep -qx "warmpool_server_connections_by_host{database=\"ro\",user=\"$WP_USER\",host=\"$h:$s2\"} $n" ||
    t3_fail "metrics: $(echo "$metrics" | grep by_host)"
t3_ok "disable: SHOW POOLS host $h:$s2, failovers 1, logged once; random: 0; /metrics agree"
