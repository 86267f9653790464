/*
 * config — reads warmpool.ini into a validated struct wp_config
 * (include/warmpool/config.h, docs/CONFIG.md).
 *
 * inih splits the file into (section, key, value) triples; everything else is here.
 * Our reader callback hands inih one physical line at a time and counts them, so every
 * message can name `file:line`, and it also classifies the line itself: inih only
 * remembers the *first* syntax error and never calls us for it, while an operator
 * wants every broken line listed. Parsing never stops at an error; the whole file is
 * checked, then cross-key rules are validated, and config_load fails if anything
 * was reported.
 *
 * [warmpool] keys are one table (type, target field, range, where allowed). The same
 * table drives the per-database and per-user overrides. [databases] values are libpq
 * conninfo strings: we split them with libpq's quoting rules, take out warmpool's
 * own keys, and let PQconninfoParse() judge the remaining keywords.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>
#include <libpq-fe.h>

#include "warmpool/config.h"
#include "warmpool/log.h"
#include "warmpool/tls.h"

/* Long enough for any sane connection string. A longer line is reported rather
   than silently split in two, which is what inih does with a full buffer. */
#define MAX_LINE 65536

#define SEC_MS 1000LL
#define DAY_MS (86400LL * SEC_MS)
/* Bounded so that callers may convert to microseconds or timevals without overflow. */
#define DURATION_MAX (365LL * DAY_MS)
#define KB 1024LL
#define MB (1024LL * KB)
#define GB (1024LL * MB)

/* ---------------------------------------------------------------- key table */

enum kind {
    K_STR,      /* char *, may be "" */
    K_PATH,     /* char *, "" means unset (NULL) */
    K_LIST,     /* char **, comma separated */
    K_INT,      /* int, decimal */
    K_OCTAL,    /* int, file mode */
    K_BOOL,     /* int 0/1 */
    K_MODE,     /* int, enum wp_pool_mode */
    K_PIN,      /* int, enum wp_pin_mode */
    K_AUTH,     /* int, enum wp_auth_type */
    K_SSLMODE,  /* int, enum wp_sslmode */
    K_DURATION, /* int64_t milliseconds */
    K_SIZE,     /* int64_t bytes */
};

/* Which struct a key's offset is relative to. */
enum base { B_CONFIG, B_POOL, B_USER, B_DB };

/* Where a key may appear. */
#define IN_GLOBAL 1u
#define IN_DB 2u
#define IN_USER 4u
#define IN_ALL (IN_GLOBAL | IN_DB | IN_USER)

struct key_def {
    const char *name;
    enum kind kind;
    enum base base;
    size_t off;
    unsigned where;
    int64_t min, max; /* numeric kinds only */
};

#define CFG(f) B_CONFIG, offsetof(struct wp_config, f)
#define POOL(f) B_POOL, offsetof(struct wp_pool_settings, f)
#define USR(f) B_USER, offsetof(struct wp_user_config, f)
#define DBE(f) B_DB, offsetof(struct wp_db_config, f)
#define DUR 0, DURATION_MAX

/* Aliases are extra rows pointing at the same field; the first row for a field is
   its canonical name (used for duplicate detection and validation messages). */
static const struct key_def keys[] = {
    {"listen_addr", K_STR, CFG(listen_addr), IN_GLOBAL, 0, 0},
    {"listen_port", K_INT, CFG(listen_port), IN_GLOBAL, 1, 65535},
    {"unix_socket_dir", K_STR, CFG(unix_socket_dir), IN_GLOBAL, 0, 0},
    {"unix_socket_mode", K_OCTAL, CFG(unix_socket_mode), IN_GLOBAL, 0, 07777},
    {"listen_backlog", K_INT, CFG(listen_backlog), IN_GLOBAL, 1, INT_MAX},
    {"so_reuseport", K_BOOL, CFG(so_reuseport), IN_GLOBAL, 0, 1},
    {"max_client_conn", K_INT, CFG(max_client_conn), IN_GLOBAL, 1, INT_MAX},
    {"auth_type", K_AUTH, CFG(auth_type), IN_GLOBAL, 0, 0},
    {"auth_file", K_PATH, CFG(auth_file), IN_GLOBAL, 0, 0},
    {"auth_hba_file", K_PATH, CFG(auth_hba_file), IN_GLOBAL, 0, 0},
    {"admin_users", K_LIST, CFG(admin_users), IN_GLOBAL, 0, 0},
    {"stats_users", K_LIST, CFG(stats_users), IN_GLOBAL, 0, 0},
    {"auth_user", K_PATH, CFG(auth_user), IN_GLOBAL, 0, 0},
    {"auth_user", K_PATH, DBE(auth_user), IN_DB, 0, 0},
    {"auth_query", K_STR, CFG(auth_query), IN_GLOBAL, 0, 0},
    {"auth_query", K_STR, DBE(auth_query), IN_DB, 0, 0},
    {"auth_dbname", K_PATH, CFG(auth_dbname), IN_GLOBAL, 0, 0},
    {"auth_dbname", K_PATH, DBE(auth_dbname), IN_DB, 0, 0},
    {"auth_query_cache_ttl", K_DURATION, CFG(auth_query_cache_ttl), IN_GLOBAL, DUR},
    {"client_tls_sslmode", K_SSLMODE, CFG(client_tls_sslmode), IN_GLOBAL, 0, 0},
    {"client_tls_key_file", K_PATH, CFG(client_tls_key_file), IN_GLOBAL, 0, 0},
    {"client_tls_cert_file", K_PATH, CFG(client_tls_cert_file), IN_GLOBAL, 0, 0},
    {"client_tls_ca_file", K_PATH, CFG(client_tls_ca_file), IN_GLOBAL, 0, 0},
    {"client_tls_protocols", K_STR, CFG(client_tls_protocols), IN_GLOBAL, 0, 0},
    {"client_tls_ciphers", K_STR, CFG(client_tls_ciphers), IN_GLOBAL, 0, 0},

    {"pool_mode", K_MODE, POOL(pool_mode), IN_ALL, 0, 0},
    {"min_pool_size", K_INT, POOL(min_pool_size), IN_ALL, 0, INT_MAX},
    {"max_pool_size", K_INT, POOL(max_pool_size), IN_ALL, 1, INT_MAX},
    {"default_pool_size", K_INT, POOL(max_pool_size), IN_GLOBAL, 1, INT_MAX},
    {"pool_size", K_INT, POOL(max_pool_size), IN_DB | IN_USER, 1, INT_MAX},
    {"reserve_pool_size", K_INT, POOL(reserve_pool_size), IN_ALL, 0, INT_MAX},
    {"max_db_connections", K_INT, POOL(max_db_connections), IN_GLOBAL | IN_DB, 0, INT_MAX},
    {"max_user_connections", K_INT, CFG(max_user_connections), IN_GLOBAL, 0, INT_MAX},
    {"max_user_connections", K_INT, USR(max_user_connections), IN_USER, 0, INT_MAX},
    {"query_timeout", K_DURATION, POOL(query_timeout), IN_ALL, DUR},
    {"query_wait_timeout", K_DURATION, POOL(query_wait_timeout), IN_ALL, DUR},
    {"client_idle_timeout", K_DURATION, POOL(client_idle_timeout), IN_ALL, DUR},
    {"idle_transaction_timeout", K_DURATION, POOL(idle_transaction_timeout), IN_ALL, DUR},
    {"pinned_idle_timeout", K_DURATION, POOL(pinned_idle_timeout), IN_ALL, DUR},
    {"server_lifetime", K_DURATION, POOL(server_lifetime), IN_ALL, DUR},
    {"server_idle_timeout", K_DURATION, POOL(server_idle_timeout), IN_ALL, DUR},

    {"pin_session_state", K_PIN, CFG(pin_session_state), IN_GLOBAL, 0, 0},
    {"server_reset_query", K_STR, CFG(server_reset_query), IN_GLOBAL, 0, 0},
    {"server_reset_query_always", K_BOOL, CFG(server_reset_query_always), IN_GLOBAL, 0, 1},
    {"server_check_query", K_STR, CFG(server_check_query), IN_GLOBAL, 0, 0},
    {"server_check_delay", K_DURATION, CFG(server_check_delay), IN_GLOBAL, DUR},
    {"server_connect_timeout", K_DURATION, CFG(server_connect_timeout), IN_GLOBAL, DUR},
    {"server_login_retry", K_DURATION, CFG(server_login_retry), IN_GLOBAL, DUR},
    {"client_login_timeout", K_DURATION, CFG(client_login_timeout), IN_GLOBAL, DUR},
    {"reserve_pool_timeout", K_DURATION, CFG(reserve_pool_timeout), IN_GLOBAL, DUR},
    {"shutdown_wait_timeout", K_DURATION, CFG(shutdown_wait_timeout), IN_GLOBAL, DUR},
    {"max_prepared_statements", K_INT, CFG(max_prepared_statements), IN_GLOBAL, 0, INT_MAX},
    {"warm_prepared_statements", K_INT, CFG(warm_prepared_statements), IN_GLOBAL, 0, 10000},
    {"ignore_startup_parameters", K_LIST, CFG(ignore_startup_parameters), IN_GLOBAL, 0, 0},
    {"pkt_buf", K_SIZE, CFG(pkt_buf), IN_GLOBAL, 4096, 64 * MB},
    {"max_packet_size", K_SIZE, CFG(max_packet_size), IN_GLOBAL, 4096, GB},

    {"stats_socket", K_PATH, CFG(stats_socket), IN_GLOBAL, 0, 0},
    {"stats_listen", K_STR, CFG(stats_listen), IN_GLOBAL, 0, 0},
    {"stats_socket_mode", K_OCTAL, CFG(stats_socket_mode), IN_GLOBAL, 0, 07777},
    {"stats_top_statements", K_INT, CFG(stats_top_statements), IN_GLOBAL, 0, 1000000},
    {"nplus1_threshold", K_INT, CFG(nplus1_threshold), IN_GLOBAL, 0, INT_MAX},
    {"nplus1_window_ms", K_DURATION, CFG(nplus1_window_ms), IN_GLOBAL, DUR},
    {"nplus1_log_interval_ms", K_DURATION, CFG(nplus1_log_interval_ms), IN_GLOBAL, DUR},
    {"log_slow_queries_ms", K_DURATION, CFG(log_slow_queries_ms), IN_GLOBAL, DUR},
    {"log_parameters", K_BOOL, CFG(log_parameters), IN_GLOBAL, 0, 1},

    {"logfile", K_PATH, CFG(logfile), IN_GLOBAL, 0, 0},
    {"pidfile", K_PATH, CFG(pidfile), IN_GLOBAL, 0, 0},
    {"verbose", K_INT, CFG(verbose), IN_GLOBAL, 0, 2},
    {"log_format", K_STR, CFG(log_format), IN_GLOBAL, 0, 0},
    {"syslog", K_BOOL, CFG(syslog), IN_GLOBAL, 0, 1},
    {"syslog_ident", K_STR, CFG(syslog_ident), IN_GLOBAL, 0, 0},
    {"syslog_facility", K_STR, CFG(syslog_facility), IN_GLOBAL, 0, 0},
};

