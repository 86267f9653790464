/*
 * fleet — the fleet connection budget on the event loop (include/warmpool/fleet.h).
 *
 * PostgreSQL is the only shared truth: each instance's monitor connection publishes
 * "wpfleet:<fleet>:<instance>:<cap>:<held>:<want>" as its own application_name (which
 * pg_stat_activity shows at once) and, in the same simple-query round trip, reads
 * every member's. An instance that stops loses its monitor connection and so drops out
 * of the next read: that is how budgets rebalance, with no message between instances.
 *
 * The monitor is a pgq.c connection, as are the auth_query lookups (libpq's
 * non-blocking API on libevent events), so a slow or dead PostgreSQL never blocks the
 * loop; it stays open between polls, each a query on it. A lowered cap applies
 * at once; a raise is published first (one more SET) and applies when PostgreSQL has
 * it, so that another member reading in between sees the room as taken.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "warmpool/authq.h"
#include "warmpool/auth.h"
#include "warmpool/config.h"
#include "warmpool/fleet.h"
#include "warmpool/list.h"
#include "warmpool/log.h"
#include "warmpool/pgq.h"
#include "warmpool/pool.h"
#include "warmpool/pool_limits.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/server_setup.h"
#include "warmpool/timeouts.h"

/* Members read per database; more rows are ignored (and logged). */
#define FLEET_MAX_MEMBERS 256
/* An early poll for a pool waiting for room: at most this often. */
#define FLEET_EARLY_POLL_MS 200
/* A poll (connect included) that takes longer fails: the larger of this and two
   intervals. */
#define FLEET_POLL_TIMEOUT_MS 5000
#define FLEET_MAX_CONNINFO 96

struct fleet_db {
    struct wp_list node;
    char *dbname;
    int budget;
    int cap;
    int pending_cap; /* a raise being published; -1 when none */
    int held, want;  /* as last published */
    enum fleet_state state;
    int last_members; /* members of the last read (the fallback divides by it) */
    int seen;         /* this tick found a pool with a budget */
    int64_t last_read_ms, next_poll_ms, poll_started_ms;
    struct fleet_member members[FLEET_MAX_MEMBERS]; /* the last read */
    int nmembers;
    int fleet_held;
    struct fleet_member reading[FLEET_MAX_MEMBERS]; /* the read in flight */
    int nreading;
    int read_failed;
    char error[256];
    struct pgq monitor; /* busy while a poll or a raise is in flight */
};

static struct wp_list dbs = {&dbs, &dbs};
static const struct wp_config *identity_cfg; /* the configuration the names below are from */
static char instance[FLEET_NAME_MAX + 1];
static char stamp[64];

/* ---------------------------------------------------------------- identity */

static int fleet_on(void)
{
    return wp_rt.cfg && wp_rt.cfg->fleet_name && *wp_rt.cfg->fleet_name;
}

/* Without fleet_instance: peer_id when set (unique among peers already), else the
   short host name and the listen port. */
static void default_instance(const struct wp_config *cfg, char *out, size_t len)
{
    if (cfg->peer_id > 0) {
        snprintf(out, len, "%d", cfg->peer_id);
        return;
    }
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !*host)
        snprintf(host, sizeof host, "warmpool");
    host[strcspn(host, ".")] = '\0';
    char port[16];
    snprintf(port, sizeof port, "-%d", cfg->listen_port);
    int room = FLEET_NAME_MAX - (int)strlen(port);
    snprintf(out, len, "%.*s%s", room, host, port);
    fleet_name_sanitize(out);
}

static void refresh_identity(void)
{
    const struct wp_config *cfg = wp_rt.cfg;
    if (cfg == identity_cfg)
        return;
    identity_cfg = cfg;
    if (cfg->fleet_instance && *cfg->fleet_instance)
        snprintf(instance, sizeof instance, "%s", cfg->fleet_instance);
    else
        default_instance(cfg, instance, sizeof instance);
    snprintf(stamp, sizeof stamp, "wp:%s:%s", cfg->fleet_name ? cfg->fleet_name : "", instance);
}

