/*
 * stats_render — the stats endpoint's bodies: Prometheus text exposition format and
 * JSON, rendered from the pools' struct wp_pool_stats (include/warmpool/stats_http.h).
 *
 * Renderers only read: stats_collect() refreshes the per-pool client counts and the
 * period snapshots first. Prometheus families are written whole (HELP, TYPE, then
 * every pool's samples), label values are escaped, times are seconds printed from
 * integer microseconds so no float rounding shows; JSON strings are escaped and
 * bytes that are not UTF-8 become U+FFFD, so any statement text gives valid JSON.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/client.h"
#include "warmpool/config.h"
#include "warmpool/fleet.h"
#include "warmpool/io_threads.h"
#include "warmpool/peering.h"
#include "warmpool/pool.h"
#include "warmpool/runtime.h"
#include "warmpool/server_hosts.h"
#include "warmpool/stats.h"
#include "warmpool/stats_http.h"
#include "warmpool/stats_process.h"

/* Distinct hosts listed per pool (an entry's host list is at most HOSTS_MAX long; a
   reload may leave backends on hosts of the entry before it). */
#define HOSTS_SHOWN 64

#ifndef WARMPOOL_VERSION
#define WARMPOOL_VERSION "0.1.0"
#endif

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
        } else if (c == '\n' || c == '\r' || c == '\t') {
            char esc[2] = {'\\', c == '\n' ? 'n' : c == '\r' ? 'r' : 't'};
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
    list_for_each_safe(pos, tmp,                                                                   \
                       &wp_rt.pools) if (((pool) = list_entry(pos, struct wp_pool, node))->stats)

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

/* SQLSTATE classes every pool shows from its creation, at 0 until one happens, so that
   rate() and dashboards see the series before the first error (a series that appears
   with 1 loses that first increment). The classes a dashboard or an alert watches;
   others appear when they first occur. */
static const char *const watched_error_classes[] = {"08", "22", "23", "25", "40", "42", "53", "57"};
#define N_WATCHED_ERROR_CLASSES (sizeof watched_error_classes / sizeof watched_error_classes[0])

static int is_watched_error_class(const char *code)
{
    for (size_t i = 0; i < N_WATCHED_ERROR_CLASSES; i++)
        if (strcmp(code, watched_error_classes[i]) == 0)
            return 1;
    return 0;
}

static uint64_t error_class_count(const struct wp_pool_stats *ps, const char *code)
{
    for (int i = 0; i < ps->nerror_classes; i++)
        if (strcmp(ps->error_classes[i].code, code) == 0)
            return ps->error_classes[i].count;
    return 0;
}

static void prom_error_classes(struct out *o)
{
    struct wp_list *pos, *tmp;
    struct wp_pool *pool;
    prom_family(o, "warmpool_errors_total", "counter",
                "ErrorResponses sent to clients, by SQLSTATE class.");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        const struct wp_pool_stats *ps = pool->stats;
        for (size_t i = 0; i < N_WATCHED_ERROR_CLASSES; i++)
            prom_u64(o, "warmpool_errors_total", pool, "class", watched_error_classes[i],
                     error_class_count(ps, watched_error_classes[i]));
        for (int i = 0; i < ps->nerror_classes; i++)
            if (!is_watched_error_class(ps->error_classes[i].code))
                prom_u64(o, "warmpool_errors_total", pool, "class", ps->error_classes[i].code,
                         ps->error_classes[i].count);
        if (ps->errors_unclassified)
            prom_u64(o, "warmpool_errors_total", pool, "class", "other", ps->errors_unclassified);
    }
}

