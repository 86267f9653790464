/*
 * test_stats — unit tests for pooler/stats.c: histogram bucketing and quantiles, the
 * top-statements table, and the hooks the relay calls (counts, transactions, errors,
 * the N+1 detector, the slow-query decision), driven with synthetic pools, clients
 * and clock values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "warmpool/client.h"
#include "warmpool/fingerprint.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/stats.h"

static struct wp_config cfg;
static struct wp_pool pool;
static struct wp_client_stats cs;

static int setup(void **state)
{
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.stats_top_statements = 100;
    cfg.nplus1_threshold = 10;
    cfg.nplus1_window_ms = 1000;
    cfg.server_check_delay = 30000;
    memset(&wp_rt, 0, sizeof wp_rt);
    wp_rt.cfg = &cfg;
    list_init(&wp_rt.pools);
    list_init(&wp_rt.clients);
    memset(&pool, 0, sizeof pool);
    pool.dbname = "appdb";
    pool.user = "app";
    list_init(&pool.idle);
    list_init(&pool.active);
    list_init(&pool.busy);
    list_init(&pool.waiting);
    list_init(&pool.welcoming);
    list_push_tail(&wp_rt.pools, &pool.node);
    memset(&cs, 0, sizeof cs);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stats_client_closed(&pool, NULL, &cs);
    stats_pool_free(&pool);
    return 0;
}

/* One request: text, server time, ReadyForQuery status; clock in µs. */
static int64_t clock_us = 1000000;

static void run(const char *sql, int64_t server_us, char tx_status)
{
    stats_query_start(&pool, &cs, sql, sql ? strlen(sql) : 0, 0, clock_us);
    clock_us += server_us;
    stats_query_end(&pool, NULL, &cs, tx_status, clock_us);
    clock_us += 10;
}

static const struct stats_top_entry *entry_for(const char *sql)
{
    return top_find(&pool.stats->top, fingerprint_hash(sql, strlen(sql)));
}

/* ---------------------------------------------------------------- histograms */

static void test_hist_buckets(void **state)
{
    (void)state;
    assert_int_equal(hist_bucket_index(-5), 0);
    assert_int_equal(hist_bucket_index(0), 0);
    assert_int_equal(hist_bucket_index(1), 0);
    assert_int_equal(hist_bucket_index(2), 1);
    assert_int_equal(hist_bucket_index(3), 2);
    assert_int_equal(hist_bucket_index(4), 2);
    assert_int_equal(hist_bucket_index(5), 3);
    assert_int_equal(hist_bucket_index(1024), 10);
    assert_int_equal(hist_bucket_index(1025), 11);
    assert_int_equal(hist_bucket_index((int64_t)1 << 27), 27);
    assert_int_equal(hist_bucket_index(((int64_t)1 << 27) + 1), STATS_HIST_FINITE);
    assert_int_equal(hist_bucket_index(INT64_MAX), STATS_HIST_FINITE);
    assert_int_equal(hist_bucket_bound(0), 1);
    assert_int_equal(hist_bucket_bound(10), 1024);
    assert_int_equal(hist_bucket_bound(27), 134217728);
    assert_int_equal(hist_bucket_bound(STATS_HIST_FINITE), -1);

    struct stats_hist h = {0};
    hist_add(&h, 3);
    hist_add(&h, 4);
    hist_add(&h, 1000);
    hist_add(&h, -7); /* clock went backwards: counted as 0 */
    assert_int_equal(h.count, 4);
    assert_int_equal(h.sum_us, 1007);
    assert_int_equal(h.max_us, 1000);
    assert_int_equal(h.buckets[0], 1);
    assert_int_equal(h.buckets[2], 2);
    assert_int_equal(h.buckets[10], 1);
}

static void test_hist_quantiles_uniform(void **state)
{
    (void)state;
    struct stats_hist h = {0};
    for (int v = 1; v <= 100; v++)
        hist_add(&h, v);
    /* Uniform data: linear interpolation inside power-of-two buckets is exact. */
    assert_int_equal(hist_quantile(&h, 0.50), 50);
    assert_int_equal(hist_quantile(&h, 0.95), 95);
    assert_int_equal(hist_quantile(&h, 0.99), 99);
    assert_int_equal(hist_quantile(&h, 1.0), 100);
    assert_int_equal(hist_quantile(&h, 2.0), 100); /* clamped */
    assert_int_equal(hist_quantile(&h, 0.25), 25);

    struct stats_hist empty = {0};
    assert_int_equal(hist_quantile(&empty, 0.5), 0);
}

