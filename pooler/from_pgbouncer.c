/*
 * from_pgbouncer — a PgBouncer 1.25 configuration rewritten as a native warmpool.ini
 * (include/warmpool/from_pgbouncer.h).
 *
 * The file is first loaded as warmpool loads it (so nothing is converted that would
 * not run), then rewritten line by line: [pgbouncer] becomes [warmpool]; a key
 * PgBouncer names otherwise takes warmpool's name (default_pool_size: max_pool_size);
 * a key without effect is kept as a comment, under a line saying so; a key whose
 * meaning differs is kept under a `;` line that says how. %include'd files are inlined
 * where the directive was, so the output stands alone (their paths were relative to
 * the working directory, which the output need not share). Comments, blank lines,
 * values, [databases] and [users] lines are kept as written: warmpool reads PgBouncer's
 * value syntax, units and connection strings (pool_size and reserve_pool included).
 * Where PgBouncer's default differs from warmpool's, a key the file leaves out is
 * written at the end of [warmpool] with PgBouncer's default.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "warmpool/config.h"
#include "warmpool/config_keys.h"
#include "warmpool/from_pgbouncer.h"

#define MAX_DEPTH 10

/* Keys whose meaning differs from PgBouncer's (for an empty value only, when
   `if_empty`). */
static const struct {
    const char *key;
    int if_empty;
    const char *note;
} differences[] = {
    {"server_check_query", 1, "an empty value sends an empty query; PgBouncer turns the check off"},
    {"client_tls_ciphers", 0,
     "an OpenSSL cipher list: libtls names other than fast, normal, secure, compat and default "
     "are not understood"},
    {"auth_query", 0,
     "answers are cached for auth_query_cache_ttl (1min); PgBouncer asks at every "
     "login"},
    {"stats_period", 0, "also the period of SHOW STATS averages"},
};

/* PgBouncer defaults that are not warmpool's, for keys a file leaves out. */
static const struct {
    const char *key, *value, *note;
} defaults[] = {
    {"listen_addr", "", "PgBouncer's default: no TCP (warmpool's is 127.0.0.1)"},
    {"server_login_retry", "15", "PgBouncer's default (warmpool's is 1s)"},
    {"pkt_buf", "4096", "PgBouncer's default (warmpool's is 16kB)"},
    {"max_packet_size", "2147483647", "PgBouncer's default (warmpool's is 1GB)"},
    /* PgBouncer has it per database only: a [warmpool] default stands for all of them */
    {"load_balance_hosts", "round-robin", "PgBouncer's default (warmpool's is disable)"},
};

#define NDEFAULTS (sizeof defaults / sizeof defaults[0])

enum section { SEC_OTHER, SEC_GLOBAL, SEC_ENTRIES };

struct writer {
    FILE *out;
    enum section section;
    int global_seen;
    int set[NDEFAULTS]; /* the file sets defaults[i].key */
    char *err;
    size_t errlen;
};

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    return s;
}

static const char *difference(const char *key, const char *value)
{
    for (size_t i = 0; i < sizeof differences / sizeof differences[0]; i++)
        if (strcasecmp(differences[i].key, key) == 0 && (!differences[i].if_empty || !*value))
            return differences[i].note;
    return NULL;
}

/* "key = value", or "key =" for an empty value. */
static void write_pair(FILE *out, const char *prefix, const char *key, const char *value)
{
    fprintf(out, "%s%s =%s%s\n", prefix, key, *value ? " " : "", value);
}

/* The PgBouncer defaults that differ, for the keys the file did not set. */
static void write_defaults(struct writer *w)
{
    for (size_t i = 0; i < NDEFAULTS; i++) {
        if (w->set[i])
            continue;
        fprintf(w->out, "; %s\n", defaults[i].note);
        write_pair(w->out, "", defaults[i].key, defaults[i].value);
        w->set[i] = 1;
    }
}

