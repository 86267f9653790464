/*
 * config_keys — the one table of configuration keys (include/warmpool/config_keys.h),
 * and how SHOW CONFIG prints a value.
 *
 * Rows of PgBouncer keys warmpool does not implement are here too (WP_KEY_NO_EFFECT),
 * so that a pgbouncer.ini loads unchanged and the operator is told, once per key, what
 * is ignored; a key in no row stays an error. docs/CONFIG.md lists every row
 * (tests/unit/test_config_keys.c checks that it does).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "warmpool/cancel_key.h"
#include "warmpool/config_keys.h"
#include "warmpool/hosts.h"
#include "warmpool/tls.h"

/* PgBouncer's default max_packet_size: the largest length a protocol message can state. */
#define PACKET_MAX 2147483647LL

#define CFG(f) WP_KEY_IN_CONFIG, offsetof(struct wp_config, f)
#define POOL(f) WP_KEY_IN_POOL, offsetof(struct wp_pool_settings, f)
#define USR(f) WP_KEY_IN_USER, offsetof(struct wp_user_config, f)
#define DBE(f) WP_KEY_IN_DB, offsetof(struct wp_db_config, f)
#define NONE WP_KEY_NOWHERE, 0
#define DUR 0, DURATION_MAX
#define NORANGE 0, 0

#define G WP_SEC_GLOBAL
#define D WP_SEC_DB
#define U WP_SEC_USER
#define ALL WP_SEC_ALL

#define R WP_KEY_RELOADS
#define ALIAS (WP_KEY_RELOADS | WP_KEY_ALIAS)

/* PgBouncer 1.25's default auth_query, word for word. */
#define AUTH_QUERY_DEFAULT                                                                         \
    "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM "         \
    "pg_authid WHERE rolname=$1 AND rolcanlogin"

/* Shorthand for a PgBouncer key that warmpool accepts and ignores. */
#define IGNORED(name, sections, pgb_default)                                                       \
    {                                                                                              \
        name, WP_KEY_NO_EFFECT, NONE, sections, NORANGE, pgb_default, name, R                      \
    }
/* The same for one PgBouncer 1.25 marks not changeable at runtime: SHOW CONFIG says so
   too, and the console's SET refuses it as PgBouncer's RELOAD ignores it. */
#define IGNORED_FIXED(name, sections, pgb_default)                                                 \
    {                                                                                              \
        name, WP_KEY_NO_EFFECT, NONE, sections, NORANGE, pgb_default, name, 0                      \
    }

