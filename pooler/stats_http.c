/*
 * stats_http — the HTTP stats endpoint (include/warmpool/stats_http.h): a strict
 * request parser, routing, and a tiny non-blocking server. The bodies are rendered
 * by stats_render.c.
 *
 * Each connection reads one request (at most HTTP_MAX_REQUEST bytes, within
 * HTTP_READ_DEADLINE_MS of accepting it), gets one fully rendered response, and is
 * closed after a short lingering drain so that a client still sending (an oversized
 * request) reads our error instead of a reset. The output buffer is bounded by
 * HTTP_MAX_RESPONSE and the write side by an idle timeout, so a stuck reader costs
 * one fd and one buffer until the timeout, and never a blocked loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "warmpool/config.h"
#include "warmpool/listener.h"
#include "warmpool/log.h"
#include "warmpool/runtime.h"
#include "warmpool/stats.h"
#include "warmpool/stats_http.h"

#define HTTP_MAX_CONNS 64
#define HTTP_MAX_RESPONSE (32u << 20)
#define HTTP_READ_DEADLINE_MS 10000 /* whole request, however slowly it trickles in */
#define HTTP_WRITE_IDLE_MS 10000    /* no write progress for this long: give up */
#define HTTP_DRAIN_MS 2000
#define HTTP_DRAIN_MAX (16u << 20)
#define HTTP_MAX_LISTENERS 8
#define STATEMENTS_DEFAULT_LIMIT 100
#define STATEMENTS_MAX_LIMIT 100000

/* ---------------------------------------------------------------- request parsing */

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Request line: METHOD SP target SP HTTP/1.x CRLF. *next is where headers start. */
static enum http_parse parse_request_line(const char *buf, size_t len, struct http_request *req,
                                          size_t *next)
{
    size_t i = 0;
    while (i < len && buf[i] >= 'A' && buf[i] <= 'Z')
        i++;
    if (i >= sizeof req->method)
        return HTTP_BAD_REQUEST;
    if (i == len)
        return HTTP_INCOMPLETE;
    if (i == 0 || buf[i] != ' ')
        return HTTP_BAD_REQUEST;
    memcpy(req->method, buf, i);
    req->method[i] = '\0';

    size_t t = ++i;
    while (i < len && (unsigned char)buf[i] > 0x20 && (unsigned char)buf[i] < 0x7f)
        i++;
    if (i - t >= HTTP_MAX_TARGET)
        return HTTP_URI_TOO_LONG;
    if (i == len)
        return HTTP_INCOMPLETE;
    if (i == t || buf[i] != ' ')
        return HTTP_BAD_REQUEST;
    size_t target_len = i - t;
    const char *target = buf + t;

    static const char proto[] = "HTTP/";
    i++;
    for (size_t k = 0; k < sizeof proto - 1; k++, i++) {
        if (i == len)
            return HTTP_INCOMPLETE;
        if (buf[i] != proto[k])
            return HTTP_BAD_REQUEST;
    }
    /* digit '.' digit, then CRLF (a bare LF is tolerated) */
    if (len - i < 3)
        return HTTP_INCOMPLETE;
    if (buf[i] < '0' || buf[i] > '9' || buf[i + 1] != '.' || buf[i + 2] < '0' || buf[i + 2] > '9')
        return HTTP_BAD_REQUEST;
    if (buf[i] != '1')
        return HTTP_VERSION_NOT_SUPPORTED;
    req->minor_version = buf[i + 2] - '0';
    i += 3;
    if (i < len && buf[i] == '\r')
        i++;
    if (i == len)
        return HTTP_INCOMPLETE;
    if (buf[i] != '\n')
        return HTTP_BAD_REQUEST;
    *next = i + 1;

    /* origin-form "/path?query", or absolute-form "http://host/path?query" */
    if (target_len > 7 && strncasecmp(target, "http://", 7) == 0) {
        const char *slash = memchr(target + 7, '/', target_len - 7);
        if (!slash)
            slash = target + target_len; /* "http://host" means "/" */
        target_len -= (size_t)(slash - target);
        target = slash;
    }
    if (target_len == 0) {
        strcpy(req->path, "/");
        return HTTP_OK;
    }
    if (target[0] != '/')
        return HTTP_BAD_REQUEST;
    const char *q = memchr(target, '?', target_len);
    size_t path_len = q ? (size_t)(q - target) : target_len;
    memcpy(req->path, target, path_len);
    req->path[path_len] = '\0';
    if (q) {
        size_t qlen = target_len - path_len - 1;
        memcpy(req->query, q + 1, qlen);
        req->query[qlen] = '\0';
    }
    return HTTP_OK;
}

