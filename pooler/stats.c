/*
 * stats — counters, histograms, top statements, N+1 detector, slow-query log
 * (include/warmpool/stats.h).
 *
 * Everything here runs on the event loop thread and is called from the relay's hot
 * path, so the per-query work is a handful of increments, one histogram bucket, at
 * most one hash lookup in the pool's top-statements table (none when the client
 * repeats its previous statement: its entry's place is remembered) and a short scan
 * of the client's N+1 slots. Text work (normalising a statement) happens once per
 * statement per pool, when it first enters the table; log lines are formatted only
 * when they are written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "warmpool/client.h"
#include "warmpool/fingerprint.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/stats.h"
#include "warmpool/timeouts.h"

/* Raw statement text kept for the slow-query log when log_parameters = 1. */
#define STATS_RAW_MAX 4096
/* Entries looked at to choose one to evict from a full top-statements table. */
#define TOP_EVICT_SAMPLES 8

struct stats_global stats_global;

/* ---------------------------------------------------------------- histograms */

int64_t hist_bucket_bound(int i)
{
    if (i < 0 || i >= STATS_HIST_FINITE)
        return -1;
    return (int64_t)1 << i;
}

int64_t hist_quantile(const struct stats_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    double rank = q * (double)h->count;
    uint64_t below = 0;
    for (int i = 0; i < STATS_HIST_BUCKETS; i++) {
        uint64_t n = h->buckets[i];
        if (n == 0 || (double)(below + n) < rank) {
            below += n;
            continue;
        }
        /* The largest value seen caps the bucket: exact at q = 1, and the top
           bucket (often the +Inf one) no longer stretches to its bound. */
        double lower = i == 0 ? 0 : (double)hist_bucket_bound(i - 1);
        double upper = i == STATS_HIST_FINITE ? (double)h->max_us : (double)hist_bucket_bound(i);
        if (upper > (double)h->max_us)
            upper = (double)h->max_us;
        if (upper < lower)
            lower = upper;
        double v = lower + (upper - lower) * ((rank - (double)below) / (double)n);
        return (int64_t)(v + 0.5);
    }
    return h->max_us;
}

/* ---------------------------------------------------------------- top statements */

static uint32_t index_size_for(int cap)
{
    uint32_t size = 16;
    while (size < (uint32_t)cap * 2u)
        size <<= 1;
    return size;
}

int top_init(struct stats_top *t, int cap)
{
    memset(t, 0, sizeof *t);
    t->rng = 0x9e3779b97f4a7c15ull;
    if (cap <= 0)
        return 0;
    uint32_t size = index_size_for(cap);
    t->entries = calloc((size_t)cap, sizeof *t->entries);
    t->index = calloc(size, sizeof *t->index);
    if (!t->entries || !t->index) {
        free(t->entries);
        free(t->index);
        memset(t, 0, sizeof *t);
        return -1;
    }
    t->cap = cap;
    t->mask = size - 1;
    return 0;
}

void top_free(struct stats_top *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->entries[i].text);
    free(t->entries);
    free(t->index);
    memset(t, 0, sizeof *t);
}

/* Index slot holding fp, or the empty slot where it would go. */
static uint32_t index_slot(const struct stats_top *t, uint64_t fp)
{
    uint32_t i = (uint32_t)fp & t->mask;
    while (t->index[i] && t->entries[t->index[i] - 1].fp != fp)
        i = (i + 1) & t->mask;
    return i;
}

struct stats_top_entry *top_find(const struct stats_top *t, uint64_t fp)
{
    if (!t->index || fp == 0)
        return NULL;
    uint32_t slot = t->index[index_slot(t, fp)];
    return slot ? &t->entries[slot - 1] : NULL;
}

/* Linear-probing delete: shift later members of the cluster back into the hole. */
static void index_remove(struct stats_top *t, uint64_t fp)
{
    uint32_t hole = index_slot(t, fp);
    if (!t->index[hole])
        return;
    t->index[hole] = 0;
    for (uint32_t i = (hole + 1) & t->mask; t->index[i]; i = (i + 1) & t->mask) {
        uint32_t home = (uint32_t)t->entries[t->index[i] - 1].fp & t->mask;
        /* Move it if its home is not within (hole, i] cyclically. */
        int stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (!stays) {
            t->index[hole] = t->index[i];
            t->index[i] = 0;
            hole = i;
        }
    }
}

static uint64_t next_random(struct stats_top *t)
{
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 7;
    t->rng ^= t->rng << 17;
    return t->rng;
}