#define NKEYS ((int)(sizeof keys / sizeof keys[0]))

/* Keys an earlier version documented but that never did anything. Files that set
   them to the one value matching what warmpool really does still load (an upgrade
   should not break on `workers = 1`); any other value is refused, so that no key is
   accepted and then ignored. */
struct fixed_key {
    const char *name;
    const char *only; /* the accepted value */
    const char *why;  /* the message for any other */
};

static const struct fixed_key fixed_keys[] = {
    {"workers", "1", "only 1 is supported in this version"},
};

#define NFIXED ((int)(sizeof fixed_keys / sizeof fixed_keys[0]))

static const char *const mode_names[] = {"session", "transaction", "statement", NULL};
static const char *const pin_names[] = {"off", "on", "log", NULL};
static const char *const auth_names[] = {"trust", "md5", "scram-sha-256", "plain", "cert", NULL};

static int find_key(const char *name, unsigned where)
{
    for (int i = 0; i < NKEYS; i++)
        if ((keys[i].where & where) && strcasecmp(keys[i].name, name) == 0)
            return i;
    return -1;
}

/* First row that targets the same field as row i. */
static int canonical_key(int i)
{
    for (int j = 0; j < i; j++)
        if (keys[j].base == keys[i].base && keys[j].off == keys[i].off)
            return j;
    return i;
}

/* ---------------------------------------------------------------- errors */

enum section { SEC_NONE, SEC_GLOBAL, SEC_DATABASES, SEC_USERS, SEC_UNKNOWN };

struct loader {
    struct wp_config *cfg;
    const char *path;
    FILE *fp;
    int lineno;                /* line last returned by the reader = line being handled */
    enum section section;      /* tracked by the reader, so it follows our own rules */
    const char *section_label; /* "warmpool" or "pgbouncer", for messages */
    int global_line;           /* first [warmpool] header: where to blame unset defaults */
    int key_line[NKEYS];       /* line each [warmpool] key was set on, 0 = default */
    int fixed_line[NFIXED];    /* the same for fixed_keys */
    struct wp_db_config *db;   /* the [databases] entry being parsed (B_DB keys) */
    char *err;
    size_t errlen, errused;
    int nerrors, ndropped;
    bool oom;
};

/* Room kept free for the "(N more errors not shown)" line, so a truncated list
   always says so. */
#define DROPPED_NOTE_ROOM 40

/* Appends one finished "file:line: message\n". Only whole messages are kept, except
   that a first message is truncated rather than leaving err empty. */
static void append_error(struct loader *ld, const char *msg)
{
    size_t len = strlen(msg);
    size_t room = ld->errlen > 4 * DROPPED_NOTE_ROOM ? ld->errlen - DROPPED_NOTE_ROOM : ld->errlen;

    if (!ld->err || ld->errlen == 0)
        return;
    if (ld->errused + len >= room) {
        if (ld->errused > 0) {
            ld->ndropped++;
            return;
        }
        if (len > ld->errlen - 1)
            len = ld->errlen - 1;
    }
    memcpy(ld->err + ld->errused, msg, len);
    ld->errused += len;
    ld->err[ld->errused] = '\0';
}