static void test_hist_quantiles_skewed(void **state)
{
    (void)state;
    struct stats_hist h = {0};
    for (int i = 0; i < 90; i++)
        hist_add(&h, 100); /* bucket (64, 128] */
    for (int i = 0; i < 10; i++)
        hist_add(&h, 10000); /* bucket (8192, 16384], capped at the max seen */
    /* rank 50 of 90 in (64,128]: 64 + 64*50/90 = 99.56 */
    assert_int_equal(hist_quantile(&h, 0.50), 100);
    /* rank 5 of 10 in (8192, 10000]: 8192 + 1808*0.5 */
    assert_int_equal(hist_quantile(&h, 0.95), 9096);
    assert_int_equal(hist_quantile(&h, 0.99), 9819);

    /* Values beyond the last finite bucket: +Inf bucket interpolates to the max. */
    struct stats_hist slow = {0};
    hist_add(&slow, 200000000);
    hist_add(&slow, 300000000);
    assert_int_equal(slow.buckets[STATS_HIST_FINITE], 2);
    assert_int_equal(hist_quantile(&slow, 1.0), 300000000);
    int64_t p50 = hist_quantile(&slow, 0.5);
    assert_true(p50 > 134217728 && p50 <= 300000000);
}

/* ---------------------------------------------------------------- top statements */

static void check_index(const struct stats_top *t)
{
    for (int i = 0; i < t->n; i++)
        assert_ptr_equal(top_find(t, t->entries[i].fp), &t->entries[i]);
}

static void test_top_basic(void **state)
{
    (void)state;
    struct stats_top t;
    assert_int_equal(top_init(&t, 4), 0);
    struct stats_top_entry *a = top_add(&t, 11, "SELECT ?");
    assert_non_null(a);
    assert_string_equal(a->text, "SELECT ?");
    assert_ptr_equal(top_add(&t, 11, "other text"), a); /* existing: text kept */
    assert_string_equal(a->text, "SELECT ?");
    assert_null(top_find(&t, 12));
    assert_null(top_add(&t, 0, "fingerprint 0 is never stored"));
    a->total_us = 50;
    top_add(&t, 12, NULL)->total_us = 10;
    top_add(&t, 13, "c")->total_us = 30;
    assert_int_equal(t.n, 3);
    assert_string_equal(top_find(&t, 12)->text, "");
    const struct stats_top_entry *order[4];
    assert_int_equal(top_sorted(&t, order, 4), 3);
    assert_int_equal(order[0]->fp, 11);
    assert_int_equal(order[1]->fp, 13);
    assert_int_equal(order[2]->fp, 12);
    assert_int_equal(top_sorted(&t, order, 2), 2);
    check_index(&t);
    top_free(&t);

    struct stats_top off;
    assert_int_equal(top_init(&off, 0), 0);
    assert_null(top_add(&off, 5, "x"));
    top_free(&off);
}

static void test_top_eviction_keeps_expensive(void **state)
{
    (void)state;
    struct stats_top t;
    assert_int_equal(top_init(&t, 50), 0);
    /* Ten expensive statements, then a flood of cheap one-offs. */
    for (uint64_t fp = 1; fp <= 10; fp++) {
        struct stats_top_entry *e = top_add(&t, fp, "expensive");
        e->calls = 100;
        e->total_us = 1000000;
    }
    for (uint64_t fp = 1000; fp < 21000; fp++) {
        struct stats_top_entry *e = top_add(&t, fp * 2654435761u, "cheap");
        assert_non_null(e);
        e->calls = 1;
        e->total_us = 1;
    }
    assert_int_equal(t.n, 50);
    assert_true(t.evictions >= 20000 - 40);
    for (uint64_t fp = 1; fp <= 10; fp++)
        assert_non_null(top_find(&t, fp));
    check_index(&t);
    /* Every slot is reachable and nothing evicted is. */
    int found = 0;
    for (uint64_t fp = 1000; fp < 21000; fp++)
        found += top_find(&t, fp * 2654435761u) != NULL;
    assert_int_equal(found, 40);
    top_free(&t);
}

static void test_top_resize(void **state)
{
    (void)state;
    struct stats_top t;
    assert_int_equal(top_init(&t, 8), 0);
    for (uint64_t fp = 1; fp <= 8; fp++)
        top_add(&t, fp, "q")->total_us = (int64_t)fp * 10;
    assert_int_equal(top_resize(&t, 3), 0);
    assert_int_equal(t.cap, 3);
    assert_int_equal(t.n, 3);
    for (uint64_t fp = 6; fp <= 8; fp++)
        assert_non_null(top_find(&t, fp));
    assert_null(top_find(&t, 5));
    check_index(&t);
    assert_int_equal(top_resize(&t, 100), 0);
    assert_int_equal(t.n, 3);
    assert_non_null(top_add(&t, 99, "new"));
    check_index(&t);
    assert_int_equal(top_resize(&t, 0), 0);
    assert_int_equal(t.n, 0);
    assert_null(top_find(&t, 8));
    top_free(&t);
}

