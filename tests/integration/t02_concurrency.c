/*
 * t02_concurrency — issue 2, acceptance 2.
 *
 * 200 concurrent libpq clients (one thread each, all connected before any starts)
 * through the transaction-mode pool WP_DB_LOAD each run 50 transactions that update
 * their own row and read it back inside the same transaction. Asserts:
 *   - every read-back inside a transaction sees that transaction's own update (same
 *     value and same transaction id as the UPDATE ... RETURNING), so statements of one
 *     transaction never land on different backends;
 *   - afterwards every row is exactly 50 (checked directly on PostgreSQL);
 *   - a direct connection sampling pg_stat_activity every ~20 ms never sees more than
 *     WP_MAX_BACKENDS backends for that database and user (pooler only).
 * Even-numbered clients use the simple protocol, odd ones the extended protocol.
 */
#include "itest.h"

#include <pthread.h>

#define NCLIENTS 200
#define NTX 50

static pthread_barrier_t start_line;
static volatile int workers_done;

struct worker {
    int id;
    PGconn *conn;
};

/* One transaction: UPDATE ... RETURNING, then SELECT, both must agree with `want`. */
static void run_tx(struct worker *w, int want)
{
    char sql[256], id[16];
    const char *params[1] = {id};
    PGresult *upd, *sel;
    int ext = w->id % 2;

    snprintf(id, sizeof id, "%d", w->id);
    PQclear(itest_exec(__FILE__, __LINE__, w->conn, "BEGIN", PGRES_COMMAND_OK));
    if (ext) {
        upd = QUERYP(w->conn, "UPDATE t02 SET v = v + 1 WHERE id = $1 RETURNING v, txid_current()",
                     1, params);
        sel = QUERYP(w->conn, "SELECT v, txid_current() FROM t02 WHERE id = $1", 1, params);
    } else {
        snprintf(sql, sizeof sql,
                 "UPDATE t02 SET v = v + 1 WHERE id = %d RETURNING v, txid_current()", w->id);
        upd = QUERY(w->conn, sql);
        snprintf(sql, sizeof sql, "SELECT v, txid_current() FROM t02 WHERE id = %d", w->id);
        sel = QUERY(w->conn, sql);
    }
    if (PQntuples(upd) != 1 || PQntuples(sel) != 1)
        FAIL("client %d: UPDATE/SELECT returned %d/%d rows, want 1/1", w->id, PQntuples(upd),
             PQntuples(sel));
    if (atoi(PQgetvalue(upd, 0, 0)) != want || atoi(PQgetvalue(sel, 0, 0)) != want)
        FAIL("client %d transaction %d: UPDATE returned v=%s, read-back v=%s, want %d", w->id, want,
             PQgetvalue(upd, 0, 0), PQgetvalue(sel, 0, 0), want);
    if (strcmp(PQgetvalue(upd, 0, 1), PQgetvalue(sel, 0, 1)) != 0)
        FAIL("client %d transaction %d: UPDATE ran in xid %s but the read-back in xid %s "
             "(statements of one transaction went to different backends)",
             w->id, want, PQgetvalue(upd, 0, 1), PQgetvalue(sel, 0, 1));
    PQclear(upd);
    PQclear(sel);
    PQclear(itest_exec(__FILE__, __LINE__, w->conn, "COMMIT", PGRES_COMMAND_OK));
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char app[64];
    snprintf(app, sizeof app, "application_name=t02-%d", w->id);
    w->conn = CONNECT_X(itest_env("WP_DB_LOAD", "wpload"), app);
    pthread_barrier_wait(&start_line);
    for (int i = 1; i <= NTX; i++)
        run_tx(w, i);
    PQfinish(w->conn);
    return NULL;
}

struct sample {
    int max, samples;
};

