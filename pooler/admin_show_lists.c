/*
 * admin_show_lists — the admin console's SHOW commands that PgBouncer 1.25 has and
 * warmpool's first console (admin_show.c) lacked: LISTS, USERS, MEM, STATE, FDS, PEERS,
 * PEER_POOLS, DNS_HOSTS, DNS_ZONES (and, through admin_show_stats.c, STATS_TOTALS,
 * STATS_AVERAGES, TOTALS).
 *
 * Each sends 1.25's column names, order and type OIDs (text, int4, int8, numeric, as
 * PgBouncer's RowDescription says), so exporters that scan typed columns work. Values
 * come from warmpool's own counters; where warmpool has no such thing (a DNS cache,
 * fd takeover) the answer is the columns with zero rows. Called by admin.c
 * when admin_show() does not know the name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "warmpool/admin.h"
#include "warmpool/admin_control.h"
#include "warmpool/admin_rows.h"
#include "warmpool/auth.h"
#include "warmpool/buf.h"
#include "warmpool/client.h"
#include "warmpool/config.h"
#include "warmpool/db_state.h"
#include "warmpool/peering.h"
#include "warmpool/pool.h"
#include "warmpool/proto.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/stats.h"

#define TEXT PROTO_OID_TEXT
#define INT4 PROTO_OID_INT4
#define INT8 PROTO_OID_INT8
#define NUMERIC PROTO_OID_NUMERIC
#define BYTEA PROTO_OID_BYTEA

#define NCOLS(cols) ((int)(sizeof(cols) / sizeof((cols)[0])))

/* A command whose subject warmpool does not have: the columns, no rows. */
static int no_rows(struct wp_buf *out, const struct admin_col *cols, int n)
{
    struct admin_rows r;
    admin_rows_begin_cols(&r, out, cols, n);
    return admin_rows_finish(&r);
}

/* ---------------------------------------------------------------- counting */

static int count_list(const struct wp_list *head)
{
    int n = 0;
    for (const struct wp_list *p = head->next; p != head; p = p->next)
        n++;
    return n;
}

static int count_servers(void)
{
    int n = 0;
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        n += list_entry(pos, struct wp_pool, node)->nservers;
    }
    return n;
}

static int count_login_clients(void)
{
    int n = 0;
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.clients)
    {
        enum wp_client_state st = list_entry(pos, struct wp_client, all)->state;
        n += st == CL_STARTUP || st == CL_AUTH || st == CL_WELCOME;
    }
    return n;
}

/* Users PgBouncer would list: auth_file users, then pool users not in it. */
static int pool_user_is_new(const struct wp_pool *pool)
{
    if (auth_userlist_find(&wp_rt.users, pool->user))
        return 0;
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        const struct wp_pool *p = list_entry(pos, struct wp_pool, node);
        if (p == pool)
            return 1;
        if (strcmp(p->user, pool->user) == 0)
            return 0;
    }
    return 1;
}

static int count_users(void)
{
    int n = wp_rt.users.n;
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        n += pool_user_is_new(list_entry(pos, struct wp_pool, node));
    }
    return n;
}

/* ---------------------------------------------------------------- SHOW LISTS */

static int show_lists(struct wp_buf *out)
{
    static const struct admin_col cols[] = {{"list", TEXT}, {"items", INT4}};
    /* warmpool allocates connections with malloc: no free lists, so free_* are 0. */
    const struct {
        const char *name;
        int items;
    } lists[] = {
        {"databases", wp_rt.cfg->ndbs + 1}, /* and the console, as SHOW DATABASES lists */
        {"users", count_users()},
        {"peers", wp_rt.cfg->peers.n},
        {"pools", count_list(&wp_rt.pools) + 1}, /* and the console's, as SHOW POOLS */
        {"peer_pools", wp_rt.cfg->peers.n},
        {"free_clients", 0},
        {"used_clients", wp_rt.nclients},
        {"login_clients", count_login_clients()},
        {"free_servers", 0},
        {"used_servers", count_servers()},
        {"dns_names", 0},
        {"dns_zones", 0},
        {"dns_queries", 0},
        {"dns_pending", 0},
    };
    struct admin_rows r;
    admin_rows_begin_cols(&r, out, cols, NCOLS(cols));
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        admin_cell_or_null(&r, lists[i].name);
        admin_cell_int(&r, lists[i].items);
        admin_rows_end_row(&r);
    }
    return admin_rows_finish(&r);
}

/* ---------------------------------------------------------------- SHOW USERS */

