/*
 * runtime — the process-wide state the event loop works on (`wp_rt`,
 * include/warmpool/runtime.h) and the helpers that look after it as a whole.
 *
 * The reaper: closed clients and servers wait in their module's graveyard until the
 * callback that closed them has returned (a caller several frames up may still hold
 * the pointer); a zero-delay event then frees them.
 */
#include <event2/event.h>

#include "warmpool/client.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"

struct wp_runtime wp_rt;

int runtime_init(struct wp_config *cfg)
{
    list_init(&wp_rt.pools);
    list_init(&wp_rt.clients);
    wp_rt.cfg = cfg;
    return registry_init(&wp_rt.registry);
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    client_reap();
    server_reap();
}

int runtime_start_reaper(void)
{
    wp_rt.ev_reap = event_new(wp_rt.base, -1, 0, on_reap, NULL);
    return wp_rt.ev_reap ? 0 : -1;
}

void runtime_stop_reaper(void)
{
    if (wp_rt.ev_reap)
        event_free(wp_rt.ev_reap);
    wp_rt.ev_reap = NULL;
}

void runtime_schedule_reap(void)
{
    if (wp_rt.ev_reap)
        event_active(wp_rt.ev_reap, EV_TIMEOUT, 0);
}