/* Order: the order SHOW CONFIG lists them in. An alias follows the row it stands for. */
const struct wp_key wp_keys[] = {
    /* listening */
    {"listen_addr", WP_KEY_STR, CFG(listen_addr), G, NORANGE, "127.0.0.1", "listen_addr", 0},
    {"listen_port", WP_KEY_INT, CFG(listen_port), G, 1, 65535, "6432", "listen_port", 0},
    {"unix_socket_dir", WP_KEY_STR, CFG(unix_socket_dir), G, NORANGE, "/tmp", "unix_socket_dir", 0},
    {"unix_socket_mode", WP_KEY_OCTAL, CFG(unix_socket_mode), G, 0, 07777, "0777",
     "unix_socket_mode", 0},
    {"listen_backlog", WP_KEY_INT, CFG(listen_backlog), G, 1, INT_MAX, "128", "listen_backlog", 0},
    {"so_reuseport", WP_KEY_BOOL, CFG(so_reuseport), G, 0, 1, "0", "so_reuseport", 0},
    {"workers", WP_KEY_INT, CFG(workers), G, 1, 64, "1", NULL, 0},
    {"peer_id", WP_KEY_INT, CFG(peer_id), G, 0, CANCEL_KEY_MAX_PEER_ID, "0", "peer_id", R},
    {"max_client_conn", WP_KEY_INT, CFG(max_client_conn), G, 1, INT_MAX, "100", "max_client_conn",
     R},
    {"max_db_client_connections", WP_KEY_INT, CFG(max_db_client_connections), G, 0, INT_MAX, "0",
     "max_db_client_connections", R},
    {"max_db_client_connections", WP_KEY_INT, DBE(max_db_client_connections), D, 0, INT_MAX, NULL,
     "max_db_client_connections", R},
    {"max_user_client_connections", WP_KEY_INT, CFG(max_user_client_connections), G, 0, INT_MAX,
     "0", "max_user_client_connections", R},
    {"max_user_client_connections", WP_KEY_INT, USR(max_user_client_connections), U, 0, INT_MAX,
     NULL, "max_user_client_connections", R},
    {"tcp_keepalive", WP_KEY_BOOL, CFG(tcp_keepalive), G, 0, 1, "1", "tcp_keepalive", R},
    {"tcp_keepcnt", WP_KEY_INT, CFG(tcp_keepcnt), G, 0, 127, "0", "tcp_keepcnt", R},
    {"tcp_keepidle", WP_KEY_INT, CFG(tcp_keepidle), G, 0, 32767, "0", "tcp_keepidle", R},
    {"tcp_keepintvl", WP_KEY_INT, CFG(tcp_keepintvl), G, 0, 32767, "0", "tcp_keepintvl", R},
    {"tcp_user_timeout", WP_KEY_DURATION, CFG(tcp_user_timeout), G, 0, INT_MAX, "0",
     "tcp_user_timeout", R | WP_KEY_BARE_MS},

    /* authentication */
    {"auth_type", WP_KEY_AUTH, CFG(auth_type), G, NORANGE, "md5", "auth_type", R},
    {"auth_file", WP_KEY_PATH, CFG(auth_file), G, NORANGE, "", "auth_file", R},
    {"auth_hba_file", WP_KEY_PATH, CFG(auth_hba_file), G, NORANGE, "", "auth_hba_file", R},
    {"admin_users", WP_KEY_LIST, CFG(admin_users), G, NORANGE, "", "admin_users", R},
    {"stats_users", WP_KEY_LIST, CFG(stats_users), G, NORANGE, "", "stats_users", R},
    /* auth_query (authq.c); a [databases] entry may set its own auth_user, auth_query
       and auth_dbname (NULL there: the global value) */
    {"auth_user", WP_KEY_PATH, CFG(auth_user), G, NORANGE, "", "auth_user", R},
    {"auth_user", WP_KEY_PATH, DBE(auth_user), D, NORANGE, NULL, "auth_user", R},
    {"auth_query", WP_KEY_STR, CFG(auth_query), G, NORANGE, AUTH_QUERY_DEFAULT, "auth_query", R},
    {"auth_query", WP_KEY_STR, DBE(auth_query), D, NORANGE, NULL, "auth_query", R},
    {"auth_dbname", WP_KEY_PATH, CFG(auth_dbname), G, NORANGE, "", "auth_dbname", R},
    {"auth_dbname", WP_KEY_PATH, DBE(auth_dbname), D, NORANGE, NULL, "auth_dbname", R},
    {"auth_query_cache_ttl", WP_KEY_DURATION, CFG(auth_query_cache_ttl), G, DUR, "1min", NULL, R},

    /* TLS toward clients */
    {"client_tls_sslmode", WP_KEY_SSLMODE, CFG(client_tls_sslmode), G, NORANGE, "disable",
     "client_tls_sslmode", R},
    {"client_tls_key_file", WP_KEY_PATH, CFG(client_tls_key_file), G, NORANGE, "",
     "client_tls_key_file", R},
    {"client_tls_cert_file", WP_KEY_PATH, CFG(client_tls_cert_file), G, NORANGE, "",
     "client_tls_cert_file", R},
    {"client_tls_ca_file", WP_KEY_PATH, CFG(client_tls_ca_file), G, NORANGE, "",
     "client_tls_ca_file", R},
    {"client_tls_protocols", WP_KEY_STR, CFG(client_tls_protocols), G, NORANGE, "secure",
     "client_tls_protocols", R},
    {"client_tls_ciphers", WP_KEY_STR, CFG(client_tls_ciphers), G, NORANGE, "default",
     "client_tls_ciphers", R},

    /* TLS toward servers: libpq's sslmode, sslrootcert, sslcert, sslkey and
       ssl_min/max_protocol_version for every entry that does not set its own */
    {"server_tls_sslmode", WP_KEY_SSLMODE, CFG(server_tls_sslmode), G, NORANGE, "prefer",
     "server_tls_sslmode", R},
    {"server_tls_ca_file", WP_KEY_PATH, CFG(server_tls_ca_file), G, NORANGE, "",
     "server_tls_ca_file", R},
    {"server_tls_cert_file", WP_KEY_PATH, CFG(server_tls_cert_file), G, NORANGE, "",
     "server_tls_cert_file", R},
    {"server_tls_key_file", WP_KEY_PATH, CFG(server_tls_key_file), G, NORANGE, "",
     "server_tls_key_file", R},
    {"server_tls_protocols", WP_KEY_STR, CFG(server_tls_protocols), G, NORANGE, "secure",
     "server_tls_protocols", R},

    /* pools: [warmpool] defaults, each overridable per database and per user */
    {"pool_mode", WP_KEY_MODE, POOL(pool_mode), ALL, NORANGE, "session", "pool_mode", R},
    {"min_pool_size", WP_KEY_INT, POOL(min_pool_size), ALL, 0, INT_MAX, "0", "min_pool_size", R},
    {"max_pool_size", WP_KEY_INT, POOL(max_pool_size), ALL, 1, INT_MAX, "20", "default_pool_size",
     R},
    {"default_pool_size", WP_KEY_INT, POOL(max_pool_size), G, 1, INT_MAX, NULL, "default_pool_size",
     ALIAS},
    {"pool_size", WP_KEY_INT, POOL(max_pool_size), D | U, 1, INT_MAX, NULL, "pool_size", ALIAS},
    {"reserve_pool_size", WP_KEY_INT, POOL(reserve_pool_size), ALL, 0, INT_MAX, "0",
     "reserve_pool_size", R},
    {"reserve_pool", WP_KEY_INT, POOL(reserve_pool_size), D, 0, INT_MAX, NULL, "reserve_pool",
     ALIAS},
    {"max_db_connections", WP_KEY_INT, POOL(max_db_connections), G | D, 0, INT_MAX, "0",
     "max_db_connections", R},
    /* the fleet connection budget (fleet.c): at most 99999 so that a published state
       fits PostgreSQL's 63-byte application_name */
    {"fleet_max_db_connections", WP_KEY_INT, POOL(fleet_max_db_connections), G | D, 0, 99999, "0",
     NULL, R},
    {"max_user_connections", WP_KEY_INT, CFG(max_user_connections), G, 0, INT_MAX, "0",
     "max_user_connections", R},
    {"max_user_connections", WP_KEY_INT, USR(max_user_connections), U, 0, INT_MAX, NULL,
     "max_user_connections", R},
    {"query_timeout", WP_KEY_DURATION, POOL(query_timeout), ALL, DUR, "0", "query_timeout", R},
    {"query_wait_timeout", WP_KEY_DURATION, POOL(query_wait_timeout), ALL, DUR, "2min",
     "query_wait_timeout", R},
    {"client_idle_timeout", WP_KEY_DURATION, POOL(client_idle_timeout), ALL, DUR, "0",
     "client_idle_timeout", R},
    {"idle_transaction_timeout", WP_KEY_DURATION, POOL(idle_transaction_timeout), ALL, DUR, "0",
     "idle_transaction_timeout", R},
    {"pinned_idle_timeout", WP_KEY_DURATION, POOL(pinned_idle_timeout), ALL, DUR, "0", NULL, R},
    {"transaction_timeout", WP_KEY_DURATION, POOL(transaction_timeout), ALL, DUR, "0",
     "transaction_timeout", R},
    {"pin_session_state", WP_KEY_PIN, CFG(pin_session_state), G, NORANGE, "on", NULL, R},
    {"server_lifetime", WP_KEY_DURATION, POOL(server_lifetime), ALL, DUR, "1h", "server_lifetime",
     R},
    {"server_idle_timeout", WP_KEY_DURATION, POOL(server_idle_timeout), ALL, DUR, "10min",
     "server_idle_timeout", R},
    /* the order a new backend tries an entry's host list in (hosts.c); PgBouncer 1.24's
       default is round-robin, libpq's (and warmpool's) disable */
    {"load_balance_hosts", WP_KEY_LB, POOL(load_balance_hosts), G | D, NORANGE, "disable",
     "load_balance_hosts", R},

    /* servers */
    {"server_round_robin", WP_KEY_BOOL, CFG(server_round_robin), G, 0, 1, "0", "server_round_robin",
     R},
    {"server_reset_query", WP_KEY_STR, CFG(server_reset_query), G, NORANGE, "DISCARD ALL",
     "server_reset_query", R},
    {"server_reset_query_always", WP_KEY_BOOL, CFG(server_reset_query_always), G, 0, 1, "0",
     "server_reset_query_always", R},
    {"server_check_query", WP_KEY_STR, CFG(server_check_query), G, NORANGE, "",
     "server_check_query", R},
    {"connect_query", WP_KEY_STR, CFG(connect_query), G, NORANGE, "", "connect_query", R},
    {"connect_query", WP_KEY_STR, DBE(connect_query), D, NORANGE, NULL, "connect_query", R},
    {"application_name_add_host", WP_KEY_BOOL, CFG(application_name_add_host), G, 0, 1, "0",
     "application_name_add_host", R},
    {"server_check_delay", WP_KEY_DURATION, CFG(server_check_delay), G, DUR, "30s",
     "server_check_delay", R},
    {"server_connect_timeout", WP_KEY_DURATION, CFG(server_connect_timeout), G, DUR, "15s",
     "server_connect_timeout", R},
    {"server_login_retry", WP_KEY_DURATION, CFG(server_login_retry), G, DUR, "1s",
     "server_login_retry", R},
    {"client_login_timeout", WP_KEY_DURATION, CFG(client_login_timeout), G, DUR, "1min",
     "client_login_timeout", R},
    {"reserve_pool_timeout", WP_KEY_DURATION, CFG(reserve_pool_timeout), G, DUR, "5s",
     "reserve_pool_timeout", R},
    {"query_wait_notify", WP_KEY_DURATION, CFG(query_wait_notify), G, DUR, "5s",
     "query_wait_notify", R},
    {"shutdown_wait_timeout", WP_KEY_DURATION, CFG(shutdown_wait_timeout), G, DUR, "30s", NULL, R},
    {"suspend_timeout", WP_KEY_DURATION, CFG(suspend_timeout), G, DUR, "10s", "suspend_timeout", R},
    {"max_prepared_statements", WP_KEY_INT, CFG(max_prepared_statements), G, 0, INT_MAX, "200",
     "max_prepared_statements", R},
    {"warm_prepared_statements", WP_KEY_INT, CFG(warm_prepared_statements), G, 0, 10000, "50", NULL,
     R},
    {"ignore_startup_parameters", WP_KEY_LIST, CFG(ignore_startup_parameters), G, NORANGE, "",
     "ignore_startup_parameters", R},
    {"pkt_buf", WP_KEY_SIZE, CFG(pkt_buf), G, 4096, 64 * MB, "16kB", "pkt_buf", R},
    {"max_packet_size", WP_KEY_SIZE, CFG(max_packet_size), G, 4096, PACKET_MAX, "1GB",
     "max_packet_size", R},

    /* the fleet connection budget (fleet.c, docs/DEPLOY.md) */
    {"fleet_name", WP_KEY_STR, CFG(fleet_name), G, NORANGE, "", NULL, R},
    {"fleet_instance", WP_KEY_STR, CFG(fleet_instance), G, NORANGE, "", NULL, R},
    {"fleet_poll_interval", WP_KEY_DURATION, CFG(fleet_poll_interval), G, 100, 60 * SEC_MS, "2s",
     NULL, R},

    /* observability */
    {"stats_socket", WP_KEY_PATH, CFG(stats_socket), G, NORANGE, "", NULL, R},
    {"stats_listen", WP_KEY_STR, CFG(stats_listen), G, NORANGE, "", NULL, R},
    {"stats_socket_mode", WP_KEY_OCTAL, CFG(stats_socket_mode), G, 0, 07777, "0660", NULL, R},
    {"stats_top_statements", WP_KEY_INT, CFG(stats_top_statements), G, 0, 1000000, "1000", NULL, R},
    {"nplus1_threshold", WP_KEY_INT, CFG(nplus1_threshold), G, 0, INT_MAX, "10", NULL, R},
    {"nplus1_window_ms", WP_KEY_DURATION, CFG(nplus1_window_ms), G, DUR, "1s", NULL, R},
    {"nplus1_log_interval_ms", WP_KEY_DURATION, CFG(nplus1_log_interval_ms), G, DUR, "1min", NULL,
     R},
    {"log_slow_queries_ms", WP_KEY_DURATION, CFG(log_slow_queries_ms), G, DUR, "0", NULL, R},
    {"log_parameters", WP_KEY_BOOL, CFG(log_parameters), G, 0, 1, "0", NULL, R},
    {"log_pooler_errors", WP_KEY_BOOL, CFG(log_pooler_errors), G, 0, 1, "1", "log_pooler_errors",
     R},
    {"log_stats", WP_KEY_BOOL, CFG(log_stats), G, 0, 1, "1", "log_stats", R},
    {"stats_period", WP_KEY_DURATION, CFG(stats_period), G, 1000, DURATION_MAX, "1min",
     "stats_period", R},

    /* process and log */
    {"logfile", WP_KEY_PATH, CFG(logfile), G, NORANGE, "", "logfile", R},
    {"pidfile", WP_KEY_PATH, CFG(pidfile), G, NORANGE, "", "pidfile", 0},
    /* At most 100 000: a derivation runs on the event loop (once per user and password). */
    {"scram_iterations", WP_KEY_INT, CFG(scram_iterations), G, 1, 100000, "4096",
     "scram_iterations", R},
    {"verbose", WP_KEY_INT, CFG(verbose), G, 0, 3, "0", "verbose", R}, /* PgBouncer's -vvv */
    {"log_connections", WP_KEY_BOOL, CFG(log_connections), G, 0, 1, "1", "log_connections", R},
    {"log_disconnections", WP_KEY_BOOL, CFG(log_disconnections), G, 0, 1, "1", "log_disconnections",
     R},
    {"log_format", WP_KEY_STR, CFG(log_format), G, NORANGE, "text", NULL, R},
    {"syslog", WP_KEY_BOOL, CFG(syslog), G, 0, 1, "0", "syslog", R},
    {"syslog_ident", WP_KEY_STR, CFG(syslog_ident), G, NORANGE, "warmpool", "syslog_ident", R},
    {"syslog_facility", WP_KEY_STR, CFG(syslog_facility), G, NORANGE, "daemon", "syslog_facility",
     R},

    /* PgBouncer 1.25 keys accepted without effect (docs/CONFIG.md says why for each) */
    IGNORED("auth_ident_file", G, ""),
    IGNORED("auth_ldap_options", G, ""),
    IGNORED("autodb_idle_timeout", G, "3600"),
    IGNORED("cancel_wait_timeout", G, "10"),
    IGNORED("client_tls13_ciphers", G, ""),
    IGNORED("client_tls_dheparams", G, "auto"),
    IGNORED("client_tls_ecdhcurve", G, "auto"),
    IGNORED("conffile", G, ""),
    IGNORED_FIXED("disable_pqexec", G, "0"),
    IGNORED("dns_max_ttl", G, "15"),
    IGNORED("dns_nxdomain_ttl", G, "15"),
    IGNORED("dns_zone_check_period", G, "0"),
    IGNORED_FIXED("job_name", G, "pgbouncer"),
    IGNORED_FIXED("resolv_conf", G, ""),
    IGNORED("sbuf_loopcnt", G, "5"),
    IGNORED("server_fast_close", G, "0"),
    IGNORED("server_tls13_ciphers", G, ""),
    IGNORED("server_tls_ciphers", G, "default"),
    IGNORED("service_name", G, "pgbouncer"),
    IGNORED("tcp_defer_accept", G, "1"),
    IGNORED("tcp_socket_buffer", G, "0"),
    IGNORED_FIXED("track_extra_parameters", G, "IntervalStyle"),
    IGNORED_FIXED("unix_socket_group", G, ""),
    IGNORED_FIXED("user", G, ""),
};

