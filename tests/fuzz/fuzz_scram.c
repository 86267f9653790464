/*
 * fuzz_scram — libFuzzer target for the server side of SCRAM-SHA-256 (scram.c, with
 * the keys coming through auth.c as login.c gets them).
 *
 * Input: one flag byte, a 2-byte big-endian length N, then N bytes of client-first-
 * message (the SASLInitialResponse data) and the rest as client-final-message.
 *   flags & 3   keys: 0/1 = the fixed user's SCRAM secret through auth_scram_keys,
 *               2 = scram_mock_keys (unknown user), 3 = keys kept inside the state
 *   flags & 4   fixed server nonce "SERVERNONCE" (so the input can echo it), else random
 *   flags & 8   sign: append ",p=<the correct proof>" to client-final, as a real
 *               client with the right password would
 *   flags & 16  also parse the client-final bytes as a stored SCRAM secret
 *
 * Checked, abort() on violation:
 *   - client-first is accepted exactly when a small reference parser of the accepted
 *     grammar ("n,,"/"y,," then "n=<user>,r=<printable nonce>", nothing after) says so;
 *   - server-first is "r=<client nonce><server nonce>,s=<salt>,i=<iterations>", fits
 *     SCRAM_SERVER_FIRST_MAX, and its client nonce is the one the client sent;
 *   - client-final is accepted (1) only when signed with the right password, and then
 *     server-final is "v=" + base64(HMAC(ServerKey, AuthMessage)) computed here;
 *     unsigned or mock-key exchanges never succeed; errors come with a message;
 *   - a secret that parses rebuilds to the same keys.
 * Every message is passed as an exact-size heap copy, so ASan sees any over-read.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "warmpool/auth.h"
#include "warmpool/scram.h"

#define PASSWORD "pencil"
#define FIXED_NONCE "SERVERNONCE"

static char secret_text[256];
static struct wp_user_secret user_secret = {"alice", secret_text, WP_SECRET_SCRAM};
static struct scram_keys real_keys;

static void init_keys(void)
{
    static const uint8_t salt[16] = "fuzz-salt-16byte";
    if (secret_text[0])
        return;
    /* Few iterations keep the exchange fast; the code path is the same. */
    if (scram_keys_from_password(PASSWORD, salt, sizeof salt, 2, &real_keys) < 0 ||
        scram_build_secret(&real_keys, secret_text, sizeof secret_text) < 0 ||
        auth_secret_kind(secret_text) != WP_SECRET_SCRAM)
        abort();
}

static char *copy_of(const uint8_t *data, size_t n)
{
    char *copy = malloc(n ? n : 1);
    if (!copy)
        abort();
    memcpy(copy, data, n);
    return copy;
}

/* A NUL-terminated copy of n bytes. */
static char *string_of(const uint8_t *data, size_t n)
{
    char *copy = malloc(n + 1);
    if (!copy)
        abort();
    memcpy(copy, data, n);
    copy[n] = '\0';
    return copy;
}

static int printable_nonce(const uint8_t *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
            return 0;
    return 1;
}

/* The grammar scram.c accepts, written with indexes. Returns the nonce span or 0. */
static int ref_client_first(const uint8_t *m, size_t n, size_t *nonce_off, size_t *nonce_len)
{
    if (n == 0 || n > SCRAM_MAX_CLIENT_MSG || memchr(m, 0, n))
        return 0;
    if (n < 3 || (m[0] != 'n' && m[0] != 'y') || m[1] != ',' || m[2] != ',')
        return 0;
    size_t i = 3, bare = 3;
    if (n - i < 2 || m[i] != 'n' || m[i + 1] != '=')
        return 0;
    i += 2;
    while (i < n && m[i] != ',')
        i++;
    if (n - i < 3 || m[i] != ',' || m[i + 1] != 'r' || m[i + 2] != '=')
        return 0;
    i += 3;
    if (!printable_nonce(m + i, n - i) || n - i >= 128 || n - bare >= 512)
        return 0;
    *nonce_off = i;
    *nonce_len = n - i;
    return 1;
}

static void check_server_first(const struct scram_state *st, const char *out, const uint8_t *nonce,
                               size_t nonce_len)
{
    size_t len = strnlen(out, SCRAM_SERVER_FIRST_MAX);
    if (len == SCRAM_SERVER_FIRST_MAX || strncmp(out, "r=", 2) != 0)
        abort();
    if (nonce_len != strlen(st->client_nonce) || memcmp(out + 2, nonce, nonce_len) != 0 ||
        memcmp(st->client_nonce, nonce, nonce_len) != 0)
        abort();
    const char *snonce = out + 2 + nonce_len;
    size_t sn = strlen(st->server_nonce);
    if (sn == 0 || strncmp(snonce, st->server_nonce, sn) != 0 || strncmp(snonce + sn, ",s=", 3))
        abort();
    if (!strstr(snonce, ",i=") || strcmp(out, st->server_first) != 0)
        abort();
}

