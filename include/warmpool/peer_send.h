/*
 * peer_send — one blocking CancelRequest to a peer, for a workpool thread: connect,
 * write the 16 bytes, wait for the peer to close (it has handled the request then).
 * Every step shares one deadline, so a peer that never answers holds the thread for at
 * most timeout_ms (plus name resolution, which getaddrinfo does not let us bound), and
 * at shutdown (peer_send_abandon_all) 100 ms more at most.
 */
#ifndef WARMPOOL_PEER_SEND_H
#define WARMPOOL_PEER_SEND_H

#include <stddef.h>
#include <stdint.h>

/* host: name or address; "/dir" a Unix socket dir (dir/.s.PGSQL.port); "@name" an
   abstract Unix socket. 0 on success, -1 with err filled. */
int peer_send_cancel(const char *host, int port, uint32_t pid, uint32_t key, int64_t timeout_ms,
                     char *err, size_t errlen);

/* Shutdown: sends in progress give up within 100 ms (as if timed out). */
void peer_send_abandon_all(void);

#endif
