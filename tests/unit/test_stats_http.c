/*
 * test_stats_http — unit tests for the pure parts of pooler/stats_http.c: the HTTP
 * request parser, routing and status codes, and the renderers run over a synthetic
 * pool. The Prometheus output is checked by a strict text-format parser written
 * here (every line a comment or `name{labels} value`, HELP/TYPE before samples,
 * histogram buckets increasing up to +Inf with _count equal to the +Inf bucket); the
 * JSON bodies by a small validating JSON parser.
 */
#include <ctype.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/client.h"
#include "warmpool/pool.h"
#include "warmpool/runtime.h"
#include "warmpool/stats.h"
#include "warmpool/stats_http.h"

static struct wp_config cfg;
static struct wp_pool pools[2];
static struct wp_client_stats cs;

static void init_pool(struct wp_pool *p, char *db, char *user)
{
    memset(p, 0, sizeof *p);
    p->dbname = db;
    p->user = user;
    p->settings.max_pool_size = 20;
    p->settings.pool_mode = WP_MODE_TRANSACTION;
    list_init(&p->idle);
    list_init(&p->active);
    list_init(&p->busy);
    list_init(&p->waiting);
    list_init(&p->welcoming);
    list_push_tail(&wp_rt.pools, &p->node);
}

static int setup(void **state)
{
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.stats_top_statements = 100;
    cfg.nplus1_threshold = 10;
    cfg.nplus1_window_ms = 1000;
    cfg.max_client_conn = 100;
    memset(&wp_rt, 0, sizeof wp_rt);
    wp_rt.cfg = &cfg;
    list_init(&wp_rt.pools);
    list_init(&wp_rt.clients);
    init_pool(&pools[0], "appdb", "app");
    init_pool(&pools[1], "we\"ird\\db", "u\nx");
    memset(&cs, 0, sizeof cs);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stats_client_closed(&pools[0], NULL, &cs); /* frees the client's N+1 state */
    for (int i = 0; i < 2; i++)
        stats_pool_free(&pools[i]);
    return 0;
}

static void run(struct wp_pool *p, const char *sql, int64_t start, int64_t us, char tx)
{
    stats_query_start(p, &cs, sql, strlen(sql), 0, start);
    stats_query_end(p, NULL, &cs, tx, start + us);
}

/* Three queries, one failing, waits, a few events: numbers the tests know. */
static void fill_stats(void)
{
    run(&pools[0], "SELECT * FROM users WHERE id = 1", 1000, 1500, 'I');
    run(&pools[0], "SELECT * FROM users WHERE id = 2", 5000, 500, 'I');
    stats_query_start(&pools[0], &cs, "INSERT INTO t VALUES (1)", 24, 0, 9000);
    stats_query_error(&pools[0], &cs, "23505");
    stats_query_end(&pools[0], NULL, &cs, 'I', 9100);
    stats_wait_done(&pools[0], NULL, 0);
    stats_wait_done(&pools[0], NULL, 300000);
    stats_server_opened(&pools[0]);
    stats_server_closed(&pools[0], "server_lifetime reached");
    pools[0].bytes_in = 1234;
    pools[0].bytes_out = 56789;
    run(&pools[1], "SELECT 'x\"y'", 100, 10, 'I');
}

static char *to_str(struct wp_buf *b)
{
    buf_append(b, "", 1);
    return (char *)buf_head(b);
}

/* ---------------------------------------------------------------- request parser */

static enum http_parse parse(const char *text, struct http_request *req)
{
    size_t n = strlen(text);
    char *copy = malloc(n ? n : 1); /* exact size: ASan/valgrind catch over-reads */
    memcpy(copy, text, n);
    enum http_parse r = http_parse_request(copy, n, req);
    free(copy);
    return r;
}

