/*
 * stats_http — the HTTP stats endpoint (include/warmpool/stats_http.h): renderers for
 * Prometheus text and JSON, a strict request parser, and a tiny non-blocking server.
 *
 * Each connection reads one request (at most HTTP_MAX_REQUEST bytes, within
 * HTTP_READ_DEADLINE_MS of accepting it), gets one fully rendered response, and is
 * closed after a short lingering drain so that a client still sending (an oversized
 * request) reads our error instead of a reset. The output buffer is bounded by
 * HTTP_MAX_RESPONSE and the write side by an idle timeout, so a stuck reader costs
 * one fd and one buffer until the timeout, and never a blocked loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "warmpool/client.h"
#include "warmpool/config.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/runtime.h"
#include "warmpool/stats.h"
#include "warmpool/stats_http.h"
#include "warmpool/timeouts.h"

#ifndef WARMPOOL_VERSION
#define WARMPOOL_VERSION "0.1.0"
#endif

#define HTTP_MAX_CONNS 64
#define HTTP_MAX_RESPONSE (32u << 20)
#define HTTP_READ_DEADLINE_MS 10000 /* whole request, however slowly it trickles in */
#define HTTP_WRITE_IDLE_MS 10000    /* no write progress for this long: give up */
#define HTTP_DRAIN_MS 2000
#define HTTP_DRAIN_MAX (16u << 20)
#define HTTP_MAX_LISTENERS 8
#define STATEMENTS_DEFAULT_LIMIT 100
#define STATEMENTS_MAX_LIMIT 100000

/* ---------------------------------------------------------------- output helpers */

/* Appends that remember a failure, so renderers check once at the end. */
struct out {
    struct wp_buf *b;
    int failed;
};

__attribute__((format(printf, 2, 3))) static void out_printf(struct out *o, const char *fmt, ...)
{
    va_list ap;
    if (o->failed)
        return;
    for (size_t room = 256;;) {
        if (buf_reserve(o->b, room) < 0) {
            o->failed = 1;
            return;
        }
        size_t avail = o->b->cap - o->b->len;
        va_start(ap, fmt);
        int n = vsnprintf((char *)o->b->data + o->b->len, avail, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)n < avail) {
            o->b->len += (size_t)n;
            return;
        }
        room = (size_t)n + 1;
    }
}

static void out_bytes(struct out *o, const void *p, size_t n)
{
    if (!o->failed && buf_append(o->b, p, n) < 0)
        o->failed = 1;
}

static void out_str(struct out *o, const char *s)
{
    out_bytes(o, s, strlen(s));
}

/* µs as seconds, exactly: 1500 → "0.001500". */
static void out_seconds(struct out *o, int64_t us)
{
    if (us < 0)
        us = 0;
    out_printf(o, "%lld.%06lld", (long long)(us / 1000000), (long long)(us % 1000000));
}

/* Length of the valid UTF-8 sequence at s (of n bytes), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t want;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        want = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        want = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        want = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < want)
        return 0;
    for (size_t i = 1; i < want; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* Overlong forms, surrogates and values beyond U+10FFFF are not UTF-8. */
    if ((want == 3 && cp < 0x800) || (want == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return want;
}

/* A JSON string; bytes that are not UTF-8 become U+FFFD so the document stays valid. */
static void out_json_str(struct out *o, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    out_bytes(o, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            out_bytes(o, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            out_printf(o, "\\u%04x", c);
            i++;
        } else {
            size_t len = utf8_len(p + i, n - i);
            if (len == 0) {
                out_str(o, "\\ufffd");
                i++;
            } else {
                out_bytes(o, p + i, len);
                i += len;
            }
        }
    }
    out_bytes(o, "\"", 1);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void out_label_value(struct out *o, const char *s)
{
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '\\')
            out_str(o, "\\\\");
        else if (*p == '"')
            out_str(o, "\\\"");
        else if (*p == '\n')
            out_str(o, "\\n");
        else
            out_bytes(o, p, 1);
    }
}

/* ---------------------------------------------------------------- Prometheus */

static void prom_family(struct out *o, const char *name, const char *type, const char *help)
{
    out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{database="…",user="…"[,key="value"]} */
static void prom_sample_start(struct out *o, const char *name, const char *suffix,
                              const struct wp_pool *pool, const char *key, const char *value)
{
    out_printf(o, "%s%s{database=\"", name, suffix);
    out_label_value(o, pool->dbname);
    out_str(o, "\",user=\"");
    out_label_value(o, pool->user);
    out_str(o, "\"");
    if (key) {
        out_printf(o, ",%s=\"", key);
        out_label_value(o, value);
        out_str(o, "\"");
    }
    out_str(o, "} ");
}

static void prom_u64(struct out *o, const char *name, const struct wp_pool *pool, const char *key,
                     const char *value, uint64_t v)
{
    prom_sample_start(o, name, "", pool, key, value);
    out_printf(o, "%llu\n", (unsigned long long)v);
}

#define FOR_EACH_POOL(pos, tmp, pool)                                                              \
    list_for_each_safe(pos, tmp, &wp_rt.pools)                                                     \
    if (((pool) = list_entry(pos, struct wp_pool, node))->stats)

/* A pool counter at a fixed place in struct wp_pool_stats. */
struct pool_counter {
    const char *name, *help;
    size_t off;
};

static const struct pool_counter pool_counters[] = {
    {"warmpool_queries_total", "Client requests answered (each ReadyForQuery sent to a client).",
     offsetof(struct wp_pool_stats, queries)},
    {"warmpool_transactions_total", "Transactions completed (autocommit statements count as one).",
     offsetof(struct wp_pool_stats, xacts)},
    {"warmpool_query_errors_total", "Client requests that got an ErrorResponse.",
     offsetof(struct wp_pool_stats, query_errors)},
    {"warmpool_cancels_total", "Cancel requests forwarded to a backend.",
     offsetof(struct wp_pool_stats, cancels)},
    {"warmpool_slow_queries_total", "Queries slower than log_slow_queries_ms.",
     offsetof(struct wp_pool_stats, slow_queries)},
    {"warmpool_nplus1_bursts_total",
     "N+1 bursts: one statement repeated nplus1_threshold times in a transaction or window.",
     offsetof(struct wp_pool_stats, nplus1_bursts)},
    {"warmpool_server_connections_opened_total", "Backend connections opened.",
     offsetof(struct wp_pool_stats, servers_opened)},
    {"warmpool_server_connect_failures_total", "Backend connection attempts that failed.",
     offsetof(struct wp_pool_stats, connect_failures)},
};

static void prom_pool_counters(struct out *o)
{
    struct wp_list *pos, *tmp;
    struct wp_pool *pool;
    for (size_t i = 0; i < sizeof pool_counters / sizeof pool_counters[0]; i++) {
        const struct pool_counter *pc = &pool_counters[i];
        prom_family(o, pc->name, "counter", pc->help);
        FOR_EACH_POOL(pos, tmp, pool)
        {
            prom_u64(o, pc->name, pool, NULL, NULL,
                     *(const uint64_t *)((const char *)pool->stats + pc->off));
        }
    }
    prom_family(o, "warmpool_received_bytes_total", "counter", "Bytes received from clients.");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        prom_u64(o, "warmpool_received_bytes_total", pool, NULL, NULL, pool->bytes_in);
    }
    prom_family(o, "warmpool_sent_bytes_total", "counter",
                "Bytes received from backends for clients.");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        prom_u64(o, "warmpool_sent_bytes_total", pool, NULL, NULL, pool->bytes_out);
    }
}

