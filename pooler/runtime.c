/*
 * runtime — the process-wide state the event loop works on (`wp_rt`,
 * include/warmpool/runtime.h) and the helpers that look after it as a whole.
 *
 * The reaper: closed clients and servers wait in their module's graveyard until the
 * callback that closed them has returned (a caller several frames up may still hold
 * the pointer); a zero-delay event then frees them.
 *
 * Configurations are reference counted. A reload installs a new one, but a pool keeps
 * pointing into the one its `[databases]` entry came from when the new file no longer
 * has that entry; the old configuration lives until the last such pool is freed.
 * wp_rt.nconfigs counts those alive (/metrics), so a leak shows.
 */
#include <event2/event.h>
#include <stdlib.h>

#include "warmpool/client.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"

struct wp_runtime wp_rt;

int runtime_init(struct wp_config *cfg)
{
    list_init(&wp_rt.pools);
    list_init(&wp_rt.clients);
    runtime_install_config(cfg);
    return registry_init(&wp_rt.registry);
}

void runtime_config_hold(struct wp_config *cfg)
{
    if (cfg->refs++ == 0)
        wp_rt.nconfigs++;
}

void runtime_config_drop(struct wp_config *cfg)
{
    if (--cfg->refs > 0)
        return;
    wp_rt.nconfigs--;
    config_free(cfg);
    free(cfg);
}

void runtime_install_config(struct wp_config *cfg)
{
    struct wp_config *old = wp_rt.cfg;
    runtime_config_hold(cfg);
    wp_rt.cfg = cfg;
    if (old)
        runtime_config_drop(old);
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