static void test_parse_good(void **state)
{
    (void)state;
    struct http_request req;
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", &req),
                     HTTP_OK);
    assert_string_equal(req.method, "GET");
    assert_string_equal(req.path, "/metrics");
    assert_string_equal(req.query, "");
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.head_len, 47);
    assert_int_equal(req.body_len, 0);

    assert_int_equal(parse("HEAD /statements?limit=5&x=y HTTP/1.0\n\n", &req), HTTP_OK);
    assert_string_equal(req.method, "HEAD");
    assert_string_equal(req.path, "/statements");
    assert_string_equal(req.query, "limit=5&x=y");
    assert_int_equal(req.minor_version, 0);

    assert_int_equal(parse("GET http://localhost:9127/health HTTP/1.1\r\n\r\n", &req), HTTP_OK);
    assert_string_equal(req.path, "/health");
    assert_int_equal(parse("GET http://localhost HTTP/1.1\r\n\r\n", &req), HTTP_OK);
    assert_string_equal(req.path, "/");

    const char *with_body = "GET / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc";
    assert_int_equal(parse(with_body, &req), HTTP_OK);
    assert_int_equal(req.body_len, 3);
    assert_int_equal(req.head_len + req.body_len, strlen(with_body));
}

static void test_parse_incomplete(void **state)
{
    (void)state;
    struct http_request req;
    const char *full = "GET /pools HTTP/1.1\r\nHost: a\r\n\r\n";
    char part[64];
    /* Every proper prefix of a good request asks for more, never an error. */
    for (size_t n = 0; n < strlen(full); n++) {
        memcpy(part, full, n);
        part[n] = '\0';
        assert_int_equal(parse(part, &req), HTTP_INCOMPLETE);
    }
    assert_int_equal(parse(full, &req), HTTP_OK);
}

static void test_parse_bad(void **state)
{
    (void)state;
    struct http_request req;
    /* No request line, or a broken one: 400 as soon as it shows. */
    assert_int_equal(parse("\r\n\r\n", &req), HTTP_BAD_REQUEST);
    assert_int_equal(parse("\x16\x03\x01\x02", &req), HTTP_BAD_REQUEST); /* TLS hello */
    assert_int_equal(parse("get / HTTP/1.1\r\n\r\n", &req), HTTP_BAD_REQUEST);
    assert_int_equal(parse("GET\r\n", &req), HTTP_BAD_REQUEST);
    assert_int_equal(parse("GET /\r\n\r\n", &req), HTTP_BAD_REQUEST); /* HTTP/0.9 */
    assert_int_equal(parse("GET  / HTTP/1.1\r\n\r\n", &req), HTTP_BAD_REQUEST);
    assert_int_equal(parse("GET metrics HTTP/1.1\r\n\r\n", &req), HTTP_BAD_REQUEST);
    assert_int_equal(parse("GET / FTP/1.1\r\n\r\n", &req), HTTP_BAD_REQUEST);
    assert_int_equal(parse("GET / HTTP/1.1 \r\n\r\n", &req), HTTP_BAD_REQUEST);
    assert_int_equal(parse("GET / HTTP/2.0\r\n\r\n", &req), HTTP_VERSION_NOT_SUPPORTED);
    assert_int_equal(parse("VERYLONGMETHODNAME / HTTP/1.1\r\n\r\n", &req), HTTP_BAD_REQUEST);
    /* Headers. */
    assert_int_equal(parse("GET / HTTP/1.1\r\nNoColon\r\n\r\n", &req), HTTP_BAD_REQUEST);
    assert_int_equal(parse("GET / HTTP/1.1\r\n: v\r\n\r\n", &req), HTTP_BAD_REQUEST);
    assert_int_equal(parse("GET / HTTP/1.1\r\nBad Name: v\r\n\r\n", &req), HTTP_BAD_REQUEST);
    assert_int_equal(parse("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", &req), HTTP_BAD_REQUEST);
    assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", &req), HTTP_BAD_REQUEST);
    assert_int_equal(
        parse("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &req),
        HTTP_BAD_REQUEST);
    assert_int_equal(parse("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &req),
                     HTTP_BAD_REQUEST);
    /* Sizes. */
    assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: 8193\r\n\r\n", &req),
                     HTTP_BODY_TOO_LARGE);
    assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: 99999999999999\r\n\r\n", &req),
                     HTTP_BODY_TOO_LARGE);
}

