/*
 * timeouts — monotonic time and the janitor tick. Every deadline of the pooler is
 * checked here, every TIMEOUTS_TICK_MS: per client (login, query_timeout,
 * idle_transaction_timeout, client_idle_timeout), per pool through pool_maintain
 * (sizes, lifetime, idle, health checks, connect and wait timeouts), and the
 * graceful-shutdown drain. Deadlines are compared against CLOCK_MONOTONIC, so a
 * wall-clock jump never fires or postpones one.
 *
 * query_timeout is measured per request on the backend: from the moment the client's
 * Query (or Execute/Sync of an extended batch) is forwarded while nothing else of its
 * own is outstanding, and again from each ReadyForQuery that leaves more outstanding
 * (the next request of a pipeline only starts then). On expiry the backend gets a
 * CancelRequest off the loop, and the 57014 error it answers with is re-worded so
 * that the client learns which limit ended its query.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "warmpool/cancel.h"
#include "warmpool/admin_control.h"
#include "warmpool/client.h"
#include "warmpool/config.h"
#include "warmpool/fleet.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/proto.h"
#include "warmpool/relay_scan.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/stats.h"
#include "warmpool/timeouts.h"

static struct event *tick_event;

static int clock_held;
int64_t wp_clock_held_us;

int64_t wp_clock_read_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    if (clock_held)
        wp_clock_held_us = us;
    return us;
}

void wp_clock_hold(int on)
{
    clock_held = on;
    wp_clock_held_us = 0;
}

/* ---- pure rules ---- */

static int passed(int64_t since, int64_t limit, int64_t now)
{
    return limit > 0 && now - since >= limit;
}

enum wp_timeout timeouts_judge(const struct wp_client_clock *k,
                               const struct wp_pool_settings *settings, int64_t login_timeout,
                               int64_t now)
{
    if (k->logging_in)
        return passed(k->login_started_ms, login_timeout, now) ? TIMEOUT_LOGIN : TIMEOUT_NONE;
    if (k->running && !k->cancel_sent && passed(k->query_started_ms, settings->query_timeout, now))
        return TIMEOUT_QUERY;
    /* Inside a transaction the stricter limit counts first: it holds locks. */
    if (k->idle && k->in_transaction &&
        passed(k->idle_since_ms, settings->idle_transaction_timeout, now))
        return TIMEOUT_IDLE_TRANSACTION;
    /* As PgBouncer: from the first request of the transaction, whatever it does since. */
    if (k->xact_started_ms > 0 && passed(k->xact_started_ms, settings->transaction_timeout, now))
        return TIMEOUT_TRANSACTION;
    if (!k->idle)
        return TIMEOUT_NONE;
    /* Between transactions a pinned client still holds a backend of the pool. */
    if (k->pinned && !k->in_transaction &&
        passed(k->idle_since_ms, settings->pinned_idle_timeout, now))
        return TIMEOUT_PINNED_IDLE;
    if (passed(k->idle_since_ms, settings->client_idle_timeout, now))
        return TIMEOUT_CLIENT_IDLE;
    return TIMEOUT_NONE;
}

int64_t timeouts_jitter_lifetime(int64_t lifetime, uint32_t random)
{
    if (lifetime <= 0)
        return 0;
    return lifetime - (int64_t)(random % (uint64_t)(lifetime / 10 + 1));
}

int timeouts_check_due(int64_t last_used, int64_t check_delay, int64_t now)
{
    return check_delay <= 0 || now - last_used > check_delay;
}

void timeouts_format(char *out, size_t cap, int64_t ms)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "min"}, {1000, "s"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ms >= units[i].ms && ms % units[i].ms == 0) {
            snprintf(out, cap, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    }
    snprintf(out, cap, "%lldms", (long long)ms);
}

int timeouts_reword_cancel(struct wp_buf *out, const uint8_t *msg, uint32_t len, int64_t timeout)
{
    if (len < 6 || msg[0] != 'E')
        return -1;
    const uint8_t *body = msg + 5, *end = msg + len;
    const char *code = proto_error_field(body, len - 5, 'C');
    if (!code || strcmp(code, "57014") != 0)
        return -1; /* well-formed from here on: proto_error_field walked all of it */
    char limit[32], text[96];
    timeouts_format(limit, sizeof limit, timeout);
    int ntext =
        snprintf(text, sizeof text, "query_timeout (%s) exceeded: canceling statement", limit);
    size_t start = out->len;
    if (buf_reserve(out, len + (size_t)ntext + 2) < 0)
        return -1;
    uint8_t *p = out->data + out->len + 5;
    int have_message = 0;
    /* Keep every field (severity, position, routine…) but the human message. */
    for (const uint8_t *f = body; f < end && *f;) {
        size_t n = strlen((const char *)f + 1);
        if (*f == 'M') {
            *p++ = 'M';
            memcpy(p, text, (size_t)ntext + 1);
            p += ntext + 1;
            have_message = 1;
        } else {
            memcpy(p, f, n + 2);
            p += n + 2;
        }
        f += n + 2;
    }
    if (!have_message) {
        *p++ = 'M';
        memcpy(p, text, (size_t)ntext + 1);
        p += ntext + 1;
    }
    *p++ = '\0';
    uint8_t *head = out->data + start;
    head[0] = 'E';
    proto_put_u32(head + 1, (uint32_t)(p - head - 1));
    out->len = (size_t)(p - out->data);
    return 0;
}

