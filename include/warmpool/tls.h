/*
 * tls — TLS for both sides of the pooler, with OpenSSL.
 *
 * Client side: one SSL_CTX built from the client_tls_* settings, rebuilt on reload
 * (connections keep the context they started with: OpenSSL reference-counts it).
 * Backend side: libpq negotiates TLS; warmpool wraps the SSL object libpq made.
 *
 * A `struct wp_tls` is one TLS connection's state. The relay keeps using its own
 * buffers; tls_read/tls_write are the TLS counterparts of buf_read_fd/writev, and the
 * connection calls them only when it has a wp_tls (plain sockets take no detour).
 */
#ifndef WARMPOOL_TLS_H
#define WARMPOOL_TLS_H

#include <stddef.h>

#include "warmpool/buf.h"

struct wp_config;
typedef struct ssl_st SSL;

enum wp_sslmode {
    WP_SSLMODE_DISABLE,
    WP_SSLMODE_ALLOW,
    WP_SSLMODE_PREFER,
    WP_SSLMODE_REQUIRE,
    WP_SSLMODE_VERIFY_CA,
    WP_SSLMODE_VERIFY_FULL,
};

/* Names of enum wp_sslmode in order, NULL-terminated (config parsing, SHOW CONFIG). */
extern const char *const tls_sslmode_names[];

/* Protocol versions as bits of a mask. */
#define WP_TLS_V1_0 1u
#define WP_TLS_V1_1 2u
#define WP_TLS_V1_2 4u
#define WP_TLS_V1_3 8u

/*
 * client_tls_protocols: a comma or blank separated list of tlsv1.0, tlsv1.1, tlsv1.2,
 * tlsv1.3, "secure" (= tlsv1.2,tlsv1.3), "all" or "legacy" (every version), "default"
 * (= secure). Returns 0 and the mask, or -1 with a message in err.
 */
int tls_parse_protocols(const char *text, unsigned *mask, char *err, size_t errlen);

struct wp_tls {
    SSL *ssl;
    int owned;            /* SSL_free at close; a backend's SSL belongs to libpq */
    int established;      /* handshake finished */
    int read_wants_write; /* the last read/handshake step waits for writability */
    int write_wants_read; /* the last write waits for readability */
    struct wp_buf out;    /* bytes handed to SSL_write, kept until it took them all */
    char *peer_cn;        /* verified client certificate's CommonName, or NULL */
};

/*
 * (Re)build the client-side context from cfg. With client_tls_sslmode = disable the
 * context is dropped. On failure the current context stays and err names the file
 * and OpenSSL's reason. Returns 0 or -1.
 */
int tls_client_setup(const struct wp_config *cfg, char *err, size_t errlen);
/* Whether SSLRequest can be accepted. */
int tls_client_available(void);
void tls_client_shutdown(void);

/* A server-side TLS session on an accepted socket; NULL when out of memory. */
struct wp_tls *tls_accept(int fd);
/* Wrap libpq's SSL object of a backend connection (not freed by tls_free). */
struct wp_tls *tls_wrap_backend(SSL *ssl);
/* One handshake step: 1 done, 0 waiting (see read_wants_write), -1 failed (err). */
int tls_handshake(struct wp_tls *t, char *err, size_t errlen);
/*
 * One SSL_read into the tail of b after reserving `room`; like buf_read_fd: > 0 bytes,
 * 0 nothing yet, -1 EOF or error. *more is set when OpenSSL still holds decrypted
 * bytes (they do not wake the event loop: the caller must come back).
 */
long tls_read(struct wp_tls *t, struct wp_buf *b, size_t room, int *more);
/* Whether OpenSSL holds input the socket will not signal. */
int tls_has_pending(const struct wp_tls *t);
/*
 * The TLS form of the relay's writev: own bytes first, then `*scan` bytes of theirs.
 * Both are consumed as soon as they are handed to OpenSSL (t->out keeps them until
 * sent). Returns 1 when everything went, 0 when some is left, -1 on error.
 */
int tls_write(struct wp_tls *t, struct wp_buf *own, struct wp_buf *theirs, size_t *scan);
/* Best-effort flush of `last` (a FATAL) and close_notify, then free. */
void tls_close(struct wp_tls *t, struct wp_buf *last);
void tls_free(struct wp_tls *t);
/* "TLSv1.3/TLS_AES_256_GCM_SHA384", or "" without TLS. */
const char *tls_describe(const struct wp_tls *t, char *out, size_t len);

#endif
