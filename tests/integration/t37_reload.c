/*
 * t37_reload — issue 3, acceptance 7 (run by t37_reload.sh: private warmpool, transaction
 * mode, max_pool_size = 4, no query_timeout, database WP_DB with table t37(id int)).
 * T37_RELOAD_SMALLER installs max_pool_size = 2 and query_timeout = 1s and sends SIGHUP;
 * T37_RELOAD_CONNSTR then changes only the database's connection string.
 *
 *   - Before: four concurrent clients make the pool open four backends.
 *   - A fifth client is inside BEGIN; INSERT when the first reload lands; it then
 *     INSERTs again and COMMITs: both rows are there.
 *   - No client is disconnected: all five still answer queries afterwards.
 *   - The pool shrinks to at most 2 backends (polled for up to 5 s), and under a load
 *     of four clients a direct sampler never sees more than 2.
 *   - query_timeout applies to clients connected before the reload: pg_sleep(5) fails
 *     after 1–2 s (3 s allowed) with 57014; the same client then works.
 *   - A changed connection string retires the old backends (none left, polled for up
 *     to 5 s while the clients query), again without disconnecting anyone.
 */
#include "itest.h"

#include <pthread.h>
#include <stdatomic.h>

#define NCLIENTS 4

static PGconn *clients[NCLIENTS];
static atomic_int stop_sampler; /* read by another thread */

static char *count_sql(void)
{
    static char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND usename = '%s'",
             WP_DB(), WP_USER());
    return sql;
}

struct job {
    PGconn *conn;
    const char *sql;
    int times, ok;
    char err[256];
};

static void *run_job(void *arg)
{
    struct job *j = arg;
    j->ok = 1;
    for (int i = 0; i < j->times && j->ok; i++) {
        PGresult *r = PQexec(j->conn, j->sql);
        if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
            j->ok = 0;
            snprintf(j->err, sizeof j->err, "%s", PQerrorMessage(j->conn));
        }
        PQclear(r);
    }
    return NULL;
}

/* Every client runs `sql` `times` times, all at once. */
static void run_all(const char *sql, int times)
{
    struct job jobs[NCLIENTS];
    pthread_t t[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        jobs[i] = (struct job){clients[i], sql, times, 0, ""};
        pthread_create(&t[i], NULL, run_job, &jobs[i]);
    }
    for (int i = 0; i < NCLIENTS; i++) {
        pthread_join(t[i], NULL);
        CHECK(jobs[i].ok, "client %d: %s failed: %s", i + 1, sql, jobs[i].err);
    }
}

static void *sampler_main(void *arg)
{
    long long *most = arg;
    PGconn *direct = itest_connect_direct_db(__FILE__, __LINE__, "postgres");
    while (!stop_sampler) {
        long long n = QUERY_INT(direct, count_sql());
        if (n > *most)
            *most = n;
        itest_sleep_ms(20);
    }
    PQfinish(direct);
    return NULL;
}

static void reload(const char *env)
{
    const char *cmd = getenv(env);
    CHECK(cmd && *cmd, "%s is not set", env);
    CHECK(system(cmd) == 0, "%s (%s) failed", env, cmd);
}

static void expect_all_connected(PGconn *tx, const char *when)
{
    for (int i = 0; i < NCLIENTS; i++) {
        CHECK(PQstatus(clients[i]) == CONNECTION_OK, "client %d disconnected %s", i + 1, when);
        PQclear(QUERY(clients[i], "SELECT 1"));
    }
    CHECK(PQstatus(tx) == CONNECTION_OK, "the transaction's client disconnected %s", when);
    PQclear(QUERY(tx, "SELECT 1"));
    itest_ok("all %d clients still connected and answering %s", NCLIENTS + 1, when);
}

static long long wait_for_at_most(PGconn *direct, long long most, double secs)
{
    double t0 = itest_now();
    long long n;
    while ((n = QUERY_INT(direct, count_sql())) > most && itest_now() - t0 < secs)
        itest_sleep_ms(50);
    CHECK(n <= most, "%lld backends %.1f s after the reload, want <= %lld", n, secs, most);
    return n;
}

