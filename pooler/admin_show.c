/*
 * admin_show — the rows of the admin console's SHOW commands (admin.c runs the
 * console protocol and the other commands).
 *
 * POOLS, SERVERS, CLIENTS, DATABASES, SOCKETS and ACTIVE_SOCKETS answer with
 * PgBouncer 1.25's columns, in its order and with its type OIDs (int4, text), so psql
 * habits, dashboards and exporters that read pgbouncer's console keep working;
 * warmpool-only columns come after them. The console itself is listed as 1.25 lists
 * its "pgbouncer" database and pool. CONFIG, PREPARED, STATEMENTS and VERSION are
 * text. Values are always in text format, as PgBouncer sends them. SHOW STATS and its
 * family: admin_show_stats.c.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "warmpool/admin.h"
#include "warmpool/admin_rows.h"
#include "warmpool/client.h"
#include "warmpool/config.h"
#include "warmpool/fleet.h"
#include "warmpool/config_keys.h"
#include "warmpool/db_state.h"
#include "warmpool/hosts.h"
#include "warmpool/pool.h"
#include "warmpool/proto.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/server_hosts.h"
#include "warmpool/stats.h"
#include "warmpool/timeouts.h"
#include "warmpool/tls.h"

#define TEXT PROTO_OID_TEXT
#define INT4 PROTO_OID_INT4
#define NCOLS(cols) ((int)(sizeof(cols) / sizeof((cols)[0])))

/* ---------------------------------------------------------------- helpers */

