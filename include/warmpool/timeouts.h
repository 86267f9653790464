/*
 * timeouts — the monotonic clock and the one periodic tick (janitor) that checks
 * every deadline: client login, query_timeout, idle_transaction_timeout,
 * client_idle_timeout, pool maintenance (sizes, reserve, lifetime, idle, health
 * checks, connect and wait timeouts, draining backends) and graceful shutdown.
 * No other module arms its own periodic timers.
 *
 * The rules themselves (which deadline a client has passed, lifetime jitter, when a
 * backend needs a health check, the text a cancelled client sees) are pure functions
 * of plain values, unit-tested in tests/unit/test_timeouts.c.
 */
#ifndef WARMPOOL_TIMEOUTS_H
#define WARMPOOL_TIMEOUTS_H

#include <stddef.h>
#include <stdint.h>

struct wp_buf;
struct wp_pool_settings;
struct wp_server;

/* The janitor's period, and so the resolution of every timeout. */
#define TIMEOUTS_TICK_MS 100

/* Monotonic clock. Inside a wp_clock_hold(1) … wp_clock_hold(0) span (one readiness
   callback of the relay) every call returns the first reading: the work of one
   callback takes microseconds, and the hot path asked the clock ~8 times a transaction. */
extern int64_t wp_clock_held_us; /* the span's reading; 0 = none (read the clock) */
int64_t wp_clock_read_us(void);
void wp_clock_hold(int on);

static inline int64_t wp_now_us(void)
{
    return wp_clock_held_us ? wp_clock_held_us : wp_clock_read_us();
}

static inline int64_t wp_now_ms(void)
{
    return wp_now_us() / 1000;
}
int timeouts_start(void);
void timeouts_stop(void);

/* ---- pure rules ---- */

/* One client as the janitor sees it (filled from client and backend state). */
struct wp_client_clock {
    int logging_in; /* startup, password exchange or welcome */
    int64_t login_started_ms;
    int running;              /* a request of its own is being answered by its backend */
    int64_t query_started_ms; /* ...since then */
    int cancel_sent;          /* query_timeout already cancelled that request */
    int idle;                 /* nothing running, no input or output pending */
    int in_transaction;       /* its backend holds a transaction open for it */
    int pinned;               /* it keeps its backend between transactions */
    int64_t xact_started_ms;  /* its backend's transaction (or request) began; 0: none */
    int64_t idle_since_ms;
};

enum wp_timeout {
    TIMEOUT_NONE,
    TIMEOUT_LOGIN,            /* client_login_timeout: close the client */
    TIMEOUT_QUERY,            /* query_timeout: cancel the backend's query */
    TIMEOUT_IDLE_TRANSACTION, /* idle_transaction_timeout: close, roll back */
    TIMEOUT_CLIENT_IDLE,      /* client_idle_timeout: close the client */
    TIMEOUT_PINNED_IDLE,      /* pinned_idle_timeout: close the client, reset its backend */
    TIMEOUT_TRANSACTION,      /* transaction_timeout: close the client, abandon its backend */
};

/* The deadline a client has passed at `now`, if any (0 in a setting = disabled). */
enum wp_timeout timeouts_judge(const struct wp_client_clock *clock,
                               const struct wp_pool_settings *settings, int64_t login_timeout,
                               int64_t now);
/* server_lifetime shortened by up to a tenth, chosen by `random`, so that backends
   opened together are not recycled together. 0 stays 0 (never). */
int64_t timeouts_jitter_lifetime(int64_t lifetime, uint32_t random);
/* Must a backend idle since `last_used` pass server_check_query before it is lent?
   A delay of 0 means always. */
int timeouts_check_due(int64_t last_used, int64_t check_delay, int64_t now);
/* "1s", "250ms", "2min", "1h": how a duration is named in messages to clients. */
void timeouts_format(char *out, size_t cap, int64_t ms);
/* A backend ErrorResponse (the whole message, `len` bytes with its type byte) worded
   for a query_timeout cancel: appended to `out`, returns 0; -1 (nothing appended)
   when it is not a 57014 query_canceled or is malformed. */
int timeouts_reword_cancel(struct wp_buf *out, const uint8_t *msg, uint32_t len, int64_t timeout);

/* ---- relay hooks (keep server->query_started_ms and ->timeout_cancel current) ---- */

/* The client sent a request that the backend will answer (Query, Sync, Execute…). */
void timeouts_request_sent(struct wp_server *server);
/* A ReadyForQuery answered one of the client's requests. */
void timeouts_request_answered(struct wp_server *server);
/* An ErrorResponse (whole) bound for the client: 1 when timeouts sent the client its
   own wording instead, and the original must be dropped. */
int timeouts_server_error(struct wp_server *server, const uint8_t *msg, uint32_t len);

#endif