/* ---------------------------------------------------------------- hooks */

static void test_query_counts(void **state)
{
    (void)state;
    run("SELECT * FROM users WHERE id = 1", 500, 'I');
    run("select * from users where id = 2", 1500, 'I');
    run("SELECT now()", 100, 'I');
    struct wp_pool_stats *ps = pool.stats;
    assert_non_null(ps);
    assert_int_equal(ps->queries, 3);
    assert_int_equal(ps->xacts, 3); /* autocommit statements are transactions */
    assert_int_equal(ps->query_us.count, 3);
    assert_int_equal(ps->query_us.sum_us, 2100);
    assert_int_equal(ps->query_us.max_us, 1500);
    const struct stats_top_entry *e = entry_for("SELECT * FROM users WHERE id = 9");
    assert_non_null(e);
    assert_int_equal(e->calls, 2);
    assert_int_equal(e->total_us, 2000);
    assert_int_equal(e->max_us, 1500);
    assert_string_equal(e->text, "SELECT * FROM users WHERE id = ?");
    assert_int_equal(ps->top.n, 2);
    /* No text: counted, but not in the table. */
    run(NULL, 100, 'I');
    assert_int_equal(ps->queries, 4);
    assert_int_equal(ps->top.n, 2);
}

static void test_transactions(void **state)
{
    (void)state;
    int64_t begin = clock_us;
    run("BEGIN", 10, 'T');
    run("UPDATE a SET x = x + 1 WHERE id = 3", 100, 'T');
    run("SELECT x FROM a WHERE id = 3", 100, 'T');
    run("COMMIT", 50, 'I');
    int64_t end = clock_us - 10;
    struct wp_pool_stats *ps = pool.stats;
    assert_int_equal(ps->queries, 4);
    assert_int_equal(ps->xacts, 1);
    assert_int_equal(ps->xact_us.count, 1);
    assert_int_equal(ps->xact_us.sum_us, end - begin);
    /* A failed transaction ends at the ReadyForQuery 'I' after ROLLBACK. */
    run("BEGIN", 10, 'T');
    stats_query_start(&pool, &cs, "SELECT 1/0", 10, 0, clock_us);
    stats_query_error(&pool, &cs, "22012");
    stats_query_error(&pool, &cs, "XX000"); /* only the first error counts for the query */
    stats_query_end(&pool, NULL, &cs, 'E', clock_us + 20);
    clock_us += 30;
    run("ROLLBACK", 10, 'I');
    assert_int_equal(ps->xacts, 2);
    assert_int_equal(ps->query_errors, 1);
    assert_int_equal(ps->nerror_classes, 2);
    assert_memory_equal(ps->error_classes[0].code, "22", 3);
    assert_int_equal(ps->error_classes[0].count, 1);
    assert_memory_equal(ps->error_classes[1].code, "XX", 3);
    assert_int_equal(entry_for("SELECT 2/3")->errors, 1);
    /* A missing SQLSTATE still counts. */
    stats_query_error(&pool, NULL, NULL);
    assert_memory_equal(ps->error_classes[2].code, "??", 3);
}

static void test_pipelined_and_waits(void **state)
{
    (void)state;
    /* Two Syncs in flight: the second start is ignored, both ends count. */
    stats_query_start(&pool, &cs, "SELECT 1", 8, 0, 100);
    stats_query_start(&pool, &cs, "SELECT 2", 8, 0, 150);
    stats_query_end(&pool, NULL, &cs, 'I', 300);
    stats_query_end(&pool, NULL, &cs, 'I', 400);
    struct wp_pool_stats *ps = pool.stats;
    assert_int_equal(ps->queries, 2);
    assert_int_equal(ps->query_us.sum_us, 200);
    assert_int_equal(entry_for("SELECT 3")->calls, 1);

    stats_wait_done(&pool, &cs, 0);
    stats_wait_done(&pool, &cs, 250000);
    stats_wait_done(&pool, NULL, 450000);
    assert_int_equal(ps->wait_us.count, 3);
    assert_int_equal(ps->wait_us.max_us, 450000);
    assert_int_equal(cs.wait_us, 250000);
    /* A known fingerprint (prepared statement) needs no text. */
    uint64_t fp = fingerprint_hash("SELECT 42", 9);
    stats_query_start(&pool, &cs, NULL, 0, fp, 1000);
    stats_query_end(&pool, NULL, &cs, 'I', 1100);
    assert_int_equal(top_find(&ps->top, fp)->calls, 2);
    assert_int_equal(cs.wait_us, 0); /* consumed by the query */
}