const char *fleet_stamp(void)
{
    if (!fleet_on())
        return NULL;
    refresh_identity();
    return stamp;
}

const char *fleet_instance(void)
{
    if (!fleet_on())
        return "";
    refresh_identity();
    return instance;
}

const char *fleet_state_name(enum fleet_state s)
{
    return s == FLEET_OK ? "ok" : s == FLEET_FALLBACK ? "fallback" : "starting";
}

/* ---------------------------------------------------------------- databases */

static struct fleet_db *find_db(const char *dbname)
{
    for (struct wp_list *n = dbs.next; n != &dbs; n = n->next) {
        struct fleet_db *d = list_entry(n, struct fleet_db, node);
        if (strcmp(d->dbname, dbname) == 0)
            return d;
    }
    return NULL;
}

int fleet_cap(const struct wp_pool *pool)
{
    if (pool->settings.fleet_max_db_connections <= 0 || !fleet_on())
        return -1;
    const struct fleet_db *d = find_db(pool->dbname);
    return d ? d->cap : 0;
}

static void monitor_close(struct fleet_db *d)
{
    pgq_close(&d->monitor);
    d->pending_cap = -1;
}

static void db_free(struct fleet_db *d)
{
    monitor_close(d);
    list_remove(&d->node);
    free(d->dbname);
    free(d);
}

static const struct pgq_calls monitor_calls;

static struct fleet_db *db_new(const char *dbname, int64_t now)
{
    struct fleet_db *d = calloc(1, sizeof *d);
    if (!d || !(d->dbname = strdup(dbname))) {
        free(d);
        return NULL;
    }
    pgq_init(&d->monitor, &monitor_calls, d);
    d->pending_cap = -1;
    d->next_poll_ms = now; /* the first poll at once */
    list_push_tail(&dbs, &d->node);
    return d;
}

/* Every pool of the database: its backends (held) and those it could use now (want:
   linked and waiting clients, at least min_pool_size, within its own limits). */
static void count_db(const char *dbname, int *held, int *want)
{
    int h = 0, w = 0, db_max = 0;
    for (struct wp_list *n = wp_rt.pools.next; n != &wp_rt.pools; n = n->next) {
        const struct wp_pool *p = list_entry(n, struct wp_pool, node);
        if (strcmp(p->dbname, dbname) != 0)
            continue;
        int linked = 0;
        for (const struct wp_list *a = p->active.next; a != &p->active; a = a->next)
            linked++;
        int need = linked + p->nwaiting + (list_empty(&p->welcoming) ? 0 : 1);
        if (need < p->settings.min_pool_size)
            need = p->settings.min_pool_size;
        int own = p->settings.max_pool_size + p->settings.reserve_pool_size;
        h += p->nservers;
        w += need < own ? need : own;
        db_max = p->settings.max_db_connections;
    }
    *held = h;
    *want = db_max > 0 && w > db_max ? db_max : w;
}

static void launch_db(const char *dbname)
{
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        struct wp_pool *p = list_entry(pos, struct wp_pool, node);
        if (strcmp(p->dbname, dbname) == 0)
            pool_launch_if_needed(p);
    }
}

static void set_state(struct fleet_db *d, enum fleet_state s)
{
    if (d->state == s)
        return;
    if (s == FLEET_FALLBACK)
        log_warn("fleet %s/%s database \"%s\": cannot read the fleet's state (%s): cap %d "
                 "(budget %d / %d instances) until it can",
                 wp_rt.cfg->fleet_name, instance, d->dbname, d->error, d->cap, d->budget,
                 d->last_members > 0 ? d->last_members : 1);
    else if (s == FLEET_OK)
        log_info("fleet %s/%s database \"%s\": fleet state read: %d instances, cap %d of %d",
                 wp_rt.cfg->fleet_name, instance, d->dbname, d->nmembers, d->cap, d->budget);
    d->state = s;
}

