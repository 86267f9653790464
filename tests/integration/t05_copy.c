/*
 * t05_copy — issue 2, acceptance 5.
 *
 * COPY FROM STDIN of 100 000 rows, then COPY TO STDOUT, through WP_DB_ONE (transaction
 * mode, one backend) while another client keeps running queries on the same pool: a
 * pooler that let go of the backend in the middle of a COPY would mix that client's
 * queries into the COPY stream. The rows mix NULLs, escapes (\t, \\, \n) and UTF-8.
 * The data is sent in chunks of random size that ignore row boundaries. Asserts:
 *   - COPY FROM reports 100000 rows; count/sums/lengths computed by PostgreSQL (checked
 *     directly) equal the ones computed locally;
 *   - the COPY TO stream is byte-for-byte the stream sent (and its FNV-1a checksum);
 *   - a COPY that fails on bad data (22P02) and one aborted by the client (PQputCopyEnd
 *     with an error, 57014) leave the connection usable and the table unchanged;
 *   - the concurrent client's queries all returned their own results.
 */
#include "itest.h"

#include <pthread.h>

#define NROWS 100000

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            FAIL("out of memory");
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

static uint32_t rng = 12345;

static uint32_t next_rand(void)
{
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}

struct expect {
    long long sum_id, sum_n, nulls, txt_len;
};

/* Rows in COPY text format, already in canonical form so that COPY TO reproduces them. */
static void make_rows(struct buf *b, struct expect *e)
{
    char line[256];
    memset(e, 0, sizeof *e);
    for (int i = 1; i <= NROWS; i++) {
        long long n = (long long)i * i % 1000003 - 500000;
        int len;
        e->sum_id += i;
        e->sum_n += n;
        if (i % 7 == 0) {
            len = snprintf(line, sizeof line, "%d\t\\N\t%lld\n", i, n);
            e->nulls++;
        } else if (i % 11 == 0) {
            /* tab, backslash, newline escapes: 3 characters once decoded */
            len = snprintf(line, sizeof line, "%d\trow %d\\t\\\\\\nend\t%lld\n", i, i, n);
            e->txt_len += snprintf(NULL, 0, "row %d", i) + 3 + 3;
        } else if (i % 13 == 0) {
            /* "é" and "€" are 2 and 3 bytes of UTF-8 but one character each */
            len = snprintf(line, sizeof line, "%d\tcaf\xc3\xa9 %d \xe2\x82\xac\t%lld\n", i, i, n);
            e->txt_len += snprintf(NULL, 0, "caf. %d .", i);
        } else {
            len = snprintf(line, sizeof line, "%d\tplain row number %d\t%lld\n", i, i, n);
            e->txt_len += snprintf(NULL, 0, "plain row number %d", i);
        }
        buf_add(b, line, (size_t)len);
    }
}

/* Send `data` as CopyData messages of random sizes (1 byte .. 16 KiB). */
static void copy_in(PGconn *c, const char *data, size_t len)
{
    for (size_t off = 0; off < len;) {
        size_t n = 1 + next_rand() % 16384;
        if (next_rand() % 8 == 0)
            n = 1 + next_rand() % 8; /* now and then a tiny message */
        if (n > len - off)
            n = len - off;
        if (PQputCopyData(c, data + off, (int)n) != 1)
            FAIL_CONN(c, "PQputCopyData at offset %zu", off);
        off += n;
    }
}

