/*
 * conn — one socket: events, buffers, plain or TLS I/O (see include/warmpool/conn.h).
 *
 * Events: ev_read is persistent and added while reading is not paused; ev_write is
 * made on first need and added only while output waits (or TLS needs it). With TLS
 * the two directions are entangled: a read may need the socket writable, a write may
 * need it readable, and decrypted input can sit inside OpenSSL without waking the
 * loop. All of that is settled here, so owners see plain "readable"/"writable".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "warmpool/conn.h"
#include "warmpool/conn_batch.h"
#include "warmpool/proto.h"
#include "warmpool/runtime.h"
#include "warmpool/tls.h"

static int conn_closed(const struct wp_conn *cn)
{
    return cn->fd < 0;
}

/* Watch (or stop watching) for room to write; -1 when the event cannot be made. */
static void on_write_event(evutil_socket_t fd, short what, void *arg);

static int watch_write(struct wp_conn *cn, int want)
{
    if (cn->write_armed == (want != 0) || conn_closed(cn))
        return 0;
    if (want && !cn->ev_write) {
        /* Made on first need: most connections never fill their socket, and an idle
           one should stay small. */
        cn->ev_write = event_new(wp_rt.base, cn->fd, EV_WRITE | EV_PERSIST, on_write_event, cn);
        if (!cn->ev_write)
            return -1;
    }
    cn->write_armed = want != 0;
    if (want)
        event_add(cn->ev_write, NULL);
    else
        event_del(cn->ev_write);
    return 0;
}

static void on_read_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wp_conn *cn = arg;
    if (conn_batch_defer_read(cn))
        return; /* read with the turn's other reads (conn_batch_run) */
    /* A TLS write that waited for input can go on now. */
    if (cn->tls && cn->tls->write_wants_read) {
        cn->on_writable(cn->owner);
        if (conn_closed(cn))
            return;
    }
    cn->on_readable(cn->owner);
}

static void on_write_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wp_conn *cn = arg;
    if (cn->connecting) {
        cn->on_readable(cn->owner); /* libpq's connect step */
        return;
    }
    if (cn->tls && (!cn->tls->established || cn->tls->read_wants_write)) {
        /* The handshake, or a read that waited for writability: the owner's read
           carries it on (conn_read). */
        cn->tls->read_wants_write = 0;
        cn->on_readable(cn->owner);
        if (conn_closed(cn) || !conn_tls_established(cn))
            return;
    }
    cn->on_writable(cn->owner);
}

/* PgBouncer's tcp_keepalive, tcp_keepcnt/idle/intvl and tcp_user_timeout, on a TCP
   socket (client or backend) as it starts to be relayed. 0 leaves the kernel's value.
   A failure only loses the tuning, so it is not reported. Unix sockets have none. */
static void set_tcp_options(int fd)
{
    const struct wp_config *cfg = wp_rt.cfg;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    if (!cfg || getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
        return;
    int on = cfg->tcp_keepalive;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    if (on && cfg->tcp_keepcnt > 0)
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cfg->tcp_keepcnt, sizeof cfg->tcp_keepcnt);
    if (on && cfg->tcp_keepidle > 0)
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &cfg->tcp_keepidle, sizeof cfg->tcp_keepidle);
    if (on && cfg->tcp_keepintvl > 0)
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &cfg->tcp_keepintvl, sizeof cfg->tcp_keepintvl);
    if (cfg->tcp_user_timeout > 0) {
        unsigned int ms = (unsigned int)cfg->tcp_user_timeout;
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
    }
}

static int open_events(struct wp_conn *cn, int fd, wp_conn_handler on_readable,
                       wp_conn_handler on_writable, void *owner)
{
    set_tcp_options(fd);
    if (cn->ev_write) { /* the connect watch */
        event_free(cn->ev_write);
        cn->ev_write = NULL;
    }
    cn->connecting = 0;
    cn->prefetched = cn->io_failed = 0;
    cn->fd = fd;
    cn->on_readable = on_readable;
    cn->on_writable = on_writable;
    cn->owner = owner;
    cn->ev_read = event_new(wp_rt.base, fd, EV_READ | EV_PERSIST, on_read_event, cn);
    if (!cn->ev_read || event_add(cn->ev_read, NULL) < 0) {
        if (cn->ev_read)
            event_free(cn->ev_read);
        cn->ev_read = NULL;
        cn->fd = -1;
        return -1;
    }
    return 0;
}

int conn_open(struct wp_conn *cn, int fd, wp_conn_handler on_readable, wp_conn_handler on_writable,
              void *owner)
{
    cn->fd_borrowed = 0;
    return open_events(cn, fd, on_readable, on_writable, owner);
}

int conn_open_borrowed(struct wp_conn *cn, int fd, wp_conn_handler on_readable,
                       wp_conn_handler on_writable, void *owner)
{
    cn->fd_borrowed = 1;
    return open_events(cn, fd, on_readable, on_writable, owner);
}

