/*
 * pool_limits — max_db_connections and max_user_connections across pools
 * (include/warmpool/pool_limits.h), and the cap a fleet budget (fleet.c) allows this
 * instance for a database, counted as max_db_connections is.
 *
 * Pools sharing a database name (the name clients connect to) count together toward
 * max_db_connections; pools sharing a client user name count together toward
 * max_user_connections ([users] entry, else the [warmpool] default). Every server a
 * pool holds counts, whatever its state, so PostgreSQL never sees more backends
 * than the limit (apart from the moment a closed backend takes to exit).
 *
 * When a limit is reached, clients queue as usual (query_wait_timeout applies).
 * A pool's server that comes free goes to a starved sibling instead (closed, so the
 * sibling can open its own) when the pool has nobody waiting, or when it holds at
 * least two servers more than that sibling: under steady load the shared room
 * evens out between pools instead of staying with the first one to grow.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "warmpool/client.h"
#include "warmpool/config.h"
#include "warmpool/fleet.h"
#include "warmpool/list.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/pool_limits.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"

/* Whether the configuration in force gives any user a max_user_connections limit.
   Without one (the default) no pool's user needs looking up on every lend and
   release; limits_refresh() keeps it current. */
static int user_limits_set;

void limits_refresh(const struct wp_config *cfg)
{
    int any = cfg->max_user_connections > 0;
    for (int i = 0; i < cfg->nusers && !any; i++)
        any = cfg->users[i].max_user_connections > 0;
    user_limits_set = any;
}

/* The pool's max_user_connections. Out of line, as is every path here taken only
   under a limit: the common path, no limit at all, then saves no registers. */
__attribute__((noinline)) static int configured_user_limit(const struct wp_pool *pool)
{
    const struct wp_user_config *u = config_find_user(wp_rt.cfg, pool->user);
    return u && u->max_user_connections != WP_UNSET ? u->max_user_connections
                                                    : wp_rt.cfg->max_user_connections;
}

/* 0 or less: no limit. */
static int user_limit(const struct wp_pool *pool)
{
    return user_limits_set ? configured_user_limit(pool) : 0;
}

static int db_limit(const struct wp_pool *pool)
{
    return pool->settings.max_db_connections > 0 ? pool->settings.max_db_connections : 0;
}

/* A fleet budget (fleet.c) is one more limit on the servers of a database. */
static int fleet_limited(const struct wp_pool *pool)
{
    return pool->settings.fleet_max_db_connections > 0;
}

static int db_limited(const struct wp_pool *pool)
{
    return db_limit(pool) > 0 || fleet_limited(pool);
}

static int same_db(const struct wp_pool *a, const struct wp_pool *b)
{
    return strcmp(a->dbname, b->dbname) == 0;
}

static int same_user(const struct wp_pool *a, const struct wp_pool *b)
{
    return strcmp(a->user, b->user) == 0;
}

/* Servers of every pool for which same(pool, other) holds, `pool` included. */
static int count_servers(const struct wp_pool *pool,
                         int (*same)(const struct wp_pool *, const struct wp_pool *))
{
    int total = 0;
    for (struct wp_list *n = wp_rt.pools.next; n != &wp_rt.pools; n = n->next) {
        const struct wp_pool *other = list_entry(n, struct wp_pool, node);
        if (same(pool, other))
            total += other->nservers;
    }
    return total;
}

/* limits_room() when a limit may apply. */
__attribute__((noinline)) static int room_under_limits(const struct wp_pool *pool)
{
    int db_max = db_limit(pool), user_max = user_limit(pool);
    int fleet_max = fleet_limited(pool) ? fleet_cap(pool) : -1; /* -1: no fleet */
    int room = INT_MAX;
    if (db_max > 0 || fleet_max >= 0) {
        int servers = count_servers(pool, same_db);
        if (db_max > 0)
            room = db_max - servers;
        if (fleet_max >= 0 && fleet_max - servers < room)
            room = fleet_max - servers;
    }
    if (user_max > 0) {
        int user_room = user_max - count_servers(pool, same_user);
        if (user_room < room)
            room = user_room;
    }
    return room;
}

int limits_room(const struct wp_pool *pool)
{
    if (!db_limited(pool) && !user_limits_set)
        return INT_MAX; /* the default: nothing to count */
    return room_under_limits(pool);
}

/* Clients of `pool` that no server (open, coming or being checked) will serve; the
   clients still logging in count as one (the pool's first server welcomes them). */