/* A monotonic timestamp (wp_now_ms) as local wall-clock time. */
static void format_time(char *out, size_t len, int64_t mono_ms, int64_t now_ms)
{
    if (mono_ms <= 0) {
        snprintf(out, len, "%s", "");
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t when = ts.tv_sec - (time_t)((now_ms - mono_ms) / 1000);
    struct tm tm;
    localtime_r(&when, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M:%S %Z", &tm);
}

/* "host:port" as the listener wrote it, or "unix". */
static void split_addr(const char *addr, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(addr, ':');
    *port = 0;
    if (!colon) {
        snprintf(host, hostlen, "%s", addr);
        return;
    }
    snprintf(host, hostlen, "%.*s", (int)(colon - addr), addr);
    *port = atoi(colon + 1);
}

static const char *conn_value(const struct wp_db_config *db, const char *key)
{
    for (int i = 0; db && i < db->nconn; i++)
        if (strcmp(db->conn_keys[i], key) == 0)
            return db->conn_values[i];
    return NULL;
}

static const char *client_app(const struct wp_client *c)
{
    const char *app = params_get(&c->params, "application_name");
    return app ? app : "";
}

/* ---------------------------------------------------------------- SHOW POOLS */

/* 1.25's columns, then warmpool's: cl_idle (of cl_active, those between requests),
   paused, cl_pinned (clients that keep their backend for session state), host (the
   host:port its backends are on, "several" when more than one) and failovers (of a
   `disable` host list: backends moved to another host), fleet_cap and fleet_backends
   (with a fleet budget, fleet.c: this instance's cap for the database, and every fleet
   member's backends to it at the last read; NULL without one). */
static const struct admin_col pools_cols[] = {
    {"database", TEXT},
    {"user", TEXT},
    {"cl_active", INT4},
    {"cl_waiting", INT4},
    {"cl_active_cancel_req", INT4},
    {"cl_waiting_cancel_req", INT4},
    {"sv_active", INT4},
    {"sv_active_cancel", INT4},
    {"sv_being_canceled", INT4},
    {"sv_idle", INT4},
    {"sv_used", INT4},
    {"sv_tested", INT4},
    {"sv_login", INT4},
    {"maxwait", INT4},
    {"maxwait_us", INT4},
    {"pool_mode", TEXT},
    {"load_balance_hosts", TEXT},
    {"cl_idle", INT4},
    {"paused", INT4},
    {"cl_pinned", INT4},
    {"host", TEXT},
    {"failovers", INT4},
    {"fleet_cap", INT4},
    {"fleet_backends", INT4},
};

/* 1.25 names load_balance_hosts only for a database whose host is a list: the mode in
   force for it (the entry's, else the [warmpool] default). */
static const char *load_balance_hosts(const struct wp_db_config *db, int mode)
{
    const char *host = conn_value(db, "host"), *addr = conn_value(db, "hostaddr");
    int several = (host && strchr(host, ',')) || (addr && strchr(addr, ','));
    return several ? hosts_lb_name(mode) : NULL;
}

/* Cancels of the pool's backends in flight: 1.25's sv_active_cancel counts the
   connections that forward them, warmpool's are libpq's PQcancel on the workpool. */
static int pool_cancels(const struct wp_pool *pool)
{
    int n = 0;
    const struct wp_list *lists[] = {&pool->active, &pool->idle, &pool->busy};
    for (int i = 0; i < 3; i++)
        for (const struct wp_list *p = lists[i]->next; p != lists[i]; p = p->next)
            n += list_entry(p, struct wp_server, node)->cancel_pending;
    return n;
}

static void pool_row(struct admin_rows *r, struct wp_pool *pool, int64_t now_ms)
{
    const struct wp_pool_stats *ps = pool->stats;
    struct stats_server_counts sc;
    stats_count_servers(pool, now_ms, &sc);
    int64_t wait_us = stats_pool_max_wait_us(pool, now_ms);
    admin_cell_str(r, pool->dbname);
    admin_cell_str(r, pool->user);
    /* PgBouncer's cl_active: logged in and not waiting, linked or not. */
    admin_cell_int(r, ps ? ps->cl_active + ps->cl_idle : 0);
    admin_cell_int(r, ps ? ps->cl_waiting : 0);
    /* A CancelRequest's connection is closed once its cancel is handed on: none wait. */
    admin_cell_int(r, 0);
    admin_cell_int(r, 0);
    admin_cell_int(r, sc.active);
    admin_cell_int(r, pool_cancels(pool));
    admin_cell_int(r, sc.draining);
    admin_cell_int(r, sc.idle);
    admin_cell_int(r, sc.used);
    admin_cell_int(r, sc.resetting);
    admin_cell_int(r, sc.connecting);
    admin_cell_int(r, wait_us / 1000000);
    admin_cell_int(r, wait_us % 1000000);
    admin_cell_str(r, config_mode_name(pool->settings.pool_mode));
    admin_cell_or_null(r, load_balance_hosts(pool->db, pool->settings.load_balance_hosts));
    admin_cell_int(r, ps ? ps->cl_idle : 0);
    admin_cell_int(r, pool->paused ? 1 : 0);
    admin_cell_int(r, pool->pinned_clients);
    admin_cell_or_null(r, server_hosts_where(pool));
    admin_cell_int(r, (long long)server_hosts_failovers(pool));
    struct fleet_info fi;
    if (pool->settings.fleet_max_db_connections > 0 && fleet_find(pool->dbname, &fi)) {
        admin_cell_int(r, fi.cap);
        admin_cell_int(r, fi.fleet_held);
    }
    admin_rows_end_row(r); /* cells not given: NULL */
}

/* Console clients past login; idle_only: those between commands. */
static int console_clients(int idle_only)
{
    int n = 0;
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.clients)
    {
        const struct wp_client *c = list_entry(pos, struct wp_client, all);
        if (c->is_admin && (c->state == CL_IDLE || (!idle_only && c->state == CL_ACTIVE)))
            n++;
    }
    return n;
}

/* The console as PgBouncer lists it: a statement-mode pool of its own. */
static void console_pool_row(struct admin_rows *r)
{
    admin_cell_str(r, "pgbouncer");
    admin_cell_str(r, "pgbouncer");
    admin_cell_int(r, console_clients(0));
    for (int k = 0; k < 12; k++) /* cl_waiting … maxwait_us */
        admin_cell_int(r, 0);
    admin_cell_str(r, "statement");
    admin_cell_or_null(r, NULL);
    admin_cell_int(r, console_clients(1));
    admin_cell_int(r, 0);
    admin_cell_int(r, 0);
    admin_cell_or_null(r, NULL);
    admin_cell_int(r, 0);
    admin_rows_end_row(r);
}

static int show_pools(struct wp_buf *out, int64_t now_ms)
{
    struct admin_rows r;
    admin_rows_begin_cols(&r, out, pools_cols, NCOLS(pools_cols));
    stats_collect(now_ms);
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        pool_row(&r, list_entry(pos, struct wp_pool, node), now_ms);
    }
    console_pool_row(&r);
    return admin_rows_finish(&r);
}

