/*
 * admin_show_stats — the admin console's statistics per database, in PgBouncer 1.25's
 * layouts: SHOW STATS (totals, then averages over the last stats_period, then
 * warmpool's error count and latency quantiles), STATS_TOTALS, STATS_AVERAGES and
 * TOTALS (every database summed, as name/value rows).
 *
 * A database's figures are its pools' summed; the averages come from the snapshots
 * stats.c rolls each stats_period. Counts of Parse and Bind are those of named
 * statements (relay_prepared.c), as PgBouncer counts them only when it tracks
 * prepared statements.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "warmpool/admin.h"
#include "warmpool/admin_rows.h"
#include "warmpool/pool.h"
#include "warmpool/proto.h"
#include "warmpool/runtime.h"
#include "warmpool/stats.h"

#define TEXT PROTO_OID_TEXT
#define NUMERIC PROTO_OID_NUMERIC
#define NCOLS(cols) ((int)(sizeof(cols) / sizeof((cols)[0])))

/* One database's counters, its pools summed, in PgBouncer's STATS_TOTALS order. */
enum {
    ST_ASSIGN,
    ST_XACT,
    ST_QUERY,
    ST_RECV,
    ST_SENT,
    ST_XACT_TIME,
    ST_QUERY_TIME,
    ST_WAIT_TIME,
    ST_CLIENT_PARSE,
    ST_SERVER_PARSE,
    ST_BIND,
    ST_N
};

struct db_sum {
    const char *dbname;
    uint64_t total[ST_N];
    struct stats_snapshot prev, last;
    /* SHOW STATS' own columns */
    uint64_t errors;
    struct stats_hist query, xact, wait;
};

static void hist_merge(struct stats_hist *into, const struct stats_hist *h)
{
    into->count += h->count;
    into->sum_us += h->sum_us;
    if (h->max_us > into->max_us)
        into->max_us = h->max_us;
    for (int i = 0; i < STATS_HIST_BUCKETS; i++)
        into->buckets[i] += h->buckets[i];
}

static void pool_add(struct db_sum *d, const struct wp_pool *pool)
{
    const struct wp_pool_stats *ps = pool->stats;
    uint64_t *t = d->total;
    t[ST_ASSIGN] += ps->wait_us.count; /* one wait sample per backend handed out */
    t[ST_XACT] += ps->xacts;
    t[ST_QUERY] += ps->queries;
    t[ST_RECV] += pool->bytes_in;
    t[ST_SENT] += pool->bytes_out;
    t[ST_XACT_TIME] += ps->xact_us.sum_us;
    t[ST_QUERY_TIME] += ps->query_us.sum_us;
    t[ST_WAIT_TIME] += ps->wait_us.sum_us;
    t[ST_CLIENT_PARSE] += pool->client_parses;
    t[ST_SERVER_PARSE] += pool->server_parses;
    t[ST_BIND] += pool->binds;
    stats_snapshot_add(&d->prev, &ps->prev);
    stats_snapshot_add(&d->last, &ps->last);
    d->errors += ps->query_errors;
    hist_merge(&d->query, &ps->query_us);
    hist_merge(&d->xact, &ps->xact_us);
    hist_merge(&d->wait, &ps->wait_us);
}

/* Per database, in the order pools were made; NULL when out of memory. */
static struct db_sum *sum_databases(int *n)
{
    int cap = 1;
    for (const struct wp_list *p = wp_rt.pools.next; p != &wp_rt.pools; p = p->next)
        cap++;
    struct db_sum *all = calloc((size_t)cap, sizeof *all);
    *n = 0;
    if (!all)
        return NULL;
    stats_collect(wp_now_ms());
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        const struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        if (!pool->stats)
            continue;
        int i = 0;
        while (i < *n && strcmp(all[i].dbname, pool->dbname) != 0)
            i++;
        if (i == *n)
            all[(*n)++].dbname = pool->dbname;
        pool_add(&all[i], pool);
    }
    return all;
}

static const char *const st_names[ST_N] = {
    "server_assignment_count",
    "xact_count",
    "query_count",
    "bytes_received",
    "bytes_sent",
    "xact_time",
    "query_time",
    "wait_time",
    "client_parse_count",
    "server_parse_count",
    "bind_count",
};

