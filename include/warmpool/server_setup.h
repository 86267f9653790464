/*
 * server_setup — what a new backend gets from the configuration besides its entry's
 * connection string (pooler/server_setup.c): PgBouncer's server_tls_* keys turned into
 * libpq keywords, and connect_query, run once before the backend is first lent.
 */
#ifndef WARMPOOL_SERVER_SETUP_H
#define WARMPOOL_SERVER_SETUP_H

struct wp_config;
struct wp_db_config;
struct wp_server;

/* Room server_setup_tls_keys may use in a keyword array. */
#define SERVER_SETUP_TLS_KEYS 6

/* Appends sslmode, sslrootcert, sslcert, sslkey and ssl_min/max_protocol_version from
   cfg's server_tls_* keys at keys[n], values[n] — each only when db's own connection
   string does not set it (the entry wins). The values point into cfg or are constant.
   Returns the new n. */
int server_setup_tls_keys(const struct wp_config *cfg, const struct wp_db_config *db,
                          const char **keys, const char **values, int n);
/* Whether a backend made for entry `a` of configuration `ca` would get other TLS
   keywords or another connect_query for entry `b` of `cb` (a reload: its servers are
   then retired, as for a changed connection string). */
int server_setup_changed(const struct wp_config *ca, const struct wp_db_config *a,
                         const struct wp_config *cb, const struct wp_db_config *b);
/* The connect_query for db (its own, else the global one); NULL when there is none. */
const char *server_setup_connect_query(const struct wp_config *cfg, const struct wp_db_config *db);
/* Queues the pool's connect_query on a backend that just connected. Returns 1 when it
   was queued (the backend then turns usable once it is answered, and a failure closes
   it), 0 when there is none to run. */
int server_setup_start(struct wp_server *s);
/* The connect_query was answered (s->setting_up; the backend is quiet): closes the
   backend if it failed, else starts prepared warming. Returns 1 when the backend is not
   ready for the pool yet (or closed), 0 when it is. */
int server_setup_finish(struct wp_server *s);

#endif