static void prom_labelled_counters(struct out *o)
{
    struct wp_list *pos, *tmp;
    struct wp_pool *pool;
    prom_family(o, "warmpool_errors_total", "counter",
                "ErrorResponses sent to clients, by SQLSTATE class.");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        const struct wp_pool_stats *ps = pool->stats;
        for (int i = 0; i < ps->nerror_classes; i++)
            prom_u64(o, "warmpool_errors_total", pool, "class", ps->error_classes[i].code,
                     ps->error_classes[i].count);
        if (ps->errors_unclassified)
            prom_u64(o, "warmpool_errors_total", pool, "class", "other", ps->errors_unclassified);
    }
    prom_family(o, "warmpool_timeouts_total", "counter", "Timeouts that fired, by kind.");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        for (int k = 0; k < STATS_TIMEOUT_KINDS; k++)
            prom_u64(o, "warmpool_timeouts_total", pool, "kind", stats_timeout_name(k),
                     pool->stats->timeouts[k]);
    }
    prom_family(o, "warmpool_prepared_statements_total", "counter",
                "Prepared-statement cache events: hit, miss, eviction, injected_parse.");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        const uint64_t *ev = pool->stats->prepared;
        /* The relay counts hits/misses/evictions on the pool; the hook may add more. */
        uint64_t values[STATS_PREPARED_EVENTS] = {
            pool->prepared_hits + ev[STATS_PREPARED_HIT],
            pool->prepared_misses + ev[STATS_PREPARED_MISS],
            pool->prepared_evictions + ev[STATS_PREPARED_EVICTION],
            ev[STATS_PREPARED_INJECTED],
        };
        for (int k = 0; k < STATS_PREPARED_EVENTS; k++)
            prom_u64(o, "warmpool_prepared_statements_total", pool, "event",
                     stats_prepared_event_name(k), values[k]);
    }
    prom_family(o, "warmpool_server_connections_closed_total", "counter",
                "Backend connections closed, by reason.");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        for (int r = 0; r < STATS_CLOSE_REASONS; r++)
            prom_u64(o, "warmpool_server_connections_closed_total", pool, "reason",
                     stats_close_reason_name(r), pool->stats->servers_closed[r]);
    }
}

static void prom_gauges(struct out *o, int64_t now_ms)
{
    struct wp_list *pos, *tmp;
    struct wp_pool *pool;
    prom_family(o, "warmpool_pool_clients", "gauge", "Client connections of the pool by state.");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        const struct wp_pool_stats *ps = pool->stats;
        prom_u64(o, "warmpool_pool_clients", pool, "state", "active", (uint64_t)ps->cl_active);
        prom_u64(o, "warmpool_pool_clients", pool, "state", "waiting", (uint64_t)ps->cl_waiting);
        prom_u64(o, "warmpool_pool_clients", pool, "state", "idle", (uint64_t)ps->cl_idle);
        prom_u64(o, "warmpool_pool_clients", pool, "state", "login", (uint64_t)ps->cl_login);
    }
    prom_family(o, "warmpool_pool_servers", "gauge", "Backend connections of the pool by state.");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        struct stats_server_counts sc;
        stats_count_servers(pool, now_ms, &sc);
        const char *names[] = {"active", "idle", "used", "connecting", "resetting", "draining"};
        int values[] = {sc.active, sc.idle, sc.used, sc.connecting, sc.resetting, sc.draining};
        for (int i = 0; i < 6; i++)
            prom_u64(o, "warmpool_pool_servers", pool, "state", names[i], (uint64_t)values[i]);
    }
    prom_family(o, "warmpool_pool_max_servers", "gauge", "max_pool_size of the pool.");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        prom_u64(o, "warmpool_pool_max_servers", pool, NULL, NULL,
                 (uint64_t)pool->settings.max_pool_size);
    }
    prom_family(o, "warmpool_pool_max_wait_seconds", "gauge",
                "How long the oldest waiting client has waited for a backend.");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        prom_sample_start(o, "warmpool_pool_max_wait_seconds", "", pool, NULL, NULL);
        out_seconds(o, stats_pool_max_wait_us(pool, now_ms));
        out_str(o, "\n");
    }
    prom_family(o, "warmpool_pool_paused", "gauge", "1 while the pool is paused (PAUSE).");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        prom_u64(o, "warmpool_pool_paused", pool, NULL, NULL, pool->paused ? 1 : 0);
    }
    prom_family(o, "warmpool_pool_healthy", "gauge",
                "1 when the pool has a live backend or its last connect attempt worked.");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        prom_u64(o, "warmpool_pool_healthy", pool, NULL, NULL, (uint64_t)stats_pool_healthy(pool));
    }
    prom_family(o, "warmpool_top_statements", "gauge", "Statements tracked in the pool's table.");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        prom_u64(o, "warmpool_top_statements", pool, NULL, NULL, (uint64_t)pool->stats->top.n);
    }
}