static void test_parse_limits(void **state)
{
    (void)state;
    struct http_request req;
    size_t n = HTTP_MAX_REQUEST + 100;
    char *big = malloc(n + 1);
    /* A header section that never ends. */
    strcpy(big, "GET / HTTP/1.1\r\nX-Long: ");
    memset(big + strlen(big), 'a', n - strlen(big));
    big[n] = '\0';
    assert_int_equal(http_parse_request(big, HTTP_MAX_REQUEST - 1, &req), HTTP_INCOMPLETE);
    assert_int_equal(http_parse_request(big, HTTP_MAX_REQUEST, &req), HTTP_HEADERS_TOO_LARGE);
    assert_int_equal(http_parse_request(big, n, &req), HTTP_HEADERS_TOO_LARGE);
    /* Many small headers adding up. */
    strcpy(big, "GET / HTTP/1.1\r\n");
    while (strlen(big) < n - 20)
        strcat(big, "X-A: b\r\n");
    strcat(big, "\r\n");
    assert_int_equal(http_parse_request(big, strlen(big), &req), HTTP_HEADERS_TOO_LARGE);
    /* A target that never ends. */
    strcpy(big, "GET /");
    memset(big + 5, 'a', n - 5);
    big[n] = '\0';
    assert_int_equal(http_parse_request(big, 200, &req), HTTP_INCOMPLETE);
    assert_int_equal(http_parse_request(big, n, &req), HTTP_URI_TOO_LONG);
    free(big);
}

/* ---------------------------------------------------------------- responses */

static int respond(const char *request, char **body_out, struct wp_buf *b)
{
    struct http_request req;
    enum http_parse r = parse(request, &req);
    memset(b, 0, sizeof *b);
    int status = http_respond(r == HTTP_OK ? &req : NULL, r, b, 1000000);
    char *text = to_str(b);
    int line_status = 0;
    assert_int_equal(sscanf(text, "HTTP/1.1 %d ", &line_status), 1);
    assert_int_equal(line_status, status);
    assert_non_null(strstr(text, "\r\nConnection: close\r\n"));
    char *body = strstr(text, "\r\n\r\n");
    assert_non_null(body);
    body += 4;
    size_t length = 0;
    const char *cl = strstr(text, "Content-Length: ");
    assert_non_null(cl);
    sscanf(cl, "Content-Length: %zu", &length);
    if (strncmp(request, "HEAD", 4) == 0)
        assert_int_equal(strlen(body), 0);
    else
        assert_int_equal(strlen(body), length);
    if (body_out)
        *body_out = body;
    return status;
}