/* ---------------------------------------------------------------- SHOW SERVERS / CLIENTS */

/* SHOW SOCKETS: 1.25's columns of SERVERS and CLIENTS (the first CONN_NCOLS), then its
   buffer columns filled from warmpool's: recv_pos = bytes in the input buffer, pkt_pos =
   consumed, pkt_remain = bytes of the message in passage still to come,
   send_pos/send_remain = warmpool's own output written/unwritten, pkt_avail = input not
   consumed, send_avail = input scanned and ready for the peer. */
static const struct admin_col socket_cols[] = {
    {"type", TEXT},
    {"user", TEXT},
    {"database", TEXT},
    {"replication", TEXT},
    {"state", TEXT},
    {"addr", TEXT},
    {"port", INT4},
    {"local_addr", TEXT},
    {"local_port", INT4},
    {"connect_time", TEXT},
    {"request_time", TEXT},
    {"wait", INT4},
    {"wait_us", INT4},
    {"close_needed", INT4},
    {"ptr", TEXT},
    {"link", TEXT},
    {"remote_pid", INT4},
    {"tls", TEXT},
    {"application_name", TEXT},
    {"prepared_statements", INT4},
    {"id", INT4},
    {"recv_pos", INT4},
    {"pkt_pos", INT4},
    {"pkt_remain", INT4},
    {"send_pos", INT4},
    {"send_remain", INT4},
    {"pkt_avail", INT4},
    {"send_avail", INT4},
};
#define CONN_NCOLS 21 /* type … id */

static void socket_tail(struct admin_rows *r, const struct wp_conn *conn)
{
    admin_cell_int(r, (long long)conn->in.len);
    admin_cell_int(r, (long long)conn->in.pos);
    admin_cell_int(r, (long long)conn->msg_left);
    admin_cell_int(r, (long long)conn->out.pos);
    admin_cell_int(r, (long long)(conn->out.len - conn->out.pos));
    admin_cell_int(r, (long long)(conn->in.len - conn->in.pos));
    admin_cell_int(r, (long long)conn->ready);
}

static const char *server_state(const struct wp_server *s, int64_t now_ms)
{
    int64_t delay = wp_rt.cfg->server_check_delay;
    switch (s->state) {
    case SV_CONNECTING:
        return "login";
    case SV_IDLE:
        return delay > 0 && now_ms - s->last_used_ms > delay ? "used" : "idle";
    case SV_ACTIVE:
        return "active";
    case SV_RESETTING:
        return "tested";
    case SV_DRAINING:
        return "being_canceled";
    case SV_CLOSED:
        break;
    }
    return "closed";
}