static void prom_histogram(struct out *o, const char *name, const char *help, size_t off)
{
    struct wp_list *pos, *tmp;
    struct wp_pool *pool;
    prom_family(o, name, "histogram", help);
    FOR_EACH_POOL(pos, tmp, pool)
    {
        const struct stats_hist *h = (const struct stats_hist *)((const char *)pool->stats + off);
        uint64_t cumulative = 0;
        for (int i = 0; i < STATS_HIST_FINITE; i++) {
            cumulative += h->buckets[i];
            char le[32];
            int64_t bound = hist_bucket_bound(i);
            snprintf(le, sizeof le, "%lld.%06lld", (long long)(bound / 1000000),
                     (long long)(bound % 1000000));
            prom_sample_start(o, name, "_bucket", pool, "le", le);
            out_printf(o, "%llu\n", (unsigned long long)cumulative);
        }
        cumulative += h->buckets[STATS_HIST_FINITE];
        prom_sample_start(o, name, "_bucket", pool, "le", "+Inf");
        out_printf(o, "%llu\n", (unsigned long long)cumulative);
        prom_sample_start(o, name, "_sum", pool, NULL, NULL);
        out_seconds(o, (int64_t)h->sum_us);
        out_str(o, "\n");
        prom_sample_start(o, name, "_count", pool, NULL, NULL);
        out_printf(o, "%llu\n", (unsigned long long)h->count);
    }
}

static void prom_globals(struct out *o)
{
    prom_family(o, "warmpool_info", "gauge", "Constant 1, labelled with the warmpool version.");
    out_str(o, "warmpool_info{version=\"" WARMPOOL_VERSION "\"} 1\n");
    prom_family(o, "warmpool_client_connections", "gauge", "Client connections open.");
    out_printf(o, "warmpool_client_connections %d\n", wp_rt.nclients);
    prom_family(o, "warmpool_max_client_connections", "gauge", "max_client_conn.");
    out_printf(o, "warmpool_max_client_connections %d\n", wp_rt.cfg ? wp_rt.cfg->max_client_conn : 0);
    prom_family(o, "warmpool_login_timeouts_total", "counter",
                "Clients closed by client_login_timeout before they had a pool.");
    out_printf(o, "warmpool_login_timeouts_total %llu\n",
               (unsigned long long)stats_global.timeouts[STATS_TIMEOUT_CLIENT_LOGIN]);
}

int stats_render_prometheus(struct wp_buf *b, int64_t now_ms)
{
    struct out o = {b, 0};
    stats_collect(now_ms);
    prom_globals(&o);
    prom_gauges(&o, now_ms);
    prom_pool_counters(&o);
    prom_labelled_counters(&o);
    prom_histogram(&o, "warmpool_query_duration_seconds",
                   "Time from a request's first message to its ReadyForQuery, on the backend.",
                   offsetof(struct wp_pool_stats, query_us));
    prom_histogram(&o, "warmpool_transaction_duration_seconds",
                   "Time from a transaction's first request to the ReadyForQuery that ends it.",
                   offsetof(struct wp_pool_stats, xact_us));
    prom_histogram(&o, "warmpool_wait_duration_seconds",
                   "Time clients waited for a backend, 0 when one was idle.",
                   offsetof(struct wp_pool_stats, wait_us));
    return o.failed ? -1 : 0;
}

/* ---------------------------------------------------------------- JSON */

static void json_pool_key(struct out *o, const struct wp_pool *pool)
{
    out_str(o, "{\"database\":");
    out_json_str(o, pool->dbname);
    out_str(o, ",\"user\":");
    out_json_str(o, pool->user);
}

static void json_hist(struct out *o, const char *key, const struct stats_hist *h)
{
    out_printf(o,
               ",\"%s\":{\"count\":%llu,\"sum\":%llu,\"max\":%lld,\"p50\":%lld,\"p95\":%lld,"
               "\"p99\":%lld}",
               key, (unsigned long long)h->count, (unsigned long long)h->sum_us,
               (long long)h->max_us, (long long)hist_quantile(h, 0.50),
               (long long)hist_quantile(h, 0.95), (long long)hist_quantile(h, 0.99));
}

/* Per-second averages between the two latest period snapshots. */
static void json_averages(struct out *o, const struct wp_pool_stats *ps)
{
    const struct stats_snapshot *a = &ps->prev, *b = &ps->last;
    double secs = (double)(b->at_ms - a->at_ms) / 1000.0;
    uint64_t xacts = b->xacts - a->xacts, queries = b->queries - a->queries;
    uint64_t waits = b->waits - a->waits;
    if (secs <= 0) {
        out_str(o, ",\"averages\":null");
        return;
    }
    out_printf(o,
               ",\"averages\":{\"period_s\":%.0f,\"xacts_per_s\":%.3f,\"queries_per_s\":%.3f,"
               "\"received_per_s\":%.0f,\"sent_per_s\":%.0f,\"xact_us\":%llu,\"query_us\":%llu,"
               "\"wait_us\":%llu}",
               secs, (double)xacts / secs, (double)queries / secs,
               (double)(b->bytes_in - a->bytes_in) / secs,
               (double)(b->bytes_out - a->bytes_out) / secs,
               (unsigned long long)(xacts ? (b->xact_us - a->xact_us) / xacts : 0),
               (unsigned long long)(queries ? (b->query_us - a->query_us) / queries : 0),
               (unsigned long long)(waits ? (b->wait_us - a->wait_us) / waits : 0));
}

