/*
 * auth — the auth file (PgBouncer's userlist.txt format) and password checks.
 *
 * auth_userlist_load reads the whole file into a fresh list (the caller swaps it in on
 * reload and frees the old one), so a bad file never leaves a half-loaded list behind.
 * The checks are pure functions over a wp_user_secret: md5 (PostgreSQL's salted scheme),
 * plaintext, and the glue that turns a secret into SCRAM keys for scram.c.
 *
 * Secrets never appear in error messages; user names may, since they are not secret and
 * the operator needs them to find the line.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "warmpool/auth.h"
#include "warmpool/scram.h"

#define MD5_HEX_LEN 32
#define MD5_SECRET_LEN 35 /* "md5" + 32 hex digits */
#define USERLIST_MAX_LINE 65536
#define SCRAM_PLAIN_SALT_LEN 16 /* what PostgreSQL generates */
#define SCRAM_PLAIN_ITERATIONS 4096

/* ---- userlist parsing ---- */

/* Why a line failed; line numbers and the path are added by the caller. */
struct line_error {
    char msg[160];
};

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/*
 * Read a "..." string starting at *p (on the opening quote) into a fresh malloc'd string,
 * undoubling "". Leaves *p after the closing quote. NULL on error with e->msg set.
 */
static char *parse_quoted(const char **p, const char *what, struct line_error *e)
{
    const char *s = *p;
    if (*s != '"') {
        snprintf(e->msg, sizeof(e->msg), "expected a quoted %s", what);
        return NULL;
    }
    s++;
    /* The unquoted text is never longer than the rest of the line. */
    char *out = malloc(strlen(s) + 1);
    if (!out) {
        snprintf(e->msg, sizeof(e->msg), "out of memory");
        return NULL;
    }
    size_t n = 0;
    for (;;) {
        if (*s == '\0') {
            snprintf(e->msg, sizeof(e->msg), "unterminated quoted %s", what);
            OPENSSL_cleanse(out, n);
            free(out);
            return NULL;
        }
        if (*s == '"' && s[1] == '"') {
            out[n++] = '"';
            s += 2;
        } else if (*s == '"') {
            s++;
            break;
        } else {
            out[n++] = *s++;
        }
    }
    out[n] = '\0';
    *p = s;
    return out;
}

static const char *skip_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* A SCRAM-looking secret that does not parse is a typo, not a plaintext password. */
static int check_secret(const char *user, const char *secret, struct line_error *e)
{
    struct scram_keys keys;
    if (strncmp(secret, "SCRAM-SHA-256$", 14) != 0)
        return 0;
    int rc = scram_parse_secret(secret, &keys);
    OPENSSL_cleanse(&keys, sizeof(keys));
    if (rc < 0) {
        snprintf(e->msg, sizeof(e->msg), "malformed SCRAM secret for user \"%.64s\"", user);
        return -1;
    }
    return 0;
}

/*
 * One line → user and secret. 1 = entry parsed, 0 = blank or comment, -1 = error.
 * Fields after the secret are ignored, as in PgBouncer.
 */
static int parse_line(const char *line, char **user, char **secret, struct line_error *e)
{
    const char *p = skip_blanks(line);
    if (*p == '\0' || *p == ';' || *p == '#')
        return 0;

    *user = parse_quoted(&p, "user name", e);
    if (!*user)
        return -1;
    if (**user == '\0') {
        snprintf(e->msg, sizeof(e->msg), "empty user name");
        goto fail;
    }
    p = skip_blanks(p);
    if (*p != '"') {
        snprintf(e->msg, sizeof(e->msg), "expected a quoted secret after user \"%.64s\"", *user);
        goto fail;
    }
    *secret = parse_quoted(&p, "secret", e);
    if (!*secret)
        goto fail;
    if (check_secret(*user, *secret, e) == 0)
        return 1;
    OPENSSL_cleanse(*secret, strlen(*secret));
    free(*secret);
    *secret = NULL;
fail:
    free(*user);
    *user = NULL;
    return -1;
}

static void free_entry(struct wp_user_secret *ent)
{
    if (ent->secret) {
        OPENSSL_cleanse(ent->secret, strlen(ent->secret));
        free(ent->secret);
    }
    free(ent->user);
    ent->user = ent->secret = NULL;
}