static void test_routes(void **state)
{
    (void)state;
    struct wp_buf b;
    char *body;
    fill_stats();
    assert_int_equal(respond("GET /nope HTTP/1.1\r\n\r\n", &body, &b), 404);
    assert_string_equal(body, "404 Not Found\n");
    buf_free(&b);
    assert_int_equal(respond("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", NULL, &b), 405);
    assert_non_null(strstr((char *)b.data, "Allow: GET, HEAD\r\n"));
    buf_free(&b);
    assert_int_equal(respond("garbage\r\n\r\n", NULL, &b), 400);
    buf_free(&b);
    assert_int_equal(respond("GET / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", NULL, &b), 413);
    buf_free(&b);
    assert_int_equal(respond("GET / HTTP/1.1\r\n\r\n", &body, &b), 200);
    assert_non_null(strstr(body, "/metrics"));
    buf_free(&b);
    assert_int_equal(respond("GET /metrics HTTP/1.1\r\n\r\n", &body, &b), 200);
    assert_non_null(strstr((char *)b.data, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(body, "warmpool_queries_total{database=\"appdb\",user=\"app\"} 3\n"));
    buf_free(&b);
    assert_int_equal(respond("HEAD /metrics HTTP/1.1\r\n\r\n", NULL, &b), 200);
    buf_free(&b);
    assert_int_equal(respond("GET /health HTTP/1.1\r\n\r\n", &body, &b), 200);
    assert_non_null(strstr(body, "\"status\":\"ok\""));
    buf_free(&b);
    stats_connect_failed(&pools[1]);
    assert_int_equal(respond("GET /health HTTP/1.1\r\n\r\n", &body, &b), 503);
    assert_non_null(strstr(body, "\"status\":\"unhealthy\""));
    assert_non_null(strstr(body, "\"user\":\"u\\nx\""));
    buf_free(&b);
}

/* ---------------------------------------------------------------- strict Prometheus parser */

struct prom_family {
    char name[128];
    char type[16];
    int samples;
};

struct hist_series {
    char key[512]; /* family + labels without le */
    double last_le;
    double last_count;
    double inf_count;
    int has_inf, has_count, has_sum;
    double count;
};

struct prom_check {
    struct prom_family fam[128];
    int nfam;
    struct hist_series hs[64];
    int nhs;
};

static int valid_metric_name(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
            return 0;
    return 1;
}

static struct hist_series *series(struct prom_check *pc, const char *key)
{
    for (int i = 0; i < pc->nhs; i++)
        if (strcmp(pc->hs[i].key, key) == 0)
            return &pc->hs[i];
    assert_true(pc->nhs < 64);
    struct hist_series *h = &pc->hs[pc->nhs++];
    memset(h, 0, sizeof *h);
    snprintf(h->key, sizeof h->key, "%s", key);
    h->last_le = -INFINITY;
    h->last_count = -1;
    return h;
}

/* Labels `{a="x",b="y"}` at p: returns the position after '}', fills key (labels
   without le) and le (or "" when absent). Fails the test on any syntax error. */
static const char *parse_labels(const char *p, char *key, size_t keylen, char *le, size_t lelen)
{
    size_t used = strlen(key);
    le[0] = '\0';
    assert_true(*p == '{');
    p++;
    while (*p != '}') {
        const char *name = p;
        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        assert_true(p > name && valid_metric_name(name, (size_t)(p - name)));
        size_t name_len = (size_t)(p - name);
        assert_true(*p == '=');
        p++;
        assert_true(*p == '"');
        p++;
        char value[256];
        size_t vn = 0;
        while (*p != '"') {
            assert_true(*p != '\0' && *p != '\n');
            if (*p == '\\') {
                p++;
                assert_true(*p == '\\' || *p == '"' || *p == 'n');
            }
            assert_true(vn < sizeof value - 1);
            value[vn++] = *p++;
        }
        value[vn] = '\0';
        p++;
        if (name_len == 2 && strncmp(name, "le", 2) == 0)
            snprintf(le, lelen, "%.63s", value);
        else
            used +=
                (size_t)snprintf(key + used, keylen - used, ",%.*s=%s", (int)name_len, name, value);
        if (*p == ',')
            p++;
        else
            assert_true(*p == '}');
    }
    return p + 1;
}

static double parse_value(const char *s)
{
    if (strcmp(s, "+Inf") == 0)
        return INFINITY;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0')
        fail_msg("bad sample value \"%s\"", s);
    return v;
}

static void prom_sample(struct prom_check *pc, const char *line)
{
    const char *p = line;
    while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
        p++;
    char name[128];
    assert_true(valid_metric_name(line, (size_t)(p - line)));
    snprintf(name, sizeof name, "%.*s", (int)(p - line), line);
    assert_true(pc->nfam > 0);
    struct prom_family *f = &pc->fam[pc->nfam - 1];
    const char *suffix = "";
    size_t fl = strlen(f->name);
    if (strcmp(name, f->name) != 0) {
        /* Only a histogram has samples under other names, and only these three. */
        assert_string_equal(f->type, "histogram");
        assert_true(strncmp(name, f->name, fl) == 0);
        suffix = name + fl;
        assert_true(strcmp(suffix, "_bucket") == 0 || strcmp(suffix, "_sum") == 0 ||
                    strcmp(suffix, "_count") == 0);
    } else {
        assert_true(strcmp(f->type, "histogram") != 0);
    }
    char key[512], le[64];
    snprintf(key, sizeof key, "%s", f->name);
    if (*p == '{')
        p = parse_labels(p, key, sizeof key, le, sizeof le);
    else
        le[0] = '\0';
    assert_true(*p == ' ');
    double v = parse_value(p + 1);
    f->samples++;
    if (strcmp(f->type, "counter") == 0)
        assert_true(v >= 0);
    if (strcmp(f->type, "histogram") != 0)
        return;
    struct hist_series *h = series(pc, key);
    if (strcmp(suffix, "_bucket") == 0) {
        assert_true(le[0] != '\0');
        assert_false(h->has_inf); /* nothing after +Inf */
        double bound = parse_value(le);
        assert_true(bound > h->last_le); /* increasing le */
        assert_true(v >= h->last_count); /* cumulative */
        h->last_le = bound;
        h->last_count = v;
        if (isinf(bound)) {
            h->has_inf = 1;
            h->inf_count = v;
        }
    } else if (strcmp(suffix, "_count") == 0) {
        h->has_count = 1;
        h->count = v;
    } else {
        h->has_sum = 1;
    }
}

/* Returns the number of sample lines; fails the test on any violation. */
static int check_prometheus(const char *text, struct prom_check *pc)
{
    int samples = 0;
    memset(pc, 0, sizeof *pc);
    assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
    const char *line = text;
    while (*line) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        char buf[1024];
        assert_true((size_t)(nl - line) < sizeof buf);
        snprintf(buf, sizeof buf, "%.*s", (int)(nl - line), line);
        assert_true(buf[0] != '\0'); /* no blank lines */
        if (strncmp(buf, "# HELP ", 7) == 0) {
            /* HELP starts a new family; its TYPE must follow at once. */
            char name[128];
            assert_int_equal(sscanf(buf + 7, "%127s", name), 1);
            assert_true(valid_metric_name(name, strlen(name)));
            for (int i = 0; i < pc->nfam; i++)
                assert_string_not_equal(pc->fam[i].name, name); /* families are not split */
            assert_true(pc->nfam < 128);
            snprintf(pc->fam[pc->nfam].name, sizeof pc->fam[0].name, "%s", name);
            pc->nfam++;
        } else if (strncmp(buf, "# TYPE ", 7) == 0) {
            char name[128], type[32];
            assert_int_equal(sscanf(buf + 7, "%127s %31s", name, type), 2);
            struct prom_family *f = &pc->fam[pc->nfam - 1];
            assert_string_equal(name, f->name);
            assert_int_equal(f->samples, 0);
            assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                        strcmp(type, "histogram") == 0);
            snprintf(f->type, sizeof f->type, "%.15s", type);
            if (strcmp(type, "counter") == 0)
                assert_true(strlen(name) > 6 && strcmp(name + strlen(name) - 6, "_total") == 0);
        } else {
            assert_true(buf[0] != '#');
            assert_true(pc->nfam > 0 && pc->fam[pc->nfam - 1].type[0] != '\0');
            prom_sample(pc, buf);
            samples++;
        }
        line = nl + 1;
    }
    for (int i = 0; i < pc->nhs; i++) {
        const struct hist_series *h = &pc->hs[i];
        assert_true(h->has_inf && h->has_count && h->has_sum);
        assert_true(h->count == h->inf_count);
    }
    return samples;
}

