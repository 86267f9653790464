/*
 * listener — TCP and unix-domain listen sockets. Accepts in batches and hands each
 * new fd to the client module; knows nothing about the protocol.
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

#define MAX_LISTENERS 8
#define ACCEPTS_PER_EVENT 64

struct listen_sock {
    int fd;
    int is_unix;
    struct event *ev;
    char path[108];
    dev_t dev; /* the unix socket file we created: unlinked at stop only if still ours */
    ino_t ino;
};

static struct listen_sock listeners[MAX_LISTENERS];
static int nlisteners;

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

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    struct listen_sock *ls = arg;
    for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_warn("accept failed: %s", strerror(errno));
            return;
        }
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
    ls->ev = event_new(wp_rt.base, fd, EV_READ | EV_PERSIST, on_accept, ls);
    if (!ls->ev || event_add(ls->ev, NULL) < 0) {
        snprintf(err, (size_t)errlen, "cannot watch listen socket");
        close(fd);
        return -1;
    }
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

static int listen_tcp(char *err, int errlen)
{
    const struct wp_config *cfg = wp_rt.cfg;
    if (!cfg->listen_addr || !*cfg->listen_addr)
        return 0;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->listen_port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    const char *host = strcmp(cfg->listen_addr, "*") == 0 ? NULL : cfg->listen_addr;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, (size_t)errlen, "listen_addr %s: %s", cfg->listen_addr, gai_strerror(rc));
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
    for (int i = 0; i < nlisteners; i++) {
        if (paused)
            event_del(listeners[i].ev);
        else
            event_add(listeners[i].ev, NULL);
    }
}

void listener_stop(void)
{
    for (int i = 0; i < nlisteners; i++) {
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