/* Append, or replace an earlier entry for the same user (later lines win, as in PgBouncer). */
static int add_entry(struct wp_userlist *list, int *cap, char *user, char *secret)
{
    for (int i = 0; i < list->n; i++) {
        struct wp_user_secret *ent = &list->entries[i];
        if (strcmp(ent->user, user) == 0) {
            free_entry(ent);
            *ent = (struct wp_user_secret){user, secret, auth_secret_kind(secret)};
            return 0;
        }
    }
    if (list->n == *cap) {
        int ncap = *cap ? *cap * 2 : 16;
        if (ncap <= *cap || (size_t)ncap > SIZE_MAX / sizeof(*list->entries))
            return -1;
        void *p = realloc(list->entries, (size_t)ncap * sizeof(*list->entries));
        if (!p)
            return -1;
        list->entries = p;
        *cap = ncap;
    }
    list->entries[list->n++] = (struct wp_user_secret){user, secret, auth_secret_kind(secret)};
    return 0;
}

/* Strip the line ending; reject what getline lets through but a text file should not hold. */
static int check_raw_line(char *line, ssize_t len, struct line_error *e)
{
    if (len > USERLIST_MAX_LINE) {
        snprintf(e->msg, sizeof(e->msg), "line too long (over %d bytes)", USERLIST_MAX_LINE);
        return -1;
    }
    if ((size_t)len != strlen(line)) {
        snprintf(e->msg, sizeof(e->msg), "line contains a NUL byte");
        return -1;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    return 0;
}

static int load_lines(FILE *f, const char *path, struct wp_userlist *list, char *err, size_t errlen)
{
    char *line = NULL;
    size_t linecap = 0;
    ssize_t len;
    int lineno = 0, cap = 0, rc = 0;
    struct line_error e = {{0}};

    while ((len = getline(&line, &linecap, f)) >= 0) {
        char *user = NULL, *secret = NULL;
        lineno++;
        int r = check_raw_line(line, len, &e) < 0 ? -1 : parse_line(line, &user, &secret, &e);
        if (r == 1 && add_entry(list, &cap, user, secret) < 0) {
            snprintf(e.msg, sizeof(e.msg), "out of memory");
            struct wp_user_secret tmp = {user, secret, WP_SECRET_PLAIN};
            free_entry(&tmp);
            r = -1;
        }
        if (r < 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, e.msg);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s:%d: read error: %s", path, lineno + 1, strerror(errno));
        rc = -1;
    }
    if (line) {
        OPENSSL_cleanse(line, linecap);
        free(line);
    }
    return rc;
}

/* Parse fp (NULL: could not be opened, errno says why); `path` names it in messages. */
static int load_stream(FILE *f, const char *path, struct wp_userlist *out, char *err, size_t errlen)
{
    struct wp_userlist list = {NULL, 0};
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int rc = load_lines(f, path, &list, err, errlen);
    fclose(f);
    if (rc < 0) {
        auth_userlist_free(&list);
        return -1;
    }
    *out = list;
    return 0;
}

int auth_userlist_load(const char *path, struct wp_userlist *out, char *err, size_t errlen)
{
    return load_stream(fopen(path, "r"), path, out, err, errlen);
}

int auth_userlist_load_string(const char *name, const char *text, size_t len,
                              struct wp_userlist *out, char *err, size_t errlen)
{
    /* Read-only: fmemopen takes a non-const pointer but never writes through it. */
    return load_stream(fmemopen((void *)text, len, "r"), name, out, err, errlen);
}

void auth_userlist_free(struct wp_userlist *list)
{
    if (!list)
        return;
    for (int i = 0; i < list->n; i++)
        free_entry(&list->entries[i]);
    free(list->entries);
    list->entries = NULL;
    list->n = 0;
}

const struct wp_user_secret *auth_userlist_find(const struct wp_userlist *list, const char *user)
{
    if (!list || !user)
        return NULL;
    for (int i = 0; i < list->n; i++)
        if (strcmp(list->entries[i].user, user) == 0)
            return &list->entries[i];
    return NULL;
}

int auth_secret_usable(const struct wp_user_secret *secret)
{
    return secret && secret->secret && secret->secret[0] != '\0';
}

/* ---- secrets ---- */

/* PostgreSQL's rule: exactly "md5" + 32 lowercase hex digits, anything else is plaintext. */
static int is_md5_secret(const char *s)
{
    if (strlen(s) != MD5_SECRET_LEN || strncmp(s, "md5", 3) != 0)
        return 0;
    return strspn(s + 3, "0123456789abcdef") == MD5_HEX_LEN;
}

enum wp_secret_kind auth_secret_kind(const char *secret)
{
    struct scram_keys keys;

    if (!secret)
        return WP_SECRET_PLAIN;
    if (is_md5_secret(secret))
        return WP_SECRET_MD5;
    int rc = scram_parse_secret(secret, &keys);
    OPENSSL_cleanse(&keys, sizeof(keys));
    return rc == 0 ? WP_SECRET_SCRAM : WP_SECRET_PLAIN;
}

/* "md5" + hex(md5(a || b)) into out[36]. -1 only if OpenSSL fails. */
static int md5_hex2(const void *a, size_t alen, const void *b, size_t blen, char out[36])
{
    uint8_t digest[16];
    unsigned int dlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) && EVP_DigestUpdate(ctx, a, alen) &&
             EVP_DigestUpdate(ctx, b, blen) && EVP_DigestFinal_ex(ctx, digest, &dlen) &&
             dlen == sizeof(digest);
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        out[0] = '\0';
        return -1;
    }
    memcpy(out, "md5", 3);
    hex_encode(digest, sizeof(digest), out + 3);
    return 0;
}

