/*
 * itest.h — helpers shared by the integration tests (header-only, every function is
 * `static inline` so each test includes only what it uses without unused warnings).
 *
 * A test is a small program that connects to a *target* (warmpool, or PostgreSQL itself
 * when validating a test) and to PostgreSQL *directly* (to check what really happened),
 * asserts results, prints one "ok: ..." line per passed check and exits 0. The first
 * failed check prints "FILE:LINE: message" (with the libpq error when there is one) and
 * exits 1. tests/integration/run.sh sets the environment (see README.md there):
 *
 *   WP_HOST WP_PORT WP_USER WP_PASSWORD   target and client credentials
 *   WP_DB WP_DB_LOAD WP_DB_SESSION WP_DB_ONE   target database names
 *   WP_DIRECT=1                            target is PostgreSQL: skip pooler-only checks
 *   PG_HOST PG_PORT PG_SUPERUSER PG_DB     direct (superuser) connection for verification
 */
#ifndef WARMPOOL_ITEST_H
#define WARMPOOL_ITEST_H

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define ITEST_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* ---------------------------------------------------------------- failing and logging */

static inline void itest_vfail(const char *file, int line, PGconn *conn, const char *fmt,
                               va_list ap) __attribute__((noreturn));

static inline void itest_vfail(const char *file, int line, PGconn *conn, const char *fmt,
                               va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fflush(stdout);
    fprintf(stderr, "%s:%d: FAIL: %s\n", file, line, msg);
    if (conn && PQerrorMessage(conn)[0])
        fprintf(stderr, "    libpq: %s", PQerrorMessage(conn));
    fflush(stderr);
    /* _exit: other threads may be inside libpq; atexit handlers would race them. */
    _exit(1);
}

static inline void itest_fail(const char *file, int line, PGconn *conn, const char *fmt, ...)
    ITEST_PRINTF(4, 5) __attribute__((noreturn));

static inline void itest_fail(const char *file, int line, PGconn *conn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    itest_vfail(file, line, conn, fmt, ap);
}

/* FAIL("fmt", ...) and CHECK(cond, "fmt", ...): the format must be a string literal. */
#define FAIL(...) itest_fail(__FILE__, __LINE__, NULL, __VA_ARGS__)
#define FAIL_CONN(conn, ...) itest_fail(__FILE__, __LINE__, (conn), __VA_ARGS__)
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            itest_fail(__FILE__, __LINE__, NULL, "(" #cond ") " __VA_ARGS__);                      \
    } while (0)
#define CHECK_STR(got, want, what)                                                                 \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if (!g_ || strcmp(g_, w_) != 0)                                                            \
            itest_fail(__FILE__, __LINE__, NULL, "%s: got %s%s%s, want \"%s\"", (what),            \
                       g_ ? "\"" : "", g_ ? g_ : "NULL", g_ ? "\"" : "", w_);                      \
    } while (0)

static inline void itest_ok(const char *fmt, ...) ITEST_PRINTF(1, 2);

/* One line per passed check, so a failing run shows how far it got. */
static inline void itest_ok(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ok: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

static inline void itest_note(const char *fmt, ...) ITEST_PRINTF(1, 2);

static inline void itest_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("note: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

/* ---------------------------------------------------------------- environment, time */

static inline const char *itest_env(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && v[0] ? v : dflt;
}

static inline int itest_env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && v[0] ? atoi(v) : dflt;
}

/* True when the target is PostgreSQL itself: pooler-only assertions are skipped. */
static inline int itest_direct(void)
{
    return itest_env_int("WP_DIRECT", 0) != 0;
}

/* True under `make valgrind` (WP_VALGRIND=1): the pooler runs 20-50 times slower, so the
 * few assertions on elapsed time or memory are skipped with a note. */
static inline int itest_valgrind(void)
{
    return itest_env_int("WP_VALGRIND", 0) != 0;
}

/* Factor for bounds on how fast the pooler reacts: 5 under valgrind, else 1. A test that
 * scales a bound says so with itest_note, so a valgrind run never passes for a timing
 * the normal run would fail. */
static inline double itest_slow(void)
{
    return itest_valgrind() ? 5.0 : 1.0;
}

static inline double itest_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void itest_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

#define WP_HOST() itest_env("WP_HOST", "127.0.0.1")
#define WP_PORT() itest_env("WP_PORT", "6432")
#define WP_USER() itest_env("WP_USER", "wpuser")
#define WP_PASSWORD() itest_env("WP_PASSWORD", "wppass")
#define WP_DB() itest_env("WP_DB", "wptest")
#define PG_DB() itest_env("PG_DB", "wptest")

/* ---------------------------------------------------------------- connecting */

/* Append " key='value'" to a conninfo string, quoting as libpq wants. */
static inline void itest_kv(char *buf, size_t cap, const char *key, const char *val)
{
    size_t n = strlen(buf);
    n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, " %s='", key);
    for (const char *p = val; *p && n + 3 < cap; p++) {
        if (*p == '\'' || *p == '\\')
            buf[n++] = '\\';
        buf[n++] = *p;
    }
    if (n + 2 < cap) {
        buf[n++] = '\'';
        buf[n] = '\0';
    }
}

