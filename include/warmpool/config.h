/*
 * config — the ini file (inih) turned into a validated struct wp_config.
 *
 * Loading never touches running pools: main builds a new wp_config, and on SIGHUP
 * swaps it in only when the whole file is valid. Every error names `file:line`.
 */
#ifndef WARMPOOL_CONFIG_H
#define WARMPOOL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "warmpool/peers_config.h"

enum wp_pool_mode {
    WP_MODE_UNSET = -1,
    WP_MODE_SESSION = 0,
    WP_MODE_TRANSACTION,
    WP_MODE_STATEMENT
};
/* pin_session_state: what a client's uncarriable session state does in transaction mode. */
enum wp_pin_mode {
    WP_PIN_OFF = 0, /* nothing: the state stays on the backend for whoever comes next */
    WP_PIN_ON,      /* the client keeps its backend until the state is released */
    WP_PIN_LOG,     /* as off, with a warning naming the state */
};
/* WP_AUTH_HBA (PgBouncer's auth_type = hba): every client's method comes from
   auth_hba_file, which must be set. */
enum wp_auth_type {
    WP_AUTH_TRUST,
    WP_AUTH_MD5,
    WP_AUTH_SCRAM,
    WP_AUTH_PLAIN,
    WP_AUTH_CERT,
    WP_AUTH_HBA
};

#define WP_UNSET (-1)

/*
 * Settings a [databases] entry or a [users] entry may override. WP_UNSET / WP_MODE_UNSET
 * in an override means "inherit". Durations are milliseconds (0 = disabled).
 */
struct wp_pool_settings {
    int pool_mode; /* enum wp_pool_mode */
    int min_pool_size;
    int max_pool_size; /* alias default_pool_size */
    int reserve_pool_size;
    int max_db_connections;       /* 0 = unlimited */
    int fleet_max_db_connections; /* backends of the whole fleet to the database; 0 = off */
    int64_t query_timeout;
    int64_t query_wait_timeout;
    int64_t client_idle_timeout;
    int64_t idle_transaction_timeout;
    int64_t pinned_idle_timeout; /* a pinned client idle between transactions */
    int64_t transaction_timeout; /* a transaction (or request) running this long */
    int64_t server_lifetime;
    int64_t server_idle_timeout;
    int load_balance_hosts; /* enum wp_lb_mode (hosts.h): the order of a host list */
};

struct wp_db_config {
    char *name;
    /* libpq keywords/values for the backend (NULL-terminated arrays, as
       PQconnectStartParams wants). Warmpool-only keys (pool_mode, pool_size,
       max_pool_size, min_pool_size, reserve_pool_size, max_db_connections, the
       timeouts above) are taken out and put in `overrides`. `dbname` defaults to
       `name`. `user`/`password` force the backend login when present. */
    char **conn_keys;
    char **conn_values;
    int nconn;
    const char *forced_user; /* points into conn_values, or NULL */
    /* auth_query overrides for clients of this database (NULL: the global value) */
    char *auth_user;
    char *auth_query;
    char *auth_dbname;
    char *connect_query;           /* run on each new backend; NULL: the global value */
    int max_db_client_connections; /* 0: the global value */
    struct wp_pool_settings overrides;
    const char *file; /* the file it was read from (one of wp_config.files) */
    int line;
};

struct wp_user_config {
    char *name;
    struct wp_pool_settings overrides; /* pool_mode, max_user_connections via max_db_connections… */
    int max_user_connections;          /* 0 = unlimited */
    int max_user_client_connections;   /* 0: the global value */
    const char *file;                  /* as in wp_db_config */
    int line;
};

struct wp_config {
    char *path;
    char **files;   /* every file read: path, then each %include in order; NULL-terminated */
    char **notices; /* "file:line: accepted, no effect: key", one per key; for the log */
    /* The [warmpool] value of each key without effect the file sets, by row of
       wp_keys (config_keys.h), for SHOW CONFIG; NULL when not set. Allocated. */
    char **ignored_values;

