/*
 * cancel_key — the BackendKeyData warmpool gives its clients, in PgBouncer 1.21's
 * peering layout so that a fleet mixing warmpool and PgBouncer instances can route a
 * CancelRequest to the instance that issued the key. Pure: no I/O, no globals.
 *
 * The 8 key bytes are (pid, key) as sent on the wire, big-endian:
 *   byte 0      random, sign bit cleared (pg_basebackup once choked on negative pids)
 *   bytes 1, 2  peer_id, low byte first (when peering is on; else random)
 *   bytes 3..7  random, except the 2 low bits of byte 7: the hop count (TTL), issued
 *               as 3 so a request may be forwarded at most three times
 */
#ifndef WARMPOOL_CANCEL_KEY_H
#define WARMPOOL_CANCEL_KEY_H

#include <stdint.h>

#define CANCEL_KEY_TTL_MASK 0x3u
#define CANCEL_KEY_MAX_PEER_ID 16383

/* A client's key from 8 random bytes; peer_id 0 = no peering (all random but the sign). */
void cancel_key_make(int peer_id, const uint8_t random[8], uint32_t *pid, uint32_t *key);
/* The peer id a key names (0..65535: keys from a non-peered issuer decode to noise). */
int cancel_key_peer_id(uint32_t pid);
/* Forwards left (0..3). */
int cancel_key_ttl(uint32_t key);
/* The key with one hop spent; only for a ttl > 0. */
uint32_t cancel_key_spend_hop(uint32_t key);
/* The key as its issuer stored it (hop bits all set), to compare with stored keys. */
uint32_t cancel_key_as_issued(uint32_t key);

#endif
