/*
 * scram_client — the client side of SCRAM-SHA-256 (RFC 5802 / 7677) and of md5, for
 * warmpool's own backend logins (backend_login.c).
 *
 * Keys come from a plaintext password (PBKDF2, once per password, salt and iteration
 * count: the result is cached by the caller) or from a client's own SCRAM login
 * against a stored secret (pass-through: the ClientKey recovered from its proof, the
 * ServerKey from the secret). Either way the exchange needs only ClientKey and
 * ServerKey, and the server's final signature is checked with the ServerKey.
 * Pure functions over plain data; nothing here logs.
 */
#ifndef WARMPOOL_SCRAM_CLIENT_H
#define WARMPOOL_SCRAM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "warmpool/scram.h"

/* What a backend SCRAM login needs, for one salt and iteration count. */
struct scram_client_keys {
    int iterations;
    uint8_t salt[64];
    size_t salt_len;
    uint8_t client_key[SCRAM_KEY_LEN];
    uint8_t server_key[SCRAM_KEY_LEN];
};

/* One exchange in progress. */
struct scram_client {
    char client_nonce[32];
    char client_first_bare[160];
    char server_first[512];
    char final_without_proof[320];
    int iterations;   /* from server-first */
    uint8_t salt[64]; /* from server-first */
    size_t salt_len;
};

/* Derive the keys from a password (SaltedPassword never leaves the call). 0 or -1. */
int scram_client_derive(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
                        struct scram_client_keys *out);
/* The keys a secret's holder logs in with: ClientKey from a proven login, ServerKey, salt
   and iteration count from the secret. */
void scram_client_keys_from_login(const struct scram_keys *secret,
                                  const uint8_t client_key[SCRAM_KEY_LEN],
                                  struct scram_client_keys *out);
/* Same salt and iteration count: these keys serve an exchange with them. */
int scram_client_keys_match(const struct scram_client_keys *keys, const uint8_t *salt,
                            size_t salt_len, int iterations);

/*
 * client-first-message into out ("n,,n=<user>,r=<nonce>"); nonce NULL = random.
 * PostgreSQL ignores the user name here (the startup packet's counts): pass "".
 * 0, or -1 if it does not fit.
 */
int scram_client_first(struct scram_client *sc, const char *user, const char *nonce, char *out,
                       size_t outlen);
/*
 * Read server-first-message: nonce (must extend ours), salt, iteration count.
 * 0, or -1 with the reason in err.
 */
int scram_client_read_server_first(struct scram_client *sc, const char *msg, size_t len, char *err,
                                   size_t errlen);
/* client-final-message with the proof for keys into out. 0 or -1. */
int scram_client_final(struct scram_client *sc, const struct scram_client_keys *keys, char *out,
                       size_t outlen);
/*
 * Check server-final-message ("v=<signature>") against the ServerKey: 1 when the server
 * proved it knows the secret, 0 when not, -1 when malformed or an error ("e=…": err).
 */
int scram_client_check_server_final(const struct scram_client *sc,
                                    const struct scram_client_keys *keys, const char *msg,
                                    size_t len, char *err, size_t errlen);
/*
 * ClientKey from a proof and the StoredKey and AuthMessage parts it was made for; 0, or
 * -1 when H(ClientKey) is not the StoredKey (a wrong proof) or on error.
 */
int scram_client_key_from_proof(const uint8_t stored_key[SCRAM_KEY_LEN],
                                const uint8_t proof[SCRAM_KEY_LEN], const char *auth_message,
                                size_t auth_len, uint8_t client_key[SCRAM_KEY_LEN]);

/*
 * The answer to AuthenticationMD5Password: "md5" + hex(md5(hex(md5(password || user)) ||
 * salt)), 35 characters and a NUL. From a plaintext password, or from a stored md5 secret
 * ("md5" + 32 hex digits), which stands for the inner hash. 0 or -1.
 */
int scram_md5_response_from_password(const char *password, const char *user, const uint8_t salt[4],
                                     char out[36]);
int scram_md5_response_from_secret(const char *md5_secret, const uint8_t salt[4], char out[36]);

void scram_client_keys_wipe(struct scram_client_keys *keys);
void scram_client_wipe(struct scram_client *sc);

#endif