int conn_watch_connect(struct wp_conn *cn, int fd, int for_write, wp_conn_handler step, void *owner)
{
    if (cn->ev_write)
        event_free(cn->ev_write);
    cn->connecting = 1;
    cn->fd_borrowed = 1;
    cn->fd = fd;
    cn->on_readable = step;
    cn->owner = owner;
    cn->ev_write = event_new(wp_rt.base, fd, for_write ? EV_WRITE : EV_READ, on_write_event, cn);
    if (!cn->ev_write)
        return -1;
    /* Bounded by server_connect_timeout through the janitor, not here. */
    return event_add(cn->ev_write, NULL);
}

int conn_start_tls(struct wp_conn *cn)
{
    cn->tls = tls_accept(cn->fd);
    return cn->tls ? 0 : -1;
}

int conn_use_backend_tls(struct wp_conn *cn, SSL *ssl)
{
    cn->tls = tls_wrap_backend(ssl);
    if (!cn->tls)
        return -1;
    if (tls_has_pending(cn->tls))
        event_active(cn->ev_read, EV_READ, 0);
    return 0;
}

int conn_tls_established(const struct wp_conn *cn)
{
    return cn->tls && cn->tls->established;
}

/* ---- reading ---- */

/* One handshake step: 1 done, 0 waiting, CONN_ERROR failed (cn->error says why). */
static int handshake_step(struct wp_conn *cn)
{
    char err[256];
    int rc = tls_handshake(cn->tls, err, sizeof err);
    if (rc < 0) {
        free(cn->error);
        cn->error = strdup(err);
        return CONN_ERROR;
    }
    if (watch_write(cn, cn->tls->read_wants_write) < 0)
        return CONN_ERROR;
    return rc;
}

static long read_tls(struct wp_conn *cn, size_t room)
{
    if (!cn->tls->established) {
        int rc = handshake_step(cn);
        if (rc <= 0)
            return rc; /* the startup packet may be inside OpenSSL already: read on */
    }
    int more;
    long n = tls_read(cn->tls, &cn->in, room, &more);
    if (more && !cn->read_paused)
        event_active(cn->ev_read, EV_READ, 0); /* come back for the rest */
    if (n == 0 && cn->tls->read_wants_write && watch_write(cn, 1) < 0)
        return CONN_ERROR;
    return n;
}

/* The input bound: `cap` unconsumed bytes, more only for the message at `ready` when
   its header asks for at most max_message bytes (it is wanted whole). */
static size_t input_limit(const struct wp_conn *cn, size_t cap, uint32_t max_message)
{
    uint8_t type;
    uint32_t len;
    if (cn->msg_left == 0 &&
        proto_scan_header(buf_head(&cn->in) + cn->ready, buf_unread(&cn->in) - cn->ready,
                          max_message, &type, &len) == PROTO_HEADER &&
        cn->ready + len > cap)
        return cn->ready + len;
    return cap;
}

long conn_read(struct wp_conn *cn, size_t room, size_t cap, uint32_t max_message)
{
    if (conn_closed(cn))
        return CONN_ERROR;
    if (conn_batching) { /* what a batched read needs; it may have happened already */
        cn->read_room = room, cn->read_cap = cap;
        if (cn->prefetched) {
            cn->prefetched = 0;
            return cn->io_rc;
        }
    }
    if (cap > 0 && buf_unread(&cn->in) >= cap &&
        buf_unread(&cn->in) >= input_limit(cn, cap, max_message)) {
        conn_pause_read(cn, 1);
        return 0;
    }
    if (cn->tls)
        return read_tls(cn, room);
    return buf_read_fd(&cn->in, cn->fd, room);
}

