/*
 * listener — TCP and unix-domain listen sockets. Accepts in batches and hands each
 * new fd to the client module; knows nothing about the protocol.
 *
 * When accept() fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM), the connection stays in the kernel's listen queue and the socket stays
 * readable: retrying at once would spin the loop and write a log line per turn. So
 * every accepting socket — ours and the stats endpoint's, which registers with
 * listener_watch_accepts() — stops being watched for ACCEPT_PAUSE_MS, then is tried
 * again. Such a pause is logged when it starts and then at most once per
 * ACCEPT_LOG_INTERVAL_MS with the number of failed attempts, and the first accept
 * that works again says how long it took.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "warmpool/client.h"
#include "warmpool/listener.h"
#include "warmpool/log.h"
#include "warmpool/runtime.h"
#include "warmpool/timeouts.h"

#define MAX_LISTENERS 16
#define ACCEPTS_PER_EVENT 64
/* A fixed pause, not "until a connection closes": descriptors also come back when
   backends close, ENFILE and memory are limits of the whole system, and no single
   event here says that room is back. One second bounds both the wasted wake-ups and
   the extra wait of the clients queued meanwhile (they are not refused: they wait in
   the listen queue). */
#define ACCEPT_PAUSE_MS 1000
#define ACCEPT_LOG_INTERVAL_MS 10000
/* Our listen sockets plus the stats endpoint's. */
#define MAX_WATCHES (MAX_LISTENERS + 8)

struct listen_sock {
    int fd;
    int is_unix;
    struct event *ev;
    char path[108];
    dev_t dev; /* the unix socket file we created: unlinked at stop only if still ours */
    ino_t ino;
    char addr[64]; /* "host:port" of a TCP socket, for log lines */
};

static struct listen_sock listeners[MAX_LISTENERS];
static int nlisteners;

/* Every accepting event, and whether it is one of ours (listener_pause applies). */
struct accept_watch {
    struct event *ev;
    int ours;
};

static struct accept_watch watches[MAX_WATCHES];
static int nwatches;
static int paused_by_caller;       /* listener_pause() */
static struct event *resume_timer; /* pending while accepting is paused for resources */
static int out_of_resources;       /* that pause is on */
/* The current run of failures: since when, how many, how many since the last line. */
static int64_t failing_since_ms, failure_logged_ms;
static unsigned failures_total, failures_unlogged;

void listener_describe_peer(const struct sockaddr_storage *ss, char *out, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "unix";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        port = ntohs(sin->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        port = ntohs(sin6->sin6_port);
    }
    if (ss->ss_family == AF_INET || ss->ss_family == AF_INET6)
        snprintf(out, len, "%s:%d", host, port);
    else
        snprintf(out, len, "%s", host);
}

static void describe_listener(struct listen_sock *ls)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    snprintf(ls->addr, sizeof ls->addr, "listener");
    if (!ls->is_unix && getsockname(ls->fd, (struct sockaddr *)&ss, &len) == 0)
        listener_describe_peer(&ss, ls->addr, sizeof ls->addr);
}

/* What log lines call the socket. */
static const char *listener_name(const struct listen_sock *ls)
{
    return ls->is_unix ? ls->path : ls->addr;
}

/* ---------------------------------------------------------------- pausing */

static void apply_watch(const struct accept_watch *w)
{
    if (out_of_resources || (w->ours && paused_by_caller))
        event_del(w->ev);
    else
        event_add(w->ev, NULL);
}

static void apply_watches(void)
{
    for (int i = 0; i < nwatches; i++)
        apply_watch(&watches[i]);
}

static void watch_add(struct event *ev, int ours)
{
    if (nwatches == MAX_WATCHES)
        return; /* then only this socket keeps accepting through a shortage */
    watches[nwatches] = (struct accept_watch){ev, ours};
    apply_watch(&watches[nwatches]);
    nwatches++;
}

static void watch_remove(struct event *ev)
{
    for (int i = 0; i < nwatches; i++) {
        if (watches[i].ev != ev)
            continue;
        watches[i] = watches[--nwatches];
        break;
    }
    /* The timer lives as long as something may be paused by it. */
    if (nwatches == 0 && resume_timer) {
        event_free(resume_timer);
        resume_timer = NULL;
        out_of_resources = 0;
    }
}

