/*
 * admin_wait — console clients waiting for PAUSE, WAIT_CLOSE or SUSPEND to complete.
 * The command set things in motion (admin_commands.c); the answer goes out from the
 * janitor's tick once the condition holds. Until then the client's further input
 * stays buffered (admin_input reads nothing while it waits). A RESUME meanwhile ends
 * the wait with an error, as the state it waited for will not come.
 */
#include <stdlib.h>
#include <string.h>

#include "warmpool/admin.h"
#include "warmpool/admin_control.h"
#include "warmpool/client.h"
#include "warmpool/db_state.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/proto.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"

struct waiter {
    struct wp_list node;
    struct wp_client *client;
    struct admin_wait wait;
};

static struct wp_list waiters = {&waiters, &waiters};

static int pool_matches(const struct wp_pool *pool, const char *db)
{
    return !db[0] || strcmp(pool->dbname, db) == 0;
}

static int servers_left(const char *db)
{
    int n = 0;
    struct wp_list *pos;
    for (pos = wp_rt.pools.next; pos != &wp_rt.pools; pos = pos->next) {
        const struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        if (pool_matches(pool, db))
            n += pool->nservers;
    }
    return n;
}

static int retired_in(struct wp_list *servers)
{
    int n = 0;
    struct wp_list *pos;
    for (pos = servers->next; pos != servers; pos = pos->next) {
        n += list_entry(pos, struct wp_server, node)->close_when_quiet;
    }
    return n;
}

static int retired_left(const char *db)
{
    int n = 0;
    struct wp_list *pos;
    for (pos = wp_rt.pools.next; pos != &wp_rt.pools; pos = pos->next) {
        struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        if (pool_matches(pool, db))
            n += retired_in(&pool->idle) + retired_in(&pool->active) + retired_in(&pool->busy);
    }
    return n;
}

/* Bytes on their way to the server: warmpool's own, or its client's ready to relay. */
static int server_unflushed(const struct wp_server *s)
{
    return conn_output_pending(&s->conn) || (s->client && s->client->conn.ready > 0);
}

/* Bytes on their way to the client: warmpool's own, or its backend's ready to relay. */
static int client_unflushed(const struct wp_client *c)
{
    return client_output_pending(c) || (c->server && c->server->conn.ready > 0);
}

/* Sockets with output still to flush; with drop, those are closed instead. */
static int unflushed(struct wp_list *servers, int drop)
{
    int n = 0;
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, servers)
    {
        struct wp_server *s = list_entry(pos, struct wp_server, node);
        if (!server_unflushed(s))
            continue;
        n++;
        if (drop)
            server_close(s, "output not flushed within SUSPEND's timeout");
    }
    return n;
}

static int unflushed_clients(int drop)
{
    int n = 0;
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.clients)
    {
        struct wp_client *c = list_entry(pos, struct wp_client, all);
        if (c->is_admin || c->state == CL_CLOSING || !client_unflushed(c))
            continue;
        n++;
        if (drop)
            client_close(c, "output not flushed within SUSPEND's timeout");
    }
    return n;
}

static int unflushed_sockets(int drop)
{
    int n = unflushed_clients(drop);
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        n += unflushed(&pool->idle, drop) + unflushed(&pool->active, drop) +
             unflushed(&pool->busy, drop);
    }
    return n;
}

static int pause_still_wanted(const struct admin_wait *w)
{
    return w->db[0] ? db_state_paused(w->db) : db_state_all_paused();
}

static int suspend_done(const struct admin_wait *w, int64_t now)
{
    if (unflushed_sockets(0) == 0)
        return 1;
    if (now - w->started_ms < wp_rt.cfg->suspend_timeout)
        return 0;
    log_warn("admin console: SUSPEND: dropping %d connections whose output was not flushed "
             "within suspend_timeout (%lld ms)",
             unflushed_sockets(0), (long long)wp_rt.cfg->suspend_timeout);
    unflushed_sockets(1);
    return 1;
}

int admin_wait_done(const struct admin_wait *w, struct wp_buf *out, int64_t now)
{
    switch (w->kind) {
    case ADMIN_WAIT_PAUSE:
        if (!pause_still_wanted(w)) {
            admin_answer_error(out, "57014", "PAUSE ended by RESUME before it completed");
            return 1;
        }
        if (servers_left(w->db) > 0)
            return 0;
        proto_put_command_complete(out, "PAUSE");
        return 1;
    case ADMIN_WAIT_CLOSE:
        if (retired_left(w->db) > 0)
            return 0;
        proto_put_command_complete(out, "WAIT_CLOSE");
        return 1;
    case ADMIN_WAIT_SUSPEND:
        if (!admin_suspended()) {
            admin_answer_error(out, "57014", "SUSPEND ended by RESUME before it completed");
            return 1;
        }
        if (!suspend_done(w, now))
            return 0;
        proto_put_command_complete(out, "SUSPEND");
        return 1;
    case ADMIN_WAIT_NONE:
        break;
    }
    return 1;
}

int admin_wait_start(struct wp_client *c, const struct admin_wait *w)
{
    struct waiter *wt = calloc(1, sizeof *wt);
    if (!wt)
        return -1;
    wt->client = c;
    wt->wait = *w;
    list_push_tail(&waiters, &wt->node);
    c->admin_waiting = 1;
    return 0;
}

static void drop_waiter(struct waiter *wt)
{
    wt->client->admin_waiting = 0;
    list_remove(&wt->node);
    free(wt);
}

void admin_wait_forget(struct wp_client *c)
{
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &waiters)
    {
        struct waiter *wt = list_entry(pos, struct waiter, node);
        if (wt->client == c)
            drop_waiter(wt);
    }
}

void admin_waits_check(int64_t now)
{
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &waiters)
    {
        struct waiter *wt = list_entry(pos, struct waiter, node);
        struct wp_client *c = wt->client;
        if (!admin_wait_done(&wt->wait, &c->conn.out, now))
            continue;
        proto_put_ready(&c->conn.out, 'I');
        drop_waiter(wt);
        /* Answering may have closed clients (SUSPEND's drop), never this one; what it
           sent meanwhile is read now. */
        admin_input(c);
        /* The list may have changed under us (a client closed, its wait forgotten). */
        tmp = waiters.next;
    }
}