/* The cheapest of a few random entries: churn from one-off statements stays cheap
   and the expensive ones survive it. */
static int choose_victim(struct stats_top *t)
{
    int victim = (int)(next_random(t) % (uint64_t)t->n);
    for (int k = 1; k < TOP_EVICT_SAMPLES; k++) {
        int i = (int)(next_random(t) % (uint64_t)t->n);
        const struct stats_top_entry *a = &t->entries[i], *b = &t->entries[victim];
        if (a->total_us < b->total_us || (a->total_us == b->total_us && a->calls < b->calls))
            victim = i;
    }
    return victim;
}

static char *copy_text(const char *text)
{
    return strdup(text ? text : "");
}

struct stats_top_entry *top_add(struct stats_top *t, uint64_t fp, const char *text)
{
    if (t->cap == 0 || fp == 0)
        return NULL;
    struct stats_top_entry *e = top_find(t, fp);
    if (e)
        return e;
    char *copy = copy_text(text);
    if (!copy)
        return NULL;
    int i = t->n;
    if (t->n == t->cap) {
        i = choose_victim(t);
        index_remove(t, t->entries[i].fp);
        free(t->entries[i].text);
        t->evictions++;
    } else {
        t->n++;
    }
    e = &t->entries[i];
    memset(e, 0, sizeof *e);
    e->fp = fp;
    e->text = copy;
    t->index[index_slot(t, fp)] = (uint32_t)i + 1;
    return e;
}

static int by_total_desc(const void *a, const void *b)
{
    const struct stats_top_entry *x = *(const struct stats_top_entry *const *)a;
    const struct stats_top_entry *y = *(const struct stats_top_entry *const *)b;
    if (x->total_us != y->total_us)
        return x->total_us > y->total_us ? -1 : 1;
    if (x->calls != y->calls)
        return x->calls > y->calls ? -1 : 1;
    return x->fp < y->fp ? -1 : x->fp > y->fp;
}

int top_sorted(const struct stats_top *t, const struct stats_top_entry **out, int max)
{
    const struct stats_top_entry **all = malloc(((size_t)t->n + 1) * sizeof *all);
    if (!all)
        return 0;
    for (int i = 0; i < t->n; i++)
        all[i] = &t->entries[i];
    qsort(all, (size_t)t->n, sizeof *all, by_total_desc);
    int n = t->n < max ? t->n : max;
    memcpy(out, all, (size_t)n * sizeof *out);
    free(all);
    return n;
}

int top_resize(struct stats_top *t, int cap)
{
    if (cap == t->cap)
        return 0;
    struct stats_top fresh;
    if (top_init(&fresh, cap) < 0)
        return -1;
    fresh.evictions = t->evictions;
    const struct stats_top_entry **order = malloc(((size_t)t->n + 1) * sizeof *order);
    if (!order) {
        top_free(&fresh);
        return -1;
    }
    int n = top_sorted(t, order, t->n);
    for (int i = 0; i < n; i++) {
        if (i < cap) {
            fresh.entries[i] = *order[i]; /* the text moves with it */
            fresh.index[index_slot(&fresh, order[i]->fp)] = (uint32_t)i + 1;
            fresh.n++;
        } else {
            free(order[i]->text);
        }
    }
    free(order);
    free(t->entries);
    free(t->index);
    *t = fresh;
    return 0;
}

/* ---------------------------------------------------------------- per pool */

/* Out of line: the hooks, which all start with stats_of(), then save no registers
   for a call made once per pool. */
__attribute__((noinline)) static struct wp_pool_stats *first_stats(struct wp_pool *pool)
{
    pool->stats = calloc(1, sizeof *pool->stats);
    return pool->stats;
}

struct wp_pool_stats *stats_of(struct wp_pool *pool)
{
    if (!pool)
        return NULL;
    return pool->stats ? pool->stats : first_stats(pool);
}

void stats_pool_free(struct wp_pool *pool)
{
    if (!pool || !pool->stats)
        return;
    top_free(&pool->stats->top);
    free(pool->stats);
    pool->stats = NULL;
}

static void count_error_class(struct wp_pool_stats *ps, const char *sqlstate)
{
    char code[3] = {'?', '?', '\0'};
    if (sqlstate && sqlstate[0] && sqlstate[1]) {
        code[0] = sqlstate[0];
        code[1] = sqlstate[1];
    }
    for (int i = 0; i < ps->nerror_classes; i++) {
        if (memcmp(ps->error_classes[i].code, code, 2) == 0) {
            ps->error_classes[i].count++;
            return;
        }
    }
    if (ps->nerror_classes == STATS_ERROR_CLASSES) {
        ps->errors_unclassified++;
        return;
    }
    struct stats_error_class *ec = &ps->error_classes[ps->nerror_classes++];
    memcpy(ec->code, code, sizeof ec->code);
    ec->count = 1;
}

