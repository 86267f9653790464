/*
 * fleet — the fleet connection budget on the event loop (pooler/fleet.c; the arithmetic
 * is fleet_share.c, the design docs/DEPLOY.md "Fleet deployment beside app servers").
 *
 * Per database with a fleet_max_db_connections budget, one libpq connection of
 * warmpool's own (the monitor) publishes this instance's cap, held and want in its
 * application_name and reads every fleet member's from pg_stat_activity, every
 * fleet_poll_interval. The cap it then allows itself is one more per-database limit
 * in pool_limits.c.
 */
#ifndef WARMPOOL_FLEET_H
#define WARMPOOL_FLEET_H

#include <stdint.h>

#include "warmpool/fleet_share.h"

struct wp_pool;

/* The janitor's tick: monitors follow the pools with a budget, polls start when due
   (early, at most every 200 ms, while a pool waits for room), stuck ones fail. */
void fleet_tick(int64_t now);
/* A reload or SET installed a configuration: budgets and the instance's name apply at
   once (a lowered budget lowers the cap before anything opens a backend under it). */
void fleet_config_changed(void);
/* The cap this instance allows itself for the pool's database: -1 when no fleet
   budget applies, 0 before the first read. */
int fleet_cap(const struct wp_pool *pool);
/* application_name of every backend in a fleet ("wp:<fleet>:<instance>"); NULL when
   fleet_name is empty. */
const char *fleet_stamp(void);
/* This instance's name in the fleet ("" when off). */
const char *fleet_instance(void);
/* Close every monitor connection and forget the state (exit). */
void fleet_shutdown(void);

enum fleet_state { FLEET_STARTING, FLEET_OK, FLEET_FALLBACK };
const char *fleet_state_name(enum fleet_state s);

/* What the views show of one budgeted database. */
struct fleet_info {
    const char *dbname;
    int budget;
    int cap;        /* this instance's */
    int fleet_held; /* every member's held, from the last read */
    enum fleet_state state;
    int64_t last_read_ms;               /* 0: never */
    const struct fleet_member *members; /* the last read, sorted by name, alloc set */
    int nmembers;
};
/* fn for every budgeted database, in the order they appeared. */
void fleet_each(void (*fn)(const struct fleet_info *info, void *arg), void *arg);
/* The database's, or 0 (and *info untouched) when it has no budget. */
int fleet_find(const char *dbname, struct fleet_info *info);

#endif