static void server_row(struct admin_rows *r, const struct wp_server *s, int64_t now_ms)
{
    const struct wp_pool *pool = s->pool;
    char host[256], lhost[64], connected[64], used[64], ptr[32], link[32], tls[96];
    int lport;
    /* The host it logged in to (server_hosts.c); while it connects, the entry's. */
    const char *at = s->host_port ? strrchr(s->host_port, ':') : NULL;
    const char *h = s->pq ? PQhost(s->pq) : conn_value(pool->db, "host");
    const char *p = at ? at + 1 : s->pq ? PQport(s->pq) : conn_value(pool->db, "port");
    if (at)
        snprintf(host, sizeof host, "%.*s", (int)(at - s->host_port), s->host_port);
    else
        snprintf(host, sizeof host, "%s", h ? h : "");
    conn_local_address(&s->conn, lhost, sizeof lhost, &lport);
    format_time(connected, sizeof connected, s->created_ms ? s->created_ms : s->connect_started_ms,
                now_ms);
    format_time(used, sizeof used, s->last_used_ms, now_ms);
    snprintf(ptr, sizeof ptr, "S-%llu", (unsigned long long)s->id);
    if (s->client)
        snprintf(link, sizeof link, "C-%llu", (unsigned long long)s->client->id);
    else
        link[0] = '\0';
    admin_cell_str(r, "S");
    admin_cell_str(r, pool->backend_user ? pool->backend_user : pool->user);
    admin_cell_str(r, pool->dbname);
    admin_cell_str(r, "none"); /* replication: warmpool pools no replication connections */
    admin_cell_str(r, server_state(s, now_ms));
    admin_cell_str(r, host);
    admin_cell_int(r, p ? atoi(p) : 0);
    admin_cell_str(r, lhost);
    admin_cell_int(r, lport);
    admin_cell_str(r, connected);
    admin_cell_str(r, used);
    admin_cell_int(r, 0);
    admin_cell_int(r, 0);
    admin_cell_int(r, s->close_when_quiet ? 1 : 0);
    admin_cell_str(r, ptr);
    admin_cell_str(r, link);
    admin_cell_int(r, s->backend_pid);
    admin_cell_str(r, tls_describe(s->conn.tls, tls, sizeof tls));
    admin_cell_str(r, s->client ? client_app(s->client) : "");
    admin_cell_int(r, (long long)s->stmts.count);
    admin_cell_int(r, (long long)s->id);
    if (r->sockets)
        socket_tail(r, &s->conn);
    admin_rows_end_row(r);
}

static int show_servers(struct wp_buf *out, int64_t now_ms)
{
    struct admin_rows r;
    admin_rows_begin_cols(&r, out, socket_cols, CONN_NCOLS);
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        const struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        const struct wp_list *lists[] = {&pool->active, &pool->idle, &pool->busy};
        for (int i = 0; i < 3; i++)
            for (const struct wp_list *n = lists[i]->next; n != lists[i]; n = n->next)
                server_row(&r, list_entry(n, struct wp_server, node), now_ms);
    }
    return admin_rows_finish(&r);
}

static const char *client_state(const struct wp_client *c)
{
    switch (c->state) {
    case CL_STARTUP:
    case CL_AUTH:
    case CL_WELCOME:
        return "login";
    case CL_IDLE:
        return "idle";
    case CL_WAITING:
        return "waiting";
    case CL_ACTIVE:
        return "active";
    case CL_CLOSING:
        break;
    }
    return "closing";
}

/* remote_pid of a client: as in 1.25, the peer's process over a Unix socket (the
   kernel's SO_PEERCRED), else 0. */
