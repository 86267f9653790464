/*
 * pool — lending backends of one (database, user) pair to its clients.
 *
 * Idle servers are reused most-recent-first (warm caches, and the oldest ones age
 * out through server_idle_timeout); waiting clients are served first-come,
 * first-served. The pool opens servers up to max_pool_size, plus reserve_pool_size
 * for clients that waited reserve_pool_timeout, and keeps min_pool_size open.
 *
 * A server idle longer than server_check_delay (or with unexpected bytes on its
 * socket) runs server_check_query before it is lent: the waiting client gets it
 * when the check answers, or another server if the check fails, never the dead one.
 * Lifetime, idle and size limits close servers only while they are not in use.
 *
 * The pool itself stays while a client or a not yet freed server holds it (pool_hold),
 * and goes server_idle_timeout after the last one let go (pool_expired).
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/auth.h"
#include "warmpool/client.h"
#include "warmpool/db_state.h"
#include "warmpool/hosts.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/pool_limits.h"
#include "warmpool/proto.h"
#include "warmpool/relay.h"
#include "warmpool/relay_prepared.h"
#include "warmpool/runtime.h"
#include "warmpool/scram_client.h"
#include "warmpool/server.h"
#include "warmpool/server_setup.h"
#include "warmpool/stats.h"
#include "warmpool/timeouts.h"

/* Retries after a login that worked: the first after POOL_FAST_RETRY_MS, doubling. */
#define POOL_FAST_RETRIES 5
#define POOL_FAST_RETRY_MS 50LL

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

static void drop_backend_keys(struct wp_pool *pool)
{
    if (pool->backend_keys) {
        scram_client_keys_wipe(pool->backend_keys);
        free(pool->backend_keys);
    }
    pool->backend_keys = NULL;
    pool->backend_keys_passed = 0;
}

/* Which login the pool's backends use: forced in the connection string, or the
   client's name with the plaintext password from the auth file when there is one. */
static void choose_backend_login(struct wp_pool *pool)
{
    free(pool->backend_user);
    free(pool->backend_password);
    pool->backend_user = strdup(pool->db->forced_user ? pool->db->forced_user : pool->user);
    pool->backend_password = NULL;
    /* Keys derived from the old password may not fit the new one: derived again. */
    if (!pool->backend_keys_passed || pool->db->forced_user)
        drop_backend_keys(pool);
    const struct wp_user_secret *secret = auth_userlist_find(&wp_rt.users, pool->user);
    if (!pool->db->forced_user && secret && secret->kind == WP_SECRET_PLAIN)
        pool->backend_password = strdup(secret->secret);
    if (!pool->db->forced_user && secret)
        pool_learn_login(pool, secret, NULL);
}

int pool_set_backend_keys(struct wp_pool *pool, const struct scram_client_keys *keys, int passed)
{
    struct scram_client_keys *copy = malloc(sizeof *copy);
    if (!copy)
        return -1;
    *copy = *keys;
    drop_backend_keys(pool);
    pool->backend_keys = copy;
    pool->backend_keys_passed = passed;
    return 0;
}

/* The ClientKey of a proven SCRAM login against the user's stored secret, with the
   secret's ServerKey: enough to log in to a server holding the same secret. */
static void keep_passed_keys(struct wp_pool *pool, const struct wp_user_secret *secret,
                             const struct scram_state *st)
{
    struct scram_keys stored;
    struct scram_client_keys passed;
    if (!st || !st->have_client_key || scram_parse_secret(secret->secret, &stored) < 0)
        return;
    scram_client_keys_from_login(&stored, st->client_key, &passed);
    /* New credentials: a login held back by server_login_retry may succeed now. */
    if (!pool->backend_keys)
        pool->retry_after_ms = 0;
    if (pool_set_backend_keys(pool, &passed, 1) == 0)
        log_debug("%s/%s: SCRAM keys for backend logins taken from the client's login",
                  pool->dbname, pool->user);
    scram_client_keys_wipe(&passed);
    OPENSSL_cleanse(&stored, sizeof stored);
}

void pool_learn_login(struct wp_pool *pool, const struct wp_user_secret *secret,
                      const struct scram_state *st)
{
    if (pool->db->forced_user || !secret || !auth_secret_usable(secret))
        return;
    if (secret->kind == WP_SECRET_SCRAM) {
        keep_passed_keys(pool, secret, st);
    } else if (secret->kind == WP_SECRET_MD5 &&
               (!pool->backend_md5 || strcmp(pool->backend_md5, secret->secret) != 0)) {
        free(pool->backend_md5);
        pool->backend_md5 = strdup(secret->secret);
    }
}