static void shrink_under_load(PGconn *direct)
{
    long long n = wait_for_at_most(direct, 2, 5.0);
    itest_ok("the pool shrank to %lld backends", n);
    long long most = 0;
    pthread_t sampler;
    pthread_create(&sampler, NULL, sampler_main, &most);
    run_all("SELECT pg_sleep(0.2)", 5);
    stop_sampler = 1;
    pthread_join(sampler, NULL);
    CHECK(most <= 2, "PostgreSQL showed %lld backends under load after max_pool_size = 2", most);
    itest_ok("4 clients x 5 queries under the new max: all succeed, at most %lld backends", most);
}

static void new_query_timeout(void)
{
    double t0 = itest_now();
    PGresult *r = PQexec(clients[0], "SELECT pg_sleep(5)");
    double secs = itest_now() - t0;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    CHECK(state && strcmp(state, "57014") == 0 && strstr(PQresultErrorMessage(r), "query_timeout"),
          "pg_sleep(5) after the reload: got %s %s", state ? state : "-", PQresultErrorMessage(r));
    /* 1–2 s, plus 1 s for PostgreSQL's own cancel latency on a loaded machine. */
    CHECK(secs >= 0.95 && secs <= 3.0, "query_timeout fired after %.2f s, want 1–2 s", secs);
    PQclear(r);
    PQclear(QUERY(clients[0], "SELECT 1"));
    itest_ok("the new query_timeout applies to a client from before the reload (%.2f s)", secs);
}

static int old_backends_left(PGconn *direct, const char *old_pids)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY('{%s}'::int[])", old_pids);
    return (int)QUERY_INT(direct, sql);
}

static void new_connection_string(PGconn *direct, PGconn *tx)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE datname = '%s'"
             " AND usename = '%s'",
             WP_DB(), WP_USER());
    char *old = QUERY_VALUE(direct, sql);
    CHECK(old != NULL, "no backends before the connection string change");
    reload("T37_RELOAD_CONNSTR");
    double t0 = itest_now();
    int left;
    for (;;) {
        run_all("SELECT 1", 1);
        left = old_backends_left(direct, old);
        if (left == 0 || itest_now() - t0 > 5.0)
            break;
        itest_sleep_ms(100);
    }
    CHECK(left == 0, "%d backends from the old connection string still open after 5 s", left);
    free(old);
    itest_ok("a changed connection string retired every old backend");
    expect_all_connected(tx, "after the connection string changed");
}

int main(void)
{
    if (itest_direct()) {
        itest_note("skipped: reloads warmpool");
        return 0;
    }
    PGconn *direct = itest_connect_direct_db(__FILE__, __LINE__, "postgres");
    PGconn *tdirect = itest_connect_direct_db(__FILE__, __LINE__, WP_DB());
    for (int i = 0; i < NCLIENTS; i++)
        clients[i] = CONNECT(WP_DB());
    PGconn *tx = CONNECT(WP_DB());
    run_all("SELECT pg_sleep(0.5)", 1);
    long long n = QUERY_INT(direct, count_sql());
    CHECK(n == 4, "%lld backends after 4 concurrent queries, want 4", n);
    itest_ok("4 concurrent clients opened 4 backends (max_pool_size = 4)");

    EXEC(tx, "BEGIN");
    EXEC(tx, "INSERT INTO t37 VALUES (1)");
    reload("T37_RELOAD_SMALLER");
    itest_ok("SIGHUP: max_pool_size = 2, query_timeout = 1s");
    EXEC(tx, "INSERT INTO t37 VALUES (2)");
    EXEC(tx, "COMMIT");
    CHECK(QUERY_INT(tdirect, "SELECT count(*) FROM t37") == 2, "the transaction lost rows");
    itest_ok("a transaction open across the reload commits both rows");
    expect_all_connected(tx, "after the reload");
    shrink_under_load(direct);
    new_query_timeout();
    new_connection_string(direct, tx);
    for (int i = 0; i < NCLIENTS; i++)
        PQfinish(clients[i]);
    PQfinish(tx);
    PQfinish(tdirect);
    PQfinish(direct);
    return 0;
}