/* Content-Length: digits only; a second one must agree. */
static enum http_parse take_content_length(const char *v, size_t n, struct http_request *req,
                                           int *seen)
{
    size_t value = 0;
    if (n == 0)
        return HTTP_BAD_REQUEST;
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return HTTP_BAD_REQUEST;
    if (n > 9)
        return HTTP_BODY_TOO_LARGE; /* a billion bytes or more: no need to read it exactly */
    for (size_t i = 0; i < n; i++)
        value = value * 10 + (size_t)(v[i] - '0');
    if (*seen && value != req->body_len)
        return HTTP_BAD_REQUEST;
    *seen = 1;
    req->body_len = value;
    return HTTP_OK;
}

/* One header line [line, end) without its line break. */
static enum http_parse parse_header(const char *line, size_t n, struct http_request *req,
                                    int *seen_length)
{
    if (line[0] == ' ' || line[0] == '\t')
        return HTTP_BAD_REQUEST; /* obsolete line folding */
    const char *colon = memchr(line, ':', n);
    if (!colon || colon == line)
        return HTTP_BAD_REQUEST;
    size_t name_len = (size_t)(colon - line);
    for (size_t i = 0; i < name_len; i++)
        if (!is_tchar((unsigned char)line[i]))
            return HTTP_BAD_REQUEST;
    const char *v = colon + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    for (const char *p = v; p < end; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return HTTP_BAD_REQUEST;
    if (name_len == 14 && strncasecmp(line, "content-length", 14) == 0)
        return take_content_length(v, (size_t)(end - v), req, seen_length);
    if (name_len == 17 && strncasecmp(line, "transfer-encoding", 17) == 0)
        return HTTP_BAD_REQUEST; /* no request here has a body worth streaming */
    return HTTP_OK;
}

enum http_parse http_parse_request(const char *buf, size_t len, struct http_request *req)
{
    size_t pos = 0;
    int seen_length = 0;
    memset(req, 0, sizeof *req);
    enum http_parse r = parse_request_line(buf, len, req, &pos);
    if (r == HTTP_INCOMPLETE && len >= HTTP_MAX_REQUEST)
        return HTTP_URI_TOO_LONG;
    if (r != HTTP_OK)
        return r;
    for (;;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl)
            return len >= HTTP_MAX_REQUEST ? HTTP_HEADERS_TOO_LARGE : HTTP_INCOMPLETE;
        size_t end = (size_t)(nl - buf);
        if (end + 1 > HTTP_MAX_REQUEST)
            return HTTP_HEADERS_TOO_LARGE;
        size_t n = end - pos;
        if (n > 0 && buf[end - 1] == '\r')
            n--;
        if (n == 0) {
            req->head_len = end + 1;
            break;
        }
        r = parse_header(buf + pos, n, req, &seen_length);
        if (r != HTTP_OK)
            return r;
        pos = end + 1;
    }
    if (req->body_len > HTTP_MAX_REQUEST - req->head_len)
        return HTTP_BODY_TOO_LARGE;
    return HTTP_OK;
}

/* ---------------------------------------------------------------- responses */

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

