/*
 * authq — auth_query: a user missing from auth_file is looked up in PostgreSQL, as
 * PgBouncer does, by running auth_query with the user name bound as $1 (never put
 * into the text) over a connection of its own, logged in as auth_user (password from
 * auth_file) to auth_dbname or the client's database.
 *
 * Why libpq's non-blocking API on the event loop rather than the workpool threads:
 * a lookup is a whole backend login plus a query, up to server_connect_timeout long.
 * On the two helper threads, a few slow lookups would hold up every cancel behind
 * them, and starting the threads at all costs every transaction of the relay its
 * share of glibc's cancellation bookkeeping (workpool.c). pgq.c drives the login and
 * the query with libpq's non-blocking API on libevent events (as server.c drives its
 * PQconnectPoll), so nothing ever blocks and a lookup's whole life is on the loop with
 * the clients that wait for it.
 *
 * CVE-2025-12819: PgBouncer ran auth_query in a session whose search_path a client's
 * startup parameters could reach. Here the lookup's connection carries nothing of the
 * client (only its user name, as a bound parameter), and its `options` pin
 * search_path to pg_catalog, pg_temp, so an unqualified pg_authid or function name
 * cannot be redirected to another schema.
 *
 * Lookups of the same (user, target) share one query: later clients wait on the
 * first one's list. At most AUTHQ_MAX_CONNECTIONS run at once (the rest queue, at
 * most AUTHQ_MAX_QUEUED, and a queued lookup whose clients all left is dropped), so
 * logins under many invented names cannot open backends without bound, and the
 * cache holds at most AUTHQ_CACHE_MAX answers.
 */
#include <sys/time.h>

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "warmpool/auth.h"
#include "warmpool/authq.h"
#include "warmpool/client.h"
#include "warmpool/config.h"
#include "warmpool/list.h"
#include "warmpool/log.h"
#include "warmpool/pgq.h"
#include "warmpool/runtime.h"
#include "warmpool/server_setup.h"
#include "warmpool/timeouts.h"

/* Backend connections open for lookups at any moment. */
#define AUTHQ_MAX_CONNECTIONS 4
/* Lookups waiting for one of those connections; more fail at once. */
#define AUTHQ_MAX_QUEUED 1024
/* Answers kept (found or not); with the TTL this bounds the cache's memory. */
#define AUTHQ_CACHE_MAX 4096
/* A lookup's whole life when server_connect_timeout is 0 (disabled). */
#define AUTHQ_DEFAULT_TIMEOUT_MS 15000
#define AUTHQ_MAX_CONNINFO 80

/* ---------------------------------------------------------------- pure parts */

const char *authq_outcome_text(enum authq_outcome o)
{
    switch (o) {
    case AUTHQ_FOUND:
        return "secret found by auth_query";
    case AUTHQ_NO_USER:
        return "user not found by auth_query";
    case AUTHQ_NO_PASSWORD:
        return "auth_query returned no password";
    case AUTHQ_CONNECT_FAILED:
        return "auth_query could not connect";
    case AUTHQ_QUERY_FAILED:
        return "auth_query failed";
    }
    return "?";
}

static const char *conn_value(const struct wp_db_config *db, const char *key)
{
    for (int i = 0; i < db->nconn; i++)
        if (strcmp(db->conn_keys[i], key) == 0)
            return db->conn_values[i];
    return NULL;
}

static const char *first_set(const char *a, const char *b)
{
    return a && *a ? a : b && *b ? b : NULL;
}

int authq_target_for(const struct wp_config *cfg, const char *client_db, struct authq_target *t,
                     const char **why)
{
    const struct wp_db_config *db = config_find_db(cfg, client_db);
    if (!db)
        return 0;
    memset(t, 0, sizeof *t);
    t->auth_user = first_set(db->auth_user, cfg->auth_user);
    if (!t->auth_user)
        return 0;
    t->query = first_set(db->auth_query, cfg->auth_query);
    const char *auth_db = first_set(db->auth_dbname, cfg->auth_dbname);
    if (!t->query) {
        *why = "auth_query is empty";
        return -1;
    }
    const char *name = auth_db ? auth_db : client_db;
    t->entry = auth_db ? config_find_db(cfg, auth_db) : db;
    if (!t->entry) {
        *why = "auth_dbname names no [databases] entry";
        return -1;
    }
    /* The entry's dbname, else the name it was reached by (a "*" entry serves any). */
    const char *dbname = conn_value(t->entry, "dbname");
    t->dbname = dbname && *dbname ? dbname : name;
    return 1;
}