static int client_pid(const struct wp_client *c)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (!client_is_unix(c) || c->conn.fd < 0 ||
        getsockopt(c->conn.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return 0;
    return (int)cred.pid;
}

static void client_row(struct admin_rows *r, const struct wp_client *c, int64_t now_ms)
{
    char host[64], lhost[64], connected[64], active[64], ptr[32], link[32], tls[96];
    int port, lport;
    split_addr(c->addr, host, sizeof host, &port);
    conn_local_address(&c->conn, lhost, sizeof lhost, &lport);
    format_time(connected, sizeof connected, c->login_started_ms, now_ms);
    format_time(active, sizeof active, c->last_active_ms, now_ms);
    int64_t wait_us = c->state == CL_WAITING ? (now_ms - c->wait_started_ms) * 1000 : 0;
    snprintf(ptr, sizeof ptr, "C-%llu", (unsigned long long)c->id);
    if (c->server)
        snprintf(link, sizeof link, "S-%llu", (unsigned long long)c->server->id);
    else
        link[0] = '\0';
    admin_cell_str(r, "C");
    admin_cell_str(r, c->user);
    admin_cell_str(r, c->dbname);
    admin_cell_str(r, "none"); /* replication: refused at login */
    admin_cell_str(r, client_state(c));
    admin_cell_str(r, host);
    admin_cell_int(r, port);
    admin_cell_str(r, lhost);
    admin_cell_int(r, lport);
    admin_cell_str(r, connected);
    admin_cell_str(r, active);
    admin_cell_int(r, wait_us / 1000000);
    admin_cell_int(r, wait_us % 1000000);
    admin_cell_int(r, 0);
    admin_cell_str(r, ptr);
    admin_cell_str(r, link);
    admin_cell_int(r, client_pid(c));
    admin_cell_str(r, tls_describe(c->conn.tls, tls, sizeof tls));
    admin_cell_str(r, client_app(c));
    admin_cell_int(r, (long long)c->stmts.count);
    admin_cell_int(r, (long long)c->id);
    if (r->sockets)
        socket_tail(r, &c->conn);
    admin_rows_end_row(r);
}

static int show_clients(struct wp_buf *out, int64_t now_ms)
{
    struct admin_rows r;
    admin_rows_begin_cols(&r, out, socket_cols, CONN_NCOLS);
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.clients)
    {
        const struct wp_client *c = list_entry(pos, struct wp_client, all);
        if (c->state != CL_CLOSING)
            client_row(&r, c, now_ms);
    }
    return admin_rows_finish(&r);
}

/* A socket with bytes in either buffer: PgBouncer's "active" socket. */
static int conn_busy(const struct wp_conn *conn)
{
    return buf_unread(&conn->in) > 0 || buf_unread(&conn->out) > 0;
}

/* SHOW SOCKETS (active_only = 0) and SHOW ACTIVE_SOCKETS: clients, then servers. */
static int show_socket_rows(struct wp_buf *out, int64_t now_ms, int active_only)
{
    struct admin_rows r;
    admin_rows_begin_cols(&r, out, socket_cols, NCOLS(socket_cols));
    r.sockets = 1;
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.clients)
    {
        const struct wp_client *c = list_entry(pos, struct wp_client, all);
        if (c->state != CL_CLOSING && (!active_only || conn_busy(&c->conn)))
            client_row(&r, c, now_ms);
    }
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        const struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        const struct wp_list *lists[] = {&pool->active, &pool->idle, &pool->busy};
        for (int i = 0; i < 3; i++) {
            for (const struct wp_list *n = lists[i]->next; n != lists[i]; n = n->next) {
                const struct wp_server *s = list_entry(n, struct wp_server, node);
                if (!active_only || conn_busy(&s->conn))
                    server_row(&r, s, now_ms);
            }
        }
    }
    return admin_rows_finish(&r);
}

static int show_sockets(struct wp_buf *out, int64_t now_ms)
{
    return show_socket_rows(out, now_ms, 0);
}

static int show_active_sockets(struct wp_buf *out, int64_t now_ms)
{
    return show_socket_rows(out, now_ms, 1);
}

/* ---------------------------------------------------------------- SHOW DATABASES */

static const struct admin_col databases_cols[] = {
    {"name", TEXT},
    {"host", TEXT},
    {"port", INT4},
    {"database", TEXT},
    {"force_user", TEXT},
    {"pool_size", INT4},
    {"min_pool_size", INT4},
    {"reserve_pool_size", INT4},
    {"server_lifetime", INT4},
    {"pool_mode", TEXT},
    {"load_balance_hosts", TEXT},
    {"max_connections", INT4},
    {"current_connections", INT4},
    {"max_client_connections", INT4},
    {"current_client_connections", INT4},
    {"paused", INT4},
    {"disabled", INT4},
};

static int pool_of_db(const struct wp_pool *pool, const struct wp_db_config *db)
{
    return pool->db == db || strcmp(pool->dbname, db->name) == 0;
}

/* What SHOW DATABASES counts of a database's pools and clients. */
struct db_usage {
    int servers, clients, pools, paused;
};