static int same_conninfo(const struct wp_db_config *a, const struct wp_db_config *b)
{
    if (a->nconn != b->nconn)
        return 0;
    for (int i = 0; i < a->nconn; i++)
        if (strcmp(a->conn_keys[i], b->conn_keys[i]) != 0 ||
            strcmp(a->conn_values[i], b->conn_values[i]) != 0)
            return 0;
    return 1;
}

/* Idle servers close now. Closing one may lend another to a waiting client: that one
   is not idle any more and goes as its caller decided (when released, or not). */
static void close_idle(struct wp_pool *pool, const char *reason)
{
    while (!list_empty(&pool->idle))
        server_close(list_entry(pool->idle.next, struct wp_server, node), reason);
}

int pool_close_servers(struct wp_pool *pool, const char *reason)
{
    int n = 0;
    struct wp_list *lists[] = {&pool->idle, &pool->active, &pool->busy};
    for (int i = 0; i < 3; i++)
        for (; !list_empty(lists[i]); n++)
            server_close(list_entry(lists[i]->next, struct wp_server, node), reason);
    return n;
}

/* Servers made so far go as soon as they are not in use (the connection string
   changed, or RECONNECT); new ones are made as needed. */
void pool_retire_servers(struct wp_pool *pool, const char *reason)
{
    pool_retire_host(pool, NULL, reason);
}

static int same_host(const struct wp_server *s, const char *host_port)
{
    return !s->host_port || !host_port || strcmp(s->host_port, host_port) == 0;
}

/* Every server on the host is marked first: closing one idle server may lend another
   to a waiting client, which then goes when released. The idle list is walked again
   from its head after each close, since a close may move any server out of it. */
void pool_retire_host(struct wp_pool *pool, const char *host_port, const char *reason)
{
    const struct wp_list *lists[] = {&pool->idle, &pool->active, &pool->busy};
    for (int i = 0; i < 3; i++)
        for (struct wp_list *n = lists[i]->next; n != lists[i]; n = n->next) {
            struct wp_server *s = list_entry(n, struct wp_server, node);
            if (same_host(s, host_port))
                s->close_when_quiet = 1;
        }
    struct wp_list *n = pool->idle.next;
    while (n != &pool->idle) {
        struct wp_server *s = list_entry(n, struct wp_server, node);
        if (!s->close_when_quiet) {
            n = n->next;
            continue;
        }
        server_close(s, reason);
        n = pool->idle.next;
    }
}

/* server_lifetime may have changed: every server gets a new jittered limit. */
static void refresh_lifetimes(struct wp_pool *pool)
{
    const struct wp_list *lists[] = {&pool->idle, &pool->active, &pool->busy};
    for (int i = 0; i < 3; i++)
        for (struct wp_list *n = lists[i]->next; n != lists[i]; n = n->next) {
            struct wp_server *s = list_entry(n, struct wp_server, node);
            s->lifetime_ms =
                timeouts_jitter_lifetime(pool->settings.server_lifetime, (uint32_t)random());
        }
}

/* The pool's entry now comes from the configuration in force, which it holds; it lets
   go of the one it had (which may be freed). An entry a reload removed stays in use,
   and so does the old configuration it belongs to. */
static void take_db(struct wp_pool *pool, const struct wp_db_config *db)
{
    struct wp_config *was = pool->db_cfg;
    pool->db = db;
    if (was == wp_rt.cfg)
        return;
    runtime_config_hold(wp_rt.cfg);
    pool->db_cfg = wp_rt.cfg;
    if (was)
        runtime_config_drop(was);
}

