/*
 * stats_http — the stats endpoint: a small HTTP/1.1 server on the event loop, on a
 * unix socket (`stats_socket`) and optionally TCP (`stats_listen`).
 *
 *   GET /metrics     Prometheus text format (warmpool_*, labels database and user)
 *   GET /stats       counters, histograms and percentiles per pool (JSON)
 *   GET /pools       clients and servers per pool by state (JSON)
 *   GET /statements  top statements across pools by total time (JSON, ?limit=N)
 *   GET /health      200 when every pool can reach its database, else 503 (JSON)
 *
 * One request per connection (the answer says Connection: close). Requests are
 * limited to HTTP_MAX_REQUEST bytes; reads have a deadline and writes an idle
 * timeout, so neither a slowloris client nor a slow reader holds anything for long,
 * and every socket is non-blocking, so none of them ever delays the pooler.
 *
 * The request parser and the renderers are plain functions over buffers, for the
 * unit tests and the fuzz target.
 */
#ifndef WARMPOOL_STATS_HTTP_H
#define WARMPOOL_STATS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "warmpool/buf.h"

/* Start the configured endpoints (none configured: nothing to do). -1 with a message. */
int stats_http_start(char *err, size_t errlen);
/* Close the listeners and every open stats connection; removes the socket file. */
void stats_http_stop(void);
/* After a configuration reload: re-open the endpoints if their addresses changed. */
void stats_http_reload(void);

/* ---------------------------------------------------------------- request parsing */

#define HTTP_MAX_REQUEST 8192 /* request line + headers + body */
#define HTTP_MAX_TARGET 1024

enum http_parse {
    HTTP_INCOMPLETE = 0,
    HTTP_OK = 200,
    HTTP_BAD_REQUEST = 400,
    HTTP_BODY_TOO_LARGE = 413,
    HTTP_URI_TOO_LONG = 414,
    HTTP_HEADERS_TOO_LARGE = 431,
    HTTP_VERSION_NOT_SUPPORTED = 505,
};

struct http_request {
    char method[16];
    char path[HTTP_MAX_TARGET];  /* decoded only as far as routing needs: no %-decoding */
    char query[HTTP_MAX_TARGET]; /* after '?', "" when none */
    int minor_version;           /* HTTP/1.<minor> */
    size_t head_len;             /* request line and headers, up to the blank line */
    size_t body_len;             /* Content-Length, 0 when absent */
};

/*
 * Parse the start of a request in buf[0..len). HTTP_OK when the head is complete
 * (the body may still be arriving: the whole request is head_len + body_len bytes);
 * HTTP_INCOMPLETE when more bytes are needed; otherwise the status to answer with.
 * Never reads beyond len; a bad request line is reported as soon as it is visible.
 */
enum http_parse http_parse_request(const char *buf, size_t len, struct http_request *req);

/*
 * The whole response (status line, headers, body) for a parsed request, or for an
 * error status from the parser (req may then be NULL). Returns the status code.
 */
int http_respond(const struct http_request *req, int status, struct wp_buf *out, int64_t now_ms);

/* ---------------------------------------------------------------- renderers (bodies) */

int stats_render_prometheus(struct wp_buf *out, int64_t now_ms);
int stats_render_stats_json(struct wp_buf *out, int64_t now_ms);
int stats_render_pools_json(struct wp_buf *out, int64_t now_ms);
int stats_render_statements_json(struct wp_buf *out, int limit);
/* Returns 200 or 503 and writes the JSON body. */
int stats_render_health_json(struct wp_buf *out, int64_t now_ms);

#endif