/* The table follows stats_top_statements, also after a reload changed it. */
static struct stats_top *top_of(struct wp_pool_stats *ps)
{
    int want = wp_rt.cfg ? wp_rt.cfg->stats_top_statements : 0;
    if (want < 0)
        want = 0;
    if (ps->top.cap != want && top_resize(&ps->top, want) < 0)
        return NULL;
    return &ps->top;
}

/* First sight of a statement (e is NULL), or of its text: keep the normalised text.
   Returns the entry, NULL when memory ran out. */
static struct stats_top_entry *add_statement(struct stats_top *t, struct stats_top_entry *e,
                                             uint64_t fp, const char *sql, size_t len)
{
    char text[STATS_TEXT_MAX];
    text[0] = '\0';
    if (sql)
        fingerprint_normalize(sql, len, text, sizeof text);
    if (!e)
        return top_add(t, fp, text);
    char *copy = strdup(text);
    if (copy) {
        free(e->text);
        e->text = copy;
    }
    return e;
}

/* fp's entry, looked for first where the client last saw its statement's: the
   hint is right unless another statement took that place since (eviction, a resize
   after a reload). NULL when fp is not in the table. */
static struct stats_top_entry *find_hinted(struct stats_top *t, uint32_t hint, uint64_t fp)
{
    if (hint && hint <= (uint32_t)t->n && t->entries[hint - 1].fp == fp)
        return &t->entries[hint - 1];
    return top_find(t, fp);
}

/* The statement's entry in the pool's table, added on first sight; NULL when the
   table is off or memory ran out. */
static struct stats_top_entry *remember_statement(struct wp_pool_stats *ps,
                                                  const struct wp_client_stats *cs, uint64_t fp,
                                                  const char *sql, size_t len)
{
    struct stats_top *t = top_of(ps);
    if (!t || t->cap == 0)
        return NULL;
    struct stats_top_entry *e = find_hinted(t, cs->top_hint, fp);
    if (e && (e->text[0] || !sql))
        return e;
    return add_statement(t, e, fp, sql, len);
}

static void keep_raw_text(struct wp_client_stats *cs, const char *sql, size_t len)
{
    if (!cs->raw && !(cs->raw = malloc(STATS_RAW_MAX)))
        return;
    cs->raw_len = (uint32_t)(len < STATS_RAW_MAX ? len : STATS_RAW_MAX);
    memcpy(cs->raw, sql, cs->raw_len);
}

/* Does anything use a query's fingerprint? Normalising is the one costly step of
   stats_query_start: skipped when nothing would use it. */
static int fingerprint_wanted(const struct wp_config *cfg)
{
    return cfg && (cfg->stats_top_statements > 0 || cfg->nplus1_threshold > 0 ||
                   cfg->log_slow_queries_ms > 0);
}

uint64_t stats_parse_fingerprint(struct wp_client_stats *cs, const char *sql, size_t len)
{
    if (!sql || len == 0 || !fingerprint_wanted(wp_rt.cfg))
        return 0;
    if (cs->parse_text && cs->parse_len == len && memcmp(cs->parse_text, sql, len) == 0)
        return cs->parse_fp;
    uint64_t fp = fingerprint_hash(sql, len);
    if (len <= STATS_PARSE_TEXT_MAX &&
        (cs->parse_text || (cs->parse_text = malloc(STATS_PARSE_TEXT_MAX)))) {
        memcpy(cs->parse_text, sql, len);
        cs->parse_len = (uint32_t)len;
        cs->parse_fp = fp;
    }
    return fp;
}

void stats_query_start(struct wp_pool *pool, struct wp_client_stats *cs, const char *sql,
                       size_t sql_len, uint64_t fp, int64_t now_us)
{
    if (!cs || cs->query_started_us)
        return;
    if (now_us <= 0)
        now_us = 1; /* 0 means "no query in flight" */
    cs->query_started_us = now_us;
    if (!cs->xact_started_us)
        cs->xact_started_us = now_us;
    cs->sqlstate[0] = '\0';
    cs->raw_len = 0;
    if (!sql)
        sql_len = 0;
    const struct wp_config *cfg = wp_rt.cfg;
    if (!fp && sql_len > 0 && fingerprint_wanted(cfg))
        fp = fingerprint_hash(sql, sql_len);
    cs->fp = fp;
    struct wp_pool_stats *ps = stats_of(pool);
    struct stats_top_entry *e = fp && ps ? remember_statement(ps, cs, fp, sql, sql_len) : NULL;
    if (e)
        cs->top_hint = (uint32_t)(e - ps->top.entries) + 1;
    if (sql_len > 0 && cfg && cfg->log_parameters && cfg->log_slow_queries_ms > 0)
        keep_raw_text(cs, sql, sql_len);
}

