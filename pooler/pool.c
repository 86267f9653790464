/*
 * pool — lending backends of one (database, user) pair to its clients.
 *
 * Idle servers are reused most-recent-first (warm caches, and the oldest ones age
 * out through server_idle_timeout); waiting clients are served first-come,
 * first-served. The pool opens servers up to max_pool_size, plus reserve_pool_size
 * for clients that waited reserve_pool_timeout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/client.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/relay_prepared.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/timeouts.h"

/* A backend that will not drain in this long after its client left is closed. */
#define DRAIN_TIMEOUT_MS 10000

struct wp_pool *pool_find(const char *dbname, const char *user)
{
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        if (strcmp(pool->dbname, dbname) == 0 && strcmp(pool->user, user) == 0)
            return pool;
    }
    return NULL;
}

/* Which login the pool's backends use: forced in the connection string, or the
   client's name with the plaintext password from the auth file when there is one. */
static void choose_backend_login(struct wp_pool *pool)
{
    free(pool->backend_user);
    free(pool->backend_password);
    pool->backend_user = strdup(pool->db->forced_user ? pool->db->forced_user : pool->user);
    pool->backend_password = NULL;
    const struct wp_user_secret *secret = auth_userlist_find(&wp_rt.users, pool->user);
    if (!pool->db->forced_user && secret && secret->kind == WP_SECRET_PLAIN)
        pool->backend_password = strdup(secret->secret);
}

void pool_refresh_settings(struct wp_pool *pool)
{
    const struct wp_config *cfg = wp_rt.cfg;
    const struct wp_db_config *db = config_find_db(cfg, pool->dbname);
    if (db)
        pool->db = db;
    config_effective(cfg, pool->db, config_find_user(cfg, pool->user), &pool->settings);
    choose_backend_login(pool);
}

struct wp_pool *pool_get(const struct wp_db_config *db, const char *dbname, const char *user)
{
    struct wp_pool *pool = pool_find(dbname, user);
    if (pool)
        return pool;
    pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->dbname = strdup(dbname);
    pool->user = strdup(user);
    pool->db = db;
    list_init(&pool->idle);
    list_init(&pool->active);
    list_init(&pool->busy);
    list_init(&pool->waiting);
    list_init(&pool->welcoming);
    pool_refresh_settings(pool);
    list_push_tail(&wp_rt.pools, &pool->node);
    log_info("pool %s/%s: created (%s mode, max %d)", dbname, user,
             config_mode_name(pool->settings.pool_mode), pool->settings.max_pool_size);
    pool_launch_if_needed(pool);
    return pool;
}

void pool_free(struct wp_pool *pool)
{
    prepared_pool_forget(pool);
    list_remove(&pool->node);
    params_clear(&pool->params);
    free(pool->dbname);
    free(pool->user);
    free(pool->backend_user);
    free(pool->backend_password);
    free(pool);
}

static void link_server(struct wp_server *s, struct wp_client *c)
{
    server_set_state(s, SV_ACTIVE);
    s->client = c;
    c->server = s;
    c->state = CL_ACTIVE;
    if (s->pool->settings.pool_mode == WP_MODE_SESSION || wp_rt.cfg->server_reset_query_always)
        s->needs_reset = 1;
}

static void note_wait_over(struct wp_pool *pool, struct wp_client *c)
{
    int64_t waited_us = (wp_now_ms() - c->wait_started_ms) * 1000;
    pool->wait_count++;
    pool->total_wait_us += waited_us;
    if (waited_us > pool->max_wait_us)
        pool->max_wait_us = waited_us;
}

int pool_request_server(struct wp_pool *pool, struct wp_client *c)
{
    if (!pool->paused && !list_empty(&pool->idle)) {
        struct wp_server *s = list_entry(pool->idle.next, struct wp_server, node);
        link_server(s, c);
        return 1;
    }
    c->state = CL_WAITING;
    c->wait_started_ms = wp_now_ms();
    list_push_tail(&pool->waiting, &c->node);
    pool->nwaiting++;
    pool_launch_if_needed(pool);
    return 0;
}

void pool_cancel_wait(struct wp_client *c)
{
    list_remove(&c->node);
    c->pool->nwaiting--;
}

void pool_server_ready(struct wp_server *s)
{
    struct wp_pool *pool = s->pool;
    s->last_used_ms = wp_now_ms();
    if (s->close_when_quiet) {
        server_close(s, "retired");
        return;
    }
    if (!pool->paused && !list_empty(&pool->waiting)) {
        struct wp_client *c = list_entry(list_pop_head(&pool->waiting), struct wp_client, node);
        pool->nwaiting--;
        note_wait_over(pool, c);
        link_server(s, c);
        client_linked(c);
        return;
    }
    server_set_state(s, SV_IDLE);
    if (wp_rt.shutting_down == 2)
        server_close(s, "shutting down");
}

void pool_server_closed(struct wp_pool *pool, struct wp_server *s)
{
    (void)s;
    pool->nservers--;
    if (!wp_rt.shutting_down)
        pool_launch_if_needed(pool);
}

