/*
 * proto — PostgreSQL v3 wire framing as pure functions (see include/warmpool/proto.h).
 *
 * Everything here reads from or appends to caller-owned memory; there is no socket,
 * no pool and no allocation other than buf_reserve. Parsers trust nothing: every
 * read is bounded by the length the caller passes, because the bytes come straight
 * from clients and servers. proto_scan_header lives in the header as an inline.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "warmpool/proto.h"

/* The length field is a signed int32 that counts itself. */
#define MAX_BODY ((size_t)INT32_MAX - 4)

#define TEXT_OID 25u

/* ---- startup packets ---------------------------------------------------------- */

int64_t proto_startup_length(const uint8_t *buf, size_t avail)
{
    if (avail < 4)
        return 0;
    uint32_t n = proto_get_u32(buf);
    if (n < 8 || n > PROTO_MAX_STARTUP_LEN)
        return -1;
    return n;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write the message to err (when there is one) and return -1, for `return fail(...)`. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Requests that are a bare code (+ fixed payload) must have their exact size. */
static int check_fixed(uint32_t len, uint32_t want, const char *what, char *err, size_t errlen)
{
    if (len != want)
        return fail(err, errlen, "invalid length of %s packet: %u bytes, expected %u", what, len,
                    want);
    return 0;
}

static int parse_cancel(const uint8_t *buf, uint32_t len, struct proto_startup *out, char *err,
                        size_t errlen)
{
    if (check_fixed(len, 16, "CancelRequest", err, errlen) < 0)
        return -1;
    out->kind = PROTO_STARTUP_CANCEL;
    out->cancel_pid = proto_get_u32(buf + 8);
    out->cancel_key = proto_get_u32(buf + 12);
    return 0;
}

static void note_param(struct proto_startup *out, const char *name, const char *value)
{
    out->names[out->nparams] = name;
    out->values[out->nparams] = value;
    out->nparams++;
    /* A repeated user/database wins over the earlier one, as in PostgreSQL. */
    if (strcmp(name, "user") == 0)
        out->user = value;
    else if (strcmp(name, "database") == 0)
        out->database = value;
}

/* Names and values have bounds of their own, well below the packet's 10000 bytes. */
static int check_param_size(const uint8_t *name, const uint8_t *name_end, const uint8_t *value,
                            const uint8_t *value_end, struct proto_startup *out, char *err,
                            size_t errlen)
{
    size_t name_len = (size_t)(name_end - name), value_len = (size_t)(value_end - value);
    int ident =
        strcmp((const char *)name, "user") == 0 || strcmp((const char *)name, "database") == 0;
    memcpy(out->sqlstate, "54000", 6);
    if (name_len > PROTO_MAX_STARTUP_NAME)
        return fail(err, errlen, "startup parameter name too long (%zu bytes, at most %d)",
                    name_len, PROTO_MAX_STARTUP_NAME);
    if (ident && value_len > PROTO_MAX_IDENT)
        return fail(err, errlen, "%s name too long (%zu bytes, at most %d)", (const char *)name,
                    value_len, PROTO_MAX_IDENT);
    if (value_len > PROTO_MAX_STARTUP_VALUE)
        return fail(err, errlen,
                    "value of startup parameter \"%s\" too long (%zu bytes, at most %d)",
                    (const char *)name, value_len, PROTO_MAX_STARTUP_VALUE);
    memcpy(out->sqlstate, "08P01", 6);
    return 0;
}

/*
 * name\0value\0 ... \0 from offset 8 to exactly len. An empty name is the
 * terminator, so it must be the packet's last byte.
 */
static int parse_params(const uint8_t *buf, uint32_t len, struct proto_startup *out, char *err,
                        size_t errlen)
{
    const uint8_t *p = buf + 8;
    const uint8_t *end = buf + len;

    for (;;) {
        if (p >= end)
            return fail(err, errlen, "invalid startup packet: missing final terminator");
        if (*p == '\0') {
            if (p + 1 != end)
                return fail(err, errlen, "invalid startup packet: %zu bytes after terminator",
                            (size_t)(end - p - 1));
            return 0;
        }
        const uint8_t *name_end = memchr(p, '\0', (size_t)(end - p));
        if (!name_end)
            return fail(err, errlen, "invalid startup packet: unterminated parameter name");
        const uint8_t *value = name_end + 1;
        const uint8_t *value_end = value < end ? memchr(value, '\0', (size_t)(end - value)) : NULL;
        if (!value_end)
            return fail(err, errlen, "invalid startup packet: parameter \"%.64s\" has no value",
                        (const char *)p);
        if (out->nparams == PROTO_MAX_STARTUP_PARAMS)
            return fail(err, errlen, "invalid startup packet: more than %d parameters",
                        PROTO_MAX_STARTUP_PARAMS);
        if (check_param_size(p, name_end, value, value_end, out, err, errlen) < 0)
            return -1;
        note_param(out, (const char *)p, (const char *)value);
        p = value_end + 1;
    }
}

static int parse_v3(const uint8_t *buf, uint32_t len, struct proto_startup *out, char *err,
                    size_t errlen)
{
    out->kind = PROTO_STARTUP_V3;
    if (parse_params(buf, len, out, err, errlen) < 0)
        return -1;
    /* PostgreSQL treats an empty user as missing and an empty database as unset. */
    if (!out->user || !out->user[0]) {
        out->user = NULL;
        return fail(err, errlen, "no PostgreSQL user name specified in startup packet");
    }
    if (!out->database || !out->database[0])
        out->database = out->user;
    return 0;
}

int proto_parse_startup(const uint8_t *buf, uint32_t len, struct proto_startup *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->sqlstate, "08P01", 6);
    if (err && errlen)
        err[0] = '\0';
    if (len < 8 || len > PROTO_MAX_STARTUP_LEN)
        return fail(err, errlen, "invalid startup packet length %u", len);
    /* A caller passing a different len than the packet's own would parse garbage. */
    if (proto_get_u32(buf) != len)
        return fail(err, errlen, "invalid startup packet: length field %u, packet %u bytes",
                    proto_get_u32(buf), len);

    uint32_t code = proto_get_u32(buf + 4);
    out->version = code;
    switch (code) {
    case PROTO_SSL_REQUEST:
        out->kind = PROTO_STARTUP_SSL;
        return check_fixed(len, 8, "SSLRequest", err, errlen);
    case PROTO_GSSENC_REQUEST:
        out->kind = PROTO_STARTUP_GSSENC;
        return check_fixed(len, 8, "GSSENCRequest", err, errlen);
    case PROTO_CANCEL_REQUEST:
        return parse_cancel(buf, len, out, err, errlen);
    }
    if (code >> 16 != 3)
        return fail(err, errlen, "unsupported frontend protocol %u.%u: server supports 3.0",
                    code >> 16, code & 0xffffu);
    return parse_v3(buf, len, out, err, errlen);
}