/* Conninfo for the target; `extra` (may be NULL) is appended verbatim. */
static inline void itest_target_conninfo(char *buf, size_t cap, const char *db, const char *extra)
{
    buf[0] = '\0';
    itest_kv(buf, cap, "host", WP_HOST());
    itest_kv(buf, cap, "port", WP_PORT());
    itest_kv(buf, cap, "user", WP_USER());
    itest_kv(buf, cap, "password", WP_PASSWORD());
    itest_kv(buf, cap, "dbname", db);
    /* Under valgrind a login that waits for the pool's first backend can take 10 s. */
    itest_kv(buf, cap, "connect_timeout", itest_valgrind() ? "50" : "10");
    if (extra) {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, " %s", extra);
    }
}

static inline PGconn *itest_connect_conninfo(const char *file, int line, const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (!conn)
        itest_fail(file, line, NULL, "PQconnectdb: out of memory");
    if (PQstatus(conn) != CONNECTION_OK)
        itest_fail(file, line, conn, "connect failed (%s)", conninfo);
    return conn;
}

static inline PGconn *itest_connect_target(const char *file, int line, const char *db,
                                           const char *extra)
{
    char ci[1024];
    itest_target_conninfo(ci, sizeof ci, db, extra);
    return itest_connect_conninfo(file, line, ci);
}

/* Superuser connection straight to PostgreSQL, to verify what really happened. */
static inline PGconn *itest_connect_direct_db(const char *file, int line, const char *db)
{
    char ci[1024] = "";
    itest_kv(ci, sizeof ci, "host", itest_env("PG_HOST", "127.0.0.1"));
    itest_kv(ci, sizeof ci, "port", itest_env("PG_PORT", "5432"));
    itest_kv(ci, sizeof ci, "user", itest_env("PG_SUPERUSER", "postgres"));
    if (getenv("PG_PASSWORD"))
        itest_kv(ci, sizeof ci, "password", getenv("PG_PASSWORD"));
    itest_kv(ci, sizeof ci, "dbname", db);
    itest_kv(ci, sizeof ci, "application_name", "itest-direct");
    itest_kv(ci, sizeof ci, "options", "-c client_min_messages=warning");
    return itest_connect_conninfo(file, line, ci);
}

#define CONNECT(db) itest_connect_target(__FILE__, __LINE__, (db), NULL)
#define CONNECT_X(db, extra) itest_connect_target(__FILE__, __LINE__, (db), (extra))
#define CONNECT_DIRECT() itest_connect_direct_db(__FILE__, __LINE__, PG_DB())

/*
 * Connect expecting failure. Returns 1 if the connection failed, with the SQLSTATE of
 * the server's ErrorResponse in `sqlstate` ("" if none) and libpq's message in `msg`;
 * 0 if it unexpectedly succeeded. The SQLSTATE comes from libpq's verbose error format
 * ("FATAL:  28P01: ..."), which needs the verbosity set before the handshake, hence the
 * PQconnectStart loop. A handshake stalled for 15 s fails the test.
 */