int authq_conninfo(const struct authq_target *t, const char *password, char *opts, size_t opts_len,
                   const char **keys, const char **values, int max)
{
    const struct wp_db_config *db = t->entry;
    const char *own_options = NULL;
    int n = 0;
    for (int i = 0; i < db->nconn; i++) {
        const char *k = db->conn_keys[i];
        if (strcmp(k, "options") == 0) {
            own_options = db->conn_values[i];
            continue;
        }
        /* The lookup logs in as auth_user, whatever login the entry forces. */
        if (strcmp(k, "user") == 0 || strcmp(k, "password") == 0 || strcmp(k, "dbname") == 0)
            continue;
        if (n >= max - 8)
            return -1;
        keys[n] = k;
        values[n++] = db->conn_values[i];
    }
    /* Last on the command line wins: the pin comes after the entry's own options. */
    int len = snprintf(opts, opts_len, "%s%s-c search_path=pg_catalog,pg_temp",
                       own_options ? own_options : "", own_options && *own_options ? " " : "");
    if (len < 0 || (size_t)len >= opts_len)
        return -1;
    keys[n] = "options";
    values[n++] = opts;
    keys[n] = "user";
    values[n++] = t->auth_user;
    if (password) {
        keys[n] = "password";
        values[n++] = password;
    }
    keys[n] = "dbname";
    values[n++] = t->dbname;
    keys[n] = "fallback_application_name";
    values[n++] = "warmpool auth_query";
    keys[n] = "gssencmode"; /* as server.c: no Kerberos loaded for this */
    values[n++] = "disable";
    keys[n] = NULL;
    values[n] = NULL;
    return n;
}

enum authq_outcome authq_interpret(int ntuples, int nfields, int user_isnull, const char *value,
                                   int isnull, const char **why)
{
    if (ntuples == 0)
        return AUTHQ_NO_USER;
    if (nfields < 2) {
        *why = "auth_query must return two columns (user name, password)";
        return AUTHQ_QUERY_FAILED;
    }
    if (ntuples > 1) {
        *why = "auth_query returned more than one row";
        return AUTHQ_QUERY_FAILED;
    }
    if (user_isnull)
        return AUTHQ_NO_USER;
    if (isnull || !value || !*value)
        return AUTHQ_NO_PASSWORD;
    return AUTHQ_FOUND;
}

char *authq_key(const char *user, const struct authq_target *t, size_t *len)
{
    const char *parts[] = {user, t->entry->name, t->dbname, t->auth_user, t->query};
    size_t total = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        total += strlen(parts[i]) + 1;
    char *key = malloc(total);
    if (!key)
        return NULL;
    char *p = key;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t n = strlen(parts[i]) + 1;
        memcpy(p, parts[i], n);
        p += n;
    }
    *len = total;
    return key;
}