static void fail_clients(struct wp_list *list, struct wp_pool *pool, const char *sqlstate,
                         const char *message)
{
    char text[512];
    snprintf(text, sizeof text, "server login failed: %s", message);
    while (!list_empty(list)) {
        struct wp_client *c = list_entry(list->next, struct wp_client, node);
        if (c->state == CL_WAITING) {
            list_remove(&c->node);
            pool->nwaiting--;
            c->state = CL_IDLE;
        }
        list_remove(&c->node);
        client_send_error(c, "FATAL", sqlstate, text);
    }
}

void pool_connect_failed(struct wp_pool *pool, const char *sqlstate, const char *message)
{
    snprintf(pool->last_error, sizeof pool->last_error, "%s", message);
    snprintf(pool->last_sqlstate, sizeof pool->last_sqlstate, "%s", sqlstate);
    pool->retry_after_ms = wp_now_ms() + wp_rt.cfg->server_login_retry;
    /* Nobody can be served while the pool has no backend at all: say why now
       rather than let clients hang. Others wait for the servers that exist. */
    if (pool->nservers - pool->nconnecting <= 0) {
        fail_clients(&pool->welcoming, pool, sqlstate, message);
        fail_clients(&pool->waiting, pool, sqlstate, message);
    }
}

void pool_set_params(struct wp_pool *pool, const struct wp_params *params)
{
    params_copy(&pool->params, params);
    pool->params_known = 1;
    while (!list_empty(&pool->welcoming)) {
        struct wp_client *c = list_entry(pool->welcoming.next, struct wp_client, node);
        client_welcome(c); /* removes it from the list */
    }
}

static int oldest_wait_ms(struct wp_pool *pool, int64_t now)
{
    if (list_empty(&pool->waiting))
        return 0;
    struct wp_client *c = list_entry(pool->waiting.next, struct wp_client, node);
    return (int)(now - c->wait_started_ms);
}

static int server_limit(struct wp_pool *pool, int64_t now)
{
    int limit = pool->settings.max_pool_size;
    if (pool->settings.reserve_pool_size > 0 &&
        oldest_wait_ms(pool, now) >= wp_rt.cfg->reserve_pool_timeout)
        limit += pool->settings.reserve_pool_size;
    int db_max = pool->settings.max_db_connections;
    if (db_max > 0 && limit > db_max)
        limit = db_max;
    return limit;
}

void pool_launch_if_needed(struct wp_pool *pool)
{
    if (wp_rt.shutting_down)
        return;
    int64_t now = wp_now_ms();
    if (now < pool->retry_after_ms)
        return;
    int limit = server_limit(pool, now);
    int want = pool->nwaiting + (list_empty(&pool->welcoming) ? 0 : 1);
    for (;;) {
        int below_min = pool->nservers < pool->settings.min_pool_size;
        int needed = want > pool->nconnecting;
        if (pool->nservers >= limit || (!below_min && !needed))
            break;
        if (!server_connect(pool))
            break;
    }
}

static void close_expired_idle(struct wp_pool *pool, int64_t now)
{
    struct wp_list *pos, *tmp;
    int64_t idle_timeout = pool->settings.server_idle_timeout;
    list_for_each_safe(pos, tmp, &pool->idle)
    {
        struct wp_server *s = list_entry(pos, struct wp_server, node);
        if (s->lifetime_ms > 0 && now - s->created_ms > s->lifetime_ms) {
            server_close(s, "server_lifetime reached");
            continue;
        }
        if (idle_timeout > 0 && now - s->last_used_ms > idle_timeout &&
            pool->nservers > pool->settings.min_pool_size)
            server_close(s, "server_idle_timeout reached");
    }
}

static void close_stuck_busy(struct wp_pool *pool, int64_t now)
{
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &pool->busy)
    {
        struct wp_server *s = list_entry(pos, struct wp_server, node);
        if (s->state == SV_CONNECTING && wp_rt.cfg->server_connect_timeout > 0 &&
            now - s->connect_started_ms > wp_rt.cfg->server_connect_timeout) {
            server_close(s, "server_connect_timeout reached");
            pool_connect_failed(pool, "08006", "timeout while connecting to the server");
        } else if (s->state == SV_DRAINING && now - s->drain_started_ms > DRAIN_TIMEOUT_MS) {
            server_close(s, "did not become idle after its client left");
        }
    }
}

static void expire_waiters(struct wp_pool *pool, int64_t now)
{
    int64_t limit = pool->settings.query_wait_timeout;
    if (limit <= 0)
        return;
    while (!list_empty(&pool->waiting)) {
        struct wp_client *c = list_entry(pool->waiting.next, struct wp_client, node);
        if (now - c->wait_started_ms < limit)
            break;
        pool_cancel_wait(c);
        c->state = CL_IDLE;
        client_send_error(c, "FATAL", "08P01", "query_wait_timeout: no server available in time");
    }
}

void pool_maintain(struct wp_pool *pool, int64_t now)
{
    close_expired_idle(pool, now);
    close_stuck_busy(pool, now);
    expire_waiters(pool, now);
    pool_launch_if_needed(pool);
}
