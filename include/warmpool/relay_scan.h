/*
 * relay_scan — the socket-free half of the relay. It walks the message headers in a
 * linked client's or backend's input buffer, keeps the protocol's accounting (what the
 * backend owes, ReadyForQuery and the release decision, ParameterStatus, errors of
 * warmpool's internal queries, the stats and query_timeout hooks, the prepared-statement
 * layer) and marks how many bytes are ready for the peer (`client->conn.ready`,
 * `server->conn.ready`). It never touches a socket or an event: relay.c writes what it marked
 * and acts on what it returns, and tests/fuzz/fuzz_prepared.c drives the same functions
 * with buffers in memory.
 */
#ifndef WARMPOOL_RELAY_SCAN_H
#define WARMPOOL_RELAY_SCAN_H

#include "warmpool/buf.h"
#include "warmpool/client.h"
#include "warmpool/owed.h"
#include "warmpool/pool.h"
#include "warmpool/server.h"

enum relay_scan {
    RELAY_SCAN_MORE,         /* everything available was handled */
    RELAY_SCAN_RELEASE,      /* transaction over: the server may go back to the pool */
    RELAY_SCAN_QUIET,        /* no client and nothing outstanding */
    RELAY_SCAN_TERMINATE,    /* client sent Terminate */
    RELAY_SCAN_TX_FORBIDDEN, /* statement mode: the client opened a transaction block */
    RELAY_SCAN_ERROR,
    RELAY_SCAN_TOO_LARGE, /* a client message declared longer than max_packet_size */
    RELAY_SCAN_BAD_TYPE,  /* a client message of a type PostgreSQL does not accept (the
                             scan stops before it and sets client->bad_type_next) */
    RELAY_SCAN_NO_MEMORY, /* a buffer or the statement registry could not grow */
};

/* Scan the client's input toward its backend: messages for the backend are marked in
   client->conn.ready (or moved to server->conn.out by the prepared layer), and fed to owed. */
enum relay_scan relay_scan_client(struct wp_client *client, struct wp_server *server);
/* Scan the backend's input: what the client gets is marked in server->conn.ready, what it
   does not get is dropped from server->conn.in. Stops at a release point, a quiet backend
   and a statement-mode transaction block, with what follows left unscanned. */
enum relay_scan relay_scan_server(struct wp_server *server);

/* Bytes scanned but not yet written go into the peer-bound buffer of warmpool's own
   bytes, so that what warmpool appends next follows them in order. */
void relay_move_client_scanned(struct wp_client *client, struct wp_server *server);
/* An unknown message type is next in the client's input: answers the backend holds
   back for want of a Flush are asked for (once, with may_flush); returns 1 when the
   refusal is due, i.e. the backend owes nothing and its answers went to the client.
   The caller writes what is queued to the backend first (relay.c, the fuzz harness). */
void relay_scan_flush_before_refusal(struct wp_client *client, struct wp_server *server);
static inline int relay_scan_refusal_due(const struct wp_server *server)
{
    return server->owed.count == 0 && server->conn.ready == 0;
}
void relay_move_server_scanned(struct wp_server *server);

/* Can this server go back to the pool now (transaction/statement mode)? Inline: the
   scan asks at every ReadyForQuery, relay.c after every flush. */
static inline int relay_release_point(const struct wp_server *s)
{
    const struct wp_client *c = s->client;
    if (!c || s->pool->settings.pool_mode == WP_MODE_SESSION || c->pinned)
        return 0;
    return s->tx_status == 'I' && owed_settled(&s->owed) && s->swallow == 0 && !s->syncing_params &&
           s->cancel_pending == 0 && c->conn.msg_left == 0 && c->conn.ready == 0 &&
           /* a message still arriving will want this backend anyway */
           buf_unread(&c->conn.in) == 0 && buf_unread(&s->conn.out) == 0 && s->pending.count == 0 &&
           s->plain_queries == 0;
}

#endif
