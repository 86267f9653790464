#!/bin/bash
# t09_pgbench — issue 2, acceptance 9.
#
# pgbench TPC-B (scale 5, initialised directly on PostgreSQL) through the transaction-mode
# pool WP_DB: `-M simple`, then `-M extended`, 100 clients, 2 threads, 20 s each
# (T09_SECONDS overrides). Asserts for each run: pgbench exits 0, ran 100 clients, no
# client aborted, "number of failed transactions: 0", and more than 0 transactions were
# processed. Afterwards (checked directly on PostgreSQL): sum of branch balances = sum of
# teller balances = sum of account balances = sum of history deltas, and the history
# holds exactly one row per transaction pgbench reported.
set -eu

secs=${T09_SECONDS:-20}
fail() { echo "FAIL: $*" >&2; exit 1; }
direct_psql() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" "$@"; }

# Unix socket to PostgreSQL is trusted: initialise as the test user so it owns the tables.
if ! init=$(pgbench -i -q -s 5 -h "$PG_HOST" -p "$PG_PORT" -U "$WP_USER" "$PG_DB" 2>&1); then
    echo "$init" >&2
    fail "pgbench -i on PostgreSQL failed"
fi
echo "ok: pgbench -i -s 5 directly on PostgreSQL"

out=$(mktemp)
trap 'rm -f "$out"' EXIT
total=0
for mode in simple extended; do
    rc=0
    PGPASSWORD=$WP_PASSWORD PGCONNECT_TIMEOUT=10 pgbench -n -M "$mode" -c 100 -j 2 -T "$secs" \
        -h "$WP_HOST" -p "$WP_PORT" -U "$WP_USER" "$WP_DB" >"$out" 2>&1 || rc=$?
    clients=$(sed -n 's/^number of clients: //p' "$out")
    processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out")
    aborted=$(grep -c 'aborted' "$out" || true)
    if [ "$rc" != 0 ] || [ "$clients" != 100 ] || [ -z "$processed" ] || [ "$processed" = 0 ] ||
        [ "$failed" != 0 ] || [ "$aborted" != 0 ]; then
        sed 's/^/    pgbench: /' "$out" | grep -v 'progress:' | tail -n 30 >&2
        fail "pgbench -M $mode: exit $rc, clients '$clients', processed '$processed'," \
            "failed '$failed', lines mentioning 'aborted': $aborted"
    fi
    total=$((total + processed))
    echo "ok: pgbench -M $mode -c 100 -j 2 -T $secs: $processed transactions, 0 failed, tps $tps"
done

read -r b t a h n <<<"$(direct_psql -U postgres -F ' ' -d "$PG_DB" -c "
    SELECT (SELECT sum(bbalance) FROM pgbench_branches),
           (SELECT sum(tbalance) FROM pgbench_tellers),
           (SELECT sum(abalance) FROM pgbench_accounts),
           (SELECT coalesce(sum(delta), 0) FROM pgbench_history),
           (SELECT count(*) FROM pgbench_history)")"
if [ -z "$b" ] || [ -z "$n" ]; then
    fail "could not read the pgbench balances"
fi
if [ "$b" != "$t" ] || [ "$t" != "$a" ] || [ "$a" != "$h" ]; then
    fail "TPC-B invariant broken: branches $b, tellers $t, accounts $a, history deltas $h"
fi
echo "ok: sum(bbalance) = sum(tbalance) = sum(abalance) = sum(delta) = $b"
[ "$n" = "$total" ] ||
    fail "pgbench_history has $n rows, but pgbench reported $total transactions"
echo "ok: pgbench_history has exactly the $total rows of the reported transactions"
