/*
 * prepared — registry of prepared statements, client name maps, per-backend sets
 * with LRU order (see include/warmpool/prepared.h). Pure data structures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/prepared.h"
#include "warmpool/proto.h"

#define REGISTRY_MIN_BUCKETS 256
#define NAMEMAP_MIN_BUCKETS 16
#define SERVERSET_MIN_BUCKETS 32

#define HASH_SEED 0xcbf29ce484222325ULL
#define HASH_PRIME 0x100000001b3ULL

/* FNV-1a, 64-bit: fast and good enough, since equality is confirmed in full. */
static uint64_t hash_bytes(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= HASH_PRIME;
    }
    return h;
}

int prepared_parse_parse(const uint8_t *body, size_t len, struct wp_parse_msg *out)
{
    const uint8_t *end = body + len;
    const uint8_t *name_end = memchr(body, '\0', len);
    if (!name_end)
        return -1;
    const uint8_t *query = name_end + 1;
    const uint8_t *query_end = memchr(query, '\0', (size_t)(end - query));
    if (!query_end || end - query_end < 3)
        return -1;
    const uint8_t *p = query_end + 1;
    uint16_t nparams = proto_get_u16(p);
    p += 2;
    if ((size_t)(end - p) != (size_t)nparams * 4)
        return -1;
    out->name = (const char *)body;
    out->query = (const char *)query;
    out->query_len = (size_t)(query_end - query);
    out->nparams = nparams;
    out->param_types = p;
    out->sql_level = 0;
    out->scope = NULL;
    return 0;
}

/* ---- registry ---- */

int registry_init(struct wp_registry *reg)
{
    reg->buckets = calloc(REGISTRY_MIN_BUCKETS, sizeof *reg->buckets);
    if (!reg->buckets)
        return -1;
    reg->nbuckets = REGISTRY_MIN_BUCKETS;
    reg->count = 0;
    reg->next_id = 0;
    return 0;
}

static void stmt_free(struct wp_stmt *stmt)
{
    free(stmt->query);
    free(stmt->param_types);
    free(stmt->describe);
    free(stmt);
}

void registry_free(struct wp_registry *reg)
{
    for (size_t i = 0; i < reg->nbuckets; i++) {
        struct wp_stmt *stmt = reg->buckets[i];
        while (stmt) {
            struct wp_stmt *next = stmt->hash_next;
            stmt_free(stmt);
            stmt = next;
        }
    }
    free(reg->buckets);
    memset(reg, 0, sizeof *reg);
}

static uint64_t hash_parse(const struct wp_parse_msg *parse)
{
    uint64_t h = hash_bytes(HASH_SEED, parse->query, parse->query_len);
    h = hash_bytes(h, &parse->sql_level, sizeof parse->sql_level);
    h = hash_bytes(h, &parse->scope, sizeof parse->scope);
    return hash_bytes(h, parse->param_types, (size_t)parse->nparams * 4);
}

static int stmt_matches(const struct wp_stmt *stmt, uint64_t hash, const struct wp_parse_msg *parse)
{
    if (stmt->hash != hash || stmt->query_len != parse->query_len ||
        stmt->sql_level != parse->sql_level || stmt->scope != parse->scope ||
        stmt->nparams != parse->nparams || memcmp(stmt->query, parse->query, parse->query_len))
        return 0;
    for (uint16_t i = 0; i < parse->nparams; i++)
        if (stmt->param_types[i] != proto_get_u32(parse->param_types + 4 * i))
            return 0;
    return 1;
}

static void registry_grow(struct wp_registry *reg)
{
    size_t nbuckets = reg->nbuckets * 2;
    struct wp_stmt **buckets = calloc(nbuckets, sizeof *buckets);
    if (!buckets)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < reg->nbuckets; i++) {
        struct wp_stmt *stmt = reg->buckets[i];
        while (stmt) {
            struct wp_stmt *next = stmt->hash_next;
            size_t b = stmt->hash & (nbuckets - 1);
            stmt->hash_next = buckets[b];
            buckets[b] = stmt;
            stmt = next;
        }
    }
    free(reg->buckets);
    reg->buckets = buckets;
    reg->nbuckets = nbuckets;
}