static void json_pool_stats(struct out *o, const struct wp_pool *pool)
{
    const struct wp_pool_stats *ps = pool->stats;
    json_pool_key(o, pool);
    out_printf(o,
               ",\"queries\":%llu,\"transactions\":%llu,\"query_errors\":%llu,"
               "\"bytes_received\":%llu,\"bytes_sent\":%llu,\"cancels\":%llu,"
               "\"slow_queries\":%llu,\"nplus1_bursts\":%llu,\"servers_opened\":%llu,"
               "\"connect_failures\":%llu",
               (unsigned long long)ps->queries, (unsigned long long)ps->xacts,
               (unsigned long long)ps->query_errors, (unsigned long long)pool->bytes_in,
               (unsigned long long)pool->bytes_out, (unsigned long long)ps->cancels,
               (unsigned long long)ps->slow_queries, (unsigned long long)ps->nplus1_bursts,
               (unsigned long long)ps->servers_opened, (unsigned long long)ps->connect_failures);
    json_hist(o, "query_us", &ps->query_us);
    json_hist(o, "transaction_us", &ps->xact_us);
    json_hist(o, "wait_us", &ps->wait_us);
    out_str(o, ",\"errors_by_class\":{");
    for (int i = 0; i < ps->nerror_classes; i++) {
        out_str(o, i ? "," : "");
        out_json_str(o, ps->error_classes[i].code);
        out_printf(o, ":%llu", (unsigned long long)ps->error_classes[i].count);
    }
    out_str(o, "},\"timeouts\":{");
    for (int k = 0; k < STATS_TIMEOUT_KINDS; k++)
        out_printf(o, "%s\"%s\":%llu", k ? "," : "", stats_timeout_name(k),
                   (unsigned long long)ps->timeouts[k]);
    out_printf(o,
               "},\"prepared\":{\"hit\":%llu,\"miss\":%llu,\"eviction\":%llu,"
               "\"injected_parse\":%llu}",
               (unsigned long long)(pool->prepared_hits + ps->prepared[STATS_PREPARED_HIT]),
               (unsigned long long)(pool->prepared_misses + ps->prepared[STATS_PREPARED_MISS]),
               (unsigned long long)(pool->prepared_evictions +
                                    ps->prepared[STATS_PREPARED_EVICTION]),
               (unsigned long long)ps->prepared[STATS_PREPARED_INJECTED]);
    out_str(o, ",\"servers_closed\":{");
    for (int r = 0; r < STATS_CLOSE_REASONS; r++)
        out_printf(o, "%s\"%s\":%llu", r ? "," : "", stats_close_reason_name(r),
                   (unsigned long long)ps->servers_closed[r]);
    out_str(o, "}");
    json_averages(o, ps);
    out_str(o, "}");
}

int stats_render_stats_json(struct wp_buf *b, int64_t now_ms)
{
    struct out o = {b, 0};
    struct wp_list *pos, *tmp;
    struct wp_pool *pool;
    int first = 1;
    stats_collect(now_ms);
    out_printf(&o, "{\"version\":\"%s\",\"clients\":%d,\"pools\":[", WARMPOOL_VERSION,
               wp_rt.nclients);
    FOR_EACH_POOL(pos, tmp, pool)
    {
        out_str(&o, first ? "\n" : ",\n");
        first = 0;
        json_pool_stats(&o, pool);
    }
    out_str(&o, "\n]}\n");
    return o.failed ? -1 : 0;
}

static void json_pool_state(struct out *o, const struct wp_pool *pool, int64_t now_ms)
{
    const struct wp_pool_stats *ps = pool->stats;
    struct stats_server_counts sc;
    stats_count_servers(pool, now_ms, &sc);
    json_pool_key(o, pool);
    out_printf(o, ",\"pool_mode\":\"%s\",\"paused\":%s,\"healthy\":%s,\"max_pool_size\":%d",
               config_mode_name(pool->settings.pool_mode), pool->paused ? "true" : "false",
               stats_pool_healthy((struct wp_pool *)pool) ? "true" : "false",
               pool->settings.max_pool_size);
    out_printf(o, ",\"clients\":{\"active\":%d,\"waiting\":%d,\"idle\":%d,\"login\":%d}",
               ps->cl_active, ps->cl_waiting, ps->cl_idle, ps->cl_login);
    out_printf(o,
               ",\"servers\":{\"active\":%d,\"idle\":%d,\"used\":%d,\"connecting\":%d,"
               "\"resetting\":%d,\"draining\":%d,\"total\":%d}",
               sc.active, sc.idle, sc.used, sc.connecting, sc.resetting, sc.draining, sc.total);
    out_printf(o, ",\"max_wait_us\":%lld", (long long)stats_pool_max_wait_us(pool, now_ms));
    json_hist(o, "wait_us", &ps->wait_us);
    out_str(o, ",\"last_error\":");
    out_json_str(o, pool->last_error);
    out_str(o, "}");
}

int stats_render_pools_json(struct wp_buf *b, int64_t now_ms)
{
    struct out o = {b, 0};
    struct wp_list *pos, *tmp;
    struct wp_pool *pool;
    int first = 1;
    stats_collect(now_ms);
    out_str(&o, "{\"pools\":[");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        out_str(&o, first ? "\n" : ",\n");
        first = 0;
        json_pool_state(&o, pool, now_ms);
    }
    out_str(&o, "\n]}\n");
    return o.failed ? -1 : 0;
}

struct ranked_statement {
    const struct wp_pool *pool;
    const struct stats_top_entry *e;
};

