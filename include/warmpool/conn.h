/*
 * conn — one socket and everything that touches it.
 *
 * A client and a server each own one `struct wp_conn`, and nothing else in the pooler
 * reads, writes, watches or closes their sockets. It holds the file descriptor, the
 * libevent events, the input and output buffers, pause/resume of reading, and plain
 * or TLS I/O behind one pair of functions (conn_read, conn_flush). The TLS handshake
 * and TLS's cross-direction waits (a read that needs the socket writable, a write that
 * needs it readable) are handled here; owners only hear "readable" and "writable".
 *
 * The relay's framing state lives here too, because it says what the buffers hold:
 * `ready` is how much of `in` is scanned and may be written to the peer, `msg_left`
 * how much of a message already partly passed on is still to come. conn_mid_message()
 * is the one answer to "would losing this connection now cut a message in two?".
 */
#ifndef WARMPOOL_CONN_H
#define WARMPOOL_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "warmpool/buf.h"

struct event;
struct wp_tls;
typedef struct ssl_st SSL;

/* The owner's handler for an event of its connection. */
typedef void (*wp_conn_handler)(void *owner);
/* The owner's linked peer, whose scanned input its writes carry (NULL when none). */
typedef struct wp_conn *(*wp_conn_peer)(void *owner);

struct wp_conn {
    struct wp_buf in;   /* bytes read from the socket, not consumed yet */
    struct wp_buf out;  /* bytes the owner itself sends, written before relayed ones */
    size_t ready;       /* bytes at the head of `in` scanned and ready for the peer */
    uint32_t msg_left;  /* bytes of the message in passage that are still to come */
    int fd;             /* -1 once closed */
    struct wp_tls *tls; /* NULL on a plain socket */
    struct event *ev_read, *ev_write; /* ev_write is made on first need */
    wp_conn_handler on_readable, on_writable;
    void *owner;
    char *error; /* why the TLS handshake failed, for the owner's log */
    unsigned read_paused : 1;
    unsigned write_armed : 1;
    unsigned connecting : 1;  /* ev_write watches libpq's connect (conn_watch_connect) */
    unsigned fd_borrowed : 1; /* libpq closes the socket (PQfinish), not conn_close */
    unsigned suspended : 1;   /* SUSPEND: reading stays paused whatever the owner asks */
    /* Batched I/O (workers > 1, conn_batch.c): */
    unsigned prefetched : 1; /* io_rc holds this turn's read, conn_read returns it */
    unsigned io_failed : 1;  /* a batched write failed: the next conn_flush says so */
    wp_conn_peer peer_of;
    struct wp_conn *io_peer;                  /* the peer a running batched write carries */
    long io_rc;                               /* a batched read's or write's result */
    size_t read_room, read_cap;               /* the owner's last conn_read arguments */
    uint32_t read_slot, write_slot, run_slot; /* 1 + place in a batch, 0 = none */
};

/* Results of conn_read / conn_flush beyond byte counts. */
enum { CONN_ERROR = -1, CONN_NO_MEMORY = -2 };

/*
 * Start watching `fd` for input; writability is watched only while output waits.
 * The handlers run with `owner`. Returns 0, or -1 when out of memory (the socket is
 * left open: the caller still owns it then).
 */
int conn_open(struct wp_conn *cn, int fd, wp_conn_handler on_readable, wp_conn_handler on_writable,
              void *owner);
/* The same on a backend socket libpq opened and will close. */
int conn_open_borrowed(struct wp_conn *cn, int fd, wp_conn_handler on_readable,
                       wp_conn_handler on_writable, void *owner);
/* Name the owner's peer for batched writes (conn_flush carries the peer's scanned
   input; a batched write asks again when it runs). */
static inline void conn_set_peer(struct wp_conn *cn, wp_conn_peer peer_of)
{
    cn->peer_of = peer_of;
}
/*
 * While libpq connects: call `step(owner)` once `fd` is writable (`for_write`) or
 * readable; one shot, re-armed by calling again. 0, or -1 when out of memory.
 */
