/*
 * t34_min_pool — issue 3, acceptance 4 (run by t34_min_pool.sh: private warmpool,
 * min_pool_size = 3, max_pool_size = 5, server_check_delay = 0, database WP_DB whose
 * connection string forces the user, so the pool exists and is warmed before any client).
 *
 *   - Within 2 s of start PostgreSQL shows three backends of the pool, before any client.
 *   - Three times: pg_terminate_backend on all of them; a client that was already
 *     logged in queries right after the terminate and succeeds (on a new backend: the
 *     health check keeps the dead ones from it), so does a client that logs in then;
 *     within 2 s three backends exist again, none of them an old one.
 * Under valgrind the 2 s bounds are 10 s (itest_slow).
 */
#include "itest.h"

#define MAX_PIDS 16

/* The pool's backends that are up and idle. One still starting up is left out: a
   terminate that reaches it mid-startup may take effect only after it has answered its
   first (health-check) query, which is another case than "all warm backends killed". */
static int backend_pids(PGconn *direct, long long *pids)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT pid FROM pg_stat_activity WHERE datname = '%s' AND usename = '%s'"
             " AND state = 'idle' ORDER BY pid",
             WP_DB(), WP_USER());
    PGresult *r = QUERY(direct, sql);
    int n = PQntuples(r) < MAX_PIDS ? PQntuples(r) : MAX_PIDS;
    for (int i = 0; i < n; i++)
        pids[i] = atoll(PQgetvalue(r, i, 0));
    PQclear(r);
    return n;
}

/* Poll up to `secs` for exactly three backends; returns how long it took. */
static double wait_for_three(PGconn *direct, double secs, long long *pids)
{
    double t0 = itest_now();
    int n = 0;
    for (;;) {
        n = backend_pids(direct, pids);
        if (n == 3 || itest_now() - t0 > secs)
            break;
        itest_sleep_ms(50);
    }
    CHECK(n == 3, "%d backends of the pool after %.1f s, want 3", n, secs);
    return itest_now() - t0;
}

static int contains(const long long *pids, int n, long long pid)
{
    for (int i = 0; i < n; i++)
        if (pids[i] == pid)
            return 1;
    return 0;
}

static void terminate_round(PGconn *direct, PGconn *client, int round)
{
    long long old[MAX_PIDS], now[MAX_PIDS];
    int n = backend_pids(direct, old);
    CHECK(n == 3, "round %d: %d backends before the terminate, want 3", round, n);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
             " WHERE datname = '%s' AND usename = '%s'",
             WP_DB(), WP_USER());
    double t0 = itest_now();
    long long killed = QUERY_INT(direct, sql);
    CHECK(killed == 3, "round %d: terminated %lld backends, want 3", round, killed);
    char *pid = QUERY_VALUE(client, "SELECT pg_backend_pid()");
    CHECK(pid && !contains(old, n, atoll(pid)), "round %d: query ran on terminated backend %s",
          round, pid ? pid : "NULL");
    free(pid);
    PGconn *fresh = CONNECT(WP_DB());
    PQclear(QUERY(fresh, "SELECT 1"));
    PQfinish(fresh);
    itest_ok("round %d: right after terminating all 3, a logged-in and a new client succeed",
             round);
    double bound = 2.0 * itest_slow();
    double left = bound - (itest_now() - t0);
    double took = wait_for_three(direct, left > 0 ? left : 0, now) + (bound - left);
    for (int i = 0; i < 3; i++)
        CHECK(!contains(old, n, now[i]), "round %d: backend %lld survived its terminate", round,
              now[i]);
    itest_ok("round %d: three new backends within %.2f s of the terminate", round, took);
}

int main(void)
{
    if (itest_direct()) {
        itest_note("skipped: min_pool_size is warmpool's");
        return 0;
    }
    if (itest_valgrind())
        itest_note("valgrind: the 2 s bounds on refilling the pool are %.0f s", 2.0 * itest_slow());
    PGconn *direct = itest_connect_direct_db(__FILE__, __LINE__, "postgres");
    long long pids[MAX_PIDS];
    double took = wait_for_three(direct, 2.0 * itest_slow(), pids);
    itest_ok("three backends %.2f s after start, before any client", took);
    PGconn *client = CONNECT(WP_DB());
    PQclear(QUERY(client, "SELECT 1"));
    for (int round = 1; round <= 3; round++)
        terminate_round(direct, client, round);
    PQfinish(client);
    PQfinish(direct);
    return 0;
}
