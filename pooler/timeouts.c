/*
 * timeouts — monotonic time and the janitor tick. Every deadline of the pooler is
 * checked here: client login timeout, pool maintenance (sizes, idle/lifetime,
 * connect and wait timeouts), and the graceful-shutdown drain.
 */
#include <event2/event.h>
#include <time.h>

#include "warmpool/client.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/relay.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/timeouts.h"

#define TICK_MS 100

static struct event *tick_event;

int64_t wp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int between_transactions(const struct wp_client *c)
{
    if (buf_unread(&c->rbuf) > 0)
        return 0;
    if (c->state == CL_IDLE)
        return 1;
    const struct wp_server *s = c->server;
    return c->state == CL_ACTIVE && s && s->tx_status == 'I' && s->outstanding == 0 &&
           s->swallow == 0 && !s->in_extended && !s->copy_in && s->scan == 0 &&
           buf_unread(&c->wbuf) == 0;
}

static void check_clients(int64_t now)
{
    int64_t login_timeout = wp_rt.cfg->client_login_timeout;
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.clients)
    {
        struct wp_client *c = list_entry(pos, struct wp_client, all);
        if (c->state <= CL_WELCOME && login_timeout > 0 &&
            now - c->login_started_ms > login_timeout) {
            client_send_error(c, "FATAL", "08006", "client_login_timeout: login took too long");
            continue;
        }
        /* Graceful shutdown: a client between transactions is done. */
        if (wp_rt.shutting_down && between_transactions(c))
            client_send_error(c, "FATAL", "57P01", "warmpool is shutting down");
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
    check_shutdown(now);
}

int timeouts_start(void)
{
    struct timeval tv = {0, TICK_MS * 1000};
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
