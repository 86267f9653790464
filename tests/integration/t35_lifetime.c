/*
 * t35_lifetime — issue 3, acceptance 5 (run by t35_lifetime.sh: private warmpool,
 * transaction mode, max_pool_size = 10, server_lifetime = 2s, database WP_DB).
 *
 * Ten clients (threads) run `SELECT pg_backend_pid()` back to back for 10 s. Asserts:
 * no client error at all; backends were replaced (more than twice as many distinct
 * backend pids as the pool holds at once, and none of the first backends still in use
 * in the last 3 s of the run); the first backends were not all replaced at once (their
 * last sightings are spread out); a direct sampler never sees more than 10 backends.
 * Under valgrind a backend login takes seconds while ten clients keep the pooler busy,
 * so a 20 s run sees only a few backends: it checks that the first one was retired and
 * replaced, not the count or the spread.
 */
#include "itest.h"

#include <pthread.h>
#include <stdatomic.h>

#define CLIENTS 10
/* Under valgrind the run is twice as long (see replaced_under_valgrind). */
#define SECONDS (itest_valgrind() ? 20.0 : 10.0)
#define MAX_SEEN 4096

struct sighting {
    long long pid;
    double first, last;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct sighting seen[MAX_SEEN];
static int nseen, errors;
static char first_error[512];
static double start;
static atomic_int stop_sampler; /* read by another thread */

static void note_pid(long long pid, double t)
{
    pthread_mutex_lock(&lock);
    int i = 0;
    while (i < nseen && seen[i].pid != pid)
        i++;
    if (i == nseen && nseen < MAX_SEEN)
        seen[nseen++] = (struct sighting){pid, t, t};
    else if (i < nseen)
        seen[i].last = t;
    pthread_mutex_unlock(&lock);
}

static void note_error(const char *msg)
{
    pthread_mutex_lock(&lock);
    if (errors++ == 0)
        snprintf(first_error, sizeof first_error, "%s", msg);
    pthread_mutex_unlock(&lock);
}

static void *client_main(void *arg)
{
    (void)arg;
    PGconn *c = CONNECT(WP_DB());
    while (itest_now() - start < SECONDS) {
        PGresult *r = PQexec(c, "SELECT pg_backend_pid()");
        if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            note_pid(atoll(PQgetvalue(r, 0, 0)), itest_now() - start);
        else
            note_error(r ? PQresultErrorMessage(r) : PQerrorMessage(c));
        PQclear(r);
        if (PQstatus(c) != CONNECTION_OK)
            break;
        itest_sleep_ms(5);
    }
    PQfinish(c);
    return NULL;
}

static void *sampler_main(void *arg)
{
    long long *most = arg;
    PGconn *direct = itest_connect_direct_db(__FILE__, __LINE__, "postgres");
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND usename = '%s'",
             WP_DB(), WP_USER());
    while (!stop_sampler) {
        long long n = QUERY_INT(direct, sql);
        if (n > *most)
            *most = n;
        itest_sleep_ms(20);
    }
    PQfinish(direct);
    return NULL;
}

static void replaced_under_valgrind(void)
{
    itest_note("valgrind: backends open too slowly for the count (> %d) and spread checks",
               2 * CLIENTS);
    CHECK(nseen >= 2 && seen[0].last < SECONDS - 3.0,
          "%d distinct backends; the first (opened at %.2f s) was last used at %.2f s of a "
          "%.0f s run with server_lifetime = 2s",
          nseen, seen[0].first, seen[0].last, SECONDS);
    itest_ok("the first backend was retired at %.2f s and replaced (%d distinct backends)",
             seen[0].last, nseen);
}

/* Backends were retired and replaced, the first ones not all at once. */
static void check_replacements(void)
{
    if (itest_valgrind()) {
        replaced_under_valgrind();
        return;
    }
    CHECK(nseen > 2 * CLIENTS, "only %d distinct backends in %.0f s with a 2 s lifetime", nseen,
          SECONDS);
    /* The first backends (in order of first sighting) were opened together. */
    int first_batch = nseen < CLIENTS ? nseen : CLIENTS;
    double lo = SECONDS, hi = 0;
    for (int i = 0; i < first_batch; i++) {
        CHECK(seen[i].last < SECONDS - 3.0,
              "backend %lld (opened at %.2f s) was still in use at "
              "%.2f s of a %.0f s run with server_lifetime = 2s",
              seen[i].pid, seen[i].first, seen[i].last, SECONDS);
        lo = seen[i].last < lo ? seen[i].last : lo;
        hi = seen[i].last > hi ? seen[i].last : hi;
    }
    itest_ok("%d distinct backends; each of the %d first was replaced", nseen, first_batch);
    CHECK(first_batch < 5 || hi - lo >= 0.3,
          "the %d first backends were all retired within %.2f s of each other", first_batch,
          hi - lo);
    itest_ok("the %d first backends were retired over %.2f s, not all at once", first_batch,
             hi - lo);
}

int main(void)
{
    if (itest_direct()) {
        itest_note("skipped: server_lifetime is warmpool's");
        return 0;
    }
    pthread_t clients[CLIENTS], sampler;
    long long most = 0;
    start = itest_now();
    pthread_create(&sampler, NULL, sampler_main, &most);
    for (int i = 0; i < CLIENTS; i++)
        pthread_create(&clients[i], NULL, client_main, NULL);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(clients[i], NULL);
    stop_sampler = 1;
    pthread_join(sampler, NULL);

    CHECK(errors == 0, "%d client errors, the first: %s", errors, first_error);
    itest_ok("10 clients for %.0f s: 0 errors", SECONDS);
    check_replacements();
    CHECK(most <= 10, "PostgreSQL showed %lld backends of the pool, max_pool_size is 10", most);
    itest_ok("never more than %lld backends of the pool (max 10)", most);
    return 0;
}