static const char index_text[] =
    "warmpool stats endpoint\n"
    "  /metrics     Prometheus text format\n"
    "  /stats       counters, histograms and percentiles per pool (JSON)\n"
    "  /pools       clients and servers per pool (JSON)\n"
    "  /statements  top statements by total time (JSON, ?limit=N)\n"
    "  /health      200 when every pool can reach its database, else 503\n";

static int statements_limit(const char *query)
{
    for (const char *p = query; p && *p;) {
        if (strncmp(p, "limit=", 6) == 0) {
            char *end;
            long v = strtol(p + 6, &end, 10);
            if (end != p + 6 && (*end == '\0' || *end == '&') && v >= 0)
                return v > STATEMENTS_MAX_LIMIT ? STATEMENTS_MAX_LIMIT : (int)v;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return STATEMENTS_DEFAULT_LIMIT;
}

/* Status and body for a well-formed request. */
static int route(const struct http_request *req, struct wp_buf *body, const char **type,
                 int64_t now_ms)
{
    static const char json[] = "application/json";
    const char *p = req->path;
    *type = "text/plain; charset=utf-8";
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
        return 405;
    if (strcmp(p, "/metrics") == 0) {
        *type = "text/plain; version=0.0.4; charset=utf-8";
        return stats_render_prometheus(body, now_ms) < 0 ? 500 : 200;
    }
    if (strcmp(p, "/stats") == 0) {
        *type = json;
        return stats_render_stats_json(body, now_ms) < 0 ? 500 : 200;
    }
    if (strcmp(p, "/pools") == 0) {
        *type = json;
        return stats_render_pools_json(body, now_ms) < 0 ? 500 : 200;
    }
    if (strcmp(p, "/statements") == 0) {
        *type = json;
        return stats_render_statements_json(body, statements_limit(req->query)) < 0 ? 500 : 200;
    }
    if (strcmp(p, "/health") == 0) {
        *type = json;
        int status = stats_render_health_json(body, now_ms);
        return status < 0 ? 500 : status;
    }
    if (strcmp(p, "/") == 0)
        return buf_append(body, index_text, sizeof index_text - 1) < 0 ? 500 : 200;
    return 404;
}

int http_respond(const struct http_request *req, int status, struct wp_buf *out, int64_t now_ms)
{
    struct wp_buf body = {0};
    const char *type = "text/plain; charset=utf-8";
    if (status == HTTP_OK && req)
        status = route(req, &body, &type, now_ms);
    if (status == 200 && buf_unread(&body) > HTTP_MAX_RESPONSE)
        status = 500;
    if (status != 200 && status != 503) {
        buf_reset(&body);
        type = "text/plain; charset=utf-8";
        char text[64];
        int n = snprintf(text, sizeof text, "%d %s\n", status, status_text(status));
        buf_append(&body, text, (size_t)n);
    }
    int head_only = req && strcmp(req->method, "HEAD") == 0;
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
                     status, status_text(status), type, buf_unread(&body),
                     status == 405 ? "Allow: GET, HEAD\r\n" : "");
    /* On out of memory the response is cut short; the client sees a bad length. */
    if (buf_append(out, head, (size_t)n) == 0 && !head_only)
        buf_append(out, buf_head(&body), buf_unread(&body));
    buf_free(&body);
    return status;
}

/* ---------------------------------------------------------------- server */

enum conn_phase { PHASE_READ, PHASE_WRITE, PHASE_DRAIN };

struct http_conn {
    struct wp_list node;
    int fd;
    struct event *ev;
    enum conn_phase phase;
    int write_armed;
    struct wp_buf in, out;
    int64_t deadline_ms; /* read and drain phases end by then, however slow the peer */
    size_t drained;
    char peer[64];
};

struct http_listener {
    int fd;
    struct event *ev;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* unix socket file, or "" */
    dev_t dev; /* the socket file we made: removed at stop only if it is still ours */
    ino_t ino;
};

static struct http_listener listeners[HTTP_MAX_LISTENERS];
static int nlisteners;
static struct wp_list conns = {&conns, &conns};
static int nconns;
/* What the listeners were opened for, to notice changes on reload. */
static char *bound_socket, *bound_listen;
static int bound_mode;

static void hc_close(struct http_conn *hc)
{
    list_remove(&hc->node);
    nconns--;
    if (hc->ev)
        event_free(hc->ev);
    close(hc->fd);
    buf_free(&hc->in);
    buf_free(&hc->out);
    free(hc);
}

static void on_conn_event(evutil_socket_t fd, short what, void *arg);

static struct timeval ms_timeval(int64_t ms)
{
    if (ms < 1)
        ms = 1;
    return (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
}

/*
 * Watch for `what` with a timeout of ms from now. A persistent event's timeout
 * restarts whenever it fires: an idle timeout. For a deadline, the callbacks re-add
 * the event with what is left (conn_keep_deadline).
 */
static int hc_watch(struct http_conn *hc, short what, int64_t ms)
{
    if (hc->ev)
        event_free(hc->ev);
    hc->ev = event_new(wp_rt.base, hc->fd, what | EV_PERSIST, on_conn_event, hc);
    struct timeval tv = ms_timeval(ms);
    return hc->ev && event_add(hc->ev, &tv) == 0 ? 0 : -1;
}

/* Byte-at-a-time peers must not push the deadline: put back the time that is left. */
static int hc_keep_deadline(struct http_conn *hc)
{
    int64_t left = hc->deadline_ms - (stats_now_us() / 1000);
    if (left <= 0)
        return -1;
    struct timeval tv = ms_timeval(left);
    return event_add(hc->ev, &tv);
}

static void hc_drain(struct http_conn *hc)
{
    char scratch[4096];
    for (;;) {
        ssize_t n = read(hc->fd, scratch, sizeof scratch);
        if (n > 0) {
            hc->drained += (size_t)n;
            if (hc->drained > HTTP_DRAIN_MAX)
                break;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (hc_keep_deadline(hc) < 0)
                break;
            return;
        }
        break; /* EOF or error */
    }
    hc_close(hc);
}

/* The response is out: stop writing, and read until the client closes, briefly. */
static void hc_linger(struct http_conn *hc)
{
    shutdown(hc->fd, SHUT_WR);
    hc->phase = PHASE_DRAIN;
    hc->deadline_ms = (stats_now_us() / 1000) + HTTP_DRAIN_MS;
    buf_free(&hc->in);
    buf_free(&hc->out);
    if (hc_watch(hc, EV_READ, HTTP_DRAIN_MS) < 0) {
        hc_close(hc);
        return;
    }
    hc_drain(hc);
}

static void hc_write(struct http_conn *hc)
{
    while (buf_unread(&hc->out) > 0) {
        ssize_t n = write(hc->fd, buf_head(&hc->out), buf_unread(&hc->out));
        if (n > 0) {
            buf_consume(&hc->out, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            /* Armed once: the idle timeout restarts only when the socket takes bytes. */
            if (!hc->write_armed) {
                hc->write_armed = 1;
                if (hc_watch(hc, EV_WRITE, HTTP_WRITE_IDLE_MS) < 0)
                    hc_close(hc);
            }
            return;
        }
        hc_close(hc);
        return;
    }
    hc_linger(hc);
}

static void hc_respond(struct http_conn *hc, const struct http_request *req, int status)
{
    buf_reset(&hc->out);
    int sent = http_respond(req, status, &hc->out, (stats_now_us() / 1000));
    log_debug("stats %s: %s %s -> %d (%zu bytes)", hc->peer, req ? req->method : "-",
              req ? req->path : "-", sent, buf_unread(&hc->out));
    if (buf_unread(&hc->out) == 0) {
        hc_close(hc);
        return;
    }
    hc->phase = PHASE_WRITE;
    hc->write_armed = 0;
    if (hc->ev) {
        event_free(hc->ev);
        hc->ev = NULL;
    }
    hc_write(hc);
}

static void hc_read(struct http_conn *hc)
{
    for (;;) {
        size_t room = HTTP_MAX_REQUEST + 1 - buf_unread(&hc->in);
        if (room == 0 || buf_reserve(&hc->in, room) < 0)
            break;
        ssize_t n = read(hc->fd, hc->in.data + hc->in.len, room);
        if (n > 0) {
            hc->in.len += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            break;
        if (n < 0 || buf_unread(&hc->in) == 0) {
            hc_close(hc);
            return;
        }
        /* EOF (the client half-closed) before a complete request: say so. */
        struct http_request req;
        enum http_parse r =
            http_parse_request((const char *)buf_head(&hc->in), buf_unread(&hc->in), &req);
        hc_respond(hc, r == HTTP_OK ? &req : NULL, r == HTTP_INCOMPLETE ? HTTP_BAD_REQUEST : r);
        return;
    }
    struct http_request req;
    enum http_parse r =
        http_parse_request((const char *)buf_head(&hc->in), buf_unread(&hc->in), &req);
    if (r == HTTP_INCOMPLETE ||
        (r == HTTP_OK && buf_unread(&hc->in) < req.head_len + req.body_len)) {
        if (hc_keep_deadline(hc) < 0)
            hc_close(hc);
        return;
    }
    hc_respond(hc, r == HTTP_OK ? &req : NULL, r);
}

static void on_conn_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct http_conn *hc = arg;
    if (what & EV_TIMEOUT) {
        log_debug("stats %s: %s timed out", hc->peer,
                  hc->phase == PHASE_READ    ? "request"
                  : hc->phase == PHASE_WRITE ? "write"
                                             : "drain");
        hc_close(hc);
        return;
    }
    switch (hc->phase) {
    case PHASE_READ:
        hc_read(hc);
        break;
    case PHASE_WRITE:
        hc_write(hc);
        break;
    case PHASE_DRAIN:
        hc_drain(hc);
        break;
    }
}

static void refuse_busy(int fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n";
    ssize_t ignored = write(fd, busy, sizeof busy - 1);
    (void)ignored;
    close(fd);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    (void)arg;
    for (int i = 0; i < 16; i++) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            /* Out of descriptors: pause with the pooler's listeners, not spin. */
            if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR &&
                !listener_accept_failed(err, "stats endpoint"))
                log_warn("stats endpoint: accept failed: %s", strerror(err));
            return;
        }
        if (nconns >= HTTP_MAX_CONNS) {
            refuse_busy(fd);
            continue;
        }
        struct http_conn *hc = calloc(1, sizeof *hc);
        if (!hc) {
            close(fd);
            continue;
        }
        hc->fd = fd;
        hc->phase = PHASE_READ;
        hc->deadline_ms = (stats_now_us() / 1000) + HTTP_READ_DEADLINE_MS;
        listener_describe_peer(&ss, hc->peer, sizeof hc->peer);
        list_push_tail(&conns, &hc->node);
        nconns++;
        if (hc_watch(hc, EV_READ, HTTP_READ_DEADLINE_MS) < 0)
            hc_close(hc);
    }
}

