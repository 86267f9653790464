/*
 * t06_abandoned — issue 2, acceptance 6.
 *
 * A client (child process) on WP_DB_ONE (transaction mode, ONE backend) runs BEGIN and
 * INSERTs a marker row, then is killed with SIGKILL. Asserts:
 *   - the marker never becomes visible (checked directly and by the next client);
 *   - the next client — on that same single backend — is not in a transaction:
 *     PQtransactionStatus is IDLE after SELECT 1, the dead client's uncommitted row is
 *     invisible to it, it has no transaction id, and BEGIN raises no "already a
 *     transaction in progress" warning.
 * Variant: the client is killed while `SELECT pg_sleep(30)` runs inside its transaction.
 * The pool must recover within 5 s (the next client's SELECT 1 answers), and — through
 * the pooler — the abandoned pg_sleep must have been cancelled (no backend left running
 * it 5 s after the kill).
 */
#include "itest.h"

#include <signal.h>
#include <sys/wait.h>

static int warnings; /* notices seen by the next client */

static void count_notice(void *arg, const PGresult *res)
{
    (void)arg;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    fprintf(stdout, "notice: %s", PQresultErrorMessage(res));
    if (state && strcmp(state, "00000") != 0)
        warnings++;
}

static const char *one_db(void)
{
    return itest_env("WP_DB_ONE", "one");
}

/*
 * Child: BEGIN, INSERT marker, optionally start pg_sleep(30); report its backend pid on
 * the pipe, then wait to be killed.
 */
static pid_t spawn_victim(const char *marker, int sleep_query)
{
    int fds[2];
    if (pipe(fds) != 0)
        FAIL("pipe: %s", strerror(errno));
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        PGconn *c = CONNECT(one_db());
        char sql[256];
        EXEC(c, "BEGIN");
        snprintf(sql, sizeof sql, "INSERT INTO t06 (tag) VALUES ('%s')", marker);
        EXEC(c, sql);
        long long bpid = QUERY_INT(c, "SELECT pg_backend_pid()");
        if (sleep_query && !PQsendQuery(c, "SELECT pg_sleep(30) AS t06_sleep"))
            FAIL_CONN(c, "PQsendQuery");
        if (sleep_query)
            PQflush(c);
        dprintf(fds[1], "%lld\n", bpid);
        for (;;)
            pause();
    }
    close(fds[1]);
    char line[64] = "";
    ssize_t n = read(fds[0], line, sizeof line - 1);
    close(fds[0]);
    if (n <= 0) {
        int st;
        waitpid(pid, &st, 0);
        FAIL("the victim client failed before it was ready (status %d)", st);
    }
    return pid;
}

static void kill_victim(pid_t pid)
{
    int st;
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "victim exited with status %d", st);
}

static long long count_marker(PGconn *c, const char *marker)
{
    const char *p[1] = {marker};
    PGresult *r = QUERYP(c, "SELECT count(*) FROM t06 WHERE tag = $1", 1, p);
    long long n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

/* The next client of the one-backend pool must get a clean, idle backend. */
static void check_next_client(PGconn *direct, const char *marker)
{
    PGconn *c = CONNECT(one_db());
    PQsetNoticeReceiver(c, count_notice, NULL);
    warnings = 0;
    CHECK(QUERY_INT(c, "SELECT 1") == 1, "SELECT 1");
    CHECK(PQtransactionStatus(c) == PQTRANS_IDLE,
          "after SELECT 1 the next client is in transaction state %d, want PQTRANS_IDLE",
          (int)PQtransactionStatus(c));
    CHECK(count_marker(c, marker) == 0,
          "the next client sees the killed client's uncommitted row '%s': it was lent the "
          "backend still inside that transaction",
          marker);
    char *xid = QUERY_VALUE(c, "SELECT txid_current_if_assigned()::text");
    CHECK(xid == NULL,
          "the next client's first statements run in a transaction that already "
          "has xid %s",
          xid);
    EXEC(c, "BEGIN");
    CHECK(warnings == 0,
          "BEGIN on the next client raised %d warning(s) (already in a "
          "transaction?)",
          warnings);
    CHECK(PQtransactionStatus(c) == PQTRANS_INTRANS, "BEGIN did not open a transaction");
    EXEC(c, "COMMIT");
    PQfinish(c);
    CHECK(count_marker(direct, marker) == 0, "marker '%s' became visible (checked directly)",
          marker);
}

static long long sleeping_backends(PGconn *direct)
{
    return QUERY_INT(direct, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                             " AND query = 'SELECT pg_sleep(30) AS t06_sleep'");
}

int main(void)
{
    char sql[256];
    PGconn *direct = CONNECT_DIRECT();
    EXEC(direct, "DROP TABLE IF EXISTS t06");
    EXEC(direct, "CREATE TABLE t06 (id serial PRIMARY KEY, tag text NOT NULL)");
    snprintf(sql, sizeof sql, "ALTER TABLE t06 OWNER TO %s", WP_USER());
    EXEC(direct, sql);

    /* 1. killed while idle inside a transaction */
    pid_t victim = spawn_victim("t06-idle-in-tx", 0);
    CHECK(count_marker(direct, "t06-idle-in-tx") == 0, "uncommitted marker visible directly");
    kill_victim(victim);
    check_next_client(direct, "t06-idle-in-tx");
    itest_ok("client killed inside BEGIN/INSERT: row never visible, next client on the pool "
             "of one is idle, sees no uncommitted row, BEGIN without warning");

    /* 2. killed in the middle of a query inside a transaction */
    victim = spawn_victim("t06-mid-query", 1);
    double until = itest_now() + 10;
    while (sleeping_backends(direct) == 0) {
        CHECK(itest_now() < until, "the victim's pg_sleep(30) never showed up as active");
        itest_sleep_ms(20);
    }
    kill_victim(victim);
    double t0 = itest_now();
    PGconn *c = CONNECT(one_db());
    CHECK(QUERY_INT(c, "SELECT 1") == 1, "SELECT 1 after the kill");
    double recovered = itest_now() - t0;
    PQfinish(c);
    CHECK(recovered < 5.0, "the pool of one took %.1f s to serve the next client", recovered);
    itest_ok("client killed during pg_sleep(30): the next client was served %.2f s later",
             recovered);
    check_next_client(direct, "t06-mid-query");
    if (itest_direct()) {
        itest_note("direct mode: PostgreSQL itself does not cancel an orphaned pg_sleep");
    } else {
        while (sleeping_backends(direct) > 0) {
            CHECK(itest_now() - t0 < 5.0,
                  "5 s after the client was killed its pg_sleep(30) still runs on a backend: "
                  "the abandoned query was not cancelled");
            itest_sleep_ms(50);
        }
        itest_ok("the abandoned pg_sleep(30) was cancelled (%.2f s after the kill)",
                 itest_now() - t0);
    }
    itest_ok("marker rows of killed clients never became visible");
    PQfinish(direct);
    return 0;
}
