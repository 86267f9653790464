/*
 * t32_wait_timeout — issue 3, acceptance 2 (run by t32_wait_timeout.sh: private warmpool,
 * transaction mode, max_pool_size = 2, query_wait_timeout = 1s, database WP_DB).
 *
 * Three clients log in. Two run `SELECT pg_sleep(3)` and hold both backends (PostgreSQL
 * shows two active pg_sleep(3)); the third then sends SELECT 1 and, after about 1 s
 * (0.9–3 s), gets warmpool's wait-timeout error (SQLSTATE 53300, message naming
 * query_wait_timeout) instead of waiting; it is an ERROR, so its connection stays in
 * sync and usable. The first two succeed. Afterwards the third client's next query and
 * a new client are served (within query_wait_timeout): the pool is not stuck.
 */
#include "itest.h"

#include <pthread.h>

struct sleeper {
    PGconn *conn;
    int ok;
    double secs;
    char err[256];
};

static void *run_sleep(void *arg)
{
    struct sleeper *s = arg;
    double t0 = itest_now();
    PGresult *r = PQexec(s->conn, "SELECT pg_sleep(3) AS t32_sleep");
    s->secs = itest_now() - t0;
    s->ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!s->ok)
        snprintf(s->err, sizeof s->err, "%s", r ? PQresultErrorMessage(r) : "no result");
    PQclear(r);
    return NULL;
}

static void wait_for_sleepers(PGconn *direct)
{
    long long n = 0;
    for (int i = 0; i < 50 && n < 2; i++) {
        itest_sleep_ms(100);
        n = QUERY_INT(direct, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                              " AND query LIKE 'SELECT pg_sleep(3) AS t32_sleep%'");
    }
    CHECK(n == 2, "PostgreSQL shows %lld active pg_sleep(3), want 2", n);
    itest_ok("both backends of the pool run pg_sleep(3)");
}

static void third_client_times_out(PGconn *c)
{
    double t0 = itest_now();
    PGresult *r = PQexec(c, "SELECT 1");
    double secs = itest_now() - t0;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    CHECK(r && PQresultStatus(r) == PGRES_FATAL_ERROR && state && strcmp(state, "53300") == 0,
          "third client: got %s, SQLSTATE %s (%s), want error 53300",
          r ? PQresStatus(PQresultStatus(r)) : "no result", state ? state : "-",
          r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    CHECK(msg && strstr(msg, "query_wait_timeout (1s)"),
          "third client: message \"%s\" does not name query_wait_timeout", msg ? msg : "");
    CHECK(secs >= 0.9 && secs <= 3.0, "third client's error came after %.2f s, want ~1 s", secs);
    itest_ok("third client: 53300 \"%s\" after %.2f s", msg, secs);
    PQclear(r);
}

int main(void)
{
    if (itest_direct()) {
        itest_note("skipped: query_wait_timeout is warmpool's");
        return 0;
    }
    PGconn *direct = itest_connect_direct_db(__FILE__, __LINE__, WP_DB());
    struct sleeper s[2];
    pthread_t t[2];
    memset(s, 0, sizeof s);
    for (int i = 0; i < 2; i++)
        s[i].conn = CONNECT(WP_DB());
    PGconn *third = CONNECT(WP_DB());
    itest_ok("three clients logged in");
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, run_sleep, &s[i]);
    wait_for_sleepers(direct);
    third_client_times_out(third);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        CHECK(s[i].ok, "client %d: pg_sleep(3) failed: %s", i + 1, s[i].err);
        CHECK(s[i].secs >= 2.9, "client %d: pg_sleep(3) returned after %.2f s", i + 1, s[i].secs);
        itest_ok("client %d: pg_sleep(3) succeeded after %.2f s", i + 1, s[i].secs);
        PQfinish(s[i].conn);
    }
    CHECK(PQstatus(third) == CONNECTION_OK, "the third client's connection was closed");
    char *again = QUERY_VALUE(third, "SELECT 1");
    CHECK_STR(again, "1", "the third client's next query");
    free(again);
    itest_ok("the third client stayed connected; its next query succeeds");
    PQfinish(third);
    PGconn *next = CONNECT(WP_DB());
    char *v = QUERY_VALUE(next, "SELECT 1");
    CHECK_STR(v, "1", "a new client afterwards");
    free(v);
    itest_ok("afterwards a new client is served (the pool is not stuck)");
    PQfinish(next);
    PQfinish(direct);
    return 0;
}
