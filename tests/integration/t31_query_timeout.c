/*
 * t31_query_timeout — issue 3, acceptance 1 (run by t31_query_timeout.sh, which starts
 * a private warmpool with query_timeout = 1s in transaction mode on database WP_DB).
 *
 *   - `SELECT pg_sleep(5)` fails after 1–2 s (3 s allowed: a cancel costs PostgreSQL a
 *     fork and a signal, slow on a loaded machine) with SQLSTATE 57014 and a message
 *     naming query_timeout; PostgreSQL shows that backend idle again (checked directly),
 *     and the same client's next query succeeds. Inside BEGIN the same, then ROLLBACK.
 *   - The same through the extended protocol (PQexecParams), and in libpq pipeline mode:
 *     a sleeping first query of a pipeline is cancelled after 1–2 s, the rest of its
 *     Sync segment is aborted, the next segment runs; a sleep in the second segment is
 *     timed from when the first one ended, not from when the pipeline was sent.
 *   - Limits are per request: a 0.5 s query succeeds, and a transaction of three 0.6 s
 *     statements (1.8 s in all) commits.
 */
#include "itest.h"

#define QUERY_TIMEOUT_MAX 3.0

static const char *db(void)
{
    return WP_DB();
}

/* Check a result is the 57014 that warmpool words for query_timeout. */
static void expect_timeout(PGresult *r, const char *what, double secs)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    CHECK(r && PQresultStatus(r) == PGRES_FATAL_ERROR && state && strcmp(state, "57014") == 0,
          "%s: got %s, SQLSTATE %s (%s), want error 57014", what,
          r ? PQresStatus(PQresultStatus(r)) : "no result", state ? state : "-",
          r ? PQresultErrorMessage(r) : "");
    CHECK(msg && strstr(msg, "query_timeout (1s)"),
          "%s: message \"%s\" does not name query_timeout", what, msg ? msg : "");
    /* 1–2 s, plus 1 s for PostgreSQL's own cancel latency on a loaded machine. */
    CHECK(secs >= 0.95 && secs <= QUERY_TIMEOUT_MAX, "%s ended after %.2f s, want 1–2 s", what,
          secs);
    itest_ok("%s: 57014 \"%s\" after %.2f s", what, msg, secs);
}

/* The backend that ran `tag` is idle again (poll up to 2 s for the stats to settle). */
static void expect_backend_idle(PGconn *direct, const char *tag)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(string_agg(state, ','), '') FROM pg_stat_activity"
             " WHERE datname = current_database() AND query LIKE '%%%s%%'"
             " AND pid <> pg_backend_pid()",
             tag);
    char *state = NULL;
    for (int i = 0; i < 20; i++) {
        free(state);
        state = QUERY_VALUE(direct, sql);
        if (state && strcmp(state, "idle") == 0)
            break;
        itest_sleep_ms(100);
    }
    CHECK(state && strcmp(state, "idle") == 0,
          "backend that ran %s: pg_stat_activity state \"%s\", want \"idle\"", tag,
          state ? state : "NULL");
    free(state);
    itest_ok("the backend that ran %s is idle again", tag);
}

/* Every backend of the database is idle (pipelines leave another query as the last). */
static void expect_all_idle(PGconn *direct)
{
    long long busy = -1;
    for (int i = 0; i < 20 && busy != 0; i++) {
        if (busy > 0)
            itest_sleep_ms(100);
        busy = QUERY_INT(direct, "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                                 " current_database() AND state <> 'idle'"
                                 " AND pid <> pg_backend_pid()");
    }
    CHECK(busy == 0, "%lld backends of the database are not idle", busy);
    itest_ok("every backend of the database is idle");
}

static void expect_one(PGconn *c, const char *what)
{
    char *v = QUERY_VALUE(c, "SELECT 1");
    CHECK_STR(v, "1", what);
    free(v);
}

static void simple_protocol(PGconn *c, PGconn *direct)
{
    double t0 = itest_now();
    PGresult *r = PQexec(c, "SELECT pg_sleep(5) AS t31_simple");
    expect_timeout(r, "simple Query pg_sleep(5)", itest_now() - t0);
    PQclear(r);
    expect_backend_idle(direct, "t31_simple");
    expect_one(c, "next query on the same client");
    itest_ok("the same client's next query succeeds");

    EXEC(c, "BEGIN");
    t0 = itest_now();
    r = PQexec(c, "SELECT pg_sleep(5) AS t31_in_tx");
    expect_timeout(r, "pg_sleep(5) inside BEGIN", itest_now() - t0);
    PQclear(r);
    CHECK(PQtransactionStatus(c) == PQTRANS_INERROR, "want an aborted transaction");
    EXEC(c, "ROLLBACK");
    expect_one(c, "query after ROLLBACK");
    itest_ok("inside a transaction: aborted, ROLLBACK, then the client works");
}

static void extended_protocol(PGconn *c, PGconn *direct)
{
    const char *five[] = {"5"};
    double t0 = itest_now();
    PGresult *r = PQexecParams(c, "SELECT pg_sleep($1::float8) AS t31_extended", 1, NULL, five,
                               NULL, NULL, 0);
    expect_timeout(r, "PQexecParams pg_sleep($1 = 5)", itest_now() - t0);
    PQclear(r);
    expect_backend_idle(direct, "t31_extended");
    const char *one[] = {"1"};
    PQclear(QUERYP(c, "SELECT $1::int", 1, one));
    itest_ok("extended protocol: the next PQexecParams succeeds");
}

static PGresult *next_result(PGconn *c, const char *what)
{
    PGresult *r = PQgetResult(c);
    CHECK(r != NULL, "%s: no result", what);
    return r;
}

