/*
 * tls — OpenSSL for client and backend connections (see include/warmpool/tls.h).
 *
 * Client connections: an SSL_CTX built from the client_tls_* settings. A reload
 * builds a new one and drops ours; OpenSSL keeps a context alive while any SSL made
 * from it exists, so open connections keep the certificate they started with.
 *
 * Writes: the relay hands over "own bytes, then a scanned range of the peer's buffer".
 * OpenSSL has no gather write, and once SSL_write has turned bytes into a record it
 * must be retried with the same bytes. So the bytes are moved into `out` (one copy)
 * and consumed from the relay's buffers at once; `out` is drained before new bytes are
 * taken, which bounds it and keeps the retry rule. Reads go straight into the
 * relay's buffer.
 */
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "warmpool/config.h"
#include "warmpool/tls.h"

const char *const tls_sslmode_names[] = {"disable",   "allow",       "prefer", "require",
                                         "verify-ca", "verify-full", NULL};

static SSL_CTX *client_ctx;

/* ---------------------------------------------------------------- protocols */

static const struct {
    const char *name;
    unsigned mask;
} protocol_words[] = {
    {"tlsv1.0", WP_TLS_V1_0},
    {"tlsv1", WP_TLS_V1_0},
    {"tlsv1.1", WP_TLS_V1_1},
    {"tlsv1.2", WP_TLS_V1_2},
    {"tlsv1.3", WP_TLS_V1_3},
    {"secure", WP_TLS_V1_2 | WP_TLS_V1_3},
    {"default", WP_TLS_V1_2 | WP_TLS_V1_3},
    {"all", WP_TLS_V1_0 | WP_TLS_V1_1 | WP_TLS_V1_2 | WP_TLS_V1_3},
    {"legacy", WP_TLS_V1_0 | WP_TLS_V1_1 | WP_TLS_V1_2 | WP_TLS_V1_3},
};

int tls_parse_protocols(const char *text, unsigned *mask, char *err, size_t errlen)
{
    unsigned m = 0;
    const char *p = text ? text : "";
    for (;;) {
        p += strspn(p, ", \t");
        if (!*p)
            break;
        size_t len = strcspn(p, ", \t");
        size_t i, n = sizeof protocol_words / sizeof protocol_words[0];
        for (i = 0; i < n; i++)
            if (strlen(protocol_words[i].name) == len &&
                strncasecmp(p, protocol_words[i].name, len) == 0)
                break;
        if (i == n) {
            snprintf(err, errlen,
                     "unknown protocol \"%.*s\" (use tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3, "
                     "secure or all)",
                     (int)(len > 32 ? 32 : len), p);
            return -1;
        }
        m |= protocol_words[i].mask;
        p += len;
    }
    if (!m) {
        snprintf(err, errlen, "no protocol given (use e.g. secure or tlsv1.2,tlsv1.3)");
        return -1;
    }
    *mask = m;
    return 0;
}

/* ---------------------------------------------------------------- context */

/* The earliest queued OpenSSL error (the cause; later ones are follow-ups). */
static const char *openssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    if (e && ERR_GET_LIB(e) == ERR_LIB_SYS)
        snprintf(buf, len, "%s", strerror(ERR_GET_REASON(e)));
    else if (reason)
        snprintf(buf, len, "%s", reason);
    else if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "unknown error");
    ERR_clear_error();
    return buf;
}

static int set_protocols(SSL_CTX *ctx, const char *text, char *err, size_t errlen)
{
    static const struct {
        unsigned bit;
        int version;
        long no_option;
    } versions[] = {
        {WP_TLS_V1_0, TLS1_VERSION, SSL_OP_NO_TLSv1},
        {WP_TLS_V1_1, TLS1_1_VERSION, SSL_OP_NO_TLSv1_1},
        {WP_TLS_V1_2, TLS1_2_VERSION, SSL_OP_NO_TLSv1_2},
        {WP_TLS_V1_3, TLS1_3_VERSION, SSL_OP_NO_TLSv1_3},
    };
    char why[160];
    unsigned mask;
    if (tls_parse_protocols(text, &mask, why, sizeof why) < 0) {
        snprintf(err, errlen, "client_tls_protocols: %s", why);
        return -1;
    }
    int lowest = 0, highest = 0;
    for (int i = 0; i < 4; i++) {
        if (mask & versions[i].bit) {
            if (!lowest)
                lowest = versions[i].version;
            highest = versions[i].version;
        }
    }
    SSL_CTX_set_min_proto_version(ctx, lowest);
    SSL_CTX_set_max_proto_version(ctx, highest);
    for (int i = 0; i < 4; i++) /* a hole in the list, e.g. "tlsv1.0,tlsv1.3" */
        if (!(mask & versions[i].bit) && versions[i].version > lowest &&
            versions[i].version < highest)
            SSL_CTX_set_options(ctx, (uint64_t)versions[i].no_option);
    return 0;
}