static void free_secret_text(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void entry_free(struct authq_cache_entry *e)
{
    free(e->key);
    free_secret_text(e->secret);
    free(e);
}

const struct authq_cache_entry *authq_cache_get(struct authq_cache *cache, const char *key,
                                                size_t key_len, int64_t now_ms)
{
    struct authq_cache_entry **pp = &cache->head;
    while (*pp) {
        struct authq_cache_entry *e = *pp;
        if (now_ms >= e->expires_ms) {
            *pp = e->next;
            cache->n--;
            entry_free(e);
            continue;
        }
        if (e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
            return e;
        pp = &e->next;
    }
    return NULL;
}

static void cache_remove(struct authq_cache *cache, const struct authq_cache_entry *victim)
{
    for (struct authq_cache_entry **pp = &cache->head; *pp; pp = &(*pp)->next) {
        if (*pp == victim) {
            struct authq_cache_entry *e = *pp;
            *pp = e->next;
            cache->n--;
            entry_free(e);
            return;
        }
    }
}

int authq_cache_put(struct authq_cache *cache, const char *key, size_t key_len,
                    enum authq_outcome outcome, const char *secret, int64_t now_ms, int64_t ttl_ms)
{
    const struct authq_cache_entry *old = authq_cache_get(cache, key, key_len, now_ms);
    if (old)
        cache_remove(cache, old);
    while (cache->max > 0 && cache->n >= cache->max) {
        const struct authq_cache_entry *soonest = cache->head;
        for (const struct authq_cache_entry *e = cache->head; e; e = e->next)
            if (e->expires_ms < soonest->expires_ms)
                soonest = e;
        cache_remove(cache, soonest);
    }
    struct authq_cache_entry *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    e->key = malloc(key_len);
    e->secret = outcome == AUTHQ_FOUND && secret ? strdup(secret) : NULL;
    if (!e->key || (outcome == AUTHQ_FOUND && secret && !e->secret)) {
        entry_free(e);
        return -1;
    }
    memcpy(e->key, key, key_len);
    e->key_len = key_len;
    e->outcome = outcome;
    e->expires_ms = now_ms + ttl_ms;
    e->next = cache->head;
    cache->head = e;
    cache->n++;
    return 0;
}

void authq_cache_clear(struct authq_cache *cache)
{
    while (cache->head) {
        struct authq_cache_entry *e = cache->head;
        cache->head = e->next;
        entry_free(e);
    }
    cache->n = 0;
}

struct wp_user_secret *authq_secret_new(const char *user, const char *secret)
{
    struct wp_user_secret *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->user = strdup(user);
    s->secret = strdup(secret);
    if (!s->user || !s->secret) {
        authq_secret_free(s);
        return NULL;
    }
    s->kind = auth_secret_kind(s->secret);
    return s;
}

void authq_secret_free(struct wp_user_secret *s)
{
    if (!s)
        return;
    free(s->user);
    free_secret_text(s->secret);
    free(s);
}

/* ---------------------------------------------------------------- lookups */

struct lookup {
    struct wp_list node;    /* running or queued */
    struct wp_list waiters; /* clients, by their `node` */
    uint64_t id;
    char *key;
    size_t key_len;
    char *user;
    char *query;
    char *where; /* "dbname as auth_user", for the log */
    int no_password_hint;
    /* The connection string, copied: a reload may free the configuration it came from
       while the lookup is queued. */
    char *keys[AUTHQ_MAX_CONNINFO];
    char *values[AUTHQ_MAX_CONNINFO];
    int npairs;
    int started; /* left the queue: the connection is (or was) running */
    struct pgq q;
    PGresult *first; /* the query's result, kept until the last one came */
    struct event *timer;
};

static struct wp_list running = {&running, &running};
static struct wp_list queued = {&queued, &queued};
static int nrunning, nqueued;
static struct authq_cache cache = {NULL, 0, AUTHQ_CACHE_MAX};

static void lookup_free(struct lookup *lk)
{
    if (lk->timer)
        event_free(lk->timer);
    pgq_close(&lk->q);
    PQclear(lk->first);
    for (int i = 0; i < lk->npairs; i++) {
        free(lk->keys[i]);
        free_secret_text(lk->values[i]); /* one of them is a password */
    }
    free(lk->key);
    free(lk->user);
    free(lk->query);
    free(lk->where);
    free(lk);
}

static void start_next(void);

/* The end of a lookup: cache the answer, hand it to every client still waiting. */
static void finish(struct lookup *lk, enum authq_outcome outcome, const char *secret,
                   const char *why)
{
    list_remove(&lk->node);
    if (lk->started)
        nrunning--;
    else
        nqueued--;
    int64_t ttl = wp_rt.cfg->auth_query_cache_ttl;
    if (authq_outcome_cacheable(outcome) && ttl > 0 &&
        authq_cache_put(&cache, lk->key, lk->key_len, outcome, secret, wp_now_ms(), ttl) < 0)
        log_warn("auth_query: out of memory caching the answer for user \"%s\"", lk->user);
    if (!authq_outcome_cacheable(outcome))
        log_warn("auth_query for user \"%s\" (%s) failed: %s%s", lk->user, lk->where, why,
                 outcome == AUTHQ_CONNECT_FAILED && lk->no_password_hint
                     ? " (auth_user has no plaintext password in auth_file)"
                     : "");
    else
        log_debug("auth_query for user \"%s\" (%s): %s", lk->user, lk->where,
                  authq_outcome_text(outcome));
    /* The connection goes first: the clients' answers may take a while to write. */
    pgq_close(&lk->q);
    while (!list_empty(&lk->waiters)) {
        struct wp_client *c = list_entry(lk->waiters.next, struct wp_client, node);
        list_remove(&c->node);
        login_secret_ready(c, outcome, secret);
    }
    lookup_free(lk);
    start_next();
}

static void on_connected(void *arg)
{
    struct lookup *lk = arg;
    const char *params[1] = {lk->user};
    pgq_send(&lk->q, lk->query, 1, params);
}

/* One statement (the extended protocol allows no more): one result, kept. */
static void on_result(void *arg, PGresult *res)
{
    struct lookup *lk = arg;
    if (lk->first)
        PQclear(res);
    else
        lk->first = res;
}

static void on_done(void *arg)
{
    struct lookup *lk = arg;
    PGresult *res = lk->first;
    lk->first = NULL;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        char text[512];
        pgq_one_line(res ? PQresultErrorMessage(res) : PQerrorMessage(lk->q.conn), text,
                     sizeof text);
        PQclear(res);
        finish(lk, AUTHQ_QUERY_FAILED, NULL, text);
        return;
    }
    const char *why = "";
    int rows = PQntuples(res), cols = PQnfields(res);
    int user_isnull = rows > 0 && cols > 0 ? PQgetisnull(res, 0, 0) : 1;
    int isnull = rows > 0 && cols > 1 ? PQgetisnull(res, 0, 1) : 1;
    const char *value = rows > 0 && cols > 1 && !isnull ? PQgetvalue(res, 0, 1) : NULL;
    enum authq_outcome outcome = authq_interpret(rows, cols, user_isnull, value, isnull, &why);
    finish(lk, outcome, outcome == AUTHQ_FOUND ? value : NULL, why);
    PQclear(res); /* after finish: value points into it (libpq frees it untouched) */
}

static void on_failed(void *arg, int connecting, const char *why)
{
    finish(arg, connecting ? AUTHQ_CONNECT_FAILED : AUTHQ_QUERY_FAILED, NULL, why);
}

static const struct pgq_calls lookup_calls = {on_connected, on_result, on_done, on_failed};

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lookup *lk = arg;
    wp_clock_hold(1);
    int connecting = !lk->started || lk->q.phase == PGQ_CONNECTING;
    finish(lk, connecting ? AUTHQ_CONNECT_FAILED : AUTHQ_QUERY_FAILED, NULL,
           lk->started ? "timed out" : "timed out waiting for a free lookup connection");
    wp_clock_hold(0);
}

