/*
 * fuzz_http — libFuzzer target for the stats endpoint's HTTP request parser
 * (http_parse_request) and the response it leads to (http_respond).
 *
 * Input: the bytes a client sent. Checked properties, abort() on violation:
 *   - a complete head: head_len within the input and the request limit, ending in
 *     '\n'; head + body within HTTP_MAX_REQUEST; method non-empty and uppercase; path
 *     starting with '/'; path and query NUL-terminated inside their arrays;
 *   - the parser decides from what it has seen: the answer for a prefix that is not
 *     HTTP_INCOMPLETE stays the answer for the whole input (same head_len when OK);
 *   - the response for that answer is one well-formed HTTP/1.1 message whose status
 *     line agrees with http_respond's return and whose Content-Length is the body's.
 *
 * Build (clang 14, see README.md):
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=undefined -Iinclude -I/usr/include/postgresql \
 *       tests/fuzz/fuzz_http.c pooler/stats_http.c pooler/stats_render.c pooler/stats.c \
 *       pooler/fingerprint.c pooler/buf.c pooler/config.c pooler/log.c pooler/params.c \
 *       -levent_core -lpq -linih -o build/fuzz_http
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/runtime.h"
#include "warmpool/stats_http.h"

static struct wp_config cfg;

static void init_world(void)
{
    if (wp_rt.cfg)
        return;
    cfg.max_client_conn = 100;
    cfg.stats_top_statements = 10;
    wp_rt.cfg = &cfg;
    list_init(&wp_rt.pools);
    list_init(&wp_rt.clients);
}

static enum http_parse parse_copy(const uint8_t *data, size_t n, struct http_request *req)
{
    /* An exact-size copy, so ASan sees any read past n. */
    char *copy = malloc(n ? n : 1);
    if (!copy)
        abort();
    memcpy(copy, data, n);
    enum http_parse r = http_parse_request(copy, n, req);
    free(copy);
    return r;
}

static void check_request(const struct http_request *req, const uint8_t *data, size_t size)
{
    if (req->head_len == 0 || req->head_len > size || req->head_len > HTTP_MAX_REQUEST)
        abort();
    if (data[req->head_len - 1] != '\n')
        abort();
    if (req->body_len > HTTP_MAX_REQUEST - req->head_len)
        abort();
    if (memchr(req->method, '\0', sizeof req->method) == NULL || req->method[0] == '\0')
        abort();
    for (const char *m = req->method; *m; m++)
        if (*m < 'A' || *m > 'Z')
            abort();
    if (memchr(req->path, '\0', sizeof req->path) == NULL || req->path[0] != '/')
        abort();
    if (memchr(req->query, '\0', sizeof req->query) == NULL)
        abort();
}

static void check_response(const struct http_request *req, enum http_parse r)
{
    struct wp_buf out = {0};
    int status = http_respond(r == HTTP_OK ? req : NULL, r, &out, 1000);
    if (buf_append(&out, "", 1) < 0)
        abort();
    const char *text = (const char *)buf_head(&out);
    int line_status = 0;
    size_t length = 0;
    if (sscanf(text, "HTTP/1.1 %d ", &line_status) != 1 || line_status != status)
        abort();
    if (r != HTTP_OK && status != (int)r)
        abort();
    const char *cl = strstr(text, "\r\nContent-Length: ");
    const char *end = strstr(text, "\r\n\r\n");
    if (!cl || !end || sscanf(cl, "\r\nContent-Length: %zu", &length) != 1)
        abort();
    size_t body = strlen(end + 4);
    int head_only = r == HTTP_OK && strcmp(req->method, "HEAD") == 0;
    if (body != (head_only ? 0 : length))
        abort();
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_request req, part;
    init_world();
    enum http_parse r = parse_copy(data, size, &req);
    if (r == HTTP_OK)
        check_request(&req, data, size);

    /* Decisions made on a prefix do not change when more bytes arrive. */
    size_t cuts[2] = {size / 2, size ? size - 1 : 0};
    for (int i = 0; i < 2; i++) {
        enum http_parse pr = parse_copy(data, cuts[i], &part);
        if (pr == HTTP_INCOMPLETE)
            continue;
        if (pr != r || (pr == HTTP_OK && part.head_len != req.head_len))
            abort();
    }
    if (r != HTTP_INCOMPLETE)
        check_response(&req, r);
    return 0;
}
