/*
 * relay_prepared — the relay's prepared-statement layer for transaction and
 * statement mode: client statement names become warmpool's `wp_<id>` names, Parses
 * the backend already has are answered in place, missing ones are injected before a
 * Bind or Describe, and every backend answer is matched to its request so the
 * client sees exactly the sequence PostgreSQL would have sent it.
 */
#ifndef WARMPOOL_RELAY_PREPARED_H
#define WARMPOOL_RELAY_PREPARED_H

#include <stddef.h>
#include <stdint.h>

#include "warmpool/pool.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"

struct wp_client;
struct wp_server;

enum prep_input {
    PREP_PASS,      /* forward the message unchanged (its request is queued) */
    PREP_DONE,      /* handled: consumed from the client buffer, something went on */
    PREP_LOCAL,     /* handled: consumed and answered by warmpool alone */
    PREP_WAIT,      /* the whole message is needed first */
    PREP_HOLD,      /* forward it (a Sync), then read nothing more until resumed */
    PREP_ERROR,     /* malformed message: protocol violation */
    PREP_NO_MEMORY, /* out of memory: the client gets 53200 */
};

/* Does this backend's traffic go through the prepared layer? */
static inline int prepared_active(const struct wp_server *s)
{
    /* called for every relayed message: inline */
    return s->pool->settings.pool_mode != WP_MODE_SESSION && wp_rt.cfg->max_prepared_statements > 0;
}
/* Client message header at the scan position. bound: for a Bind, the statement its
   name maps to in the client's names when the caller has looked that up already
   (relay_scan's stats do), else NULL and the layer looks it up itself. text_words: for a
   whole Query or Parse, sqlwords_mentions of its text (SQLWORDS_ALL when not looked at). */
enum prep_input prepared_client_message(struct wp_client *c, struct wp_server *s, uint8_t type,
                                        uint32_t len, struct wp_stmt *bound, unsigned text_words);
/* Backend message (whole for the types the layer reads). Returns 1 to drop it. */
int prepared_server_message(struct wp_server *s, uint8_t type, const uint8_t *msg, uint32_t len);
/* Client input held after a Sync may go on now. */
int prepared_may_resume(const struct wp_server *s);
/* The client left in the middle of an extended batch: server_abandon sends a Parse
   that fails and a Sync. Their answers must be matched with them, not with the
   client's requests still queued before them. */
void prepared_abandon_batch(struct wp_server *s);
/* CommandComplete of warmpool's own query (e.g. a DISCARD ALL reset). */
void prepared_internal_command(struct wp_server *s, const uint8_t *msg, uint32_t len);
/* Emit synthetic answers now at the head of the queue. */
void prepared_emit_synthetic(struct wp_server *s);
/* Is a synthetic answer at the head of the queue, due now? (per message: inline) */
static inline int prepared_synthetic_due(struct wp_server *s)
{
    return s->pending.count > 0 && s->plain_queries == 0 &&
           pending_head(&s->pending)->action == PENDING_SYNTH;
}
/* Can a CommandComplete whose tag starts with tag0 change what statements mean (DISCARD
   ALL, DEALLOCATE ALL, DDL)? With nothing pending, the layer does nothing with one that
   cannot (SELECT, INSERT, UPDATE, BEGIN, COMMIT…): the scan then passes it by. */
static inline int prepared_tag_may_matter(uint8_t tag0)
{
    return tag0 == 'A' || tag0 == 'C' || tag0 == 'D';
}
/* A ReadyForQuery while plain Queries are counted (relay_prepared.c's push_plain_query)
   answers the oldest of them: counting it off, done here, is all the layer does with
   it then. 1 when it was one. */
static inline int prepared_plain_query_ready(struct wp_server *s, uint8_t type)
{
    if (type != 'Z' || s->plain_queries == 0)
        return 0;
    s->plain_queries--;
    return 1;
}
/* Backend message types whose whole body the layer needs. */
static inline int prepared_needs_body(uint8_t type)
{
    return type == 'E' || type == 'C' || type == 't' || type == 'T' || type == 'n';
}
/* A client without a backend: answer Parse/Describe/Sync batches of known statements
   locally. Returns 1 when it consumed input (call again), 0 when a backend is needed. */
int prepared_answer_locally(struct wp_client *c);
/* A new backend: prepare the pool's warm statements before lending it. 1 = sent. */
int prepared_warm_server(struct wp_server *s);
/* The warm batch failed part-way: forget what it may have prepared. */
void prepared_warm_failed(struct wp_server *s);
/* A backend is closing: keep its most used statements as the pool's warm list. */
void prepared_save_warm(struct wp_server *s);
void prepared_pool_forget(struct wp_pool *pool);
void prepared_server_forget(struct wp_server *s);
void prepared_client_forget(struct wp_client *c);

#endif