static void start(struct lookup *lk)
{
    list_remove(&lk->node);
    nqueued--;
    list_push_tail(&running, &lk->node);
    nrunning++;
    lk->started = 1;
    pgq_connect(&lk->q, (const char *const *)lk->keys, (const char *const *)lk->values);
}

static void start_next(void)
{
    while (nrunning < AUTHQ_MAX_CONNECTIONS && !list_empty(&queued)) {
        struct lookup *lk = list_entry(queued.next, struct lookup, node);
        if (list_empty(&lk->waiters)) {
            /* Everyone who wanted it left (a client that gave up, or one of many
               invented names): no backend login for nobody. */
            list_remove(&lk->node);
            nqueued--;
            lookup_free(lk);
            continue;
        }
        start(lk);
    }
}

static struct lookup *find_lookup(struct wp_list *list, const char *key, size_t key_len)
{
    for (struct wp_list *n = list->next; n != list; n = n->next) {
        struct lookup *lk = list_entry(n, struct lookup, node);
        if (lk->key_len == key_len && memcmp(lk->key, key, key_len) == 0)
            return lk;
    }
    return NULL;
}

/* A new lookup (queued), or NULL when out of memory. Takes `key`. */
static struct lookup *new_lookup(const struct authq_target *t, const char *user, char *key,
                                 size_t key_len)
{
    struct lookup *lk = calloc(1, sizeof *lk);
    if (!lk) {
        free(key);
        return NULL;
    }
    lk->key = key;
    lk->key_len = key_len;
    list_init(&lk->node);
    list_init(&lk->waiters);
    pgq_init(&lk->q, &lookup_calls, lk);
    lk->id = runtime_next_id();
    /* auth_user's password: only a plaintext one can be given to libpq. Without one,
       libpq may still find it (passfile) or the server may not ask. */
    const struct wp_user_secret *own = auth_userlist_find(&wp_rt.users, t->auth_user);
    const char *password =
        own && auth_secret_usable(own) && own->kind == WP_SECRET_PLAIN ? own->secret : NULL;
    lk->no_password_hint = password == NULL;
    const char *keys[AUTHQ_MAX_CONNINFO], *values[AUTHQ_MAX_CONNINFO];
    char opts[1024];
    int n = authq_conninfo(t, password, opts, sizeof opts, keys, values,
                           AUTHQ_MAX_CONNINFO - SERVER_SETUP_TLS_KEYS);
    if (n >= 0) /* server_tls_* as the entry's backends get them */
        n = server_setup_tls_keys(wp_rt.cfg, t->entry, keys, values, n);
    char where[512];
    snprintf(where, sizeof where, "database \"%s\" as \"%s\"", t->dbname, t->auth_user);
    lk->user = strdup(user);
    lk->query = strdup(t->query);
    lk->where = strdup(where);
    int ok = n >= 0 && lk->user && lk->query && lk->where;
    for (int i = 0; ok && i < n; i++) {
        lk->keys[i] = strdup(keys[i]);
        lk->values[i] = strdup(values[i]);
        lk->npairs = i + 1;
        ok = lk->keys[i] && lk->values[i];
    }
    lk->timer = ok ? evtimer_new(wp_rt.base, on_timeout, lk) : NULL;
    int64_t limit = wp_rt.cfg->server_connect_timeout > 0 ? wp_rt.cfg->server_connect_timeout
                                                          : AUTHQ_DEFAULT_TIMEOUT_MS;
    struct timeval tv = {(time_t)(limit / 1000), (suseconds_t)(limit % 1000) * 1000};
    if (!lk->timer || evtimer_add(lk->timer, &tv) < 0) {
        lookup_free(lk);
        return NULL;
    }
    list_push_tail(&queued, &lk->node);
    nqueued++;
    return lk;
}