/* SHOW TOTALS names the same counters after PgBouncer's struct fields. */
static const char *const totals_names[ST_N] = {
    "server_assignment_count",
    "xact_count",
    "query_count",
    "client_bytes",
    "server_bytes",
    "xact_time",
    "query_time",
    "wait_time",
    "ps_client_parse_count",
    "ps_server_parse_count",
    "ps_bind_count",
};

static uint64_t rate(uint64_t delta, double secs)
{
    return secs > 0 ? (uint64_t)((double)delta / secs + 0.5) : 0;
}

static uint64_t mean(uint64_t total, uint64_t items)
{
    return items ? total / items : 0;
}

/* PgBouncer's averages between the last two snapshots: counts and bytes per second,
   times per transaction, query or assignment; Parse and Bind counts per second. */
static void averages(const struct db_sum *d, uint64_t avg[ST_N])
{
    const struct stats_snapshot *a = &d->prev, *b = &d->last;
    double secs = (double)(b->at_ms - a->at_ms) / 1000.0;
    memset(avg, 0, ST_N * sizeof avg[0]);
    avg[ST_ASSIGN] = rate(b->waits - a->waits, secs);
    avg[ST_XACT] = rate(b->xacts - a->xacts, secs);
    avg[ST_QUERY] = rate(b->queries - a->queries, secs);
    avg[ST_RECV] = rate(b->bytes_in - a->bytes_in, secs);
    avg[ST_SENT] = rate(b->bytes_out - a->bytes_out, secs);
    avg[ST_XACT_TIME] = mean(b->xact_us - a->xact_us, b->xacts - a->xacts);
    avg[ST_QUERY_TIME] = mean(b->query_us - a->query_us, b->queries - a->queries);
    avg[ST_WAIT_TIME] = mean(b->wait_us - a->wait_us, b->waits - a->waits);
    avg[ST_CLIENT_PARSE] = rate(b->client_parses - a->client_parses, secs);
    avg[ST_SERVER_PARSE] = rate(b->server_parses - a->server_parses, secs);
    avg[ST_BIND] = rate(b->binds - a->binds, secs);
}

/* STATS_TOTALS (avg = 0) or STATS_AVERAGES (avg = 1). */
static int show_stats_per_db(struct wp_buf *out, int avg)
{
    struct admin_col cols[1 + ST_N];
    char names[ST_N][40];
    int n;
    struct db_sum *dbs = sum_databases(&n);
    if (!dbs)
        return -1;
    cols[0] = (struct admin_col){"database", TEXT};
    for (int k = 0; k < ST_N; k++) {
        /* 1.25 names the parse/bind averages avg_*, the other averages as the totals */
        snprintf(names[k], sizeof names[k], "%s%s", avg && k >= ST_CLIENT_PARSE ? "avg_" : "",
                 st_names[k]);
        cols[1 + k] = (struct admin_col){names[k], NUMERIC};
    }
    struct admin_rows r;
    admin_rows_begin_cols(&r, out, cols, 1 + ST_N);
    for (int i = 0; i < n; i++) {
        uint64_t a[ST_N];
        const uint64_t *v = dbs[i].total;
        if (avg) {
            averages(&dbs[i], a);
            v = a;
        }
        admin_cell_or_null(&r, dbs[i].dbname);
        for (int k = 0; k < ST_N; k++)
            admin_cell_int(&r, (long long)v[k]);
        admin_rows_end_row(&r);
    }
    free(dbs);
    return admin_rows_finish(&r);
}

static int show_stats_totals(struct wp_buf *out)
{
    return show_stats_per_db(out, 0);
}

static int show_stats_averages(struct wp_buf *out)
{
    return show_stats_per_db(out, 1);
}

/* SHOW TOTALS: every database summed, as name/value rows total_* then avg_*. */
static int show_totals(struct wp_buf *out)
{
    static const struct admin_col cols[] = {{"name", TEXT}, {"value", NUMERIC}};
    int n;
    struct db_sum *dbs = sum_databases(&n);
    if (!dbs)
        return -1;
    uint64_t total[ST_N] = {0}, avg[ST_N] = {0};
    for (int i = 0; i < n; i++) {
        uint64_t a[ST_N];
        averages(&dbs[i], a);
        for (int k = 0; k < ST_N; k++) {
            total[k] += dbs[i].total[k];
            avg[k] += a[k];
        }
    }
    free(dbs);
    struct admin_rows r;
    char name[48];
    admin_rows_begin_cols(&r, out, cols, NCOLS(cols));
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < ST_N; k++) {
            snprintf(name, sizeof name, "%s_%s", pass ? "avg" : "total", totals_names[k]);
            admin_cell_or_null(&r, name);
            admin_cell_int(&r, (long long)(pass ? avg[k] : total[k]));
            admin_rows_end_row(&r);
        }
    }
    return admin_rows_finish(&r);
}