void stats_query_error(struct wp_pool *pool, struct wp_client_stats *cs, const char *sqlstate)
{
    struct wp_pool_stats *ps = stats_of(pool);
    if (ps)
        count_error_class(ps, sqlstate);
    if (cs && !cs->sqlstate[0])
        snprintf(cs->sqlstate, sizeof cs->sqlstate, "%s",
                 sqlstate && *sqlstate ? sqlstate : "?????");
}

void stats_wait_done(struct wp_pool *pool, struct wp_client_stats *cs, int64_t wait_us)
{
    struct wp_pool_stats *ps = stats_of(pool);
    if (ps)
        hist_add(&ps->wait_us, wait_us);
    if (cs)
        cs->wait_us = wait_us;
}

/* ---------------------------------------------------------------- log lines */

/* One log line per event: control characters from client text become spaces. */
static void sanitize(char *dst, size_t dstlen, const char *src, size_t len)
{
    size_t n = len < dstlen - 1 ? len : dstlen - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    dst[n] = '\0';
}

static const char *app_name(const struct wp_client *c)
{
    const char *app = c ? params_get(&c->params, "application_name") : NULL;
    return app ? app : "";
}

/* "C-12 db/user@addr" or, without a client, "pool db/user". */
static void identity(char *out, size_t len, const struct wp_pool *pool, const struct wp_client *c)
{
    if (c)
        snprintf(out, len, "C-%llu %s/%s@%s", (unsigned long long)c->id,
                 pool ? pool->dbname : c->dbname, pool ? pool->user : c->user, c->addr);
    else
        snprintf(out, len, "pool %s/%s", pool ? pool->dbname : "?", pool ? pool->user : "?");
}

static const char *statement_text(struct wp_pool_stats *ps, uint64_t fp)
{
    const struct stats_top_entry *e = ps ? top_find(&ps->top, fp) : NULL;
    return e && e->text[0] ? e->text : "(text not kept)";
}

static void log_slow_query(struct wp_pool *pool, struct wp_client *c,
                           const struct wp_client_stats *cs, int64_t server_us)
{
    char who[256], app[128], text[STATS_TEXT_MAX];
    identity(who, sizeof who, pool, c);
    const char *a = app_name(c);
    sanitize(app, sizeof app, a, strlen(a));
    const char *normal = statement_text(pool->stats, cs->fp);
    sanitize(text, sizeof text, normal, strlen(normal));
    if (cs->raw_len > 0 && wp_rt.cfg->log_parameters) {
        char raw[STATS_RAW_MAX + 1];
        sanitize(raw, sizeof raw, cs->raw, cs->raw_len);
        log_info("%s: slow query: %.3f ms (wait %.3f ms, server %.3f ms) application_name=\"%s\" "
                 "fingerprint=%016llx%s%s: %s",
                 who, (double)(cs->wait_us + server_us) / 1000.0, (double)cs->wait_us / 1000.0,
                 (double)server_us / 1000.0, app, (unsigned long long)cs->fp,
                 cs->sqlstate[0] ? " error=" : "", cs->sqlstate, raw);
        return;
    }
    log_info("%s: slow query: %.3f ms (wait %.3f ms, server %.3f ms) application_name=\"%s\" "
             "fingerprint=%016llx%s%s: %s",
             who, (double)(cs->wait_us + server_us) / 1000.0, (double)cs->wait_us / 1000.0,
             (double)server_us / 1000.0, app, (unsigned long long)cs->fp,
             cs->sqlstate[0] ? " error=" : "", cs->sqlstate, text);
}

/* ---------------------------------------------------------------- N+1 detector */

/* A code path that runs one query per row does it on every request: log its bursts
   once per nplus1_log_interval_ms per statement and pool (all are counted), or a busy
   application writes a warning per connection per window. Statements the top table
   does not hold share one allowance per pool. 1 = log this one now. */
static int log_due(struct stats_log_limit *limit, int64_t at_us)
{
    int64_t interval_us = wp_rt.cfg ? wp_rt.cfg->nplus1_log_interval_ms * 1000 : 0;
    if (!limit || interval_us <= 0)
        return 1;
    if (limit->logged_us && at_us - limit->logged_us < interval_us) {
        limit->held++;
        return 0;
    }
    limit->logged_us = at_us > 0 ? at_us : 1;
    return 1;
}