/* ---- bodies the pooler acts on ------------------------------------------------ */

const char *proto_error_field(const uint8_t *body, size_t body_len, char field)
{
    const uint8_t *p = body;
    const uint8_t *end = body + body_len;
    const char *found = NULL;

    /*
     * Walk the whole body even after a hit: a malformed message gives NULL for every
     * field, never a value from its well-formed prefix.
     */
    while (p < end) {
        uint8_t code = *p++;
        if (code == 0)
            return p == end ? found : NULL;
        const uint8_t *nul = memchr(p, '\0', (size_t)(end - p));
        if (!nul)
            return NULL;
        if (code == (uint8_t)field && !found)
            found = (const char *)p;
        p = nul + 1;
    }
    return NULL; /* no terminator */
}

int proto_parse_param_status(const uint8_t *body, size_t body_len, const char **name,
                             const char **value)
{
    const uint8_t *end = body + body_len;
    const uint8_t *name_end = memchr(body, '\0', body_len);
    if (!name_end || name_end == body)
        return -1;
    const uint8_t *v = name_end + 1;
    /* The value's NUL must be the body's last byte: nothing before, nothing after. */
    if (v >= end || memchr(v, '\0', (size_t)(end - v)) != end - 1)
        return -1;
    *name = (const char *)body;
    *value = (const char *)v;
    return 0;
}

/* ---- builders ----------------------------------------------------------------- */

/*
 * Reserve a whole message and write its header; the body is written in place after
 * out->len and only committed by put_end, so a failure leaves out as it was.
 */
static uint8_t *put_begin(struct wp_buf *out, char type, size_t body_len)
{
    if (body_len > MAX_BODY || buf_reserve(out, body_len + 5) < 0)
        return NULL;
    uint8_t *p = out->data + out->len;
    p[0] = (uint8_t)type;
    proto_put_u32(p + 1, (uint32_t)(body_len + 4));
    return p + 5;
}

