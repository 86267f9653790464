/*
 * client — one application connection: startup, authentication, welcome, then the
 * idle ⇄ waiting ⇄ active cycle. It asks the pool for a backend and never looks at
 * backend internals beyond the link.
 */
#ifndef WARMPOOL_CLIENT_H
#define WARMPOOL_CLIENT_H

#include <stdint.h>

#include "warmpool/buf.h"
#include "warmpool/list.h"
#include "warmpool/params.h"
#include "warmpool/prepared.h"
#include "warmpool/stats.h"
#include "warmpool/tls.h"

struct event;
struct wp_pool;
struct wp_server;
struct scram_state;

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
    struct event *ev_read, *ev_write;
    struct wp_tls *tls; /* NULL on a plain connection; see client_tls_in_use() */

    /* One allocation holds both until login puts the client in a pool; from then on
       they are the pool's strings. */
    char *user;
    char *dbname;
    struct wp_pool *pool; /* held (pool_hold) from login until the client is freed */
    struct wp_server *server;
    struct wp_params params;  /* the client's view of session parameters */
    struct wp_params startup; /* what it asked for at startup */

    /* auth */
    struct scram_state *scram;
    int64_t login_started_ms;

    struct wp_buf rbuf; /* bytes from the client */
    struct wp_buf wbuf; /* bytes warmpool sends the client itself (auth, errors) */
    size_t scan;        /* rbuf offset up to which bytes are scanned and forwardable */
    int64_t wait_started_ms;
    int64_t xact_started_ms;
    int64_t last_active_ms;       /* last byte from the client */
    int64_t answered_ms;          /* last ReadyForQuery that left it nothing outstanding */
    struct wp_client_stats stats; /* stats.c: query timing, N+1 detector */
    struct wp_name_map stmts;     /* the client's statement names (transaction mode) */

    int fd;
    uint32_t cancel_pid, cancel_key;
    uint32_t msg_left; /* bytes of the current client message still to pass */
    uint8_t md5_salt[4];
    uint8_t state;       /* enum wp_client_state */
    uint8_t auth_method; /* login.c's METHOD_* */
    uint8_t bad_type;    /* type of the message bad_type_next refuses (0 is one too) */
    unsigned write_armed : 1;
    unsigned read_paused : 1;
    unsigned cancel_hold : 1; /* input waits while its backend's cancel is in flight (relay.c) */
    unsigned is_admin : 1;
    unsigned input_held : 1;    /* stop after a Sync until earlier name changes are settled */
    unsigned bad_type_next : 1; /* a message of a type PostgreSQL does not know (bad_type)
                                   is next: refused once all before it is answered */
    char addr[];                /* "host:port" or "unix", sized at accept (client_accept) */
};

/* The client talks TLS (the handshake is done). */
static inline int client_tls_in_use(const struct wp_client *c)
{
    return c->tls && c->tls->established;
}

/* CommonName of the client certificate, if one was sent and verified against
   client_tls_ca_file; NULL otherwise. */
static inline const char *client_tls_peer_cn(const struct wp_client *c)
{
    return c->tls ? c->tls->peer_cn : NULL;
}

/* warmpool still has bytes to deliver to the client. With TLS, wbuf alone does not
   say: tls_write moves it (and relayed backend output) into tls->out at once, and a
   server is released while that is still being sent to a slow reader. */
static inline int client_output_pending(const struct wp_client *c)
{
    return buf_unread(&c->wbuf) > 0 || (c->tls && buf_unread(&c->tls->out) > 0);
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
/* Watch (or stop watching) the client's socket for room to write. */
void client_arm_write(struct wp_client *client, int want);
void client_pause_read(struct wp_client *client, int paused);
struct wp_client *client_find_by_cancel_key(uint32_t pid, uint32_t key);
const char *client_state_name(enum wp_client_state state);
/* Free clients closed since the last call (runs from the reap event). */
void client_reap(void);
/* Login phase input (startup packet, password exchange): login.c. */
void login_input(struct wp_client *client);
/* SSLRequest accepted: the TLS handshake runs before the next packet (client.c). */
int client_start_tls(struct wp_client *client);
void login_forget_cached_keys(void);

#endif