static void expect_status(PGconn *c, ExecStatusType want, const char *what)
{
    PGresult *r = next_result(c, what);
    CHECK(PQresultStatus(r) == want, "%s: got %s (%s), want %s", what,
          PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r), PQresStatus(want));
    PQclear(r);
}

static void expect_end(PGconn *c, const char *what)
{
    PGresult *r = PQgetResult(c);
    CHECK(r == NULL, "%s: got %s, want the end of the query's results", what,
          PQresStatus(PQresultStatus(r)));
}

static void send_query(PGconn *c, const char *sql)
{
    CHECK(PQsendQueryParams(c, sql, 0, NULL, NULL, NULL, NULL, 0) == 1, "PQsendQueryParams %s: %s",
          sql, PQerrorMessage(c));
}

static void expect_value(PGconn *c, const char *want, const char *what)
{
    PGresult *r = next_result(c, what);
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1,
          "%s: got %s (%s), want one row", what, PQresStatus(PQresultStatus(r)),
          PQresultErrorMessage(r));
    CHECK_STR(PQgetvalue(r, 0, 0), want, what);
    PQclear(r);
    expect_end(c, what);
}

/* Pipeline: [sleep(5), SELECT 2] Sync [SELECT 3] Sync. */
static void pipeline_first_segment(PGconn *c, PGconn *direct)
{
    CHECK(PQenterPipelineMode(c) == 1, "PQenterPipelineMode");
    double t0 = itest_now();
    send_query(c, "SELECT pg_sleep(5) AS t31_pipe_a");
    send_query(c, "SELECT 2");
    CHECK(PQpipelineSync(c) == 1, "PQpipelineSync");
    send_query(c, "SELECT 3");
    CHECK(PQpipelineSync(c) == 1, "PQpipelineSync");
    PGresult *r = next_result(c, "pipeline sleep");
    expect_timeout(r, "pipeline: pg_sleep(5), first of its segment", itest_now() - t0);
    PQclear(r);
    expect_end(c, "pipeline sleep");
    expect_status(c, PGRES_PIPELINE_ABORTED, "pipeline SELECT 2 after the cancelled query");
    expect_end(c, "pipeline SELECT 2");
    expect_status(c, PGRES_PIPELINE_SYNC, "first Sync");
    expect_value(c, "3", "pipeline SELECT 3 in the next segment");
    expect_status(c, PGRES_PIPELINE_SYNC, "second Sync");
    CHECK(PQexitPipelineMode(c) == 1, "PQexitPipelineMode: %s", PQerrorMessage(c));
    itest_ok("pipeline: rest of the segment aborted, the next segment ran");
    expect_all_idle(direct);
    expect_one(c, "query after the pipeline");
}

/* Pipeline: [sleep(0.6)] Sync [sleep(5)] Sync: the second is timed from ~0.6 s. */
static void pipeline_second_segment(PGconn *c)
{
    CHECK(PQenterPipelineMode(c) == 1, "PQenterPipelineMode");
    double t0 = itest_now();
    send_query(c, "SELECT pg_sleep(0.6)::text AS t31_pipe_b");
    CHECK(PQpipelineSync(c) == 1, "PQpipelineSync");
    send_query(c, "SELECT pg_sleep(5) AS t31_pipe_c");
    CHECK(PQpipelineSync(c) == 1, "PQpipelineSync");
    expect_value(c, "", "pipeline pg_sleep(0.6)");
    double t1 = itest_now();
    expect_status(c, PGRES_PIPELINE_SYNC, "first Sync");
    PGresult *r = next_result(c, "pipeline second sleep");
    expect_timeout(r, "pipeline: pg_sleep(5) in the second segment", itest_now() - t1);
    PQclear(r);
    CHECK(itest_now() - t0 >= 1.5,
          "the second segment's query was timed from the pipeline's start");
    expect_end(c, "pipeline second sleep");
    expect_status(c, PGRES_PIPELINE_SYNC, "second Sync");
    CHECK(PQexitPipelineMode(c) == 1, "PQexitPipelineMode: %s", PQerrorMessage(c));
    expect_one(c, "query after the second pipeline");
    itest_ok("pipeline: each Sync segment has its own 1 s");
}

static void per_request_limits(PGconn *c)
{
    PQclear(QUERY(c, "SELECT pg_sleep(0.5)"));
    itest_ok("a 0.5 s query is not cancelled");
    EXEC(c, "BEGIN");
    for (int i = 0; i < 3; i++)
        PQclear(QUERY(c, "SELECT pg_sleep(0.6)"));
    EXEC(c, "COMMIT");
    itest_ok("a transaction of three 0.6 s statements commits (the limit is per query)");
}

int main(void)
{
    if (itest_direct()) {
        itest_note("skipped: query_timeout is warmpool's");
        return 0;
    }
    PGconn *direct = itest_connect_direct_db(__FILE__, __LINE__, db());
    PGconn *c = CONNECT(db());
    simple_protocol(c, direct);
    extended_protocol(c, direct);
    pipeline_first_segment(c, direct);
    pipeline_second_segment(c);
    per_request_limits(c);
    long long left = QUERY_INT(direct, "SELECT count(*) FROM pg_stat_activity WHERE state = "
                                       "'active' AND query LIKE '%pg_sleep(5)%' AND pid <> "
                                       "pg_backend_pid()");
    CHECK(left == 0, "%lld backends still run a pg_sleep(5)", left);
    itest_ok("no backend still runs a cancelled pg_sleep(5)");
    PQfinish(c);
    PQfinish(direct);
    return 0;
}
