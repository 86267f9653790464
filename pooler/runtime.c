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
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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

void runtime_sets_free(struct wp_set_values *sets)
{
    for (int i = 0; i < sets->n; i++) {
        free(sets->keys[i]);
        free(sets->values[i]);
    }
    free(sets->keys);
    free(sets->values);
    memset(sets, 0, sizeof *sets);
}

/* Copies of key and value as entry i of sets (room made by the caller); false when out
   of memory. */
static bool sets_put(struct wp_set_values *sets, int i, const char *key, const char *value)
{
    sets->keys[i] = strdup(key);
    sets->values[i] = strdup(value);
    return sets->keys[i] && sets->values[i];
}

int runtime_sets_with(const struct wp_set_values *from, const char *key, const char *value,
                      struct wp_set_values *out)
{
    bool ok, replaced = false;

    memset(out, 0, sizeof *out);
    out->keys = calloc((size_t)from->n + 1, sizeof *out->keys);
    out->values = calloc((size_t)from->n + 1, sizeof *out->values);
    ok = out->keys && out->values;
    for (int i = 0; i < from->n && ok; i++) {
        bool same = strcmp(from->keys[i], key) == 0;
        ok = sets_put(out, out->n++, from->keys[i], same ? value : from->values[i]);
        replaced |= same;
    }
    if (ok && !replaced)
        ok = sets_put(out, out->n++, key, value);
    if (!ok)
        runtime_sets_free(out);
    return ok ? 0 : -1;
}
