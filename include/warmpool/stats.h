/*
 * stats — what the pooler counts: per-pool counters, log-bucket latency histograms,
 * the top-statements table, the N+1 detector and the slow-query log decision.
 *
 * The relay, pool, server and timeout code call the hooks below with plain values;
 * the hot-path ones (stats_query_start/end, stats_query_error, stats_wait_done) do
 * no formatting and no allocation, except when a statement first enters its pool's
 * bounded top-statements table. Rendering (Prometheus, JSON, admin rows) lives in
 * stats_http.c and admin.c, which only read these structs.
 *
 * Per-pool state is a struct wp_pool_stats allocated on first use (pool->stats).
 * Per-client state is a struct wp_client_stats the client embeds (c->stats): it
 * times the query in flight and holds the N+1 detector's counts.
 */
#ifndef WARMPOOL_STATS_H
#define WARMPOOL_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "warmpool/timeouts.h"

struct wp_pool;
struct wp_client;

/* ---------------------------------------------------------------- histograms */

/* Bucket i (i < STATS_HIST_FINITE) counts values <= 2^i µs and above the previous
   bound: 1 µs … 2^27 µs (134 s). The last bucket is +Inf. */
#define STATS_HIST_FINITE 28
#define STATS_HIST_BUCKETS (STATS_HIST_FINITE + 1)

struct stats_hist {
    uint64_t count;
    uint64_t sum_us;
    int64_t max_us;
    uint64_t buckets[STATS_HIST_BUCKETS]; /* per bucket, not cumulative */
};

static inline int hist_bucket_index(int64_t us)
{
    if (us <= 1)
        return 0;
    int i = 64 - __builtin_clzll((unsigned long long)(us - 1)); /* smallest 2^i >= us */
    return i < STATS_HIST_FINITE ? i : STATS_HIST_FINITE;
}

static inline void hist_add(struct stats_hist *h, int64_t us)
{
    if (us < 0)
        us = 0;
    h->count++;
    h->sum_us += (uint64_t)us;
    if (us > h->max_us)
        h->max_us = us;
    h->buckets[hist_bucket_index(us)]++;
}

/* Upper bound of bucket i in µs; -1 for the +Inf bucket. */
int64_t hist_bucket_bound(int i);
/*
 * Quantile q (0..1) in µs, interpolated linearly inside the bucket that holds it
 * (as Prometheus' histogram_quantile does) and never above the largest value seen.
 * 0 for an empty histogram.
 */
int64_t hist_quantile(const struct stats_hist *h, double q);

/* ---------------------------------------------------------------- top statements */

#define STATS_TEXT_MAX 1024 /* normalised text kept per statement */

/* A log line that comes at most once per interval: when it last came (clock of the
   hooks, 0 = never) and how many were held back since. */
struct stats_log_limit {
    int64_t logged_us;
    uint32_t held;
};

struct stats_top_entry {
    uint64_t fp; /* 0 = free slot */
    uint64_t calls, errors, nplus1;
    int64_t total_us, max_us;
    char *text;                        /* normalised, may be "" when the text was not available */
    struct stats_log_limit nplus1_log; /* its N+1 warnings */
};

/* Fixed capacity, keyed by fingerprint; when full, a new statement replaces the
   cheapest (least total time) of a few sampled entries. */
struct stats_top {
    int cap, n;
    struct stats_top_entry *entries; /* entries[0..n) in use */
    uint32_t *index;                 /* open addressing: entry index + 1, 0 = empty */
    uint32_t mask;
    uint64_t rng;
    uint64_t evictions;
};

int top_init(struct stats_top *t, int cap);
void top_free(struct stats_top *t);
struct stats_top_entry *top_find(const struct stats_top *t, uint64_t fp);
/* Find or add fp; text (may be NULL) is copied when the entry is new. NULL when the
   table has no room (cap 0) or on out of memory. */
struct stats_top_entry *top_add(struct stats_top *t, uint64_t fp, const char *text);
/* Change the capacity, keeping the entries with the most total time. */
int top_resize(struct stats_top *t, int cap);
/* Pointers to the entries, most total time first; returns how many (<= max). */
int top_sorted(const struct stats_top *t, const struct stats_top_entry **out, int max);

/* ---------------------------------------------------------------- per-pool counters */

enum stats_timeout_kind {
    STATS_TIMEOUT_QUERY,            /* query_timeout */
    STATS_TIMEOUT_QUERY_WAIT,       /* query_wait_timeout */
    STATS_TIMEOUT_CLIENT_IDLE,      /* client_idle_timeout */
    STATS_TIMEOUT_IDLE_TRANSACTION, /* idle_transaction_timeout */
    STATS_TIMEOUT_SERVER_CONNECT,   /* server_connect_timeout */
    STATS_TIMEOUT_CLIENT_LOGIN,     /* client_login_timeout */
    STATS_TIMEOUT_PINNED_IDLE,      /* pinned_idle_timeout */
    STATS_TIMEOUT_TRANSACTION,      /* transaction_timeout */
    STATS_TIMEOUT_KINDS
};

