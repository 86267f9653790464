/*
 * scram — server side of SCRAM-SHA-256 (RFC 5802 / 7677) as PostgreSQL speaks it.
 *
 * The pooler sends AuthenticationSASL listing "SCRAM-SHA-256", then feeds the
 * client's SASLInitialResponse and SASLResponse bodies through these functions.
 * Channel binding (-PLUS) is not offered; a client asking for it ("p=") is refused.
 */
#ifndef WARMPOOL_SCRAM_H
#define WARMPOOL_SCRAM_H

#include <stddef.h>
#include <stdint.h>

#define SCRAM_KEY_LEN 32

struct scram_keys {
    int iterations;
    uint8_t salt[64];
    size_t salt_len;
    uint8_t stored_key[SCRAM_KEY_LEN];
    uint8_t server_key[SCRAM_KEY_LEN];
};

struct scram_state {
    struct scram_keys keys;
    char client_nonce[128];
    char server_nonce[64]; /* base64 of 18 random bytes */
    char client_first_bare[512];
    char server_first[512];
    int step;               /* 0 = expect client-first, 1 = expect client-final, 2 = done */
    char cbind_flag;        /* 'n' or 'y' from the gs2 header, checked again in c= */
    int fixed_server_nonce; /* set by scram_set_test_server_nonce */
    /* The client's ClientKey, recovered from its proof once the proof matched: with the
       secret's ServerKey it logs in to the backend as that user (pass-through). */
    uint8_t client_key[SCRAM_KEY_LEN];
    int have_client_key;
};

/* Longest client message accepted; anything longer is refused before parsing. */
#define SCRAM_MAX_CLIENT_MSG 1024
/* Output buffer sizes that always suffice for the two server messages. */
#define SCRAM_SERVER_FIRST_MAX 512
#define SCRAM_SERVER_FINAL_MAX 64

/* Parse "SCRAM-SHA-256$iter:salt$StoredKey:ServerKey". 0 or -1. */
int scram_parse_secret(const char *secret, struct scram_keys *out);
/* Derive keys from a plaintext password with a given salt and iteration count (SASLprep:
 * passwords that are not plain ASCII are used as-is, as PostgreSQL does when prep fails). */
int scram_keys_from_password(const char *password, const uint8_t *salt, size_t salt_len,
                             int iterations, struct scram_keys *out);
/* Build a secret string like PostgreSQL's (for tests and tooling). */
int scram_build_secret(const struct scram_keys *keys, char *out, size_t outlen);

/*
 * client-first-message (the SASLInitialResponse data) → server-first-message into
 * out (NUL-terminated). Returns 0, or -1 with a reason in err (sent to the client as 08P01/28P01).
 */
int scram_handle_client_first(struct scram_state *st, const struct scram_keys *keys,
                              const char *msg, size_t len, char *out, size_t outlen, char *err,
                              size_t errlen);

/*
 * client-final-message → server-final-message ("v=...") into out. Returns 1 when the
 * proof matches, 0 when it does not (out unused), -1 on a malformed message (err set).
 */
int scram_handle_client_final(struct scram_state *st, const char *msg, size_t len, char *out,
                              size_t outlen, char *err, size_t errlen);

/*
 * Wipe a state (it holds key material) and make it ready for a new exchange.
 * A zero-filled struct is also a valid fresh state.
 */
void scram_state_clear(struct scram_state *st);

/*
 * Keys for a user that does not exist (or cannot use SCRAM): the salt is derived from the
 * user name and a per-process random secret, so repeated probes see a stable salt, and the
 * StoredKey is random, so the exchange runs to the end and fails like a wrong password
 * without revealing whether the user exists. 0 or -1.
 */
int scram_mock_keys(const char *user, struct scram_keys *out);

/* Tests only: use `nonce` (printable ASCII, no ',', < 64 chars) instead of a random one. */
int scram_set_test_server_nonce(struct scram_state *st, const char *nonce);

/*
 * Client side, for tests: the base64 ClientProof for an exchange (salt and iteration count
 * are read from server_first). 0, or -1 if server_first is malformed or len is too small
 * (45 bytes suffice).
 */
int scram_client_proof(const char *password, const char *client_first_bare,
                       const char *server_first, const char *client_final_without_proof,
                       char *proof_b64, size_t len);

/* Base64 helpers (standard alphabet, padded). Return output length or -1. */
/* A decimal count in s[0..len): 1..INT_MAX, digits only (SCRAM's i=). 0, or -1. */
int scram_parse_positive_int(const char *s, size_t len, int *out);
int scram_b64_encode(const uint8_t *in, size_t len, char *out, size_t outlen);
int scram_b64_decode(const char *in, size_t len, uint8_t *out, size_t outlen);

#endif
