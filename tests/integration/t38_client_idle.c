/*
 * t38_client_idle — client_idle_timeout (issue 3, "What to build"; run by
 * t38_client_idle.sh: private warmpool, transaction mode, client_idle_timeout = 1s,
 * database WP_DB; the `sess` database is the same in session mode).
 *
 *   - A client that idles is closed: it receives FATAL 57P05 naming client_idle_timeout
 *     (no sooner than 1 s, within 5 s), then EOF. The same in session mode, where the
 *     idle client holds its backend; that backend goes back to the pool.
 *   - Activity is not idleness: a client querying every 0.4 s for 2 s stays, and so
 *     does one whose single query runs 1.5 s; idleness counts from the answer, so a
 *     query right after that long one still succeeds.
 */
#include "itest.h"

struct notice {
    char sqlstate[6];
    char message[256];
};

static void keep_notice(void *arg, const PGresult *res)
{
    struct notice *n = arg;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(n->sqlstate, sizeof n->sqlstate, "%s", state ? state : "");
    snprintf(n->message, sizeof n->message, "%s", msg ? msg : "");
}

static double wait_for_close(PGconn *c)
{
    double t0 = itest_now();
    while (itest_now() - t0 < 5.0) {
        struct pollfd p = {PQsocket(c), POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int alive = PQconsumeInput(c);
        PQisBusy(c); /* parses what arrived: an ErrorResponse goes to the notice receiver */
        if (!alive)
            return itest_now() - t0;
    }
    FAIL("the idle client was not disconnected within 5 s");
}

static void idle_client_closed(const char *db, const char *what)
{
    struct notice fatal = {"", ""};
    PGconn *c = CONNECT(db);
    PQclear(QUERY(c, "SELECT 1"));
    PQsetNoticeReceiver(c, keep_notice, &fatal);
    double secs = wait_for_close(c);
    CHECK(strcmp(fatal.sqlstate, "57P05") == 0 && strstr(fatal.message, "client_idle_timeout"),
          "%s: got SQLSTATE \"%s\" \"%s\", want 57P05 naming client_idle_timeout", what,
          fatal.sqlstate, fatal.message);
    CHECK(secs >= 0.9, "%s: closed after %.2f s idle, before the 1 s limit", what, secs);
    itest_ok("%s: FATAL %s \"%s\" after %.2f s", what, fatal.sqlstate, fatal.message, secs);
    PQfinish(c);
}

int main(void)
{
    if (itest_direct()) {
        itest_note("skipped: client_idle_timeout is warmpool's");
        return 0;
    }
    idle_client_closed(WP_DB(), "idle client (transaction mode)");
    idle_client_closed(itest_env("T38_DB_SESSION", "sess"), "idle client (session mode)");
    PGconn *again = CONNECT(itest_env("T38_DB_SESSION", "sess"));
    PQclear(QUERY(again, "SELECT 1"));
    PQfinish(again);
    itest_ok("session mode: the closed client's backend serves the next client");

    PGconn *busy = CONNECT(WP_DB());
    for (int i = 0; i < 5; i++) {
        itest_sleep_ms(400);
        PQclear(QUERY(busy, "SELECT 1"));
    }
    itest_ok("a client querying every 0.4 s for 2 s stays connected");
    PQclear(QUERY(busy, "SELECT pg_sleep(1.5)"));
    PQclear(QUERY(busy, "SELECT 1"));
    itest_ok("a 1.5 s query is not idleness; the query right after it succeeds");
    PQfinish(busy);
    return 0;
}