/* ---------------------------------------------------------------- the monitor */

static void poll_failed(struct fleet_db *d, const char *why)
{
    char line[sizeof d->error]; /* why may be d->error itself */
    pgq_one_line(why && *why ? why : NULL, line, sizeof line);
    memcpy(d->error, line, sizeof line);
    monitor_close(d);
    d->cap = fleet_fallback_cap(d->budget, d->last_members);
    set_state(d, FLEET_FALLBACK);
    launch_db(d->dbname);
}

static void send_sql(struct fleet_db *d, const char *sql)
{
    d->nreading = 0;
    d->read_failed = 0;
    pgq_send(&d->monitor, sql, 0, NULL); /* the simple protocol: SET and SELECT at once */
}

/* The round trip: publish the state as it is now, read everyone's. */
static void send_poll(struct fleet_db *d)
{
    char sql[512];
    count_db(d->dbname, &d->held, &d->want);
    if (fleet_build_query(sql, sizeof sql, wp_rt.cfg->fleet_name, instance, d->cap, d->held,
                          d->want) < 0) {
        poll_failed(d, "fleet query does not fit");
        return;
    }
    send_sql(d, sql);
}

/* A raise: published first, applied once PostgreSQL has it. */
static void send_raise(struct fleet_db *d, int cap)
{
    char sql[256];
    if (fleet_build_publish(sql, sizeof sql, wp_rt.cfg->fleet_name, instance, cap, d->held,
                            d->want) < 0) {
        poll_failed(d, "fleet state does not fit");
        return;
    }
    d->pending_cap = cap;
    send_sql(d, sql);
}

static void take_rows(struct fleet_db *d, const PGresult *res)
{
    for (int i = 0; i < PQntuples(res); i++) {
        if (d->nreading == FLEET_MAX_MEMBERS) {
            log_warn("fleet %s database \"%s\": more than %d instances, the rest ignored",
                     wp_rt.cfg->fleet_name, d->dbname, FLEET_MAX_MEMBERS);
            return;
        }
        struct fleet_member m;
        if (PQnfields(res) < 2 || PQgetisnull(res, i, 0) ||
            fleet_parse_state(PQgetvalue(res, i, 0), wp_rt.cfg->fleet_name, &m) != 0)
            continue;
        m.self = !PQgetisnull(res, i, 1) && PQgetvalue(res, i, 1)[0] == 't';
        d->reading[d->nreading++] = m;
    }
}

/* Our own row: the monitor's backend (by pid, so that an instance that shares our
   name, such as the old process in a restart, is not taken for us). */
static int find_self(const struct fleet_member *m, int n)
{
    for (int i = 0; i < n; i++)
        if (m[i].self)
            return i;
    return -1;
}

/* A whole read: every member computes the same allocation; ours sets the cap. */
static void apply_read(struct fleet_db *d, int64_t now)
{
    if (find_self(d->reading, d->nreading) < 0 && d->nreading < FLEET_MAX_MEMBERS) {
        struct fleet_member self = {.cap = d->cap, .held = d->held, .want = d->want, .self = 1};
        snprintf(self.name, sizeof self.name, "%s", instance);
        d->reading[d->nreading++] = self;
    }
    fleet_allocate(d->reading, d->nreading, d->budget);
    int self = find_self(d->reading, d->nreading);
    int next = self < 0 ? 0 : fleet_next_cap(d->reading, d->nreading, self, d->budget);
    memcpy(d->members, d->reading, sizeof d->members[0] * (size_t)d->nreading);
    d->nmembers = d->last_members = d->nreading;
    d->fleet_held = 0;
    for (int i = 0; i < d->nmembers; i++)
        d->fleet_held += d->members[i].held;
    d->last_read_ms = now;
    if (next < d->cap) {
        log_debug("fleet database \"%s\": cap lowered from %d to %d", d->dbname, d->cap, next);
        d->cap = next; /* backends above it close when released or idle */
    }
    set_state(d, FLEET_OK);
    if (next > d->cap)
        send_raise(d, next);
}