__attribute__((format(printf, 3, 4))) static void report(struct loader *ld, int line,
                                                         const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    int n;

    if (line > 0)
        n = snprintf(msg, sizeof msg, "%s:%d: ", ld->path, line);
    else
        n = snprintf(msg, sizeof msg, "%s: ", ld->path);
    if (n < 0 || (size_t)n >= sizeof msg)
        n = 0;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);

    size_t len = strlen(msg);
    if (len > sizeof msg - 2)
        len = sizeof msg - 2;
    msg[len] = '\n';
    msg[len + 1] = '\0';
    ld->nerrors++;
    append_error(ld, msg);
}

static void report_dropped(struct loader *ld)
{
    char msg[64];

    if (ld->ndropped == 0)
        return;
    snprintf(msg, sizeof msg, "(%d more errors not shown)\n", ld->ndropped);
    size_t len = strlen(msg);
    if (ld->err && ld->errused + len < ld->errlen) {
        memcpy(ld->err + ld->errused, msg, len + 1);
        ld->errused += len;
    }
}

static char *dup_str(struct loader *ld, const char *s)
{
    char *copy = strdup(s);

    if (!copy)
        ld->oom = true;
    return copy;
}

/* ---------------------------------------------------------------- value parsing */

static const char *skip_space(const char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

/* Unsigned decimal digits at *p; advances *p. -1 when there are none or on overflow. */
static int parse_digits(const char **p, int64_t *out)
{
    const char *s = *p;
    int64_t n = 0;

    if (!isdigit((unsigned char)*s))
        return -1;
    for (; isdigit((unsigned char)*s); s++) {
        int d = *s - '0';
        if (n > (INT64_MAX - d) / 10)
            return -1;
        n = n * 10 + d;
    }
    *p = s;
    *out = n;
    return 0;
}

struct unit {
    const char *name;
    int64_t factor;
};

/* PostgreSQL's GUC units; a bare number is seconds, as in PgBouncer. */
static const struct unit duration_units[] = {
    {"", SEC_MS},         {"ms", 1},     {"s", SEC_MS}, {"min", 60 * SEC_MS},
    {"h", 3600 * SEC_MS}, {"d", DAY_MS}, {NULL, 0},
};

static const struct unit size_units[] = {
    {"", 1}, {"B", 1}, {"kB", KB}, {"MB", MB}, {"GB", GB}, {"TB", 1024 * GB}, {NULL, 0},
};

/* "<digits> [unit]" with optional blanks around; no sign, no fraction. */
static int parse_with_unit(const char *text, const struct unit *units, int64_t *out)
{
    const char *p;
    int64_t n;

    if (!text)
        return -1;
    p = skip_space(text);
    if (parse_digits(&p, &n) < 0)
        return -1;
    p = skip_space(p);
    size_t len = strlen(p);
    while (len > 0 && isspace((unsigned char)p[len - 1]))
        len--;
    for (const struct unit *u = units; u->name; u++) {
        if (strlen(u->name) != len || strncasecmp(p, u->name, len) != 0)
            continue;
        if (n > INT64_MAX / u->factor)
            return -1;
        *out = n * u->factor;
        return 0;
    }
    return -1;
}

int config_parse_duration(const char *text, int64_t *ms)
{
    return parse_with_unit(text, duration_units, ms);
}

int config_parse_size(const char *text, int64_t *bytes)
{
    return parse_with_unit(text, size_units, bytes);
}

/* Decimal integer with optional '-', nothing else. */
static int parse_integer(const char *text, int64_t *out)
{
    const char *p = text;
    bool neg = *p == '-';
    int64_t n;

    if (neg)
        p++;
    if (parse_digits(&p, &n) < 0 || *p != '\0')
        return -1;
    *out = neg ? -n : n;
    return 0;
}

static int parse_octal(const char *text, int64_t *out)
{
    int64_t n = 0;

    if (!*text)
        return -1;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '7' || n > 077777)
            return -1;
        n = n * 8 + (*p - '0');
    }
    *out = n;
    return 0;
}