int conn_input_pending(const struct wp_conn *cn)
{
    uint8_t byte;
    if (conn_closed(cn) || buf_unread(&cn->in) > 0 || (cn->tls && tls_has_pending(cn->tls)))
        return 1;
    ssize_t n = recv(cn->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

void conn_set_read_paused(struct wp_conn *cn, int paused)
{
    if (!cn->ev_read || (!paused && cn->suspended))
        return;
    cn->read_paused = paused != 0;
    if (paused) {
        event_del(cn->ev_read);
        return;
    }
    event_add(cn->ev_read, NULL);
    /* Input already decrypted inside OpenSSL would not wake the loop. */
    if (cn->tls && tls_has_pending(cn->tls))
        event_active(cn->ev_read, EV_READ, 0);
}

void conn_suspend(struct wp_conn *cn, int on)
{
    if (on) {
        conn_set_read_paused(cn, 1);
        cn->suspended = 1;
        return;
    }
    if (!cn->suspended)
        return;
    cn->suspended = 0;
    conn_set_read_paused(cn, 0);
}

/* ---- writing ---- */

/* One writev: own bytes, then the peer's ready bytes. 1 all went, 0 some left, -1. */
__attribute__((always_inline)) static inline int write_plain(struct wp_conn *cn,
                                                             struct wp_conn *peer)
{
    struct iovec iov[2];
    int n = 0;
    size_t own = buf_unread(&cn->out);
    size_t theirs = peer ? peer->ready : 0;
    if (own)
        iov[n++] = (struct iovec){(void *)buf_head(&cn->out), own};
    if (theirs)
        iov[n++] = (struct iovec){(void *)buf_head(&peer->in), theirs};
    if (n == 0)
        return 1;
    ssize_t written = writev(cn->fd, iov, n);
    if (written < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return CONN_ERROR;
        written = 0;
    }
    size_t from_own = (size_t)written < own ? (size_t)written : own;
    buf_consume(&cn->out, from_own);
    size_t from_theirs = (size_t)written - from_own;
    if (from_theirs) {
        buf_consume(&peer->in, from_theirs);
        peer->ready -= from_theirs;
    }
    return (size_t)written == own + theirs;
}

int conn_write_plain(struct wp_conn *cn, struct wp_conn *peer)
{
    return write_plain(cn, peer);
}

__attribute__((always_inline)) static inline int flush_at_once(struct wp_conn *cn,
                                                               struct wp_conn *peer)
{
    int done, want_write;
    if (cn->tls) {
        done = tls_write(cn->tls, &cn->out, peer ? &peer->in : NULL, peer ? &peer->ready : NULL);
        /* A write waiting for input must not spin on a writable socket; a read waiting
           for writability needs the write event. */
        want_write = (done == 0 && !cn->tls->write_wants_read) || cn->tls->read_wants_write;
    } else {
        done = write_plain(cn, peer);
        want_write = done == 0;
    }
    if (done < 0)
        return CONN_ERROR;
    if (watch_write(cn, want_write) < 0)
        return CONN_ERROR;
    return done;
}

/* Why nothing can be written (CONN_NO_MEMORY, CONN_ERROR), or 0. */
static inline int flush_refused(const struct wp_conn *cn)
{
    if (buf_failed(&cn->out))
        return CONN_NO_MEMORY;
    if (conn_closed(cn) || cn->io_failed)
        return CONN_ERROR;
    return 0;
}

int conn_flush(struct wp_conn *cn, struct wp_conn *peer)
{
    int refused = flush_refused(cn);
    if (refused)
        return refused;
    if (conn_batching && (buf_unread(&cn->out) > 0 || (peer && peer->ready > 0)) &&
        conn_batch_join_write(cn))
        return 0; /* written with the turn's other writes, then on_writable runs */
    return flush_at_once(cn, peer);
}

int conn_flush_now(struct wp_conn *cn)
{
    int refused = flush_refused(cn);
    return refused ? refused : flush_at_once(cn, NULL);
}

void conn_write_done(struct wp_conn *cn, int rc)
{
    if (rc >= 0 && watch_write(cn, rc == 0) < 0)
        rc = CONN_ERROR;
    if (rc < 0)
        cn->io_failed = 1; /* the owner's next conn_flush reports it */
    if (rc != 0)
        cn->on_writable(cn->owner);
}

int conn_output_pending(const struct wp_conn *cn)
{
    return buf_unread(&cn->out) > 0 || (cn->tls && buf_unread(&cn->tls->out) > 0);
}

/* ---- the rest ---- */

void conn_local_address(const struct wp_conn *cn, char *host, size_t hostlen, int *port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    snprintf(host, hostlen, "%s", "unix");
    *port = 0;
    if (conn_closed(cn) || getsockname(cn->fd, (struct sockaddr *)&ss, &len) < 0)
        return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, (socklen_t)hostlen);
        *port = ntohs(sin->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, (socklen_t)hostlen);
        *port = ntohs(sin6->sin6_port);
    }
}

void conn_close(struct wp_conn *cn)
{
    conn_batch_forget(cn);
    cn->prefetched = 0;
    struct wp_buf nothing = {0};
    struct wp_buf *last = buf_failed(&cn->out) ? &nothing : &cn->out;
    if (cn->tls) {
        if (cn->tls->owned)
            tls_close(cn->tls, last); /* best effort, then close_notify */
        else
            tls_free(cn->tls); /* the SSL itself is libpq's, freed by PQfinish */
        cn->tls = NULL;
    } else if (!conn_closed(cn) && !cn->fd_borrowed && buf_unread(last) > 0) {
        ssize_t ignored = write(cn->fd, buf_head(last), buf_unread(last));
        (void)ignored;
    }
    if (cn->ev_read)
        event_free(cn->ev_read);
    if (cn->ev_write)
        event_free(cn->ev_write);
    cn->ev_read = cn->ev_write = NULL;
    cn->read_paused = cn->write_armed = cn->connecting = cn->suspended = 0;
    if (!conn_closed(cn) && !cn->fd_borrowed)
        close(cn->fd);
    cn->fd = -1;
}

void conn_free(struct wp_conn *cn)
{
    conn_close(cn);
    buf_free(&cn->in);
    buf_free(&cn->out);
    free(cn->error);
    cn->error = NULL;
}

void conn_reject(int fd, const struct wp_buf *msg)
{
    if (!buf_failed(msg) && buf_unread(msg) > 0) {
        ssize_t ignored = write(fd, buf_head(msg), buf_unread(msg));
        (void)ignored;
    }
    close(fd);
}
