/*
 * peer_send — one CancelRequest sent to a peer, on the event loop without blocking:
 * a non-blocking connect to each of the peer's addresses in turn (peer_resolve.h),
 * then the 16 bytes, then a wait for the peer to close (it has read the request then;
 * PostgreSQL and PgBouncer answer nothing). One deadline bounds every step. Plain fds
 * with their own libevent events: no struct wp_conn, so nothing that batches client and
 * server I/O touches these sockets. Loop thread only.
 */
#ifndef WARMPOOL_PEER_SEND_H
#define WARMPOOL_PEER_SEND_H

#include <stddef.h>
#include <stdint.h>

struct wp_peer_addrs;
struct peer_send;

/* ok: 1 sent and closed by the peer; 0 failed, why says where and why ("connect to
   <name>: Connection refused", "<name>: peer did not close the connection in time").
   Runs on the loop once the send has ended and been freed. */
typedef void (*peer_send_done_fn)(void *arg, int ok, const char *why);

/* Start a send to `to` (copied); name (host:port) is for messages. NULL, with why
   filled, when no address could even be tried (then done never runs). */
struct peer_send *peer_send_start(const struct wp_peer_addrs *to, const char *name, uint32_t pid,
                                  uint32_t key, int64_t timeout_ms, peer_send_done_fn done,
                                  void *arg, char *why, size_t whylen);

/* Close it now, at whatever step (shutdown); done does not run. */
void peer_send_free(struct peer_send *s);

#endif