static void write_global(struct writer *w, const char *key, const char *value, const char *line)
{
    int i = config_key_find(key, WP_SEC_GLOBAL);

    for (size_t d = 0; d < NDEFAULTS; d++)
        w->set[d] |= strcasecmp(defaults[d].key, key) == 0;
    if (i < 0) { /* not a key (the file loaded, so it cannot be): as written */
        fprintf(w->out, "%s\n", line);
        return;
    }
    const struct wp_key *k = &wp_keys[i];
    if (k->type == WP_KEY_NO_EFFECT) {
        fprintf(w->out, "; no effect in warmpool (docs/CONFIG.md says what to do instead):\n");
        write_pair(w->out, ";", k->name, value);
        return;
    }
    const struct wp_key *c = &wp_keys[config_key_canonical(i)];
    const char *note = difference(key, value);
    if (c != k)
        fprintf(w->out, "; PgBouncer's %s\n", k->name);
    if (note)
        fprintf(w->out, "; differs from PgBouncer: %s\n", note);
    write_pair(w->out, "", c->name, value);
}

/* Does a connection string (or [users] entry) set `key`? */
static int sets_key(const char *text, const char *key)
{
    size_t len = strlen(key);
    for (const char *p = text; (p = strstr(p, key)) != NULL; p += len) {
        int starts = p == text || isspace((unsigned char)p[-1]);
        const char *q = p + len;
        while (*q == ' ' || *q == '\t')
            q++;
        if (starts && *q == '=')
            return 1;
    }
    return 0;
}

/* A [databases] or [users] line, under a comment for each key in it without effect. */
static void write_entry(struct writer *w, const char *value, const char *line)
{
    for (int i = 0; i < wp_nkeys; i++) {
        const struct wp_key *k = &wp_keys[i];
        if (k->type == WP_KEY_NO_EFFECT && (k->sections & (WP_SEC_DB | WP_SEC_USER)) &&
            sets_key(value, k->name))
            fprintf(w->out, "; %s: no effect in warmpool\n", k->name);
    }
    fprintf(w->out, "%s\n", line);
}

static void write_section(struct writer *w, const char *name, const char *line)
{
    if (w->section == SEC_GLOBAL)
        write_defaults(w);
    if (strncasecmp(name, "[pgbouncer]", 11) == 0 || strncasecmp(name, "[warmpool]", 10) == 0) {
        w->section = SEC_GLOBAL;
        w->global_seen = 1;
        fprintf(w->out, "[warmpool]\n");
        return;
    }
    w->section = SEC_ENTRIES;
    fprintf(w->out, "%s\n", line);
}

static int convert_file(struct writer *w, const char *path, int depth);

static int write_line(struct writer *w, char *line, int depth)
{
    char *p = trim(line);
    char whole[strlen(p) + 1];

    if (depth == 0 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    if (!*p || *p == ';' || *p == '#') {
        fprintf(w->out, "%s\n", p);
        return 0;
    }
    if (*p == '[') {
        write_section(w, p, p);
        return 0;
    }
    if (strncmp(p, "%include", 8) == 0 && isspace((unsigned char)p[8])) {
        char *file = trim(p + 8);
        fprintf(w->out, "; %%include %s (inlined)\n", file);
        int rc = convert_file(w, file, depth + 1);
        fprintf(w->out, "; end of %s\n", file);
        return rc;
    }
    memcpy(whole, p, sizeof whole);
    size_t at = strcspn(p, "=:");
    char *value = trim(p + at + (p[at] ? 1 : 0));
    p[at] = '\0';
    char *key = trim(p);
    if (w->section == SEC_GLOBAL)
        write_global(w, key, value, whole);
    else
        write_entry(w, value, whole);
    return 0;
}

static int convert_file(struct writer *w, const char *path, int depth)
{
    FILE *fp = depth < MAX_DEPTH ? fopen(path, "r") : NULL;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;

    if (!fp) {
        snprintf(w->err, w->errlen, "%s: cannot open", path);
        return -1;
    }
    while (rc == 0 && getline(&line, &cap, fp) >= 0)
        rc = write_line(w, line, depth);
    free(line);
    fclose(fp);
    return rc;
}

int from_pgbouncer(const char *path, FILE *out, char *err, size_t errlen)
{
    struct wp_config cfg;
    struct writer w = {.out = out, .err = err, .errlen = errlen};

    if (config_load(path, &cfg, err, errlen) < 0)
        return -1;
    config_free(&cfg);
    fprintf(out, "; warmpool.ini from the PgBouncer configuration %s (warmpool --from-pgbouncer)\n",
            path);
    if (convert_file(&w, path, 0) < 0)
        return -1;
    if (!w.global_seen) {
        fprintf(out, "[warmpool]\n");
        w.section = SEC_GLOBAL;
    }
    if (w.section == SEC_GLOBAL)
        write_defaults(&w);
    return 0;
}