static int put_end(struct wp_buf *out, const uint8_t *end)
{
    out->len = (size_t)(end - out->data);
    return 0;
}

/* Copy a C string with its NUL; n is its strlen. */
static uint8_t *put_cstr(uint8_t *p, const char *s, size_t n)
{
    memcpy(p, s, n + 1);
    return p + n + 1;
}

/* Adds string lengths without wrapping; SIZE_MAX makes put_begin refuse. */
static size_t add_len(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* ErrorResponse and NoticeResponse: S, V (same severity, not localised), C, M. */
static int put_fields(struct wp_buf *out, char type, const char *severity, const char *sqlstate,
                      const char *message)
{
    size_t ns = strlen(severity), nc = strlen(sqlstate), nm = strlen(message);
    /* Four code bytes, four NULs, the terminator: 9 besides the strings. */
    size_t body = add_len(add_len(ns, ns), add_len(add_len(nc, nm), 9));
    uint8_t *p = put_begin(out, type, body);
    if (!p)
        return -1;
    *p++ = 'S';
    p = put_cstr(p, severity, ns);
    *p++ = 'V';
    p = put_cstr(p, severity, ns);
    *p++ = 'C';
    p = put_cstr(p, sqlstate, nc);
    *p++ = 'M';
    p = put_cstr(p, message, nm);
    *p++ = '\0';
    return put_end(out, p);
}

int proto_put_error(struct wp_buf *out, const char *severity, const char *sqlstate,
                    const char *message)
{
    return put_fields(out, 'E', severity ? severity : "ERROR", sqlstate ? sqlstate : "XX000",
                      message ? message : "");
}

int proto_put_notice(struct wp_buf *out, const char *sqlstate, const char *message)
{
    return put_fields(out, 'N', "NOTICE", sqlstate ? sqlstate : "00000", message ? message : "");
}

int proto_put_auth(struct wp_buf *out, uint32_t code, const void *data, size_t data_len)
{
    uint8_t *p = put_begin(out, 'R', add_len(data_len, 4));
    if (!p)
        return -1;
    proto_put_u32(p, code);
    p += 4;
    if (data_len)
        memcpy(p, data, data_len);
    return put_end(out, p + data_len);
}

/* A message whose body is just two C strings (ParameterStatus). */
static int put_two_cstr(struct wp_buf *out, char type, const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    uint8_t *p = put_begin(out, type, add_len(na, nb + 2));
    if (!p)
        return -1;
    p = put_cstr(p, a, na);
    p = put_cstr(p, b, nb);
    return put_end(out, p);
}

/* A message whose body is one C string (Query, CommandComplete). */
static int put_one_cstr(struct wp_buf *out, char type, const char *s)
{
    size_t n = strlen(s);
    uint8_t *p = put_begin(out, type, add_len(n, 1));
    if (!p)
        return -1;
    return put_end(out, put_cstr(p, s, n));
}

int proto_put_param_status(struct wp_buf *out, const char *name, const char *value)
{
    return put_two_cstr(out, 'S', name, value ? value : "");
}

int proto_put_backend_key(struct wp_buf *out, uint32_t pid, uint32_t key)
{
    uint8_t *p = put_begin(out, 'K', 8);
    if (!p)
        return -1;
    proto_put_u32(p, pid);
    proto_put_u32(p + 4, key);
    return put_end(out, p + 8);
}

int proto_put_ready(struct wp_buf *out, char tx_status)
{
    uint8_t *p = put_begin(out, 'Z', 1);
    if (!p)
        return -1;
    *p++ = (uint8_t)tx_status;
    return put_end(out, p);
}

int proto_put_query(struct wp_buf *out, const char *sql)
{
    return put_one_cstr(out, 'Q', sql);
}

int proto_put_simple(struct wp_buf *out, char type)
{
    uint8_t *p = put_begin(out, type, 0);
    if (!p)
        return -1;
    return put_end(out, p);
}

/* ---- extra builders (negotiation, admin console rows, prepared statements) ---- */

static int is_protocol_option(const char *name)
{
    return strncmp(name, "_pq_.", 5) == 0;
}

int proto_put_negotiate_version(struct wp_buf *out, const struct proto_startup *st)
{
    size_t body = 8;
    uint32_t nopts = 0;
    for (int i = 0; i < st->nparams; i++) {
        if (is_protocol_option(st->names[i])) {
            body = add_len(body, strlen(st->names[i]) + 1);
            nopts++;
        }
    }
    if (st->kind != PROTO_STARTUP_V3 || ((st->version & 0xffffu) == 0 && nopts == 0))
        return 0;

    uint8_t *p = put_begin(out, 'v', body);
    if (!p)
        return -1;
    /* PostgreSQL sends the full version number here, not just the minor part. */
    proto_put_u32(p, PROTO_V3);
    proto_put_u32(p + 4, nopts);
    p += 8;
    for (int i = 0; i < st->nparams; i++) {
        if (is_protocol_option(st->names[i]))
            p = put_cstr(p, st->names[i], strlen(st->names[i]));
    }
    return put_end(out, p);
}

int proto_put_command_complete(struct wp_buf *out, const char *tag)
{
    return put_one_cstr(out, 'C', tag);
}

int proto_put_row_description(struct wp_buf *out, int ncols, const char *const *names)
{
    return proto_put_row_description_typed(out, ncols, names, NULL);
}

int proto_put_row_description_typed(struct wp_buf *out, int ncols, const char *const *names,
                                    const uint32_t *oids)
{
    if (ncols < 0 || ncols > INT16_MAX)
        return -1;
    /* Per column: name, table oid 4, attnum 2, type oid 4, typlen 2, typmod 4, format 2. */
    size_t body = 2;
    for (int i = 0; i < ncols; i++)
        body = add_len(body, add_len(strlen(names[i]), 1 + 18));
    uint8_t *p = put_begin(out, 'T', body);
    if (!p)
        return -1;
    p[0] = (uint8_t)(ncols >> 8);
    p[1] = (uint8_t)ncols;
    p += 2;
    for (int i = 0; i < ncols; i++) {
        p = put_cstr(p, names[i], strlen(names[i]));
        memset(p, 0, 18);
        proto_put_u32(p + 6, oids ? oids[i] : TEXT_OID);
        memset(p + 10, 0xff, 6); /* typlen -1 (varlena), typmod -1 */
        p += 18;                 /* format 0 (text) left zero */
    }
    return put_end(out, p);
}

int proto_put_data_row(struct wp_buf *out, int ncols, const char *const *values)
{
    if (ncols < 0 || ncols > INT16_MAX)
        return -1;
    size_t body = 2;
    for (int i = 0; i < ncols; i++) {
        size_t n = values[i] ? strlen(values[i]) : 0;
        if (n > MAX_BODY)
            return -1;
        body = add_len(body, n + 4);
    }
    uint8_t *p = put_begin(out, 'D', body);
    if (!p)
        return -1;
    p[0] = (uint8_t)(ncols >> 8);
    p[1] = (uint8_t)ncols;
    p += 2;
    for (int i = 0; i < ncols; i++) {
        if (!values[i]) {
            proto_put_u32(p, 0xffffffffu); /* -1: SQL NULL */
            p += 4;
            continue;
        }
        size_t n = strlen(values[i]);
        proto_put_u32(p, (uint32_t)n);
        memcpy(p + 4, values[i], n);
        p += 4 + n;
    }
    return put_end(out, p);
}

int proto_put_parse(struct wp_buf *out, const char *name, const char *query, uint16_t nparams,
                    const uint32_t *param_oids)
{
    if (nparams && !param_oids)
        return -1;
    size_t nn = strlen(name), nq = strlen(query);
    size_t body = add_len(add_len(nn, nq), 2 + 2 + 4 * (size_t)nparams);
    uint8_t *p = put_begin(out, 'P', body);
    if (!p)
        return -1;
    p = put_cstr(p, name, nn);
    p = put_cstr(p, query, nq);
    p[0] = (uint8_t)(nparams >> 8);
    p[1] = (uint8_t)nparams;
    p += 2;
    for (uint16_t i = 0; i < nparams; i++, p += 4)
        proto_put_u32(p, param_oids[i]);
    return put_end(out, p);
}

int proto_put_close(struct wp_buf *out, char kind, const char *name)
{
    size_t n = strlen(name);
    uint8_t *p = put_begin(out, 'C', add_len(n, 2));
    if (!p)
        return -1;
    *p++ = (uint8_t)kind;
    return put_end(out, put_cstr(p, name, n));
}
