/*
 * scram — server side of SCRAM-SHA-256 (RFC 5802 / 7677) as PostgreSQL speaks it.
 *
 * Flow: the client module zeroes a struct scram_state (or calls scram_state_clear), gets
 * keys for the user (scram_parse_secret, auth_scram_keys or scram_mock_keys), then
 *   SASLInitialResponse data → scram_handle_client_first → AuthenticationSASLContinue
 *   SASLResponse data        → scram_handle_client_final → AuthenticationSASLFinal + Ok
 *
 * Every client message comes from an unauthenticated peer, so parsing works on (ptr, len)
 * spans, refuses anything longer than SCRAM_MAX_CLIENT_MSG up front, and never builds a
 * string it has not sized first. The AuthMessage is never concatenated at all: it is fed
 * to HMAC in pieces.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "warmpool/scram.h"

#define SCRAM_PREFIX "SCRAM-SHA-256$"
#define SCRAM_NONCE_RAW_LEN 18 /* what PostgreSQL uses: 24 base64 characters */
#define SCRAM_MOCK_SALT_LEN 16 /* same length as a real salt, so mocks look real */
#define SCRAM_MOCK_ITERATIONS 4096

/* A read cursor over bytes that are not NUL-terminated. */
struct cursor {
    const char *p;
    const char *end;
};

/* One piece of an HMAC input. */
struct span {
    const void *data;
    size_t len;
};

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

static int sha256(const void *data, size_t len, uint8_t out[SCRAM_KEY_LEN])
{
    unsigned int outlen = 0;
    if (!EVP_Digest(data, len, out, &outlen, EVP_sha256(), NULL) || outlen != SCRAM_KEY_LEN)
        return -1;
    return 0;
}

/* HMAC-SHA-256 over the concatenation of parts, without building it. */
static int hmac_sha256(const uint8_t *key, size_t keylen, const struct span *parts, int nparts,
                       uint8_t out[SCRAM_KEY_LEN])
{
    int rc = -1;
    size_t outlen = 0;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };

    if (!ctx || !EVP_MAC_init(ctx, key, keylen, params))
        goto done;
    for (int i = 0; i < nparts; i++)
        if (!EVP_MAC_update(ctx, parts[i].data, parts[i].len))
            goto done;
    if (EVP_MAC_final(ctx, out, &outlen, SCRAM_KEY_LEN) && outlen == SCRAM_KEY_LEN)
        rc = 0;
done:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

static int hmac_str(const uint8_t key[SCRAM_KEY_LEN], const char *s, uint8_t out[SCRAM_KEY_LEN])
{
    struct span part = {s, strlen(s)};
    return hmac_sha256(key, SCRAM_KEY_LEN, &part, 1, out);
}

/* SaltedPassword, then ClientKey from it; the intermediate never outlives the call. */
static int derive_client_key(const char *password, const uint8_t *salt, size_t salt_len,
                             int iterations, uint8_t client_key[SCRAM_KEY_LEN],
                             uint8_t server_key[SCRAM_KEY_LEN])
{
    uint8_t salted[SCRAM_KEY_LEN];
    int rc = -1;
    size_t pwlen = strlen(password);

    if (iterations <= 0 || salt_len == 0 || salt_len > INT_MAX || pwlen > INT_MAX)
        return -1;
    if (PKCS5_PBKDF2_HMAC(password, (int)pwlen, salt, (int)salt_len, iterations, EVP_sha256(),
                          SCRAM_KEY_LEN, salted) == 1 &&
        hmac_str(salted, "Client Key", client_key) == 0 &&
        (!server_key || hmac_str(salted, "Server Key", server_key) == 0))
        rc = 0;
    OPENSSL_cleanse(salted, sizeof(salted));
    return rc;
}

/* ---- base64 ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int scram_b64_encode(const uint8_t *in, size_t len, char *out, size_t outlen)
{
    if (len > (size_t)INT_MAX / 4 * 3 - 3)
        return -1;
    size_t need = (len + 2) / 3 * 4;
    if (!out || outlen < need + 1)
        return -1;

    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return (int)o;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * Strict decoder: whole quartets only, padding only at the very end, no whitespace.
 * Anything else is a malformed message, not something to be lenient about.
 */