static void on_connected(void *arg)
{
    struct fleet_db *d = arg;
    log_debug("fleet database \"%s\": monitor connection open", d->dbname);
    send_poll(d);
}

static void on_result(void *arg, PGresult *res)
{
    struct fleet_db *d = arg;
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK)
        take_rows(d, res);
    else if (st != PGRES_COMMAND_OK && !d->read_failed) {
        d->read_failed = 1;
        snprintf(d->error, sizeof d->error, "%s", PQresultErrorMessage(res));
    }
    PQclear(res);
}

static void on_done(void *arg)
{
    struct fleet_db *d = arg;
    if (d->read_failed) {
        poll_failed(d, d->error);
        return;
    }
    if (d->pending_cap >= 0) {
        log_debug("fleet database \"%s\": cap raised from %d to %d", d->dbname, d->cap,
                  d->pending_cap);
        /* A reload may have lowered the budget while the raise was on its way. */
        d->cap = d->pending_cap < d->budget ? d->pending_cap : d->budget;
        d->pending_cap = -1;
        launch_db(d->dbname);
        return;
    }
    apply_read(d, wp_now_ms());
}

static void on_failed(void *arg, int connecting, const char *why)
{
    (void)connecting;
    poll_failed(arg, why);
}

static const struct pgq_calls monitor_calls = {on_connected, on_result, on_done, on_failed};

/* The first pool of the database: its entry and login, or auth_user's when set. */
static int monitor_conninfo(struct wp_pool *pool, const char **keys, const char **values, int max,
                            char *opts, size_t opts_len)
{
    struct authq_target t;
    const char *why = NULL;
    if (authq_target_for(wp_rt.cfg, pool->dbname, &t, &why) > 0) {
        const struct wp_user_secret *own = auth_userlist_find(&wp_rt.users, t.auth_user);
        const char *password =
            own && auth_secret_usable(own) && own->kind == WP_SECRET_PLAIN ? own->secret : NULL;
        int n = authq_conninfo(&t, password, opts, opts_len, keys, values,
                               max - SERVER_SETUP_TLS_KEYS - 2);
        return n < 0 ? n : server_setup_tls_keys(wp_rt.cfg, t.entry, keys, values, n);
    }
    return server_conninfo(pool, keys, values, max - 2);
}

static struct wp_pool *first_pool(const char *dbname)
{
    for (struct wp_list *n = wp_rt.pools.next; n != &wp_rt.pools; n = n->next) {
        struct wp_pool *p = list_entry(n, struct wp_pool, node);
        if (strcmp(p->dbname, dbname) == 0 && p->db)
            return p;
    }
    return NULL;
}

static void start_connect(struct fleet_db *d)
{
    struct wp_pool *pool = first_pool(d->dbname);
    if (!pool) {
        poll_failed(d, "no pool of the database");
        return;
    }
    const char *keys[FLEET_MAX_CONNINFO], *values[FLEET_MAX_CONNINFO];
    char opts[1024], app[64];
    int n = monitor_conninfo(pool, keys, values, FLEET_MAX_CONNINFO, opts, sizeof opts);
    if (n < 0) {
        poll_failed(d, "connection string too long");
        return;
    }
    /* Last, so that it wins: never mistaken for a backend, even before the first SET. */
    snprintf(app, sizeof app, "wpfleet:%s:%s", wp_rt.cfg->fleet_name, instance);
    keys[n] = "application_name";
    values[n++] = app;
    keys[n] = values[n] = NULL;
    pgq_connect(&d->monitor, keys, values);
}

static void start_poll(struct fleet_db *d, int64_t now)
{
    d->poll_started_ms = now;
    d->next_poll_ms = now + wp_rt.cfg->fleet_poll_interval;
    if (pgq_open(&d->monitor))
        send_poll(d); /* the connection of the last poll */
    else {
        monitor_close(d);
        start_connect(d);
    }
}