/* Count backends of the load database and user every ~20 ms until the workers end. */
static void *sampler_main(void *arg)
{
    struct sample *s = arg;
    PGconn *direct = CONNECT_DIRECT();
    const char *params[2] = {itest_env("PG_DB_LOAD", "wpload"), WP_USER()};
    do {
        PGresult *r = QUERYP(direct,
                             "SELECT count(*) FROM pg_stat_activity "
                             "WHERE datname = $1 AND usename = $2",
                             2, params);
        int n = atoi(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (n > s->max)
            s->max = n;
        s->samples++;
        itest_sleep_ms(20);
    } while (!__atomic_load_n(&workers_done, __ATOMIC_ACQUIRE));
    PQfinish(direct);
    return NULL;
}

int main(void)
{
    static struct worker workers[NCLIENTS];
    pthread_t threads[NCLIENTS], sampler;
    pthread_attr_t attr;
    struct sample s = {0, 0};
    int limit = itest_env_int("WP_MAX_BACKENDS", 0);
    char sql[256];

    /* Setup goes straight to PostgreSQL so it does not depend on the pooler. */
    PGconn *direct = itest_connect_direct_db(__FILE__, __LINE__, itest_env("PG_DB_LOAD", "wpload"));
    EXEC(direct, "DROP TABLE IF EXISTS t02");
    EXEC(direct, "CREATE TABLE t02 (id int PRIMARY KEY, v int NOT NULL)");
    snprintf(sql, sizeof sql, "INSERT INTO t02 SELECT g, 0 FROM generate_series(0, %d) g",
             NCLIENTS - 1);
    EXEC(direct, sql);
    snprintf(sql, sizeof sql, "ALTER TABLE t02 OWNER TO %s", WP_USER());
    EXEC(direct, sql);

    pthread_barrier_init(&start_line, NULL, NCLIENTS + 1);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 512 * 1024);
    pthread_create(&sampler, NULL, sampler_main, &s);
    double t0 = itest_now();
    for (int i = 0; i < NCLIENTS; i++) {
        workers[i].id = i;
        if (pthread_create(&threads[i], &attr, worker_main, &workers[i]) != 0)
            FAIL("pthread_create %d: %s", i, strerror(errno));
    }
    pthread_barrier_wait(&start_line);
    itest_ok("%d clients connected at the same time (%.1f s)", NCLIENTS, itest_now() - t0);
    t0 = itest_now();
    for (int i = 0; i < NCLIENTS; i++)
        pthread_join(threads[i], NULL);
    double secs = itest_now() - t0;
    __atomic_store_n(&workers_done, 1, __ATOMIC_RELEASE);
    pthread_join(sampler, NULL);
    itest_ok("%d transactions, each read back its own update in the same transaction "
             "(%.1f s, %.0f tx/s)",
             NCLIENTS * NTX, secs, NCLIENTS * NTX / secs);

    PGresult *r = QUERY(direct, "SELECT id, v FROM t02 WHERE v <> 50 ORDER BY id");
    if (PQntuples(r) > 0)
        FAIL("%d rows are not 50 after the run, first: id %s = %s", PQntuples(r),
             PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
    PQclear(r);
    snprintf(sql, sizeof sql, "SELECT count(*) * 100000 + sum(v) FROM t02");
    long long got = QUERY_INT(direct, sql), want = NCLIENTS * 100000LL + NCLIENTS * NTX;
    CHECK(got == want, "rows*100000+sum(v) = %lld, want %lld", got, want);
    itest_ok("all %d rows are exactly %d (checked directly)", NCLIENTS, NTX);

    CHECK(s.samples > 0 && s.max > 0, "sampler saw no backends (%d samples)", s.samples);
    if (limit > 0) {
        CHECK(s.max <= limit, "PostgreSQL saw %d backends for %s/%s, pool limit is %d", s.max,
              itest_env("PG_DB_LOAD", "wpload"), WP_USER(), limit);
        itest_ok("at most %d backends (limit %d) in %d samples of pg_stat_activity", s.max, limit,
                 s.samples);
    } else {
        itest_note("direct mode: %d backends at most in %d samples (no limit checked)", s.max,
                   s.samples);
    }
    PQfinish(direct);
    return 0;
}