static void test_prometheus_format(void **state)
{
    (void)state;
    fill_stats();
    struct wp_buf b = {0};
    assert_int_equal(stats_render_prometheus(&b, 1000000), 0);
    const char *text = to_str(&b);
    struct prom_check pc;
    int samples = check_prometheus(text, &pc);
    assert_true(samples > 100);
    assert_int_equal(pc.nhs, 6); /* 3 histograms x 2 pools */

    /* Values from fill_stats, with the label escaping of the odd pool. */
    static const char *const want[] = {
        "warmpool_info{version=\"",
        "warmpool_pools 2\n",
        "warmpool_queries_total{database=\"appdb\",user=\"app\"} 3\n",
        "warmpool_transactions_total{database=\"appdb\",user=\"app\"} 3\n",
        "warmpool_query_errors_total{database=\"appdb\",user=\"app\"} 1\n",
        "warmpool_errors_total{database=\"appdb\",user=\"app\",class=\"23\"} 1\n",
        /* The watched classes are there at 0 before their first error. */
        "warmpool_errors_total{database=\"appdb\",user=\"app\",class=\"42\"} 0\n",
        "warmpool_errors_total{database=\"we\\\"ird\\\\db\",user=\"u\\nx\",class=\"08\"} 0\n",
        "warmpool_received_bytes_total{database=\"appdb\",user=\"app\"} 1234\n",
        "warmpool_sent_bytes_total{database=\"appdb\",user=\"app\"} 56789\n",
        "warmpool_server_connections_opened_total{database=\"appdb\",user=\"app\"} 1\n",
        "warmpool_server_connections_closed_total{database=\"appdb\",user=\"app\",reason="
        "\"lifetime\"} 1\n",
        "warmpool_pool_max_servers{database=\"appdb\",user=\"app\"} 20\n",
        "warmpool_pool_max_wait_seconds{database=\"appdb\",user=\"app\"} 0.000000\n",
        "warmpool_query_duration_seconds_bucket{database=\"appdb\",user=\"app\",le=\"0.000001\"} "
        "0\n",
        "warmpool_query_duration_seconds_bucket{database=\"appdb\",user=\"app\",le=\"0.000128\"} "
        "1\n",
        "warmpool_query_duration_seconds_bucket{database=\"appdb\",user=\"app\",le=\"0.000512\"} "
        "2\n",
        "warmpool_query_duration_seconds_bucket{database=\"appdb\",user=\"app\",le=\"0.002048\"} "
        "3\n",
        "warmpool_query_duration_seconds_bucket{database=\"appdb\",user=\"app\",le=\"134.217728\"} "
        "3\n",
        "warmpool_query_duration_seconds_bucket{database=\"appdb\",user=\"app\",le=\"+Inf\"} 3\n",
        "warmpool_query_duration_seconds_sum{database=\"appdb\",user=\"app\"} 0.002100\n",
        "warmpool_query_duration_seconds_count{database=\"appdb\",user=\"app\"} 3\n",
        "warmpool_wait_duration_seconds_sum{database=\"appdb\",user=\"app\"} 0.300000\n",
        "warmpool_wait_duration_seconds_count{database=\"appdb\",user=\"app\"} 2\n",
        "warmpool_queries_total{database=\"we\\\"ird\\\\db\",user=\"u\\nx\"} 1\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(text, want[i]))
            fail_msg("missing line: %s", want[i]);
    /* class 23 is watched and has a count: one sample, not a 0 and a 1. */
    const char *c23 = "warmpool_errors_total{database=\"appdb\",user=\"app\",class=\"23\"}";
    assert_null(strstr(strstr(text, c23) + 1, c23));
    buf_free(&b);

    /* No pools: still valid, the globals (the workers' three among them) and the six
       process_* metrics. */
    list_init(&wp_rt.pools);
    memset(&b, 0, sizeof b);
    assert_int_equal(stats_render_prometheus(&b, 1000000), 0);
    text = to_str(&b);
    assert_int_equal(check_prometheus(text, &pc), 15);
    assert_non_null(strstr(text, "\nwarmpool_workers 1\n"));
    assert_non_null(strstr(text, "warmpool_pools 0\n"));
    static const char *const process[] = {"\nprocess_cpu_seconds_total ",
                                          "\nprocess_resident_memory_bytes ",
                                          "\nprocess_virtual_memory_bytes ",
                                          "\nprocess_open_fds ",
                                          "\nprocess_max_fds ",
                                          "\nprocess_start_time_seconds ",
                                          "# TYPE process_cpu_seconds_total counter\n",
                                          "# TYPE process_open_fds gauge\n"};
    for (size_t i = 0; i < sizeof process / sizeof process[0]; i++)
        if (!strstr(text, process[i]))
            fail_msg("missing: %s", process[i]);
    buf_free(&b);
}

/* ---------------------------------------------------------------- JSON validation */

static const char *json_value(const char *p);

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    return p;
}

