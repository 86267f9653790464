/*
 * peering — forwards a CancelRequest whose key names another peer (cancel_key.h) to
 * that peer's host and port from [peers], with one hop spent, on the event loop (never
 * the workpool: a dead peer must not delay local cancels; peer_send.h). At most
 * the peer's pool_size forwards are in flight; the rest wait in a queue, in order.
 */
#ifndef WARMPOOL_PEERING_H
#define WARMPOOL_PEERING_H

#include <stdint.h>

/* Forward or drop (unknown peer, hop count spent: logged once per peer id). */
void peering_forward(uint32_t pid, uint32_t key);

/* For SHOW PEER_POOLS and /metrics. */
struct peering_counts {
    int active;  /* forwards in flight */
    int waiting; /* queued behind pool_size */
    unsigned long long forwarded, failed;
};
void peering_counts(int peer_id, struct peering_counts *out);

/* Shutdown: every forward in flight is closed and every queued one dropped, uncounted;
   a peer that does not answer must not hold up the exit. */
void peering_shutdown(void);

#endif