static void test_nplus1_in_transaction(void **state)
{
    (void)state;
    run("BEGIN", 10, 'T');
    for (int i = 0; i < 50; i++)
        run("SELECT * FROM items WHERE order_id = $1", 100, 'T');
    struct wp_pool_stats *ps = pool.stats;
    assert_int_equal(ps->nplus1_bursts, 0); /* reported when the transaction ends */
    run("COMMIT", 10, 'I');
    assert_int_equal(ps->nplus1_bursts, 1);
    assert_int_equal(ps->last_nplus1.count, 50);
    assert_int_equal(ps->last_nplus1.total_us, 5000);
    const struct stats_top_entry *e = entry_for("SELECT * FROM items WHERE order_id = $1");
    assert_int_equal(ps->last_nplus1.fp, e->fp);
    assert_int_equal(e->nplus1, 1);
    assert_int_equal(e->calls, 50);

    /* Fifty different statements in one transaction are no N+1. */
    run("BEGIN", 10, 'T');
    char sql[64];
    for (int i = 0; i < 50; i++) {
        snprintf(sql, sizeof sql, "SELECT * FROM table_%d", i);
        run(sql, 100, 'T');
    }
    run("COMMIT", 10, 'I');
    assert_int_equal(ps->nplus1_bursts, 1);

    /* Two interleaved repeated statements are two bursts. */
    run("BEGIN", 10, 'T');
    for (int i = 0; i < 12; i++) {
        run("SELECT * FROM a WHERE id = 1", 10, 'T');
        run("SELECT * FROM b WHERE id = 1", 10, 'T');
    }
    run("COMMIT", 10, 'I');
    assert_int_equal(ps->nplus1_bursts, 3);
    assert_int_equal(ps->last_nplus1.count, 12);

    /* Nine repeats stay under the default threshold of ten. */
    run("BEGIN", 10, 'T');
    for (int i = 0; i < 9; i++)
        run("SELECT * FROM c WHERE id = 1", 10, 'T');
    run("COMMIT", 10, 'I');
    assert_int_equal(ps->nplus1_bursts, 3);
}

/* The N+1 state is made at a client's first query and goes with the client: idle
   clients that never ran one carry none (what 2 000 idle clients cost, PERFORMANCE.md). */
static void test_nplus1_state_is_lazy(void **state)
{
    (void)state;
    assert_null(cs.group);
    run("SELECT 1", 10, 'I');
    assert_non_null(cs.group);
    stats_client_closed(&pool, NULL, &cs);
    assert_null(cs.group);
    cfg.nplus1_threshold = 0; /* detector off: nothing to keep */
    run("SELECT 1", 10, 'I');
    assert_null(cs.group);
}

/* Lines of the log file that contain needle. */
static int count_lines_with(const char *path, const char *needle, char *last, size_t last_size)
{
    FILE *f = fopen(path, "r");
    char line[2048];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strstr(line, needle)) {
            n++;
            snprintf(last, last_size, "%s", line);
        }
    }
    if (f)
        fclose(f);
    return n;
}

/* Send the log to a fresh file named by path (a mkstemp template). */
static void log_to_temp_file(char *path)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(log_open(path), 0);
}

static void log_close_temp_file(const char *path)
{
    log_open(NULL);
    unlink(path);
}

static void burst_in_transaction(const char *sql)
{
    run("BEGIN", 10, 'T');
    for (int i = 0; i < 20; i++)
        run(sql, 10, 'T');
    run("COMMIT", 10, 'I');
}

/* Bursts are all counted, but one statement's are logged once per interval, with the
   number left unlogged since. */
