/*
 * pgq — one libpq connection on the event loop (include/warmpool/pgq.h).
 *
 * libpq's non-blocking API, stepped by libevent: PQconnectStartParams then
 * PQconnectPoll on whichever readiness it asks for, then PQsendQuery(Params) and
 * PQflush until the query is out, then PQconsumeInput / PQisBusy / PQgetResult until
 * the last result. One one-shot event is armed at a time, always on PQsocket's current
 * answer: the socket may change while connecting (another host or address tried).
 */
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "warmpool/pgq.h"
#include "warmpool/runtime.h"
#include "warmpool/timeouts.h"

/* Room for libpq's error text on one line. */
#define PGQ_ERROR_MAX 512

void pgq_one_line(const char *text, char *out, size_t len)
{
    snprintf(out, len, "%s", text ? text : "unknown error");
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
}

void pgq_init(struct pgq *q, const struct pgq_calls *calls, void *arg)
{
    memset(q, 0, sizeof *q);
    q->calls = calls;
    q->arg = arg;
}

void pgq_close(struct pgq *q)
{
    if (q->io)
        event_free(q->io);
    q->io = NULL;
    if (q->conn)
        PQfinish(q->conn);
    q->conn = NULL;
    q->phase = PGQ_IDLE;
}

int pgq_open(const struct pgq *q)
{
    return q->conn && PQstatus(q->conn) == CONNECTION_OK;
}

int pgq_busy(const struct pgq *q)
{
    return q->phase != PGQ_IDLE;
}

/* The end of the connection: closed first, so that the owner may reuse or free q. */
static void fail(struct pgq *q, const char *why)
{
    int connecting = q->phase == PGQ_CONNECTING;
    char line[PGQ_ERROR_MAX];
    pgq_one_line(why, line, sizeof line);
    pgq_close(q);
    q->calls->failed(q->arg, connecting, line);
}

static void fail_with_libpq(struct pgq *q)
{
    fail(q, PQerrorMessage(q->conn)); /* copied by fail before the close frees it */
}

static void on_io(evutil_socket_t fd, short what, void *arg);

/* Wait for the socket libpq uses now; a failure has been reported when it returns -1. */
static int arm(struct pgq *q, int for_write)
{
    if (q->io)
        event_free(q->io);
    q->io = event_new(wp_rt.base, PQsocket(q->conn), for_write ? EV_WRITE : EV_READ, on_io, q);
    if (q->io && event_add(q->io, NULL) == 0)
        return 0;
    fail(q, "cannot watch the socket");
    return -1;
}

static void connect_step(struct pgq *q)
{
    switch (PQconnectPoll(q->conn)) {
    case PGRES_POLLING_READING:
        arm(q, 0);
        return;
    case PGRES_POLLING_WRITING:
        arm(q, 1);
        return;
    case PGRES_POLLING_OK:
        q->phase = PGQ_IDLE;
        q->calls->connected(q->arg);
        return;
    case PGRES_POLLING_FAILED:
    default:
        fail_with_libpq(q);
        return;
    }
}

void pgq_connect(struct pgq *q, const char *const *keys, const char *const *values)
{
    q->phase = PGQ_CONNECTING;
    q->conn = PQconnectStartParams(keys, values, 0);
    if (!q->conn) {
        fail(q, "out of memory");
        return;
    }
    if (PQstatus(q->conn) == CONNECTION_BAD) {
        fail_with_libpq(q);
        return;
    }
    arm(q, 1);
}

static void flush_query(struct pgq *q)
{
    int rc = PQflush(q->conn);
    if (rc < 0) {
        fail_with_libpq(q);
        return;
    }
    q->phase = rc == 1 ? PGQ_SENDING : PGQ_READING;
    arm(q, rc == 1);
}

void pgq_send(struct pgq *q, const char *sql, int nparams, const char *const *params)
{
    /* Before each query: the login may have left the connection blocking. */
    int sent = PQsetnonblocking(q->conn, 1) == 0 &&
               (nparams > 0 ? PQsendQueryParams(q->conn, sql, nparams, NULL, params, NULL, NULL, 0)
                            : PQsendQuery(q->conn, sql));
    if (!sent) {
        fail_with_libpq(q);
        return;
    }
    flush_query(q);
}

/* Every result already in, without waiting for the rest (PQgetResult would block). */
static void read_results(struct pgq *q)
{
    if (!PQconsumeInput(q->conn)) {
        fail_with_libpq(q);
        return;
    }
    while (!PQisBusy(q->conn)) {
        PGresult *res = PQgetResult(q->conn);
        if (!res) {
            event_free(q->io);
            q->io = NULL;
            q->phase = PGQ_IDLE;
            q->calls->done(q->arg);
            return;
        }
        q->calls->result(q->arg, res);
    }
    arm(q, 0);
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pgq *q = arg;
    wp_clock_hold(1);
    switch (q->phase) {
    case PGQ_CONNECTING:
        connect_step(q);
        break;
    case PGQ_SENDING:
        flush_query(q);
        break;
    case PGQ_READING:
        read_results(q);
        break;
    case PGQ_IDLE:
        break;
    }
    wp_clock_hold(0);
}