/* ---------------------------------------------------------------- the tick */

/* A pool of the database has clients waiting and no room left. */
static int waits_for_room(const char *dbname)
{
    for (struct wp_list *n = wp_rt.pools.next; n != &wp_rt.pools; n = n->next) {
        const struct wp_pool *p = list_entry(n, struct wp_pool, node);
        if (strcmp(p->dbname, dbname) == 0 && !p->paused &&
            (p->nwaiting > 0 || !list_empty(&p->welcoming)) && limits_room(p) <= 0)
            return 1;
    }
    return 0;
}

/* Databases follow the pools that have a budget. */
static void follow_pools(int64_t now)
{
    for (struct wp_list *n = dbs.next; n != &dbs; n = n->next)
        list_entry(n, struct fleet_db, node)->seen = 0;
    for (struct wp_list *n = wp_rt.pools.next; n != &wp_rt.pools; n = n->next) {
        const struct wp_pool *p = list_entry(n, struct wp_pool, node);
        if (p->settings.fleet_max_db_connections <= 0)
            continue;
        struct fleet_db *d = find_db(p->dbname);
        if (!d && !(d = db_new(p->dbname, now)))
            continue;
        d->seen = 1;
        d->budget = p->settings.fleet_max_db_connections;
        if (d->cap > d->budget) /* a reload lowered it: no need to wait for a read */
            d->cap = d->budget;
    }
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &dbs)
    {
        struct fleet_db *d = list_entry(pos, struct fleet_db, node);
        if (!d->seen)
            db_free(d);
    }
}

static int64_t poll_timeout(void)
{
    int64_t two = 2 * wp_rt.cfg->fleet_poll_interval;
    return two > FLEET_POLL_TIMEOUT_MS ? two : FLEET_POLL_TIMEOUT_MS;
}

void fleet_config_changed(void)
{
    if (!fleet_on()) {
        fleet_shutdown();
        return;
    }
    refresh_identity();
    follow_pools(wp_now_ms());
}

void fleet_tick(int64_t now)
{
    fleet_config_changed(); /* the pools of the tick: new ones, freed ones */
    if (!fleet_on())
        return;
    for (struct wp_list *n = dbs.next; n != &dbs; n = n->next) {
        struct fleet_db *d = list_entry(n, struct fleet_db, node);
        if (pgq_busy(&d->monitor)) {
            if (now - d->poll_started_ms >= poll_timeout())
                poll_failed(d, "timed out");
            continue;
        }
        if (now >= d->next_poll_ms ||
            (now - d->last_read_ms >= FLEET_EARLY_POLL_MS && waits_for_room(d->dbname)))
            start_poll(d, now);
    }
}

void fleet_shutdown(void)
{
    while (!list_empty(&dbs))
        db_free(list_entry(dbs.next, struct fleet_db, node));
}

/* ---------------------------------------------------------------- views */

static void fill_info(const struct fleet_db *d, struct fleet_info *info)
{
    info->dbname = d->dbname;
    info->budget = d->budget;
    info->cap = d->cap;
    info->fleet_held = d->fleet_held;
    info->state = d->state;
    info->last_read_ms = d->last_read_ms;
    info->members = d->members;
    info->nmembers = d->nmembers;
}

void fleet_each(void (*fn)(const struct fleet_info *info, void *arg), void *arg)
{
    for (struct wp_list *n = dbs.next; n != &dbs; n = n->next) {
        struct fleet_info info;
        fill_info(list_entry(n, struct fleet_db, node), &info);
        fn(&info, arg);
    }
}

int fleet_find(const char *dbname, struct fleet_info *info)
{
    if (!fleet_on())
        return 0;
    const struct fleet_db *d = find_db(dbname);
    if (!d)
        return 0;
    fill_info(d, info);
    return 1;
}