    /* [warmpool] — connections */
    char *listen_addr;               /* default "127.0.0.1"; "*" = all; "" = no TCP */
    int listen_port;                 /* default 6432 */
    char *unix_socket_dir;           /* default "/tmp"; "" = no unix socket */
    int unix_socket_mode;            /* default 0777 */
    int listen_backlog;              /* default 128 */
    int so_reuseport;                /* default 0 */
    int workers;                     /* threads doing socket I/O; default 1 */
    int peer_id;                     /* 0 = no peering; 1..16383 (cancel_key.h) */
    int max_client_conn;             /* default 100 */
    int max_db_client_connections;   /* clients per database; 0 = unlimited */
    int max_user_client_connections; /* clients per user; 0 = unlimited */
    /* TCP keepalive on client and server sockets (PgBouncer's keys; 0 = OS default) */
    int tcp_keepalive;        /* default 1 */
    int tcp_keepcnt;          /* probes */
    int tcp_keepidle;         /* seconds */
    int tcp_keepintvl;        /* seconds */
    int64_t tcp_user_timeout; /* ms, TCP_USER_TIMEOUT; 0 = OS default */

    /* auth */
    int auth_type;       /* enum wp_auth_type, default md5 */
    char *auth_file;     /* userlist.txt; NULL when unset */
    char *auth_hba_file; /* pg_hba.conf subset (hba.c); NULL = every client uses auth_type */
    char **admin_users;  /* NULL-terminated, from a comma list */
    char **stats_users;
    /* auth_query (authq.c): secrets of users not in auth_file, looked up as auth_user */
    char *auth_user;              /* NULL = no lookups (unless a [databases] entry sets one) */
    char *auth_query;             /* PgBouncer's default; $1 is the user name */
    char *auth_dbname;            /* [databases] entry the query runs in; NULL = the client's */
    int64_t auth_query_cache_ttl; /* default 60s; 0 = every login asks */

    /* TLS toward clients (tls.c); the backend side is in the [databases] strings */
    int client_tls_sslmode;    /* enum wp_sslmode, default disable */
    char *client_tls_key_file; /* NULL when unset */
    char *client_tls_cert_file;
    char *client_tls_ca_file;
    char *client_tls_protocols; /* default "secure" (TLS 1.2 and 1.3) */
    char *client_tls_ciphers;   /* default "default" (OpenSSL's list) */

    /* TLS toward servers: libpq keywords added to every [databases] entry that does not
       set them itself (server.c) */
    int server_tls_sslmode;     /* enum wp_sslmode, default prefer (libpq's sslmode) */
    char *server_tls_ca_file;   /* sslrootcert; NULL when unset */
    char *server_tls_cert_file; /* sslcert */
    char *server_tls_key_file;  /* sslkey */
    char *server_tls_protocols; /* ssl_min/max_protocol_version; default "secure" */

    /* pools (global defaults; all fields set) */
    struct wp_pool_settings pool;
    char *server_reset_query;         /* default "DISCARD ALL" */
    int pin_session_state;            /* enum wp_pin_mode, default on */
    int server_reset_query_always;    /* default 0 */
    int server_round_robin;           /* default 0: the most recently used idle server first */
    char *server_check_query;         /* default "" (empty query) */
    char *connect_query;              /* run once on each new backend; "" = none */
    int application_name_add_host;    /* append " - host:port" to application_name */
    int64_t server_check_delay;       /* default 30s */
    int64_t server_connect_timeout;   /* default 15s */
    int64_t server_login_retry;       /* default 1s (PgBouncer: 15s), see docs/CONFIG.md */
    int64_t client_login_timeout;     /* default 60s */
    int64_t reserve_pool_timeout;     /* default 5s */
    int64_t query_wait_notify;        /* NOTICE to a client waiting this long; 0 = never */
    int64_t shutdown_wait_timeout;    /* default 30s */
    int64_t suspend_timeout;          /* default 10s: SUSPEND's flush */
    int max_prepared_statements;      /* default 200, 0 disables the cache */
    int warm_prepared_statements;     /* default 50: prepared on new backends before use */
    int max_user_connections;         /* default 0 = unlimited; per-user default, copied
                                         into [users] entries that do not set it */
    char **ignore_startup_parameters; /* NULL-terminated */
    int64_t pkt_buf;                  /* default 16kB */
    int64_t max_packet_size;          /* default 1GB */

