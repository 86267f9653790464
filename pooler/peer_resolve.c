/*
 * peer_resolve — [peers] hosts to socket addresses (include/warmpool/peer_resolve.h).
 * Runs on the event loop at configuration load only: a numeric address or a socket path
 * costs nothing, a host name one getaddrinfo (which may block on DNS for a while, as
 * PgBouncer's own start-up does; a forward never does).
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "warmpool/peer_resolve.h"

static void resolve_unix(const char *host, int port, struct wp_peer_addrs *out)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)&out->v[0].sa;
    size_t room = sizeof sun->sun_path;
    int n;
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    if (*host == '@') /* abstract: a leading NUL, and the length says where the name ends */
        n = snprintf(sun->sun_path + 1, room - 1, "%s", host + 1) + 1;
    else
        n = snprintf(sun->sun_path, room, "%s/.s.PGSQL.%d", host, port);
    if (n < 0 || (size_t)n >= room) {
        snprintf(out->err, sizeof out->err, "Unix socket path too long");
        return;
    }
    /* a path's length counts its NUL, as SUN_LEN does; an abstract name's must not */
    out->v[0].len =
        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + (*host == '@' ? 0 : 1));
    out->n = 1;
}

static void resolve_tcp(const char *host, int port, struct wp_peer_addrs *out)
{
    char service[16];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *res, *ai;
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        snprintf(out->err, sizeof out->err, "host name did not resolve: %s", gai_strerror(rc));
        return;
    }
    for (ai = res; ai && out->n < PEER_ADDRS_MAX; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof out->v[0].sa)
            continue;
        memcpy(&out->v[out->n].sa, ai->ai_addr, ai->ai_addrlen);
        out->v[out->n].len = ai->ai_addrlen;
        out->n++;
    }
    freeaddrinfo(res);
    if (out->n == 0)
        snprintf(out->err, sizeof out->err, "host name has no usable address");
}

void peer_resolve(const char *host, int port, struct wp_peer_addrs *out)
{
    memset(out, 0, sizeof *out);
    if (*host == '/' || *host == '@')
        resolve_unix(host, port, out);
    else
        resolve_tcp(host, port, out);
}

int peer_resolve_all(struct wp_peers *peers)
{
    int failed = 0;
    for (int i = 0; i < peers->n; i++) {
        struct wp_peer_config *p = &peers->v[i];
        if (!p->addrs && !(p->addrs = malloc(sizeof *p->addrs))) {
            failed++;
            continue;
        }
        peer_resolve(p->host, p->port, p->addrs);
        failed += p->addrs->n == 0;
    }
    return failed;
}