/* ---- relay hooks ---- */

void timeouts_request_sent(struct wp_server *s)
{
    if (!s->query_started_ms)
        s->query_started_ms = wp_now_ms();
}

void timeouts_request_answered(struct wp_server *s)
{
    int64_t now = wp_now_ms();
    /* A cancel belongs to the request it was sent for; the next one starts afresh. */
    s->timeout_cancel = 0;
    /* Requests pipelined behind it start running now (an Execute not yet followed by
       its Sync counts: the backend runs it all the same). */
    s->query_started_ms = server_outstanding(s) || s->owed.unsynced ? now : 0;
    if (!server_outstanding(s) && s->client)
        s->client->answered_ms = now;
}

int timeouts_server_error(struct wp_server *s, const uint8_t *msg, uint32_t len)
{
    struct wp_client *c = s->client;
    if (!s->timeout_cancel || !c)
        return 0;
    /* What was scanned before the error goes ahead of its new wording. */
    relay_move_server_scanned(s);
    return timeouts_reword_cancel(&c->conn.out, msg, len, s->timeout_cancel) == 0;
}

/* ---- the janitor ---- */

static int between_transactions(const struct wp_client *c)
{
    /* Output still on its way (with TLS, possibly after the server was released) is
       part of the transaction: a FATAL now would cut the answer short. */
    if (buf_unread(&c->conn.in) > 0 || client_output_pending(c))
        return 0;
    if (c->state == CL_IDLE)
        return 1;
    const struct wp_server *s = c->server;
    return c->state == CL_ACTIVE && s && s->tx_status == 'I' && owed_settled(&s->owed) &&
           s->swallow == 0 && s->conn.ready == 0;
}

/* Is the client done in this shutdown? Safe (WAIT_FOR_SERVERS): between transactions,
   or still waiting for a server (none will be opened). Super safe (WAIT_FOR_CLIENTS,
   e.g. a rolling restart beside another warmpool on the port): it leaves by itself.
   Either way, at shutdown_wait_timeout whatever is between transactions goes. */
static int shutdown_closes(const struct wp_client *c, int64_t now)
{
    switch (wp_rt.shutting_down) {
    case WP_SHUTDOWN_WAIT_FOR_SERVERS:
        return c->state == CL_WAITING || between_transactions(c);
    case WP_SHUTDOWN_WAIT_FOR_CLIENTS:
        return now >= wp_rt.shutdown_deadline_ms && between_transactions(c);
    default:
        return 0;
    }
}

static void read_clock(const struct wp_client *c, struct wp_client_clock *k)
{
    memset(k, 0, sizeof *k);
    k->logging_in = c->state <= CL_WELCOME;
    k->login_started_ms = c->login_started_ms;
    k->idle_since_ms = c->last_active_ms > c->answered_ms ? c->last_active_ms : c->answered_ms;
    /* A client still being sent its last answer is not idle: the wait is its reading. */
    int quiet_client = buf_unread(&c->conn.in) == 0 && !client_output_pending(c);
    if (c->state == CL_IDLE) {
        k->idle = quiet_client;
        return;
    }
    const struct wp_server *s = c->server;
    if (c->state != CL_ACTIVE || !s)
        return;
    k->running = s->query_started_ms > 0;
    k->query_started_ms = s->query_started_ms;
    k->cancel_sent = s->timeout_cancel > 0;
    k->idle = quiet_client && !k->running && !server_outstanding(s) && s->swallow == 0 &&
              s->cancel_pending == 0 && s->conn.ready == 0;
    /* Extended messages without their Sync hold an implicit transaction open. */
    k->in_transaction = s->tx_status != 'I' || s->owed.unsynced || s->owed.skipping;
    k->pinned = c->pinned;
    k->xact_started_ms = c->stats.xact_started_us / 1000;
}

static void cancel_for_timeout(struct wp_client *c, int64_t limit)
{
    struct wp_server *s = c->server;
    s->timeout_cancel = limit;
    log_info("C-%llu %s/%s@%s: query_timeout (%lld ms) reached; cancelling it on S-%llu pid=%u",
             (unsigned long long)c->id, c->dbname, c->user, c->addr, (long long)limit,
             (unsigned long long)s->id, s->backend_pid);
    cancel_server(s);
}