void pool_refresh_settings(struct wp_pool *pool)
{
    const struct wp_config *cfg = wp_rt.cfg;
    const struct wp_db_config *old = pool->db;
    const struct wp_db_config *db = config_find_db(cfg, pool->dbname);
    int64_t old_lifetime = pool->settings.server_lifetime;
    /* Compared now: once let go, the old entry may be freed with its configuration. */
    int conninfo_changed =
        db && old && db != old &&
        (!same_conninfo(old, db) || server_setup_changed(pool->db_cfg, old, cfg, db));
    limits_refresh(cfg);
    if (db)
        take_db(pool, db);
    config_effective(cfg, pool->db, config_find_user(cfg, pool->user), &pool->settings);
    choose_backend_login(pool);
    if (pool->settings.server_lifetime != old_lifetime)
        refresh_lifetimes(pool);
    if (conninfo_changed) {
        log_info("pool %s/%s: connection string changed; retiring its servers", pool->dbname,
                 pool->user);
        pool_retire_servers(pool, "connection string changed");
        /* The new string has not proven itself: its failures are told at once. */
        pool->login_worked = 0;
        pool->login_failures = 0;
    }
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
    runtime_config_hold(wp_rt.cfg);
    pool->db_cfg = wp_rt.cfg;
    list_init(&pool->idle);
    list_init(&pool->active);
    list_init(&pool->busy);
    list_init(&pool->waiting);
    list_init(&pool->welcoming);
    pool->unused_since_ms = wp_now_ms();
    pool->paused = db_state_paused(dbname);
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
    /* Nothing holds a statement of this pool any more (no client, no server, no warm
       list); should one survive, a later pool at the same address must not find it. */
    registry_retire_scope(&wp_rt.registry, pool);
    stats_pool_free(pool);
    list_remove(&pool->node);
    if (pool->db_cfg)
        runtime_config_drop(pool->db_cfg);
    params_clear(&pool->params);
    free(pool->dbname);
    free(pool->user);
    free(pool->backend_user);
    free(pool->backend_password);
    free(pool->backend_md5);
    drop_backend_keys(pool);
    hosts_free(pool->hosts);
    free(pool);
}

void pool_hold(struct wp_pool *pool)
{
    pool->holders++;
}

void pool_drop(struct wp_pool *pool)
{
    if (--pool->holders == 0)
        pool->unused_since_ms = wp_now_ms();
}

/* Pools made for a client's first login (any name through a `*` entry, any user)
   would pile up: one nobody holds goes after server_idle_timeout unused, which is
   when its last server would have gone too (0 keeps it, as it keeps servers). Not
   while min_pool_size asks for servers, nor while paused (a new pool of the same
   name would come back unpaused). Its counters go with it. */
static int pool_expired(const struct wp_pool *pool, int64_t now)
{
    int64_t timeout = pool->settings.server_idle_timeout;
    return pool->holders == 0 && pool->nservers == 0 && !pool->paused &&
           pool->settings.min_pool_size == 0 && timeout > 0 &&
           now - pool->unused_since_ms >= timeout;
}

static int oldest_wait_ms(struct wp_pool *pool, int64_t now)
{
    if (list_empty(&pool->waiting))
        return 0;
    struct wp_client *c = list_entry(pool->waiting.next, struct wp_client, node);
    return (int)(now - c->wait_started_ms);
}

/* How many servers the pool may hold: reserve only once a client waited for it. */
static int own_limit(struct wp_pool *pool, int64_t now)
{
    int limit = pool->settings.max_pool_size;
    if (pool->settings.reserve_pool_size > 0 &&
        oldest_wait_ms(pool, now) >= wp_rt.cfg->reserve_pool_timeout)
        limit += pool->settings.reserve_pool_size;
    return limit;
}

/* The same, within the room max_db_connections / max_user_connections leave it. */
static int server_limit(struct wp_pool *pool, int64_t now)
{
    int limit = own_limit(pool, now);
    int room = limits_room_for(pool);
    return room < limit - pool->nservers ? pool->nservers + room : limit;
}

/* Above the pool's size (a reload lowered it) or a shared limit, servers are closed
   as soon as they are free. Reserve servers themselves stay until
   server_idle_timeout, so that a pool under steady pressure does not close and
   reopen them over and over. */
static int above_limits(const struct wp_pool *pool)
{
    return pool->nservers > pool->settings.max_pool_size + pool->settings.reserve_pool_size ||
           limits_room(pool) < 0;
}

static void link_server(struct wp_server *s, struct wp_client *c)
{
    server_set_state(s, SV_ACTIVE);
    s->client = c;
    c->server = s;
    client_set_state(c, CL_ACTIVE);
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
    stats_wait_done(pool, &c->stats, waited_us);
}

/* Give `s` to the first waiting client. */
static void lend_to_waiter(struct wp_pool *pool, struct wp_server *s)
{
    struct wp_client *c = list_entry(list_pop_head(&pool->waiting), struct wp_client, node);
    pool->nwaiting--;
    note_wait_over(pool, c);
    link_server(s, c);
    client_linked(c);
}