const int wp_nkeys = (int)(sizeof wp_keys / sizeof wp_keys[0]);
_Static_assert(sizeof wp_keys / sizeof wp_keys[0] <= WP_KEYS_MAX, "raise WP_KEYS_MAX");

int config_key_find(const char *name, unsigned sections)
{
    for (int i = 0; i < wp_nkeys; i++)
        if ((wp_keys[i].sections & sections) && strcasecmp(wp_keys[i].name, name) == 0)
            return i;
    return -1;
}

int config_key_canonical(int i)
{
    if (wp_keys[i].base == WP_KEY_NOWHERE)
        return i;
    for (int j = 0; j < i; j++)
        if (wp_keys[j].base == wp_keys[i].base && wp_keys[j].off == wp_keys[i].off)
            return j;
    return i;
}

const void *config_key_field(const struct wp_config *cfg, const struct wp_key *k)
{
    switch (k->base) {
    case WP_KEY_IN_CONFIG:
        return (const char *)cfg + k->off;
    case WP_KEY_IN_POOL:
        return (const char *)&cfg->pool + k->off;
    default:
        return NULL;
    }
}

enum wp_key_settable config_key_settable(const char *name, int *row, char *err, size_t errlen)
{
    *row = config_key_find(name, WP_SEC_GLOBAL);
    if (*row < 0) {
        snprintf(err, errlen, "unknown configuration key \"%.64s\"", name);
        return WP_KEY_UNKNOWN;
    }
    if (!(wp_keys[*row].flags & WP_KEY_RELOADS)) {
        snprintf(err, errlen, "%s cannot be changed without a restart", wp_keys[*row].name);
        return WP_KEY_NEEDS_RESTART;
    }
    return WP_KEY_SETTABLE;
}