static int add_listener(int fd, const char *path, char *err, size_t errlen)
{
    if (nlisteners == HTTP_MAX_LISTENERS) {
        snprintf(err, errlen, "stats endpoint: too many listen addresses");
        close(fd);
        return -1;
    }
    struct http_listener *l = &listeners[nlisteners];
    l->fd = fd;
    snprintf(l->path, sizeof l->path, "%s", path ? path : "");
    struct stat st;
    l->dev = path && stat(path, &st) == 0 ? st.st_dev : 0;
    l->ino = path && stat(path, &st) == 0 ? st.st_ino : 0;
    l->ev = event_new(wp_rt.base, fd, EV_READ | EV_PERSIST, on_accept, l);
    if (!l->ev || event_add(l->ev, NULL) < 0) {
        if (l->ev)
            event_free(l->ev);
        snprintf(err, errlen, "stats endpoint: cannot watch listen socket");
        close(fd);
        return -1;
    }
    listener_watch_accepts(l->ev);
    nlisteners++;
    return 0;
}

static int listen_unix(const char *path, int mode, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sun.sun_path) {
        snprintf(err, errlen, "stats_socket %s: path too long", path);
        return -1;
    }
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "stats_socket: socket: %s", strerror(errno));
        return -1;
    }
    /* Only a socket file is replaced: a typo must not delete a regular file. */
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    /* Bind under a tight umask so the socket is never briefly more open than mode. */
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof sun);
    umask(old);
    if (rc < 0 || listen(fd, 64) < 0 || chmod(path, (mode_t)mode) < 0) {
        snprintf(err, errlen, "stats_socket %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return add_listener(fd, path, err, errlen);
}

static int listen_tcp(const char *spec, char *err, size_t errlen)
{
    char host[256], port[16];
    int portnum;
    if (config_split_host_port(spec, host, sizeof host, &portnum) < 0) {
        snprintf(err, errlen, "stats_listen %s: not host:port", spec);
        return -1;
    }
    snprintf(port, sizeof port, "%d", portnum);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    int rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "stats_listen %s: %s", spec, gai_strerror(rc));
        return -1;
    }
    int ok = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
            snprintf(err, errlen, "stats_listen %s: %s", spec, strerror(errno));
            close(fd);
            continue;
        }
        if (add_listener(fd, NULL, err, errlen) == 0)
            ok++;
    }
    freeaddrinfo(res);
    return ok > 0 ? 0 : -1;
}

