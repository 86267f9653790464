/*
 * prepared — the prepared-statement registry and its maps, as pure data structures.
 *
 * Registry: one entry per distinct (query text, parameter type OIDs), found by a
 * 64-bit hash and confirmed by full comparison; its backend name is `wp_<id>`.
 * Name map: a client's statement names → registry entries.
 * Server set: which entries one backend has prepared, least recently used first out.
 * Entries are reference counted: every name and every server set holding one counts.
 * No I/O here; the relay decides what to send from these answers.
 */
#ifndef WARMPOOL_PREPARED_H
#define WARMPOOL_PREPARED_H

#include <stddef.h>
#include <stdint.h>

struct wp_stmt {
    struct wp_stmt *hash_next;
    uint64_t id;
    uint64_t hash;
    char *query;
    size_t query_len;
    uint16_t nparams;
    uint32_t *param_types;
    int refs;
    int validated;        /* a backend answered ParseComplete for it */
    int sql_level;        /* made by SQL PREPARE; re-prepared the same way */
    const void *scope;    /* the pool it belongs to */
    int retired;          /* no longer found by text (its result shape changed) */
    uint64_t uses;        /* Binds and Describes naming it */
    uint64_t fingerprint; /* stats fingerprint of query, computed on first use (0 = not yet) */
    uint8_t *describe;    /* cached ParameterDescription + RowDescription/NoData bytes */
    size_t describe_len;
    char name[24]; /* "wp_<id>" */
};

struct wp_registry {
    struct wp_stmt **buckets;
    size_t nbuckets;
    size_t count;
    uint64_t next_id;
};

/* Parse message body (after type and length) → its parts. Pointers into body. */
struct wp_parse_msg {
    const char *name;
    const char *query;
    size_t query_len;
    uint16_t nparams;
    const uint8_t *param_types; /* nparams big-endian uint32s */
    int sql_level;              /* SQL PREPARE: query is "[(types)] AS …" */
    const void *scope;          /* the pool: the same text means different things in
                                   another database or as another user */
};

int prepared_parse_parse(const uint8_t *body, size_t len, struct wp_parse_msg *out);

int registry_init(struct wp_registry *reg);
void registry_free(struct wp_registry *reg);
/* Find or add the entry for this statement; takes a reference. NULL on out of memory. */
struct wp_stmt *registry_intern(struct wp_registry *reg, const struct wp_parse_msg *parse);
/* Unlink from lookups so the next Parse of the same text gets a fresh entry; holders
   keep theirs until they let go. */
void registry_retire(struct wp_registry *reg, struct wp_stmt *stmt);
/* Retire every entry of one scope (after DDL there). */
void registry_retire_scope(struct wp_registry *reg, const void *scope);
/* Find without adding; no reference taken. */
struct wp_stmt *registry_find(const struct wp_registry *reg, const struct wp_parse_msg *parse);
void registry_ref(struct wp_stmt *stmt);
void registry_unref(struct wp_registry *reg, struct wp_stmt *stmt);
/* Remember the backend's description of the statement (Describe S answer). */
int registry_set_describe(struct wp_stmt *stmt, const uint8_t *bytes, size_t len);
void registry_drop_describe(struct wp_stmt *stmt);
/* Schema may have changed: forget every cached description. */
void registry_drop_all_describes(struct wp_registry *reg);

struct wp_name_entry {
    struct wp_name_entry *next;
    struct wp_stmt *stmt;
    char name[];
};

struct wp_name_map {
    struct wp_name_entry **buckets;
    uint32_t nbuckets;
    uint32_t count;
};

struct wp_stmt *namemap_get(const struct wp_name_map *map, const char *name);
/* Map name → stmt (taking a reference); an old mapping is released. 0 or -1. */
int namemap_put(struct wp_name_map *map, struct wp_registry *reg, const char *name,
                struct wp_stmt *stmt);