int config_key_shown(const struct wp_key *k)
{
    return (k->sections & WP_SEC_GLOBAL) && !(k->flags & WP_KEY_ALIAS) &&
           (k->base == WP_KEY_IN_CONFIG || k->base == WP_KEY_IN_POOL);
}

/* The largest unit that divides v exactly: 90000 → "90s", 120000 → "2min". */
static void format_unit(char *out, size_t len, int64_t v, const char *const *names,
                        const int64_t *factors, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        if (v != 0 && v % factors[i] == 0) {
            snprintf(out, len, "%lld%s", (long long)(v / factors[i]), names[i]);
            return;
        }
    }
    snprintf(out, len, "%lld", (long long)v);
}

/* A duration or size: with warmpool's unit, or as PgBouncer prints it — seconds as a
   C "%g" of the fraction (PgBouncer keeps microseconds and prints them so: "0.5",
   "3600", "3.1536e+07"), a milliseconds key and a size as a plain integer. */
static void format_amount(const struct wp_key *k, int64_t v, enum wp_key_style style, char *out,
                          size_t len)
{
    static const char *const dur_names[] = {"ms", "s", "min", "h", "d"};
    static const int64_t dur_factors[] = {1, SEC_MS, 60 * SEC_MS, 3600 * SEC_MS, DAY_MS};
    static const char *const size_names[] = {"", "kB", "MB", "GB"};
    static const int64_t size_factors[] = {1, KB, MB, GB};

    if (style == WP_KEY_STYLE_PGBOUNCER && k->type == WP_KEY_DURATION &&
        !(k->flags & WP_KEY_BARE_MS))
        snprintf(out, len, "%g", (double)v / SEC_MS);
    else if (style == WP_KEY_STYLE_PGBOUNCER)
        snprintf(out, len, "%lld", (long long)v);
    else if (k->type == WP_KEY_DURATION)
        format_unit(out, len, v, dur_names, dur_factors, 5);
    else
        format_unit(out, len, v, size_names, size_factors, 4);
}