void listener_watch_accepts(struct event *ev)
{
    watch_add(ev, 0);
}

void listener_unwatch_accepts(struct event *ev)
{
    watch_remove(ev);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    out_of_resources = 0;
    apply_watches();
}

static void log_failures(int err, const char *who, int64_t now)
{
    if (failures_total == 1)
        log_warn("%s: accept failed: %s; not accepting on any listener for %d ms at a time "
                 "(new connections wait in the listen queue)",
                 who, strerror(err), ACCEPT_PAUSE_MS);
    else if (now - failure_logged_ms >= ACCEPT_LOG_INTERVAL_MS)
        log_warn("%s: accept still failing: %s (%u failed attempts in the last %lld ms, "
                 "%u since %lld ms ago)",
                 who, strerror(err), failures_unlogged, (long long)(now - failure_logged_ms),
                 failures_total, (long long)(now - failing_since_ms));
    else
        return;
    failure_logged_ms = now;
    failures_unlogged = 0;
}

int listener_accept_failed(int err, const char *who)
{
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
        return 0;
    int64_t now = wp_now_ms();
    if (failures_total++ == 0)
        failing_since_ms = now;
    failures_unlogged++;
    log_failures(err, who, now);
    if (!resume_timer)
        resume_timer = event_new(wp_rt.base, -1, 0, on_resume, NULL);
    struct timeval pause = {ACCEPT_PAUSE_MS / 1000, (ACCEPT_PAUSE_MS % 1000) * 1000};
    if (!resume_timer || event_add(resume_timer, &pause) < 0)
        return 1; /* no timer, no pause: better a busy loop than a deaf pooler */
    out_of_resources = 1;
    apply_watches();
    return 1;
}

/* An accept worked: end of a run of failures, if there was one. */
static void note_accept_worked(const char *who)
{
    if (failures_total == 0)
        return;
    log_info("%s: accepting connections again after %u failed attempts over %lld ms", who,
             failures_total, (long long)(wp_now_ms() - failing_since_ms));
    failures_total = failures_unlogged = 0;
}

/* ---------------------------------------------------------------- accepting */

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    struct listen_sock *ls = arg;
    for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR &&
                !listener_accept_failed(err, listener_name(ls)))
                log_warn("%s: accept failed: %s", listener_name(ls), strerror(err));
            return;
        }
        note_accept_worked(listener_name(ls));
        if (!ls->is_unix) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        char addr[64];
        listener_describe_peer(&ss, addr, sizeof addr);
        client_accept(fd, addr);
    }
}

static int add_listener(int fd, int is_unix, const char *path, const struct stat *st, char *err,
                        int errlen)
{
    if (nlisteners == MAX_LISTENERS) {
        snprintf(err, (size_t)errlen, "too many listen sockets");
        close(fd);
        return -1;
    }
    struct listen_sock *ls = &listeners[nlisteners];
    ls->fd = fd;
    ls->is_unix = is_unix;
    snprintf(ls->path, sizeof ls->path, "%s", path ? path : "");
    ls->dev = st ? st->st_dev : 0;
    ls->ino = st ? st->st_ino : 0;
    describe_listener(ls);
    ls->ev = event_new(wp_rt.base, fd, EV_READ | EV_PERSIST, on_accept, ls);
    if (!ls->ev || event_add(ls->ev, NULL) < 0) {
        snprintf(err, (size_t)errlen, "cannot watch listen socket");
        close(fd);
        return -1;
    }
    watch_add(ls->ev, 1);
    nlisteners++;
    return 0;
}

static int listen_tcp_addr(const struct addrinfo *ai, char *err, int errlen)
{
    const struct wp_config *cfg = wp_rt.cfg;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, (size_t)errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (cfg->so_reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, cfg->listen_backlog) < 0) {
        char host[64];
        listener_describe_peer((const struct sockaddr_storage *)ai->ai_addr, host, sizeof host);
        snprintf(err, (size_t)errlen, "cannot listen on %s: %s", host, strerror(errno));
        close(fd);
        return -1;
    }
    return add_listener(fd, 0, NULL, NULL, err, errlen);
}