int conn_watch_connect(struct wp_conn *cn, int fd, int for_write, wp_conn_handler step,
                       void *owner);

/* The client asked for TLS and was told 'S': the handshake runs before the next read
   returns bytes. -1 when TLS cannot start (out of memory). */
int conn_start_tls(struct wp_conn *cn);
/* libpq negotiated TLS on this backend socket: its SSL object carries the bytes now. */
int conn_use_backend_tls(struct wp_conn *cn, SSL *ssl);
/* TLS is in use and its handshake is done. */
int conn_tls_established(const struct wp_conn *cn);

/*
 * The one read site: one read(2) or SSL_read into `in` after reserving `room` bytes.
 * Returns bytes read (> 0), 0 when nothing is ready (or the TLS handshake is still
 * going), CONN_ERROR on EOF, error, a failed handshake (see cn->error) or out of
 * memory. With `cap` > 0 the input is bounded: when `in` already holds `cap` unconsumed
 * bytes, reading pauses and 0 is returned, except that the message at the `ready`
 * position may be read whole if its header says it is at most `max_message` bytes.
 * Whoever consumes input resumes reading (conn_pause_read).
 */
long conn_read(struct wp_conn *cn, size_t room, size_t cap, uint32_t max_message);

/*
 * Write the owner's own bytes (`out`), then the `ready` bytes of the peer's input,
 * with one writev (or through TLS). What was written is consumed. Watches for
 * writability while something is left. Returns 1 when everything went, 0 when some is
 * left, CONN_ERROR on a write error, CONN_NO_MEMORY when `out` lost bytes to a failed
 * allocation (it is not sent). With batched I/O (workers > 1, conn_batch.h) a write
 * may wait for the end of the loop turn: 0 then, and on_writable follows.
 */
int conn_flush(struct wp_conn *cn, struct wp_conn *peer);
/* The same for the owner's own bytes alone, written now even when a loop turn's writes
   are batched (conn_batch.h): for a byte that must leave before the socket changes
   hands, the 'S' that answers an SSLRequest. */
int conn_flush_now(struct wp_conn *cn);
void conn_set_read_paused(struct wp_conn *cn, int paused);
/* SUSPEND (on = 1): stop reading until conn_suspend(cn, 0), which resumes reading of
   a suspended connection (the input cap in conn_read pauses it again if the owner's
   input is full). */
void conn_suspend(struct wp_conn *cn, int on);

/* Stop (or resume) reading. Inline, since the relay calls it several times a
   transaction and it rarely changes anything. */
static inline void conn_pause_read(struct wp_conn *cn, int paused)
{
    if (cn->read_paused != (paused != 0))
        conn_set_read_paused(cn, paused);
}

static inline size_t conn_unread(const struct wp_conn *cn)
{
    return buf_unread(&cn->in);
}

/* Bytes the owner still has to send itself (with TLS, also those OpenSSL holds). */
int conn_output_pending(const struct wp_conn *cn);
/* Bytes or EOF waiting on the socket that nobody has read yet (an idle backend
   should be silent: if not, it is going away). */
int conn_input_pending(const struct wp_conn *cn);

/* A message is cut: part of it was passed on and the rest is still to come, or bytes
   were scanned for the peer but not all written. */
static inline int conn_mid_message(const struct wp_conn *cn)
{
    return cn->msg_left > 0 || cn->ready > 0;
}

/* The local address of the socket, for the admin console ("" and 0 when unknown). */
void conn_local_address(const struct wp_conn *cn, char *host, size_t hostlen, int *port);

/*
 * Stop all events and close the socket. Own bytes still waiting (a FATAL) are tried
 * once, without blocking, unless `out` failed. Buffers stay until conn_free.
 */
void conn_close(struct wp_conn *cn);
void conn_free(struct wp_conn *cn);

/* Send `msg` on a socket that will not become a connection, and close it. */
void conn_reject(int fd, const struct wp_buf *msg);

#endif
