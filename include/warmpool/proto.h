/*
 * proto — PostgreSQL v3 wire framing: pure functions over byte spans.
 *
 * Scanners read headers and the few message bodies the pooler acts on; builders
 * append complete messages to a wp_buf. Nothing here touches sockets or pools.
 */
#ifndef WARMPOOL_PROTO_H
#define WARMPOOL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "warmpool/buf.h"

#define PROTO_V3 196608u /* 3.0 */
#define PROTO_SSL_REQUEST 80877103u
#define PROTO_GSSENC_REQUEST 80877104u
#define PROTO_CANCEL_REQUEST 80877102u

#define PROTO_MAX_STARTUP_LEN 10000u /* PostgreSQL's own limit */
#define PROTO_MAX_STARTUP_PARAMS 64
#define PROTO_MAX_STARTUP_NAME 63    /* bytes of a parameter name (NAMEDATALEN - 1) */
#define PROTO_MAX_STARTUP_VALUE 4096 /* bytes of a parameter value */
#define PROTO_MAX_IDENT 63           /* bytes of user and database (NAMEDATALEN - 1) */

/* Big-endian helpers. */
static inline uint32_t proto_get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint16_t proto_get_u16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline void proto_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

enum proto_scan {
    PROTO_NEED_MORE = 0, /* fewer than 5 bytes */
    PROTO_HEADER = 1,    /* *type and *len filled */
    PROTO_BAD_LENGTH = -1
};

/*
 * Read a regular message header (type byte + int32 length that counts itself).
 * `len` is the whole message size including the type byte (length field + 1).
 * Lengths below 4 or above max_len are PROTO_BAD_LENGTH.
 * *type is filled whenever 5 bytes are available (so a caller can log the bad
 * message's type); *len only with PROTO_HEADER.
 * Inline because the relay calls it once per message on the hot path.
 */
static inline enum proto_scan proto_scan_header(const uint8_t *buf, size_t avail, uint32_t max_len,
                                                uint8_t *type, uint32_t *len)
{
    if (avail < 5)
        return PROTO_NEED_MORE;
    uint32_t n = proto_get_u32(buf + 1);
    *type = buf[0];
    /* n >= max_len is n + 1 > max_len without wrapping at n = 0xFFFFFFFF. */
    if (n < 4 || n >= max_len)
        return PROTO_BAD_LENGTH;
    *len = n + 1;
    return PROTO_HEADER;
}

/* After PROTO_BAD_LENGTH: was the declared length too large (else below 4)? */
static inline int proto_length_too_large(const uint8_t *buf)
{
    return proto_get_u32(buf + 1) >= 4;
}

/* Startup-phase packet (no type byte). */
enum proto_startup_kind {
    PROTO_STARTUP_V3,
    PROTO_STARTUP_SSL,
    PROTO_STARTUP_GSSENC,
    PROTO_STARTUP_CANCEL,
};

struct proto_startup {
    enum proto_startup_kind kind;
    uint32_t version;
    /* PROTO_STARTUP_V3: pointers into the caller's buffer (NUL-terminated there). */
    int nparams;
    const char *names[PROTO_MAX_STARTUP_PARAMS];
    const char *values[PROTO_MAX_STARTUP_PARAMS];
    const char *user;     /* NULL when missing */
    const char *database; /* defaults to user when missing */
    /* PROTO_STARTUP_CANCEL */
    uint32_t cancel_pid;
    uint32_t cancel_key;
    /* On a parse error: "08P01" (malformed) or "54000" (a name or value too long). */
    char sqlstate[6];
};

/*
 * Length of a startup-phase packet: 0 when fewer than 4 bytes are available,
 * -1 when the length is outside 8..PROTO_MAX_STARTUP_LEN.
 */
int64_t proto_startup_length(const uint8_t *buf, size_t avail);