static int unserved_waiters(const struct wp_pool *pool)
{
    int welcoming = list_empty(&pool->welcoming) ? 0 : 1;
    return pool->nwaiting + welcoming - pool->nchecking - pool->nconnecting;
}

static int shares_limit(const struct wp_pool *a, const struct wp_pool *b)
{
    return a != b && ((db_limited(a) && same_db(a, b)) || (user_limit(a) > 0 && same_user(a, b)));
}

static int is_starved(const struct wp_pool *pool)
{
    return !pool->paused && unserved_waiters(pool) > 0 && limits_room(pool) <= 0;
}

static int64_t first_wait_started(const struct wp_pool *pool);

/* The starved sibling whose first client has waited longest, or NULL. */
static struct wp_pool *starved_sibling(const struct wp_pool *pool)
{
    struct wp_pool *best = NULL;
    int64_t best_since = 0;
    for (struct wp_list *n = wp_rt.pools.next; n != &wp_rt.pools; n = n->next) {
        struct wp_pool *other = list_entry(n, struct wp_pool, node);
        if (!shares_limit(pool, other) || !is_starved(other))
            continue;
        if (!best || first_wait_started(other) < best_since) {
            best = other;
            best_since = first_wait_started(other);
        }
    }
    return best;
}

/* Since when the pool's oldest waiting (or logging in) client has waited. */
static int64_t first_wait_started(const struct wp_pool *pool)
{
    int64_t since = INT64_MAX;
    if (!list_empty(&pool->waiting))
        since = list_entry(pool->waiting.next, struct wp_client, node)->wait_started_ms;
    if (!list_empty(&pool->welcoming)) {
        int64_t t = list_entry(pool->welcoming.next, struct wp_client, node)->login_started_ms;
        if (t < since)
            since = t;
    }
    return since;
}

int limits_room_for(const struct wp_pool *pool)
{
    int room = limits_room(pool);
    if (room <= 0 || room == INT_MAX)
        return room;
    /* Waiting clients of other pools come first when their pool holds fewer servers
       (or as many, and they waited longer), and always when this pool only wants to
       fill min_pool_size: the shared room evens out between the pools. */
    int mine = unserved_waiters(pool) > 0;
    int64_t since = mine ? first_wait_started(pool) : 0;
    for (struct wp_list *n = wp_rt.pools.next; n != &wp_rt.pools && room > 0; n = n->next) {
        const struct wp_pool *other = list_entry(n, struct wp_pool, node);
        if (!shares_limit(pool, other) || other->paused || unserved_waiters(other) <= 0)
            continue;
        if (!mine || other->nservers < pool->nservers ||
            (other->nservers == pool->nservers && first_wait_started(other) < since))
            room -= unserved_waiters(other);
    }
    return room;
}

/* No shared limit applies to this pool: nothing to share (the common case, checked
   on every release before walking the pools). */
static int unlimited(const struct wp_pool *pool)
{
    return !db_limited(pool) && user_limit(pool) <= 0;
}

/* limits_hand_over() once a limit applies. */
__attribute__((noinline)) static int hand_over(struct wp_server *s)
{
    struct wp_pool *pool = s->pool;
    struct wp_pool *to = starved_sibling(pool);
    if (!to)
        return 0;
    if (pool->nwaiting > 0 && pool->nservers < to->nservers + 2)
        return 0;
    log_debug("pool %s/%s: server handed over to waiting pool %s/%s (shared connection limit)",
              pool->dbname, pool->user, to->dbname, to->user);
    server_close(s, "shared connection limit: another pool is waiting");
    pool_launch_if_needed(to);
    return 1;
}

int limits_hand_over(struct wp_server *s)
{
    if (wp_rt.shutting_down || unlimited(s->pool))
        return 0;
    return hand_over(s);
}

int limits_reclaim_idle(struct wp_pool *pool)
{
    if (unlimited(pool))
        return 0;
    for (struct wp_list *n = wp_rt.pools.next; n != &wp_rt.pools; n = n->next) {
        struct wp_pool *other = list_entry(n, struct wp_pool, node);
        if (!shares_limit(pool, other) || other->nwaiting > 0 || list_empty(&other->idle))
            continue;
        struct wp_server *s = pool_oldest_idle(other); /* not empty: checked above */
        log_debug("pool %s/%s: idle server closed for waiting pool %s/%s (shared connection "
                  "limit)",
                  other->dbname, other->user, pool->dbname, pool->user);
        server_close(s, "shared connection limit: another pool is waiting");
        return 1;
    }
    return 0;
}
