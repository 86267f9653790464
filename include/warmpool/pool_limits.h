/*
 * pool_limits — limits shared by several pools: max_db_connections (servers of every
 * pool of one database) and max_user_connections (servers of every pool of one
 * user). A pool that reaches one queues its clients; a server of another pool under
 * the same limit that comes free is closed so the waiting pool can open its own.
 */
#ifndef WARMPOOL_POOL_LIMITS_H
#define WARMPOOL_POOL_LIMITS_H

struct wp_config;
struct wp_pool;
struct wp_server;

/* The configuration in force is `cfg` (at start and after a reload): note which
   limits it sets. pool_refresh_settings() calls it, before any pool uses them. */
void limits_refresh(const struct wp_config *cfg);

/* How many more servers `pool` may open under the shared limits (INT_MAX when none
   applies; negative when a reload lowered a limit below what is open). */
int limits_room(const struct wp_pool *pool);

/* limits_room, less what other pools under the same limits need for clients that
   waited longer (for all their waiting clients, when `pool` has none waiting and
   only wants to keep min_pool_size). */
int limits_room_for(const struct wp_pool *pool);

/* A server of `s->pool` is free: close it and let a starved pool under the same
   limit open one instead when that pool needs it more. 1 when it was closed. */
int limits_hand_over(struct wp_server *s);

/* `pool` has waiting clients and no room: close one idle server of another pool
   under the same limit that has nobody waiting. 1 when one was closed. */
int limits_reclaim_idle(struct wp_pool *pool);

#endif