#define SUSPECT_IDLE_MS 1000

/* Must this idle server prove itself before a client gets it? */
__attribute__((always_inline)) static inline int server_suspect(const struct wp_server *s,
                                                                int64_t now)
{
    if (s->check_first || timeouts_check_due(s->last_used_ms, wp_rt.cfg->server_check_delay, now))
        return 1;
    /* A backend that died while idle usually left bytes or EOF behind that the loop
       has not read yet. Peeking costs a system call, so only for one idle a while:
       under load, backends change hands far more often than that. */
    return now - s->last_used_ms >= SUSPECT_IDLE_MS && server_input_pending(s);
}

static void end_check(struct wp_pool *pool, struct wp_server *s)
{
    s->check_first = 0;
    if (!s->check_started_ms)
        return;
    s->check_started_ms = 0;
    pool->nchecking--;
}

/* Run server_check_query; its ReadyForQuery brings the server to pool_server_ready,
   a failure or a dead socket to pool_server_closed. */
static void start_check(struct wp_pool *pool, struct wp_server *s, int64_t now)
{
    s->check_started_ms = now;
    pool->nchecking++;
    server_set_state(s, SV_RESETTING);
    if (server_queue_internal(s, wp_rt.cfg->server_check_query) < 0) {
        server_close(s, "out of memory");
        return;
    }
    server_kick_write(s);
}

/* Idle servers for waiting clients: lend the sound ones, check the suspect ones,
   at most one check in flight per waiting client. */
static void serve_waiting(struct wp_pool *pool)
{
    int64_t now = wp_now_ms();
    while (!pool->paused && pool->nwaiting > pool->nchecking && !list_empty(&pool->idle)) {
        struct wp_server *s = list_entry(pool->idle.next, struct wp_server, node);
        if (server_suspect(s, now))
            start_check(pool, s, now);
        else
            lend_to_waiter(pool, s);
    }
}

int pool_request_server(struct wp_pool *pool, struct wp_client *c)
{
    /* First come, first served: an idle server goes to older waiters first. */
    if (!pool->paused && list_empty(&pool->waiting) && !list_empty(&pool->idle)) {
        struct wp_server *s = list_entry(pool->idle.next, struct wp_server, node);
        if (!server_suspect(s, wp_now_ms())) {
            link_server(s, c);
            stats_wait_done(pool, &c->stats, 0);
            return 1;
        }
    }
    client_set_state(c, CL_WAITING);
    c->wait_started_ms = wp_now_ms();
    c->wait_notified = 0;
    list_push_tail(&pool->waiting, &c->node);
    pool->nwaiting++;
    serve_waiting(pool);
    pool_launch_if_needed(pool);
    return 0;
}

void pool_cancel_wait(struct wp_client *c)
{
    list_remove(&c->node);
    c->pool->nwaiting--;
}

static int lifetime_over(const struct wp_server *s, int64_t now)
{
    return s->lifetime_ms > 0 && now - s->created_ms > s->lifetime_ms;
}

/* server_lifetime closes at most one server per pool per tick, so that servers that
   grew old together reconnect one after another, not all at once. */
static int take_recycle_turn(struct wp_pool *pool, int64_t now)
{
    if (now - pool->last_recycle_ms < TIMEOUTS_TICK_MS)
        return 0;
    pool->last_recycle_ms = now;
    return 1;
}

void pool_server_ready(struct wp_server *s)
{
    struct wp_pool *pool = s->pool;
    int64_t now = wp_now_ms();
    end_check(pool, s);
    s->last_used_ms = now;
    if (s->close_when_quiet) {
        server_close(s, "retired");
        return;
    }
    if (pool->paused) {
        server_close(s, "pool paused");
        return;
    }
    if (above_limits(pool)) {
        server_close(s, "pool is above its size limit");
        return;
    }
    if (lifetime_over(s, now) && take_recycle_turn(pool, now)) {
        server_close(s, "server_lifetime reached");
        return;
    }
    if (limits_hand_over(s))
        return;
    if (!pool->paused && !list_empty(&pool->waiting)) {
        lend_to_waiter(pool, s);
        return;
    }
    server_set_state(s, SV_IDLE);
    if (wp_rt.shutting_down == WP_SHUTDOWN_IMMEDIATE)
        server_close(s, "shutting down");
}

