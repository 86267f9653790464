/*
 * scram_client — SCRAM-SHA-256 and md5 as a client speaks them to PostgreSQL, for
 * warmpool's backend logins. See scram_client.h.
 */
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "warmpool/scram_client.h"

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

static int hmac(const uint8_t *key, size_t keylen, const void *data, size_t len,
                uint8_t out[SCRAM_KEY_LEN])
{
    unsigned int outlen = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen) || outlen != SCRAM_KEY_LEN)
        return -1;
    return 0;
}

static int sha256(const void *data, size_t len, uint8_t out[SCRAM_KEY_LEN])
{
    unsigned int outlen = 0;
    if (!EVP_Digest(data, len, out, &outlen, EVP_sha256(), NULL) || outlen != SCRAM_KEY_LEN)
        return -1;
    return 0;
}

int scram_client_derive(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
                        struct scram_client_keys *out)
{
    uint8_t salted[SCRAM_KEY_LEN];
    size_t pwlen = strlen(password);
    int rc = -1;
    if (iterations <= 0 || salt_len == 0 || salt_len > sizeof out->salt || pwlen > INT_MAX)
        return -1;
    if (PKCS5_PBKDF2_HMAC(password, (int)pwlen, salt, (int)salt_len, iterations, EVP_sha256(),
                          SCRAM_KEY_LEN, salted) == 1 &&
        hmac(salted, SCRAM_KEY_LEN, "Client Key", 10, out->client_key) == 0 &&
        hmac(salted, SCRAM_KEY_LEN, "Server Key", 10, out->server_key) == 0)
        rc = 0;
    OPENSSL_cleanse(salted, sizeof salted);
    out->iterations = iterations;
    memcpy(out->salt, salt, salt_len);
    out->salt_len = salt_len;
    return rc;
}

void scram_client_keys_from_login(const struct scram_keys *secret,
                                  const uint8_t client_key[SCRAM_KEY_LEN],
                                  struct scram_client_keys *out)
{
    out->iterations = secret->iterations;
    out->salt_len = secret->salt_len <= sizeof out->salt ? secret->salt_len : 0;
    memcpy(out->salt, secret->salt, out->salt_len);
    memcpy(out->client_key, client_key, SCRAM_KEY_LEN);
    memcpy(out->server_key, secret->server_key, SCRAM_KEY_LEN);
}

int scram_client_keys_match(const struct scram_client_keys *keys, const uint8_t *salt,
                            size_t salt_len, int iterations)
{
    return keys->iterations == iterations && keys->salt_len == salt_len &&
           memcmp(keys->salt, salt, salt_len) == 0;
}