enum stats_prepared_event {
    STATS_PREPARED_HIT,      /* Parse answered without a round trip */
    STATS_PREPARED_MISS,     /* statement had to be prepared on the server */
    STATS_PREPARED_EVICTION, /* LRU closed a statement on a server */
    STATS_PREPARED_INJECTED, /* Parse injected before a Bind/Describe */
    STATS_PREPARED_EVENTS
};

enum stats_close_reason {
    STATS_CLOSE_LIFETIME,
    STATS_CLOSE_IDLE_TIMEOUT,
    STATS_CLOSE_CONNECT_FAILED,
    STATS_CLOSE_CONNECT_TIMEOUT,
    STATS_CLOSE_SERVER_ERROR, /* backend went away, wrote garbage, or a write failed */
    STATS_CLOSE_NOT_REUSABLE, /* client left mid-message, retired after reload, … */
    STATS_CLOSE_SHUTDOWN,
    STATS_CLOSE_ADMIN, /* KILL on the admin console */
    STATS_CLOSE_OTHER,
    STATS_CLOSE_REASONS
};

#define STATS_ERROR_CLASSES 24

struct stats_error_class {
    char code[3]; /* SQLSTATE class, e.g. "23" */
    uint64_t count;
};

/* One statement's repeats in an N+1 group (and the last burst of a pool). */
struct stats_nplus1_slot {
    uint64_t fp;
    uint32_t count;
    int64_t total_us;
};

/* Totals at one moment, for the per-second averages of SHOW STATS. */
struct stats_snapshot {
    int64_t at_ms;
    uint64_t xacts, queries, bytes_in, bytes_out, waits;
    uint64_t xact_us, query_us, wait_us;
    uint64_t client_parses, server_parses, binds;
};

/* Adds s's counts to into (the console's totals over pools). Pools roll their periods
   together in stats_collect, so into takes s's time. */
void stats_snapshot_add(struct stats_snapshot *into, const struct stats_snapshot *s);

struct wp_pool_stats {
    uint64_t queries, xacts, query_errors, slow_queries, nplus1_bursts, cancels;
    struct stats_hist query_us, xact_us, wait_us;
    uint64_t timeouts[STATS_TIMEOUT_KINDS];
    uint64_t prepared[STATS_PREPARED_EVENTS];
    uint64_t servers_opened, connect_failures;
    uint64_t servers_closed[STATS_CLOSE_REASONS];
    int last_connect; /* 0 = none yet, 1 = the last attempt worked, -1 = it failed */
    struct stats_nplus1_slot last_nplus1; /* the latest N+1 burst reported */
    /* N+1 warnings of statements the top-statements table does not hold, together. */
    struct stats_log_limit nplus1_untracked_log;
    struct stats_error_class error_classes[STATS_ERROR_CLASSES];
    int nerror_classes;
    uint64_t errors_unclassified; /* classes beyond the table */
    struct stats_top top;
    struct stats_snapshot prev, last; /* for averages, rolled by stats_collect */

    /* Filled by stats_collect() for rendering: clients of this pool by state. */
    int cl_active, cl_waiting, cl_idle, cl_login;
};

/* Counters of events that belong to no pool (a client timing out before login). */
struct stats_global {
    uint64_t timeouts[STATS_TIMEOUT_KINDS];
    uint64_t nplus1_bursts, slow_queries;
};
extern struct stats_global stats_global;

/* The pool's stats, allocated on first use; NULL only when out of memory. */
struct wp_pool_stats *stats_of(struct wp_pool *pool);

/* ---------------------------------------------------------------- per-client state */

#define STATS_NPLUS1_SLOTS 8

/* Counts per fingerprint in one group: one transaction, or one nplus1_window_ms
   outside transactions. */
struct stats_nplus1_group {
    int64_t started_us; /* 0: no group open */
    char is_xact;
    struct stats_nplus1_slot slots[STATS_NPLUS1_SLOTS];
};

