/*
 * params — session parameter sets and the SQL that syncs a backend to a client
 * (see include/warmpool/params.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "warmpool/params.h"

/* Reported through ParameterStatus and changeable per session. */
static const char *const settable_reported[] = {
    "application_name",
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "standard_conforming_strings",
    "default_transaction_read_only",
    NULL,
};

/* Everything PostgreSQL 15 reports with ParameterStatus. */
const char *const params_reported_names[] = {
    "application_name",
    "client_encoding",
    "DateStyle",
    "default_transaction_read_only",
    "in_hot_standby",
    "integer_datetimes",
    "IntervalStyle",
    "is_superuser",
    "server_encoding",
    "server_version",
    "session_authorization",
    "standard_conforming_strings",
    "TimeZone",
    NULL,
};

/* Startup keys that are not GUCs, or that a pooler must not pass on. */
static const char *const reserved_startup[] = {
    "user", "database", "replication", "options", "_pq_.", NULL,
};

static int in_list(const char *const *list, const char *name)
{
    for (int i = 0; list[i]; i++)
        if (strcasecmp(list[i], name) == 0)
            return 1;
    return 0;
}

int params_is_settable_reported(const char *name)
{
    return in_list(settable_reported, name);
}

int params_is_reported(const char *name)
{
    return in_list(params_reported_names, name);
}

int params_is_reserved_startup(const char *name)
{
    /* Protocol extension options start with "_pq_.". */
    return strncmp(name, "_pq_.", 5) == 0 || in_list(reserved_startup, name);
}

/* Items that a sync may SET or RESET: all but reported read-only ones. */
static int is_syncable(const struct wp_param *item)
{
    return !item->reported || params_is_settable_reported(item->name);
}

/* FNV-1a of lower-cased name, NUL, value; XOR-combined so order does not matter. */
static uint64_t item_digest(const struct wp_param *item)
{
    if (!is_syncable(item))
        return 0;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *c = item->name; *c; c++) {
        h ^= (uint8_t)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
        h *= 0x100000001b3ULL;
    }
    h ^= 0xff; /* separator that cannot occur in a name */
    h *= 0x100000001b3ULL;
    for (const char *c = item->value; *c; c++) {
        h ^= (uint8_t)*c;
        h *= 0x100000001b3ULL;
    }
    /* Unreported values count differently: they need a RESET when absent. */
    return item->reported ? h : h ^ 0x9e3779b97f4a7c15ULL;
}

static int find_index(const struct wp_params *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (strcasecmp(p->items[i].name, name) == 0)
            return i;
    return -1;
}

static int grow(struct wp_params *p)
{
    int cap = p->cap ? p->cap * 2 : 16;
    if (cap > PARAMS_MAX)
        cap = PARAMS_MAX;
    struct wp_param *items = realloc(p->items, (size_t)cap * sizeof *items);
    if (!items)
        return -1;
    p->items = items;
    p->cap = cap;
    return 0;
}

/* ---- interned (shared, copy-on-write) sets ---- */

struct wp_params_shared {
    struct wp_params_shared *next; /* hash chain */
    uint64_t hash;
    int refs;
    int n;
    struct wp_param *items; /* owned, with their strings */
};

#define INTERN_BUCKETS 64
static struct wp_params_shared *intern_table[INTERN_BUCKETS];
static int interned_count;

static void free_items(struct wp_param *items, int n)
{
    for (int i = 0; i < n; i++) {
        free(items[i].name);
        free(items[i].value);
    }
    free(items);
}

static void shared_release(struct wp_params_shared *s)
{
    if (--s->refs > 0)
        return;
    struct wp_params_shared **link = &intern_table[s->hash % INTERN_BUCKETS];
    while (*link != s)
        link = &(*link)->next;
    *link = s->next;
    free_items(s->items, s->n);
    free(s);
    interned_count--;
}

/* Give p its own copy of a shared set before changing it. -1 on out of memory. */
static int unshare(struct wp_params *p)
{
    struct wp_params_shared *s = p->shared;
    if (!s)
        return 0;
    struct wp_param *items = calloc((size_t)s->n + 1, sizeof *items);
    if (!items)
        return -1;
    for (int i = 0; i < s->n; i++) {
        items[i].name = strdup(s->items[i].name);
        items[i].value = strdup(s->items[i].value);
        items[i].reported = s->items[i].reported;
        if (!items[i].name || !items[i].value) {
            free_items(items, i + 1);
            return -1;
        }
    }
    p->items = items;
    p->cap = s->n + 1;
    p->shared = NULL;
    shared_release(s);
    return 0;
}

