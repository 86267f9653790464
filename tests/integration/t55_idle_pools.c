/*
 * t55_idle_pools — pools made at a client's first login are freed once nobody uses
 * them (run by t55_idle_pools.sh: private warmpool, `*` entry mapping every name to
 * database wptest, server_idle_timeout = 1s, WP_USER in admin_users).
 *
 *   - 30 clients, each to its own database name t47_NN through the `*` entry: while
 *     they are connected, SHOW POOLS lists 30 t47_ pools.
 *   - After they disconnect, the pools' backends go after server_idle_timeout and the
 *     pools after as long again: SHOW POOLS lists no t47_ pool (polled for up to 30 s;
 *     they used to stay for the life of the process).
 *   - A client of one of those names then logs in again and is served (a new pool).
 */
#include "itest.h"

#define NDBS 30

/* Pools SHOW POOLS lists whose database name starts with t47_. */
static int count_t47_pools(PGconn *admin)
{
    PGresult *r = itest_exec(__FILE__, __LINE__, admin, "SHOW POOLS", PGRES_TUPLES_OK);
    int col = PQfnumber(r, "database"), n = 0;
    CHECK(col >= 0, "SHOW POOLS has no database column");
    for (int i = 0; i < PQntuples(r); i++)
        n += strncmp(PQgetvalue(r, i, col), "t47_", 4) == 0;
    PQclear(r);
    return n;
}

static void serve_one(PGconn *conn, const char *db)
{
    char *got = itest_query_value(__FILE__, __LINE__, conn, "SELECT current_database()");
    CHECK(got && strcmp(got, "wptest") == 0, "%s: current_database() = %s, want wptest", db,
          got ? got : "NULL");
    free(got);
}

int main(void)
{
    PGconn *admin = CONNECT("warmpool");
    CHECK(count_t47_pools(admin) == 0, "t47_ pools before any client");

    PGconn *clients[NDBS];
    char db[32];
    for (int i = 0; i < NDBS; i++) {
        snprintf(db, sizeof db, "t47_%02d", i);
        clients[i] = CONNECT(db);
        serve_one(clients[i], db);
    }
    int n = count_t47_pools(admin);
    CHECK(n == NDBS, "SHOW POOLS lists %d t47_ pools with %d clients connected", n, NDBS);
    itest_ok("%d clients through the * entry: %d pools", NDBS, n);

    for (int i = 0; i < NDBS; i++)
        PQfinish(clients[i]);
    double start = itest_now(), limit = 30 * itest_slow();
    while ((n = count_t47_pools(admin)) > 0 && itest_now() - start < limit)
        itest_sleep_ms(200);
    CHECK(n == 0, "%d t47_ pools still listed %.0f s after their clients left", n, limit);
    itest_ok("every t47_ pool freed %.1f s after its client left", itest_now() - start);

    PGconn *again = CONNECT("t47_07");
    serve_one(again, "t47_07");
    CHECK(count_t47_pools(admin) == 1, "a new login made its pool again");
    itest_ok("a client of a freed pool's name logs in again and is served");
    PQfinish(again);
    PQfinish(admin);
    return 0;
}