void pool_set_paused(struct wp_pool *pool, int paused)
{
    if (pool->paused == (paused != 0))
        return;
    pool->paused = paused != 0;
    if (paused) {
        /* PAUSE disconnects: idle servers now, the others when released (above). */
        close_idle(pool, "pool paused");
        return;
    }
    serve_waiting(pool);
    pool_launch_if_needed(pool);
}

void pool_server_opening(struct wp_pool *pool)
{
    pool->nservers++;
    pool->nconnecting++;
}

void pool_server_connected(struct wp_pool *pool)
{
    pool->nconnecting--;
}

void pool_file_server(struct wp_server *s)
{
    struct wp_pool *pool = s->pool;
    list_remove(&s->node);
    switch (s->state) {
    case SV_IDLE:
        /* Servers are taken from the head. Last in, first out keeps the fewest
           backends busy; server_round_robin spreads the load over all of them, for
           databases behind a load balancer. */
        if (wp_rt.cfg->server_round_robin)
            list_push_tail(&pool->idle, &s->node);
        else
            list_push_head(&pool->idle, &s->node);
        break;
    case SV_ACTIVE:
        list_push_tail(&pool->active, &s->node);
        break;
    case SV_CONNECTING:
    case SV_RESETTING:
    case SV_DRAINING:
        list_push_tail(&pool->busy, &s->node);
        break;
    case SV_CLOSED:
        break;
    }
}

void pool_server_closed(struct wp_pool *pool, struct wp_server *s)
{
    if (s->check_started_ms)
        log_info("S-%llu %s/%s pid=%u: server_check_query failed; not lent",
                 (unsigned long long)s->id, pool->dbname, pool->user, s->backend_pid);
    end_check(pool, s);
    pool->nservers--;
    if (wp_rt.shutting_down)
        return;
    serve_waiting(pool);
    pool_launch_if_needed(pool);
}

/* The first waiting client gets an error for its request instead of a server. It
   stays connected and may try again; only a request not yet whole closes it. Input
   it sent after that request is served as usual (and may wait again, at the tail). */
static void refuse_first_waiter(struct wp_pool *pool, const char *sqlstate, const char *text)
{
    pool_refuse_waiter(list_entry(pool->waiting.next, struct wp_client, node), sqlstate, text);
}

void pool_refuse_waiter(struct wp_client *c, const char *sqlstate, const char *text)
{
    pool_cancel_wait(c);
    client_set_state(c, CL_IDLE);
    if (client_refuse_request(c, sqlstate, text) < 0) {
        client_send_error(c, "FATAL", sqlstate, text);
        return;
    }
    conn_pause_read(&c->conn, 0);
    if (c->state == CL_IDLE && buf_unread(&c->conn.in) > 0)
        relay_client_input(c);
}

/* What clients are told when the pool cannot log in to its server: a fixed text per
   SQLSTATE. libpq's own text names socket paths, host names and the server's database
   names; it stays in the log and in last_error, which only operators see. */