static void format_list(char *out, size_t len, char *const *list)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; list && list[i] && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%s", i ? ", " : "", list[i]);
}

const char *config_key_empty_text(const struct wp_key *k)
{
    /* PgBouncer's default check query; an empty value there turns the check off. */
    return strcmp(k->name, "server_check_query") == 0 ? "<empty>" : NULL;
}

static void format_string(const struct wp_key *k, const char *s, enum wp_key_style style, char *out,
                          size_t len)
{
    const char *empty = style == WP_KEY_STYLE_PGBOUNCER ? config_key_empty_text(k) : NULL;
    snprintf(out, len, "%s", s && *s ? s : empty ? empty : "");
}

/* The enumerations and the plain numbers. A file mode is octal in warmpool's style, and
   decimal in PgBouncer's (its value column says 511 for 0777). */
static void format_int(const struct wp_key *k, int v, enum wp_key_style style, char *out,
                       size_t len)
{
    switch (k->type) {
    case WP_KEY_OCTAL:
        snprintf(out, len, style == WP_KEY_STYLE_PGBOUNCER ? "%d" : "%04o", v);
        break;
    case WP_KEY_MODE:
        snprintf(out, len, "%s", config_mode_name(v));
        break;
    case WP_KEY_PIN:
        snprintf(out, len, "%s", config_pin_name(v));
        break;
    case WP_KEY_AUTH:
        snprintf(out, len, "%s", config_auth_name(v));
        break;
    case WP_KEY_LB:
        snprintf(out, len, "%s", hosts_lb_name(v));
        break;
    case WP_KEY_SSLMODE:
        snprintf(out, len, "%s",
                 v >= 0 && v <= WP_SSLMODE_VERIFY_FULL ? tls_sslmode_names[v] : "unknown");
        break;
    default:
        snprintf(out, len, "%d", v);
        break;
    }
}