/* libtls-style names PgBouncer accepts mean "the library's default" here. */
static int is_default_ciphers(const char *text)
{
    static const char *const names[] = {"", "default", "fast", "normal", "secure", "compat", NULL};
    for (int i = 0; names[i]; i++)
        if (strcasecmp(text, names[i]) == 0)
            return 1;
    return 0;
}

static int load_files(SSL_CTX *ctx, const struct wp_config *cfg, char *err, size_t errlen)
{
    char why[256];
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->client_tls_cert_file) != 1) {
        snprintf(err, errlen, "client_tls_cert_file %s: %s", cfg->client_tls_cert_file,
                 openssl_reason(why, sizeof why));
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->client_tls_key_file, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "client_tls_key_file %s: %s", cfg->client_tls_key_file,
                 openssl_reason(why, sizeof why));
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "client_tls_key_file %s does not match client_tls_cert_file %s: %s",
                 cfg->client_tls_key_file, cfg->client_tls_cert_file,
                 openssl_reason(why, sizeof why));
        return -1;
    }
    if (!cfg->client_tls_ca_file)
        return 0;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->client_tls_ca_file);
    if (SSL_CTX_load_verify_locations(ctx, cfg->client_tls_ca_file, NULL) != 1 || !names) {
        if (names)
            sk_X509_NAME_pop_free(names, X509_NAME_free);
        snprintf(err, errlen, "client_tls_ca_file %s: %s", cfg->client_tls_ca_file,
                 openssl_reason(why, sizeof why));
        return -1;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    /* verify-ca/verify-full demand a certificate; below that one is checked if sent. */
    int verify = SSL_VERIFY_PEER;
    if (cfg->client_tls_sslmode >= WP_SSLMODE_VERIFY_CA)
        verify |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, verify, NULL);
    return 0;
}

static SSL_CTX *build_ctx(const struct wp_config *cfg, char *err, size_t errlen)
{
    static const unsigned char session_id[] = "warmpool";
    char why[256];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create TLS context: %s", openssl_reason(why, sizeof why));
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_id_context(ctx, session_id, sizeof session_id - 1);
    if (set_protocols(ctx, cfg->client_tls_protocols, err, errlen) < 0)
        goto fail;
    if (!is_default_ciphers(cfg->client_tls_ciphers) &&
        SSL_CTX_set_cipher_list(ctx, cfg->client_tls_ciphers) != 1) {
        snprintf(err, errlen, "client_tls_ciphers \"%.64s\": %s", cfg->client_tls_ciphers,
                 openssl_reason(why, sizeof why));
        goto fail;
    }
    if (load_files(ctx, cfg, err, errlen) < 0)
        goto fail;
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int tls_client_setup(const struct wp_config *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = NULL;
    if (cfg->client_tls_sslmode != WP_SSLMODE_DISABLE) {
        ctx = build_ctx(cfg, err, errlen);
        if (!ctx)
            return -1;
    }
    SSL_CTX_free(client_ctx); /* SSLs made from it hold their own reference */
    client_ctx = ctx;
    return 0;
}

int tls_client_available(void)
{
    return client_ctx != NULL;
}

void tls_client_shutdown(void)
{
    SSL_CTX_free(client_ctx);
    client_ctx = NULL;
}

/* ---------------------------------------------------------------- connections */

struct wp_tls *tls_accept(int fd)
{
    struct wp_tls *t = calloc(1, sizeof *t);
    if (!t || !client_ctx)
        goto fail;
    t->ssl = SSL_new(client_ctx);
    if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1)
        goto fail;
    t->owned = 1;
    SSL_set_accept_state(t->ssl);
    return t;
fail:
    if (t)
        SSL_free(t->ssl);
    free(t);
    ERR_clear_error();
    return NULL;
}

struct wp_tls *tls_wrap_backend(SSL *ssl)
{
    struct wp_tls *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ssl = ssl;
    t->established = 1;
    /* libpq copes with partial writes itself, so these suit it as well. */
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return t;
}

/* The CommonName of a certificate that passed verification; NULL otherwise. */
static char *verified_cn(SSL *ssl)
{
    X509 *cert = SSL_get1_peer_certificate(ssl);
    char *cn = NULL;
    if (!cert)
        return NULL;
    if (SSL_get_verify_result(ssl) == X509_V_OK) {
        X509_NAME *subject = X509_get_subject_name(cert);
        int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
        ASN1_STRING *data =
            i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)) : NULL;
        const unsigned char *bytes = data ? ASN1_STRING_get0_data(data) : NULL;
        int len = data ? ASN1_STRING_length(data) : 0;
        /* A NUL inside the name would let "a\0b" pass as "a". */
        if (bytes && len > 0 && memchr(bytes, '\0', (size_t)len) == NULL)
            cn = strndup((const char *)bytes, (size_t)len);
    }
    X509_free(cert);
    return cn;
}