static inline int itest_connect_error(const char *file, int line, const char *conninfo,
                                      char sqlstate[6], char *msg, size_t msgcap)
{
    PGconn *conn = PQconnectStart(conninfo);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    if (!conn)
        itest_fail(file, line, NULL, "PQconnectStart: out of memory");
    PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
    if (PQstatus(conn) == CONNECTION_BAD)
        st = PGRES_POLLING_FAILED;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        struct pollfd p = {PQsocket(conn), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
        int r = poll(&p, 1, 15000);
        if (r == 0)
            itest_fail(file, line, NULL, "connection handshake hung for 15 s (%s)", conninfo);
        if (r < 0 && errno != EINTR)
            itest_fail(file, line, NULL, "poll: %s", strerror(errno));
        st = PQconnectPoll(conn);
    }
    snprintf(msg, msgcap, "%s", PQerrorMessage(conn));
    sqlstate[0] = '\0';
    /* Verbose format: "...FATAL:  28P01: password authentication failed ..." */
    for (const char *p = msg; (p = strstr(p, ":  ")) != NULL; p += 3) {
        const char *c = p + 3;
        if (strlen(c) > 6 && c[5] == ':' &&
            strspn(c, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 5) {
            memcpy(sqlstate, c, 5);
            sqlstate[5] = '\0';
            break;
        }
    }
    int failed = st == PGRES_POLLING_FAILED;
    PQfinish(conn);
    return failed;
}

/* ---------------------------------------------------------------- running SQL */

static inline PGresult *itest_check_result(const char *file, int line, PGconn *conn, PGresult *res,
                                           const char *sql, ExecStatusType want)
{
    if (!res)
        itest_fail(file, line, conn, "no result for: %s", sql);
    if (PQresultStatus(res) != want) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        itest_fail(file, line, conn, "%s: got %s (SQLSTATE %s: %s), want %s", sql,
                   PQresStatus(PQresultStatus(res)), state ? state : "-", PQresultErrorMessage(res),
                   PQresStatus(want));
    }
    return res;
}

/* Run `sql`, die unless its status is `want`; returns the result (caller PQclears). */
static inline PGresult *itest_exec(const char *file, int line, PGconn *conn, const char *sql,
                                   ExecStatusType want)
{
    return itest_check_result(file, line, conn, PQexec(conn, sql), sql, want);
}

/* Same through the extended protocol, with text parameters. */
static inline PGresult *itest_execp(const char *file, int line, PGconn *conn, const char *sql,
                                    int nparams, const char *const *params, ExecStatusType want)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    return itest_check_result(file, line, conn, res, sql, want);
}