static void report_burst(struct wp_pool *pool, struct wp_client *c,
                         const struct wp_client_stats *cs, const struct stats_nplus1_slot *slot)
{
    struct wp_pool_stats *ps = stats_of(pool);
    struct stats_top_entry *e = ps ? top_find(&ps->top, slot->fp) : NULL;
    if (ps) {
        ps->nplus1_bursts++;
        ps->last_nplus1 = *slot;
    } else {
        stats_global.nplus1_bursts++;
    }
    if (e)
        e->nplus1++;
    struct stats_log_limit *limit = e ? &e->nplus1_log : ps ? &ps->nplus1_untracked_log : NULL;
    if (!log_due(limit, cs->group->started_us))
        return;
    char unlogged[112] = "";
    if (limit && limit->held) {
        snprintf(unlogged, sizeof unlogged, " (and %u more bursts %s since the last report)",
                 limit->held, e ? "of it" : "of untracked statements");
        limit->held = 0;
    }
    char who[256], app[128], text[STATS_TEXT_MAX];
    identity(who, sizeof who, pool, c);
    const char *a = app_name(c);
    sanitize(app, sizeof app, a, strlen(a));
    const char *normal = statement_text(ps, slot->fp);
    sanitize(text, sizeof text, normal, strlen(normal));
    char scope[64];
    if (cs->group->is_xact)
        snprintf(scope, sizeof scope, "in one transaction");
    else
        snprintf(scope, sizeof scope, "within %lld ms",
                 (long long)(wp_rt.cfg ? wp_rt.cfg->nplus1_window_ms : 0));
    log_warn("%s: N+1 pattern: statement executed %u times %s, %.3f ms in total%s, "
             "application_name=\"%s\" fingerprint=%016llx: %s",
             who, slot->count, scope, (double)slot->total_us / 1000.0, unlogged, app,
             (unsigned long long)slot->fp, text);
}

/* Close the current group: every statement repeated threshold times is one burst. */
static void flush_group(struct wp_pool *pool, struct wp_client *c, struct wp_client_stats *cs)
{
    struct stats_nplus1_group *g = cs->group;
    int threshold = wp_rt.cfg ? wp_rt.cfg->nplus1_threshold : 0;
    for (int i = 0; i < STATS_NPLUS1_SLOTS; i++) {
        struct stats_nplus1_slot *slot = &g->slots[i];
        if (slot->fp && threshold > 0 && slot->count >= (uint32_t)threshold)
            report_burst(pool, c, cs, slot);
    }
    memset(g->slots, 0, sizeof g->slots);
    g->started_us = 0;
}

static void count_in_group(struct stats_nplus1_group *g, uint64_t fp, int64_t server_us)
{
    struct stats_nplus1_slot *slot = NULL, *fewest = &g->slots[0];
    for (int i = 0; i < STATS_NPLUS1_SLOTS && !slot; i++) {
        struct stats_nplus1_slot *s = &g->slots[i];
        if (s->fp == fp || s->fp == 0)
            slot = s;
        else if (s->count < fewest->count)
            fewest = s;
    }
    if (!slot) {
        /* Eight different statements in a row: the least repeated one is no burst. */
        slot = fewest;
        slot->count = 0;
        slot->total_us = 0;
    }
    slot->fp = fp;
    slot->count++;
    slot->total_us += server_us;
}

/*
 * Group queries by transaction, or outside transactions by nplus1_window_ms from the
 * group's first query; a statement seen nplus1_threshold times in one group is an
 * N+1 burst, reported once when the group closes with its full count.
 */
static void detect_nplus1(struct wp_pool *pool, struct wp_client *c, struct wp_client_stats *cs,
                          int64_t started_us, int64_t server_us, char tx_status)
{
    const struct wp_config *cfg = wp_rt.cfg;
    if (!cfg || cfg->nplus1_threshold <= 0)
        return;
    if (!cs->group && !(cs->group = calloc(1, sizeof *cs->group)))
        return;
    struct stats_nplus1_group *g = cs->group;
    int in_xact_after = tx_status == 'T' || tx_status == 'E';
    char is_xact = (char)(cs->in_xact || in_xact_after);
    if (g->started_us) {
        int64_t window_us = cfg->nplus1_window_ms * 1000;
        if (g->is_xact != is_xact || (!is_xact && started_us - g->started_us > window_us))
            flush_group(pool, c, cs);
    }
    if (!g->started_us) {
        g->is_xact = is_xact;
        g->started_us = started_us > 0 ? started_us : 1;
    }
    if (cs->fp)
        count_in_group(g, cs->fp, server_us);
    if (is_xact && !in_xact_after)
        flush_group(pool, c, cs); /* the transaction just ended */
}

