/*
 * peer_send — a CancelRequest sent to a peer on the event loop
 * (include/warmpool/peer_send.h).
 *
 * Phases: CONNECT (writable means connected or failed: SO_ERROR says which; a failure
 * tries the next address), SEND (the 16 bytes; a socket buffer takes them at once in
 * practice, a full one waits for writable), DRAIN (read and discard until EOF, as
 * PQcancel does). Each wait is a fresh one-shot event whose timeout is what is left of
 * the deadline, so the deadline needs no timer of its own.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "warmpool/peer_resolve.h"
#include "warmpool/peer_send.h"
#include "warmpool/proto.h"
#include "warmpool/runtime.h"
#include "warmpool/timeouts.h"

enum phase { PS_CONNECT, PS_SEND, PS_DRAIN };

struct peer_send {
    struct wp_peer_addrs to;
    int next; /* index in to.v of the next address to try */
    int fd;
    struct event *ev;
    enum phase phase;
    int64_t deadline;
    uint8_t pkt[16];
    size_t off;
    peer_send_done_fn done;
    void *arg;
    char name[280]; /* host:port, for messages */
    char why[224];  /* the reason alone; describe() says where */
};

static void on_ready(evutil_socket_t fd, short what, void *arg);

static void close_fd(struct peer_send *s)
{
    if (s->ev)
        event_free(s->ev);
    s->ev = NULL;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

void peer_send_free(struct peer_send *s)
{
    if (!s)
        return;
    close_fd(s);
    free(s);
}

/* As the blocking version logged them: "connect to host:port: why" while connecting,
   "host:port: why" after. */
static void describe(const struct peer_send *s, char *out, size_t len)
{
    snprintf(out, len, "%s%s: %s", s->phase == PS_CONNECT ? "connect to " : "", s->name, s->why);
}

/* The end: free first, so that done may start the next send at once. */
static void finish(struct peer_send *s, int ok)
{
    char why[sizeof s->name + sizeof s->why + 16];
    peer_send_done_fn done = s->done;
    void *arg = s->arg;
    describe(s, why, sizeof why);
    peer_send_free(s);
    done(arg, ok, why);
}

static void fail(struct peer_send *s, int err)
{
    snprintf(s->why, sizeof s->why, "%s", strerror(err));
}

/* One-shot wait for `what` until the deadline. */
static int wait_for(struct peer_send *s, short what)
{
    int64_t left = s->deadline - wp_now_ms();
    struct timeval tv = {0, 0};
    if (left > 0) {
        tv.tv_sec = (time_t)(left / 1000);
        tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
    }
    if (s->ev)
        event_free(s->ev);
    s->ev = event_new(wp_rt.base, s->fd, what, on_ready, s);
    if (!s->ev || event_add(s->ev, &tv) < 0) {
        snprintf(s->why, sizeof s->why, "cannot wait for the socket (out of memory)");
        return -1;
    }
    return 0;
}

/* Connect to the next address that takes a connect; -1 when none is left (why says
   what went wrong with the last). */
static int connect_next(struct peer_send *s)
{
    while (s->next < s->to.n && wp_now_ms() < s->deadline) {
        const struct wp_peer_addr *a = &s->to.v[s->next++];
        close_fd(s);
        s->fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->fd < 0) {
            fail(s, errno);
            continue;
        }
        if (connect(s->fd, (const struct sockaddr *)&a->sa, a->len) < 0 && errno != EINPROGRESS) {
            fail(s, errno);
            continue;
        }
        s->phase = PS_CONNECT;
        return wait_for(s, EV_WRITE);
    }
    if (s->next < s->to.n || s->to.n == 0)
        snprintf(s->why, sizeof s->why, "%s", s->to.n ? "connect timed out" : s->to.err);
    return -1;
}

/* CONNECT is over: connected, or on to the next address. */
static int on_connected(struct peer_send *s)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr) {
        fail(s, soerr);
        return connect_next(s);
    }
    s->phase = PS_SEND;
    return 0;
}

static int send_some(struct peer_send *s)
{
    while (s->off < sizeof s->pkt) {
        ssize_t n = send(s->fd, s->pkt + s->off, sizeof s->pkt - s->off, MSG_NOSIGNAL);
        if (n > 0)
            s->off += (size_t)n;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return wait_for(s, EV_WRITE);
        else if (n < 0 && errno != EINTR) {
            fail(s, errno);
            return -1;
        }
    }
    s->phase = PS_DRAIN;
    return wait_for(s, EV_READ);
}

/* 1 the peer closed, 0 waiting for more, -1 failed. */
static int drain(struct peer_send *s)
{
    uint8_t sink[64];
    for (;;) {
        ssize_t n = recv(s->fd, sink, sizeof sink, 0);
        if (n == 0)
            return 1; /* closed: the request was read (a reset may mean it was not) */
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return wait_for(s, EV_READ);
        if (n < 0 && errno != EINTR) {
            fail(s, errno);
            return -1;
        }
    }
}

static const char *timed_out(enum phase phase)
{
    switch (phase) {
    case PS_CONNECT:
        return "connect timed out";
    case PS_SEND:
        return "timed out sending";
    default:
        return "peer did not close the connection in time";
    }
}

static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    struct peer_send *s = arg;
    int rc = 0;
    (void)fd;
    if (what & EV_TIMEOUT) {
        snprintf(s->why, sizeof s->why, "%s", timed_out(s->phase));
        finish(s, 0);
        return;
    }
    switch (s->phase) {
    case PS_CONNECT:
        rc = on_connected(s);
        if (rc == 0 && s->phase == PS_SEND)
            rc = send_some(s);
        break;
    case PS_SEND:
        rc = send_some(s);
        break;
    case PS_DRAIN:
        rc = drain(s);
        break;
    }
    if (rc != 0)
        finish(s, rc > 0);
}

struct peer_send *peer_send_start(const struct wp_peer_addrs *to, const char *name, uint32_t pid,
                                  uint32_t key, int64_t timeout_ms, peer_send_done_fn done,
                                  void *arg, char *why, size_t whylen)
{
    struct peer_send *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    s->to = *to;
    s->fd = -1;
    s->deadline = wp_now_ms() + timeout_ms;
    s->done = done;
    s->arg = arg;
    snprintf(s->name, sizeof s->name, "%s", name);
    proto_put_u32(s->pkt, 16);
    proto_put_u32(s->pkt + 4, PROTO_CANCEL_REQUEST);
    proto_put_u32(s->pkt + 8, pid);
    proto_put_u32(s->pkt + 12, key);
    if (connect_next(s) < 0) {
        describe(s, why, whylen);
        peer_send_free(s);
        return NULL;
    }
    return s;
}
