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
 * Keys are one table, wp_keys[] in config_keys.c (type, field, range, default, where
 * allowed, PgBouncer's name); it drives parsing, the defaults, the per-database and
 * per-user overrides, and the PgBouncer keys accepted without effect (each noted once
 * in cfg->notices for the log). `%include path` lines are read in place, as in
 * PgBouncer; messages name the file a line is in. [databases] values are libpq
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

#include <sys/stat.h>

#include <ini.h>
#include <libpq-fe.h>

#include "warmpool/config.h"
#include "warmpool/config_keys.h"
#include "warmpool/fleet_share.h"
#include "warmpool/hosts.h"
#include "warmpool/log.h"
#include "warmpool/tls.h"

/* Long enough for any sane connection string. A longer line is reported rather
   than silently split in two, which is what inih does with a full buffer. */
#define MAX_LINE 65536

/* ---------------------------------------------------------------- key table */

/* The table itself is config_keys.c: wp_keys[], one row per key and alias. */

static const char *const mode_names[] = {"session", "transaction", "statement", NULL};
static const char *const pin_names[] = {"off", "on", "log", NULL};
static const char *const auth_names[] = {"trust", "md5", "scram-sha-256", "plain", "cert",
                                         "hba",   NULL};

/* ---------------------------------------------------------------- errors */

enum section { SEC_NONE, SEC_GLOBAL, SEC_DATABASES, SEC_USERS, SEC_PEERS, SEC_UNKNOWN };

/* PgBouncer stops at the same depth; it is also what ends an include loop there, where
   warmpool names the loop itself. */
#define MAX_INCLUDE_DEPTH 10

/* A file being read: the main one, or one named by %include. */
struct source {
    const char *path; /* as written; points into cfg->files */
    FILE *fp;
    int lineno;
    dev_t dev; /* identity, to refuse a file that includes itself */
    ino_t ino;
};

/* A line in some file, for messages about a key set earlier. */
struct place {
    const char *file;
    int line;
};

/* The line of a place that is a console SET (config_load_with_overrides): messages
   name no line, and the key counts as set. */
#define SET_LINE (-1)

/* The console's SET values, applied over the file's [warmpool] section. */
struct set_values {
    const char *const *keys, *const *values;
    int n;
};

struct loader {
    struct wp_config *cfg;
    const char *path; /* the file being read = stack[depth] */
    FILE *fp;
    int lineno; /* line last returned by the reader = line being handled */
    struct source stack[MAX_INCLUDE_DEPTH + 1];
    int depth;                 /* stack[0] is the main file; its fp is the caller's */
    bool includes_allowed;     /* not when the text does not come from a file */
    enum section section;      /* tracked by the reader, so it follows our own rules */
    const char *section_label; /* "warmpool" or "pgbouncer", for messages */
    struct place global_place; /* first [warmpool] header: where to blame unset defaults */
    struct place key_place[WP_KEYS_MAX]; /* where each [warmpool] key was set; line 0 = not */
    bool noted[WP_KEYS_MAX];             /* an "accepted, no effect" notice was made */
    int nnotices;
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

/* "file:line: ", or "file: " for no line (the file as a whole, or a console SET); its
   length, 0 when it does not fit (the text then goes without it). */
static size_t place_prefix(char *buf, size_t len, const char *file, int line)
{
    int n = line > 0 ? snprintf(buf, len, "%s:%d: ", file, line) : snprintf(buf, len, "%s: ", file);
    return n < 0 || (size_t)n >= len ? 0 : (size_t)n;
}

static void vreport(struct loader *ld, const char *file, int line, const char *fmt, va_list ap)
{
    char msg[2048];
    size_t n = place_prefix(msg, sizeof msg, file, line);

    vsnprintf(msg + n, sizeof msg - n, fmt, ap);

    size_t len = strlen(msg);
    if (len > sizeof msg - 2)
        len = sizeof msg - 2;
    msg[len] = '\n';
    msg[len + 1] = '\0';
    ld->nerrors++;
    append_error(ld, msg);
}

/* An error on `line` of the file being read (0: about the file as a whole). */
__attribute__((format(printf, 3, 4))) static void report(struct loader *ld, int line,
                                                         const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(ld, ld->path, line, fmt, ap);
    va_end(ap);
}

/* An error about a line read earlier, perhaps in another file. */
__attribute__((format(printf, 3, 4))) static void report_at(struct loader *ld, struct place at,
                                                            const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(ld, at.file, at.line, fmt, ap);
    va_end(ap);
}

/* "line 12" when `at` is in the file being read, else "other.ini:12". */
static const char *describe_place(const struct loader *ld, struct place at, char *buf, size_t len)
{
    if (at.file == ld->path)
        snprintf(buf, len, "line %d", at.line);
    else
        snprintf(buf, len, "%s:%d", at.file, at.line);
    return buf;
}

static struct place here(const struct loader *ld)
{
    return (struct place){ld->path, ld->lineno};
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

/* PostgreSQL's GUC units. A bare number takes the first row's factor, which the caller
   chooses: seconds for most keys, as in PgBouncer, milliseconds for a few. */
static const struct unit duration_units[] = {
    {"", SEC_MS},         {"ms", 1},     {"s", SEC_MS}, {"min", 60 * SEC_MS},
    {"h", 3600 * SEC_MS}, {"d", DAY_MS}, {NULL, 0},
};

static const struct unit size_units[] = {
    {"", 1}, {"B", 1}, {"kB", KB}, {"MB", MB}, {"GB", GB}, {"TB", 1024 * GB}, {NULL, 0},
};

/* Digits after a decimal point, as a numerator over a power of ten; more than 9 are
   refused, as no unit needs them to reach a whole millisecond. */
struct fraction {
    int64_t num, den; /* 0/1 without a point */
};

static int parse_fraction(const char **p, struct fraction *f)
{
    const char *s = *p;

    f->num = 0;
    f->den = 1;
    if (*s != '.')
        return 0;
    for (s++; isdigit((unsigned char)*s); s++) {
        if (f->den >= 1000000000)
            return -1;
        f->num = f->num * 10 + (*s - '0');
        f->den *= 10;
    }
    if (f->den == 1)
        return -1; /* "5." */
    *p = s;
    return 0;
}

/* n + f times factor, only when that is a whole number (of ms or bytes). */
static int scale(int64_t n, struct fraction f, int64_t factor, int64_t *out)
{
    if (n > INT64_MAX / factor)
        return -1;
    /* factor and den are at most 2^40 and 10^9: their product may not fit, so the
       fraction is reduced by what they share first. */
    int64_t a = factor, b = f.den;
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    int64_t part_factor = factor / a, den = f.den / a;
    if (f.num % den != 0)
        return -1;
    int64_t part = f.num / den;
    if (part > INT64_MAX / part_factor || n * factor > INT64_MAX - part * part_factor)
        return -1;
    *out = n * factor + part * part_factor;
    return 0;
}

/* "<digits>[.<digits>] [unit]" with optional blanks around; no sign. `bare` is the
   factor of a number without a unit; a fraction must come to a whole number. */
static int parse_with_unit(const char *text, const struct unit *units, int64_t bare,
                           bool fraction_ok, int64_t *out)
{
    const char *p;
    int64_t n;
    struct fraction f;

    if (!text)
        return -1;
    p = skip_space(text);
    if (parse_digits(&p, &n) < 0 || parse_fraction(&p, &f) < 0)
        return -1;
    if (f.den > 1 && !fraction_ok)
        return -1;
    p = skip_space(p);
    size_t len = strlen(p);
    while (len > 0 && isspace((unsigned char)p[len - 1]))
        len--;
    for (const struct unit *u = units; u->name; u++) {
        if (strlen(u->name) != len || strncasecmp(p, u->name, len) != 0)
            continue;
        return scale(n, f, len == 0 ? bare : u->factor, out);
    }
    return -1;
}

int config_parse_duration(const char *text, int64_t *ms)
{
    return parse_with_unit(text, duration_units, SEC_MS, true, ms);
}

int config_parse_size(const char *text, int64_t *bytes)
{
    return parse_with_unit(text, size_units, 1, false, bytes);
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
static void format_bound(const struct wp_key *k, int64_t v, char *buf, size_t len)
{
    const struct unit *units = k->type == WP_KEY_DURATION ? duration_units
                               : k->type == WP_KEY_SIZE   ? size_units
                                                          : NULL;
    const struct unit *best = NULL;

    /* A byte count is written bare ("2147483647"), milliseconds with their unit. */
    for (const struct unit *u = units ? units + 1 : NULL; u && u->name; u++)
        if (v % u->factor == 0 && (!best || u->factor > best->factor) &&
            !(k->type == WP_KEY_SIZE && u->factor == 1))
            best = u;
    if (best && v != 0)
        snprintf(buf, len, "%" PRId64 "%s", v / best->factor, best->name);
    else
        snprintf(buf, len, "%" PRId64, v);
}

static const char *kind_hint(const struct wp_key *k)
{
    switch (k->type) {
    case WP_KEY_INT:
        return "is not an integer";
    case WP_KEY_OCTAL:
        return "is not an octal file mode (e.g. 0777)";
    case WP_KEY_BOOL:
        return "is not a boolean (use 1/0, true/false, on/off, yes/no)";
    case WP_KEY_MODE:
        return "is not a pool mode (session, transaction, statement)";
    case WP_KEY_PIN:
        return "is not on, off or log";
    case WP_KEY_AUTH:
        return "is not an auth type (trust, md5, scram-sha-256, plain, password, cert, hba)";
    case WP_KEY_LB:
        return "is not disable, random or round-robin";
    case WP_KEY_SSLMODE:
        return "is not an sslmode (disable, allow, prefer, require, verify-ca, verify-full)";
    case WP_KEY_DURATION:
        if (k->flags & WP_KEY_BARE_MS)
            return "is not a duration (e.g. 250ms, 5s, 10min, 1h, 2d; bare number = "
                   "milliseconds)";
        return "is not a duration (e.g. 250ms, 5s, 10min, 1h, 2d; bare number = seconds)";
    case WP_KEY_SIZE:
        return "is not a size (e.g. 512, 16kB, 8MB, 1GB)";
    default:
        return "is not valid";
    }
}

int config_parse_number(const struct wp_key *k, const char *value, int64_t *v)
{
    switch (k->type) {
    case WP_KEY_INT:
        return parse_integer(value, v);
    case WP_KEY_OCTAL:
        return parse_octal(value, v);
    case WP_KEY_BOOL:
        return parse_bool(value, v);
    case WP_KEY_MODE:
        return parse_enum(value, mode_names, v);
    case WP_KEY_PIN:
        return parse_enum(value, pin_names, v);
    case WP_KEY_AUTH:
        /* PgBouncer's and pg_hba.conf's name for cleartext passwords */
        if (strcasecmp(value, "password") == 0) {
            *v = WP_AUTH_PLAIN;
            return 0;
        }
        return parse_enum(value, auth_names, v);
    case WP_KEY_SSLMODE:
        return parse_enum(value, tls_sslmode_names, v);
    case WP_KEY_LB:
        return parse_enum(value, hosts_lb_names, v);
    case WP_KEY_DURATION:
        return parse_with_unit(value, duration_units, (k->flags & WP_KEY_BARE_MS) ? 1 : SEC_MS,
                               true, v);
    case WP_KEY_SIZE:
        return config_parse_size(value, v);
    default:
        return -1;
    }
}

static bool set_number(struct loader *ld, const struct wp_key *k, void *field, const char *value,
                       const char *who)
{
    int64_t v;
    char bound[32];

    if (config_parse_number(k, value, &v) < 0) {
        report(ld, ld->lineno, "%s%s: \"%s\" %s", who, k->name, value, kind_hint(k));
        return false;
    }
    if (k->min != k->max && (v < k->min || v > k->max)) {
        bool low = v < k->min;
        format_bound(k, low ? k->min : k->max, bound, sizeof bound);
        report(ld, ld->lineno, "%s%s: \"%s\" is %s (%s %s)", who, k->name, value,
               low ? "too small" : "too large", low ? "minimum" : "maximum", bound);
        return false;
    }
    if (k->type == WP_KEY_DURATION || k->type == WP_KEY_SIZE)
        *(int64_t *)field = v;
    else
        *(int *)field = (int)v;
    return true;
}

static bool set_value(struct loader *ld, const struct wp_key *k, void *base, const char *value,
                      const char *who)
{
    void *field = (char *)base + k->off;

    switch (k->type) {
    case WP_KEY_STR:
    case WP_KEY_PATH: {
        char *copy = (k->type == WP_KEY_PATH && !*value) ? NULL : dup_str(ld, value);
        free(*(char **)field);
        *(char **)field = copy;
        return true;
    }
    case WP_KEY_LIST: {
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

/* Values of ignored PgBouncer keys that cannot be ignored: the file asks for a
   protection warmpool would not give. */
struct refused_value {
    const char *key;
    const char *const *accepted; /* NULL-terminated, case-insensitive */
    const char *why;
};

static const char *const zero[] = {"0", NULL};

static const struct refused_value refused_values[] = {
    {"disable_pqexec", zero, "warmpool cannot refuse the simple query protocol"},
};

static bool value_refused(struct loader *ld, const struct wp_key *k, const char *value,
                          const char *who)
{
    for (size_t i = 0; i < sizeof refused_values / sizeof refused_values[0]; i++) {
        const struct refused_value *r = &refused_values[i];
        if (strcmp(r->key, k->name) != 0)
            continue;
        for (const char *const *ok = r->accepted; *ok; ok++)
            if (strcasecmp(*ok, value) == 0)
                return false;
        report(ld, ld->lineno, "%s%s = %s: %s", who, k->name, value, r->why);
        return true;
    }
    return false;
}

static void add_notice(struct loader *ld, const char *text)
{
    char **list = realloc(ld->cfg->notices, (size_t)(ld->nnotices + 2) * sizeof *list);

    if (!list) {
        ld->oom = true;
        return;
    }
    ld->cfg->notices = list;
    list[ld->nnotices] = dup_str(ld, text);
    if (list[ld->nnotices])
        ld->nnotices++;
    list[ld->nnotices] = NULL;
}

/* A PgBouncer key warmpool ignores: accepted, and noted once per key for the log
   (the first place it is set to something), unless its value asks for what warmpool
   cannot give. */
static void accept_no_effect(struct loader *ld, int i, const char *value, const char *who)
{
    char text[512];

    /* An empty value is PgBouncer's "not set": nothing is being ignored. */
    if (value_refused(ld, &wp_keys[i], skip_space(value), who) || ld->noted[i] ||
        !*skip_space(value))
        return;
    ld->noted[i] = true;
    size_t n = place_prefix(text, sizeof text, ld->path, ld->lineno);
    snprintf(text + n, sizeof text - n, "accepted, no effect: %s", wp_keys[i].name);
    add_notice(ld, text);
}

/* The file's value of a [warmpool] key without effect, for SHOW CONFIG. */
static void keep_ignored_value(struct loader *ld, int i, const char *value)
{
    struct wp_config *cfg = ld->cfg;

    if (!cfg->ignored_values) {
        cfg->ignored_values = calloc(WP_KEYS_MAX, sizeof *cfg->ignored_values);
        if (!cfg->ignored_values) {
            ld->oom = true;
            return;
        }
    }
    free(cfg->ignored_values[i]);
    cfg->ignored_values[i] = dup_str(ld, skip_space(value));
}

/* PgBouncer's word for an empty value (config_key_empty_text) reads as "". */
static const char *global_value(const struct wp_key *k, const char *value)
{
    const char *empty = config_key_empty_text(k);
    return empty && strcmp(value, empty) == 0 ? "" : value;
}

/* Row i of [warmpool] takes `value` (the file's or a SET's). */
static void set_global_value(struct loader *ld, int i, const char *value)
{
    if (wp_keys[i].type == WP_KEY_NO_EFFECT) {
        keep_ignored_value(ld, i, value);
        accept_no_effect(ld, i, value, "");
        return;
    }
    void *base = wp_keys[i].base == WP_KEY_IN_POOL ? (void *)&ld->cfg->pool : (void *)ld->cfg;
    set_value(ld, &wp_keys[i], base, global_value(&wp_keys[i], value), "");
}

static void parse_global_key(struct loader *ld, const char *name, const char *value)
{
    int i = config_key_find(name, WP_SEC_GLOBAL);
    char earlier[512];

    if (i < 0) {
        report(ld, ld->lineno, "unknown key \"%s\" in [%s]", name, ld->section_label);
        return;
    }
    int c = config_key_canonical(i);
    if (ld->key_place[c].line && i == c) {
        report(ld, ld->lineno, "duplicate key \"%s\" (already set on %s)", name,
               describe_place(ld, ld->key_place[c], earlier, sizeof earlier));
        return;
    }
    if (ld->key_place[c].line) {
        report(ld, ld->lineno, "duplicate key \"%s\": %s is already set on %s", name,
               wp_keys[c].name, describe_place(ld, ld->key_place[c], earlier, sizeof earlier));
        return;
    }
    ld->key_place[c] = here(ld);
    set_global_value(ld, i, value);
}

/* The console's SET values, after the file: each replaces what the file set. Their
   messages and the validation's name "SET" as the place. */
static void apply_set_values(struct loader *ld, const struct set_values *sv)
{
    const char *file_path = ld->path;
    char why[160];
    int i;

    ld->path = "SET";
    ld->lineno = 0;
    for (int s = 0; s < sv->n && !ld->oom; s++) {
        if (config_key_settable(sv->keys[s], &i, why, sizeof why) != WP_KEY_SETTABLE) {
            report(ld, 0, "%s", why);
            continue;
        }
        ld->key_place[config_key_canonical(i)] = (struct place){ld->path, SET_LINE};
        set_global_value(ld, i, sv->values[s]);
    }
    ld->path = file_path;
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

/* Every pool setting of an entry starts as "inherit"; the table says which fields
   there are and how wide each is. */
static void init_overrides(struct wp_pool_settings *s)
{
    for (int i = 0; i < wp_nkeys; i++) {
        const struct wp_key *k = &wp_keys[i];
        if (k->base != WP_KEY_IN_POOL || (k->flags & WP_KEY_ALIAS))
            continue;
        void *field = (char *)s + k->off;
        if (k->type == WP_KEY_DURATION || k->type == WP_KEY_SIZE)
            *(int64_t *)field = WP_UNSET;
        else
            *(int *)field = WP_UNSET; /* WP_MODE_UNSET too */
    }
}

/* Applies and removes every pair that is a warmpool key allowed `where`. `db` is
   only needed for WP_SEC_DB, `user` for WP_SEC_USER. Returns false if any of them
   was bad. */
static bool take_pool_keys(struct loader *ld, struct pairs *kv, unsigned where,
                           struct wp_pool_settings *pool, struct wp_db_config *db,
                           struct wp_user_config *user, const char *who)
{
    bool seen[WP_KEYS_MAX] = {false};
    bool ok = true;

    for (int j = 0; j < kv->n; j++) {
        struct pair *pr = &kv->v[j];
        int i = config_key_find(pr->key, where);
        if (i < 0)
            continue;
        int c = config_key_canonical(i);
        if (seen[c]) {
            report(ld, ld->lineno, "%s%s is given twice", who, wp_keys[c].name);
            ok = false;
        } else if (wp_keys[i].type == WP_KEY_NO_EFFECT) {
            seen[c] = true;
            accept_no_effect(ld, i, pr->val, who);
        } else {
            seen[c] = true;
            void *base = wp_keys[i].base == WP_KEY_IN_USER ? (void *)user
                         : wp_keys[i].base == WP_KEY_IN_DB ? (void *)db
                                                           : (void *)pool;
            ok = set_value(ld, &wp_keys[i], base, pr->val, who) && ok;
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
    db->file = ld->path;
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
        int k = config_key_find(key, WP_SEC_GLOBAL);
        if (k >= 0 && wp_keys[k].type != WP_KEY_NO_EFFECT) {
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

static const char *pair_value(const struct pairs *kv, const char *key)
{
    for (int i = 0; i < kv->n; i++)
        if (kv->v[i].key && strcmp(kv->v[i].key, key) == 0)
            return kv->v[i].val;
    return NULL;
}

/* A host list is reordered per connect (hosts.c): its lists must pair up as libpq
   pairs them, which libpq would only say at each connect. */
static bool check_host_lists(struct loader *ld, const struct pairs *kv, const char *who)
{
    const char *err;
    struct wp_hosts *h = hosts_parse(pair_value(kv, "host"), pair_value(kv, "hostaddr"),
                                     pair_value(kv, "port"), &err);
    hosts_free(h);
    if (!h && *err) {
        report(ld, ld->lineno, "%s%s", who, err);
        return false;
    }
    return true;
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

/* PgBouncer's per-database datestyle and timezone ask the server for a setting; libpq
   has no keyword for them, so they become `-c name=value` in the entry's `options`
   (after any the entry gives itself), where PostgreSQL wants blanks and backslashes
   escaped with a backslash. */
static bool settings_to_options(struct loader *ld, struct pairs *kv, const char *who)
{
    static const char *const settings[] = {"datestyle", "timezone", NULL};
    struct pair *options = NULL;

    for (int i = 0; i < kv->n; i++)
        if (kv->v[i].key && strcmp(kv->v[i].key, "options") == 0)
            options = &kv->v[i];
    for (int i = 0; i < kv->n; i++) {
        struct pair *pr = &kv->v[i];
        bool is_setting = false;
        for (int s = 0; pr->key && settings[s]; s++)
            is_setting |= strcmp(pr->key, settings[s]) == 0;
        if (!is_setting)
            continue;
        if (!*pr->val) {
            report(ld, ld->lineno, "%s%s is empty", who, pr->key);
            return false;
        }
        if (!options) {
            char *key = strdup("options"), *val = strdup("");
            if (!key || !val || pairs_add(kv, key, val) < 0) {
                free(key);
                free(val);
                ld->oom = true;
                return false;
            }
            pr = &kv->v[i]; /* pairs_add may have moved the array */
            options = &kv->v[kv->n - 1];
        }
        size_t old = strlen(options->val);
        char *grown = realloc(options->val, old + strlen(pr->key) + 2 * strlen(pr->val) + 8);
        if (!grown) {
            ld->oom = true;
            return false;
        }
        char *out = grown + old;
        out += sprintf(out, "%s-c %s=", old ? " " : "", pr->key);
        for (const char *v = pr->val; *v; v++) {
            if (*v == ' ' || *v == '\\')
                *out++ = '\\';
            *out++ = *v;
        }
        *out = '\0';
        options->val = grown;
        free(pr->key);
        free(pr->val);
        pr->key = pr->val = NULL;
    }
    return true;
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
    char earlier[512];
    if (prev) {
        report(ld, ld->lineno, "duplicate database \"%s\" (first defined on %s)", name,
               describe_place(ld, (struct place){prev->file, prev->line}, earlier, sizeof earlier));
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
        bool ok = take_pool_keys(ld, &kv, WP_SEC_DB, &db->overrides, db, NULL, who);
        ok = settings_to_options(ld, &kv, who) && ok;
        ok = check_libpq_keys(ld, &kv, who) && ok;
        ok = ok && check_host_lists(ld, &kv, who);
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
    user->file = ld->path;
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
    char earlier[512];
    if (prev) {
        report(ld, ld->lineno, "duplicate user \"%s\" (first defined on %s)", name,
               describe_place(ld, (struct place){prev->file, prev->line}, earlier, sizeof earlier));
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
    take_pool_keys(ld, &kv, WP_SEC_USER, &user->overrides, NULL, user, who);
    for (int i = 0; i < kv.n; i++) {
        const char *key = kv.v[i].key;
        if (!key)
            continue;
        if (config_key_find(key, WP_SEC_GLOBAL | WP_SEC_DB) >= 0)
            report(ld, ld->lineno, "%s%s cannot be set per user", who, key);
        else
            report(ld, ld->lineno, "%sunknown key \"%s\"", who, key);
    }
    pairs_free(&kv);
}

/* ---------------------------------------------------------------- [peers] */

static void parse_peer(struct loader *ld, const char *name, const char *value)
{
    char why[256], earlier[512];
    const struct wp_peer_config *prev = NULL;
    if (*name && name[strspn(name, "0123456789")] == '\0' && strlen(name) < 6)
        prev = peers_config_find(&ld->cfg->peers, atoi(name));
    if (prev) {
        report(ld, ld->lineno, "duplicate peer %d (first defined on %s)", prev->id,
               describe_place(ld, (struct place){prev->file, prev->line}, earlier, sizeof earlier));
        return;
    }
    if (peers_config_add(&ld->cfg->peers, name, value, ld->path, ld->lineno, why, sizeof why) < 0)
        report(ld, ld->lineno, "%s", why);
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
    if (len == 5 && strncasecmp(name, "peers", len) == 0)
        return SEC_PEERS;
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
               "unknown section [%.*s] (expected [warmpool], [databases], [users] or [peers])",
               (int)(len > 64 ? 64 : len), name);
    } else if (ld->section == SEC_GLOBAL) {
        const char *first = skip_space(name);
        ld->section_label = tolower((unsigned char)*first) == 'p' ? "pgbouncer" : "warmpool";
        if (!ld->global_place.line)
            ld->global_place = here(ld);
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

/* Adds a file's name to cfg->files, which outlives the loader: entries and notices
   point at it. */
static const char *keep_path(struct loader *ld, const char *path)
{
    int n = 0;

    while (ld->cfg->files && ld->cfg->files[n])
        n++;
    char **files = realloc(ld->cfg->files, (size_t)(n + 2) * sizeof *files);
    if (!files) {
        ld->oom = true;
        return NULL;
    }
    ld->cfg->files = files;
    files[n] = dup_str(ld, path);
    files[n + 1] = NULL;
    return files[n];
}

/* "%include path" (PgBouncer's directive): the path is taken as written, relative to
   the working directory as in PgBouncer, and read in place of the line. */
static void start_include(struct loader *ld, const char *rest)
{
    char path[4096];
    struct stat st;

    rest = skip_space(rest);
    size_t len = strlen(rest);
    while (len > 0 && isspace((unsigned char)rest[len - 1]))
        len--;
    if (len == 0 || len >= sizeof path) {
        report(ld, ld->lineno, "%%include needs a file name");
        return;
    }
    memcpy(path, rest, len);
    path[len] = '\0';
    if (!ld->includes_allowed) {
        report(ld, ld->lineno, "%%include %s: only a configuration read from a file may include",
               path);
        return;
    }
    if (ld->depth >= MAX_INCLUDE_DEPTH) {
        report(ld, ld->lineno, "%%include %s: nested deeper than %d files", path,
               MAX_INCLUDE_DEPTH);
        return;
    }
    FILE *fp = fopen(path, "r");
    if (!fp) {
        report(ld, ld->lineno, "%%include %s: cannot open: %s", path, strerror(errno));
        return;
    }
    /* A device or a pipe could be read forever. */
    if (fstat(fileno(fp), &st) < 0 || !S_ISREG(st.st_mode)) {
        report(ld, ld->lineno, "%%include %s: not a regular file", path);
        fclose(fp);
        return;
    }
    for (int i = 0; i <= ld->depth; i++) {
        if (ld->stack[i].dev == st.st_dev && ld->stack[i].ino == st.st_ino) {
            report(ld, ld->lineno, "%%include %s: include loop (%s is already being read)", path,
                   ld->stack[i].path);
            fclose(fp);
            return;
        }
    }
    const char *kept = keep_path(ld, path);
    if (!kept) {
        fclose(fp);
        return;
    }
    ld->stack[ld->depth].lineno = ld->lineno;
    ld->depth++;
    ld->stack[ld->depth] = (struct source){kept, fp, 0, st.st_dev, st.st_ino};
    ld->path = kept;
    ld->fp = fp;
    ld->lineno = 0;
}

/* Back to the file that included the one just finished. */
static void end_include(struct loader *ld)
{
    fclose(ld->stack[ld->depth].fp);
    ld->depth--;
    ld->path = ld->stack[ld->depth].path;
    ld->fp = ld->stack[ld->depth].fp;
    ld->lineno = ld->stack[ld->depth].lineno;
}

static bool is_include(const char *line)
{
    const char *p = skip_space(line);
    return strncmp(p, "%include", 8) == 0 && (p[8] == ' ' || p[8] == '\t');
}

/* ini_reader: one physical line per call, so ld->lineno is the line inih handles.
   Reads with getc rather than fgets so that over-long lines and NUL bytes are seen.
   An included file's lines come in place of its %include line, which inih sees as
   blank. */
static char *read_line(char *buf, int size, void *stream)
{
    struct loader *ld = stream;
    bool too_long = false, has_nul = false;
    int c, n = 0;

    for (;;) {
        while ((c = getc(ld->fp)) != EOF && c != '\n') {
            has_nul |= c == '\0';
            if (n < size - 2)
                buf[n++] = (char)c;
            else
                too_long = true;
        }
        if (!(c == EOF && n == 0 && !too_long))
            break;
        if (ld->depth == 0)
            return NULL;
        end_include(ld);
    }
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
    /* inih strips a BOM only from the first line it sees, the main file's */
    if (ld->depth > 0 && ld->lineno == 1 && strncmp(buf, "\xEF\xBB\xBF", 3) == 0)
        memmove(buf, buf + 3, (size_t)n - 3 + 1); /* n >= 3: the BOM is there */
    if (is_include(buf)) {
        start_include(ld, skip_space(buf) + 8);
        buf[0] = '\0';
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
    case SEC_PEERS:
        parse_peer(ld, name, value);
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
static struct place key_place(const struct loader *ld, const char *name)
{
    int i = config_key_find(name, WP_SEC_GLOBAL);

    if (i >= 0 && ld->key_place[config_key_canonical(i)].line)
        return ld->key_place[config_key_canonical(i)];
    if (ld->global_place.line)
        return ld->global_place;
    return (struct place){ld->stack[0].path, 1};
}

static bool key_set(const struct loader *ld, const char *name)
{
    return ld->key_place[config_key_canonical(config_key_find(name, WP_SEC_GLOBAL))].line != 0;
}

static void validate_pool_sizes(struct loader *ld, const struct wp_pool_settings *s,
                                struct place at, const char *who)
{
    if (s->min_pool_size > s->max_pool_size)
        report_at(ld, at, "%smin_pool_size (%d) is larger than max_pool_size (%d)", who,
                  s->min_pool_size, s->max_pool_size);
}

static void validate_tls(struct loader *ld)
{
    const struct wp_config *cfg = ld->cfg;
    int mode = cfg->client_tls_sslmode;
    unsigned mask;
    char why[160];
    if (tls_parse_protocols(cfg->client_tls_protocols, &mask, why, sizeof why) < 0)
        report_at(ld, key_place(ld, "client_tls_protocols"), "client_tls_protocols: %s", why);
    if (tls_parse_protocols(cfg->server_tls_protocols, &mask, why, sizeof why) < 0)
        report_at(ld, key_place(ld, "server_tls_protocols"), "server_tls_protocols: %s", why);
    if (!cfg->server_tls_cert_file != !cfg->server_tls_key_file)
        report_at(ld,
                  key_place(ld, cfg->server_tls_cert_file ? "server_tls_cert_file"
                                                          : "server_tls_key_file"),
                  "server_tls_cert_file and server_tls_key_file go together");
    if (mode != WP_SSLMODE_DISABLE && (!cfg->client_tls_key_file || !cfg->client_tls_cert_file))
        report_at(ld, key_place(ld, "client_tls_sslmode"),
                  "client_tls_sslmode %s needs client_tls_key_file and client_tls_cert_file",
                  tls_sslmode_names[mode]);
    if (mode >= WP_SSLMODE_VERIFY_CA && !cfg->client_tls_ca_file)
        report_at(ld, key_place(ld, "client_tls_sslmode"),
                  "client_tls_sslmode %s needs client_tls_ca_file to verify client certificates",
                  tls_sslmode_names[mode]);
    if (cfg->auth_type == WP_AUTH_CERT && (mode == WP_SSLMODE_DISABLE || !cfg->client_tls_ca_file))
        report_at(ld, key_place(ld, "auth_type"),
                  "auth_type cert needs client_tls_sslmode (not disable) and client_tls_ca_file");
}

/* Names that go into application_name and the fleet's query: a short, safe charset. */
static void validate_fleet(struct loader *ld)
{
    const struct wp_config *cfg = ld->cfg;
    const char *keys[] = {"fleet_name", "fleet_instance"};
    const char *values[] = {cfg->fleet_name, cfg->fleet_instance};
    for (int i = 0; i < 2; i++)
        if (values[i] && *values[i] && !fleet_name_valid(values[i]))
            report_at(ld, key_place(ld, keys[i]),
                      "%s: \"%.64s\" is not 1 to %d characters of A-Z a-z 0-9 _ . -", keys[i],
                      values[i], FLEET_NAME_MAX);
}

static void validate_globals(struct loader *ld)
{
    const struct wp_config *cfg = ld->cfg;

    validate_pool_sizes(
        ld, &cfg->pool,
        key_place(ld, key_set(ld, "min_pool_size") ? "min_pool_size" : "max_pool_size"), "");
    validate_tls(ld);
    validate_fleet(ld);
    if (cfg->auth_type == WP_AUTH_HBA && !cfg->auth_hba_file)
        report_at(ld, key_place(ld, "auth_type"), "auth_type hba needs auth_hba_file");
    /* With hba, each rule's method says whether a password is checked, and a password
       client whose user has no secret fails. As in PgBouncer, auth_user alone will do:
       every user is then looked up (authq.c). */
    bool any_auth_user = cfg->auth_user != NULL;
    for (int i = 0; i < cfg->ndbs; i++)
        any_auth_user |= cfg->dbs[i].auth_user != NULL;
    if (cfg->auth_type != WP_AUTH_TRUST && cfg->auth_type != WP_AUTH_CERT &&
        cfg->auth_type != WP_AUTH_HBA && !cfg->auth_file && !any_auth_user)
        report_at(ld, key_place(ld, "auth_type"), "auth_type %s needs auth_file%s",
                  auth_names[cfg->auth_type],
                  key_set(ld, "auth_type") ? ""
                                           : " (md5 is the default; auth_type = trust has none)");
    if (!*cfg->listen_addr && !*cfg->unix_socket_dir)
        report_at(ld, key_place(ld, key_set(ld, "listen_addr") ? "listen_addr" : "unix_socket_dir"),
                  "listen_addr and unix_socket_dir are both empty: nothing to listen on");
    if (*cfg->stats_listen && config_split_host_port(cfg->stats_listen, NULL, 0, NULL) < 0)
        report_at(ld, key_place(ld, "stats_listen"),
                  "stats_listen: \"%.64s\" is not host:port (e.g. 127.0.0.1:9127, [::1]:9127)",
                  cfg->stats_listen);
    if (log_format_from_name(cfg->log_format) < 0)
        report_at(ld, key_place(ld, "log_format"), "log_format: \"%.64s\" is not text or json",
                  cfg->log_format);
    if (log_facility_from_name(cfg->syslog_facility) < 0)
        report_at(ld, key_place(ld, "syslog_facility"),
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
        validate_pool_sizes(ld, &eff, (struct place){db->file, db->line}, who);
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
        validate_pool_sizes(ld, &eff, (struct place){user->file, user->line}, who);
    }
}

/* ---------------------------------------------------------------- defaults */

/* Every stored [warmpool] key gets its default by parsing the table's text, so the
   value in force is the one SHOW CONFIG and the docs show. A default the parser
   refuses is a bug in the table; it is reported like any error (the unit tests load
   the defaults). */
static void set_defaults(struct loader *ld)
{
    for (int i = 0; i < wp_nkeys && !ld->oom; i++) {
        const struct wp_key *k = &wp_keys[i];
        if (!k->dflt || (k->flags & WP_KEY_ALIAS) ||
            (k->base != WP_KEY_IN_CONFIG && k->base != WP_KEY_IN_POOL))
            continue;
        void *base = k->base == WP_KEY_IN_POOL ? (void *)&ld->cfg->pool : (void *)ld->cfg;
        if (!set_value(ld, k, base, k->dflt, "default of "))
            ld->oom |= ld->nerrors == 0; /* out of memory is the only way to fail silently */
    }
}

/* ---------------------------------------------------------------- public API */

/* Parse from fp (NULL: could not be opened, errno says why); `path` names it in messages.
   %include is followed only for a real file (`includes`). */
static int load_stream(const char *path, FILE *fp, bool includes, const struct set_values *sv,
                       struct wp_config *out, char *err, size_t errlen)
{
    int open_errno = errno;
    struct loader ld;
    struct stat st;

    memset(&ld, 0, sizeof ld);
    ld.cfg = out;
    ld.path = path;
    ld.err = err;
    ld.errlen = errlen;
    ld.section_label = "warmpool";
    ld.includes_allowed = includes;
    if (err && errlen)
        err[0] = '\0';
    memset(out, 0, sizeof *out);

    out->path = dup_str(&ld, path);
    const char *kept = keep_path(&ld, path);
    if (kept)
        ld.path = kept;
    ld.stack[0] = (struct source){ld.path, fp, 0, 0, 0};
    if (fp && fileno(fp) >= 0 && fstat(fileno(fp), &st) == 0) {
        ld.stack[0].dev = st.st_dev;
        ld.stack[0].ino = st.st_ino;
    }
    set_defaults(&ld);
    ld.fp = fp;
    if (!ld.fp) {
        report(&ld, 0, "cannot open: %s", strerror(open_errno));
    } else if (!ld.oom) {
        parse_file(&ld);
        while (ld.depth > 0) /* inih stopped early (out of memory) */
            end_include(&ld);
        if (!ld.oom)
            apply_set_values(&ld, sv);
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
    return config_load_with_overrides(path, NULL, NULL, 0, out, err, errlen);
}

int config_load_with_overrides(const char *path, const char *const *keys, const char *const *values,
                               int n, struct wp_config *out, char *err, size_t errlen)
{
    const struct set_values sv = {keys, values, n};
    FILE *fp = fopen(path, "r");
    int rc = load_stream(path, fp, true, &sv, out, err, errlen);
    if (fp)
        fclose(fp);
    return rc;
}

int config_load_string(const char *name, const char *text, size_t len, struct wp_config *out,
                       char *err, size_t errlen)
{
    /* Read-only: fmemopen takes a non-const pointer but never writes through it. */
    FILE *fp = fmemopen((void *)text, len, "r");
    static const struct set_values none;
    int rc = load_stream(name, fp, false, &none, out, err, errlen);
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
    for (int i = 0; i < wp_nkeys; i++) {
        const struct wp_key *k = &wp_keys[i];
        if (k->base == WP_KEY_IN_DB && !(k->flags & WP_KEY_ALIAS) &&
            (k->type == WP_KEY_STR || k->type == WP_KEY_PATH))
            free(*(char **)((char *)db + k->off));
    }
}

void config_free(struct wp_config *cfg)
{
    if (!cfg)
        return;
    for (int i = 0; i < wp_nkeys; i++) {
        if (wp_keys[i].base != WP_KEY_IN_CONFIG || (wp_keys[i].flags & WP_KEY_ALIAS))
            continue;
        void *field = (char *)cfg + wp_keys[i].off;
        if (wp_keys[i].type == WP_KEY_STR || wp_keys[i].type == WP_KEY_PATH) {
            free(*(char **)field);
            *(char **)field = NULL;
        } else if (wp_keys[i].type == WP_KEY_LIST) {
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
    peers_config_free(&cfg->peers);
    free(cfg->path);
    free_list(cfg->files);
    free_list(cfg->notices);
    for (int i = 0; cfg->ignored_values && i < WP_KEYS_MAX; i++)
        free(cfg->ignored_values[i]);
    free(cfg->ignored_values);
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

/* Copies every pool setting that src sets (not WP_UNSET) over dst. */
static void apply_overrides(struct wp_pool_settings *dst, const struct wp_pool_settings *src)
{
    for (int i = 0; i < wp_nkeys; i++) {
        const struct wp_key *k = &wp_keys[i];
        if (k->base != WP_KEY_IN_POOL || (k->flags & WP_KEY_ALIAS))
            continue;
        const void *from = (const char *)src + k->off;
        void *to = (char *)dst + k->off;
        if (k->type == WP_KEY_DURATION || k->type == WP_KEY_SIZE) {
            if (*(const int64_t *)from != WP_UNSET)
                *(int64_t *)to = *(const int64_t *)from;
        } else if (*(const int *)from != WP_UNSET) {
            *(int *)to = *(const int *)from;
        }
    }
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

const char *config_auth_name(int auth_type)
{
    return auth_type >= WP_AUTH_TRUST && auth_type <= WP_AUTH_HBA ? auth_names[auth_type]
                                                                  : "unknown";
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

const char *config_db_conn_value(const struct wp_db_config *db, const char *key)
{
    const char *value = NULL;
    for (int i = 0; i < db->nconn; i++)
        if (strcmp(db->conn_keys[i], key) == 0)
            value = db->conn_values[i];
    return value;
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