static void prom_labelled_counters(struct out *o)
{
    struct wp_list *pos, *tmp;
    struct wp_pool *pool;
    prom_error_classes(o);
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
    prom_family(o, "warmpool_pins_total", "counter",
                "Session state that pinned a client to its backend, by cause.");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        for (int k = 0; k < PIN_CAUSES; k++)
            prom_u64(o, "warmpool_pins_total", pool, "cause", session_pin_cause_names[k],
                     pool->pins_total[k]);
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

/* Hosts of entries with several (server_hosts.c): where the backends are, failovers. */
static void prom_hosts(struct out *o)
{
    struct wp_list *pos, *tmp;
    struct wp_pool *pool;
    prom_family(o, "warmpool_server_connections_by_host", "gauge",
                "Backend connections of the pool logged in, by the host:port they are on.");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        struct server_host_count at[HOSTS_SHOWN];
        int n = server_hosts_count(pool, at, HOSTS_SHOWN);
        for (int i = 0; i < n; i++)
            prom_u64(o, "warmpool_server_connections_by_host", pool, "host", at[i].host_port,
                     (uint64_t)at[i].servers);
    }
    prom_family(o, "warmpool_pool_failovers_total", "counter",
                "Backends of a load_balance_hosts = disable pool that logged in on another "
                "host than the backend before them.");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        prom_u64(o, "warmpool_pool_failovers_total", pool, NULL, NULL,
                 server_hosts_failovers(pool));
    }
}

/* The fleet budget (fleet.c), per budgeted database; nothing without one. Each pass
   over the databases writes one family, as the text format wants them together. */
enum fleet_family { FAM_CAP, FAM_BACKENDS, FAM_INSTANCES, FAM_FALLBACK, FAM_COUNT };
struct fleet_pass {
    struct out *o;
    enum fleet_family family;
    int ndbs;
};

static void prom_fleet_db_count(const struct fleet_info *fi, void *arg)
{
    (void)fi;
    ((struct fleet_pass *)arg)->ndbs++;
}

static void prom_fleet_db(const struct fleet_info *fi, void *arg)
{
    struct fleet_pass *p = arg;
    static const char *const names[] = {"warmpool_fleet_cap", "warmpool_fleet_backends",
                                        "warmpool_fleet_instances", "warmpool_fleet_fallback"};
    if (p->family == FAM_BACKENDS) {
        for (int i = 0; i < fi->nmembers; i++) {
            out_str(p->o, "warmpool_fleet_backends{database=\"");
            out_label_value(p->o, fi->dbname);
            out_str(p->o, "\",instance=\"");
            out_label_value(p->o, fi->members[i].name);
            out_printf(p->o, "\"} %d\n", fi->members[i].held);
        }
        return;
    }
    int v = p->family == FAM_CAP         ? fi->cap
            : p->family == FAM_INSTANCES ? fi->nmembers
                                         : fi->state == FLEET_FALLBACK;
    out_printf(p->o, "%s{database=\"", names[p->family]);
    out_label_value(p->o, fi->dbname);
    out_printf(p->o, "\"} %d\n", v);
}

