/*
 * floor-relay — the cheapest relay the kernel allows, as a yardstick for the bench.
 *
 * One backend connection per client (no pooling, no parsing, no auth of its own):
 * each readiness event is one read into a fixed buffer and one write of what was read
 * to the other side. That is the floor any pooler pays on the same path: a receive and
 * a send per direction per round trip, plus epoll_wait. Its added latency and CPU per
 * transaction in the same run show how much of a pooler's cost is the kernel's.
 *
 * Not part of warmpool and not for production: no limits, no timeouts, no TLS.
 *
 * Usage: floor-relay LISTEN_PORT TARGET_PORT [PIDFILE]   (both ports on 127.0.0.1)
 * SIGINT or SIGTERM ends it with exit status 0 (so strace and valgrind report).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define RELAY_BUF 65536
#define MAX_EVENTS 64

/* One direction of a pair: bytes read from `from` that still have to reach `to`. Each
   socket is registered once, with the side that reads it. */
struct side {
    int from, to;
    struct side *peer; /* the other direction: peer->from == to */
    size_t pos, len;
    char buf[RELAY_BUF];
};

static int epfd;
static volatile sig_atomic_t stopping;

static void on_stop_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void watch(struct side *s, int op, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = s};
    if (epoll_ctl(epfd, op, s->from, &ev) < 0)
        perror("epoll_ctl");
}

/* Pairs closed during one epoll_wait batch; freed after it, as later events of the
   same batch may still point at them. */
static struct side *closed[MAX_EVENTS];
static int nclosed;

static void close_pair(struct side *s)
{
    struct side *first = s < s->peer ? s : s->peer;
    close(first[0].from);
    close(first[1].from);
    first[0].from = first[1].from = -1;
    closed[nclosed++] = first;
}

/* Send what s holds; 0 when all of it left, 1 when `to` is full, -1 on error. */
static int flush(struct side *s)
{
    while (s->pos < s->len) {
        ssize_t n = write(s->to, s->buf + s->pos, s->len - s->pos);
        if (n < 0)
            return errno == EAGAIN ? 1 : -1;
        s->pos += (size_t)n;
    }
    s->pos = s->len = 0;
    return 0;
}

/* What s->from waits for: input unless s still holds bytes for its peer, and room to
   write while the peer holds bytes for it. Called only when that changes, so the
   steady state costs no epoll_ctl. */
static void rearm(struct side *s)
{
    watch(s, EPOLL_CTL_MOD, (s->len == 0 ? EPOLLIN : 0) | (s->peer->len > 0 ? EPOLLOUT : 0));
}

/* s->from became writable: the peer's bytes that were waiting for it go out. */
static int drain_peer(struct side *s)
{
    int r = flush(s->peer);
    if (r == 0) {
        rearm(s);
        rearm(s->peer);
    }
    return r;
}

/* s->from is readable: one read, one write. A short write parks s until `to` drains. */
static int relay(struct side *s)
{
    ssize_t n = read(s->from, s->buf, RELAY_BUF);
    if (n <= 0)
        return n < 0 && errno == EAGAIN ? 0 : -1;
    s->pos = 0;
    s->len = (size_t)n;
    int r = flush(s);
    if (r == 1) {
        rearm(s);
        rearm(s->peer);
    }
    return r < 0 ? -1 : 0;
}

static void on_event(struct side *s, uint32_t events)
{
    if (s->from < 0)
        return;
    if ((events & EPOLLOUT) && drain_peer(s) < 0) {
        close_pair(s);
        return;
    }
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && s->len == 0 && relay(s) < 0)
        close_pair(s);
}

static int tcp_socket_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&to, sizeof to) == 0)
        return fd;
    perror("connect");
    if (fd >= 0)
        close(fd);
    return -1;
}

static void accept_one(int listen_fd, int target_port)
{
    int c = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK);
    if (c < 0)
        return;
    int b = tcp_socket_to(target_port); /* blocking connect: localhost, a yardstick */
    struct side *pair = b < 0 ? NULL : calloc(2, sizeof *pair);
    if (!pair) {
        close(c);
        if (b >= 0)
            close(b);
        return;
    }
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(b, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    if (fcntl(b, F_SETFL, fcntl(b, F_GETFL) | O_NONBLOCK) < 0)
        perror("fcntl");
    pair[0].from = c, pair[0].to = b, pair[0].peer = &pair[1];
    pair[1].from = b, pair[1].to = c, pair[1].peer = &pair[0];
    watch(&pair[0], EPOLL_CTL_ADD, EPOLLIN);
    watch(&pair[1], EPOLL_CTL_ADD, EPOLLIN);
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&at, sizeof at) < 0 || listen(fd, 1024) < 0)
        return -1;
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s LISTEN_PORT TARGET_PORT [PIDFILE]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction stop = {.sa_handler = on_stop_signal}; /* no SA_RESTART: wake epoll */
    sigaction(SIGINT, &stop, NULL);
    sigaction(SIGTERM, &stop, NULL);
    int target_port = atoi(argv[2]);
    int listen_fd = listen_on(atoi(argv[1]));
    epfd = epoll_create1(0);
    if (listen_fd < 0 || epfd < 0) {
        perror("listen");
        return 1;
    }
    FILE *pidfile = argc == 4 ? fopen(argv[3], "w") : NULL;
    if (pidfile) {
        fprintf(pidfile, "%d\n", (int)getpid());
        fclose(pidfile);
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &ev);
    struct epoll_event events[MAX_EVENTS];
    while (!stopping) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == NULL)
                accept_one(listen_fd, target_port);
            else
                on_event(events[i].data.ptr, events[i].events);
        }
        while (nclosed > 0)
            free(closed[--nclosed]);
    }
    return 0;
}