static const char *login_failure_text(const char *sqlstate)
{
    static const struct {
        const char *sqlstate, *text;
    } texts[] = {
        {"28P01", "server login failed: password authentication failed"},
        {"28000", "server login failed: the server refused the login"},
        {"3D000", "server login failed: database does not exist"},
        {"53300", "server login failed: too many connections"},
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (strcmp(sqlstate, texts[i].sqlstate) == 0)
            return texts[i].text;
    return "server login failed: could not connect to the server";
}

static void fail_clients(struct wp_pool *pool, const char *sqlstate)
{
    const char *text = login_failure_text(sqlstate);
    while (!list_empty(&pool->welcoming)) {
        struct wp_client *c = list_entry(pool->welcoming.next, struct wp_client, node);
        list_remove(&c->node);
        client_send_error(c, "FATAL", sqlstate, text);
    }
    /* Only those waiting now: a client that queues again goes behind them. */
    for (int n = pool->nwaiting; n > 0 && !list_empty(&pool->waiting); n--)
        refuse_first_waiter(pool, sqlstate, text);
}

void pool_server_lost(struct wp_pool *pool)
{
    for (struct wp_list *node = pool->idle.next; node != &pool->idle; node = node->next)
        list_entry(node, struct wp_server, node)->check_first = 1;
}

void pool_login_worked(struct wp_pool *pool)
{
    pool->login_failures = 0;
    pool->login_worked = 1;
}

void pool_connect_failed(struct wp_pool *pool, const char *sqlstate, const char *message)
{
    stats_connect_failed(pool);
    snprintf(pool->last_error, sizeof pool->last_error, "%s", message);
    snprintf(pool->last_sqlstate, sizeof pool->last_sqlstate, "%s", sqlstate);
    /* After a login that worked, failures are retried soon, then less and less often
       (50, 100, 200, 400, 800 ms, never longer than server_login_retry): a primary that
       went away (failover, restart) is usually back, or replaced, within a second or
       two, and its clients keep waiting for it meanwhile. Then, or for a pool that never
       logged in, server_login_retry spaces the attempts and waiting clients are told. */
    pool->login_failures++;
    int fast = pool->login_worked && pool->login_failures <= POOL_FAST_RETRIES;
    int64_t delay = wp_rt.cfg->server_login_retry;
    if (fast && (POOL_FAST_RETRY_MS << (pool->login_failures - 1)) < delay)
        delay = POOL_FAST_RETRY_MS << (pool->login_failures - 1);
    pool->retry_after_ms = wp_now_ms() + delay;
    /* Nobody can be served while the pool has no backend at all: say why now rather
       than let clients hang, unless the server worked before and is only unreachable
       (connection refused or lost, shutting down, starting up, the wrong role): then
       waiting clients wait for it or its replacement, within query_wait_timeout.
       A refused login (password, database) is told at once either way. */
    int server_away =
        pool->login_worked && (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57P", 3) == 0);
    if (!server_away && pool->nservers - pool->nconnecting <= 0) {
        fail_clients(pool, sqlstate);
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

/* Open servers up to the limits; 1 when clients still need one that a shared limit
   (max_db_connections, max_user_connections) keeps the pool from opening. */
static int launch_within_limits(struct wp_pool *pool, int64_t now)
{
    int limit = server_limit(pool, now);
    /* Clients whose server is being checked already have one coming. */
    int want = pool->nwaiting - pool->nchecking + (list_empty(&pool->welcoming) ? 0 : 1);
    for (;;) {
        int below_min = pool->nservers < pool->settings.min_pool_size;
        int needed = want > pool->nconnecting;
        if (pool->nservers >= limit || (!below_min && !needed))
            return needed && pool->nservers < own_limit(pool, now);
        if (!server_connect(pool))
            return 0;
    }
}

void pool_launch_if_needed(struct wp_pool *pool)
{
    /* A connect that fails at once closes its server inside this call, and that close
       asks for a launch again: with server_login_retry = 0 that would recurse without
       end. The loop here decides; the janitor's next tick tries again. */
    if (wp_rt.shutting_down || pool->launching || pool->paused)
        return;
    int64_t now = wp_now_ms();
    if (now < pool->retry_after_ms)
        return;
    pool->launching = 1;
    /* Blocked by a shared limit: an idle server of another pool makes room, once. */
    if (launch_within_limits(pool, now) && limits_room(pool) <= 0 && limits_reclaim_idle(pool))
        launch_within_limits(pool, now);
    pool->launching = 0;
}

/* Why an idle server should go now, or NULL: above a pool size lowered by a reload,
   past server_lifetime, or idle too long above min_pool_size. */
static const char *idle_close_reason(struct wp_pool *pool, const struct wp_server *s, int64_t now)
{
    int64_t idle_timeout = pool->settings.server_idle_timeout;
    if (above_limits(pool))
        return "pool is above its size limit";
    if (lifetime_over(s, now) && take_recycle_turn(pool, now))
        return "server_lifetime reached";
    if (idle_timeout > 0 && now - s->last_used_ms > idle_timeout &&
        pool->nservers > pool->settings.min_pool_size)
        return "server_idle_timeout reached";
    return NULL;
}

/* The idle list's oldest end: its tail, or with server_round_robin (which files a
   returned server at the tail) its head. */
struct wp_server *pool_oldest_idle(struct wp_pool *pool)
{
    if (list_empty(&pool->idle))
        return NULL;
    struct wp_list *n = wp_rt.cfg->server_round_robin ? pool->idle.next : pool->idle.prev;
    return list_entry(n, struct wp_server, node);
}

struct wp_server *pool_newer_idle(struct wp_pool *pool, struct wp_server *s)
{
    struct wp_list *n = wp_rt.cfg->server_round_robin ? s->node.next : s->node.prev;
    return n == &pool->idle ? NULL : list_entry(n, struct wp_server, node);
}

/* One close at a time, rescanning after each: a close may lend or check other idle
   servers, so a saved list position would not survive it. Oldest first. */
static void close_expired_idle(struct wp_pool *pool, int64_t now)
{
    for (;;) {
        struct wp_server *s = pool_oldest_idle(pool);
        const char *why = NULL;
        while (s && !(why = idle_close_reason(pool, s, now)))
            s = pool_newer_idle(pool, s);
        if (!why)
            return;
        server_close(s, why);
    }
}

static const char *busy_close_reason(const struct wp_server *s, int64_t now)
{
    int64_t connect_timeout = wp_rt.cfg->server_connect_timeout;
    if (s->state == SV_CONNECTING && connect_timeout > 0 &&
        now - s->connect_started_ms > connect_timeout)
        return "server_connect_timeout reached";
    /* A backend that cannot answer a trivial query in the time allowed for a whole
       login is not coming back (a half-open connection, say). */
    if (s->check_started_ms && connect_timeout > 0 && now - s->check_started_ms > connect_timeout)
        return "server_check_query got no answer";
    if (s->setting_up && connect_timeout > 0 && now - s->connect_started_ms > connect_timeout)
        return "connect_query got no answer within server_connect_timeout";
    if (s->state == SV_DRAINING && now - s->drain_started_ms > DRAIN_TIMEOUT_MS)
        return "did not become idle after its client left";
    return NULL;
}

static void close_stuck_busy(struct wp_pool *pool, int64_t now)
{
    for (;;) {
        struct wp_server *s = NULL;
        const char *why = NULL;
        for (struct wp_list *n = pool->busy.next; n != &pool->busy && !why; n = n->next) {
            s = list_entry(n, struct wp_server, node);
            why = busy_close_reason(s, now);
        }
        if (!why)
            return;
        if (s->state == SV_CONNECTING) {
            /* Before the close, whose relaunch must see server_login_retry. */
            log_warn("S-%llu %s/%s: connect failed: %s", (unsigned long long)s->id, pool->dbname,
                     pool->user, why);
            stats_timeout(pool, STATS_TIMEOUT_SERVER_CONNECT);
            pool_connect_failed(pool, "08006", "timeout while connecting to the server");
        }
        server_close(s, why);
    }
}

static void expire_waiters(struct wp_pool *pool, int64_t now)
{
    int64_t limit = pool->settings.query_wait_timeout;
    if (limit <= 0)
        return;
    char text[128], limit_text[32];
    timeouts_format(limit_text, sizeof limit_text, limit);
    snprintf(text, sizeof text, "query_wait_timeout (%s) exceeded: no server connection available",
             limit_text);
    while (!list_empty(&pool->waiting)) {
        struct wp_client *c = list_entry(pool->waiting.next, struct wp_client, node);
        if (now - c->wait_started_ms < limit)
            break;
        stats_timeout(pool, STATS_TIMEOUT_QUERY_WAIT);
        refuse_first_waiter(pool, "53300", text);
    }
}

/* query_wait_notify: one NOTICE per wait, PgBouncer's text, to a client still queued. */
static void notify_waiters(struct wp_pool *pool, int64_t now)
{
    int64_t after = wp_rt.cfg->query_wait_notify;
    struct wp_list *pos;

    if (after <= 0)
        return;
    for (pos = pool->waiting.next; pos != &pool->waiting; pos = pos->next) {
        struct wp_client *c = list_entry(pos, struct wp_client, node);
        if (now - c->wait_started_ms < after)
            break; /* the queue is in order of arrival */
        if (c->wait_notified)
            continue;
        c->wait_notified = 1;
        proto_put_notice(&c->conn.out, "01000",
                         "No server connection available in postgres backend, client being "
                         "queued");
        client_kick_write(c);
    }
}

void pool_maintain(struct wp_pool *pool, int64_t now)
{
    if (pool_expired(pool, now)) {
        log_info("pool %s/%s: freed after %lld ms unused", pool->dbname, pool->user,
                 (long long)(now - pool->unused_since_ms));
        pool_free(pool);
        return;
    }
    close_expired_idle(pool, now);
    close_stuck_busy(pool, now);
    expire_waiters(pool, now);
    notify_waiters(pool, now);
    serve_waiting(pool);
    pool_launch_if_needed(pool);
}