/* ---------------------------------------------------------------- end of a query */

static void note_statement(struct wp_pool_stats *ps, const struct wp_client_stats *cs,
                           int64_t server_us)
{
    struct stats_top_entry *e = cs->fp ? find_hinted(&ps->top, cs->top_hint, cs->fp) : NULL;
    if (!e)
        return; /* evicted while it ran, or the table is off */
    e->calls++;
    e->total_us += server_us;
    if (server_us > e->max_us)
        e->max_us = server_us;
    if (cs->sqlstate[0])
        e->errors++;
}

void stats_query_end(struct wp_pool *pool, struct wp_client *c, struct wp_client_stats *cs,
                     char tx_status, int64_t now_us)
{
    struct wp_pool_stats *ps = stats_of(pool);
    if (!ps)
        return;
    ps->queries++;
    if (!cs) {
        hist_add(&ps->query_us, 0);
        return;
    }
    int64_t started = cs->query_started_us;
    int64_t server_us = started ? now_us - started : 0;
    if (server_us < 0)
        server_us = 0;
    hist_add(&ps->query_us, server_us);
    if (cs->sqlstate[0])
        ps->query_errors++;
    note_statement(ps, cs, server_us);
    detect_nplus1(pool, c, cs, started ? started : now_us, server_us, tx_status);

    int64_t slow_ms = wp_rt.cfg ? wp_rt.cfg->log_slow_queries_ms : 0;
    if (slow_ms > 0 && cs->wait_us + server_us >= slow_ms * 1000) {
        ps->slow_queries++;
        log_slow_query(pool, c, cs, server_us);
    }

    int in_xact_after = tx_status == 'T' || tx_status == 'E';
    if (!in_xact_after && cs->xact_started_us) {
        ps->xacts++;
        hist_add(&ps->xact_us, now_us - cs->xact_started_us);
        cs->xact_started_us = 0;
    }
    cs->in_xact = (char)in_xact_after;
    cs->query_started_us = 0;
    cs->fp = 0;
    cs->wait_us = 0;
    cs->sqlstate[0] = '\0';
    cs->raw_len = 0;
}

void stats_snapshot_add(struct stats_snapshot *into, const struct stats_snapshot *s)
{
    into->at_ms = s->at_ms;
    into->xacts += s->xacts;
    into->queries += s->queries;
    into->bytes_in += s->bytes_in;
    into->bytes_out += s->bytes_out;
    into->waits += s->waits;
    into->xact_us += s->xact_us;
    into->query_us += s->query_us;
    into->wait_us += s->wait_us;
    into->client_parses += s->client_parses;
    into->server_parses += s->server_parses;
    into->binds += s->binds;
}

void stats_client_closed(struct wp_pool *pool, struct wp_client *c, struct wp_client_stats *cs)
{
    if (!cs)
        return;
    if (cs->group && cs->group->started_us)
        flush_group(pool, c, cs);
    free(cs->group);
    cs->group = NULL;
    free(cs->raw);
    cs->raw = NULL;
    cs->raw_len = 0;
    free(cs->parse_text);
    cs->parse_text = NULL;
    cs->parse_len = 0;
}

/* ---------------------------------------------------------------- cold events */

void stats_server_opened(struct wp_pool *pool)
{
    struct wp_pool_stats *ps = stats_of(pool);
    if (!ps)
        return;
    ps->servers_opened++;
    ps->last_connect = 1;
}

void stats_connect_failed(struct wp_pool *pool)
{
    struct wp_pool_stats *ps = stats_of(pool);
    if (!ps)
        return;
    ps->connect_failures++;
    ps->last_connect = -1;
}

void stats_server_closed(struct wp_pool *pool, const char *reason)
{
    struct wp_pool_stats *ps = stats_of(pool);
    if (ps)
        ps->servers_closed[stats_classify_close(reason)]++;
}

void stats_timeout(struct wp_pool *pool, enum stats_timeout_kind kind)
{
    if ((unsigned)kind >= STATS_TIMEOUT_KINDS)
        return;
    struct wp_pool_stats *ps = stats_of(pool);
    if (ps)
        ps->timeouts[kind]++;
    else
        stats_global.timeouts[kind]++;
}

