#!/bin/bash
# t44_internal_sql — SQL that warmpool itself runs on a backend (parameter sync, RESET,
# reset query) cannot be redirected by what a client put in its search_path. A client
# connects with options=-c search_path=evil,pg_catalog, where schema evil holds a
# set_config(text, text, boolean) that records each call; the pool has one backend, so
# the next client (other application_name, default search_path) gets that same backend
# and warmpool syncs it. evil.set_config must never run, and the next client must see
# its own search_path. Private warmpool (t30_lib.sh), transaction mode, one backend.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
t3_database t44
t3_start "" "t44 = host=127.0.0.1 port=$PG_PORT dbname=t44 max_pool_size=1"
run() { # PGOPTIONS APPNAME SQL...
    local opts=$1 app=$2
    shift 2
    PGOPTIONS=$opts PGAPPNAME=$app PGPASSWORD=$WP_PASSWORD psql -X -q -At -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$t3_port" -U "$WP_USER" t44 "$@"
}
run "" setup -c "CREATE SCHEMA evil" -c "CREATE TABLE evil.calls (name text)" -c "
CREATE FUNCTION evil.set_config(text, text, boolean) RETURNS text LANGUAGE sql AS
  \$\$ INSERT INTO evil.calls VALUES (\$1) RETURNING \$2 \$\$" ||
    t3_fail "creating the evil schema"
# Proof that the trap works when called unqualified with that search_path.
got=$(run "-c search_path=evil,pg_catalog" attacker -c "BEGIN" \
    -c "SELECT set_config('application_name', 'x', false)" -c "SELECT count(*) FROM evil.calls" -c "ROLLBACK")
[ "$(echo "$got" | tail -n 1)" = 1 ] || t3_fail "the trap function is not reached unqualified: $got"
t3_ok "unqualified set_config() with search_path=evil,pg_catalog runs evil.set_config"

for round in 1 2 3; do
    got=$(run "-c search_path=evil,pg_catalog -c statement_timeout=12345" "attacker$round" -c "SHOW search_path")
    [ "$got" = "evil, pg_catalog" ] || [ "$got" = "evil,pg_catalog" ] || t3_fail "attacker's own search_path: '$got'"
    got=$(run "" "victim$round" -c "SHOW search_path" -c "SHOW statement_timeout" -c "SHOW application_name")
    [ "$got" = "\"\$user\", public
0
victim$round" ] || t3_fail "the next client on the same backend saw: $got"
done
calls=$(t3_direct -d t44 -c "SELECT count(*) FROM evil.calls")
[ "$calls" = 0 ] || t3_fail "evil.set_config ran $calls times from warmpool's own queries"
backends=$(t3_direct -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 't44' AND usename = '$WP_USER'")
[ "$backends" -le 1 ] || t3_fail "$backends backends: the clients did not share one"
t3_ok "3 rounds attacker → victim on one backend: warmpool's sync (pg_catalog.set_config, RESET) never ran evil.set_config; each victim saw its own settings"
t3_stop
