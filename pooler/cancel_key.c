/*
 * cancel_key — encode and decode the peer id and hop count inside a cancel key
 * (layout in include/warmpool/cancel_key.h). client.c and admin.c make keys here;
 * cancel.c decodes the keys of incoming CancelRequests.
 */
#include "warmpool/cancel_key.h"

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

void cancel_key_make(int peer_id, const uint8_t random[8], uint32_t *pid, uint32_t *key)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = random[i];
    if (peer_id > 0) {
        b[1] = (uint8_t)(peer_id & 0xFF);
        b[2] = (uint8_t)((peer_id >> 8) & 0xFF);
        b[7] |= CANCEL_KEY_TTL_MASK;
    }
    b[0] &= 0x7F;
    *pid = be32(b);
    *key = be32(b + 4);
}

int cancel_key_peer_id(uint32_t pid)
{
    /* byte 1 is bits 16..23 of the big-endian pid, byte 2 bits 8..15 */
    return (int)((pid >> 16) & 0xFF) | (int)(((pid >> 8) & 0xFF) << 8);
}

int cancel_key_ttl(uint32_t key)
{
    return (int)(key & CANCEL_KEY_TTL_MASK);
}

uint32_t cancel_key_spend_hop(uint32_t key)
{
    return cancel_key_ttl(key) > 0 ? key - 1 : key;
}

uint32_t cancel_key_as_issued(uint32_t key)
{
    return key | CANCEL_KEY_TTL_MASK;
}