void stats_cancel(struct wp_pool *pool)
{
    struct wp_pool_stats *ps = stats_of(pool);
    if (ps)
        ps->cancels++;
}

void stats_prepared(struct wp_pool *pool, enum stats_prepared_event event)
{
    struct wp_pool_stats *ps = stats_of(pool);
    if (ps && (unsigned)event < STATS_PREPARED_EVENTS)
        ps->prepared[event]++;
}

/* ---------------------------------------------------------------- for renderers */

enum stats_close_reason stats_classify_close(const char *reason)
{
    static const struct {
        const char *needle;
        enum stats_close_reason reason;
    } rules[] = {
        {"server_lifetime", STATS_CLOSE_LIFETIME},
        {"server_idle_timeout", STATS_CLOSE_IDLE_TIMEOUT},
        {"server_connect_timeout", STATS_CLOSE_CONNECT_TIMEOUT},
        {"connect failed", STATS_CLOSE_CONNECT_FAILED},
        {"cannot watch socket", STATS_CLOSE_CONNECT_FAILED},
        {"shutting down", STATS_CLOSE_SHUTDOWN},
        {"admin console", STATS_CLOSE_ADMIN},
        {"closed the connection", STATS_CLOSE_SERVER_ERROR},
        {"write to server failed", STATS_CLOSE_SERVER_ERROR},
        {"invalid message", STATS_CLOSE_SERVER_ERROR},
        {"did not become idle", STATS_CLOSE_SERVER_ERROR},
        {"server_check_query", STATS_CLOSE_SERVER_ERROR},
        {"above its size limit", STATS_CLOSE_NOT_REUSABLE}, /* max_pool_size lowered */
        {"retired", STATS_CLOSE_NOT_REUSABLE},
        {"not reusable", STATS_CLOSE_NOT_REUSABLE},
        {"client left", STATS_CLOSE_NOT_REUSABLE},
    };
    if (!reason)
        return STATS_CLOSE_OTHER;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (strstr(reason, rules[i].needle))
            return rules[i].reason;
    return STATS_CLOSE_OTHER;
}

const char *stats_close_reason_name(enum stats_close_reason reason)
{
    static const char *const names[STATS_CLOSE_REASONS] = {
        "lifetime",     "idle_timeout", "connect_failed", "connect_timeout", "server_error",
        "not_reusable", "shutdown",     "admin",          "other",
    };
    return (unsigned)reason < STATS_CLOSE_REASONS ? names[reason] : "other";
}

const char *stats_timeout_name(enum stats_timeout_kind kind)
{
    static const char *const names[STATS_TIMEOUT_KINDS] = {
        "query_timeout",          "query_wait_timeout",
        "client_idle_timeout",    "idle_transaction_timeout",
        "server_connect_timeout", "client_login_timeout",
        "pinned_idle_timeout",    "transaction_timeout",
    };
    return (unsigned)kind < STATS_TIMEOUT_KINDS ? names[kind] : "unknown";
}

const char *stats_prepared_event_name(enum stats_prepared_event event)
{
    static const char *const names[STATS_PREPARED_EVENTS] = {"hit", "miss", "eviction",
                                                             "injected_parse"};
    return (unsigned)event < STATS_PREPARED_EVENTS ? names[event] : "unknown";
}

static void take_snapshot(struct wp_pool *pool, struct stats_snapshot *s, int64_t now_ms)
{
    const struct wp_pool_stats *ps = pool->stats;
    s->at_ms = now_ms;
    s->xacts = ps->xacts;
    s->queries = ps->queries;
    s->bytes_in = pool->bytes_in;
    s->bytes_out = pool->bytes_out;
    s->waits = ps->wait_us.count;
    s->xact_us = ps->xact_us.sum_us;
    s->query_us = ps->query_us.sum_us;
    s->wait_us = ps->wait_us.sum_us;
    s->client_parses = pool->client_parses;
    s->server_parses = pool->server_parses;
    s->binds = pool->binds;
}

/* stats_period: the snapshot period (SHOW STATS averages) and log_stats' interval. */
static int64_t snapshot_period_ms(void)
{
    return wp_rt.cfg && wp_rt.cfg->stats_period > 0 ? wp_rt.cfg->stats_period : STATS_PERIOD_MS;
}

static uint64_t per_second(uint64_t delta, int64_t ms)
{
    return ms > 0 ? delta * 1000 / (uint64_t)ms : 0;
}

static uint64_t average(uint64_t sum, uint64_t count)
{
    return count ? sum / count : 0;
}