static void db_usage(const struct wp_db_config *db, struct db_usage *u)
{
    memset(u, 0, sizeof *u);
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        const struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        if (!pool_of_db(pool, db))
            continue;
        u->pools++;
        u->servers += pool->nservers;
        u->paused += pool->paused != 0;
    }
    /* as client_limits.c counts them against max_db_client_connections */
    list_for_each_safe(pos, tmp, &wp_rt.clients)
    {
        const struct wp_client *c = list_entry(pos, struct wp_client, all);
        u->clients += c->pool && c->state != CL_CLOSING && pool_of_db(c->pool, db);
    }
}

static void database_row(struct admin_rows *r, const struct wp_config *cfg,
                         const struct wp_db_config *db)
{
    struct wp_pool_settings eff;
    struct db_usage u;
    config_effective(cfg, db, NULL, &eff);
    db_usage(db, &u);
    const char *dbname = conn_value(db, "dbname");
    const char *port = conn_value(db, "port");
    int mode = db->overrides.pool_mode; /* 1.25: the entry's own, NULL when it sets none */
    admin_cell_str(r, db->name);
    admin_cell_or_null(r, conn_value(db, "host"));
    admin_cell_int(r, port ? atoi(port) : 5432);
    admin_cell_str(r, dbname ? dbname : db->name);
    admin_cell_or_null(r, db->forced_user);
    admin_cell_int(r, eff.max_pool_size);
    admin_cell_int(r, eff.min_pool_size);
    admin_cell_int(r, eff.reserve_pool_size);
    admin_cell_int(r, (long long)(eff.server_lifetime / 1000));
    admin_cell_or_null(r, mode != WP_MODE_UNSET ? config_mode_name(mode) : NULL);
    admin_cell_or_null(r, load_balance_hosts(db, eff.load_balance_hosts));
    admin_cell_int(r, eff.max_db_connections);
    admin_cell_int(r, u.servers);
    admin_cell_int(r, db->max_db_client_connections ? db->max_db_client_connections
                                                    : cfg->max_db_client_connections);
    admin_cell_int(r, u.clients);
    admin_cell_int(r, db_state_paused(db->name) || (u.pools > 0 && u.paused == u.pools));
    admin_cell_int(r, db_state_disabled(db->name));
    admin_rows_end_row(r);
}

/* The console itself, as PgBouncer lists its "pgbouncer" database: no backend, forced
   user pgbouncer, PgBouncer's pool_size 2 for it, statement mode. */
static void console_database_row(struct admin_rows *r, const struct wp_config *cfg)
{
    struct wp_pool_settings eff;
    config_effective(cfg, NULL, NULL, &eff);
    admin_cell_str(r, "pgbouncer");
    admin_cell_or_null(r, NULL);
    admin_cell_int(r, cfg->listen_port);
    admin_cell_str(r, "pgbouncer");
    admin_cell_str(r, "pgbouncer");
    admin_cell_int(r, 2);
    admin_cell_int(r, 0);
    admin_cell_int(r, 0);
    admin_cell_int(r, (long long)(eff.server_lifetime / 1000));
    admin_cell_str(r, "statement");
    admin_cell_or_null(r, NULL);
    admin_cell_int(r, 0);
    admin_cell_int(r, 0);
    admin_cell_int(r, 0);
    admin_cell_int(r, console_clients(0));
    admin_cell_int(r, 0);
    admin_cell_int(r, 0);
    admin_rows_end_row(r);
}

static int show_databases(struct wp_buf *out, int64_t now_ms)
{
    (void)now_ms;
    struct admin_rows r;
    const struct wp_config *cfg = wp_rt.cfg;
    admin_rows_begin_cols(&r, out, databases_cols, NCOLS(databases_cols));
    for (int i = 0; i < cfg->ndbs; i++)
        database_row(&r, cfg, &cfg->dbs[i]);
    console_database_row(&r, cfg);
    return admin_rows_finish(&r);
}

/* ---------------------------------------------------------------- SHOW CONFIG */

/* Index in wp_keys of the i-th SHOW CONFIG row, or -1. */
static int config_row_key(int i)
{
    for (int k = 0; k < wp_nkeys; k++)
        if (config_key_shown(&wp_keys[k]) && i-- == 0)
            return k;
    return -1;
}