/* The single value of a one-row, one-column result: malloc'd copy, NULL for SQL NULL. */
static inline char *itest_value(const char *file, int line, PGconn *conn, PGresult *res,
                                const char *sql)
{
    if (PQntuples(res) != 1 || PQnfields(res) != 1)
        itest_fail(file, line, conn, "%s: got %d rows x %d columns, want 1 x 1", sql,
                   PQntuples(res), PQnfields(res));
    char *v = PQgetisnull(res, 0, 0) ? NULL : strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

static inline char *itest_query_value(const char *file, int line, PGconn *conn, const char *sql)
{
    return itest_value(file, line, conn, itest_exec(file, line, conn, sql, PGRES_TUPLES_OK), sql);
}

static inline long long itest_query_int(const char *file, int line, PGconn *conn, const char *sql)
{
    char *v = itest_query_value(file, line, conn, sql);
    if (!v)
        itest_fail(file, line, conn, "%s: got NULL, want a number", sql);
    long long n = strtoll(v, NULL, 10);
    free(v);
    return n;
}

/* Run `sql` expecting an error with SQLSTATE `state`; returns the error message. */
static inline char *itest_expect_error(const char *file, int line, PGconn *conn, const char *sql,
                                       const char *state)
{
    PGresult *res = PQexec(conn, sql);
    if (!res)
        itest_fail(file, line, conn, "no result for: %s", sql);
    const char *got = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (PQresultStatus(res) != PGRES_FATAL_ERROR || !got || strcmp(got, state) != 0)
        itest_fail(file, line, conn, "%s: got %s (SQLSTATE %s), want error %s", sql,
                   PQresStatus(PQresultStatus(res)), got ? got : "-", state);
    char *msg = strdup(PQresultErrorMessage(res));
    PQclear(res);
    return msg;
}

#define EXEC(conn, sql) PQclear(itest_exec(__FILE__, __LINE__, (conn), (sql), PGRES_COMMAND_OK))
#define QUERY(conn, sql) itest_exec(__FILE__, __LINE__, (conn), (sql), PGRES_TUPLES_OK)
#define QUERYP(conn, sql, n, params)                                                               \
    itest_execp(__FILE__, __LINE__, (conn), (sql), (n), (params), PGRES_TUPLES_OK)
#define QUERY_VALUE(conn, sql) itest_query_value(__FILE__, __LINE__, (conn), (sql))
#define QUERY_INT(conn, sql) itest_query_int(__FILE__, __LINE__, (conn), (sql))
#define EXPECT_ERROR(conn, sql, state)                                                             \
    free(itest_expect_error(__FILE__, __LINE__, (conn), (sql), (state)))

/* ---------------------------------------------------------------- raw protocol sockets */

/* TCP connection to host:port; dies on failure. */
static inline int itest_tcp_connect(const char *file, int line, const char *host, const char *port)
{
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0)
        itest_fail(file, line, NULL, "getaddrinfo %s:%s: %s", host, port, gai_strerror(rc));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        itest_fail(file, line, NULL, "connect %s:%s: %s", host, port, strerror(errno));
    freeaddrinfo(ai);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

#define RAW_CONNECT() itest_tcp_connect(__FILE__, __LINE__, WP_HOST(), WP_PORT())

/* Write all bytes; returns 0, or -1 if the peer already closed (EPIPE/ECONNRESET). */
static inline int itest_send(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

enum { ITEST_RAW_MSG = 1, ITEST_RAW_CLOSED = 0, ITEST_RAW_TIMEOUT = -1 };

/* Read exactly `len` bytes before `deadline`: ITEST_RAW_MSG, _CLOSED (EOF/reset), _TIMEOUT. */
static inline int itest_read_exact(int fd, void *buf, size_t len, double deadline)
{
    char *p = buf;
    while (len > 0) {
        int left = (int)((deadline - itest_now()) * 1000);
        if (left <= 0)
            return ITEST_RAW_TIMEOUT;
        struct pollfd pf = {fd, POLLIN, 0};
        int r = poll(&pf, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return ITEST_RAW_TIMEOUT;
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return ITEST_RAW_CLOSED;
        p += n;
        len -= (size_t)n;
    }
    return ITEST_RAW_MSG;
}

/*
 * Read one backend message (type byte, int32 length, body) within `timeout_ms`. The body
 * (truncated to `cap`, NUL-terminated) goes to `body`, its full length to `*len`.
 */
static inline int itest_read_msg(int fd, int timeout_ms, char *type, char *body, size_t cap,
                                 size_t *len)
{
    double deadline = itest_now() + timeout_ms / 1000.0;
    unsigned char hdr[5];
    int r = itest_read_exact(fd, hdr, 5, deadline);
    if (r != ITEST_RAW_MSG)
        return r;
    *type = (char)hdr[0];
    uint32_t n =
        ((uint32_t)hdr[1] << 24) | ((uint32_t)hdr[2] << 16) | ((uint32_t)hdr[3] << 8) | hdr[4];
    if (n < 4 || n > (1u << 24))
        return ITEST_RAW_CLOSED; /* nonsense framing: treat like a broken stream */
    *len = n - 4;
    size_t keep = *len < cap ? *len : cap - 1;
    r = itest_read_exact(fd, body, keep, deadline);
    if (r != ITEST_RAW_MSG)
        return r;
    body[keep] = '\0';
    for (size_t rest = *len - keep; rest > 0;) {
        char junk[512];
        size_t k = rest < sizeof junk ? rest : sizeof junk;
        r = itest_read_exact(fd, junk, k, deadline);
        if (r != ITEST_RAW_MSG)
            return r;
        rest -= k;
    }
    return ITEST_RAW_MSG;
}

/* A field ('C' SQLSTATE, 'M' message, ...) of an ErrorResponse body, or "" if absent. */
static inline const char *itest_error_field(const char *body, size_t len, char field)
{
    size_t i = 0;
    while (i < len && body[i] != '\0') {
        char f = body[i++];
        const char *v = body + i;
        size_t vlen = strnlen(v, len - i);
        if (f == field)
            return v;
        i += vlen + 1;
    }
    return "";
}

static inline void itest_put32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static inline uint32_t itest_get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) | ((uint32_t)u[2] << 8) | u[3];
}

/*
 * Build a startup packet for `protocol` (196608 = 3.0) with NULL-terminated key/value
 * pairs: itest_startup(buf, cap, 196608, "user", "u", "database", "d", NULL). Returns
 * its length.
 */
static inline size_t itest_startup(char *buf, size_t cap, uint32_t protocol, ...)
{
    va_list ap;
    size_t n = 8;
    va_start(ap, protocol);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;) {
        size_t l = strlen(s) + 1;
        if (n + l + 1 > cap)
            break;
        memcpy(buf + n, s, l);
        n += l;
    }
    va_end(ap);
    buf[n++] = '\0';
    itest_put32(buf, (uint32_t)n);
    itest_put32(buf + 4, protocol);
    return n;
}

#endif