static int by_statement_total(const void *a, const void *b)
{
    const struct stats_top_entry *x = ((const struct ranked_statement *)a)->e;
    const struct stats_top_entry *y = ((const struct ranked_statement *)b)->e;
    if (x->total_us != y->total_us)
        return x->total_us > y->total_us ? -1 : 1;
    if (x->calls != y->calls)
        return x->calls > y->calls ? -1 : 1;
    return x->fp < y->fp ? -1 : x->fp > y->fp;
}

int stats_render_statements_json(struct wp_buf *b, int limit)
{
    struct out o = {b, 0};
    struct wp_list *pos, *tmp;
    struct wp_pool *pool;
    size_t total = 0, n = 0;
    FOR_EACH_POOL(pos, tmp, pool)
    {
        total += (size_t)pool->stats->top.n;
    }
    struct ranked_statement *all = malloc((total + 1) * sizeof *all);
    if (!all)
        return -1;
    FOR_EACH_POOL(pos, tmp, pool)
    {
        const struct stats_top *t = &pool->stats->top;
        for (int i = 0; i < t->n; i++)
            if (t->entries[i].calls > 0)
                all[n++] = (struct ranked_statement){pool, &t->entries[i]};
    }
    qsort(all, n, sizeof *all, by_statement_total);
    if (limit >= 0 && (size_t)limit < n)
        n = (size_t)limit;
    out_str(&o, "{\"statements\":[");
    for (size_t i = 0; i < n; i++) {
        const struct stats_top_entry *e = all[i].e;
        out_str(&o, i ? ",\n" : "\n");
        json_pool_key(&o, all[i].pool);
        out_printf(&o,
                   ",\"fingerprint\":\"%016llx\",\"calls\":%llu,\"total_us\":%lld,"
                   "\"mean_us\":%lld,\"max_us\":%lld,\"errors\":%llu,\"nplus1_bursts\":%llu,"
                   "\"query\":",
                   (unsigned long long)e->fp, (unsigned long long)e->calls,
                   (long long)e->total_us, (long long)(e->total_us / (int64_t)e->calls),
                   (long long)e->max_us, (unsigned long long)e->errors,
                   (unsigned long long)e->nplus1);
        out_json_str(&o, e->text);
        out_str(&o, "}");
    }
    out_str(&o, "\n]}\n");
    free(all);
    return o.failed ? -1 : 0;
}

int stats_render_health_json(struct wp_buf *b, int64_t now_ms)
{
    struct out o = {b, 0};
    struct wp_list *pos, *tmp;
    int failing = 0, pools = 0;
    (void)now_ms;
    out_str(&o, "{\"failing\":[");
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        pools++;
        if (stats_pool_healthy(pool))
            continue;
        out_str(&o, failing++ ? "," : "");
        json_pool_key(&o, pool);
        out_str(&o, ",\"error\":");
        out_json_str(&o, pool->last_error);
        out_str(&o, "}");
    }
    out_printf(&o, "],\"pools\":%d,\"status\":\"%s\"}\n", pools, failing ? "unhealthy" : "ok");
    if (o.failed)
        return -1;
    return failing ? 503 : 200;
}

/* ---------------------------------------------------------------- request parsing */

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Request line: METHOD SP target SP HTTP/1.x CRLF. *next is where headers start. */
static enum http_parse parse_request_line(const char *buf, size_t len, struct http_request *req,
                                          size_t *next)
{
    size_t i = 0;
    while (i < len && buf[i] >= 'A' && buf[i] <= 'Z')
        i++;
    if (i >= sizeof req->method)
        return HTTP_BAD_REQUEST;
    if (i == len)
        return HTTP_INCOMPLETE;
    if (i == 0 || buf[i] != ' ')
        return HTTP_BAD_REQUEST;
    memcpy(req->method, buf, i);
    req->method[i] = '\0';

    size_t t = ++i;
    while (i < len && (unsigned char)buf[i] > 0x20 && (unsigned char)buf[i] < 0x7f)
        i++;
    if (i - t >= HTTP_MAX_TARGET)
        return HTTP_URI_TOO_LONG;
    if (i == len)
        return HTTP_INCOMPLETE;
    if (i == t || buf[i] != ' ')
        return HTTP_BAD_REQUEST;
    size_t target_len = i - t;
    const char *target = buf + t;

    static const char proto[] = "HTTP/";
    size_t v = ++i;
    for (size_t k = 0; k < sizeof proto - 1; k++, i++) {
        if (i == len)
            return HTTP_INCOMPLETE;
        if (buf[i] != proto[k])
            return HTTP_BAD_REQUEST;
    }
    /* digit '.' digit, then CRLF (a bare LF is tolerated) */
    if (len - i < 3)
        return HTTP_INCOMPLETE;
    if (buf[i] < '0' || buf[i] > '9' || buf[i + 1] != '.' || buf[i + 2] < '0' || buf[i + 2] > '9')
        return HTTP_BAD_REQUEST;
    if (buf[i] != '1')
        return HTTP_VERSION_NOT_SUPPORTED;
    req->minor_version = buf[i + 2] - '0';
    i += 3;
    if (i < len && buf[i] == '\r')
        i++;
    if (i == len)
        return HTTP_INCOMPLETE;
    if (buf[i] != '\n')
        return HTTP_BAD_REQUEST;
    (void)v;
    *next = i + 1;

    /* origin-form "/path?query", or absolute-form "http://host/path?query" */
    if (target_len > 7 && strncasecmp(target, "http://", 7) == 0) {
        const char *slash = memchr(target + 7, '/', target_len - 7);
        if (!slash)
            slash = target + target_len; /* "http://host" means "/" */
        target_len -= (size_t)(slash - target);
        target = slash;
    }
    if (target_len == 0) {
        strcpy(req->path, "/");
        return HTTP_OK;
    }
    if (target[0] != '/')
        return HTTP_BAD_REQUEST;
    const char *q = memchr(target, '?', target_len);
    size_t path_len = q ? (size_t)(q - target) : target_len;
    memcpy(req->path, target, path_len);
    req->path[path_len] = '\0';
    if (q) {
        size_t qlen = target_len - path_len - 1;
        memcpy(req->query, q + 1, qlen);
        req->query[qlen] = '\0';
    }
    return HTTP_OK;
}