/* base64(HMAC(ServerKey, client-first-bare "," server-first "," final-without-proof)). */
static void expected_server_final(const struct scram_keys *keys, const struct scram_state *st,
                                  const char *final, size_t final_len, char *out, size_t outlen)
{
    uint8_t sig[32];
    size_t siglen = 0;
    size_t n = strlen(st->client_first_bare) + strlen(st->server_first) + final_len + 3;
    char *auth = malloc(n);
    if (!auth)
        abort();
    int k = snprintf(auth, n, "%s,%s,%.*s", st->client_first_bare, st->server_first, (int)final_len,
                     final);
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, keys->server_key, 32, (uint8_t *)auth,
                   (size_t)k, sig, sizeof sig, &siglen) ||
        siglen != 32)
        abort();
    free(auth);
    memcpy(out, "v=", 2);
    if (scram_b64_encode(sig, 32, out + 2, outlen - 2) != 44)
        abort();
}

static void check_error(int rc, const char *err)
{
    if (rc < 0 && (!memchr(err, 0, 256) || err[0] == '\0'))
        abort();
}

static void run_final(struct scram_state *st, const struct scram_keys *keys, int signed_final,
                      int mock, const uint8_t *data, size_t n)
{
    char out[SCRAM_SERVER_FINAL_MAX], err[256], expect[64];
    char *msg = copy_of(data, n);
    size_t len = n;
    if (signed_final) {
        char proof[64], *bare = string_of(data, n);
        if (memchr(data, 0, n) ||
            scram_client_proof(PASSWORD, st->client_first_bare, st->server_first, bare, proof,
                               sizeof proof) < 0)
            signed_final = 0;
        else {
            free(msg);
            len = n + 3 + strlen(proof);
            msg = malloc(len);
            if (!msg)
                abort();
            memcpy(msg, data, n);
            memcpy(msg + n, ",p=", 3);
            memcpy(msg + n + 3, proof, strlen(proof));
        }
        free(bare);
    }
    memset(err, 'x', sizeof err);
    int rc = scram_handle_client_final(st, msg, len, out, sizeof out, err, sizeof err);
    check_error(rc, err);
    if (st->step != 2)
        abort();
    if (rc == 1) {
        if (!signed_final || mock)
            abort(); /* a proof nobody computed was accepted */
        expected_server_final(keys, st, msg, n, expect, sizeof expect);
        if (strcmp(out, expect) != 0)
            abort();
    }
    /* The exact grammar a signing client sends must be accepted. */
    if (signed_final && !mock && rc != 1) {
        char want[256];
        int k = snprintf(want, sizeof want, "c=%s,r=%s%s", st->cbind_flag == 'y' ? "eSws" : "biws",
                         st->client_nonce, st->server_nonce);
        if ((size_t)k == n && memcmp(want, data, n) == 0 && len <= SCRAM_MAX_CLIENT_MSG)
            abort();
    }
    /* The exchange is over: another final is refused. */
    if (scram_handle_client_final(st, msg, len, out, sizeof out, err, sizeof err) != -1)
        abort();
    free(msg);
}

static void check_secret(const uint8_t *data, size_t n)
{
    char *text = string_of(data, n);
    struct scram_keys k1, k2;
    char rebuilt[512];
    if (scram_parse_secret(text, &k1) == 0) {
        if (scram_build_secret(&k1, rebuilt, sizeof rebuilt) < 0 ||
            scram_parse_secret(rebuilt, &k2) < 0 || k1.iterations != k2.iterations ||
            k1.salt_len != k2.salt_len || memcmp(k1.salt, k2.salt, k1.salt_len) ||
            memcmp(k1.stored_key, k2.stored_key, 32) || memcmp(k1.server_key, k2.server_key, 32))
            abort();
        if (auth_secret_kind(text) != WP_SECRET_SCRAM)
            abort();
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_keys();
    if (size < 3)
        return 0;
    uint8_t flags = data[0];
    size_t first_len = (size_t)data[1] << 8 | data[2];
    data += 3;
    size -= 3;
    if (first_len > size)
        first_len = size;
    const uint8_t *final = data + first_len;
    size_t final_len = size - first_len;
    if (flags & 16)
        check_secret(final, final_len);

    struct scram_state *st = calloc(1, sizeof *st);
    struct scram_keys keys;
    int mock = (flags & 3) == 2;
    if (!st)
        abort();
    if (mock) {
        if (scram_mock_keys("alice", &keys) < 0)
            abort();
    } else if (auth_scram_keys(&user_secret, &keys) < 0 ||
               memcmp(keys.stored_key, real_keys.stored_key, 32) != 0) {
        abort();
    }
    const struct scram_keys *use = &keys;
    if ((flags & 3) == 3) {
        st->keys = keys; /* login.c passes &c->scram->keys */
        use = &st->keys;
    }
    if ((flags & 4) && scram_set_test_server_nonce(st, FIXED_NONCE) < 0)
        abort();

    char out[SCRAM_SERVER_FIRST_MAX], err[256];
    char *first = copy_of(data, first_len);
    size_t nonce_off = 0, nonce_len = 0;
    int want = ref_client_first(data, first_len, &nonce_off, &nonce_len);
    memset(err, 'x', sizeof err);
    int rc = scram_handle_client_first(st, use, first, first_len, out, sizeof out, err, sizeof err);
    check_error(rc, err);
    if ((rc == 0) != want)
        abort();
    if (rc == 0) {
        check_server_first(st, out, data + nonce_off, nonce_len);
        run_final(st, &keys, (flags & 8) && !mock, mock, final, final_len);
    } else if (st->step != 2) {
        abort();
    }
    free(first);
    scram_state_clear(st);
    free(st);
    return 0;
}
