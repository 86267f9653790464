/*
 * owed — what a backend still owes on its connection, derived only from the messages
 * actually sent to it and its own answers. Pure code: no sockets, no pools.
 *
 * Every message written to the backend (a client's, or one warmpool injects or runs
 * itself) is fed to owed_sent; every message read from it, except DataRow, to
 * owed_answer. The requests that get an answer wait in a FIFO and are settled in
 * PostgreSQL's order:
 *   Parse → ParseComplete, Bind → BindComplete, Close → CloseComplete,
 *   Describe → [ParameterDescription] RowDescription | NoData,
 *   Execute → CommandComplete | EmptyQueryResponse | PortalSuspended,
 *   Sync, Query, FunctionCall → ReadyForQuery.
 * An ErrorResponse to an extended-protocol request makes the backend ignore everything
 * up to the next Sync, simple Queries included (they get no ReadyForQuery then). In
 * COPY IN the backend also ignores Flush and Sync until CopyDone or CopyFail.
 *
 * A backend answer that does not fit the FIFO means warmpool no longer knows the
 * backend's state: `lost` is set and the backend must never be lent again.
 */
#ifndef WARMPOOL_OWED_H
#define WARMPOOL_OWED_H

#include <stdint.h>

struct wp_owed {
    uint8_t *ring;    /* request types awaiting their answer, oldest at head */
    uint32_t head;    /* index of the oldest */
    uint32_t count;   /* requests in the ring */
    uint32_t cap;     /* a power of two, or 0 before the first request */
    uint32_t ready;   /* Sync/Query/FunctionCall in the ring: ReadyForQuery still to come */
    uint8_t unsynced; /* extended-protocol messages sent since the last Sync or Query */
    uint8_t skipping; /* an extended request failed before any Sync was sent: the
                         backend ignores all but Sync */
    uint8_t copy_in;  /* the backend is in COPY IN and the client has not ended it */
    uint8_t lost;     /* an answer did not match, or memory ran out: state unknown */
    /* Queries and Executes pushed, and settled or dropped, since the connection began:
       the n-th one pushed is settled when exec_done passes n. A CommandComplete while
       one is at the head belongs to request number exec_done (session_state.c). */
    uint64_t exec_sent;
    uint64_t exec_done;
};

/* The general cases of owed_sent and owed_answer (below, inline for the hot path). */
void owed_sent_slow(struct wp_owed *o, uint8_t type);
void owed_answer_slow(struct wp_owed *o, uint8_t type);
void owed_reset(struct wp_owed *o);
void owed_free(struct wp_owed *o);

/* The backend owes nothing and sits between requests: a release point as far as the
   protocol goes (the transaction status is the ReadyForQuery's to tell). */
static inline int owed_settled(const struct wp_owed *o)
{
    return o->count == 0 && !o->unsynced && !o->skipping && !o->copy_in && !o->lost;
}

/* What owed_sent does with a frontend message type (owed.c fills the table). */
enum {
    OWED_READY = 1,    /* S Q F */
    OWED_EXTENDED = 2, /* P B D E C */
    OWED_EXEC = 4,     /* Q E: run statements, counted in exec_sent and exec_done */
};
extern const uint8_t owed_request_kind[256];

/* A message was written to the backend. Inline: a request with room in the ring, in
   no COPY or skip, costs a table look-up, a store and a few flags. */
static inline void owed_sent(struct wp_owed *o, uint8_t type)
{
    uint8_t kind = owed_request_kind[type];
    if (!kind || o->skipping || o->copy_in || o->count == o->cap) {
        owed_sent_slow(o, type);
        return;
    }
    o->ring[(o->head + o->count) & (o->cap - 1)] = type;
    o->count++;
    o->ready += kind & OWED_READY;
    o->exec_sent += kind >> 2;
    o->unsynced = (kind >> 1) & 1; /* Sync and Query are boundaries */
}

/* The answer settles the head request, as it does for ordinary traffic: a
   ReadyForQuery its Sync/Query, BindComplete its Bind, CommandComplete its Execute,
   ParseComplete its Parse, RowDescription or NoData its Describe (a statement's
   ParameterDescription before it settles nothing). Everything else is
   owed_answer_slow's. */
static inline int owed_settles_head(uint8_t type, uint8_t head)
{
    switch (type) {
    case 'Z':
        return head == 'S' || head == 'Q' || head == 'F';
    case '2':
        return head == 'B';
    case 'C':
        return head == 'E';
    case '1':
        return head == 'P';
    case 'T':
    case 'n':
        return head == 'D';
    default:
        return 0;
    }
}

/* A message (any type but DataRow) was read from the backend. Inline: the answers
   of a simple Query before its ReadyForQuery cost two tests, a settling answer a pop. */
static inline void owed_answer(struct wp_owed *o, uint8_t type)
{
    uint8_t head = o->count ? o->ring[o->head] : 0;
    if (head == 'Q' && (type == 'T' || type == 'C' || type == 'S' || type == 'N'))
        return; /* rows, tags, parameters and notices of a simple Query */
    uint32_t next = (o->head + 1) & (o->cap - 1);
    if (!owed_settles_head(type, head) ||
        (o->count > 1 && (o->ring[next] == 'c' || o->ring[next] == 'f'))) {
        owed_answer_slow(o, type); /* markers behind it go too */
        return;
    }
    o->ready -= (uint32_t)(type == 'Z');
    o->exec_done += owed_request_kind[head] >> 2;
    o->head = next;
    o->count--;
}

/* Frontend message types PostgreSQL accepts after startup. */
static inline int owed_frontend_type_valid(uint8_t type)
{
    switch (type) {
    case 'B':
    case 'C':
    case 'c':
    case 'D':
    case 'd':
    case 'E':
    case 'F':
    case 'f':
    case 'H':
    case 'P':
    case 'Q':
    case 'S':
    case 'X':
        return 1;
    default:
        return 0;
    }
}

#endif