/* Content-Length: digits only; a second one must agree. */
static enum http_parse take_content_length(const char *v, size_t n, struct http_request *req,
                                           int *seen)
{
    size_t value = 0;
    if (n == 0 || n > 9)
        return n > 9 && strspn(v, "0123456789") >= n ? HTTP_BODY_TOO_LARGE : HTTP_BAD_REQUEST;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return HTTP_BAD_REQUEST;
        value = value * 10 + (size_t)(v[i] - '0');
    }
    if (*seen && value != req->body_len)
        return HTTP_BAD_REQUEST;
    *seen = 1;
    req->body_len = value;
    return HTTP_OK;
}

/* One header line [line, end) without its line break. */
static enum http_parse parse_header(const char *line, size_t n, struct http_request *req,
                                    int *seen_length)
{
    if (line[0] == ' ' || line[0] == '\t')
        return HTTP_BAD_REQUEST; /* obsolete line folding */
    const char *colon = memchr(line, ':', n);
    if (!colon || colon == line)
        return HTTP_BAD_REQUEST;
    size_t name_len = (size_t)(colon - line);
    for (size_t i = 0; i < name_len; i++)
        if (!is_tchar((unsigned char)line[i]))
            return HTTP_BAD_REQUEST;
    const char *v = colon + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    for (const char *p = v; p < end; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return HTTP_BAD_REQUEST;
    if (name_len == 14 && strncasecmp(line, "content-length", 14) == 0)
        return take_content_length(v, (size_t)(end - v), req, seen_length);
    if (name_len == 17 && strncasecmp(line, "transfer-encoding", 17) == 0)
        return HTTP_BAD_REQUEST; /* no request here has a body worth streaming */
    return HTTP_OK;
}

enum http_parse http_parse_request(const char *buf, size_t len, struct http_request *req)
{
    size_t pos = 0;
    int seen_length = 0;
    memset(req, 0, sizeof *req);
    enum http_parse r = parse_request_line(buf, len, req, &pos);
    if (r == HTTP_INCOMPLETE && len >= HTTP_MAX_REQUEST)
        return HTTP_URI_TOO_LONG;
    if (r != HTTP_OK)
        return r;
    for (;;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl)
            return len >= HTTP_MAX_REQUEST ? HTTP_HEADERS_TOO_LARGE : HTTP_INCOMPLETE;
        size_t end = (size_t)(nl - buf);
        if (end + 1 > HTTP_MAX_REQUEST)
            return HTTP_HEADERS_TOO_LARGE;
        size_t n = end - pos;
        if (n > 0 && buf[end - 1] == '\r')
            n--;
        if (n == 0) {
            req->head_len = end + 1;
            break;
        }
        r = parse_header(buf + pos, n, req, &seen_length);
        if (r != HTTP_OK)
            return r;
        pos = end + 1;
    }
    if (req->body_len > HTTP_MAX_REQUEST - req->head_len)
        return HTTP_BODY_TOO_LARGE;
    return HTTP_OK;
}

/* ---------------------------------------------------------------- responses */

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

static const char index_text[] =
    "warmpool stats endpoint\n"
    "  /metrics     Prometheus text format\n"
    "  /stats       counters, histograms and percentiles per pool (JSON)\n"
    "  /pools       clients and servers per pool (JSON)\n"
    "  /statements  top statements by total time (JSON, ?limit=N)\n"
    "  /health      200 when every pool can reach its database, else 503\n";

