/*
 * server_login — warmpool's own backend login on the event loop: the socket (TCP to a
 * numeric address, or a unix socket directory), SSLRequest and the TLS handshake for
 * sslmode prefer/require, then backend_login.c's protocol until ReadyForQuery. Used
 * instead of libpq when the pool's backends must log in without a plaintext password
 * (SCRAM pass-through, an md5 secret) or with one (its SCRAM keys are derived once and
 * reused), for [databases] entries whose connection keys it supports; libpq serves the
 * others (server.c decides).
 */
#ifndef WARMPOOL_SERVER_LOGIN_H
#define WARMPOOL_SERVER_LOGIN_H

#include <stdint.h>
#include <sys/socket.h>

struct wp_config;
struct wp_db_config;
struct wp_pool;
struct wp_server;

/* NULL when the entry's connection keys, and the server_tls_* keys of cfg (the
   configuration the entry comes from) that apply to it, are all ones this login
   supports; otherwise why not (for the log). */
const char *server_login_unsupported(const struct wp_config *cfg, const struct wp_db_config *db);
/* Whether the pool has a way to log in without libpq (a password or keys). */
int server_login_has_secret(const struct wp_pool *pool);
/* Start the login of s; on failure it has called server_connect_error. 0 or -1. */
int server_login_start(struct wp_server *s);
/* The server closes: Terminate, then the TLS session and the socket; key material wiped. */
void server_login_close(struct wp_server *s);

/* Where and with what to send a CancelRequest for a backend this login opened. */
struct server_cancel_target {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint32_t pid, key;
};
/* 0 and *out filled, or -1 when s was not opened here or has no cancel key. */
int server_login_cancel_target(const struct wp_server *s, struct server_cancel_target *out);
/* Blocking (run on the workpool): connect, send the CancelRequest, wait for the close.
   0, or -1 with err. */
int server_login_send_cancel(const struct server_cancel_target *t, char *err, size_t errlen);

#endif