static void prom_fleet(struct out *o)
{
    static const char *const families[][2] = {
        {"warmpool_fleet_cap",
         "This instance's cap on its backends to the database (fleet budget)."},
        {"warmpool_fleet_backends",
         "Backends of each fleet instance to the database, as published at the last read."},
        {"warmpool_fleet_instances", "Fleet instances seen at the last read of the database."},
        {"warmpool_fleet_fallback",
         "1 while the fleet's state cannot be read and the fallback cap applies."},
    };
    struct fleet_pass count = {NULL, FAM_COUNT, 0};
    fleet_each(prom_fleet_db_count, &count);
    if (count.ndbs == 0)
        return;
    for (int f = 0; f < FAM_COUNT; f++) {
        struct fleet_pass p = {o, (enum fleet_family)f, 0};
        prom_family(o, families[f][0], "gauge", families[f][1]);
        fleet_each(prom_fleet_db, &p);
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
    prom_family(o, "warmpool_pool_pinned_clients", "gauge",
                "Clients that keep their backend between transactions (session state).");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        prom_u64(o, "warmpool_pool_pinned_clients", pool, NULL, NULL,
                 (uint64_t)pool->pinned_clients);
    }
    prom_family(o, "warmpool_pool_healthy", "gauge",
                "1 when the pool has a live backend or its last connect attempt worked.");
    FOR_EACH_POOL(pos, tmp, pool)
    {
        prom_u64(o, "warmpool_pool_healthy", pool, NULL, NULL, (uint64_t)stats_pool_healthy(pool));
    }
    prom_hosts(o);
    prom_fleet(o);
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

/* workers = N: the threads doing socket I/O, and how often a loop turn's I/O was shared
   among them (io_threads.h). */
static void prom_workers(struct out *o)
{
    unsigned long long batches, items;
    io_threads_counts(&batches, &items);
    prom_family(o, "warmpool_workers", "gauge", "Threads doing socket I/O (workers).");
    out_printf(o, "warmpool_workers %d\n", io_threads_count());
    prom_family(o, "warmpool_io_batches_total", "counter",
                "Loop turns whose reads or writes were shared among the workers.");
    out_printf(o, "warmpool_io_batches_total %llu\n", batches);
    prom_family(o, "warmpool_io_batch_sockets_total", "counter",
                "Socket reads and writes done in those shared turns.");
    out_printf(o, "warmpool_io_batch_sockets_total %llu\n", items);
}

static void prom_globals(struct out *o)
{
    prom_family(o, "warmpool_info", "gauge", "Constant 1, labelled with the warmpool version.");
    out_str(o, "warmpool_info{version=\"" WARMPOOL_VERSION "\"} 1\n");
    prom_family(o, "warmpool_client_connections", "gauge", "Client connections open.");
    out_printf(o, "warmpool_client_connections %d\n", wp_rt.nclients);
    prom_family(o, "warmpool_max_client_connections", "gauge", "max_client_conn.");
    out_printf(o, "warmpool_max_client_connections %d\n",
               wp_rt.cfg ? wp_rt.cfg->max_client_conn : 0);
    int npools = 0;
    for (const struct wp_list *n = wp_rt.pools.next; n && n != &wp_rt.pools; n = n->next)
        npools++;
    prom_family(o, "warmpool_pools", "gauge",
                "Pools in memory; unused ones go after server_idle_timeout.");
    out_printf(o, "warmpool_pools %d\n", npools);
    prom_family(o, "warmpool_configurations", "gauge",
                "Configurations in memory: the one in force and replaced ones a pool still "
                "uses.");
    out_printf(o, "warmpool_configurations %d\n", wp_rt.nconfigs);
    prom_family(o, "warmpool_login_timeouts_total", "counter",
                "Clients closed by client_login_timeout before they had a pool.");
    out_printf(o, "warmpool_login_timeouts_total %llu\n",
               (unsigned long long)stats_global.timeouts[STATS_TIMEOUT_CLIENT_LOGIN]);
    prom_workers(o);
}

/* One family with one sample per configured peer: `failed` picks the failures counter. */
static void prom_peer_family(struct out *o, const struct wp_peers *peers, const char *name,
                             const char *help, int failed)
{
    prom_family(o, name, "counter", help);
    for (int i = 0; i < peers->n; i++) {
        struct peering_counts n;
        peering_counts(peers->v[i].id, &n);
        out_printf(o, "%s{peer=\"%d\"} %llu\n", name, peers->v[i].id,
                   failed ? n.failed : n.forwarded);
    }
}

/* Nothing at all without [peers]. */
static void prom_peers(struct out *o)
{
    const struct wp_peers *peers = wp_rt.cfg ? &wp_rt.cfg->peers : NULL;
    if (!peers || peers->n == 0)
        return;
    prom_peer_family(o, peers, "warmpool_cancel_forwards_total",
                     "Cancel requests forwarded to a peer, which took them.", 0);
    prom_peer_family(o, peers, "warmpool_cancel_forward_failures_total",
                     "Cancel requests for a peer that did not reach it (connect, timeout, queue "
                     "full).",
                     1);
}

/* process_* as the Prometheus client libraries name them; left out where /proc is not. */
static void prom_process(struct out *o)
{
    struct stats_process p;
    if (stats_process_read(&p) < 0)
        return;
    prom_family(o, "process_cpu_seconds_total", "counter",
                "Total user and system CPU time spent in seconds.");
    out_printf(o, "process_cpu_seconds_total %.2f\n", p.cpu_seconds);
    prom_family(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    out_printf(o, "process_resident_memory_bytes %llu\n", (unsigned long long)p.resident_bytes);
    prom_family(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    out_printf(o, "process_virtual_memory_bytes %llu\n", (unsigned long long)p.virtual_bytes);
    prom_family(o, "process_open_fds", "gauge", "Number of open file descriptors.");
    out_printf(o, "process_open_fds %llu\n", (unsigned long long)p.open_fds);
    prom_family(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    out_printf(o, "process_max_fds %llu\n", (unsigned long long)p.max_fds);
    prom_family(o, "process_start_time_seconds", "gauge",
                "Start time of the process since unix epoch in seconds.");
    out_printf(o, "process_start_time_seconds %.2f\n", p.start_time_seconds);
}

int stats_render_prometheus(struct wp_buf *b, int64_t now_ms)
{
    struct out o = {b, 0};
    stats_collect(now_ms);
    prom_globals(&o);
    prom_peers(&o);
    prom_process(&o);
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
    if (ps->last_nplus1.fp) {
        const struct stats_top_entry *e = top_find(&ps->top, ps->last_nplus1.fp);
        out_printf(o,
                   ",\"last_nplus1\":{\"fingerprint\":\"%016llx\",\"count\":%u,\"total_us\":%lld,"
                   "\"query\":",
                   (unsigned long long)ps->last_nplus1.fp, ps->last_nplus1.count,
                   (long long)ps->last_nplus1.total_us);
        out_json_str(o, e ? e->text : "");
        out_str(o, "}");
    }
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
    out_printf(
        o,
        "},\"prepared\":{\"hit\":%llu,\"miss\":%llu,\"eviction\":%llu,"
        "\"injected_parse\":%llu}",
        (unsigned long long)(pool->prepared_hits + ps->prepared[STATS_PREPARED_HIT]),
        (unsigned long long)(pool->prepared_misses + ps->prepared[STATS_PREPARED_MISS]),
        (unsigned long long)(pool->prepared_evictions + ps->prepared[STATS_PREPARED_EVICTION]),
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

/* "hosts":{"host:port":backends,…},"failovers":n */
static void json_pool_hosts(struct out *o, const struct wp_pool *pool)
{
    struct server_host_count at[HOSTS_SHOWN];
    int n = server_hosts_count(pool, at, HOSTS_SHOWN);
    out_str(o, ",\"hosts\":{");
    for (int i = 0; i < n; i++) {
        out_str(o, i ? "," : "");
        out_json_str(o, at[i].host_port);
        out_printf(o, ":%d", at[i].servers);
    }
    out_printf(o, "},\"failovers\":%llu", server_hosts_failovers(pool));
    struct fleet_info fi; /* ,"fleet_cap":n,"fleet_backends":n with a fleet budget */
    if (pool->settings.fleet_max_db_connections > 0 && fleet_find(pool->dbname, &fi))
        out_printf(o, ",\"fleet_cap\":%d,\"fleet_backends\":%d", fi.cap, fi.fleet_held);
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
    out_printf(o, ",\"pinned_clients\":%d,\"pins\":{", pool->pinned_clients);
    for (int k = 0; k < PIN_CAUSES; k++)
        out_printf(o, "%s\"%s\":%llu", k ? "," : "", session_pin_cause_names[k],
                   (unsigned long long)pool->pins_total[k]);
    out_str(o, "}");
    json_pool_hosts(o, pool);
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
                   (unsigned long long)e->fp, (unsigned long long)e->calls, (long long)e->total_us,
                   (long long)(e->total_us / (int64_t)e->calls), (long long)e->max_us,
                   (unsigned long long)e->errors, (unsigned long long)e->nplus1);
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