static int statements_limit(const char *query)
{
    for (const char *p = query; p && *p;) {
        if (strncmp(p, "limit=", 6) == 0) {
            char *end;
            long v = strtol(p + 6, &end, 10);
            if (end != p + 6 && (*end == '\0' || *end == '&') && v >= 0)
                return v > STATEMENTS_MAX_LIMIT ? STATEMENTS_MAX_LIMIT : (int)v;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return STATEMENTS_DEFAULT_LIMIT;
}

/* Status and body for a well-formed request. */
static int route(const struct http_request *req, struct wp_buf *body, const char **type,
                 int64_t now_ms)
{
    static const char json[] = "application/json";
    const char *p = req->path;
    *type = "text/plain; charset=utf-8";
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
        return 405;
    if (strcmp(p, "/metrics") == 0) {
        *type = "text/plain; version=0.0.4; charset=utf-8";
        return stats_render_prometheus(body, now_ms) < 0 ? 500 : 200;
    }
    if (strcmp(p, "/stats") == 0) {
        *type = json;
        return stats_render_stats_json(body, now_ms) < 0 ? 500 : 200;
    }
    if (strcmp(p, "/pools") == 0) {
        *type = json;
        return stats_render_pools_json(body, now_ms) < 0 ? 500 : 200;
    }
    if (strcmp(p, "/statements") == 0) {
        *type = json;
        return stats_render_statements_json(body, statements_limit(req->query)) < 0 ? 500 : 200;
    }
    if (strcmp(p, "/health") == 0) {
        *type = json;
        int status = stats_render_health_json(body, now_ms);
        return status < 0 ? 500 : status;
    }
    if (strcmp(p, "/") == 0)
        return buf_append(body, index_text, sizeof index_text - 1) < 0 ? 500 : 200;
    return 404;
}

int http_respond(const struct http_request *req, int status, struct wp_buf *out, int64_t now_ms)
{
    struct wp_buf body = {0};
    const char *type = "text/plain; charset=utf-8";
    if (status == HTTP_OK && req)
        status = route(req, &body, &type, now_ms);
    if (status == 200 && buf_unread(&body) > HTTP_MAX_RESPONSE)
        status = 500;
    if (status != 200 && status != 503) {
        buf_reset(&body);
        type = "text/plain; charset=utf-8";
        char text[64];
        int n = snprintf(text, sizeof text, "%d %s\n", status, status_text(status));
        buf_append(&body, text, (size_t)n);
    }
    int head_only = req && strcmp(req->method, "HEAD") == 0;
    struct out o = {out, 0};
    out_printf(&o,
               "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
               "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
               status, status_text(status), type, buf_unread(&body),
               status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (!head_only)
        out_bytes(&o, buf_head(&body), buf_unread(&body));
    buf_free(&body);
    return status;
}

/* ---------------------------------------------------------------- server */

enum conn_phase { PHASE_READ, PHASE_WRITE, PHASE_DRAIN };

struct http_conn {
    struct wp_list node;
    int fd;
    struct event *ev;
    enum conn_phase phase;
    struct wp_buf in, out;
    int64_t deadline_ms; /* read phase: the whole request must be in by then */
    size_t drained;
    char peer[64];
};

struct http_listener {
    int fd;
    struct event *ev;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* unix socket file, or "" */
};

static struct http_listener listeners[HTTP_MAX_LISTENERS];
static int nlisteners;
static struct wp_list conns = {&conns, &conns};
static int nconns;
/* What the listeners were opened for, to notice changes on reload. */
static char *bound_socket, *bound_listen;
static int bound_mode;

static void conn_close(struct http_conn *hc)
{
    list_remove(&hc->node);
    nconns--;
    if (hc->ev)
        event_free(hc->ev);
    close(hc->fd);
    buf_free(&hc->in);
    buf_free(&hc->out);
    free(hc);
}

static void on_conn_event(evutil_socket_t fd, short what, void *arg);

/* Watch for `what` with a timeout of ms from now. */
static int conn_watch(struct http_conn *hc, short what, int64_t ms)
{
    if (hc->ev)
        event_free(hc->ev);
    hc->ev = event_new(wp_rt.base, hc->fd, what | EV_PERSIST, on_conn_event, hc);
    if (ms < 1)
        ms = 1;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return hc->ev && event_add(hc->ev, &tv) == 0 ? 0 : -1;
}

static void conn_drain(struct http_conn *hc)
{
    char scratch[4096];
    for (;;) {
        ssize_t n = read(hc->fd, scratch, sizeof scratch);
        if (n > 0) {
            hc->drained += (size_t)n;
            if (hc->drained > HTTP_DRAIN_MAX)
                break;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        break; /* EOF or error */
    }
    conn_close(hc);
}

/* The response is out: stop writing, and read until the client closes, briefly. */
static void conn_linger(struct http_conn *hc)
{
    shutdown(hc->fd, SHUT_WR);
    hc->phase = PHASE_DRAIN;
    buf_free(&hc->in);
    buf_free(&hc->out);
    if (conn_watch(hc, EV_READ, HTTP_DRAIN_MS) < 0) {
        conn_close(hc);
        return;
    }
    conn_drain(hc);
}

static void conn_write(struct http_conn *hc)
{
    while (buf_unread(&hc->out) > 0) {
        ssize_t n = write(hc->fd, buf_head(&hc->out), buf_unread(&hc->out));
        if (n > 0) {
            buf_consume(&hc->out, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            /* Re-arming restarts the idle timeout: only progress buys more time. */
            if (hc->phase != PHASE_WRITE || n < 0) {
                hc->phase = PHASE_WRITE;
                if (conn_watch(hc, EV_WRITE, HTTP_WRITE_IDLE_MS) < 0)
                    conn_close(hc);
            }
            return;
        }
        conn_close(hc);
        return;
    }
    conn_linger(hc);
}

static void conn_respond(struct http_conn *hc, const struct http_request *req, int status)
{
    buf_reset(&hc->out);
    int sent = http_respond(req, status, &hc->out, wp_now_ms());
    log_debug("stats %s: %s %s -> %d (%zu bytes)", hc->peer, req ? req->method : "-",
              req ? req->path : "-", sent, buf_unread(&hc->out));
    if (buf_unread(&hc->out) == 0) {
        conn_close(hc);
        return;
    }
    hc->phase = PHASE_WRITE;
    if (hc->ev) {
        event_free(hc->ev);
        hc->ev = NULL;
    }
    conn_write(hc);
}

static void conn_read(struct http_conn *hc)
{
    for (;;) {
        size_t room = HTTP_MAX_REQUEST + 1 - buf_unread(&hc->in);
        if (room == 0 || buf_reserve(&hc->in, room) < 0)
            break;
        ssize_t n = read(hc->fd, hc->in.data + hc->in.len, room);
        if (n > 0) {
            hc->in.len += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            break;
        if (n < 0 || buf_unread(&hc->in) == 0) {
            conn_close(hc);
            return;
        }
        /* EOF mid-request: answer what we can. */
        struct http_request req;
        enum http_parse r = http_parse_request((const char *)buf_head(&hc->in),
                                               buf_unread(&hc->in), &req);
        conn_respond(hc, r == HTTP_OK ? &req : NULL, r == HTTP_OK ? HTTP_OK : HTTP_BAD_REQUEST);
        return;
    }
    struct http_request req;
    enum http_parse r =
        http_parse_request((const char *)buf_head(&hc->in), buf_unread(&hc->in), &req);
    if (r == HTTP_INCOMPLETE ||
        (r == HTTP_OK && buf_unread(&hc->in) < req.head_len + req.body_len))
        return; /* the read deadline still runs */
    conn_respond(hc, r == HTTP_OK ? &req : NULL, r);
}

static void on_conn_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct http_conn *hc = arg;
    if (what & EV_TIMEOUT) {
        log_debug("stats %s: %s timed out", hc->peer,
                  hc->phase == PHASE_READ ? "request" : hc->phase == PHASE_WRITE ? "write" : "drain");
        conn_close(hc);
        return;
    }
    switch (hc->phase) {
    case PHASE_READ:
        conn_read(hc);
        break;
    case PHASE_WRITE:
        conn_write(hc);
        break;
    case PHASE_DRAIN:
        conn_drain(hc);
        break;
    }
}

static void refuse_busy(int fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n";
    ssize_t ignored = write(fd, busy, sizeof busy - 1);
    (void)ignored;
    close(fd);
}

static void describe_peer(const struct sockaddr_storage *ss, char *out, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "unix";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        port = ntohs(sin->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        port = ntohs(sin6->sin6_port);
    }
    if (port)
        snprintf(out, len, "%s:%d", host, port);
    else
        snprintf(out, len, "%s", host);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    (void)arg;
    for (int i = 0; i < 16; i++) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_warn("stats endpoint: accept failed: %s", strerror(errno));
            return;
        }
        if (nconns >= HTTP_MAX_CONNS) {
            refuse_busy(fd);
            continue;
        }
        struct http_conn *hc = calloc(1, sizeof *hc);
        if (!hc) {
            close(fd);
            continue;
        }
        hc->fd = fd;
        hc->phase = PHASE_READ;
        hc->deadline_ms = wp_now_ms() + HTTP_READ_DEADLINE_MS;
        describe_peer(&ss, hc->peer, sizeof hc->peer);
        list_push_tail(&conns, &hc->node);
        nconns++;
        if (conn_watch(hc, EV_READ, HTTP_READ_DEADLINE_MS) < 0)
            conn_close(hc);
    }
}

static int add_listener(int fd, const char *path, char *err, size_t errlen)
{
    if (nlisteners == HTTP_MAX_LISTENERS) {
        snprintf(err, errlen, "stats endpoint: too many listen addresses");
        close(fd);
        return -1;
    }
    struct http_listener *l = &listeners[nlisteners];
    l->fd = fd;
    snprintf(l->path, sizeof l->path, "%s", path ? path : "");
    l->ev = event_new(wp_rt.base, fd, EV_READ | EV_PERSIST, on_accept, l);
    if (!l->ev || event_add(l->ev, NULL) < 0) {
        if (l->ev)
            event_free(l->ev);
        snprintf(err, errlen, "stats endpoint: cannot watch listen socket");
        close(fd);
        return -1;
    }
    nlisteners++;
    return 0;
}

static int listen_unix(const char *path, int mode, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sun.sun_path) {
        snprintf(err, errlen, "stats_socket %s: path too long", path);
        return -1;
    }
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "stats_socket: socket: %s", strerror(errno));
        return -1;
    }
    /* Only a socket file is replaced: a typo must not delete a regular file. */
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    /* Bind under a tight umask so the socket is never briefly more open than mode. */
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof sun);
    umask(old);
    if (rc < 0 || listen(fd, 64) < 0 || chmod(path, (mode_t)mode) < 0) {
        snprintf(err, errlen, "stats_socket %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return add_listener(fd, path, err, errlen);
}

static int listen_tcp(const char *spec, char *err, size_t errlen)
{
    char host[256], port[16];
    int portnum;
    if (config_split_host_port(spec, host, sizeof host, &portnum) < 0) {
        snprintf(err, errlen, "stats_listen %s: not host:port", spec);
        return -1;
    }
    snprintf(port, sizeof port, "%d", portnum);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    int rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "stats_listen %s: %s", spec, gai_strerror(rc));
        return -1;
    }
    int ok = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
            snprintf(err, errlen, "stats_listen %s: %s", spec, strerror(errno));
            close(fd);
            continue;
        }
        if (add_listener(fd, NULL, err, errlen) == 0)
            ok++;
    }
    freeaddrinfo(res);
    return ok > 0 ? 0 : -1;
}

