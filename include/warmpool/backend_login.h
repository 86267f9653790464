/*
 * backend_login — the protocol of warmpool's own backend login, without sockets: the
 * StartupMessage, then one backend message at a time (authentication requests,
 * ParameterStatus, BackendKeyData, ErrorResponse, ReadyForQuery) and the answers to
 * send. server_login.c drives it on a socket it opened; unit tests and the fuzzer
 * drive it with bytes.
 *
 * Authentication: AuthenticationOk (trust), cleartext and md5 with a plaintext
 * password, md5 with the user's stored md5 secret, and SCRAM-SHA-256 with keys
 * (passed through from a client's login, or derived once from the password and cached
 * by the caller). Channel binding is not offered: a server that allows only
 * SCRAM-SHA-256-PLUS is refused with a clear error. The server's SCRAM signature is
 * checked; one that cannot prove it knows the secret is refused.
 */
#ifndef WARMPOOL_BACKEND_LOGIN_H
#define WARMPOOL_BACKEND_LOGIN_H

#include <stddef.h>
#include <stdint.h>

#include "warmpool/buf.h"
#include "warmpool/params.h"
#include "warmpool/scram_client.h"

/* Longest backend message accepted during login (an ErrorResponse with a long text). */
#define BACKEND_LOGIN_MAX_MESSAGE 65536

/* Key derivation runs on the event loop: a server asking for more PBKDF2 iterations
   than this (PostgreSQL's default is 4096) is refused rather than let it stall every
   connection. Passed-through keys need no derivation and have no limit. */
#define BACKEND_LOGIN_MAX_ITERATIONS 100000

enum backend_login_result { BLOGIN_MORE = 0, BLOGIN_READY = 1, BLOGIN_FAILED = -1 };

struct backend_login {
    /* inputs, owned by the caller */
    const char *user;
    const char *password;                 /* plaintext, or NULL */
    const char *md5_secret;               /* "md5…" of the user, or NULL */
    const struct scram_client_keys *keys; /* cached or passed-through keys, or NULL */
    int keys_passed;                      /* keys came from a client's login */
    struct wp_params *params;             /* ParameterStatus values go here */

    /* outputs */
    uint32_t backend_pid, cancel_key;
    int have_cancel_key;
    int keys_reused; /* the SCRAM exchange used `keys` */
    int derived_new; /* `derived` holds keys made from the password */
    struct scram_client_keys derived;
    char sqlstate[6];
    char error[256];

    /* progress */
    struct scram_client scram;
    int scram_step; /* 0 none, 1 first sent, 2 final sent, 3 server verified */
    int authenticated;
};

/* StartupMessage (protocol 3.0) with the NULL-terminated name/value pairs. 0 or -1. */
int backend_login_startup(struct wp_buf *out, const char *const *names, const char *const *values);
/*
 * One whole backend message (type, body of body_len bytes). Answers go to `reply`.
 * BLOGIN_READY at ReadyForQuery after a successful login; BLOGIN_FAILED with sqlstate
 * and error set (a server's ErrorResponse keeps its SQLSTATE and message).
 */
enum backend_login_result backend_login_message(struct backend_login *bl, uint8_t type,
                                                const uint8_t *body, size_t body_len,
                                                struct wp_buf *reply);
/* Wipe key material (derived keys, SCRAM state). */
void backend_login_wipe(struct backend_login *bl);

#endif