static void close_for_timeout(struct wp_client *c, const char *sqlstate, const char *name,
                              int64_t limit)
{
    char text[128], limit_text[32];
    timeouts_format(limit_text, sizeof limit_text, limit);
    snprintf(text, sizeof text, "%s (%s) exceeded: closing the connection", name, limit_text);
    client_send_error(c, "FATAL", sqlstate, text);
}

static void check_client(struct wp_client *c, int64_t now)
{
    const struct wp_pool_settings *settings = c->pool ? &c->pool->settings : &wp_rt.cfg->pool;
    struct wp_client_clock k;
    /* A client between transactions holds no input buffer. It is given back here, not
       at every release: a busy client would hand it over and take it back from the
       cache once per transaction. */
    if (c->state == CL_IDLE)
        buf_release_if_empty(&c->conn.in);
    read_clock(c, &k);
    switch (timeouts_judge(&k, settings, wp_rt.cfg->client_login_timeout, now)) {
    case TIMEOUT_LOGIN:
        stats_timeout(NULL, STATS_TIMEOUT_CLIENT_LOGIN);
        client_send_error(c, "FATAL", "08006", "client_login_timeout: login took too long");
        return;
    case TIMEOUT_QUERY:
        stats_timeout(c->pool, STATS_TIMEOUT_QUERY);
        cancel_for_timeout(c, settings->query_timeout);
        break;
    case TIMEOUT_IDLE_TRANSACTION:
        stats_timeout(c->pool, STATS_TIMEOUT_IDLE_TRANSACTION);
        /* Closing abandons the backend: it is rolled back and returned to the pool. */
        close_for_timeout(c, "25P03", "idle_transaction_timeout",
                          settings->idle_transaction_timeout);
        return;
    case TIMEOUT_CLIENT_IDLE:
        stats_timeout(c->pool, STATS_TIMEOUT_CLIENT_IDLE);
        close_for_timeout(c, "57P05", "client_idle_timeout", settings->client_idle_timeout);
        return;
    case TIMEOUT_PINNED_IDLE:
        stats_timeout(c->pool, STATS_TIMEOUT_PINNED_IDLE);
        /* Closing resets the backend (DISCARD ALL) before it serves anyone else. */
        close_for_timeout(c, "57P05", "pinned_idle_timeout", settings->pinned_idle_timeout);
        return;
    case TIMEOUT_TRANSACTION:
        stats_timeout(c->pool, STATS_TIMEOUT_TRANSACTION);
        /* Closing abandons the backend: a running query is cancelled, the transaction
           rolled back, and the backend returned to the pool (or closed). */
        close_for_timeout(c, "25P04", "transaction_timeout", settings->transaction_timeout);
        return;
    case TIMEOUT_NONE:
        break;
    }
    if (shutdown_closes(c, now))
        client_send_error(c, "FATAL", "57P01", "warmpool is shutting down");
}

static void check_clients(int64_t now)
{
    struct wp_list *pos = wp_rt.clients.next;
    while (pos != &wp_rt.clients) {
        struct wp_list *next = pos->next;
        check_client(list_entry(pos, struct wp_client, all), now);
        /* Closing one client can close another (its backend lent on, then lost), and
           a closed client leaves this list: start over then; checks are idempotent. */
        if (next != &wp_rt.clients && list_entry(next, struct wp_client, all)->state == CL_CLOSING)
            next = wp_rt.clients.next;
        pos = next;
    }
}

static void check_shutdown(int64_t now)
{
    if (!wp_rt.shutting_down)
        return;
    if (wp_rt.nclients == 0 || now >= wp_rt.shutdown_deadline_ms) {
        if (wp_rt.nclients > 0)
            log_warn("shutdown_wait_timeout reached with %d clients left", wp_rt.nclients);
        event_base_loopbreak(wp_rt.base);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    int64_t now = wp_now_ms();
    check_clients(now);
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        pool_maintain(list_entry(pos, struct wp_pool, node), now);
    }
    fleet_tick(now);
    stats_roll_periods(now);
    admin_waits_check(now);
    check_shutdown(now);
}

int timeouts_start(void)
{
    struct timeval tv = {0, TIMEOUTS_TICK_MS * 1000};
    tick_event = event_new(wp_rt.base, -1, EV_PERSIST, on_tick, NULL);
    if (!tick_event)
        return -1;
    return event_add(tick_event, &tv);
}

void timeouts_stop(void)
{
    if (tick_event)
        event_free(tick_event);
    tick_event = NULL;
}
