/*
 * runtime — the process-wide state the event loop works on: the event base, the
 * active configuration and auth file, every pool and client. One instance, `wp_rt`,
 * defined in pooler/runtime.c with the helpers below; main.c fills it at startup.
 */
#ifndef WARMPOOL_RUNTIME_H
#define WARMPOOL_RUNTIME_H

#include <stdint.h>

#include "warmpool/auth.h"
#include "warmpool/config.h"
#include "warmpool/hba.h"
#include "warmpool/list.h"
#include "warmpool/prepared.h"

struct event_base;
struct event;

/* PgBouncer's three shutdowns (SHUTDOWN [WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS], SIGINT,
   SIGTERM, SIGQUIT). Each stops accepting connections; both waits end at the latest
   after shutdown_wait_timeout. */
enum wp_shutdown_mode {
    WP_SHUTDOWN_WAIT_FOR_SERVERS = 1, /* safe: transactions finish, idle clients go */
    WP_SHUTDOWN_IMMEDIATE = 2,        /* everything closes now */
    WP_SHUTDOWN_WAIT_FOR_CLIENTS = 3, /* super safe: clients keep working until they leave */
};

/* The console's SET values over the configuration file: warmpool's key names and the
   values as given, in the order first set. */
struct wp_set_values {
    char **keys, **values;
    int n;
};

struct wp_runtime {
    struct event_base *base;
    struct wp_config *cfg; /* in force; held (runtime_install_config) */
    int nconfigs;          /* configurations in memory: cfg and replaced ones still held */
    struct wp_userlist users;
    struct wp_hba hba;      /* auth_hba_file rules; hba.loaded = 0 when there is none */
    struct wp_list pools;   /* struct wp_pool.node */
    struct wp_list clients; /* struct wp_client.all */
    int nclients;
    struct wp_registry registry; /* prepared statements of every pool */
    struct event *ev_reap;       /* runtime_schedule_reap() */
    uint64_t next_id;
    struct wp_set_values sets; /* in force over the file; a reload drops them */
    int shutting_down;         /* enum wp_shutdown_mode: 0 = running */
    int64_t shutdown_deadline_ms;
};

extern struct wp_runtime wp_rt;

/* Start a shutdown of that mode (main.c; the console's SHUTDOWN and the signals). A
   second request while one is under way is immediate, as in PgBouncer. */
void runtime_shutdown(enum wp_shutdown_mode mode);

static inline uint64_t runtime_next_id(void)
{
    return ++wp_rt.next_id;
}

/* Unconsumed bytes a client may have before its reads pause (more only for a message
   wanted whole): the one figure client.c, relay.c and relay_prepared.c all use. */
static inline size_t runtime_client_input_cap(void)
{
    return (size_t)wp_rt.cfg->pkt_buf * 4;
}

/* Empty lists, the prepared-statement registry, and cfg (allocated, as from a load)
   installed as the configuration in force; -1 when out of memory. */
int runtime_init(struct wp_config *cfg);
/* cfg becomes the configuration in force; the previous one is dropped. */
void runtime_install_config(struct wp_config *cfg);
/* A configuration is freed (config_free and free) when its last holder drops it:
   pools point into the one they were made with until a reload gives them another. */
void runtime_config_hold(struct wp_config *cfg);
void runtime_config_drop(struct wp_config *cfg);
/* The reaper's event on wp_rt.base (made once the base exists; freed before it). */
int runtime_start_reaper(void);
void runtime_stop_reaper(void);
/* Free closed connections once no callback frame can still hold them. */
void runtime_schedule_reap(void);
/* Re-read the configuration now, as SIGHUP does (admin console RELOAD). The file's
   values replace every SET value. */
void runtime_reload(void);
/* The console's SET: the configuration file is read again with key = value over it
   (and the SET values before it, a value for the same key replaced), validated and
   installed as a reload does. key is warmpool's name or PgBouncer's, value as the file
   would have it. 0, or -1 with err saying why (an unknown key, a bad value, a key only a
   restart changes, or the file no longer loads): the running configuration stays. */
int runtime_set_setting(const char *key, const char *value, char *err, size_t errlen);
/* *out = *from with key = value: replacing key's value, else added last. -1 when out of
   memory (*out is then empty). */
int runtime_sets_with(const struct wp_set_values *from, const char *key, const char *value,
                      struct wp_set_values *out);
void runtime_sets_free(struct wp_set_values *sets);

#endif