/*
 * Parse a complete startup-phase packet of `len` bytes. Returns 0, or -1 with a
 * human message in err and its SQLSTATE in out->sqlstate (08P01, or 54000 for a
 * parameter name over PROTO_MAX_STARTUP_NAME bytes, a value over
 * PROTO_MAX_STARTUP_VALUE, or a user/database over PROTO_MAX_IDENT). More than
 * PROTO_MAX_STARTUP_PARAMS parameters and unsupported protocol versions (other
 * than 3.x) are 08P01.
 */
int proto_parse_startup(const uint8_t *buf, uint32_t len, struct proto_startup *out, char *err,
                        size_t errlen);

/* Find a field (e.g. 'C' SQLSTATE, 'M' message, 'S' severity) in an ErrorResponse or
 * NoticeResponse body (bytes after the length). Returns NULL when absent or malformed. */
const char *proto_error_field(const uint8_t *body, size_t body_len, char field);

/* ParameterStatus body → name/value pointers into the body. Returns 0 or -1. */
int proto_parse_param_status(const uint8_t *body, size_t body_len, const char **name,
                             const char **value);

/*
 * Builders: append one complete message to out; return 0 or -1 (out of memory, or a
 * message too large for the int32 length field). On -1 the unread bytes of out are
 * unchanged. They allocate nothing beyond buf_reserve. A NULL severity is "ERROR", a
 * NULL sqlstate "XX000" and a NULL message "", so an error path never crashes.
 */
int proto_put_error(struct wp_buf *out, const char *severity, const char *sqlstate,
                    const char *message);
int proto_put_auth(struct wp_buf *out, uint32_t code, const void *data, size_t data_len);
int proto_put_param_status(struct wp_buf *out, const char *name, const char *value);
int proto_put_backend_key(struct wp_buf *out, uint32_t pid, uint32_t key);
int proto_put_ready(struct wp_buf *out, char tx_status);
int proto_put_query(struct wp_buf *out, const char *sql);
int proto_put_simple(struct wp_buf *out, char type); /* header-only message, e.g. 'S', '1' */
int proto_put_notice(struct wp_buf *out, const char *sqlstate, const char *message);

/*
 * NegotiateProtocolVersion ('v') for a parsed PROTO_STARTUP_V3 packet: appended only
 * when the client asked for 3.x with x > 0 or sent "_pq_." protocol options (all of
 * which are listed as unrecognised); otherwise nothing is appended. Returns 0 or -1.
 * Like PostgreSQL, send it first, ahead of any authentication request.
 */
int proto_put_negotiate_version(struct wp_buf *out, const struct proto_startup *st);

/* CommandComplete ('C') with a tag such as "SHOW" or "SELECT 3". */
int proto_put_command_complete(struct wp_buf *out, const char *tag);
/* RowDescription ('T') of ncols text columns (type oid 25, text format). */
int proto_put_row_description(struct wp_buf *out, int ncols, const char *const *names);
/* The same with each column's type oid (PROTO_OID_*); values are still sent as text.
   typlen stays -1 whatever the type, as PgBouncer sends it: clients read the oid. */
#define PROTO_OID_BYTEA 17u
#define PROTO_OID_INT8 20u
#define PROTO_OID_INT4 23u
#define PROTO_OID_TEXT 25u
#define PROTO_OID_NUMERIC 1700u
int proto_put_row_description_typed(struct wp_buf *out, int ncols, const char *const *names,
                                    const uint32_t *oids);
/* DataRow ('D') of ncols text values; a NULL value is sent as SQL NULL. */
int proto_put_data_row(struct wp_buf *out, int ncols, const char *const *values);
/* Parse ('P') of a named statement; param_oids may be NULL when nparams is 0. */
int proto_put_parse(struct wp_buf *out, const char *name, const char *query, uint16_t nparams,
                    const uint32_t *param_oids);
/* Close ('C') of a statement (kind 'S') or portal (kind 'P'). */
int proto_put_close(struct wp_buf *out, char kind, const char *name);

#endif
