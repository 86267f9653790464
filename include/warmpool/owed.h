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
};

/* A message was written to the backend. */
void owed_sent(struct wp_owed *o, uint8_t type);
/* A message (any type but DataRow) was read from the backend. */
void owed_answer(struct wp_owed *o, uint8_t type);
void owed_reset(struct wp_owed *o);
void owed_free(struct wp_owed *o);

/* The backend owes nothing and sits between requests: a release point as far as the
   protocol goes (the transaction status is the ReadyForQuery's to tell). */
static inline int owed_settled(const struct wp_owed *o)
{
    return o->count == 0 && !o->unsynced && !o->skipping && !o->copy_in && !o->lost;
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