static struct wp_stmt *stmt_new(struct wp_registry *reg, uint64_t hash,
                                const struct wp_parse_msg *parse)
{
    struct wp_stmt *stmt = calloc(1, sizeof *stmt);
    if (!stmt)
        return NULL;
    stmt->query = malloc(parse->query_len + 1);
    stmt->param_types = malloc((size_t)parse->nparams * 4 + 1);
    if (!stmt->query || !stmt->param_types) {
        stmt_free(stmt);
        return NULL;
    }
    memcpy(stmt->query, parse->query, parse->query_len);
    stmt->query[parse->query_len] = '\0';
    stmt->query_len = parse->query_len;
    stmt->nparams = parse->nparams;
    for (uint16_t i = 0; i < parse->nparams; i++)
        stmt->param_types[i] = proto_get_u32(parse->param_types + 4 * i);
    stmt->hash = hash;
    stmt->sql_level = parse->sql_level;
    stmt->scope = parse->scope;
    stmt->id = ++reg->next_id;
    snprintf(stmt->name, sizeof stmt->name, "wp_%llu", (unsigned long long)stmt->id);
    return stmt;
}

struct wp_stmt *registry_intern(struct wp_registry *reg, const struct wp_parse_msg *parse)
{
    uint64_t hash = hash_parse(parse);
    size_t b = hash & (reg->nbuckets - 1);
    for (struct wp_stmt *stmt = reg->buckets[b]; stmt; stmt = stmt->hash_next) {
        if (stmt_matches(stmt, hash, parse)) {
            stmt->refs++;
            return stmt;
        }
    }
    struct wp_stmt *stmt = stmt_new(reg, hash, parse);
    if (!stmt)
        return NULL;
    stmt->refs = 1;
    stmt->hash_next = reg->buckets[b];
    reg->buckets[b] = stmt;
    if (++reg->count > reg->nbuckets)
        registry_grow(reg);
    return stmt;
}

struct wp_stmt *registry_find(const struct wp_registry *reg, const struct wp_parse_msg *parse)
{
    uint64_t hash = hash_parse(parse);
    for (struct wp_stmt *stmt = reg->buckets[hash & (reg->nbuckets - 1)]; stmt;
         stmt = stmt->hash_next)
        if (stmt_matches(stmt, hash, parse))
            return stmt;
    return NULL;
}

void registry_ref(struct wp_stmt *stmt)
{
    stmt->refs++;
}

static void registry_unlink(struct wp_registry *reg, struct wp_stmt *stmt)
{
    struct wp_stmt **link = &reg->buckets[stmt->hash & (reg->nbuckets - 1)];
    while (*link && *link != stmt)
        link = &(*link)->hash_next;
    if (*link) {
        *link = stmt->hash_next;
        reg->count--;
    }
    stmt->hash_next = NULL;
}

void registry_unref(struct wp_registry *reg, struct wp_stmt *stmt)
{
    if (--stmt->refs > 0)
        return;
    if (!stmt->retired)
        registry_unlink(reg, stmt);
    stmt_free(stmt);
}

void registry_retire(struct wp_registry *reg, struct wp_stmt *stmt)
{
    if (stmt->retired)
        return;
    registry_unlink(reg, stmt);
    stmt->retired = 1;
    registry_drop_describe(stmt);
}

int registry_set_describe(struct wp_stmt *stmt, const uint8_t *bytes, size_t len)
{
    if (len == 0)
        return -1;
    uint8_t *copy = malloc(len);
    if (!copy)
        return -1;
    memcpy(copy, bytes, len);
    free(stmt->describe);
    stmt->describe = copy;
    stmt->describe_len = len;
    return 0;
}

void registry_drop_describe(struct wp_stmt *stmt)
{
    free(stmt->describe);
    stmt->describe = NULL;
    stmt->describe_len = 0;
}

void registry_drop_all_describes(struct wp_registry *reg)
{
    for (size_t i = 0; i < reg->nbuckets; i++)
        for (struct wp_stmt *stmt = reg->buckets[i]; stmt; stmt = stmt->hash_next)
            registry_drop_describe(stmt);
}