static void user_row(struct admin_rows *r, const char *name)
{
    const struct wp_config *cfg = wp_rt.cfg;
    const struct wp_user_config *uc = config_find_user(cfg, name);
    char size[16] = "", reserve[16] = "";
    const char *mode = NULL;
    int max_conn = cfg->max_user_connections, servers = 0, clients = 0;
    int max_clients = cfg->max_user_client_connections;
    if (uc) {
        if (uc->overrides.max_pool_size != WP_UNSET)
            snprintf(size, sizeof size, "%9d", uc->overrides.max_pool_size);
        if (uc->overrides.reserve_pool_size != WP_UNSET)
            snprintf(reserve, sizeof reserve, "%9d", uc->overrides.reserve_pool_size);
        if (uc->overrides.pool_mode != WP_UNSET)
            mode = config_mode_name(uc->overrides.pool_mode);
        if (uc->max_user_connections != WP_UNSET)
            max_conn = uc->max_user_connections;
        if (uc->max_user_client_connections)
            max_clients = uc->max_user_client_connections;
    }
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        const struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        if (strcmp(pool->user, name) != 0)
            continue;
        servers += pool->nservers;
        clients += pool->stats
                       ? pool->stats->cl_active + pool->stats->cl_idle + pool->stats->cl_waiting
                       : 0;
    }
    admin_cell_or_null(r, name);
    admin_cell_or_null(r, size);
    admin_cell_or_null(r, reserve);
    admin_cell_or_null(r, mode);
    admin_cell_int(r, max_conn);
    admin_cell_int(r, servers);
    admin_cell_int(r, max_clients); /* as client_limits.c applies it; 0 = none */
    admin_cell_int(r, clients);
    admin_rows_end_row(r);
}

static int show_users(struct wp_buf *out)
{
    static const struct admin_col cols[] = {
        {"name", TEXT},
        {"pool_size", TEXT},
        {"reserve_pool_size", TEXT},
        {"pool_mode", TEXT},
        {"max_user_connections", INT4},
        {"current_connections", INT4},
        {"max_user_client_connections", INT4},
        {"current_client_connections", INT4},
    };
    struct admin_rows r;
    stats_collect(wp_now_ms());
    admin_rows_begin_cols(&r, out, cols, NCOLS(cols));
    for (int i = 0; i < wp_rt.users.n; i++)
        user_row(&r, wp_rt.users.entries[i].user);
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        const struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        if (pool_user_is_new(pool))
            user_row(&r, pool->user);
    }
    return admin_rows_finish(&r);
}

/* ---------------------------------------------------------------- SHOW MEM */

static void mem_row(struct admin_rows *r, const char *name, size_t size, long long used,
                    long long nfree, long long total)
{
    admin_cell_or_null(r, name);
    admin_cell_int(r, (long long)size);
    admin_cell_int(r, used);
    admin_cell_int(r, nfree);
    admin_cell_int(r, total);
    admin_rows_end_row(r);
}

/* PgBouncer lists its slab caches. warmpool has none for connections (malloc per
   object, freed at close): their rows show the objects in use and no free ones. The
   one real cache is the I/O buffer blocks idle connections gave back. */
static int show_mem(struct wp_buf *out)
{
    static const struct admin_col cols[] = {
        {"name", TEXT}, {"size", INT4}, {"used", INT4}, {"free", INT4}, {"memtotal", INT4},
    };
    struct admin_rows r;
    size_t bytes;
    int blocks = buf_cache_info(&bytes);
    long long clients = wp_rt.nclients, servers = count_servers();
    long long pools = count_list(&wp_rt.pools), stmts = (long long)wp_rt.registry.count;
    admin_rows_begin_cols(&r, out, cols, NCOLS(cols));
    mem_row(&r, "client_cache", sizeof(struct wp_client), clients, 0,
            clients * (long long)sizeof(struct wp_client));
    mem_row(&r, "server_cache", sizeof(struct wp_server), servers, 0,
            servers * (long long)sizeof(struct wp_server));
    mem_row(&r, "pool_cache", sizeof(struct wp_pool), pools, 0,
            pools * (long long)sizeof(struct wp_pool));
    mem_row(&r, "prepared_statement_cache", sizeof(struct wp_stmt), stmts, 0,
            stmts * (long long)sizeof(struct wp_stmt));
    mem_row(&r, "iobuf_cache", blocks ? bytes / (size_t)blocks : 0, 0, blocks, (long long)bytes);
    return admin_rows_finish(&r);
}

/* ---------------------------------------------------------------- SHOW STATE */

/* PgBouncer's process-wide states: PAUSE of everything (or SIGUSR1), SUSPEND. */
static int show_state(struct wp_buf *out)
{
    static const struct admin_col cols[] = {{"key", TEXT}, {"value", TEXT}};
    int paused = db_state_all_paused(), suspended = admin_suspended();
    struct admin_rows r;
    admin_rows_begin_cols(&r, out, cols, NCOLS(cols));
    admin_cell_or_null(&r, "active");
    admin_cell_or_null(&r, paused || suspended ? "no" : "yes");
    admin_rows_end_row(&r);
    admin_cell_or_null(&r, "paused");
    admin_cell_or_null(&r, paused ? "yes" : "no");
    admin_rows_end_row(&r);
    admin_cell_or_null(&r, "suspended");
    admin_cell_or_null(&r, suspended ? "yes" : "no");
    admin_rows_end_row(&r);
    return admin_rows_finish(&r);
}

