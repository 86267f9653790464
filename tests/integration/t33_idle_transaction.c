/*
 * t33_idle_transaction — issue 3, acceptance 3 (run by t33_idle_transaction.sh: private
 * warmpool, transaction mode, ONE backend (max_pool_size = 1),
 * idle_transaction_timeout = 1s, database WP_DB with table t33(id int)).
 *
 *   - Not idle is not timed out: a transaction whose statements keep coming every 0.4 s
 *     for 2 s commits, and so does one that runs a single 1.5 s statement.
 *   - A client that runs BEGIN; INSERT … and then idles is disconnected: it receives
 *     FATAL 25P03 naming idle_transaction_timeout (no sooner than 1 s, within 5 s)
 *     and then EOF. Its row is never visible (checked directly).
 *   - Its backend is rolled back and reused: the next client gets the same backend
 *     (same pg_backend_pid on a pool of one), outside any transaction (no xid,
 *     PostgreSQL shows it idle, not idle in transaction), and its own INSERT commits.
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

static long long count_rows(PGconn *direct, int id)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM t33 WHERE id = %d", id);
    return QUERY_INT(direct, sql);
}

static void busy_transactions_survive(PGconn *direct)
{
    PGconn *c = CONNECT(WP_DB());
    EXEC(c, "BEGIN");
    EXEC(c, "INSERT INTO t33 VALUES (1)");
    for (int i = 0; i < 5; i++) {
        itest_sleep_ms(400);
        PQclear(QUERY(c, "SELECT count(*) FROM t33"));
    }
    EXEC(c, "COMMIT");
    CHECK(count_rows(direct, 1) == 1, "the busy transaction's row is missing");
    itest_ok("a transaction with a statement every 0.4 s for 2 s commits");
    EXEC(c, "BEGIN");
    PQclear(QUERY(c, "SELECT pg_sleep(1.5)"));
    EXEC(c, "INSERT INTO t33 VALUES (2)");
    EXEC(c, "COMMIT");
    CHECK(count_rows(direct, 2) == 1, "the transaction with a 1.5 s statement lost its row");
    itest_ok("a transaction running one 1.5 s statement commits");
    PQfinish(c);
}

/* Wait (up to 5 s) for the server to close an idle connection; returns seconds. */
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
    FAIL("the idle client in a transaction was not disconnected within 5 s");
}

int main(void)
{
    if (itest_direct()) {
        itest_note("skipped: idle_transaction_timeout is warmpool's");
        return 0;
    }
    PGconn *direct = itest_connect_direct_db(__FILE__, __LINE__, WP_DB());
    busy_transactions_survive(direct);

    struct notice fatal = {"", ""};
    PGconn *idle = CONNECT(WP_DB());
    EXEC(idle, "BEGIN");
    EXEC(idle, "INSERT INTO t33 VALUES (3)");
    char *pid = QUERY_VALUE(idle, "SELECT pg_backend_pid()");
    PQsetNoticeReceiver(idle, keep_notice, &fatal);
    double secs = wait_for_close(idle);
    CHECK(strcmp(fatal.sqlstate, "25P03") == 0 && strstr(fatal.message, "idle_transaction_timeout"),
          "got SQLSTATE \"%s\" \"%s\", want 25P03 naming idle_transaction_timeout", fatal.sqlstate,
          fatal.message);
    CHECK(secs >= 0.9, "disconnected after %.2f s of idling, before the 1 s limit", secs);
    itest_ok("idle in transaction: FATAL %s \"%s\", closed after %.2f s", fatal.sqlstate,
             fatal.message, secs);
    PQfinish(idle);
    CHECK(count_rows(direct, 3) == 0, "the abandoned INSERT is visible");
    itest_ok("the abandoned INSERT is not visible");

    PGconn *next = CONNECT(WP_DB());
    char *next_pid = QUERY_VALUE(next, "SELECT pg_backend_pid()");
    CHECK(pid && next_pid && strcmp(pid, next_pid) == 0,
          "the next client got backend %s, want the reused %s", next_pid ? next_pid : "NULL",
          pid ? pid : "NULL");
    char *xid = QUERY_VALUE(next, "SELECT txid_current_if_assigned()");
    CHECK(xid == NULL, "the reused backend still has transaction id %s", xid);
    CHECK(count_rows(next, 3) == 0, "the next client sees the abandoned row");
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT state FROM pg_stat_activity WHERE pid = %s", pid);
    char *state = QUERY_VALUE(direct, sql);
    CHECK(state && strcmp(state, "idle") == 0, "backend %s is \"%s\", want idle", pid,
          state ? state : "NULL");
    itest_ok("the same backend (pid %s) serves the next client, rolled back and idle", pid);
    EXEC(next, "INSERT INTO t33 VALUES (4)");
    CHECK(count_rows(direct, 4) == 1, "the next client's INSERT did not commit");
    itest_ok("the next client's own INSERT commits");
    free(pid);
    free(next_pid);
    free(state);
    PQfinish(next);
    PQfinish(direct);
    return 0;
}