static void test_nplus1_log_rate(void **state)
{
    (void)state;
    char path[] = "/tmp/warmpool-test-stats-XXXXXX", last[2048] = "";
    log_to_temp_file(path);
    cfg.nplus1_log_interval_ms = 60000;
    const char *sql = "SELECT * FROM items WHERE order_id = $1";
    struct wp_pool_stats *ps = NULL;

    for (int i = 0; i < 3; i++) {
        burst_in_transaction(sql);
        clock_us += 1000000;
    }
    ps = pool.stats;
    assert_int_equal(ps->nplus1_bursts, 3);
    assert_int_equal(entry_for(sql)->nplus1, 3);
    assert_int_equal(count_lines_with(path, "N+1 pattern", last, sizeof last), 1);
    assert_null(strstr(last, "more bursts"));

    /* Another statement has its own allowance. */
    burst_in_transaction("SELECT * FROM other WHERE id = $1");
    assert_int_equal(count_lines_with(path, "N+1 pattern", last, sizeof last), 2);

    /* Past the interval the next burst is logged, with the two that were not. */
    clock_us += 60000000;
    burst_in_transaction(sql);
    assert_int_equal(count_lines_with(path, "N+1 pattern", last, sizeof last), 3);
    assert_non_null(strstr(last, "(and 2 more bursts of it since the last report)"));
    assert_int_equal(ps->nplus1_bursts, 5);

    /* 0 logs every burst. */
    cfg.nplus1_log_interval_ms = 0;
    burst_in_transaction(sql);
    burst_in_transaction(sql);
    assert_int_equal(count_lines_with(path, "N+1 pattern", last, sizeof last), 5);

    log_close_temp_file(path);
}

/* Without a top-statements entry (table off), a pool's bursts share one allowance. */
static void test_nplus1_log_rate_untracked(void **state)
{
    (void)state;
    char path[] = "/tmp/warmpool-test-stats-XXXXXX", last[2048] = "";
    log_to_temp_file(path);
    cfg.stats_top_statements = 0;
    cfg.nplus1_log_interval_ms = 60000;

    burst_in_transaction("SELECT * FROM a WHERE id = $1");
    burst_in_transaction("SELECT * FROM b WHERE id = $1");
    assert_null(entry_for("SELECT * FROM a WHERE id = $1"));
    assert_int_equal(pool.stats->nplus1_bursts, 2);
    assert_int_equal(count_lines_with(path, "N+1 pattern", last, sizeof last), 1);

    clock_us += 60000000;
    burst_in_transaction("SELECT * FROM c WHERE id = $1");
    assert_int_equal(count_lines_with(path, "N+1 pattern", last, sizeof last), 2);
    assert_non_null(strstr(last, "(and 1 more bursts of untracked statements since"));

    log_close_temp_file(path);
}

static void test_nplus1_window(void **state)
{
    (void)state;
    /* Outside transactions: 12 repeats within a second are a burst, reported when
       a query arrives after the window. */
    for (int i = 0; i < 12; i++)
        run("SELECT name FROM users WHERE id = 5", 1000, 'I');
    struct wp_pool_stats *ps = pool.stats;
    assert_int_equal(ps->nplus1_bursts, 0);
    clock_us += 2000000;
    run("SELECT 1", 10, 'I');
    assert_int_equal(ps->nplus1_bursts, 1);
    assert_int_equal(ps->last_nplus1.count, 12);

    /* A poll every 200 ms: at most 6 per window, never a burst. */
    for (int i = 0; i < 40; i++) {
        run("SELECT * FROM jobs WHERE state = 'new'", 10, 'I');
        clock_us += 200000;
    }
    assert_int_equal(ps->nplus1_bursts, 1);

    /* A burst still open when the client leaves is reported then. */
    for (int i = 0; i < 15; i++)
        run("SELECT * FROM t WHERE k = 'x'", 10, 'I');
    stats_client_closed(&pool, NULL, &cs);
    assert_int_equal(ps->nplus1_bursts, 2);
    assert_int_equal(ps->last_nplus1.count, 15);

    /* A transaction after a window closes the window first. */
    for (int i = 0; i < 10; i++)
        run("SELECT * FROM w WHERE k = 1", 10, 'I');
    run("BEGIN", 10, 'T');
    assert_int_equal(ps->nplus1_bursts, 3);
    run("COMMIT", 10, 'I');

    /* Threshold 0 turns the detector off. */
    cfg.nplus1_threshold = 0;
    for (int i = 0; i < 30; i++)
        run("SELECT * FROM off WHERE k = 1", 10, 'I');
    stats_client_closed(&pool, NULL, &cs);
    assert_int_equal(ps->nplus1_bursts, 3);
}