/* Like item_digest, but over every item (reported read-only ones too). */
static uint64_t set_hash(const struct wp_params *p)
{
    uint64_t all = (uint64_t)p->n;
    for (int i = 0; i < p->n; i++) {
        uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)p->items[i].reported;
        for (const char *c = p->items[i].name; *c; c++)
            h = (h ^ (uint8_t)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c)) * 0x100000001b3ULL;
        h = (h ^ 0xff) * 0x100000001b3ULL;
        for (const char *c = p->items[i].value; *c; c++)
            h = (h ^ (uint8_t)*c) * 0x100000001b3ULL;
        all ^= h * 0x9e3779b97f4a7c15ULL;
    }
    return all;
}

static int same_items(const struct wp_params_shared *s, const struct wp_params *p)
{
    if (s->n != p->n)
        return 0;
    struct wp_params view = {.n = s->n, .items = s->items};
    for (int i = 0; i < p->n; i++) {
        int j = find_index(&view, p->items[i].name);
        if (j < 0 || strcmp(s->items[j].value, p->items[i].value) != 0 ||
            s->items[j].reported != p->items[i].reported)
            return 0;
    }
    return 1;
}

void params_intern(struct wp_params *p)
{
    if (p->shared || p->n == 0)
        return;
    uint64_t hash = set_hash(p);
    struct wp_params_shared **bucket = &intern_table[hash % INTERN_BUCKETS];
    struct wp_params_shared *s = *bucket;
    while (s && !(s->hash == hash && same_items(s, p)))
        s = s->next;
    if (s) {
        free_items(p->items, p->n);
    } else {
        s = calloc(1, sizeof *s);
        if (!s)
            return; /* stays private: correct, only larger */
        s->hash = hash;
        s->n = p->n;
        s->items = p->items;
        s->next = *bucket;
        *bucket = s;
        interned_count++;
    }
    s->refs++;
    p->items = s->items;
    p->cap = 0;
    p->shared = s;
}

int params_interned_count(void)
{
    return interned_count;
}

/* ---- changes ---- */

int params_set(struct wp_params *p, const char *name, const char *value)
{
    int i = find_index(p, name);
    if (i >= 0 && strcmp(p->items[i].value, value) == 0)
        return 0;
    if (unshare(p) < 0)
        return -1;
    char *copy = strdup(value);
    if (!copy)
        return -1;
    if (i >= 0) {
        p->digest ^= item_digest(&p->items[i]);
        free(p->items[i].value);
        p->items[i].value = copy;
        p->digest ^= item_digest(&p->items[i]);
        return 0;
    }
    if (p->n == PARAMS_MAX || (p->n == p->cap && grow(p) < 0)) {
        free(copy);
        return -1;
    }
    struct wp_param *item = &p->items[p->n];
    item->name = strdup(name);
    if (!item->name) {
        free(copy);
        return -1;
    }
    item->value = copy;
    item->reported = params_is_reported(name);
    p->digest ^= item_digest(item);
    p->n++;
    return 0;
}

void params_set_reported(struct wp_params *p, const char *name, int reported)
{
    int i = find_index(p, name);
    if (i < 0 || p->items[i].reported == reported || unshare(p) < 0)
        return;
    p->digest ^= item_digest(&p->items[i]);
    p->items[i].reported = reported;
    p->digest ^= item_digest(&p->items[i]);
}

const char *params_get(const struct wp_params *p, const char *name)
{
    int i = find_index(p, name);
    return i >= 0 ? p->items[i].value : NULL;
}

void params_remove(struct wp_params *p, const char *name)
{
    int i = find_index(p, name);
    if (i < 0 || unshare(p) < 0)
        return;
    p->digest ^= item_digest(&p->items[i]);
    free(p->items[i].name);
    free(p->items[i].value);
    p->items[i] = p->items[--p->n];
}

void params_remove_unreported(struct wp_params *p)
{
    for (int i = p->n - 1; i >= 0; i--)
        if (!p->items[i].reported)
            params_remove(p, p->items[i].name);
}

void params_clear(struct wp_params *p)
{
    if (p->shared)
        shared_release(p->shared);
    else
        free_items(p->items, p->n);
    p->items = NULL;
    p->shared = NULL;
    p->n = p->cap = 0;
    p->digest = 0;
}

void params_copy(struct wp_params *dst, const struct wp_params *src)
{
    params_clear(dst);
    if (src->shared) {
        *dst = *src;
        src->shared->refs++;
        return;
    }
    for (int i = 0; i < src->n; i++) {
        if (params_set(dst, src->items[i].name, src->items[i].value) == 0)
            params_set_reported(dst, src->items[i].name, src->items[i].reported);
    }
}

/* 'text' with quotes doubled; E'…' when backslashes need escaping too. */
static int append_literal(struct wp_buf *sql, const char *text)
{
    int has_backslash = strchr(text, '\\') != NULL;
    if (buf_append(sql, has_backslash ? "E'" : "'", has_backslash ? 2 : 1) < 0)
        return -1;
    for (const char *c = text; *c; c++) {
        if ((*c == '\'' || *c == '\\') && buf_append(sql, c, 1) < 0)
            return -1;
        if (buf_append(sql, c, 1) < 0)
            return -1;
    }
    return buf_append(sql, "'", 1);
}