void auth_md5_secret(const char *password, const char *user, char out[36])
{
    md5_hex2(password, strlen(password), user, strlen(user), out);
}

int auth_md5_check(const struct wp_user_secret *secret, const uint8_t salt[4], const char *response)
{
    char stored[36], expected[36];
    int ok = 0;

    if (!auth_secret_usable(secret) || !response)
        return 0;
    if (secret->kind == WP_SECRET_PLAIN) {
        if (md5_hex2(secret->secret, strlen(secret->secret), secret->user, strlen(secret->user),
                     stored) < 0)
            return 0;
    } else if (secret->kind == WP_SECRET_MD5 && is_md5_secret(secret->secret)) {
        memcpy(stored, secret->secret, sizeof(stored));
    } else {
        return 0; /* a SCRAM verifier cannot answer an md5 challenge */
    }
    /* The client hashes the hex part of the stored secret with the salt. */
    if (md5_hex2(stored + 3, MD5_HEX_LEN, salt, 4, expected) == 0 &&
        strnlen(response, MD5_SECRET_LEN + 1) == MD5_SECRET_LEN)
        ok = CRYPTO_memcmp(expected, response, MD5_SECRET_LEN) == 0;
    OPENSSL_cleanse(stored, sizeof(stored));
    OPENSSL_cleanse(expected, sizeof(expected));
    return ok;
}

/* Compare through SHA-256 so neither the content nor the length leaks through timing. */
static int equal_plain(const char *a, const char *b)
{
    uint8_t ha[32], hb[32];
    unsigned int n = 0;
    if (!EVP_Digest(a, strlen(a), ha, &n, EVP_sha256(), NULL) ||
        !EVP_Digest(b, strlen(b), hb, &n, EVP_sha256(), NULL))
        return 0;
    return CRYPTO_memcmp(ha, hb, sizeof(ha)) == 0;
}

/* As PostgreSQL does for a plaintext password against a SCRAM verifier: derive and compare. */
static int equal_scram(const char *secret, const char *password)
{
    struct scram_keys stored, derived;
    int ok = 0;

    if (scram_parse_secret(secret, &stored) == 0 &&
        scram_keys_from_password(password, stored.salt, stored.salt_len, stored.iterations,
                                 &derived) == 0)
        ok = (CRYPTO_memcmp(stored.stored_key, derived.stored_key, SCRAM_KEY_LEN) |
              CRYPTO_memcmp(stored.server_key, derived.server_key, SCRAM_KEY_LEN)) == 0;
    OPENSSL_cleanse(&stored, sizeof(stored));
    OPENSSL_cleanse(&derived, sizeof(derived));
    return ok;
}

int auth_plain_check(const struct wp_user_secret *secret, const char *password)
{
    char md5[36];
    int ok = 0;

    /* An empty password never logs in, as in PostgreSQL. */
    if (!auth_secret_usable(secret) || !password || !*password)
        return 0;
    switch (secret->kind) {
    case WP_SECRET_PLAIN:
        return equal_plain(secret->secret, password);
    case WP_SECRET_MD5:
        if (strlen(secret->secret) == MD5_SECRET_LEN &&
            md5_hex2(password, strlen(password), secret->user, strlen(secret->user), md5) == 0)
            ok = CRYPTO_memcmp(md5, secret->secret, MD5_SECRET_LEN) == 0;
        OPENSSL_cleanse(md5, sizeof(md5));
        return ok;
    case WP_SECRET_SCRAM:
        return equal_scram(secret->secret, password);
    }
    return 0;
}

int auth_scram_keys(const struct wp_user_secret *secret, struct scram_keys *out)
{
    uint8_t salt[SCRAM_PLAIN_SALT_LEN];

    if (!auth_secret_usable(secret))
        return -1;
    if (secret->kind == WP_SECRET_SCRAM)
        return scram_parse_secret(secret->secret, out);
    if (secret->kind != WP_SECRET_PLAIN || auth_random(salt, sizeof(salt)) < 0)
        return -1;
    return scram_keys_from_password(secret->secret, salt, sizeof(salt), SCRAM_PLAIN_ITERATIONS,
                                    out);
}

int auth_random(void *buf, size_t n)
{
    if (n == 0)
        return 0;
    if (!buf || n > INT_MAX)
        return -1;
    return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}