static void test_slow_queries(void **state)
{
    (void)state;
    run("SELECT pg_sleep(1)", 150000, 'I');
    assert_int_equal(pool.stats->slow_queries, 0); /* off by default */
    cfg.log_slow_queries_ms = 100;
    run("SELECT pg_sleep(1)", 150000, 'I');
    assert_int_equal(pool.stats->slow_queries, 1);
    run("SELECT 1", 99000, 'I');
    assert_int_equal(pool.stats->slow_queries, 1);
    /* Wait time counts toward the total. */
    stats_wait_done(&pool, &cs, 60000);
    run("SELECT 2", 50000, 'I');
    assert_int_equal(pool.stats->slow_queries, 2);
    /* With log_parameters the raw text is kept for the log line, then released. */
    cfg.log_parameters = 1;
    stats_query_start(&pool, &cs, "SELECT 'secret'", 15, 0, clock_us);
    assert_non_null(cs.raw);
    assert_int_equal(cs.raw_len, 15);
    assert_memory_equal(cs.raw, "SELECT 'secret'", 15);
    stats_query_end(&pool, NULL, &cs, 'I', clock_us + 200000);
    assert_int_equal(pool.stats->slow_queries, 3);
    assert_int_equal(cs.raw_len, 0);
}

static void test_top_table_follows_config(void **state)
{
    (void)state;
    run("SELECT 1", 10, 'I');
    assert_int_equal(pool.stats->top.cap, 100);
    cfg.stats_top_statements = 2;
    run("SELECT a FROM x", 30, 'I');
    run("SELECT b FROM x", 20, 'I');
    assert_int_equal(pool.stats->top.cap, 2);
    assert_int_equal(pool.stats->top.n, 2);
    cfg.stats_top_statements = 0;
    run("SELECT c FROM x", 20, 'I');
    assert_int_equal(pool.stats->top.n, 0);
    assert_int_equal(pool.stats->queries, 4);
}

/* Another client's statements evict or move the entry of a query in flight: its end
   counts where the statement is now, or nowhere, never into another statement. */
static void test_entry_changes_while_running(void **state)
{
    (void)state;
    struct wp_client_stats other = {0};
    const char *mine = "SELECT a FROM x WHERE id = 1", *theirs = "SELECT b FROM x";
    cfg.stats_top_statements = 1;
    stats_query_start(&pool, &cs, mine, strlen(mine), 0, 100);
    stats_query_start(&pool, &other, theirs, strlen(theirs), 0, 110);
    stats_query_end(&pool, NULL, &other, 'I', 120); /* evicted mine, took its place */
    stats_query_end(&pool, NULL, &cs, 'I', 200);
    struct wp_pool_stats *ps = pool.stats;
    assert_int_equal(ps->queries, 2);
    assert_null(entry_for(mine));
    assert_int_equal(entry_for(theirs)->calls, 1);
    assert_int_equal(entry_for(theirs)->total_us, 10);

    /* A resize (reload) reorders the table under a running query. */
    cfg.stats_top_statements = 5;
    run(mine, 5, 'I');
    run("SELECT c FROM x", 1000, 'I');
    assert_ptr_equal(entry_for(mine), &ps->top.entries[1]);
    stats_query_start(&pool, &cs, mine, strlen(mine), 0, 300);
    cfg.stats_top_statements = 4; /* the table is now most total time first */
    stats_query_start(&pool, &other, "SELECT d FROM x", 15, 0, 310);
    stats_query_end(&pool, NULL, &other, 'I', 320);
    stats_query_end(&pool, NULL, &cs, 'I', 350);
    assert_int_equal(ps->top.cap, 4);
    assert_ptr_equal(entry_for(mine), &ps->top.entries[2]);
    assert_int_equal(entry_for(mine)->calls, 2);
    assert_int_equal(entry_for(mine)->total_us, 55);
    assert_int_equal(entry_for("SELECT c FROM x")->calls, 1);
    assert_int_equal(entry_for("SELECT d FROM x")->calls, 1);
    assert_int_equal(entry_for(theirs)->calls, 1);
    stats_client_closed(&pool, NULL, &other);
}