static int append_identifier(struct wp_buf *sql, const char *name)
{
    if (buf_append(sql, "\"", 1) < 0)
        return -1;
    for (const char *c = name; *c; c++) {
        if (*c == '"' && buf_append(sql, c, 1) < 0)
            return -1;
        if (buf_append(sql, c, 1) < 0)
            return -1;
    }
    return buf_append(sql, "\"", 1);
}

static int append_str(struct wp_buf *sql, const char *s)
{
    return buf_append(sql, s, strlen(s));
}

/* Values the client wants that the server does not have. */
static int needs_set(const struct wp_param *want, const struct wp_params *server)
{
    const char *have = params_get(server, want->name);
    return !have || strcmp(have, want->value) != 0;
}

/* Unreported values warmpool set for an earlier client that this one did not ask for. */
static int needs_reset(const struct wp_param *had, const struct wp_params *client)
{
    return !had->reported && !params_get(client, had->name);
}

static int append_set_config(struct wp_buf *sql, const struct wp_param *want, int first)
{
    /* set_config parses the value like the config file does, so list-valued
       parameters such as search_path keep their meaning. */
    if (append_str(sql, first ? "SELECT pg_catalog.set_config(" : ", pg_catalog.set_config(") < 0 ||
        append_literal(sql, want->name) < 0 || append_str(sql, ", ") < 0 ||
        append_literal(sql, want->value) < 0 || append_str(sql, ", false)") < 0)
        return -1;
    return 0;
}

int params_build_sync(const struct wp_params *client, const struct wp_params *server,
                      struct wp_buf *sql)
{
    int count = 0;
    for (int i = 0; i < client->n; i++) {
        const struct wp_param *want = &client->items[i];
        if (want->reported && !params_is_settable_reported(want->name))
            continue;
        if (!needs_set(want, server))
            continue;
        if (append_set_config(sql, want, count == 0) < 0)
            return -1;
        count++;
    }
    if (count > 0 && append_str(sql, ";") < 0)
        return -1;
    for (int i = 0; i < server->n; i++) {
        const struct wp_param *had = &server->items[i];
        if (!needs_reset(had, client))
            continue;
        if (append_str(sql, "RESET ") < 0 || append_identifier(sql, had->name) < 0 ||
            append_str(sql, ";") < 0)
            return -1;
        count++;
    }
    return count;
}

void params_apply_sync(const struct wp_params *client, struct wp_params *server)
{
    for (int i = server->n - 1; i >= 0; i--)
        if (needs_reset(&server->items[i], client))
            params_remove(server, server->items[i].name);
    for (int i = 0; i < client->n; i++) {
        const struct wp_param *want = &client->items[i];
        if (want->reported && !params_is_settable_reported(want->name))
            continue;
        if (params_set(server, want->name, want->value) == 0)
            params_set_reported(server, want->name, want->reported);
    }
}

/* One option token: "-c name=value", "-cname=value" or "--name=value". */
static int parse_option_pair(struct wp_params *p, const char *pair)
{
    const char *eq = strchr(pair, '=');
    if (!eq || eq == pair)
        return -1;
    char name[128];
    size_t nlen = (size_t)(eq - pair);
    if (nlen >= sizeof name)
        return -1;
    memcpy(name, pair, nlen);
    name[nlen] = '\0';
    for (char *c = name; *c; c++)
        if (*c == '-')
            *c = '_';
    if (params_is_reserved_startup(name))
        return -1;
    return params_set(p, name, eq + 1);
}

/* Split on unescaped whitespace; "\ " keeps a space, as PostgreSQL's pg_split_opts does. */
static int next_token(const char **cursor, char *out, size_t outlen)
{
    const char *c = *cursor;
    while (*c == ' ' || *c == '\t')
        c++;
    size_t n = 0;
    while (*c && *c != ' ' && *c != '\t') {
        if (*c == '\\' && c[1])
            c++;
        if (n + 1 >= outlen)
            return -1;
        out[n++] = *c++;
    }
    out[n] = '\0';
    *cursor = c;
    return (int)n;
}

int params_parse_options(struct wp_params *p, const char *options)
{
    char token[1024];
    const char *cursor = options;
    int len;
    while ((len = next_token(&cursor, token, sizeof token)) > 0) {
        if (strcmp(token, "-c") == 0) {
            if (next_token(&cursor, token, sizeof token) <= 0 || parse_option_pair(p, token) < 0)
                return -1;
        } else if (strncmp(token, "-c", 2) == 0) {
            if (parse_option_pair(p, token + 2) < 0)
                return -1;
        } else if (strncmp(token, "--", 2) == 0) {
            if (parse_option_pair(p, token + 2) < 0)
                return -1;
        } else {
            return -1;
        }
    }
    return len < 0 ? -1 : 0;
}