const char *config_key_format(const struct wp_config *cfg, const struct wp_key *k,
                              enum wp_key_style style, char *out, size_t len)
{
    const void *field = config_key_field(cfg, k);

    out[0] = '\0';
    if (!field)
        return k->name;
    switch (k->type) {
    case WP_KEY_STR:
    case WP_KEY_PATH:
        format_string(k, *(char *const *)field, style, out, len);
        break;
    case WP_KEY_LIST:
        format_list(out, len, *(char **const *)field);
        break;
    case WP_KEY_DURATION:
    case WP_KEY_SIZE:
        format_amount(k, *(const int64_t *)field, style, out, len);
        break;
    case WP_KEY_NO_EFFECT:
        break;
    default:
        format_int(k, *(const int *)field, style, out, len);
        break;
    }
    return k->name;
}

const char *config_key_format_default(const struct wp_key *k, enum wp_key_style style, char *out,
                                      size_t len)
{
    int64_t v;

    if (!k->dflt || style == WP_KEY_STYLE_UNITS)
        return k->dflt;
    if ((k->type == WP_KEY_STR || k->type == WP_KEY_PATH) && !*k->dflt) {
        format_string(k, k->dflt, style, out, len);
        return out;
    }
    if ((k->type != WP_KEY_DURATION && k->type != WP_KEY_SIZE) ||
        config_parse_number(k, k->dflt, &v) < 0)
        return k->dflt;
    format_amount(k, v, style, out, len);
    return out;
}