static void test_cold_events(void **state)
{
    (void)state;
    stats_server_opened(&pool);
    stats_server_closed(&pool, "server_lifetime reached");
    stats_server_closed(&pool, "server_idle_timeout reached");
    stats_server_closed(&pool, "server closed the connection");
    stats_server_closed(&pool, "killed from the admin console (KILL)");
    stats_server_closed(&pool, "something new");
    stats_connect_failed(&pool);
    stats_cancel(&pool);
    stats_timeout(&pool, STATS_TIMEOUT_QUERY);
    stats_timeout(NULL, STATS_TIMEOUT_CLIENT_LOGIN);
    stats_timeout(&pool, STATS_TIMEOUT_KINDS); /* out of range: ignored */
    stats_prepared(&pool, STATS_PREPARED_INJECTED);
    struct wp_pool_stats *ps = pool.stats;
    assert_int_equal(ps->servers_opened, 1);
    assert_int_equal(ps->servers_closed[STATS_CLOSE_LIFETIME], 1);
    assert_int_equal(ps->servers_closed[STATS_CLOSE_IDLE_TIMEOUT], 1);
    assert_int_equal(ps->servers_closed[STATS_CLOSE_SERVER_ERROR], 1);
    assert_int_equal(ps->servers_closed[STATS_CLOSE_ADMIN], 1);
    assert_int_equal(ps->servers_closed[STATS_CLOSE_OTHER], 1);
    assert_int_equal(ps->connect_failures, 1);
    assert_int_equal(ps->cancels, 1);
    assert_int_equal(ps->timeouts[STATS_TIMEOUT_QUERY], 1);
    assert_int_equal(stats_global.timeouts[STATS_TIMEOUT_CLIENT_LOGIN], 1);
    assert_int_equal(ps->prepared[STATS_PREPARED_INJECTED], 1);

    assert_int_equal(stats_classify_close("connect failed"), STATS_CLOSE_CONNECT_FAILED);
    assert_int_equal(stats_classify_close("server_connect_timeout reached"),
                     STATS_CLOSE_CONNECT_TIMEOUT);
    assert_int_equal(stats_classify_close("shutting down"), STATS_CLOSE_SHUTDOWN);
    assert_int_equal(stats_classify_close("retired"), STATS_CLOSE_NOT_REUSABLE);
    assert_int_equal(stats_classify_close("client left in the middle of a message"),
                     STATS_CLOSE_NOT_REUSABLE);
    assert_int_equal(stats_classify_close("server_check_query got no answer"),
                     STATS_CLOSE_SERVER_ERROR);
    assert_int_equal(stats_classify_close("pool is above its size limit"),
                     STATS_CLOSE_NOT_REUSABLE);
    assert_int_equal(stats_classify_close(NULL), STATS_CLOSE_OTHER);
    assert_string_equal(stats_close_reason_name(STATS_CLOSE_LIFETIME), "lifetime");
    assert_string_equal(stats_timeout_name(STATS_TIMEOUT_IDLE_TRANSACTION),
                        "idle_transaction_timeout");
    assert_string_equal(stats_prepared_event_name(STATS_PREPARED_INJECTED), "injected_parse");
}

static void test_health(void **state)
{
    (void)state;
    assert_int_equal(stats_pool_healthy(&pool), 1); /* nothing tried yet */
    strcpy(pool.last_error, "connection refused");
    assert_int_equal(stats_pool_healthy(&pool), 0); /* hooks not called: last_error says */
    stats_server_opened(&pool);
    assert_int_equal(stats_pool_healthy(&pool), 1);
    stats_connect_failed(&pool);
    assert_int_equal(stats_pool_healthy(&pool), 0);
    pool.nservers = 2;
    pool.nconnecting = 1;
    assert_int_equal(stats_pool_healthy(&pool), 1); /* one live backend */
    pool.nconnecting = 2;
    assert_int_equal(stats_pool_healthy(&pool), 0);
}

static void test_collect_and_counts(void **state)
{
    (void)state;
    struct wp_client clients[5];
    enum wp_client_state states[5] = {CL_ACTIVE, CL_IDLE, CL_IDLE, CL_WAITING, CL_WELCOME};
    memset(clients, 0, sizeof clients);
    for (int i = 0; i < 5; i++) {
        clients[i].pool = &pool;
        clients[i].state = states[i];
        list_init(&clients[i].node);
        list_push_tail(&wp_rt.clients, &clients[i].all);
    }
    clients[3].wait_started_ms = 10000;
    list_push_tail(&pool.waiting, &clients[3].node);
    struct wp_server servers[4];
    enum wp_server_state sstates[4] = {SV_ACTIVE, SV_IDLE, SV_IDLE, SV_CONNECTING};
    struct wp_list *lists[4] = {&pool.active, &pool.idle, &pool.idle, &pool.busy};
    memset(servers, 0, sizeof servers);
    for (int i = 0; i < 4; i++) {
        servers[i].state = sstates[i];
        servers[i].last_used_ms = 100000;
        list_push_tail(lists[i], &servers[i].node);
    }
    servers[2].last_used_ms = 10000; /* idle past server_check_delay */

    stats_collect(100000);
    struct wp_pool_stats *ps = pool.stats;
    assert_non_null(ps);
    assert_int_equal(ps->cl_active, 1);
    assert_int_equal(ps->cl_idle, 2);
    assert_int_equal(ps->cl_waiting, 1);
    assert_int_equal(ps->cl_login, 1);
    struct stats_server_counts sc;
    stats_count_servers(&pool, 100000, &sc);
    assert_int_equal(sc.total, 4);
    assert_int_equal(sc.active, 1);
    assert_int_equal(sc.idle, 1);
    assert_int_equal(sc.used, 1);
    assert_int_equal(sc.connecting, 1);
    assert_int_equal(stats_pool_max_wait_us(&pool, 100000), 90000000);

    /* Averages: snapshots roll once per period. */
    assert_int_equal(ps->prev.at_ms, 100000);
    assert_int_equal(ps->last.at_ms, 100000);
    run("SELECT 1", 10, 'I');
    stats_collect(100000 + STATS_PERIOD_MS - 1);
    assert_int_equal(ps->last.at_ms, 100000);
    stats_collect(100000 + STATS_PERIOD_MS);
    assert_int_equal(ps->prev.at_ms, 100000);
    assert_int_equal(ps->last.at_ms, 100000 + STATS_PERIOD_MS);
    assert_int_equal(ps->last.queries - ps->prev.queries, 1);
    list_init(&wp_rt.clients);
}