/* One item of listen_addr: a host name, an address, or "*" (every address). */
static int listen_tcp_host(const char *item, char *err, int errlen)
{
    char port[16];
    snprintf(port, sizeof port, "%d", wp_rt.cfg->listen_port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    const char *host = strcmp(item, "*") == 0 ? NULL : item;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, (size_t)errlen, "listen_addr %s: %s", item, gai_strerror(rc));
        return -1;
    }
    int ok = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (listen_tcp_addr(ai, err, errlen) == 0)
            ok++;
        else if (host)
            break; /* an explicit address must work */
    }
    freeaddrinfo(res);
    return ok > 0 ? 0 : -1;
}

/* listen_addr is a comma-separated list, as in PgBouncer ("127.0.0.1,::1", "*"). */
static int listen_tcp(char *err, int errlen)
{
    const char *p = wp_rt.cfg->listen_addr;
    char item[256];
    if (!p)
        return 0;
    for (;;) {
        p += strspn(p, ", \t");
        if (!*p)
            return 0;
        size_t len = strcspn(p, ", \t");
        if (len >= sizeof item) {
            snprintf(err, (size_t)errlen, "listen_addr: an address is too long");
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (listen_tcp_host(item, err, errlen) < 0)
            return -1;
        p += len;
    }
}

static int listen_unix(char *err, int errlen)
{
    const struct wp_config *cfg = wp_rt.cfg;
    if (!cfg->unix_socket_dir || !*cfg->unix_socket_dir)
        return 0;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int n = snprintf(sun.sun_path, sizeof sun.sun_path, "%s/.s.PGSQL.%d", cfg->unix_socket_dir,
                     cfg->listen_port);
    if (n < 0 || (size_t)n >= sizeof sun.sun_path) {
        snprintf(err, (size_t)errlen, "unix_socket_dir too long");
        return -1;
    }
    /* Bind under a temporary name, then rename() it into place: the rename is atomic,
       so while an old warmpool still runs (rolling restart with so_reuseport) every
       client finds a listening socket, first the old one, then ours. A stale file from
       a crashed run is replaced the same way. */
    struct sockaddr_un tmp = sun;
    n = snprintf(tmp.sun_path, sizeof tmp.sun_path, "%s.%d.tmp", sun.sun_path, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp.sun_path) {
        snprintf(err, (size_t)errlen, "unix_socket_dir too long");
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, (size_t)errlen, "socket: %s", strerror(errno));
        return -1;
    }
    unlink(tmp.sun_path);
    struct stat st;
    if (bind(fd, (struct sockaddr *)&tmp, sizeof tmp) < 0 || listen(fd, cfg->listen_backlog) < 0 ||
        chmod(tmp.sun_path, (mode_t)cfg->unix_socket_mode) < 0 || stat(tmp.sun_path, &st) < 0 ||
        rename(tmp.sun_path, sun.sun_path) < 0) {
        snprintf(err, (size_t)errlen, "cannot listen on %s: %s", sun.sun_path, strerror(errno));
        unlink(tmp.sun_path);
        close(fd);
        return -1;
    }
    return add_listener(fd, 1, sun.sun_path, &st, err, errlen);
}

int listener_start(char *err, int errlen)
{
    if (listen_tcp(err, errlen) < 0 || listen_unix(err, errlen) < 0)
        return -1;
    return 0;
}

void listener_pause(int paused)
{
    paused_by_caller = paused != 0;
    apply_watches();
}

void listener_stop(void)
{
    for (int i = 0; i < nlisteners; i++) {
        watch_remove(listeners[i].ev);
        event_free(listeners[i].ev);
        close(listeners[i].fd);
        /* A newer warmpool may have renamed its socket over ours: leave that one. */
        struct stat st;
        if (listeners[i].is_unix && stat(listeners[i].path, &st) == 0 &&
            st.st_dev == listeners[i].dev && st.st_ino == listeners[i].ino)
            unlink(listeners[i].path);
    }
    nlisteners = 0;
}