    /* observability (stats.c, stats_http.c) */
    char *stats_socket;             /* unix socket path of the HTTP stats endpoint; NULL = off */
    char *stats_listen;             /* "host:port" for a TCP stats endpoint; "" = off */
    int stats_socket_mode;          /* default 0660 */
    int stats_top_statements;       /* statements tracked per pool, default 1000; 0 = off */
    int nplus1_threshold;           /* repeats that make an N+1 burst, default 10; 0 = off */
    int64_t nplus1_window_ms;       /* grouping window outside transactions, default 1s */
    int64_t nplus1_log_interval_ms; /* one N+1 log line per statement and pool per this, 60s */
    int64_t log_slow_queries_ms;    /* log queries slower than this; 0 = off (default) */
    int log_parameters;             /* slow-query log shows the statement text as sent */
    int log_pooler_errors;          /* default 1: log errors warmpool sends to clients */
    int log_stats;                  /* default 1: a stats line per pool every stats_period */
    int64_t stats_period;           /* default 60s */

    /* process */
    char *logfile; /* NULL = stderr */
    char *pidfile;
    int verbose;            /* 0..3 (3 logs as 2) */
    int scram_iterations;   /* for SCRAM keys warmpool derives from plaintext passwords */
    int log_connections;    /* default 1: a line for each login */
    int log_disconnections; /* default 1: a line for each logged-in client that leaves */
    char *log_format;       /* "text" (default) | "json" */
    int syslog;             /* default 0 */
    char *syslog_ident;     /* default "warmpool" */
    char *syslog_facility;  /* default "daemon"; validated with log_facility_from_name */

    /* fleet connection budget (fleet.c): "" = off */
    char *fleet_name;
    char *fleet_instance;        /* "": the short host name and listen_port */
    int64_t fleet_poll_interval; /* default 2s */

    struct wp_db_config *dbs;
    int ndbs;
    struct wp_user_config *users;
    int nusers;
    struct wp_peers peers; /* [peers]: where to forward cancel requests */

    /* Holders (runtime.c): the runtime while this is the configuration in force, and
       every pool whose `db` points into it. Freed when the last one lets go. */
    int refs;
};

/*
 * Parse and validate `path`. On success fills *out and returns 0. On failure returns
 * -1 and writes every error found, one per line, as "file:line: message" into err
 * (truncated to errlen). *out is left freed on failure.
 */
int config_load(const char *path, struct wp_config *out, char *err, size_t errlen);
/* config_load with the console's SET values on top of the file's [warmpool] section:
   keys[i] = values[i] for i < n, in order, each replacing the file's value. A key that
   is unknown, or that only a restart changes (config_key_settable), is an error like a
   bad value; messages about a SET value start with "SET: ". */
int config_load_with_overrides(const char *path, const char *const *keys, const char *const *values,
                               int n, struct wp_config *out, char *err, size_t errlen);
/* The same from `len` bytes of ini text in memory (tests, fuzzing); `name` stands for the
   file name in messages. */
int config_load_string(const char *name, const char *text, size_t len, struct wp_config *out,
                       char *err, size_t errlen);
void config_free(struct wp_config *cfg);

const struct wp_db_config *config_find_db(const struct wp_config *cfg, const char *name);
const struct wp_user_config *config_find_user(const struct wp_config *cfg, const char *name);
/* The entry's libpq keyword's value as libpq reads it (the last one counts), or NULL. */
const char *config_db_conn_value(const struct wp_db_config *db, const char *key);

/* Effective settings for (db, user): user overrides db overrides globals. */
void config_effective(const struct wp_config *cfg, const struct wp_db_config *db,
                      const struct wp_user_config *user, struct wp_pool_settings *out);

/* "250ms", "5s", "10min", "1h", "2d", bare number = seconds → milliseconds; a fraction
   ("0.5", "1.5s") when it comes to whole milliseconds. -1 on error. */
int config_parse_duration(const char *text, int64_t *ms);
/* "512", "16kB", "8MB", "1GB" → bytes. -1 on error. */
int config_parse_size(const char *text, int64_t *bytes);
const char *config_mode_name(int mode);
const char *config_pin_name(int pin);
const char *config_auth_name(int auth_type);
/* "host:port" or "[v6]:port" → host (NUL-terminated, may be NULL) and port 1..65535.
   Returns 0, or -1 when malformed or the host does not fit. */
int config_split_host_port(const char *text, char *host, size_t hostlen, int *port);
int config_user_in_list(char *const *list, const char *user);

#endif