struct wp_client_stats {
    int64_t query_started_us; /* 0: no query in flight */
    int64_t xact_started_us;  /* 0: between transactions */
    int64_t wait_us;          /* waited for a backend before the query in flight */
    uint64_t fp;              /* fingerprint of the query in flight, 0 = unknown */
    /* Where the top-statements entry of the client's latest statement was (entries[]
       index + 1, 0 = none): a hint, checked against the fingerprint before use, as
       the table changes under it. Saves a lookup at the end of a query, and at the
       start of one that repeats the previous statement. */
    uint32_t top_hint;
    uint32_t raw_len; /* bytes in raw (at most STATS_RAW_MAX) */
    char sqlstate[6]; /* first error of the query in flight, "" = none */
    char in_xact;     /* last ReadyForQuery said 'T' or 'E' */
    /* N+1 detector, allocated at the client's first query (idle clients stay small);
       NULL before that, or when out of memory (no detection then). */
    struct stats_nplus1_group *group;
    /* Raw text of the query in flight, kept only with log_parameters = 1. */
    char *raw;
    /* The client's last Parse text (at most STATS_PARSE_TEXT_MAX bytes, allocated at its
       first Parse) and its fingerprint: a driver sends the same unnamed Parse over and
       over, and comparing costs a tenth of normalising (stats_parse_fingerprint). */
    char *parse_text;
    uint32_t parse_len;
    uint64_t parse_fp;
};

/* ---------------------------------------------------------------- hooks */

#define STATS_PARSE_TEXT_MAX 512

/* The fingerprint for a Parse's text, for stats_query_start: the cached one when the
   client sent this very text last time; 0 when statistics do not need one. */
uint64_t stats_parse_fingerprint(struct wp_client_stats *cs, const char *sql, size_t len);

/* Monotonic clock in µs, for the hooks' now_us arguments. */
static inline int64_t stats_now_us(void)
{
    return wp_now_us();
}

/*
 * A client request starts: a Query, or the first extended-protocol message after the
 * previous ReadyForQuery. sql/sql_len is the statement text when the whole message
 * body is at hand (Query text, Parse text), else NULL/0. fp is a fingerprint the
 * caller already knows (prepared-statement registry), or 0 to compute it from sql.
 * Later calls before the matching stats_query_end are ignored (pipelining), so the
 * relay may call it for every candidate message without tracking that itself.
 */
void stats_query_start(struct wp_pool *pool, struct wp_client_stats *cs, const char *sql,
                       size_t sql_len, uint64_t fp, int64_t now_us);
/* An ErrorResponse is relayed to the client; sqlstate is its 'C' field (may be NULL). */
void stats_query_error(struct wp_pool *pool, struct wp_client_stats *cs, const char *sqlstate);
/*
 * A ReadyForQuery is relayed to the client (not one warmpool swallows): the request
 * is over. Counts the query (and the transaction when tx_status is 'I' after one was
 * open), feeds the histograms and the top table, runs the N+1 detector and the
 * slow-query log. c is for log lines (identity, application_name) and may be NULL.
 */
void stats_query_end(struct wp_pool *pool, struct wp_client *c, struct wp_client_stats *cs,
                     char tx_status, int64_t now_us);
/* A client got a backend after waiting wait_us (0 when one was idle). */
void stats_wait_done(struct wp_pool *pool, struct wp_client_stats *cs, int64_t wait_us);
/* The client is closing: report an open N+1 burst, free the raw-text copy. */
void stats_client_closed(struct wp_pool *pool, struct wp_client *c, struct wp_client_stats *cs);

void stats_server_opened(struct wp_pool *pool);
/* reason is server_close()'s free text; it is classified into enum stats_close_reason. */
void stats_server_closed(struct wp_pool *pool, const char *reason);
void stats_connect_failed(struct wp_pool *pool);
/* pool may be NULL (a client that never got past login). */
void stats_timeout(struct wp_pool *pool, enum stats_timeout_kind kind);
void stats_cancel(struct wp_pool *pool);
void stats_prepared(struct wp_pool *pool, enum stats_prepared_event event);
/* pool_free: release pool->stats. */
void stats_pool_free(struct wp_pool *pool);

/* ---------------------------------------------------------------- for renderers */

/*
 * Before rendering: make sure every pool has stats, count clients per pool and state,
 * and roll the snapshots used for averages (at most once per stats_period;
 * STATS_PERIOD_MS without a configuration).
 */
#define STATS_PERIOD_MS 60000
void stats_collect(int64_t now_ms);
/* The same snapshots rolled on time (the janitor's tick), each period logged when
   log_stats is on; pools without stats yet are left alone. */
void stats_roll_periods(int64_t now_ms);
enum stats_close_reason stats_classify_close(const char *reason);
const char *stats_close_reason_name(enum stats_close_reason reason);
const char *stats_timeout_name(enum stats_timeout_kind kind);
const char *stats_prepared_event_name(enum stats_prepared_event event);
/* Can the pool reach its database: a live backend, or the last connect worked. */
int stats_pool_healthy(struct wp_pool *pool);

/* Backends of a pool by state. `used` are idle ones past server_check_delay. */
struct stats_server_counts {
    int active, idle, used, connecting, resetting, draining, total;
};
void stats_count_servers(const struct wp_pool *pool, int64_t now_ms,
                         struct stats_server_counts *out);
/* How long the first client in the pool's queue has waited, in µs (0: none waits). */
int64_t stats_pool_max_wait_us(const struct wp_pool *pool, int64_t now_ms);

#endif