/* ---------------------------------------------------------------- things warmpool has not */

/* Online restart by fd takeover (pgbouncer -R): warmpool restarts with so_reuseport. */
static int show_fds(struct wp_buf *out)
{
    static const struct admin_col cols[] = {
        {"fd", INT4},
        {"task", TEXT},
        {"user", TEXT},
        {"database", TEXT},
        {"addr", TEXT},
        {"port", INT4},
        {"cancel", INT8},
        {"link", INT4},
        {"client_encoding", TEXT},
        {"std_strings", TEXT},
        {"datestyle", TEXT},
        {"timezone", TEXT},
        {"password", TEXT},
        {"scram_client_key", BYTEA},
        {"scram_server_key", BYTEA},
    };
    return no_rows(out, cols, NCOLS(cols));
}

/* ---------------------------------------------------------------- SHOW PEERS, PEER_POOLS */

static int show_peers(struct wp_buf *out)
{
    static const struct admin_col cols[] = {
        {"peer_id", INT4}, {"host", TEXT}, {"port", INT4}, {"pool_size", INT4}};
    const struct wp_peers *peers = &wp_rt.cfg->peers;
    struct admin_rows r;
    admin_rows_begin_cols(&r, out, cols, NCOLS(cols));
    for (int i = 0; i < peers->n; i++) {
        const struct wp_peer_config *p = &peers->v[i];
        admin_cell_int(&r, p->id);
        admin_cell_str(&r, p->host);
        admin_cell_int(&r, p->port);
        admin_cell_int(&r, p->pool_size > 0 ? p->pool_size : wp_rt.cfg->pool.max_pool_size);
        admin_rows_end_row(&r);
    }
    return admin_rows_finish(&r);
}

/* One row per configured peer. A forward is one connection that is both the client's
   cancel request and the "server" carrying it, so the active counts are the same; a
   forward connects on the event loop as part of itself, never as a separate login
   (sv_login 0). */
static int show_peer_pools(struct wp_buf *out)
{
    static const struct admin_col cols[] = {
        {"peer_id", INT4},
        {"cl_active_cancel_req", INT4},
        {"cl_waiting_cancel_req", INT4},
        {"sv_active_cancel", INT4},
        {"sv_login", INT4},
    };
    const struct wp_peers *peers = &wp_rt.cfg->peers;
    struct admin_rows r;
    admin_rows_begin_cols(&r, out, cols, NCOLS(cols));
    for (int i = 0; i < peers->n; i++) {
        struct peering_counts n;
        peering_counts(peers->v[i].id, &n);
        admin_cell_int(&r, peers->v[i].id);
        admin_cell_int(&r, n.active);
        admin_cell_int(&r, n.waiting);
        admin_cell_int(&r, n.active);
        admin_cell_int(&r, 0);
        admin_rows_end_row(&r);
    }
    return admin_rows_finish(&r);
}

/* warmpool resolves host names through libpq at each connect: no DNS cache. */
static int show_dns_hosts(struct wp_buf *out)
{
    static const struct admin_col cols[] = {{"hostname", TEXT}, {"ttl", INT8}, {"addrs", TEXT}};
    return no_rows(out, cols, NCOLS(cols));
}

static int show_dns_zones(struct wp_buf *out)
{
    static const struct admin_col cols[] = {{"zonename", TEXT}, {"serial", INT8}, {"count", INT4}};
    return no_rows(out, cols, NCOLS(cols));
}

/* ---------------------------------------------------------------- dispatch */

int admin_show_more(struct wp_buf *out, const char *what, int is_admin)
{
    static const struct {
        const char *name;
        int (*fn)(struct wp_buf *);
        int admin_only;
    } shows[] = {
        {"lists", show_lists, 0},
        {"users", show_users, 0},
        {"mem", show_mem, 0},
        {"state", show_state, 0},
        {"fds", show_fds, 1},
        {"peers", show_peers, 0},
        {"peer_pools", show_peer_pools, 0},
        {"dns_hosts", show_dns_hosts, 0},
        {"dns_zones", show_dns_zones, 0},
    };
    int rc = admin_show_stats(out, what);
    if (rc != -1)
        return rc;
    if (strcasecmp(what, "fleet") == 0)
        return admin_show_fleet(out) < 0 ? -2 : 0;
    for (size_t i = 0; i < sizeof shows / sizeof shows[0]; i++) {
        if (strcasecmp(what, shows[i].name) != 0)
            continue;
        if (shows[i].admin_only && !is_admin)
            return -3;
        return shows[i].fn(out) < 0 ? -2 : 0;
    }
    return -1;
}