/* Forget a name; returns 1 when it existed. */
int namemap_remove(struct wp_name_map *map, struct wp_registry *reg, const char *name);
void namemap_clear(struct wp_name_map *map, struct wp_registry *reg);

struct wp_set_node {
    struct wp_set_node *hash_next;
    struct wp_set_node *lru_prev, *lru_next; /* most recent at head */
    struct wp_stmt *stmt;
};

struct wp_server_set {
    struct wp_set_node **buckets;
    size_t nbuckets;
    size_t count;
    struct wp_set_node lru; /* sentinel */
};

void serverset_init(struct wp_server_set *set);
/* Has this backend prepared stmt? Marks it most recently used when so. */
int serverset_touch(struct wp_server_set *set, const struct wp_stmt *stmt);
int serverset_add(struct wp_server_set *set, struct wp_stmt *stmt);
/* The least recently used entry (still in the set), or NULL. */
struct wp_stmt *serverset_lru(const struct wp_server_set *set);
void serverset_remove(struct wp_server_set *set, struct wp_registry *reg, struct wp_stmt *stmt);
void serverset_clear(struct wp_server_set *set, struct wp_registry *reg);

/*
 * Pending requests of one backend, in the order it will answer them, so that each
 * response is matched to its request: forwarded, swallowed (warmpool's own injected
 * Parse/Close), or synthesised where the backend will not answer (a Parse or Close
 * warmpool kept local).
 */
enum wp_pending_action {
    PENDING_FORWARD, /* backend answers; the client gets the answer */
    PENDING_SKIP,    /* backend answers; warmpool drops the answer */
    PENDING_SYNTH,   /* backend does not answer; warmpool makes the answer */
};

struct wp_pending {
    uint8_t type;   /* request: P B D E C S Q F; synthetic answers: '1' '3', 'q' (simple query) */
    uint8_t action; /* enum wp_pending_action */
    uint8_t name_effect;   /* counted in the server's name_effects until released (set when
                              queued: relay_prepared.c's has_name_effect) */
    struct wp_stmt *stmt;  /* P, D(S), B: referenced entry (holds a reference) */
    char *client_name;     /* P, q: the client's name for it (undo on failure; q applies it);
                              with own_error, the texts of the errors that may replace the
                              backend's, each NUL-terminated, an empty one after the last */
    const char *own_error; /* SQLSTATE of warmpool's error for a request made to fail */
    uint8_t *error_reply;  /* B, D, Q after an injected PREPARE that failed: its whole
                              ErrorResponse, sent instead of this request's error */
    const char *tag;       /* 'q': PREPARE, DEALLOCATE or DEALLOCATE ALL (a literal) */
};

struct wp_pending_queue {
    struct wp_pending *items;
    uint32_t head, count, cap; /* ring buffer, cap a power of two */
};

/* Make room for one more request (the queue is full). -1 when out of memory. */
int pending_grow(struct wp_pending_queue *q);
/* Append a request (copied). Inline: several per extended-protocol transaction. */
static inline int pending_push(struct wp_pending_queue *q, const struct wp_pending *item)
{
    if (q->count == q->cap && pending_grow(q) < 0)
        return -1;
    q->items[(q->head + q->count) & (q->cap - 1)] = *item;
    q->count++;
    return 0;
}
static inline struct wp_pending *pending_head(struct wp_pending_queue *q)
{
    return q->count ? &q->items[q->head] : NULL;
}
/* The i-th pending request from the head (i < count). */
static inline struct wp_pending *pending_at(struct wp_pending_queue *q, uint32_t i)
{
    return &q->items[(q->head + i) & (q->cap - 1)];
}
/* Remove the head; the caller has taken over (or released) its references. */
static inline void pending_pop(struct wp_pending_queue *q)
{
    if (!q->count)
        return;
    q->head = (q->head + 1) & (q->cap - 1);
    q->count--;
}
void pending_free(struct wp_pending_queue *q);

#endif