static void close_listeners(void)
{
    for (int i = 0; i < nlisteners; i++) {
        listener_unwatch_accepts(listeners[i].ev);
        event_free(listeners[i].ev);
        close(listeners[i].fd);
        /* In a rolling restart the new warmpool has bound its own socket at this path
           by now: leave that one alone. */
        struct stat st;
        if (listeners[i].path[0] && stat(listeners[i].path, &st) == 0 &&
            st.st_dev == listeners[i].dev && st.st_ino == listeners[i].ino)
            unlink(listeners[i].path);
    }
    nlisteners = 0;
    free(bound_socket);
    free(bound_listen);
    bound_socket = bound_listen = NULL;
}

int stats_http_start(char *err, size_t errlen)
{
    const struct wp_config *cfg = wp_rt.cfg;
    const char *sock = cfg->stats_socket ? cfg->stats_socket : "";
    const char *tcp = cfg->stats_listen ? cfg->stats_listen : "";
    if (*sock && listen_unix(sock, cfg->stats_socket_mode, err, errlen) < 0)
        goto fail;
    if (*tcp && listen_tcp(tcp, err, errlen) < 0)
        goto fail;
    bound_socket = strdup(sock);
    bound_listen = strdup(tcp);
    bound_mode = cfg->stats_socket_mode;
    if (*sock)
        log_info("stats endpoint on unix socket %s (mode %04o)", sock, cfg->stats_socket_mode);
    if (*tcp)
        log_info("stats endpoint on http://%s/", tcp);
    return 0;
fail:
    close_listeners();
    return -1;
}

void stats_http_stop(void)
{
    close_listeners();
    while (!list_empty(&conns))
        hc_close(list_entry(conns.next, struct http_conn, node));
}

void stats_http_reload(void)
{
    const struct wp_config *cfg = wp_rt.cfg;
    const char *sock = cfg->stats_socket ? cfg->stats_socket : "";
    const char *tcp = cfg->stats_listen ? cfg->stats_listen : "";
    if (bound_socket && bound_listen && strcmp(sock, bound_socket) == 0 &&
        strcmp(tcp, bound_listen) == 0 && cfg->stats_socket_mode == bound_mode)
        return;
    char err[256];
    close_listeners();
    if (stats_http_start(err, sizeof err) < 0)
        log_error("stats endpoint not available after reload: %s", err);
}