void registry_retire_scope(struct wp_registry *reg, const void *scope)
{
    for (size_t i = 0; i < reg->nbuckets; i++) {
        struct wp_stmt *stmt = reg->buckets[i];
        while (stmt) {
            struct wp_stmt *next = stmt->hash_next;
            if (stmt->scope == scope)
                registry_retire(reg, stmt);
            stmt = next;
        }
    }
}

/* ---- client name maps ---- */

/* hash_bytes of the name's bytes, read up to its NUL in the same pass. */
static size_t name_bucket(const struct wp_name_map *map, const char *name)
{
    uint64_t h = HASH_SEED;
    for (const uint8_t *p = (const uint8_t *)name; *p; p++) {
        h ^= *p;
        h *= HASH_PRIME;
    }
    return h & (map->nbuckets - 1);
}

struct wp_stmt *namemap_get(const struct wp_name_map *map, const char *name)
{
    if (!map->buckets)
        return NULL;
    for (struct wp_name_entry *e = map->buckets[name_bucket(map, name)]; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e->stmt;
    return NULL;
}

static int namemap_grow(struct wp_name_map *map)
{
    size_t nbuckets = map->nbuckets ? map->nbuckets * 2 : NAMEMAP_MIN_BUCKETS;
    struct wp_name_entry **buckets = calloc(nbuckets, sizeof *buckets);
    if (!buckets)
        return map->buckets ? 0 : -1;
    struct wp_name_map grown = {buckets, (uint32_t)nbuckets, map->count};
    for (size_t i = 0; i < map->nbuckets; i++) {
        struct wp_name_entry *e = map->buckets[i];
        while (e) {
            struct wp_name_entry *next = e->next;
            size_t b = name_bucket(&grown, e->name);
            e->next = buckets[b];
            buckets[b] = e;
            e = next;
        }
    }
    free(map->buckets);
    *map = grown;
    return 0;
}

int namemap_put(struct wp_name_map *map, struct wp_registry *reg, const char *name,
                struct wp_stmt *stmt)
{
    if ((!map->buckets || map->count >= map->nbuckets) && namemap_grow(map) < 0)
        return -1;
    size_t b = name_bucket(map, name);
    for (struct wp_name_entry *e = map->buckets[b]; e; e = e->next) {
        if (strcmp(e->name, name) == 0) {
            registry_ref(stmt);
            registry_unref(reg, e->stmt);
            e->stmt = stmt;
            return 0;
        }
    }
    size_t len = strlen(name);
    struct wp_name_entry *e = malloc(sizeof *e + len + 1);
    if (!e)
        return -1;
    memcpy(e->name, name, len + 1);
    e->stmt = stmt;
    registry_ref(stmt);
    e->next = map->buckets[b];
    map->buckets[b] = e;
    map->count++;
    return 0;
}

int namemap_remove(struct wp_name_map *map, struct wp_registry *reg, const char *name)
{
    if (!map->buckets)
        return 0;
    struct wp_name_entry **link = &map->buckets[name_bucket(map, name)];
    for (; *link; link = &(*link)->next) {
        struct wp_name_entry *e = *link;
        if (strcmp(e->name, name) == 0) {
            *link = e->next;
            registry_unref(reg, e->stmt);
            free(e);
            map->count--;
            return 1;
        }
    }
    return 0;
}

void namemap_clear(struct wp_name_map *map, struct wp_registry *reg)
{
    for (size_t i = 0; i < map->nbuckets; i++) {
        struct wp_name_entry *e = map->buckets[i];
        while (e) {
            struct wp_name_entry *next = e->next;
            registry_unref(reg, e->stmt);
            free(e);
            e = next;
        }
    }
    free(map->buckets);
    memset(map, 0, sizeof *map);
}

/* ---- per-backend sets ---- */

void serverset_init(struct wp_server_set *set)
{
    memset(set, 0, sizeof *set);
    set->lru.lru_prev = set->lru.lru_next = &set->lru;
}

static struct wp_set_node *set_find(const struct wp_server_set *set, const struct wp_stmt *stmt)
{
    if (!set->buckets)
        return NULL;
    struct wp_set_node *n = set->buckets[stmt->id & (set->nbuckets - 1)];
    while (n && n->stmt != stmt)
        n = n->hash_next;
    return n;
}

static void lru_unlink(struct wp_set_node *n)
{
    n->lru_prev->lru_next = n->lru_next;
    n->lru_next->lru_prev = n->lru_prev;
}

static void lru_push_head(struct wp_server_set *set, struct wp_set_node *n)
{
    n->lru_prev = &set->lru;
    n->lru_next = set->lru.lru_next;
    set->lru.lru_next->lru_prev = n;
    set->lru.lru_next = n;
}

int serverset_touch(struct wp_server_set *set, const struct wp_stmt *stmt)
{
    struct wp_set_node *n = set_find(set, stmt);
    if (!n)
        return 0;
    if (set->lru.lru_next != n) {
        lru_unlink(n);
        lru_push_head(set, n);
    }
    return 1;
}

static int set_grow(struct wp_server_set *set)
{
    size_t nbuckets = set->nbuckets ? set->nbuckets * 2 : SERVERSET_MIN_BUCKETS;
    struct wp_set_node **buckets = calloc(nbuckets, sizeof *buckets);
    if (!buckets)
        return set->buckets ? 0 : -1;
    for (size_t i = 0; i < set->nbuckets; i++) {
        struct wp_set_node *n = set->buckets[i];
        while (n) {
            struct wp_set_node *next = n->hash_next;
            size_t b = n->stmt->id & (nbuckets - 1);
            n->hash_next = buckets[b];
            buckets[b] = n;
            n = next;
        }
    }
    free(set->buckets);
    set->buckets = buckets;
    set->nbuckets = nbuckets;
    return 0;
}

int serverset_add(struct wp_server_set *set, struct wp_stmt *stmt)
{
    if (serverset_touch(set, stmt))
        return 0;
    if ((!set->buckets || set->count >= set->nbuckets) && set_grow(set) < 0)
        return -1;
    struct wp_set_node *n = malloc(sizeof *n);
    if (!n)
        return -1;
    n->stmt = stmt;
    registry_ref(stmt);
    size_t b = stmt->id & (set->nbuckets - 1);
    n->hash_next = set->buckets[b];
    set->buckets[b] = n;
    lru_push_head(set, n);
    set->count++;
    return 0;
}

struct wp_stmt *serverset_lru(const struct wp_server_set *set)
{
    return set->count ? set->lru.lru_prev->stmt : NULL;
}

void serverset_remove(struct wp_server_set *set, struct wp_registry *reg, struct wp_stmt *stmt)
{
    if (!set->buckets)
        return;
    struct wp_set_node **link = &set->buckets[stmt->id & (set->nbuckets - 1)];
    while (*link && (*link)->stmt != stmt)
        link = &(*link)->hash_next;
    struct wp_set_node *n = *link;
    if (!n)
        return;
    *link = n->hash_next;
    lru_unlink(n);
    set->count--;
    free(n);
    registry_unref(reg, stmt);
}

void serverset_clear(struct wp_server_set *set, struct wp_registry *reg)
{
    struct wp_set_node *n = set->lru.lru_next;
    while (n && n != &set->lru) {
        struct wp_set_node *next = n->lru_next;
        registry_unref(reg, n->stmt);
        free(n);
        n = next;
    }
    free(set->buckets);
    serverset_init(set);
}

/* ---- pending request queues ---- */

int pending_grow(struct wp_pending_queue *q)
{
    uint32_t cap = q->cap ? q->cap * 2 : 16;
    struct wp_pending *items = malloc(cap * sizeof *items);
    if (!items)
        return -1;
    for (uint32_t i = 0; i < q->count; i++)
        items[i] = q->items[(q->head + i) & (q->cap - 1)];
    free(q->items);
    q->items = items;
    q->head = 0;
    q->cap = cap;
    return 0;
}

void pending_free(struct wp_pending_queue *q)
{
    free(q->items);
    memset(q, 0, sizeof *q);
}