int scram_b64_decode(const char *in, size_t len, uint8_t *out, size_t outlen)
{
    if (len % 4 != 0 || len > (size_t)INT_MAX)
        return -1;

    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int last = i + 4 == len;
        int pad = 0;
        if (last && in[i + 3] == '=')
            pad = in[i + 2] == '=' ? 2 : 1;

        uint32_t v = 0;
        for (int k = 0; k < 4; k++) {
            int d = k >= 4 - pad ? 0 : b64_value(in[i + k]);
            if (d < 0)
                return -1;
            v = v << 6 | (uint32_t)d;
        }
        /* Bits under the padding must be zero, or two strings would decode alike. */
        if ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff)))
            return -1;
        size_t n = 3 - (size_t)pad;
        if (outlen - o < n)
            return -1;
        out[o++] = (uint8_t)(v >> 16);
        if (n > 1)
            out[o++] = (uint8_t)(v >> 8);
        if (n > 2)
            out[o++] = (uint8_t)v;
    }
    return (int)o;
}

/* ---- cursor parsing ---- */

static int cursor_take(struct cursor *c, char ch)
{
    if (c->p >= c->end || *c->p != ch)
        return -1;
    c->p++;
    return 0;
}

static int cursor_peek(const struct cursor *c)
{
    return c->p < c->end ? (unsigned char)*c->p : -1;
}

/* Expect `<name>=` and return the value up to the next ',' (or the end). */
static int cursor_attr(struct cursor *c, char name, const char **val, size_t *vlen)
{
    if (cursor_take(c, name) < 0 || cursor_take(c, '=') < 0)
        return -1;
    const char *start = c->p;
    while (c->p < c->end && *c->p != ',')
        c->p++;
    *val = start;
    *vlen = (size_t)(c->p - start);
    return 0;
}

/* Like cursor_attr, but the value runs to `stop` (for the secret's '$' and ':'). */
static void cursor_field(struct cursor *c, char stop, const char **val, size_t *vlen)
{
    const char *start = c->p;
    while (c->p < c->end && *c->p != stop)
        c->p++;
    *val = start;
    *vlen = (size_t)(c->p - start);
}

int scram_parse_positive_int(const char *s, size_t len, int *out)
{
    long v = 0;
    if (len == 0 || len > 10)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v <= 0 || v > INT_MAX)
        return -1;
    *out = (int)v;
    return 0;
}

/* RFC 5802 "printable": 0x21..0x7e except ','. */
static int is_printable_nonce(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
            return 0;
    return 1;
}

/* ---- secrets and keys ---- */

int scram_parse_secret(const char *secret, struct scram_keys *out)
{
    size_t plen = strlen(SCRAM_PREFIX);
    const char *iter, *salt, *stored, *server;
    size_t iter_len, salt_len, stored_len, server_len;
    struct scram_keys k;

    if (!secret || strncmp(secret, SCRAM_PREFIX, plen) != 0)
        return -1;
    memset(&k, 0, sizeof(k));
    struct cursor c = {secret + plen, secret + strlen(secret)};
    cursor_field(&c, ':', &iter, &iter_len);
    if (cursor_take(&c, ':') < 0)
        return -1;
    cursor_field(&c, '$', &salt, &salt_len);
    if (cursor_take(&c, '$') < 0)
        return -1;
    cursor_field(&c, ':', &stored, &stored_len);
    if (cursor_take(&c, ':') < 0)
        return -1;
    cursor_field(&c, '\0', &server, &server_len);

    int n;
    if (scram_parse_positive_int(iter, iter_len, &k.iterations) < 0)
        return -1;
    n = scram_b64_decode(salt, salt_len, k.salt, sizeof(k.salt));
    if (n <= 0)
        return -1;
    k.salt_len = (size_t)n;
    if (scram_b64_decode(stored, stored_len, k.stored_key, SCRAM_KEY_LEN) != SCRAM_KEY_LEN ||
        scram_b64_decode(server, server_len, k.server_key, SCRAM_KEY_LEN) != SCRAM_KEY_LEN)
        return -1;
    *out = k;
    OPENSSL_cleanse(&k, sizeof(k));
    return 0;
}

