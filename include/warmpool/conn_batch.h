/*
 * conn_batch — the socket I/O of one loop turn, done together (workers > 1).
 *
 * With batching on, a plain (non-TLS) connection's readable event does not read at
 * once: the connection joins this turn's read batch. conn_flush with something to
 * write joins the write batch and answers 0 ("some left"), which the relay already
 * treats as a slow peer. After the loop turn, conn_batch_run() does every queued
 * read, in parallel on the io_threads, then runs the owners' readable handlers in
 * order (their conn_read returns what was read); then every queued write, in
 * parallel, then the owners' writable handlers for the writes that finished (a
 * partial write waits for the socket as before). Handlers may queue more writes; the
 * turn ends when nothing is queued. Between these steps only the loop thread runs,
 * so every decision stays single-threaded and in the order it had.
 *
 * TLS connections, connects and everything else stay unbatched.
 */
#ifndef WARMPOOL_CONN_BATCH_H
#define WARMPOOL_CONN_BATCH_H
#include "warmpool/conn.h"

/* Turn batching on (workers > 1) or off. */
void conn_batch_enable(int on);
/* Batching is on (read inline by conn.c: one worker pays a flag test, no call). */
extern int conn_batching;
int conn_batch_join_read(struct wp_conn *cn);
int conn_batch_join_write(struct wp_conn *cn);
/* For conn.c: queue a read of this readable connection (1), or 0 to read at once. */
static inline int conn_batch_defer_read(struct wp_conn *cn)
{
    return conn_batching && conn_batch_join_read(cn);
}
/* For conn.c: queue a write of what is waiting (1), or 0 to write at once. */
static inline int conn_batch_defer_write(struct wp_conn *cn)
{
    return conn_batching && conn_batch_join_write(cn);
}
/* For conn.c: a closing connection leaves every batch. */
void conn_batch_forget(struct wp_conn *cn);
/* After each loop turn: the queued reads and writes, and their handlers. */
void conn_batch_run(void);
/* Free the batches (shutdown). */
void conn_batch_free(void);

/* conn.c's one writev of own bytes then the peer's scanned ones: 1 all went, 0 some
   left, CONN_ERROR. Thread-safe for distinct connections. */
int conn_write_plain(struct wp_conn *cn, struct wp_conn *peer);
/* After a batched write: wait for the socket if some is left (0), else run the
   owner's writable handler (which learns of a failure, rc < 0, from conn_flush). */
void conn_write_done(struct wp_conn *cn, int rc);

#endif