/* A repeated Parse text gets the fingerprint normalising gives, from the client's
   cache; another text, a text too long to keep, and no consumer of fingerprints too. */
static void test_parse_fingerprint(void **state)
{
    (void)state;
    const char *a = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";
    const char *b = "SELECT abalance FROM pgbench_accounts WHERE aid = $2";
    uint64_t fa = fingerprint_hash(a, strlen(a)), fb = fingerprint_hash(b, strlen(b));
    assert_int_equal(stats_parse_fingerprint(&cs, a, strlen(a)), fa);
    assert_non_null(cs.parse_text);
    assert_int_equal(stats_parse_fingerprint(&cs, a, strlen(a)), fa); /* cached */
    assert_int_equal(stats_parse_fingerprint(&cs, b, strlen(b)), fb);
    assert_int_equal(stats_parse_fingerprint(&cs, a, strlen(a) - 1),
                     fingerprint_hash(a, strlen(a) - 1)); /* a prefix is another text */
    char big[STATS_PARSE_TEXT_MAX + 40];
    memset(big, 'x', sizeof big);
    memcpy(big, "SELECT ", 7);
    uint64_t fbig = fingerprint_hash(big, sizeof big);
    assert_int_equal(stats_parse_fingerprint(&cs, big, sizeof big), fbig);
    assert_int_equal(stats_parse_fingerprint(&cs, big, sizeof big), fbig);
    assert_int_equal(stats_parse_fingerprint(&cs, a, strlen(a)), fa);
    assert_int_equal(stats_parse_fingerprint(&cs, NULL, 0), 0);
    cfg.stats_top_statements = 0;
    cfg.nplus1_threshold = 0;
    assert_int_equal(stats_parse_fingerprint(&cs, b, strlen(b)), 0);
}

/* The console's totals over pools: counts added, the time taken from the last. */
static void test_snapshot_add(void **state)
{
    (void)state;
    struct stats_snapshot total = {0};
    struct stats_snapshot a = {1000, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    struct stats_snapshot b = {1000, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110};
    stats_snapshot_add(&total, &a);
    stats_snapshot_add(&total, &b);
    assert_int_equal(total.at_ms, 1000);
    assert_int_equal(total.xacts, 11);
    assert_int_equal(total.queries, 22);
    assert_int_equal(total.bytes_in, 33);
    assert_int_equal(total.bytes_out, 44);
    assert_int_equal(total.waits, 55);
    assert_int_equal(total.xact_us, 66);
    assert_int_equal(total.query_us, 77);
    assert_int_equal(total.wait_us, 88);
    assert_int_equal(total.client_parses, 99);
    assert_int_equal(total.server_parses, 110);
    assert_int_equal(total.binds, 121);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_hist_buckets),
        T(test_hist_quantiles_uniform),
        T(test_hist_quantiles_skewed),
        T(test_top_basic),
        T(test_top_eviction_keeps_expensive),
        T(test_top_resize),
        T(test_query_counts),
        T(test_transactions),
        T(test_pipelined_and_waits),
        T(test_nplus1_in_transaction),
        T(test_nplus1_window),
        T(test_nplus1_log_rate),
        T(test_nplus1_log_rate_untracked),
        T(test_nplus1_state_is_lazy),
        T(test_slow_queries),
        T(test_top_table_follows_config),
        T(test_entry_changes_while_running),
        T(test_cold_events),
        T(test_health),
        T(test_collect_and_counts),
        T(test_parse_fingerprint),
        T(test_snapshot_add),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
