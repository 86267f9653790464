/*
 * client — one application connection: startup, authentication, welcome, then the
 * idle ⇄ waiting ⇄ active cycle. It asks the pool for a backend and never looks at
 * backend internals beyond the link.
 */
#ifndef WARMPOOL_CLIENT_H
#define WARMPOOL_CLIENT_H

#include <stdint.h>

#include "warmpool/buf.h"
#include "warmpool/conn.h"
#include "warmpool/list.h"
#include "warmpool/params.h"
#include "warmpool/prepared.h"
#include "warmpool/session_state.h"
#include "warmpool/stats.h"
#include "warmpool/tls.h"

struct wp_pool;
struct wp_server;
struct scram_state;
struct wp_user_secret;

enum wp_client_state {
    CL_STARTUP, /* reading the startup packet */
    CL_AUTH,    /* password exchange */
    CL_WELCOME, /* authenticated; waiting for the pool's first backend parameters */
    CL_IDLE,    /* no backend */
    CL_WAITING, /* queued for a backend */
    CL_ACTIVE,  /* linked to a backend */
    CL_CLOSING,
};

struct wp_client {
    struct wp_list all;  /* wp_rt.clients */
    struct wp_list node; /* pool->waiting or pool->welcoming */
    uint64_t id;
    struct wp_conn conn; /* the socket: in = bytes from the client, out = warmpool's own
                            bytes for it (auth, errors, synthetic answers) */

    /* One allocation holds both until login puts the client in a pool; from then on
       they are the pool's strings. */
    char *user;
    char *dbname;
    struct wp_pool *pool; /* held (pool_hold) from login until the client is freed */
    struct wp_server *server;
    struct wp_params params;   /* the client's view of session parameters */
    struct wp_params startup;  /* what it asked for at startup (RESET returns to it) */
    struct wp_session session; /* its settings and pins (session_state.c) */

    /* auth */
    struct scram_state *scram;
    struct wp_user_secret *looked_up; /* the secret auth_query found (authq.c), or NULL */
    int64_t login_started_ms;

    int64_t wait_started_ms;
    int wait_notified; /* query_wait_notify's NOTICE was sent for this wait */
    int64_t xact_started_ms;
    int64_t last_active_ms;       /* last byte from the client */
    int64_t answered_ms;          /* last ReadyForQuery that left it nothing outstanding */
    struct wp_client_stats stats; /* stats.c: query timing, N+1 detector */
    struct wp_name_map stmts;     /* the client's statement names (transaction mode) */

    uint32_t cancel_pid, cancel_key;
    uint8_t md5_salt[4];
    uint8_t state;            /* enum wp_client_state */
    uint8_t auth_method;      /* login.c's METHOD_* */
    uint8_t auth_type;        /* enum wp_auth_type chosen for it (kept across a lookup) */
    uint8_t lookup_outcome;   /* enum authq_outcome, when auth_query was asked */
    uint8_t bad_type;         /* type of the message bad_type_next refuses (0 is one too) */
    unsigned cancel_hold : 1; /* input waits while its backend's cancel is in flight (relay.c) */
    unsigned is_admin : 1;
    unsigned admin_waiting : 1; /* a console command (PAUSE…) answers later (admin_wait.c) */
    unsigned looking_up : 1;    /* waiting for auth_query's answer (login.c) */
    unsigned asked_authq : 1;   /* auth_query was asked for its secret */
    unsigned input_held : 1;    /* stop after a Sync until earlier name changes are settled */
    unsigned bad_type_next : 1; /* a message of a type PostgreSQL does not know (bad_type)
                                   is next: refused once all before it is answered */
    unsigned pinned : 1;        /* keeps its backend between transactions (relay_session.c) */
    uint16_t pins_logged;       /* pin causes already logged for it */
    char addr[];                /* "host:port" or "unix", sized at accept (client_accept) */
};

/* The client talks TLS (the handshake is done). */
static inline int client_tls_in_use(const struct wp_client *c)
{
    return conn_tls_established(&c->conn);
}

/* CommonName of the client certificate, if one was sent and verified against
   client_tls_ca_file; NULL otherwise. */
static inline const char *client_tls_peer_cn(const struct wp_client *c)
{
    return c->conn.tls ? c->conn.tls->peer_cn : NULL;
}

/* warmpool still has bytes to deliver to the client. With TLS, `out` alone does not
   say: tls_write moves it (and relayed backend output) into OpenSSL's side at once, and
   a server is released while that is still being sent to a slow reader. */
static inline int client_output_pending(const struct wp_client *c)
{
    return conn_output_pending(&c->conn);
}

/* Connected over the unix socket (TLS is never required there). */
int client_is_unix(const struct wp_client *c);

void client_accept(int fd, const char *addr);

/* Every change of a client's state goes through here: one place to watch them (it
   runs twice per transaction, so it stays inline and does nothing else). */
static inline void client_set_state(struct wp_client *c, enum wp_client_state state)
{
    c->state = (uint8_t)state;
}
void client_close(struct wp_client *client, const char *reason);
/* Send ErrorResponse (FATAL closes after flush). */
void client_send_error(struct wp_client *client, const char *severity, const char *sqlstate,
                       const char *message);
/* Answer the request at the head of the input (a Query or FunctionCall, or extended
   messages through their Sync) with ERROR + ReadyForQuery instead of running it; the
   client stays connected. -1 when the whole request is not buffered yet. */
int client_refuse_request(struct wp_client *client, const char *sqlstate, const char *message);
/* Is the whole request at the head of the input buffered (what refuse would answer)? */
int client_request_buffered(const struct wp_client *client);
/* Queue the SET that makes the linked backend match this client's parameters. */
void client_sync_params(struct wp_client *client);
/* The pool linked a server: start relaying. */
void client_linked(struct wp_client *client);
/* The first backend's parameters are known: finish the login. */
void client_welcome(struct wp_client *client);
void client_kick_write(struct wp_client *client);
/* Make the client's cancel key and queue its BackendKeyData. */
void client_issue_cancel_key(struct wp_client *c);
struct wp_client *client_find_by_cancel_key(uint32_t pid, uint32_t key);
const char *client_state_name(enum wp_client_state state);
/* Free clients closed since the last call (runs from the reap event). */
void client_reap(void);
/* Login phase input (startup packet, password exchange): login.c. */
void login_input(struct wp_client *client);
void login_forget_cached_keys(void);
/* auth_query answered for this waiting client (authq.c): go on with its login.
   `outcome` is an enum authq_outcome; `secret` is set for AUTHQ_FOUND (copied). */
void login_secret_ready(struct wp_client *client, int outcome, const char *secret);

#endif