/* ---------------------------------------------------------------- SHOW STATS */

/* 1.25's names of the totals and averages in SHOW STATS (ST_* order). */
static const char *const stats_total_cols[ST_N] = {
    "total_server_assignment_count",
    "total_xact_count",
    "total_query_count",
    "total_received",
    "total_sent",
    "total_xact_time",
    "total_query_time",
    "total_wait_time",
    "total_client_parse_count",
    "total_server_parse_count",
    "total_bind_count",
};

static const char *const stats_avg_cols[ST_N] = {
    "avg_server_assignment_count",
    "avg_xact_count",
    "avg_query_count",
    "avg_recv",
    "avg_sent",
    "avg_xact_time",
    "avg_query_time",
    "avg_wait_time",
    "avg_client_parse_count",
    "avg_server_parse_count",
    "avg_bind_count",
};

/* warmpool's columns after 1.25's: errors, and latency quantiles in µs from the
   histograms since start. */
static const char *const stats_own_cols[] = {
    "total_query_errors", "query_p50_us", "query_p95_us", "query_p99_us",
    "xact_p95_us",        "wait_p95_us",  "wait_p99_us",
};

#define STATS_OWN NCOLS(stats_own_cols)

static void stats_row(struct admin_rows *r, const struct db_sum *d)
{
    uint64_t avg[ST_N];
    averages(d, avg);
    admin_cell_or_null(r, d->dbname);
    for (int k = 0; k < ST_N; k++)
        admin_cell_int(r, (long long)d->total[k]);
    for (int k = 0; k < ST_N; k++)
        admin_cell_int(r, (long long)avg[k]);
    admin_cell_int(r, (long long)d->errors);
    admin_cell_int(r, (long long)hist_quantile(&d->query, 0.50));
    admin_cell_int(r, (long long)hist_quantile(&d->query, 0.95));
    admin_cell_int(r, (long long)hist_quantile(&d->query, 0.99));
    admin_cell_int(r, (long long)hist_quantile(&d->xact, 0.95));
    admin_cell_int(r, (long long)hist_quantile(&d->wait, 0.95));
    admin_cell_int(r, (long long)hist_quantile(&d->wait, 0.99));
    admin_rows_end_row(r);
}

static int show_stats(struct wp_buf *out)
{
    struct admin_col cols[1 + 2 * ST_N + STATS_OWN];
    int ncols = 0, n;
    cols[ncols++] = (struct admin_col){"database", TEXT};
    for (int k = 0; k < ST_N; k++)
        cols[ncols++] = (struct admin_col){stats_total_cols[k], NUMERIC};
    for (int k = 0; k < ST_N; k++)
        cols[ncols++] = (struct admin_col){stats_avg_cols[k], NUMERIC};
    for (int k = 0; k < STATS_OWN; k++)
        cols[ncols++] = (struct admin_col){stats_own_cols[k], NUMERIC};
    struct db_sum *dbs = sum_databases(&n);
    if (!dbs)
        return -1;
    struct admin_rows r;
    admin_rows_begin_cols(&r, out, cols, ncols);
    for (int i = 0; i < n; i++)
        stats_row(&r, &dbs[i]);
    free(dbs);
    return admin_rows_finish(&r);
}

/* ---------------------------------------------------------------- dispatch */

int admin_show_stats(struct wp_buf *out, const char *what)
{
    static const struct {
        const char *name;
        int (*fn)(struct wp_buf *);
    } shows[] = {
        {"stats", show_stats},
        {"stats_totals", show_stats_totals},
        {"stats_averages", show_stats_averages},
        {"totals", show_totals},
    };
    for (size_t i = 0; i < sizeof shows / sizeof shows[0]; i++)
        if (strcasecmp(what, shows[i].name) == 0)
            return shows[i].fn(out) < 0 ? -2 : 0;
    return -1;
}
