/*
 * t03_session — issue 2, acceptance 3.
 *
 * Session mode through WP_DB_SESSION, a session pool of ONE backend, so consecutive
 * clients must share it. Each round a client changes its session (custom GUC, search_path,
 * a prepared statement, a temp table, LISTEN) and asserts the changes survive across
 * several of its transactions on the same backend; after it disconnects the next client
 * asserts it sees none of them (server_reset_query = DISCARD ALL ran) and, through the
 * pooler, that it really got the same backend (same pg_backend_pid), so the test cannot
 * pass just because the pooler opened a fresh connection.
 */
#include "itest.h"

static const char *session_db(void)
{
    return itest_env("WP_DB_SESSION", "wpsess");
}

/* Change the session and check that it sticks; returns the backend pid. */
static long long dirty_session(PGconn *c, int round)
{
    char sql[256], want[32];
    long long pid = QUERY_INT(c, "SELECT pg_backend_pid()");

    snprintf(want, sizeof want, "%d", 41 + round);
    snprintf(sql, sizeof sql, "SET myapp.x = '%s'", want);
    EXEC(c, sql);
    EXEC(c, "SET search_path = t03_schema, public");
    EXEC(c, "PREPARE t03_stmt AS SELECT 7");
    EXEC(c, "CREATE TEMP TABLE t03_tmp (x int)");
    EXEC(c, "LISTEN t03_chan");

    for (int tx = 0; tx < 3; tx++) {
        EXEC(c, "BEGIN");
        PGresult *r = QUERY(c, "SELECT current_setting('myapp.x'), current_setting('search_path'),"
                               " pg_backend_pid()");
        CHECK_STR(PQgetvalue(r, 0, 0), want, "myapp.x in a later transaction of the same client");
        CHECK_STR(PQgetvalue(r, 0, 1), "t03_schema, public", "search_path of the same client");
        CHECK(atoll(PQgetvalue(r, 0, 2)) == pid,
              "session mode moved the client from backend %lld to %s", pid, PQgetvalue(r, 0, 2));
        PQclear(r);
        EXEC(c, "COMMIT");
        CHECK(QUERY_INT(c, "EXECUTE t03_stmt") == 7, "prepared statement lost");
        CHECK(QUERY_INT(c, "SELECT count(*) FROM t03_tmp") == 0, "temp table lost");
    }
    itest_ok("round %d: SET myapp.x = '%s', search_path, PREPARE, TEMP TABLE, LISTEN survive "
             "3 transactions on backend %lld",
             round, want, pid);
    return pid;
}

/* The next client: none of the previous client's session state may be visible. */
static void check_clean(PGconn *c, int round, long long prev_pid)
{
    long long pid = QUERY_INT(c, "SELECT pg_backend_pid()");
    if (!itest_direct())
        CHECK(pid == prev_pid,
              "round %d: the next client got backend %lld, not %lld: a session pool of 1 should "
              "reuse the backend (reset instead of reconnect), so the reset is not exercised",
              round, pid, prev_pid);

    char *x = QUERY_VALUE(c, "SELECT current_setting('myapp.x', true)");
    CHECK(x == NULL || x[0] == '\0', "round %d: the next client sees myapp.x = '%s'", round, x);
    free(x);
    char *sp = QUERY_VALUE(c, "SELECT current_setting('search_path')");
    CHECK_STR(sp, "\"$user\", public", "search_path seen by the next client");
    free(sp);
    CHECK(QUERY_INT(c, "SELECT count(*) FROM pg_prepared_statements") == 0,
          "round %d: the next client sees the previous client's prepared statements", round);
    char *tmp = QUERY_VALUE(c, "SELECT to_regclass('t03_tmp')::text");
    CHECK(tmp == NULL, "round %d: the next client sees the previous client's temp table %s", round,
          tmp);
    CHECK(QUERY_INT(c, "SELECT count(*) FROM pg_listening_channels()") == 0,
          "round %d: the next client inherited LISTEN", round);
    itest_ok("round %d: the next client %s sees none of it", round,
             itest_direct() ? "(direct: another backend)" : "on the same backend");
}

int main(void)
{
    long long prev = -1;
    for (int round = 1; round <= 3; round++) {
        PGconn *c = CONNECT(session_db());
        if (prev >= 0)
            check_clean(c, round - 1, prev);
        prev = dirty_session(c, round);
        PQfinish(c);
    }
    PGconn *c = CONNECT(session_db());
    check_clean(c, 3, prev);
    PQfinish(c);
    return 0;
}