int authq_request(struct wp_client *c)
{
    struct authq_target t;
    const char *why = NULL;
    int applies = authq_target_for(wp_rt.cfg, c->dbname, &t, &why);
    if (applies == 0)
        return 0;
    if (applies < 0) {
        log_warn("C-%llu %s/%s@%s: auth_query cannot run: %s", (unsigned long long)c->id, c->dbname,
                 c->user, c->addr, why);
        login_secret_ready(c, AUTHQ_QUERY_FAILED, NULL);
        return 1;
    }
    size_t key_len;
    char *key = authq_key(c->user, &t, &key_len);
    if (!key) {
        login_secret_ready(c, AUTHQ_QUERY_FAILED, NULL);
        return 1;
    }
    const struct authq_cache_entry *hit = authq_cache_get(&cache, key, key_len, wp_now_ms());
    if (hit) {
        free(key);
        login_secret_ready(c, hit->outcome, hit->secret);
        return 1;
    }
    struct lookup *lk = find_lookup(&running, key, key_len);
    if (!lk)
        lk = find_lookup(&queued, key, key_len);
    if (lk) {
        free(key);
    } else if (nqueued >= AUTHQ_MAX_QUEUED) {
        free(key);
        log_warn("C-%llu %s/%s@%s: auth_query: %d lookups already waiting",
                 (unsigned long long)c->id, c->dbname, c->user, c->addr, nqueued);
        login_secret_ready(c, AUTHQ_CONNECT_FAILED, NULL);
        return 1;
    } else {
        lk = new_lookup(&t, c->user, key, key_len);
        if (!lk) {
            log_warn("C-%llu %s/%s@%s: auth_query: out of memory", (unsigned long long)c->id,
                     c->dbname, c->user, c->addr);
            login_secret_ready(c, AUTHQ_QUERY_FAILED, NULL);
            return 1;
        }
        log_debug("C-%llu %s/%s@%s: auth_query lookup L-%llu (%s)", (unsigned long long)c->id,
                  c->dbname, c->user, c->addr, (unsigned long long)lk->id, lk->where);
    }
    list_push_tail(&lk->waiters, &c->node);
    start_next(); /* may finish it at once (a connection libpq refuses): c is answered */
    return 1;
}

void authq_forget_cache(void)
{
    authq_cache_clear(&cache);
}

void authq_shutdown(void)
{
    struct wp_list *lists[] = {&running, &queued};
    for (int i = 0; i < 2; i++) {
        while (!list_empty(lists[i])) {
            struct lookup *lk = list_entry(lists[i]->next, struct lookup, node);
            list_remove(&lk->node);
            while (!list_empty(&lk->waiters))
                list_remove(lk->waiters.next);
            lookup_free(lk);
        }
    }
    nrunning = nqueued = 0;
    authq_cache_clear(&cache);
}