int scram_client_first(struct scram_client *sc, const char *user, const char *nonce, char *out,
                       size_t outlen)
{
    uint8_t raw[18];
    memset(sc, 0, sizeof *sc);
    if (nonce) {
        if (strlen(nonce) >= sizeof sc->client_nonce)
            return -1;
        strcpy(sc->client_nonce, nonce);
    } else if (RAND_bytes(raw, sizeof raw) != 1 ||
               scram_b64_encode(raw, sizeof raw, sc->client_nonce, sizeof sc->client_nonce) < 0) {
        return -1;
    }
    int n = snprintf(sc->client_first_bare, sizeof sc->client_first_bare, "n=%s,r=%s", user,
                     sc->client_nonce);
    if (n < 0 || (size_t)n >= sizeof sc->client_first_bare)
        return -1;
    n = snprintf(out, outlen, "n,,%s", sc->client_first_bare);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* "<name>=<value>" up to the next ',' or the end; the value is not copied. */
static int take_attr(const char **p, const char *end, char name, const char **val, size_t *vlen)
{
    if (end - *p < 2 || (*p)[0] != name || (*p)[1] != '=')
        return -1;
    *val = *p + 2;
    const char *comma = memchr(*val, ',', (size_t)(end - *val));
    *vlen = (size_t)((comma ? comma : end) - *val);
    *p = comma ? comma + 1 : end;
    return 0;
}

static int read_nonce(struct scram_client *sc, const char *val, size_t vlen, char *err,
                      size_t errlen)
{
    size_t ours = strlen(sc->client_nonce);
    if (vlen <= ours || strncmp(val, sc->client_nonce, ours) != 0) {
        set_err(err, errlen, "SCRAM server nonce does not extend the client nonce");
        return -1;
    }
    for (size_t i = 0; i < vlen; i++)
        if (val[i] < 0x21 || val[i] > 0x7e) {
            set_err(err, errlen, "SCRAM server nonce has invalid characters");
            return -1;
        }
    int n = snprintf(sc->final_without_proof, sizeof sc->final_without_proof, "c=biws,r=%.*s",
                     (int)vlen, val);
    if (n < 0 || (size_t)n >= sizeof sc->final_without_proof) {
        set_err(err, errlen, "SCRAM server nonce too long");
        return -1;
    }
    return 0;
}

int scram_client_read_server_first(struct scram_client *sc, const char *msg, size_t len, char *err,
                                   size_t errlen)
{
    const char *p = msg, *end = msg + len, *val;
    size_t vlen;
    if (len == 0 || len >= sizeof sc->server_first || memchr(msg, '\0', len)) {
        set_err(err, errlen, "SCRAM server-first-message empty, too long or not text");
        return -1;
    }
    if (take_attr(&p, end, 'r', &val, &vlen) < 0 || read_nonce(sc, val, vlen, err, errlen) < 0) {
        if (err && !*err)
            set_err(err, errlen, "SCRAM server-first-message has no nonce");
        return -1;
    }
    int n;
    if (take_attr(&p, end, 's', &val, &vlen) < 0 ||
        (n = scram_b64_decode(val, vlen, sc->salt, sizeof sc->salt)) <= 0) {
        set_err(err, errlen, "SCRAM server-first-message has no valid salt");
        return -1;
    }
    sc->salt_len = (size_t)n;
    if (take_attr(&p, end, 'i', &val, &vlen) < 0 ||
        scram_parse_positive_int(val, vlen, &sc->iterations) < 0) {
        set_err(err, errlen, "SCRAM server-first-message has no valid iteration count");
        return -1;
    }
    memcpy(sc->server_first, msg, len);
    sc->server_first[len] = '\0';
    return 0;
}

/* HMAC(key, client-first-bare "," server-first "," client-final-without-proof). */
static int sign_auth_message(const struct scram_client *sc, const uint8_t key[SCRAM_KEY_LEN],
                             uint8_t out[SCRAM_KEY_LEN])
{
    char auth[sizeof sc->client_first_bare + sizeof sc->server_first +
              sizeof sc->final_without_proof + 2];
    int n = snprintf(auth, sizeof auth, "%s,%s,%s", sc->client_first_bare, sc->server_first,
                     sc->final_without_proof);
    if (n < 0 || (size_t)n >= sizeof auth)
        return -1;
    return hmac(key, SCRAM_KEY_LEN, auth, (size_t)n, out);
}

int scram_client_final(struct scram_client *sc, const struct scram_client_keys *keys, char *out,
                       size_t outlen)
{
    uint8_t stored[SCRAM_KEY_LEN], proof[SCRAM_KEY_LEN];
    char b64[48];
    int rc = -1;
    if (sha256(keys->client_key, SCRAM_KEY_LEN, stored) == 0 &&
        sign_auth_message(sc, stored, proof) == 0) {
        for (int i = 0; i < SCRAM_KEY_LEN; i++)
            proof[i] ^= keys->client_key[i];
        int n = scram_b64_encode(proof, SCRAM_KEY_LEN, b64, sizeof b64) < 0
                    ? -1
                    : snprintf(out, outlen, "%s,p=%s", sc->final_without_proof, b64);
        rc = n < 0 || (size_t)n >= outlen ? -1 : 0;
    }
    OPENSSL_cleanse(proof, sizeof proof);
    return rc;
}

int scram_client_check_server_final(const struct scram_client *sc,
                                    const struct scram_client_keys *keys, const char *msg,
                                    size_t len, char *err, size_t errlen)
{
    uint8_t expected[SCRAM_KEY_LEN], got[SCRAM_KEY_LEN + 4];
    if (len >= 2 && msg[0] == 'e' && msg[1] == '=') {
        char text[200];
        snprintf(text, sizeof text, "SCRAM error from the server: %.*s",
                 (int)(len - 2 > 100 ? 100 : len - 2), msg + 2);
        set_err(err, errlen, text);
        return -1;
    }
    const char *p = msg, *end = msg + len, *val;
    size_t vlen;
    if (take_attr(&p, end, 'v', &val, &vlen) < 0 ||
        scram_b64_decode(val, vlen, got, sizeof got) != SCRAM_KEY_LEN) {
        set_err(err, errlen, "malformed SCRAM server-final-message");
        return -1;
    }
    if (sign_auth_message(sc, keys->server_key, expected) < 0) {
        set_err(err, errlen, "internal error computing the SCRAM server signature");
        return -1;
    }
    return CRYPTO_memcmp(expected, got, SCRAM_KEY_LEN) == 0;
}

int scram_client_key_from_proof(const uint8_t stored_key[SCRAM_KEY_LEN],
                                const uint8_t proof[SCRAM_KEY_LEN], const char *auth_message,
                                size_t auth_len, uint8_t client_key[SCRAM_KEY_LEN])
{
    uint8_t sig[SCRAM_KEY_LEN], check[SCRAM_KEY_LEN];
    if (hmac(stored_key, SCRAM_KEY_LEN, auth_message, auth_len, sig) < 0)
        return -1;
    for (int i = 0; i < SCRAM_KEY_LEN; i++)
        client_key[i] = proof[i] ^ sig[i];
    if (sha256(client_key, SCRAM_KEY_LEN, check) < 0 ||
        CRYPTO_memcmp(check, stored_key, SCRAM_KEY_LEN) != 0) {
        OPENSSL_cleanse(client_key, SCRAM_KEY_LEN);
        return -1;
    }
    return 0;
}

/* "md5" + hex(md5(a || b)) into out[36]. */
static int md5_hex(const void *a, size_t alen, const void *b, size_t blen, char out[36])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t digest[16];
    unsigned int dlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) && EVP_DigestUpdate(ctx, a, alen) &&
             EVP_DigestUpdate(ctx, b, blen) && EVP_DigestFinal_ex(ctx, digest, &dlen) && dlen == 16;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    memcpy(out, "md5", 3);
    for (int i = 0; i < 16; i++) {
        out[3 + 2 * i] = hex[digest[i] >> 4];
        out[4 + 2 * i] = hex[digest[i] & 15];
    }
    out[35] = '\0';
    return 0;
}

int scram_md5_response_from_secret(const char *md5_secret, const uint8_t salt[4], char out[36])
{
    if (strlen(md5_secret) != 35 || strncmp(md5_secret, "md5", 3) != 0)
        return -1;
    for (int i = 3; i < 35; i++)
        if (!strchr("0123456789abcdef", md5_secret[i]))
            return -1;
    return md5_hex(md5_secret + 3, 32, salt, 4, out);
}

int scram_md5_response_from_password(const char *password, const char *user, const uint8_t salt[4],
                                     char out[36])
{
    char inner[36];
    int rc = md5_hex(password, strlen(password), user, strlen(user), inner) == 0
                 ? scram_md5_response_from_secret(inner, salt, out)
                 : -1;
    OPENSSL_cleanse(inner, sizeof inner);
    return rc;
}

void scram_client_keys_wipe(struct scram_client_keys *keys)
{
    OPENSSL_cleanse(keys, sizeof *keys);
}

void scram_client_wipe(struct scram_client *sc)
{
    OPENSSL_cleanse(sc, sizeof *sc);
}