static int parse_bool(const char *text, int64_t *out)
{
    static const char *const yes[] = {"1", "true", "on", "yes", NULL};
    static const char *const no[] = {"0", "false", "off", "no", NULL};

    for (int i = 0; yes[i]; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int parse_enum(const char *text, const char *const *names, int64_t *out)
{
    for (int i = 0; names[i]; i++) {
        if (strcasecmp(text, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return -1;
}

static void free_list(char **list)
{
    if (!list)
        return;
    for (char **p = list; *p; p++)
        free(*p);
    free(list);
}

/* "a, b,,c" → {"a","b","c",NULL}; never NULL except on out-of-memory. */
static char **split_list(const char *text)
{
    size_t cap = 2;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    char **list = calloc(cap, sizeof *list);
    if (!list)
        return NULL;

    size_t n = 0;
    const char *p = text;
    for (;;) {
        const char *item = skip_space(p);
        const char *end = item + strcspn(item, ",");
        const char *next = *end ? end + 1 : NULL;
        while (end > item && isspace((unsigned char)end[-1]))
            end--;
        if (end > item && !(list[n++] = strndup(item, (size_t)(end - item)))) {
            free_list(list);
            return NULL;
        }
        if (!next)
            return list;
        p = next;
    }
}

/* ---------------------------------------------------------------- setting values */

/* Bound in the unit a human would write: "365d", "4kB", or a plain number. */
static void format_bound(const struct key_def *k, int64_t v, char *buf, size_t len)
{
    const struct unit *units = k->kind == K_DURATION ? duration_units
                               : k->kind == K_SIZE   ? size_units
                                                     : NULL;
    const struct unit *best = NULL;

    for (const struct unit *u = units ? units + 1 : NULL; u && u->name; u++)
        if (v % u->factor == 0 && (!best || u->factor > best->factor))
            best = u;
    if (best && v != 0)
        snprintf(buf, len, "%" PRId64 "%s", v / best->factor, best->name);
    else
        snprintf(buf, len, "%" PRId64, v);
}

static const char *kind_hint(enum kind kind)
{
    switch (kind) {
    case K_INT:
        return "is not an integer";
    case K_OCTAL:
        return "is not an octal file mode (e.g. 0777)";
    case K_BOOL:
        return "is not a boolean (use 1/0, true/false, on/off, yes/no)";
    case K_MODE:
        return "is not a pool mode (session, transaction, statement)";
    case K_PIN:
        return "is not on, off or log";
    case K_AUTH:
        return "is not an auth type (trust, md5, scram-sha-256, plain, cert)";
    case K_SSLMODE:
        return "is not an sslmode (disable, allow, prefer, require, verify-ca, verify-full)";
    case K_DURATION:
        return "is not a duration (e.g. 250ms, 5s, 10min, 1h, 2d; bare number = seconds)";
    case K_SIZE:
        return "is not a size (e.g. 512, 16kB, 8MB, 1GB)";
    default:
        return "is not valid";
    }
}

static int parse_number(const struct key_def *k, const char *value, int64_t *v)
{
    switch (k->kind) {
    case K_INT:
        return parse_integer(value, v);
    case K_OCTAL:
        return parse_octal(value, v);
    case K_BOOL:
        return parse_bool(value, v);
    case K_MODE:
        return parse_enum(value, mode_names, v);
    case K_PIN:
        return parse_enum(value, pin_names, v);
    case K_AUTH:
        return parse_enum(value, auth_names, v);
    case K_SSLMODE:
        return parse_enum(value, tls_sslmode_names, v);
    case K_DURATION:
        return config_parse_duration(value, v);
    case K_SIZE:
        return config_parse_size(value, v);
    default:
        return -1;
    }
}

static bool set_number(struct loader *ld, const struct key_def *k, void *field, const char *value,
                       const char *who)
{
    int64_t v;
    char bound[32];

    if (parse_number(k, value, &v) < 0) {
        report(ld, ld->lineno, "%s%s: \"%s\" %s", who, k->name, value, kind_hint(k->kind));
        return false;
    }
    if (k->min != k->max && (v < k->min || v > k->max)) {
        bool low = v < k->min;
        format_bound(k, low ? k->min : k->max, bound, sizeof bound);
        report(ld, ld->lineno, "%s%s: \"%s\" is %s (%s %s)", who, k->name, value,
               low ? "too small" : "too large", low ? "minimum" : "maximum", bound);
        return false;
    }
    if (k->kind == K_DURATION || k->kind == K_SIZE)
        *(int64_t *)field = v;
    else
        *(int *)field = (int)v;
    return true;
}

static bool set_value(struct loader *ld, const struct key_def *k, void *base, const char *value,
                      const char *who)
{
    void *field = (char *)base + k->off;

    switch (k->kind) {
    case K_STR:
    case K_PATH: {
        char *copy = (k->kind == K_PATH && !*value) ? NULL : dup_str(ld, value);
        free(*(char **)field);
        *(char **)field = copy;
        return true;
    }
    case K_LIST: {
        char **list = split_list(value);
        if (!list) {
            ld->oom = true;
            return false;
        }
        free_list(*(char ***)field);
        *(char ***)field = list;
        return true;
    }
    default:
        return set_number(ld, k, field, value, who);
    }
}

/* ---------------------------------------------------------------- [warmpool] */

/* A fixed key: true when `name` is one (reported if its value is not the accepted one). */
static bool parse_fixed_key(struct loader *ld, const char *name, const char *value)
{
    for (int i = 0; i < NFIXED; i++) {
        const struct fixed_key *k = &fixed_keys[i];
        if (strcasecmp(k->name, name) != 0)
            continue;
        if (ld->fixed_line[i])
            report(ld, ld->lineno, "duplicate key \"%s\" (already set on line %d)", name,
                   ld->fixed_line[i]);
        else if (strcmp(skip_space(value), k->only) != 0)
            report(ld, ld->lineno, "%s: %s", k->name, k->why);
        ld->fixed_line[i] = ld->lineno;
        return true;
    }
    return false;
}

static void parse_global_key(struct loader *ld, const char *name, const char *value)
{
    int i = find_key(name, IN_GLOBAL);

    if (i < 0 && parse_fixed_key(ld, name, value))
        return;
    if (i < 0) {
        report(ld, ld->lineno, "unknown key \"%s\" in [%s]", name, ld->section_label);
        return;
    }
    int c = canonical_key(i);
    if (ld->key_line[c] && i == c) {
        report(ld, ld->lineno, "duplicate key \"%s\" (already set on line %d)", name,
               ld->key_line[c]);
        return;
    }
    if (ld->key_line[c]) {
        report(ld, ld->lineno, "duplicate key \"%s\": %s is already set on line %d", name,
               keys[c].name, ld->key_line[c]);
        return;
    }
    ld->key_line[c] = ld->lineno;
    void *base = keys[i].base == B_POOL ? (void *)&ld->cfg->pool : (void *)ld->cfg;
    set_value(ld, &keys[i], base, value, "");
}

/* ---------------------------------------------------------------- key=value strings */

struct pair {
    char *key; /* NULL once taken out */
    char *val;
};

struct pairs {
    struct pair *v;
    int n, cap;
};

static void pairs_free(struct pairs *kv)
{
    for (int i = 0; i < kv->n; i++) {
        free(kv->v[i].key);
        free(kv->v[i].val);
    }
    free(kv->v);
    memset(kv, 0, sizeof *kv);
}

static int pairs_add(struct pairs *kv, char *key, char *val)
{
    if (kv->n == kv->cap) {
        int cap = kv->cap ? kv->cap * 2 : 8;
        struct pair *v = realloc(kv->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        kv->v = v;
        kv->cap = cap;
    }
    kv->v[kv->n].key = key;
    kv->v[kv->n].val = val;
    kv->n++;
    return 0;
}

/* One value by libpq's rules: 'quoted' (may hold blanks) or bare up to a blank;
   a backslash escapes the next character in both. */
static char *read_value(const char **pp, const char **why)
{
    const char *p = *pp;
    char *val = malloc(strlen(p) + 1);
    char *out = val;
    bool quoted = *p == '\'';

    if (!val) {
        *why = "out of memory";
        return NULL;
    }
    if (quoted)
        p++;
    for (;;) {
        if (*p == '\0') {
            if (quoted) {
                free(val);
                *why = "unterminated quoted value (missing closing ')";
                return NULL;
            }
            break;
        }
        if (quoted && *p == '\'') {
            p++;
            break;
        }
        if (!quoted && isspace((unsigned char)*p))
            break;
        if (*p == '\\' && p[1] != '\0')
            p++;
        *out++ = *p++;
    }
    *out = '\0';
    *pp = p;
    return val;
}

/* Split "k=v k2='a b'" as libpq does. Messages never quote the text itself: a
   stray word may be half of a password. */
static int split_pairs(const char *text, struct pairs *kv, const char **why)
{
    const char *p = text;

    for (;;) {
        p = skip_space(p);
        if (!*p)
            return 0;
        const char *key = p;
        while (*p && *p != '=' && !isspace((unsigned char)*p))
            p++;
        size_t keylen = (size_t)(p - key);
        p = skip_space(p);
        if (*p != '=') {
            *why = "expected key=value but found a word without \"=\" "
                   "(quote values that contain blanks: key='a b')";
            return -1;
        }
        if (keylen == 0) {
            *why = "missing keyword before \"=\"";
            return -1;
        }
        p = skip_space(p + 1);
        char *val = read_value(&p, why);
        if (!val)
            return -1;
        char *k = strndup(key, keylen);
        if (!k || pairs_add(kv, k, val) < 0) {
            free(k);
            free(val);
            *why = "out of memory";
            return -1;
        }
    }
}

static void init_overrides(struct wp_pool_settings *s)
{
    s->pool_mode = WP_MODE_UNSET;
    s->min_pool_size = WP_UNSET;
    s->max_pool_size = WP_UNSET;
    s->reserve_pool_size = WP_UNSET;
    s->max_db_connections = WP_UNSET;
    s->query_timeout = WP_UNSET;
    s->query_wait_timeout = WP_UNSET;
    s->client_idle_timeout = WP_UNSET;
    s->idle_transaction_timeout = WP_UNSET;
    s->pinned_idle_timeout = WP_UNSET;
    s->server_lifetime = WP_UNSET;
    s->server_idle_timeout = WP_UNSET;
}

/* Applies and removes every pair that is a warmpool key allowed `where`. `user` is
   only needed for IN_USER. Returns false if any of them was bad. */
static bool take_pool_keys(struct loader *ld, struct pairs *kv, unsigned where,
                           struct wp_pool_settings *pool, struct wp_user_config *user,
                           const char *who)
{
    bool seen[NKEYS] = {false};
    bool ok = true;

    for (int j = 0; j < kv->n; j++) {
        struct pair *pr = &kv->v[j];
        int i = find_key(pr->key, where);
        if (i < 0)
            continue;
        int c = canonical_key(i);
        if (seen[c]) {
            report(ld, ld->lineno, "%s%s is given twice", who, keys[c].name);
            ok = false;
        } else {
            seen[c] = true;
            void *base = keys[i].base == B_USER ? (void *)user
                         : keys[i].base == B_DB ? (void *)ld->db
                                                : (void *)pool;
            ok = set_value(ld, &keys[i], base, pr->val, who) && ok;
        }
        free(pr->key);
        free(pr->val);
        pr->key = pr->val = NULL;
    }
    return ok;
}

/* ---------------------------------------------------------------- [databases] */

static struct wp_db_config *find_db_exact(const struct wp_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->ndbs; i++)
        if (strcmp(cfg->dbs[i].name, name) == 0)
            return &cfg->dbs[i];
    return NULL;
}

static struct wp_db_config *add_db(struct loader *ld, const char *name)
{
    struct wp_config *cfg = ld->cfg;
    struct wp_db_config *dbs = realloc(cfg->dbs, (size_t)(cfg->ndbs + 1) * sizeof *dbs);

    if (!dbs) {
        ld->oom = true;
        return NULL;
    }
    cfg->dbs = dbs;
    struct wp_db_config *db = &dbs[cfg->ndbs];
    memset(db, 0, sizeof *db);
    init_overrides(&db->overrides);
    db->line = ld->lineno;
    db->name = dup_str(ld, name);
    if (!db->name)
        return NULL;
    cfg->ndbs++;
    return db;
}

/* Quote every value so that PQconninfoParse sees exactly the pairs we split. */
static char *build_conninfo(const struct pairs *kv)
{
    size_t len = 1;
    for (int i = 0; i < kv->n; i++)
        if (kv->v[i].key)
            len += strlen(kv->v[i].key) + 2 * strlen(kv->v[i].val) + 5;
    char *s = malloc(len);
    if (!s)
        return NULL;

    char *out = s;
    for (int i = 0; i < kv->n; i++) {
        if (!kv->v[i].key)
            continue;
        out += sprintf(out, "%s='", kv->v[i].key);
        for (const char *v = kv->v[i].val; *v; v++) {
            if (*v == '\'' || *v == '\\')
                *out++ = '\\';
            *out++ = *v;
        }
        *out++ = '\'';
        *out++ = ' ';
    }
    *out = '\0';
    return s;
}

/* Keys left after take_pool_keys must be libpq keywords, each given once. */
static bool check_libpq_keys(struct loader *ld, const struct pairs *kv, const char *who)
{
    bool ok = true;

    for (int i = 0; i < kv->n; i++) {
        const char *key = kv->v[i].key;
        if (!key)
            continue;
        for (int j = 0; j < i; j++) {
            if (kv->v[j].key && strcmp(kv->v[j].key, key) == 0) {
                report(ld, ld->lineno, "%s%s is given twice", who, key);
                ok = false;
                break;
            }
        }
        if (find_key(key, IN_GLOBAL) >= 0) {
            report(ld, ld->lineno, "%s%s can only be set in [warmpool]", who, key);
            return false;
        }
    }

    char *conninfo = build_conninfo(kv);
    if (!conninfo) {
        ld->oom = true;
        return false;
    }
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
    free(conninfo);
    if (!opts) {
        if (msg) {
            msg[strcspn(msg, "\n")] = '\0';
            report(ld, ld->lineno, "%s%s", who, msg);
            PQfreemem(msg);
        } else {
            ld->oom = true;
        }
        return false;
    }
    PQconninfoFree(opts);
    return ok;
}

/* Moves the remaining pairs into the db's NULL-terminated keyword/value arrays. */
static void fill_conn(struct loader *ld, struct wp_db_config *db, struct pairs *kv)
{
    int n = 0;
    bool has_dbname = false;

    for (int i = 0; i < kv->n; i++) {
        if (!kv->v[i].key)
            continue;
        n++;
        has_dbname |= strcmp(kv->v[i].key, "dbname") == 0;
    }
    /* "*" stands for whatever database the client asked for; the caller fills it in. */
    bool add_dbname = !has_dbname && strcmp(db->name, "*") != 0;
    db->conn_keys = calloc((size_t)n + 2, sizeof *db->conn_keys);
    db->conn_values = calloc((size_t)n + 2, sizeof *db->conn_values);
    if (!db->conn_keys || !db->conn_values) {
        ld->oom = true;
        return;
    }
    for (int i = 0; i < kv->n; i++) {
        if (!kv->v[i].key)
            continue;
        db->conn_keys[db->nconn] = kv->v[i].key;
        db->conn_values[db->nconn] = kv->v[i].val;
        kv->v[i].key = kv->v[i].val = NULL;
        /* libpq treats an empty value as not given, so user= forces nothing */
        if (strcmp(db->conn_keys[db->nconn], "user") == 0 && *db->conn_values[db->nconn])
            db->forced_user = db->conn_values[db->nconn];
        db->nconn++;
    }
    if (add_dbname) {
        db->conn_keys[db->nconn] = dup_str(ld, "dbname");
        db->conn_values[db->nconn] = dup_str(ld, db->name);
        db->nconn++;
    }
}

static bool is_uri(const char *s)
{
    return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

static void parse_database(struct loader *ld, const char *name, const char *value)
{
    char who[256];
    const char *why = NULL;
    struct pairs kv = {0};

    snprintf(who, sizeof who, "database \"%.200s\": ", name);
    struct wp_db_config *prev = find_db_exact(ld->cfg, name);
    if (prev) {
        report(ld, ld->lineno, "duplicate database \"%s\" (first defined on line %d)", name,
               prev->line);
        return;
    }
    struct wp_db_config *db = add_db(ld, name);
    if (!db)
        return;
    if (is_uri(value)) {
        report(ld, ld->lineno, "%sconnection URIs are not supported, use key=value pairs", who);
        return;
    }
    if (split_pairs(value, &kv, &why) < 0) {
        report(ld, ld->lineno, "%s%s", who, why);
    } else {
        ld->db = db;
        bool ok = take_pool_keys(ld, &kv, IN_DB, &db->overrides, NULL, who);
        ld->db = NULL;
        ok = check_libpq_keys(ld, &kv, who) && ok;
        if (ok)
            fill_conn(ld, db, &kv);
    }
    pairs_free(&kv);
}

/* ---------------------------------------------------------------- [users] */

static struct wp_user_config *add_user(struct loader *ld, const char *name)
{
    struct wp_config *cfg = ld->cfg;
    struct wp_user_config *users = realloc(cfg->users, (size_t)(cfg->nusers + 1) * sizeof *users);

    if (!users) {
        ld->oom = true;
        return NULL;
    }
    cfg->users = users;
    struct wp_user_config *user = &users[cfg->nusers];
    memset(user, 0, sizeof *user);
    init_overrides(&user->overrides);
    user->max_user_connections = WP_UNSET; /* global default filled in after parsing */
    user->line = ld->lineno;
    user->name = dup_str(ld, name);
    if (!user->name)
        return NULL;
    cfg->nusers++;
    return user;
}

static void parse_user(struct loader *ld, const char *name, const char *value)
{
    char who[256];
    const char *why = NULL;
    struct pairs kv = {0};

    snprintf(who, sizeof who, "user \"%.200s\": ", name);
    const struct wp_user_config *prev = config_find_user(ld->cfg, name);
    if (prev) {
        report(ld, ld->lineno, "duplicate user \"%s\" (first defined on line %d)", name,
               prev->line);
        return;
    }
    struct wp_user_config *user = add_user(ld, name);
    if (!user)
        return;
    if (split_pairs(value, &kv, &why) < 0) {
        report(ld, ld->lineno, "%s%s", who, why);
        pairs_free(&kv);
        return;
    }
    take_pool_keys(ld, &kv, IN_USER, &user->overrides, user, who);
    for (int i = 0; i < kv.n; i++) {
        const char *key = kv.v[i].key;
        if (!key)
            continue;
        if (find_key(key, IN_GLOBAL | IN_DB) >= 0)
            report(ld, ld->lineno, "%s%s cannot be set per user", who, key);
        else
            report(ld, ld->lineno, "%sunknown key \"%s\"", who, key);
    }
    pairs_free(&kv);
}

/* ---------------------------------------------------------------- reading lines */

static enum section section_kind(const char *name, size_t len)
{
    while (len > 0 && isspace((unsigned char)*name)) {
        name++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)name[len - 1]))
        len--;
    if (len == 8 && strncasecmp(name, "warmpool", len) == 0)
        return SEC_GLOBAL;
    if (len == 9 && strncasecmp(name, "pgbouncer", len) == 0)
        return SEC_GLOBAL;
    if (len == 9 && strncasecmp(name, "databases", len) == 0)
        return SEC_DATABASES;
    if (len == 5 && strncasecmp(name, "users", len) == 0)
        return SEC_USERS;
    return SEC_UNKNOWN;
}

/* `name` follows the '['. Mirrors inih: the name ends at the first ']'. */
static void enter_section(struct loader *ld, const char *name)
{
    const char *end = strchr(name, ']');

    if (!end) {
        report(ld, ld->lineno, "section header is missing \"]\"");
        ld->section = SEC_UNKNOWN; /* keys below would only produce follow-up noise */
        return;
    }
    size_t len = (size_t)(end - name);
    ld->section = section_kind(name, len);
    if (ld->section == SEC_UNKNOWN) {
        report(ld, ld->lineno,
               "unknown section [%.*s] (expected [warmpool], [databases] or [users])",
               (int)(len > 64 ? 64 : len), name);
    } else if (ld->section == SEC_GLOBAL) {
        const char *first = skip_space(name);
        ld->section_label = tolower((unsigned char)*first) == 'p' ? "pgbouncer" : "warmpool";
        if (!ld->global_line)
            ld->global_line = ld->lineno;
    }
}

/* Sees every line before inih does, to report what inih would only count. */
static void check_line(struct loader *ld, const char *line)
{
    const char *p = line;

    if (ld->lineno == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    p = skip_space(p);
    if (!*p || *p == ';' || *p == '#')
        return;
    if (*p == '[')
        enter_section(ld, p + 1);
    else if (!strpbrk(p, "=:"))
        report(ld, ld->lineno,
               "syntax error: expected \"key = value\", \"[section]\" or a comment");
}

/* ini_reader: one physical line per call, so ld->lineno is the line inih handles.
   Reads with getc rather than fgets so that over-long lines and NUL bytes are seen. */
static char *read_line(char *buf, int size, void *stream)
{
    struct loader *ld = stream;
    bool too_long = false, has_nul = false;
    int c, n = 0;

    while ((c = getc(ld->fp)) != EOF && c != '\n') {
        has_nul |= c == '\0';
        if (n < size - 2)
            buf[n++] = (char)c;
        else
            too_long = true;
    }
    if (c == EOF && n == 0 && !too_long)
        return NULL;
    buf[n] = '\0';
    ld->lineno++;
    if (too_long || has_nul) {
        if (too_long)
            report(ld, ld->lineno, "line is longer than %d bytes", size - 2);
        else
            report(ld, ld->lineno, "line contains a NUL byte");
        buf[0] = '\0'; /* inih sees a blank line */
        return buf;
    }
    check_line(ld, buf);
    return buf;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    struct loader *ld = user;

    (void)section; /* ld->section is authoritative, see enter_section */
    if (!*name && ld->section != SEC_UNKNOWN) {
        report(ld, ld->lineno, "missing name before \"=\"");
        return 1;
    }
    switch (ld->section) {
    case SEC_GLOBAL:
        parse_global_key(ld, name, value);
        break;
    case SEC_DATABASES:
        parse_database(ld, name, value);
        break;
    case SEC_USERS:
        parse_user(ld, name, value);
        break;
    case SEC_NONE:
        report(ld, ld->lineno, "\"%s\" is outside any section (start the file with [warmpool])",
               name);
        break;
    case SEC_UNKNOWN:
        break; /* the section header was reported */
    }
    return 1; /* errors are collected by us; never let inih stop */
}

static void parse_file(struct loader *ld)
{
    /* Debian's libinih makes these runtime settings. With realloc off it sizes the
       heap line buffer from ini_initial_alloc, so both are set. Multi-line values and
       inline ';' comments are off, as in PgBouncer: a password may contain " ;". */
    ini_use_stack = false;
    ini_allow_realloc = false;
    ini_max_line = MAX_LINE;
    ini_initial_alloc = MAX_LINE;
    ini_allow_multiline = false;
    ini_allow_inline_comments = false;
    ini_allow_no_value = false;
    ini_stop_on_first_error = false;
    ini_allow_bom = true;

    int rc = ini_parse_stream(read_line, ld, on_entry, ld);
    if (rc == -2)
        ld->oom = true;
    else if (rc > 0 && ld->nerrors == 0)
        report(ld, rc, "syntax error"); /* inih saw something check_line did not */
}

/* ---------------------------------------------------------------- validation */

/* Line to blame for a [warmpool] key: where it was set, else the section header. */
static int key_line(const struct loader *ld, const char *name)
{
    int i = find_key(name, IN_GLOBAL);
    int line = i >= 0 ? ld->key_line[canonical_key(i)] : 0;

    if (line)
        return line;
    return ld->global_line ? ld->global_line : 1;
}

static bool key_set(const struct loader *ld, const char *name)
{
    return ld->key_line[canonical_key(find_key(name, IN_GLOBAL))] != 0;
}

static void validate_pool_sizes(struct loader *ld, const struct wp_pool_settings *s, int line,
                                const char *who)
{
    if (s->min_pool_size > s->max_pool_size)
        report(ld, line, "%smin_pool_size (%d) is larger than max_pool_size (%d)", who,
               s->min_pool_size, s->max_pool_size);
}

static void validate_tls(struct loader *ld)
{
    const struct wp_config *cfg = ld->cfg;
    int mode = cfg->client_tls_sslmode;
    unsigned mask;
    char why[160];
    if (tls_parse_protocols(cfg->client_tls_protocols, &mask, why, sizeof why) < 0)
        report(ld, key_line(ld, "client_tls_protocols"), "client_tls_protocols: %s", why);
    if (mode != WP_SSLMODE_DISABLE && (!cfg->client_tls_key_file || !cfg->client_tls_cert_file))
        report(ld, key_line(ld, "client_tls_sslmode"),
               "client_tls_sslmode %s needs client_tls_key_file and client_tls_cert_file",
               tls_sslmode_names[mode]);
    if (mode >= WP_SSLMODE_VERIFY_CA && !cfg->client_tls_ca_file)
        report(ld, key_line(ld, "client_tls_sslmode"),
               "client_tls_sslmode %s needs client_tls_ca_file to verify client certificates",
               tls_sslmode_names[mode]);
    if (cfg->auth_type == WP_AUTH_CERT && (mode == WP_SSLMODE_DISABLE || !cfg->client_tls_ca_file))
        report(ld, key_line(ld, "auth_type"),
               "auth_type cert needs client_tls_sslmode (not disable) and client_tls_ca_file");
}

static void validate_globals(struct loader *ld)
{
    const struct wp_config *cfg = ld->cfg;

    validate_pool_sizes(
        ld, &cfg->pool,
        key_line(ld, key_set(ld, "min_pool_size") ? "min_pool_size" : "max_pool_size"), "");
    validate_tls(ld);
    /* As in PgBouncer, auth_user alone will do: every user is then looked up. */
    bool any_auth_user = cfg->auth_user != NULL;
    for (int i = 0; i < cfg->ndbs; i++)
        any_auth_user |= cfg->dbs[i].auth_user != NULL;
    if (cfg->auth_type != WP_AUTH_TRUST && cfg->auth_type != WP_AUTH_CERT && !cfg->auth_file &&
        !any_auth_user)
        report(ld, key_line(ld, "auth_type"), "auth_type %s needs auth_file%s",
               auth_names[cfg->auth_type],
               key_set(ld, "auth_type") ? "" : " (md5 is the default; auth_type = trust has none)");
    if (!*cfg->listen_addr && !*cfg->unix_socket_dir)
        report(ld, key_line(ld, key_set(ld, "listen_addr") ? "listen_addr" : "unix_socket_dir"),
               "listen_addr and unix_socket_dir are both empty: nothing to listen on");
    if (*cfg->stats_listen && config_split_host_port(cfg->stats_listen, NULL, 0, NULL) < 0)
        report(ld, key_line(ld, "stats_listen"),
               "stats_listen: \"%.64s\" is not host:port (e.g. 127.0.0.1:9127, [::1]:9127)",
               cfg->stats_listen);
    if (log_format_from_name(cfg->log_format) < 0)
        report(ld, key_line(ld, "log_format"), "log_format: \"%.64s\" is not text or json",
               cfg->log_format);
    if (log_facility_from_name(cfg->syslog_facility) < 0)
        report(ld, key_line(ld, "syslog_facility"),
               "syslog_facility: \"%.64s\" is not one of daemon, user, auth, authpriv, "
               "local0 .. local7",
               cfg->syslog_facility);
}

static void validate_entries(struct loader *ld)
{
    const struct wp_config *cfg = ld->cfg;
    struct wp_pool_settings eff;
    char who[256];

    for (int i = 0; i < cfg->ndbs; i++) {
        const struct wp_db_config *db = &cfg->dbs[i];
        snprintf(who, sizeof who, "database \"%.200s\": ", db->name);
        eff = cfg->pool;
        if (db->overrides.min_pool_size != WP_UNSET)
            eff.min_pool_size = db->overrides.min_pool_size;
        if (db->overrides.max_pool_size != WP_UNSET)
            eff.max_pool_size = db->overrides.max_pool_size;
        validate_pool_sizes(ld, &eff, db->line, who);
    }
    for (int i = 0; i < cfg->nusers; i++) {
        struct wp_user_config *user = &cfg->users[i];
        if (user->max_user_connections == WP_UNSET)
            user->max_user_connections = cfg->max_user_connections;
        snprintf(who, sizeof who, "user \"%.200s\": ", user->name);
        eff = cfg->pool;
        if (user->overrides.min_pool_size != WP_UNSET)
            eff.min_pool_size = user->overrides.min_pool_size;
        if (user->overrides.max_pool_size != WP_UNSET)
            eff.max_pool_size = user->overrides.max_pool_size;
        validate_pool_sizes(ld, &eff, user->line, who);
    }
}

/* ---------------------------------------------------------------- defaults */

static void set_defaults(struct loader *ld)
{
    struct wp_config *cfg = ld->cfg;

    cfg->listen_addr = dup_str(ld, "127.0.0.1");
    cfg->listen_port = 6432;
    cfg->unix_socket_dir = dup_str(ld, "/tmp");
    cfg->unix_socket_mode = 0777;
    cfg->listen_backlog = 128;
    cfg->max_client_conn = 100;
    cfg->auth_type = WP_AUTH_MD5;
    cfg->admin_users = split_list("");
    cfg->stats_users = split_list("");
    /* PgBouncer 1.25's default, word for word. */
    cfg->auth_query = dup_str(ld, "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE "
                                  "rolpassword END FROM pg_authid WHERE rolname=$1 AND "
                                  "rolcanlogin");
    cfg->auth_query_cache_ttl = 60 * SEC_MS;
    cfg->client_tls_sslmode = WP_SSLMODE_DISABLE;
    cfg->client_tls_protocols = dup_str(ld, "secure");
    cfg->client_tls_ciphers = dup_str(ld, "default");

    cfg->pool.pool_mode = WP_MODE_SESSION;
    cfg->pool.min_pool_size = 0;
    cfg->pool.max_pool_size = 20;
    cfg->pool.reserve_pool_size = 0;
    cfg->pool.max_db_connections = 0;
    cfg->pool.query_timeout = 0;
    cfg->pool.query_wait_timeout = 120 * SEC_MS;
    cfg->pool.client_idle_timeout = 0;
    cfg->pool.idle_transaction_timeout = 0;
    cfg->pool.pinned_idle_timeout = 0;
    cfg->pin_session_state = WP_PIN_ON;
    cfg->pool.server_lifetime = 3600 * SEC_MS;
    cfg->pool.server_idle_timeout = 600 * SEC_MS;

    cfg->server_reset_query = dup_str(ld, "DISCARD ALL");
    cfg->server_check_query = dup_str(ld, "");
    cfg->server_check_delay = 30 * SEC_MS;
    cfg->server_connect_timeout = 15 * SEC_MS;
    /* PgBouncer waits 15 s; clients queued for the pool get the login error either
       way, so a quick retry only shortens recovery once the server is back. */
    cfg->server_login_retry = 1 * SEC_MS;
    cfg->client_login_timeout = 60 * SEC_MS;
    cfg->reserve_pool_timeout = 5 * SEC_MS;
    cfg->shutdown_wait_timeout = 30 * SEC_MS;
    cfg->max_prepared_statements = 200;
    cfg->warm_prepared_statements = 50;
    cfg->ignore_startup_parameters = split_list("");
    cfg->pkt_buf = 16 * KB;
    cfg->max_packet_size = GB;
    cfg->stats_socket = NULL;
    cfg->stats_listen = dup_str(ld, "");
    cfg->stats_socket_mode = 0660;
    cfg->stats_top_statements = 1000;
    cfg->nplus1_threshold = 10;
    cfg->nplus1_window_ms = 1 * SEC_MS;
    cfg->nplus1_log_interval_ms = 60 * SEC_MS;
    cfg->log_slow_queries_ms = 0;
    cfg->log_parameters = 0;
    cfg->verbose = 0;
    cfg->log_format = dup_str(ld, "text");
    cfg->syslog = 0;
    cfg->syslog_ident = dup_str(ld, "warmpool");
    cfg->syslog_facility = dup_str(ld, "daemon");

    if (!cfg->admin_users || !cfg->stats_users || !cfg->ignore_startup_parameters)
        ld->oom = true;
}

/* ---------------------------------------------------------------- public API */

/* Parse from fp (NULL: could not be opened, errno says why); `path` names it in messages. */
static int load_stream(const char *path, FILE *fp, struct wp_config *out, char *err, size_t errlen)
{
    struct loader ld;

    memset(&ld, 0, sizeof ld);
    ld.cfg = out;
    ld.path = path;
    ld.err = err;
    ld.errlen = errlen;
    ld.section_label = "warmpool";
    if (err && errlen)
        err[0] = '\0';
    memset(out, 0, sizeof *out);

    set_defaults(&ld);
    out->path = dup_str(&ld, path);
    ld.fp = fp;
    if (!ld.fp) {
        report(&ld, 0, "cannot open: %s", strerror(errno));
    } else {
        parse_file(&ld);
        if (!ld.oom) {
            validate_globals(&ld);
            validate_entries(&ld);
        }
    }
    if (ld.oom)
        report(&ld, 0, "out of memory");
    report_dropped(&ld);
    if (ld.nerrors > 0) {
        config_free(out);
        return -1;
    }
    return 0;
}

int config_load(const char *path, struct wp_config *out, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    int rc = load_stream(path, fp, out, err, errlen);
    if (fp)
        fclose(fp);
    return rc;
}

int config_load_string(const char *name, const char *text, size_t len, struct wp_config *out,
                       char *err, size_t errlen)
{
    /* Read-only: fmemopen takes a non-const pointer but never writes through it. */
    FILE *fp = fmemopen((void *)text, len, "r");
    int rc = load_stream(name, fp, out, err, errlen);
    if (fp)
        fclose(fp);
    return rc;
}

static void free_db(struct wp_db_config *db)
{
    free(db->name);
    for (int i = 0; i < db->nconn; i++) {
        free(db->conn_keys[i]);
        free(db->conn_values[i]);
    }
    free(db->conn_keys);
    free(db->conn_values);
    free(db->auth_user);
    free(db->auth_query);
    free(db->auth_dbname);
}

void config_free(struct wp_config *cfg)
{
    if (!cfg)
        return;
    for (int i = 0; i < NKEYS; i++) {
        if (keys[i].base != B_CONFIG)
            continue;
        void *field = (char *)cfg + keys[i].off;
        if (keys[i].kind == K_STR || keys[i].kind == K_PATH) {
            free(*(char **)field);
            *(char **)field = NULL;
        } else if (keys[i].kind == K_LIST) {
            free_list(*(char ***)field);
            *(char ***)field = NULL;
        }
    }
    for (int i = 0; i < cfg->ndbs; i++)
        free_db(&cfg->dbs[i]);
    free(cfg->dbs);
    for (int i = 0; i < cfg->nusers; i++)
        free(cfg->users[i].name);
    free(cfg->users);
    free(cfg->path);
    memset(cfg, 0, sizeof *cfg);
}

const struct wp_db_config *config_find_db(const struct wp_config *cfg, const char *name)
{
    if (!name)
        return NULL;
    const struct wp_db_config *db = find_db_exact(cfg, name);
    return db ? db : find_db_exact(cfg, "*");
}

const struct wp_user_config *config_find_user(const struct wp_config *cfg, const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; i < cfg->nusers; i++)
        if (strcmp(cfg->users[i].name, name) == 0)
            return &cfg->users[i];
    return NULL;
}

static void apply_overrides(struct wp_pool_settings *dst, const struct wp_pool_settings *src)
{
    if (src->pool_mode != WP_MODE_UNSET)
        dst->pool_mode = src->pool_mode;
    if (src->min_pool_size != WP_UNSET)
        dst->min_pool_size = src->min_pool_size;
    if (src->max_pool_size != WP_UNSET)
        dst->max_pool_size = src->max_pool_size;
    if (src->reserve_pool_size != WP_UNSET)
        dst->reserve_pool_size = src->reserve_pool_size;
    if (src->max_db_connections != WP_UNSET)
        dst->max_db_connections = src->max_db_connections;
    if (src->query_timeout != WP_UNSET)
        dst->query_timeout = src->query_timeout;
    if (src->query_wait_timeout != WP_UNSET)
        dst->query_wait_timeout = src->query_wait_timeout;
    if (src->client_idle_timeout != WP_UNSET)
        dst->client_idle_timeout = src->client_idle_timeout;
    if (src->idle_transaction_timeout != WP_UNSET)
        dst->idle_transaction_timeout = src->idle_transaction_timeout;
    if (src->pinned_idle_timeout != WP_UNSET)
        dst->pinned_idle_timeout = src->pinned_idle_timeout;
    if (src->server_lifetime != WP_UNSET)
        dst->server_lifetime = src->server_lifetime;
    if (src->server_idle_timeout != WP_UNSET)
        dst->server_idle_timeout = src->server_idle_timeout;
}

void config_effective(const struct wp_config *cfg, const struct wp_db_config *db,
                      const struct wp_user_config *user, struct wp_pool_settings *out)
{
    *out = cfg->pool;
    if (db)
        apply_overrides(out, &db->overrides);
    if (user)
        apply_overrides(out, &user->overrides);
    /* A db and a user entry can each be valid yet combine badly (user max 2, db
       min 5); the pool should never try to keep more idle than it may open. */
    if (out->min_pool_size > out->max_pool_size)
        out->min_pool_size = out->max_pool_size;
}

const char *config_mode_name(int mode)
{
    if (mode >= WP_MODE_SESSION && mode <= WP_MODE_STATEMENT)
        return mode_names[mode];
    return mode == WP_MODE_UNSET ? "unset" : "unknown";
}

const char *config_pin_name(int pin)
{
    return pin >= WP_PIN_OFF && pin <= WP_PIN_LOG ? pin_names[pin] : "unknown";
}

int config_split_host_port(const char *text, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(text, ':');
    const char *h = text, *h_end = colon;
    int64_t n;

    if (!colon || colon == text)
        return -1;
    if (text[0] == '[') {
        /* [v6-address]:port */
        if (colon[-1] != ']' || colon - text < 3)
            return -1;
        h = text + 1;
        h_end = colon - 1;
    } else if (memchr(text, ':', (size_t)(colon - text))) {
        return -1; /* a bare IPv6 address needs brackets */
    }
    if (parse_integer(colon + 1, &n) < 0 || n < 1 || n > 65535)
        return -1;
    if (host) {
        size_t len = (size_t)(h_end - h);
        if (len >= hostlen)
            return -1;
        memcpy(host, h, len);
        host[len] = '\0';
    }
    if (port)
        *port = (int)n;
    return 0;
}

int config_user_in_list(char *const *list, const char *user)
{
    if (!list || !user)
        return 0;
    for (; *list; list++)
        if (strcmp(*list, user) == 0)
            return 1;
    return 0;
}
