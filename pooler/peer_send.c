/*
 * peer_send — a CancelRequest sent to a peer (include/warmpool/peer_send.h). Runs on a
 * workpool thread: blocking is allowed, but never longer than the deadline.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "warmpool/peer_send.h"
#include "warmpool/proto.h"

/* Set by the loop at shutdown; the threads poll in slices short enough to notice. */
static atomic_int abandon;
#define SLICE_MS 100

void peer_send_abandon_all(void)
{
    atomic_store(&abandon, 1);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for `events` on fd until the deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0 || atomic_load(&abandon))
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, (int)(left > SLICE_MS ? SLICE_MS : left));
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

/* Non-blocking connect bounded by the deadline; the socket stays non-blocking. */
static int connect_by_deadline(const struct sockaddr *sa, socklen_t len, int64_t deadline,
                               const char **why)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *why = strerror(errno);
        return -1;
    }
    if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
        *why = strerror(errno);
        close(fd);
        return -1;
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    int rc = wait_fd(fd, POLLOUT, deadline);
    if (rc <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
        *why = rc == 0 ? "connect timed out" : strerror(soerr ? soerr : errno);
        close(fd);
        return -1;
    }
    return fd;
}

static int connect_unix(const char *host, int port, int64_t deadline, const char **why)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    socklen_t len = sizeof sun;
    int n;
    if (*host == '@') {
        /* abstract namespace: a leading NUL, and the length says where the name ends */
        n = snprintf(sun.sun_path + 1, sizeof sun.sun_path - 1, "%s", host + 1);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
        n++;
    } else {
        n = snprintf(sun.sun_path, sizeof sun.sun_path, "%s/.s.PGSQL.%d", host, port);
    }
    if (n < 0 || (size_t)n >= sizeof sun.sun_path) {
        *why = "Unix socket path too long";
        return -1;
    }
    return connect_by_deadline((struct sockaddr *)&sun, len, deadline, why);
}

static int connect_tcp(const char *host, int port, int64_t deadline, const char **why)
{
    char service[16];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *res, *ai;
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        *why = gai_strerror(rc);
        return -1;
    }
    int fd = -1;
    for (ai = res; ai && fd < 0 && mono_ms() < deadline; ai = ai->ai_next)
        fd = connect_by_deadline(ai->ai_addr, ai->ai_addrlen, deadline, why);
    freeaddrinfo(res);
    return fd;
}

/* Write the request, then read until the peer closes (what PQcancel waits for too). */
static int send_and_wait(int fd, uint32_t pid, uint32_t key, int64_t deadline, const char **why)
{
    uint8_t pkt[16], sink[64];
    proto_put_u32(pkt, 16);
    proto_put_u32(pkt + 4, PROTO_CANCEL_REQUEST);
    proto_put_u32(pkt + 8, pid);
    proto_put_u32(pkt + 12, key);
    size_t off = 0;
    while (off < sizeof pkt) {
        ssize_t n = send(fd, pkt + off, sizeof pkt - off, MSG_NOSIGNAL);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            *why = strerror(errno);
            return -1;
        } else if (wait_fd(fd, POLLOUT, deadline) <= 0) {
            *why = "timed out sending";
            return -1;
        }
    }
    for (;;) {
        ssize_t n = recv(fd, sink, sizeof sink, 0);
        if (n == 0)
            return 0; /* closed: the request was read (a reset may mean it was not) */
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            *why = strerror(errno);
            return -1;
        }
        if (n < 0 && wait_fd(fd, POLLIN, deadline) <= 0) {
            *why = "peer did not close the connection in time";
            return -1;
        }
    }
}

int peer_send_cancel(const char *host, int port, uint32_t pid, uint32_t key, int64_t timeout_ms,
                     char *err, size_t errlen)
{
    const char *why = "no address";
    int64_t deadline = mono_ms() + timeout_ms;
    int fd = (*host == '/' || *host == '@') ? connect_unix(host, port, deadline, &why)
                                            : connect_tcp(host, port, deadline, &why);
    if (fd < 0) {
        snprintf(err, errlen, "connect to %s:%d: %s", host, port, why);
        return -1;
    }
    int rc = send_and_wait(fd, pid, key, deadline, &why);
    if (rc < 0)
        snprintf(err, errlen, "%s:%d: %s", host, port, why);
    close(fd);
    return rc;
}
