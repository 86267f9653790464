/*
 * authq — auth_query: the secret of a user who is not in auth_file, looked up in
 * PostgreSQL as auth_user (PgBouncer's auth_user / auth_query / auth_dbname).
 *
 * login.c asks with authq_request(); the answer comes back through
 * login_secret_ready() (client.h), on the loop, once per waiting client. Lookups of the
 * same user share one query; answers are cached for auth_query_cache_ttl.
 *
 * The pure parts (where a lookup goes, what its result means, the cache) are exposed
 * for the unit tests.
 */
#ifndef WARMPOOL_AUTHQ_H
#define WARMPOOL_AUTHQ_H

#include <stddef.h>
#include <stdint.h>

struct wp_client;
struct wp_config;
struct wp_db_config;
struct wp_user_secret;
struct wp_userlist;

enum authq_outcome {
    AUTHQ_FOUND,          /* a secret: used as an auth_file entry would be */
    AUTHQ_NO_USER,        /* no row: the user does not exist or may not log in */
    AUTHQ_NO_PASSWORD,    /* a row whose secret is NULL or empty (also: expired) */
    AUTHQ_CONNECT_FAILED, /* auth_user could not log in (or the lookup timed out) */
    AUTHQ_QUERY_FAILED,   /* the query failed or its result has the wrong shape */
};

/* Found and not-found answers are cached; failures are not (the next login retries). */
static inline int authq_outcome_cacheable(enum authq_outcome o)
{
    return o == AUTHQ_FOUND || o == AUTHQ_NO_USER || o == AUTHQ_NO_PASSWORD;
}

/* The log's words for an outcome ("user not found by auth_query", …). */
const char *authq_outcome_text(enum authq_outcome o);

/* ---- where a lookup goes (pure) ---- */

struct authq_target {
    const struct wp_db_config *entry; /* the [databases] entry whose server is asked */
    const char *dbname;               /* the database the query runs in */
    const char *auth_user;
    const char *query;
};

/*
 * For a client of database `client_db`: 1 and *t filled when auth_query applies (an
 * auth_user is set for that database, globally or in its entry); 0 when it does not
 * (no auth_user, or no [databases] entry for client_db: the client then fails as an
 * unknown user does); -1 with *why when it applies but cannot run (auth_dbname names
 * no entry).
 */
int authq_target_for(const struct wp_config *cfg, const char *client_db, struct authq_target *t,
                     const char **why);

/*
 * libpq keywords for the lookup's own connection: the entry's connection string without
 * its user, password and dbname, then user = auth_user, `password` when given,
 * dbname, and `options` with search_path pinned to pg_catalog (the entry's own options
 * kept before it). `opts` holds the options text (opts_len bytes). Returns the number of
 * pairs (arrays NULL-terminated, at most max - 1 pairs), -1 when they do not fit.
 */
int authq_conninfo(const struct authq_target *t, const char *password, char *opts, size_t opts_len,
                   const char **keys, const char **values, int max);

/*
 * What a lookup's result says: ntuples rows of nfields columns; in the first row the
 * user name is NULL when user_isnull, and the secret is `value` (NULL or isnull when
 * NULL). A row whose user name is NULL means no user (PgBouncer's recommended SECURITY
 * DEFINER function returns one for a missing user). More than one row, or fewer than
 * two columns, is AUTHQ_QUERY_FAILED with *why set.
 */
enum authq_outcome authq_interpret(int ntuples, int nfields, int user_isnull, const char *value,
                                   int isnull, const char **why);

/* ---- the cache (pure; the clock is the caller's) ---- */

struct authq_cache_entry {
    struct authq_cache_entry *next;
    char *key; /* authq_key(): user, entry, dbname, auth_user, query, NUL-separated */
    size_t key_len;
    enum authq_outcome outcome;
    char *secret; /* AUTHQ_FOUND only */
    int64_t expires_ms;
};

struct authq_cache {
    struct authq_cache_entry *head; /* newest first */
    int n;
    int max; /* a full cache drops the entry closest to expiring */
};

/* A fresh NUL-separated key for (user, target); *len set. NULL when out of memory. */
char *authq_key(const char *user, const struct authq_target *t, size_t *len);
/* The live entry for key, or NULL; expired entries met on the way are freed. */
const struct authq_cache_entry *authq_cache_get(struct authq_cache *cache, const char *key,
                                                size_t key_len, int64_t now_ms);
/* Store (replacing an entry with the same key) until now + ttl. -1 out of memory. */
int authq_cache_put(struct authq_cache *cache, const char *key, size_t key_len,
                    enum authq_outcome outcome, const char *secret, int64_t now_ms, int64_t ttl_ms);
void authq_cache_clear(struct authq_cache *cache);

/* A secret as an auth_file line would give it (kind detected); freed with
   authq_secret_free. NULL when out of memory. */
struct wp_user_secret *authq_secret_new(const char *user, const char *secret);
void authq_secret_free(struct wp_user_secret *secret);

/* ---- the event-driven part ---- */

/*
 * Look c's secret up if auth_query applies to it (c->user is not in auth_file; the
 * caller checks). 0: it does not apply, nothing was done. 1: the answer comes through
 * login_secret_ready(c, …), either already (a cached answer) or later, while c waits on
 * its `node` (client_close takes it off).
 */
int authq_request(struct wp_client *c);

/* SIGHUP: cached answers are dropped (lookups in flight finish with what they began). */
void authq_forget_cache(void);
/* Shutdown: lookups in flight are abandoned (their clients are being closed), the cache
   is freed. */
void authq_shutdown(void);

#endif