int scram_keys_from_password(const char *password, const uint8_t *salt, size_t salt_len,
                             int iterations, struct scram_keys *out)
{
    uint8_t client_key[SCRAM_KEY_LEN];
    int rc = -1;

    if (!password || !salt || salt_len > sizeof(out->salt))
        return -1;
    if (derive_client_key(password, salt, salt_len, iterations, client_key, out->server_key) == 0 &&
        sha256(client_key, SCRAM_KEY_LEN, out->stored_key) == 0) {
        memcpy(out->salt, salt, salt_len);
        out->salt_len = salt_len;
        out->iterations = iterations;
        rc = 0;
    }
    OPENSSL_cleanse(client_key, sizeof(client_key));
    return rc;
}

int scram_build_secret(const struct scram_keys *keys, char *out, size_t outlen)
{
    char salt[92], stored[48], server[48];

    if (keys->iterations <= 0 || keys->salt_len == 0 || keys->salt_len > sizeof(keys->salt) ||
        scram_b64_encode(keys->salt, keys->salt_len, salt, sizeof(salt)) < 0 ||
        scram_b64_encode(keys->stored_key, SCRAM_KEY_LEN, stored, sizeof(stored)) < 0 ||
        scram_b64_encode(keys->server_key, SCRAM_KEY_LEN, server, sizeof(server)) < 0)
        return -1;
    int n =
        snprintf(out, outlen, SCRAM_PREFIX "%d:%s$%s:%s", keys->iterations, salt, stored, server);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* One random secret per process, so mock salts are stable across probes but unguessable. */
static uint8_t mock_secret[SCRAM_KEY_LEN];
static int mock_secret_ok;
static pthread_once_t mock_once = PTHREAD_ONCE_INIT;

static void init_mock_secret(void)
{
    mock_secret_ok = RAND_bytes(mock_secret, sizeof(mock_secret)) == 1;
}

int scram_mock_keys(const char *user, struct scram_keys *out)
{
    uint8_t digest[SCRAM_KEY_LEN];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok;

    pthread_once(&mock_once, init_mock_secret);
    ok = md && mock_secret_ok && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
         EVP_DigestUpdate(md, user ? user : "", user ? strlen(user) : 0) &&
         EVP_DigestUpdate(md, mock_secret, sizeof(mock_secret)) &&
         EVP_DigestFinal_ex(md, digest, NULL);
    EVP_MD_CTX_free(md);
    if (!ok)
        return -1;

    memset(out, 0, sizeof(*out));
    out->iterations = SCRAM_MOCK_ITERATIONS;
    memcpy(out->salt, digest, SCRAM_MOCK_SALT_LEN);
    out->salt_len = SCRAM_MOCK_SALT_LEN;
    /* A random StoredKey means no proof can ever match. */
    if (RAND_bytes(out->stored_key, SCRAM_KEY_LEN) != 1 ||
        RAND_bytes(out->server_key, SCRAM_KEY_LEN) != 1)
        return -1;
    return 0;
}

/* ---- exchange ---- */

void scram_state_clear(struct scram_state *st)
{
    OPENSSL_cleanse(st, sizeof(*st));
}

int scram_set_test_server_nonce(struct scram_state *st, const char *nonce)
{
    size_t n = strlen(nonce);
    if (n >= sizeof(st->server_nonce) || !is_printable_nonce(nonce, n))
        return -1;
    memcpy(st->server_nonce, nonce, n + 1);
    st->fixed_server_nonce = 1;
    return 0;
}

static int make_server_nonce(struct scram_state *st)
{
    uint8_t raw[SCRAM_NONCE_RAW_LEN];

    if (st->fixed_server_nonce)
        return 0;
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    return scram_b64_encode(raw, sizeof(raw), st->server_nonce, sizeof(st->server_nonce)) < 0 ? -1
                                                                                              : 0;
}

/* Size, NUL and state checks shared by both client messages. */
static int check_client_msg(const struct scram_state *st, int step, const char *msg, size_t len,
                            char *err, size_t errlen)
{
    if (st->step != step) {
        set_err(err, errlen, "unexpected SCRAM message");
        return -1;
    }
    if (!msg || len == 0 || len > SCRAM_MAX_CLIENT_MSG) {
        set_err(err, errlen, "malformed SCRAM message (empty or too long)");
        return -1;
    }
    if (memchr(msg, '\0', len)) {
        set_err(err, errlen, "malformed SCRAM message (contains a NUL byte)");
        return -1;
    }
    return 0;
}

/* gs2-header: "n,," or "y,,". 'p' (channel binding) and authzid are refused. */
static int parse_gs2_header(struct scram_state *st, struct cursor *c, char *err, size_t errlen)
{
    int flag = cursor_peek(c);

    if (flag == 'p') {
        set_err(err, errlen, "SCRAM channel binding is not supported");
        return -1;
    }
    if (flag != 'n' && flag != 'y') {
        set_err(err, errlen, "malformed SCRAM message (bad channel binding flag)");
        return -1;
    }
    c->p++;
    if (cursor_take(c, ',') < 0) {
        set_err(err, errlen, "malformed SCRAM message (expected ',' after flag)");
        return -1;
    }
    if (cursor_peek(c) == 'a') {
        set_err(err, errlen, "SCRAM authorization identity is not supported");
        return -1;
    }
    if (cursor_take(c, ',') < 0) {
        set_err(err, errlen, "malformed SCRAM message (expected ',' after gs2 header)");
        return -1;
    }
    st->cbind_flag = (char)flag;
    return 0;
}

/* client-first-message-bare: n=<ignored>,r=<nonce>, nothing after. */
static int parse_client_first_bare(struct scram_state *st, struct cursor *c, char *err,
                                   size_t errlen)
{
    const char *val;
    size_t vlen;

    if (cursor_peek(c) == 'm') {
        set_err(err, errlen, "SCRAM mandatory extensions are not supported");
        return -1;
    }
    /* PostgreSQL takes the user from the startup packet; the SCRAM one is ignored. */
    if (cursor_attr(c, 'n', &val, &vlen) < 0 || cursor_take(c, ',') < 0) {
        set_err(err, errlen, "malformed SCRAM message (expected attribute \"n\")");
        return -1;
    }
    if (cursor_attr(c, 'r', &val, &vlen) < 0) {
        set_err(err, errlen, "malformed SCRAM message (expected attribute \"r\")");
        return -1;
    }
    if (!is_printable_nonce(val, vlen) || vlen >= sizeof(st->client_nonce)) {
        set_err(err, errlen, "malformed SCRAM message (bad client nonce)");
        return -1;
    }
    if (c->p != c->end) {
        set_err(err, errlen, "malformed SCRAM message (unexpected attribute after nonce)");
        return -1;
    }
    memcpy(st->client_nonce, val, vlen);
    st->client_nonce[vlen] = '\0';
    return 0;
}

static int valid_keys(const struct scram_keys *k)
{
    return k->iterations > 0 && k->salt_len > 0 && k->salt_len <= sizeof(k->salt);
}

static int build_server_first(struct scram_state *st, char *out, size_t outlen)
{
    char salt[92];

    if (make_server_nonce(st) < 0 ||
        scram_b64_encode(st->keys.salt, st->keys.salt_len, salt, sizeof(salt)) < 0)
        return -1;
    int n = snprintf(st->server_first, sizeof(st->server_first), "r=%s%s,s=%s,i=%d",
                     st->client_nonce, st->server_nonce, salt, st->keys.iterations);
    if (n < 0 || (size_t)n >= sizeof(st->server_first) || (size_t)n >= outlen)
        return -1;
    memcpy(out, st->server_first, (size_t)n + 1);
    return 0;
}

int scram_handle_client_first(struct scram_state *st, const struct scram_keys *keys,
                              const char *msg, size_t len, char *out, size_t outlen, char *err,
                              size_t errlen)
{
    if (check_client_msg(st, 0, msg, len, err, errlen) < 0)
        goto fail;
    if (!keys || !valid_keys(keys) || !out) {
        set_err(err, errlen, "internal error: invalid SCRAM keys");
        goto fail;
    }

    struct cursor c = {msg, msg + len};
    if (parse_gs2_header(st, &c, err, errlen) < 0)
        goto fail;
    const char *bare = c.p;
    if (parse_client_first_bare(st, &c, err, errlen) < 0)
        goto fail;
    size_t bare_len = (size_t)(c.end - bare);
    if (bare_len >= sizeof(st->client_first_bare)) {
        set_err(err, errlen, "malformed SCRAM message (too long)");
        goto fail;
    }
    memcpy(st->client_first_bare, bare, bare_len);
    st->client_first_bare[bare_len] = '\0';

    if (keys != &st->keys) /* callers may keep the keys in the state itself */
        st->keys = *keys;
    if (build_server_first(st, out, outlen) < 0) {
        set_err(err, errlen, "internal error: could not build SCRAM server-first-message");
        goto fail;
    }
    st->step = 1;
    return 0;
fail:
    st->step = 2; /* a failed exchange cannot be resumed */
    return -1;
}

/* c=<base64 of the gs2 header>: must repeat exactly what client-first said. */
static int check_channel_binding(const struct scram_state *st, struct cursor *c, char *err,
                                 size_t errlen)
{
    const char *val;
    size_t vlen;
    const char *want = st->cbind_flag == 'y' ? "eSws" : "biws"; /* "y,," / "n,," */

    if (cursor_attr(c, 'c', &val, &vlen) < 0 || cursor_take(c, ',') < 0) {
        set_err(err, errlen, "malformed SCRAM message (expected attribute \"c\")");
        return -1;
    }
    if (vlen != strlen(want) || memcmp(val, want, vlen) != 0) {
        set_err(err, errlen, "SCRAM channel binding check failed");
        return -1;
    }
    return 0;
}

static int check_nonce(const struct scram_state *st, struct cursor *c, char *err, size_t errlen)
{
    const char *val;
    size_t vlen;
    size_t cn = strlen(st->client_nonce), sn = strlen(st->server_nonce);

    if (cursor_attr(c, 'r', &val, &vlen) < 0) {
        set_err(err, errlen, "malformed SCRAM message (expected attribute \"r\")");
        return -1;
    }
    if (vlen != cn + sn || memcmp(val, st->client_nonce, cn) != 0 ||
        memcmp(val + cn, st->server_nonce, sn) != 0) {
        set_err(err, errlen, "malformed SCRAM message (nonce does not match)");
        return -1;
    }
    return 0;
}

static int parse_proof(struct cursor *c, uint8_t proof[SCRAM_KEY_LEN], char *err, size_t errlen)
{
    const char *val;
    size_t vlen;

    /* Extensions between r= and p= are allowed by RFC 5802 but never sent by libpq. */
    if (cursor_take(c, ',') < 0 || cursor_peek(c) != 'p') {
        set_err(err, errlen, "malformed SCRAM message (expected attribute \"p\")");
        return -1;
    }
    if (cursor_attr(c, 'p', &val, &vlen) < 0 || c->p != c->end) {
        set_err(err, errlen, "malformed SCRAM message (garbage after proof)");
        return -1;
    }
    if (scram_b64_decode(val, vlen, proof, SCRAM_KEY_LEN) != SCRAM_KEY_LEN) {
        set_err(err, errlen, "malformed SCRAM message (bad proof)");
        return -1;
    }
    return 0;
}

/* AuthMessage = client-first-bare "," server-first "," client-final-without-proof. */
static void auth_message_parts(const struct scram_state *st, const char *final, size_t final_len,
                               struct span parts[5])
{
    parts[0] = (struct span){st->client_first_bare, strlen(st->client_first_bare)};
    parts[1] = (struct span){",", 1};
    parts[2] = (struct span){st->server_first, strlen(st->server_first)};
    parts[3] = (struct span){",", 1};
    parts[4] = (struct span){final, final_len};
}

/* 1 when SHA256(proof XOR HMAC(StoredKey, AuthMessage)) == StoredKey, 0 if not, -1 error.
   On success the ClientKey stays in st (pass-through of the login to the backend). */
static int verify_proof(struct scram_state *st, const struct span parts[5],
                        const uint8_t proof[SCRAM_KEY_LEN])
{
    const struct scram_keys *keys = &st->keys;
    uint8_t sig[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
    int rc = -1;

    if (hmac_sha256(keys->stored_key, SCRAM_KEY_LEN, parts, 5, sig) == 0) {
        for (int i = 0; i < SCRAM_KEY_LEN; i++)
            client_key[i] = proof[i] ^ sig[i];
        if (sha256(client_key, SCRAM_KEY_LEN, stored) == 0)
            rc = CRYPTO_memcmp(stored, keys->stored_key, SCRAM_KEY_LEN) == 0;
    }
    if (rc == 1) {
        memcpy(st->client_key, client_key, SCRAM_KEY_LEN);
        st->have_client_key = 1;
    }
    OPENSSL_cleanse(client_key, sizeof(client_key));
    return rc;
}

static int build_server_final(const struct scram_keys *keys, const struct span parts[5], char *out,
                              size_t outlen)
{
    uint8_t sig[SCRAM_KEY_LEN];
    char b64[48];

    if (hmac_sha256(keys->server_key, SCRAM_KEY_LEN, parts, 5, sig) < 0 ||
        scram_b64_encode(sig, SCRAM_KEY_LEN, b64, sizeof(b64)) < 0)
        return -1;
    int n = snprintf(out, outlen, "v=%s", b64);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int scram_handle_client_final(struct scram_state *st, const char *msg, size_t len, char *out,
                              size_t outlen, char *err, size_t errlen)
{
    uint8_t proof[SCRAM_KEY_LEN];
    struct span parts[5];

    if (check_client_msg(st, 1, msg, len, err, errlen) < 0)
        goto fail;
    struct cursor c = {msg, msg + len};
    if (check_channel_binding(st, &c, err, errlen) < 0 || check_nonce(st, &c, err, errlen) < 0)
        goto fail;
    size_t without_proof = (size_t)(c.p - msg);
    if (parse_proof(&c, proof, err, errlen) < 0)
        goto fail;

    st->step = 2;
    auth_message_parts(st, msg, without_proof, parts);
    int ok = verify_proof(st, parts, proof);
    if (ok < 0) {
        set_err(err, errlen, "internal error: SCRAM proof check failed to run");
        return -1;
    }
    if (!ok)
        return 0;
    if (!out || build_server_final(&st->keys, parts, out, outlen) < 0) {
        set_err(err, errlen, "internal error: could not build SCRAM server-final-message");
        return -1;
    }
    return 1;
fail:
    st->step = 2;
    return -1;
}

/* ---- client side (tests) ---- */

/* Salt and iteration count from a server-first-message "r=..,s=..,i=..". */
static int parse_server_first(const char *server_first, uint8_t *salt, size_t *salt_len,
                              int *iterations)
{
    const char *val;
    size_t vlen;
    struct cursor c = {server_first, server_first + strlen(server_first)};

    if (cursor_attr(&c, 'r', &val, &vlen) < 0 || cursor_take(&c, ',') < 0 ||
        cursor_attr(&c, 's', &val, &vlen) < 0 || cursor_take(&c, ',') < 0)
        return -1;
    int n = scram_b64_decode(val, vlen, salt, *salt_len);
    if (n <= 0)
        return -1;
    *salt_len = (size_t)n;
    if (cursor_attr(&c, 'i', &val, &vlen) < 0 || c.p != c.end)
        return -1;
    return scram_parse_positive_int(val, vlen, iterations);
}

int scram_client_proof(const char *password, const char *client_first_bare,
                       const char *server_first, const char *client_final_without_proof,
                       char *proof_b64, size_t len)
{
    struct scram_state st;
    uint8_t salt[64], client_key[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN];
    size_t salt_len = sizeof(salt);
    int iterations, rc = -1;
    struct span parts[5];

    if (strlen(client_first_bare) >= sizeof(st.client_first_bare) ||
        strlen(server_first) >= sizeof(st.server_first) ||
        parse_server_first(server_first, salt, &salt_len, &iterations) < 0)
        return -1;
    memset(&st, 0, sizeof(st));
    strcpy(st.client_first_bare, client_first_bare);
    strcpy(st.server_first, server_first);
    auth_message_parts(&st, client_final_without_proof, strlen(client_final_without_proof), parts);

    if (derive_client_key(password, salt, salt_len, iterations, client_key, NULL) == 0 &&
        sha256(client_key, SCRAM_KEY_LEN, stored) == 0 &&
        hmac_sha256(stored, SCRAM_KEY_LEN, parts, 5, sig) == 0) {
        for (int i = 0; i < SCRAM_KEY_LEN; i++)
            client_key[i] ^= sig[i];
        if (scram_b64_encode(client_key, SCRAM_KEY_LEN, proof_b64, len) > 0)
            rc = 0;
    }
    OPENSSL_cleanse(client_key, sizeof(client_key));
    return rc;
}
