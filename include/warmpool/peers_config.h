/*
 * peers_config — the [peers] section, as PgBouncer 1.21+ reads it:
 *     <peer_id> = host=... [port=...] [pool_size=...]
 * peer_id 1..16383; host a name, an address, a Unix socket directory ("/...") or an
 * abstract socket ("@..."); port defaults to 6432; pool_size (cancel forwards in flight
 * to that peer at once) defaults to default_pool_size. Pure: config.c calls it per line
 * and puts the file and line in front of the message.
 */
#ifndef WARMPOOL_PEERS_CONFIG_H
#define WARMPOOL_PEERS_CONFIG_H

#include <stddef.h>

#define PEER_DEFAULT_PORT 6432

struct wp_peer_addrs;

struct wp_peer_config {
    int id;                      /* 1..16383 */
    char *host;                  /* never NULL */
    int port;                    /* 1..65535 */
    int pool_size;               /* -1: default_pool_size */
    struct wp_peer_addrs *addrs; /* peer_resolve_all; NULL until then (parsing is pure) */
    const char *file;
    int line;
};

struct wp_peers {
    struct wp_peer_config *v;
    int n;
};

/* Add one entry. 0, or -1 with why (never quoting a value) and nothing added. */
int peers_config_add(struct wp_peers *peers, const char *name, const char *value, const char *file,
                     int line, char *why, size_t whylen);
const struct wp_peer_config *peers_config_find(const struct wp_peers *peers, int id);
void peers_config_free(struct wp_peers *peers);

#endif