static void copy_in_ok(PGconn *c, const char *data, size_t len)
{
    PGresult *r = PQexec(c, "COPY t05 (id, txt, n) FROM STDIN");
    CHECK(PQresultStatus(r) == PGRES_COPY_IN, "COPY FROM: got %s, want COPY_IN (%s)",
          PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
    PQclear(r);
    copy_in(c, data, len);
    if (PQputCopyEnd(c, NULL) != 1)
        FAIL_CONN(c, "PQputCopyEnd");
    r = PQgetResult(c);
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "COPY FROM ended with %s: %s",
          PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
    CHECK_STR(PQcmdTuples(r), "100000", "rows reported by COPY FROM");
    PQclear(r);
    CHECK(PQgetResult(c) == NULL, "extra result after COPY FROM");
}

static void copy_out(PGconn *c, struct buf *out)
{
    PGresult *r = PQexec(c, "COPY (SELECT id, txt, n FROM t05 ORDER BY id) TO STDOUT");
    CHECK(PQresultStatus(r) == PGRES_COPY_OUT, "COPY TO: got %s (%s)",
          PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
    PQclear(r);
    char *row;
    int n;
    while ((n = PQgetCopyData(c, &row, 0)) > 0) {
        buf_add(out, row, (size_t)n);
        PQfreemem(row);
    }
    CHECK(n == -1, "PQgetCopyData returned %d: %s", n, PQerrorMessage(c));
    r = PQgetResult(c);
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "COPY TO ended with %s: %s",
          PQresStatus(PQresultStatus(r)), PQresultErrorMessage(r));
    CHECK_STR(PQcmdTuples(r), "100000", "rows reported by COPY TO");
    PQclear(r);
    CHECK(PQgetResult(c) == NULL, "extra result after COPY TO");
}

/* A COPY that fails: bad data (server error) or client abort (CopyFail). */
static void copy_in_fails(PGconn *c, const char *data, size_t len, const char *client_error,
                          const char *want_state)
{
    PGresult *r = PQexec(c, "COPY t05 (id, txt, n) FROM STDIN");
    CHECK(PQresultStatus(r) == PGRES_COPY_IN, "COPY FROM: got %s", PQresStatus(PQresultStatus(r)));
    PQclear(r);
    copy_in(c, data, len);
    if (PQputCopyEnd(c, client_error) != 1)
        FAIL_CONN(c, "PQputCopyEnd");
    r = PQgetResult(c);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    CHECK(PQresultStatus(r) == PGRES_FATAL_ERROR && state && strcmp(state, want_state) == 0,
          "failing COPY ended with %s, SQLSTATE %s, want error %s", PQresStatus(PQresultStatus(r)),
          state ? state : "-", want_state);
    PQclear(r);
    CHECK(PQgetResult(c) == NULL, "extra result after failed COPY");
    CHECK(PQtransactionStatus(c) == PQTRANS_IDLE, "after a failed COPY the client is not idle");
}

static volatile int stop_other;

struct other {
    int queries;
};

/* Another client of the same one-backend pool: its answers must stay its own. */
static void *other_main(void *arg)
{
    struct other *o = arg;
    PGconn *c = CONNECT(itest_env("WP_DB_ONE", "one"));
    do {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT %d + 1000000", o->queries);
        long long v = QUERY_INT(c, sql);
        CHECK(v == o->queries + 1000000LL, "concurrent client got %lld for %s", v, sql);
        o->queries++;
        itest_sleep_ms(5);
    } while (!__atomic_load_n(&stop_other, __ATOMIC_ACQUIRE));
    PQfinish(c);
    return NULL;
}

int main(void)
{
    struct buf in = {0}, out = {0};
    struct expect e;
    char sql[256];

    PGconn *direct = CONNECT_DIRECT();
    EXEC(direct, "DROP TABLE IF EXISTS t05");
    EXEC(direct, "CREATE TABLE t05 (id int PRIMARY KEY, txt text, n bigint)");
    snprintf(sql, sizeof sql, "ALTER TABLE t05 OWNER TO %s", WP_USER());
    EXEC(direct, sql);

    make_rows(&in, &e);
    uint64_t h_in = fnv1a(in.p, in.len);

    PGconn *c = CONNECT(itest_env("WP_DB_ONE", "one"));
    struct other o = {0};
    pthread_t other;
    pthread_create(&other, NULL, other_main, &o);

    copy_in_ok(c, in.p, in.len);
    itest_ok("COPY FROM STDIN: %d rows, %zu bytes in random-size CopyData messages", NROWS, in.len);

    PGresult *r = QUERY(direct, "SELECT count(*), sum(id), sum(n), count(*) - count(txt),"
                                " sum(char_length(txt)) FROM t05");
    long long got[5], want[5] = {NROWS, e.sum_id, e.sum_n, e.nulls, e.txt_len};
    const char *names[5] = {"count", "sum(id)", "sum(n)", "NULLs", "sum(char_length(txt))"};
    for (int i = 0; i < 5; i++) {
        got[i] = atoll(PQgetvalue(r, 0, i));
        CHECK(got[i] == want[i], "directly after COPY FROM: %s = %lld, want %lld", names[i], got[i],
              want[i]);
    }
    PQclear(r);
    itest_ok("PostgreSQL has the rows: count %lld, sum(id) %lld, sum(n) %lld, NULLs %lld, "
             "chars %lld",
             got[0], got[1], got[2], got[3], got[4]);

    copy_out(c, &out);
    uint64_t h_out = fnv1a(out.p, out.len);
    CHECK(out.len == in.len, "COPY TO returned %zu bytes, COPY FROM sent %zu", out.len, in.len);
    if (memcmp(in.p, out.p, in.len) != 0) {
        size_t i = 0;
        while (in.p[i] == out.p[i])
            i++;
        FAIL("COPY TO differs from what was sent at byte %zu: sent \"%.40s\", got \"%.40s\"", i,
             in.p + i, out.p + i);
    }
    CHECK(h_in == h_out, "checksums differ");
    itest_ok("COPY TO STDOUT returned the same %zu bytes (fnv1a %016llx)", out.len,
             (unsigned long long)h_out);

    /* Failing COPYs: good rows, then a bad one / a client abort. */
    static const char bad[] = "900001\tok\t1\n900002\tok\t2\nnot-a-number\tbad\t3\n";
    copy_in_fails(c, bad, sizeof bad - 1, NULL, "22P02");
    copy_in_fails(c, in.p, 4096, "client gave up", "57014");
    CHECK(QUERY_INT(c, "SELECT count(*) FROM t05") == NROWS, "failed COPYs changed the table");
    itest_ok("COPY with bad data (22P02) and client-aborted COPY (57014) left the connection "
             "usable and the table unchanged");

    __atomic_store_n(&stop_other, 1, __ATOMIC_RELEASE);
    pthread_join(other, NULL);
    CHECK(o.queries > 0, "the concurrent client ran no query");
    itest_ok("a concurrent client on the same pool ran %d queries, each with its own result",
             o.queries);

    PQfinish(c);
    PQfinish(direct);
    free(in.p);
    free(out.p);
    return 0;
}