static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    while (*p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)p[i]))
                        return NULL;
                p += 5;
                continue;
            }
            if (!strchr("\"\\/bfnrt", *p))
                return NULL;
        }
        p++;
    }
    return p + 1;
}

static const char *json_container(const char *p, char close, int object)
{
    p = json_ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (object) {
            p = json_string(json_ws(p));
            if (!p)
                return NULL;
            p = json_ws(p);
            if (*p++ != ':')
                return NULL;
        }
        p = json_value(p);
        if (!p)
            return NULL;
        p = json_ws(p);
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

static const char *json_value(const char *p)
{
    p = json_ws(p);
    if (*p == '{')
        return json_container(p, '}', 1);
    if (*p == '[')
        return json_container(p, ']', 0);
    if (*p == '"')
        return json_string(p);
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
        return p + 4;
    if (strncmp(p, "false", 5) == 0)
        return p + 5;
    char *end;
    strtod(p, &end);
    return end == p ? NULL : end;
}

static void assert_json(const char *text)
{
    const char *end = json_value(text);
    if (!end || *json_ws(end) != '\0')
        fail_msg("invalid JSON near: %.80s", end ? end : text);
}

static void test_json_bodies(void **state)
{
    (void)state;
    fill_stats();
    /* Statement text that is not valid UTF-8 must still give valid JSON. */
    run(&pools[0], "SELECT \"\xff\xfe\" FROM t", 200, 7000, 'I');
    struct wp_buf b = {0};
    assert_int_equal(stats_render_stats_json(&b, 1000000), 0);
    const char *text = to_str(&b);
    assert_json(text);
    assert_non_null(strstr(text, "\"database\":\"appdb\",\"user\":\"app\",\"queries\":4,"
                                 "\"transactions\":4,\"query_errors\":1"));
    assert_non_null(strstr(text, "\"errors_by_class\":{\"23\":1}"));
    assert_non_null(strstr(text, "\"database\":\"we\\\"ird\\\\db\",\"user\":\"u\\nx\""));
    buf_free(&b);

    memset(&b, 0, sizeof b);
    assert_int_equal(stats_render_pools_json(&b, 1000000), 0);
    text = to_str(&b);
    assert_json(text);
    assert_non_null(
        strstr(text, "\"pool_mode\":\"transaction\",\"paused\":false,\"healthy\":true"));
    buf_free(&b);

    memset(&b, 0, sizeof b);
    assert_int_equal(stats_render_statements_json(&b, 100), 0);
    text = to_str(&b);
    assert_json(text);
    /* Ranked by total time: 7 ms, then 2 ms (two calls), then 0.1 ms. */
    const char *slowest = strstr(text, "\"query\":\"SELECT \\\"\\ufffd\\ufffd\\\" FROM t\"");
    const char *users =
        strstr(text, "\"calls\":2,\"total_us\":2000,\"mean_us\":1000,\"max_us\":1500");
    const char *insert = strstr(text, "\"query\":\"INSERT INTO t VALUES (?)\"");
    assert_non_null(slowest);
    assert_non_null(users);
    assert_non_null(insert);
    assert_true(slowest < users && users < insert);
    assert_non_null(strstr(text, "\"query\":\"SELECT * FROM users WHERE id = ?\""));
    buf_free(&b);

    memset(&b, 0, sizeof b);
    assert_int_equal(stats_render_statements_json(&b, 1), 0);
    text = to_str(&b);
    assert_json(text);
    assert_null(strstr(text, "INSERT"));
    buf_free(&b);

    memset(&b, 0, sizeof b);
    assert_int_equal(stats_render_health_json(&b, 0), 200);
    assert_json(to_str(&b));
    buf_free(&b);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_parse_good), T(test_parse_incomplete),  T(test_parse_bad),   T(test_parse_limits),
        T(test_routes),     T(test_prometheus_format), T(test_json_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