static void close_listeners(void)
{
    for (int i = 0; i < nlisteners; i++) {
        event_free(listeners[i].ev);
        close(listeners[i].fd);
        if (listeners[i].path[0])
            unlink(listeners[i].path);
    }
    nlisteners = 0;
    free(bound_socket);
    free(bound_listen);
    bound_socket = bound_listen = NULL;
}

int stats_http_start(char *err, size_t errlen)
{
    const struct wp_config *cfg = wp_rt.cfg;
    const char *sock = cfg->stats_socket ? cfg->stats_socket : "";
    const char *tcp = cfg->stats_listen ? cfg->stats_listen : "";
    if (*sock && listen_unix(sock, cfg->stats_socket_mode, err, errlen) < 0)
        goto fail;
    if (*tcp && listen_tcp(tcp, err, errlen) < 0)
        goto fail;
    bound_socket = strdup(sock);
    bound_listen = strdup(tcp);
    bound_mode = cfg->stats_socket_mode;
    if (*sock)
        log_info("stats endpoint on unix socket %s (mode %04o)", sock, cfg->stats_socket_mode);
    if (*tcp)
        log_info("stats endpoint on http://%s/", tcp);
    return 0;
fail:
    close_listeners();
    return -1;
}

void stats_http_stop(void)
{
    close_listeners();
    while (!list_empty(&conns))
        conn_close(list_entry(conns.next, struct http_conn, node));
}

void stats_http_reload(void)
{
    const struct wp_config *cfg = wp_rt.cfg;
    const char *sock = cfg->stats_socket ? cfg->stats_socket : "";
    const char *tcp = cfg->stats_listen ? cfg->stats_listen : "";
    if (bound_socket && bound_listen && strcmp(sock, bound_socket) == 0 &&
        strcmp(tcp, bound_listen) == 0 && cfg->stats_socket_mode == bound_mode)
        return;
    char err[256];
    close_listeners();
    if (stats_http_start(err, sizeof err) < 0)
        log_error("stats endpoint not available after reload: %s", err);
}
