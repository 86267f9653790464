/*
 * server — one backend connection: non-blocking connect (libpq, or server_login.c), parameter
 * capture, internal queries (SET sync, ROLLBACK, reset), draining after an abandoned client, close.
 * The server does not choose its client; the pool does.
 */
#ifndef WARMPOOL_SERVER_H
#define WARMPOOL_SERVER_H

#include <stdint.h>

#include "warmpool/buf.h"
#include "warmpool/conn.h"
#include "warmpool/list.h"
#include "warmpool/owed.h"
#include "warmpool/params.h"
#include "warmpool/prepared.h"

struct event;
struct wp_pool;
struct wp_client;
typedef struct pg_conn PGconn;
typedef struct ssl_st SSL;
struct server_login;
struct wp_host_order;

enum wp_server_state {
    SV_CONNECTING,
    SV_IDLE,      /* in pool->idle */
    SV_ACTIVE,    /* linked to a client */
    SV_RESETTING, /* running internal queries before going idle */
    SV_DRAINING,  /* client gone; discarding until the backend is quiet */
    SV_CLOSED,
};

enum { PARAMS_RESUME = 1, PARAMS_REFUSE = 2 };

struct wp_server {
    struct wp_list node; /* pool list for its state */
    uint64_t id;
    struct wp_pool *pool;
    struct wp_client *client;
    enum wp_server_state state;
    PGconn *pq;                 /* libpq's connection: the connect, then cancels and PQfinish */
    struct server_login *login; /* or warmpool's own login (server_login.c): the same */
    struct wp_conn conn;        /* the socket once connected (libpq's SSL when TLS): in = bytes
                                   from the backend, out = warmpool's own, ahead of client bytes */
    struct wp_params params;
    uint32_t backend_pid;

    /* protocol tracking */
    struct wp_owed owed;        /* what the backend still owes, from what it was sent and said */
    int swallow;                /* internal queries whose responses are dropped */
    int internal_failed;        /* an internal query reported an error */
    int syncing_params;         /* the client's parameter sync is in flight: its input waits */
    char *sync_error;           /* the sync's ErrorResponse (a copy), for the client */
    int params_outcome;         /* PARAMS_RESUME or PARAMS_REFUSE once the sync is answered */
    char tx_status;             /* from the last ReadyForQuery */
    int msg_discard;            /* the rest of the message in passage (conn.msg_left) is dropped */
    int cancel_pending;         /* cancels in flight on the workpool */
    int close_when_quiet;       /* close instead of reuse once drained */
    int release_pending;        /* release once the client has all bytes */
    struct wp_server_set stmts; /* warmpool statements prepared here */
    struct wp_pending_queue pending; /* requests awaiting answers (transaction mode) */
    uint32_t plain_queries;          /* plain Queries sent before everything in pending */
    struct wp_buf describe;          /* a Describe answer being collected for the cache */
    int name_effects;                /* pending requests that change a client's statement names */
    int ext_skipping;                /* backend ignores extended messages until the next Sync */
    int warming;                     /* the internal batch in flight prepares warm statements */
    int setting_up;                  /* connect_query in flight: not usable before its answer */
    int needs_reset;                 /* run server_reset_query before the next client */
    int check_first;                 /* run server_check_query before the next client */
    int out_of_memory;               /* relay_prepared lost track of a request: close it */

    /* Which host of its entry it is on (server_hosts.c). */
    int host_index;              /* in the pool's host list; -1: one host, or not known */
    char *host_port;             /* "host:port" libpq or server_login logged in to */
    struct wp_host_order *tried; /* the order of its connect (several hosts), until done */

    int64_t connect_started_ms;
    int64_t created_ms;
    int64_t last_used_ms;
    int64_t drain_started_ms;
    int64_t lifetime_ms;      /* server_lifetime with jitter */
    int64_t query_started_ms; /* the client's oldest unanswered request went out; 0 = none */
    int64_t timeout_cancel;   /* query_timeout (ms) that cancelled that request; 0 = none */
    int64_t check_started_ms; /* server_check_query in flight since; 0 = none */
};

/* Requests of the client's (not warmpool's own) still waiting for a ReadyForQuery. */
static inline int server_outstanding(const struct wp_server *s)
{
    return (int)s->owed.ready > s->swallow;
}

struct wp_server *server_connect(struct wp_pool *pool);
/* The libpq keywords (NULL-terminated, at most `max`) a new backend of `pool` logs in
   with; the values point into the pool and its configuration. */
int server_conninfo(struct wp_pool *pool, const char **keys, const char **values, int max);
void server_close(struct wp_server *server, const char *reason);
/* warmpool's own login (server_login.c) ended: logged in on fd (with ssl, or NULL), or
   failed with a SQLSTATE and the text for the log and the pool's last_error. */
void server_connect_finished(struct wp_server *server, int fd, SSL *ssl);
void server_connect_error(struct wp_server *server, const char *sqlstate, const char *text);
/* Queue an internal simple query whose whole response is swallowed. */
int server_queue_internal(struct wp_server *server, const char *sql);
/* Start flushing wbuf (and the linked client's pending bytes). */
void server_kick_write(struct wp_server *server);
/* The linked client went away: cancel, roll back, reset, or close. */
void server_abandon(struct wp_server *server);
/* Decide what happens when the backend is quiet (no outstanding work). */
void server_on_quiet(struct wp_server *server);
void server_send_cancel(struct wp_server *server);
/* Bytes or EOF waiting on an idle backend's socket: it is going away (or chatting). */
int server_input_pending(const struct wp_server *server);
const char *server_state_name(enum wp_server_state state);
void server_reap(void);
void server_set_state(struct wp_server *server, enum wp_server_state state);

#endif
