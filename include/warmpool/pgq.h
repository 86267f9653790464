/*
 * pgq — one libpq connection of warmpool's own, driven on the event loop without ever
 * blocking it (pooler/pgq.c): connect, send one query, hand its results over.
 *
 * The auth_query lookups (authq.c, a connection per lookup) and the fleet budget's
 * monitor (fleet.c, a connection kept between polls) are its two users. Each embeds a
 * struct pgq, keeps its own timeout (a lookup's includes its time in the queue; a
 * fleet poll's is checked by the janitor's tick) and reads the results itself.
 *
 * Every callback may be the last word on the connection: pgq never touches the struct
 * after calling one, so `connected`, `done` and `failed` may send again, close it, or
 * free the memory that holds it. `result` must do none of these (more may follow).
 */
#ifndef WARMPOOL_PGQ_H
#define WARMPOOL_PGQ_H

#include <libpq-fe.h>
#include <stddef.h>

struct event;

struct pgq_calls {
    /* The login is done and the connection idle: send the query. */
    void (*connected)(void *arg);
    /* One result of the query, the callee's to PQclear. */
    void (*result)(void *arg, PGresult *res);
    /* The query's last result came: the connection is idle again. */
    void (*done)(void *arg);
    /* The connection is closed already; `why` is one line (libpq's text or pgq's
       own), `connecting` whether the login had not finished. */
    void (*failed)(void *arg, int connecting, const char *why);
};

enum pgq_phase { PGQ_IDLE, PGQ_CONNECTING, PGQ_SENDING, PGQ_READING };

struct pgq {
    PGconn *conn;         /* NULL when closed */
    struct event *io;     /* the one event armed on the socket, or NULL */
    enum pgq_phase phase; /* idle: closed, or open with no query in flight */
    const struct pgq_calls *calls;
    void *arg;
};

/* A closed connection that reports to calls with arg. */
void pgq_init(struct pgq *q, const struct pgq_calls *calls, void *arg);
/* Starts the login with libpq's keyword arrays (NULL-terminated). Ends in `connected`
   or `failed`, perhaps before it returns. q must be closed. */
void pgq_connect(struct pgq *q, const char *const *keys, const char *const *values);
/* Sends sql over the open, idle connection: with nparams text parameters over the
   extended protocol (one statement), or with none over the simple one (any number).
   Ends in `done` or `failed`, perhaps before it returns. */
void pgq_send(struct pgq *q, const char *sql, int nparams, const char *const *params);
/* Whether the login finished and the connection is still good as libpq knows it. */
int pgq_open(const struct pgq *q);
/* Whether a login or a query is in flight. */
int pgq_busy(const struct pgq *q);
/* Closes the connection (nothing is reported); q may connect again. */
void pgq_close(struct pgq *q);
/* libpq's multi-line error text as one line for the log: trailing newlines and spaces
   dropped, newlines and tabs inside turned into spaces; "unknown error" for NULL. */
void pgq_one_line(const char *text, char *out, size_t len);

#endif