int admin_config_rows(void)
{
    int n = 0;
    for (int k = 0; k < wp_nkeys; k++)
        n += config_key_shown(&wp_keys[k]);
    return n;
}

/* A key PgBouncer has is printed as PgBouncer prints it (plain numbers in the key's
   unit), so that its tools read it; warmpool's own keys keep their unit ("1min"). */
static enum wp_key_style config_style(const struct wp_key *k)
{
    return k->pgbouncer ? WP_KEY_STYLE_PGBOUNCER : WP_KEY_STYLE_UNITS;
}

const char *admin_config_value(const struct wp_config *cfg, int i, char *out, size_t len)
{
    const struct wp_key *k = &wp_keys[config_row_key(i)];
    return config_key_format(cfg, k, config_style(k), out, len);
}

const char *admin_config_default(int i, char *out, size_t len)
{
    const struct wp_key *k = &wp_keys[config_row_key(i)];
    return config_key_format_default(k, config_style(k), out, len);
}

/* A PgBouncer key without effect, listed with the file's value (else PgBouncer's
   default) so that a migrated file's every line shows. */
static int config_ignored_row(const struct wp_key *k)
{
    return k->type == WP_KEY_NO_EFFECT && (k->sections & WP_SEC_GLOBAL);
}

int admin_config_show_rows(void)
{
    int n = 0;
    for (int k = 0; k < wp_nkeys; k++) {
        const struct wp_key *key = &wp_keys[k];
        if (config_key_shown(key))
            n += 1 + (key->pgbouncer && strcmp(key->pgbouncer, key->name) != 0);
        else
            n += config_ignored_row(key);
    }
    return n;
}

static void config_row(struct admin_rows *r, const char *name, const char *value,
                       const struct wp_key *key, const char *effect)
{
    char dflt[64];
    admin_cell_str(r, name);
    admin_cell_str(r, value);
    admin_cell_str(r, config_key_format_default(key, config_style(key), dflt, sizeof dflt));
    admin_cell_str(r, (key->flags & WP_KEY_RELOADS) ? "yes" : "no");
    admin_cell_str(r, effect);
    admin_rows_end_row(r);
}

/* PgBouncer's columns, and `effect`: "no" for its keys warmpool accepts and ignores.
   A key PgBouncer names otherwise (max_pool_size: default_pool_size) is listed under
   both names. */
static int show_config(struct wp_buf *out, int64_t now_ms)
{
    static const char *const cols[] = {"key", "value", "default", "changeable", "effect"};
    const struct wp_config *cfg = wp_rt.cfg;
    (void)now_ms;
    struct admin_rows r;
    char value[1024];
    admin_rows_begin(&r, out, cols, NCOLS(cols));
    for (int k = 0; k < wp_nkeys; k++) {
        const struct wp_key *key = &wp_keys[k];
        if (config_key_shown(key)) {
            config_row(&r, config_key_format(cfg, key, config_style(key), value, sizeof value),
                       value, key, "yes");
            if (key->pgbouncer && strcmp(key->pgbouncer, key->name) != 0)
                config_row(&r, key->pgbouncer, value, key, "yes");
        } else if (config_ignored_row(key)) {
            const char *v = cfg->ignored_values ? cfg->ignored_values[k] : NULL;
            config_row(&r, key->name, v ? v : key->dflt, key, "no");
        }
    }
    return admin_rows_finish(&r);
}

/* ---------------------------------------------------------------- SHOW PREPARED */