static void io_error(SSL *ssl, int rc, const char *during, char *err, size_t errlen)
{
    char why[256];
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        snprintf(err, errlen, "%s: %s", during,
                 errno ? strerror(errno) : "connection closed by peer");
    else if (e == SSL_ERROR_ZERO_RETURN)
        snprintf(err, errlen, "%s: connection closed by peer", during);
    else
        snprintf(err, errlen, "%s: %s", during, openssl_reason(why, sizeof why));
    ERR_clear_error();
}

/* After an SSL call returned rc <= 0: 1 when it only has to wait — for the direction
   it was working in (`waits_on`), or for the other one, noted in *wants_other — and 0
   on a real error. */
static int ssl_blocked(SSL *ssl, int rc, int waits_on, int *wants_other)
{
    int e = SSL_get_error(ssl, rc);
    if (e == waits_on)
        return 1;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *wants_other = 1;
        return 1;
    }
    return 0;
}

int tls_handshake(struct wp_tls *t, char *err, size_t errlen)
{
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(t->ssl);
    t->read_wants_write = 0;
    if (rc == 1) {
        t->established = 1;
        t->peer_cn = verified_cn(t->ssl);
        return 1;
    }
    if (ssl_blocked(t->ssl, rc, SSL_ERROR_WANT_READ, &t->read_wants_write))
        return 0;
    io_error(t->ssl, rc, "TLS handshake failed", err, errlen);
    return -1;
}

int tls_has_pending(const struct wp_tls *t)
{
    return t->established && SSL_has_pending(t->ssl);
}

long tls_read(struct wp_tls *t, struct wp_buf *b, size_t room, int *more)
{
    *more = 0;
    if (buf_reserve(b, room) < 0)
        return -1;
    size_t space = b->cap - b->len;
    ERR_clear_error();
    int n = SSL_read(t->ssl, b->data + b->len, space > INT_MAX ? INT_MAX : (int)space);
    t->read_wants_write = 0;
    if (n > 0) {
        b->len += (size_t)n;
        *more = SSL_has_pending(t->ssl);
        return n;
    }
    if (ssl_blocked(t->ssl, n, SSL_ERROR_WANT_READ, &t->read_wants_write))
        return 0;
    ERR_clear_error();
    return -1;
}

/* Move own bytes and the scanned range of theirs into t->out. */
static int take_output(struct wp_tls *t, struct wp_buf *own, struct wp_buf *theirs, size_t *scan)
{
    size_t n = buf_unread(own);
    if (n) {
        if (buf_append(&t->out, buf_head(own), n) < 0)
            return -1;
        buf_consume(own, n);
    }
    n = theirs ? *scan : 0;
    if (n) {
        if (buf_append(&t->out, buf_head(theirs), n) < 0)
            return -1;
        buf_consume(theirs, n);
        *scan = 0;
    }
    return 0;
}

int tls_write(struct wp_tls *t, struct wp_buf *own, struct wp_buf *theirs, size_t *scan)
{
    t->write_wants_read = 0;
    if (!t->established)
        return 0; /* the handshake's own events carry on */
    for (;;) {
        if (buf_unread(&t->out) == 0) {
            if (buf_unread(own) == 0 && (!theirs || *scan == 0)) {
                buf_release_if_empty(&t->out);
                return 1;
            }
            if (take_output(t, own, theirs, scan) < 0)
                return -1;
        }
        size_t len = buf_unread(&t->out);
        ERR_clear_error();
        int n = SSL_write(t->ssl, buf_head(&t->out), len > INT_MAX ? INT_MAX : (int)len);
        if (n > 0) {
            buf_consume(&t->out, (size_t)n);
            continue;
        }
        if (ssl_blocked(t->ssl, n, SSL_ERROR_WANT_WRITE, &t->write_wants_read))
            return 0;
        ERR_clear_error();
        return -1;
    }
}

void tls_close(struct wp_tls *t, struct wp_buf *last)
{
    if (!t)
        return;
    if (t->owned && t->established) {
        size_t none = 0;
        tls_write(t, last, NULL, &none);
        ERR_clear_error();
        if (buf_unread(&t->out) == 0)
            SSL_shutdown(t->ssl); /* close_notify, without waiting for the peer's */
        ERR_clear_error();
    }
    tls_free(t);
}

void tls_free(struct wp_tls *t)
{
    if (!t)
        return;
    if (t->owned)
        SSL_free(t->ssl);
    buf_free(&t->out);
    free(t->peer_cn);
    free(t);
}

const char *tls_describe(const struct wp_tls *t, char *out, size_t len)
{
    if (!t || !t->established) {
        snprintf(out, len, "%s", "");
        return out;
    }
    snprintf(out, len, "%s/%s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
    return out;
}
