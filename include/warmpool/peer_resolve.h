/*
 * peer_resolve — the socket addresses of each [peers] entry, worked out when a
 * configuration is loaded (start-up, reload, console SET) and kept in it, so that a
 * cancel forward (peer_send.h) never resolves a name: getaddrinfo blocks, and the
 * forward runs on the event loop. A host name is looked up again at every reload; one
 * that does not resolve makes that peer's forwards fail, with the reason, until a
 * reload resolves it. A Unix socket directory becomes <dir>/.s.PGSQL.<port>; an
 * "@name" host the abstract socket "name".
 */
#ifndef WARMPOOL_PEER_RESOLVE_H
#define WARMPOOL_PEER_RESOLVE_H

#include <stddef.h>
#include <sys/socket.h>

#include "warmpool/peers_config.h"

/* Addresses tried per peer, in getaddrinfo's order. */
#define PEER_ADDRS_MAX 8

struct wp_peer_addr {
    struct sockaddr_storage sa;
    socklen_t len;
};

struct wp_peer_addrs {
    int n; /* 0: none, err says why */
    char err[192];
    struct wp_peer_addr v[PEER_ADDRS_MAX];
};

/* Fill out (n = 0 and err on failure). May block in getaddrinfo for a host name. */
void peer_resolve(const char *host, int port, struct wp_peer_addrs *out);

/* Every entry of peers (peer->addrs, replaced). The number of entries that did not
   resolve; each one's reason is in its addrs->err. */
int peer_resolve_all(struct wp_peers *peers);

#endif