/* log_stats: PgBouncer's periodic line, for one pool over the period just ended. */
static void log_period(const struct wp_pool *pool, const struct stats_snapshot *a,
                       const struct stats_snapshot *b)
{
    int64_t ms = b->at_ms - a->at_ms;
    log_info("%s/%s stats: %llu xacts/s, %llu queries/s, in %llu B/s, out %llu B/s, "
             "xact %llu us, query %llu us, wait %llu us",
             pool->dbname, pool->user, (unsigned long long)per_second(b->xacts - a->xacts, ms),
             (unsigned long long)per_second(b->queries - a->queries, ms),
             (unsigned long long)per_second(b->bytes_in - a->bytes_in, ms),
             (unsigned long long)per_second(b->bytes_out - a->bytes_out, ms),
             (unsigned long long)average(b->xact_us - a->xact_us, b->xacts - a->xacts),
             (unsigned long long)average(b->query_us - a->query_us, b->queries - a->queries),
             (unsigned long long)average(b->wait_us - a->wait_us, b->waits - a->waits));
}

/* One pool's period rolls when it is due (and a first snapshot is taken). */
static void roll_period(struct wp_pool *pool, struct wp_pool_stats *ps, int64_t now_ms)
{
    if (ps->last.at_ms == 0) {
        take_snapshot(pool, &ps->last, now_ms);
        ps->prev = ps->last;
    } else if (now_ms - ps->last.at_ms >= snapshot_period_ms()) {
        ps->prev = ps->last;
        take_snapshot(pool, &ps->last, now_ms);
        if (wp_rt.cfg && wp_rt.cfg->log_stats)
            log_period(pool, &ps->prev, &ps->last);
    }
}

void stats_roll_periods(int64_t now_ms)
{
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        if (pool->stats)
            roll_period(pool, pool->stats, now_ms);
    }
}

void stats_collect(int64_t now_ms)
{
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        struct wp_pool_stats *ps = stats_of(pool);
        if (!ps)
            continue;
        ps->cl_active = ps->cl_waiting = ps->cl_idle = ps->cl_login = 0;
        roll_period(pool, ps, now_ms);
    }
    list_for_each_safe(pos, tmp, &wp_rt.clients)
    {
        const struct wp_client *c = list_entry(pos, struct wp_client, all);
        struct wp_pool_stats *ps = c->pool ? c->pool->stats : NULL;
        if (!ps)
            continue;
        switch (c->state) {
        case CL_ACTIVE:
            ps->cl_active++;
            break;
        case CL_WAITING:
            ps->cl_waiting++;
            break;
        case CL_IDLE:
            ps->cl_idle++;
            break;
        case CL_STARTUP:
        case CL_AUTH:
        case CL_WELCOME:
            ps->cl_login++;
            break;
        case CL_CLOSING:
            break;
        }
    }
}

int stats_pool_healthy(struct wp_pool *pool)
{
    if (pool->nservers - pool->nconnecting > 0)
        return 1;
    const struct wp_pool_stats *ps = pool->stats;
    if (ps && ps->last_connect != 0)
        return ps->last_connect > 0;
    return pool->last_error[0] == '\0';
}

void stats_count_servers(const struct wp_pool *pool, int64_t now_ms,
                         struct stats_server_counts *out)
{
    memset(out, 0, sizeof *out);
    int64_t check_delay = wp_rt.cfg ? wp_rt.cfg->server_check_delay : 0;
    const struct wp_list *lists[] = {&pool->idle, &pool->active, &pool->busy};
    for (int i = 0; i < 3; i++) {
        for (const struct wp_list *n = lists[i]->next; n != lists[i]; n = n->next) {
            const struct wp_server *s = list_entry(n, struct wp_server, node);
            out->total++;
            switch (s->state) {
            case SV_IDLE:
                if (check_delay > 0 && now_ms - s->last_used_ms > check_delay)
                    out->used++;
                else
                    out->idle++;
                break;
            case SV_ACTIVE:
                out->active++;
                break;
            case SV_CONNECTING:
                out->connecting++;
                break;
            case SV_RESETTING:
                out->resetting++;
                break;
            case SV_DRAINING:
                out->draining++;
                break;
            case SV_CLOSED:
                out->total--;
                break;
            }
        }
    }
}

int64_t stats_pool_max_wait_us(const struct wp_pool *pool, int64_t now_ms)
{
    if (list_empty(&pool->waiting))
        return 0;
    const struct wp_client *c = list_entry(pool->waiting.next, struct wp_client, node);
    int64_t waited = now_ms - c->wait_started_ms;
    return waited > 0 ? waited * 1000 : 0;
}