static int show_prepared(struct wp_buf *out, int64_t now_ms)
{
    static const char *const cols[] = {"name", "uses", "refs", "params", "validated", "query"};
    (void)now_ms;
    struct admin_rows r;
    const struct wp_registry *reg = &wp_rt.registry;
    admin_rows_begin(&r, out, cols, NCOLS(cols));
    for (size_t b = 0; reg->buckets && b < reg->nbuckets; b++) {
        for (const struct wp_stmt *st = reg->buckets[b]; st; st = st->hash_next) {
            admin_cell_str(&r, st->name);
            admin_cell_int(&r, (long long)st->uses);
            admin_cell_int(&r, st->refs);
            admin_cell_int(&r, st->nparams);
            admin_cell_int(&r, st->validated ? 1 : 0);
            admin_cell_str(&r, st->query);
            admin_rows_end_row(&r);
        }
    }
    return admin_rows_finish(&r);
}

/* ---------------------------------------------------------------- SHOW STATEMENTS */

struct ranked {
    const struct wp_pool *pool;
    const struct stats_top_entry *e;
};

static int by_total(const void *a, const void *b)
{
    const struct stats_top_entry *x = ((const struct ranked *)a)->e;
    const struct stats_top_entry *y = ((const struct ranked *)b)->e;
    if (x->total_us != y->total_us)
        return x->total_us > y->total_us ? -1 : 1;
    return x->calls > y->calls ? -1 : x->calls < y->calls;
}

static int show_statements(struct wp_buf *out, int64_t now_ms)
{
    static const char *const cols[] = {
        "database",     "user",        "fingerprint", "calls",         "total_time_us",
        "mean_time_us", "max_time_us", "errors",      "nplus1_bursts", "query",
    };
    (void)now_ms;
    size_t total = 0, n = 0;
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        const struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        if (pool->stats)
            total += (size_t)pool->stats->top.n;
    }
    struct ranked *all = malloc((total + 1) * sizeof *all);
    if (!all)
        return -1;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        const struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        for (int i = 0; pool->stats && i < pool->stats->top.n; i++)
            if (pool->stats->top.entries[i].calls > 0)
                all[n++] = (struct ranked){pool, &pool->stats->top.entries[i]};
    }
    qsort(all, n, sizeof *all, by_total);
    struct admin_rows r;
    admin_rows_begin(&r, out, cols, NCOLS(cols));
    for (size_t i = 0; i < n; i++) {
        const struct stats_top_entry *e = all[i].e;
        admin_cell_str(&r, all[i].pool->dbname);
        admin_cell_str(&r, all[i].pool->user);
        admin_cell_fmt(&r, "%016llx", (unsigned long long)e->fp);
        admin_cell_int(&r, (long long)e->calls);
        admin_cell_int(&r, (long long)e->total_us);
        admin_cell_int(&r, (long long)(e->total_us / (int64_t)e->calls));
        admin_cell_int(&r, (long long)e->max_us);
        admin_cell_int(&r, (long long)e->errors);
        admin_cell_int(&r, (long long)e->nplus1);
        admin_cell_str(&r, e->text);
        admin_rows_end_row(&r);
    }
    free(all);
    return admin_rows_finish(&r);
}

/* ---------------------------------------------------------------- SHOW VERSION */

static int show_version(struct wp_buf *out, int64_t now_ms)
{
    static const char *const cols[] = {"version"};
    (void)now_ms;
    struct admin_rows r;
    admin_rows_begin(&r, out, cols, 1);
    admin_cell_str(&r, "warmpool " WARMPOOL_VERSION);
    admin_rows_end_row(&r);
    return admin_rows_finish(&r);
}

/* ---------------------------------------------------------------- dispatch */

int admin_show(struct wp_buf *out, const char *what, int64_t now_ms)
{
    static const struct {
        const char *name;
        int (*fn)(struct wp_buf *, int64_t);
    } shows[] = {
        {"pools", show_pools},           {"servers", show_servers},
        {"clients", show_clients},       {"databases", show_databases},
        {"config", show_config},         {"prepared", show_prepared},
        {"statements", show_statements}, {"version", show_version},
        {"sockets", show_sockets},       {"active_sockets", show_active_sockets},
    };
    for (size_t i = 0; i < sizeof shows / sizeof shows[0]; i++)
        if (strcasecmp(what, shows[i].name) == 0)
            return shows[i].fn(out, now_ms) < 0 ? -2 : 0;
    return -1;
}
