/*
 * test_proto — unit tests for PostgreSQL v3 framing (pooler/proto.c).
 *
 * Parsers are fed exact-size heap copies of each packet so valgrind and ASan see any
 * read past the end. Builders are checked byte for byte and round-tripped through
 * the scanners.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/proto.h"

/* ---- helpers ------------------------------------------------------------------ */

/* The last exact-size copy handed to a parser; freed by the next copy or teardown. */
static uint8_t *copy;

static const uint8_t *exact(const void *src, size_t n)
{
    free(copy);
    copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, src, n);
    return copy;
}

static int free_copy(void **state)
{
    (void)state;
    free(copy);
    copy = NULL;
    return 0;
}

/* Startup packet: length, code, then `body_len` bytes of name\0value\0...\0. */
static uint32_t mk_startup(uint8_t *pkt, uint32_t code, const char *body, size_t body_len)
{
    uint32_t len = (uint32_t)(8 + body_len);
    proto_put_u32(pkt, len);
    proto_put_u32(pkt + 4, code);
    memcpy(pkt + 8, body, body_len);
    return len;
}

/* String literals with explicit \0s; sizeof - 1 drops only the implicit final NUL. */
#define STARTUP(pkt, code, lit) mk_startup(pkt, code, lit, sizeof(lit) - 1)
#define V3_2 (PROTO_V3 + 2u)

static int parse(const uint8_t *pkt, uint32_t len, struct proto_startup *st, char *err)
{
    return proto_parse_startup(exact(pkt, len), len, st, err, 256);
}

static void expect_startup_error(const uint8_t *pkt, uint32_t len, const char *needle)
{
    struct proto_startup st;
    char err[256];
    assert_int_equal(parse(pkt, len, &st, err), -1);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
}

static void hdr(uint8_t *b, uint8_t type, uint32_t n)
{
    b[0] = type;
    proto_put_u32(b + 1, n);
}

/* ---- proto_scan_header -------------------------------------------------------- */

static void test_scan_split_header(void **state)
{
    (void)state;
    uint8_t b[5];
    uint8_t type = 0;
    uint32_t len = 0;
    hdr(b, 'Q', 9);
    for (size_t avail = 0; avail < 5; avail++)
        assert_int_equal(proto_scan_header(b, avail, 1024, &type, &len), PROTO_NEED_MORE);
    assert_int_equal(proto_scan_header(b, 5, 1024, &type, &len), PROTO_HEADER);
    assert_int_equal(type, 'Q');
    assert_int_equal(len, 10);
}

static void test_scan_min_and_short_lengths(void **state)
{
    (void)state;
    uint8_t b[5];
    uint8_t type = 0;
    uint32_t len = 0;
    hdr(b, 'S', 4); /* Sync: header only */
    assert_int_equal(proto_scan_header(b, 5, 1024, &type, &len), PROTO_HEADER);
    assert_int_equal(len, 5);
    hdr(b, 'S', 3);
    assert_int_equal(proto_scan_header(b, 5, 1024, &type, &len), PROTO_BAD_LENGTH);
    assert_int_equal(type, 'S');
    hdr(b, 'S', 0);
    assert_int_equal(proto_scan_header(b, 5, 1024, &type, &len), PROTO_BAD_LENGTH);
}

static void test_scan_max_len(void **state)
{
    (void)state;
    uint8_t b[5];
    uint8_t type = 0;
    uint32_t len = 0;
    /* len + 1 == max_len is allowed, one more is not. */
    hdr(b, 'D', 99);
    assert_int_equal(proto_scan_header(b, 5, 100, &type, &len), PROTO_HEADER);
    assert_int_equal(len, 100);
    hdr(b, 'D', 100);
    assert_int_equal(proto_scan_header(b, 5, 100, &type, &len), PROTO_BAD_LENGTH);
    hdr(b, 'D', 0x7fffffff);
    assert_int_equal(proto_scan_header(b, 5, 1u << 30, &type, &len), PROTO_BAD_LENGTH);
    assert_int_equal(proto_scan_header(b, 5, UINT32_MAX, &type, &len), PROTO_HEADER);
    assert_int_equal(len, 0x80000000u);
}

static void test_scan_no_wrap_at_uint32_max(void **state)
{
    (void)state;
    uint8_t b[5];
    uint8_t type = 0;
    uint32_t len = 12345;
    hdr(b, 'd', 0xffffffffu); /* + 1 would wrap to 0 and pass a naive check */
    assert_int_equal(proto_scan_header(b, 5, UINT32_MAX, &type, &len), PROTO_BAD_LENGTH);
    assert_int_equal(len, 12345);
    hdr(b, 'd', 0xfffffffeu);
    assert_int_equal(proto_scan_header(b, 5, UINT32_MAX, &type, &len), PROTO_HEADER);
    assert_int_equal(len, 0xffffffffu);
    assert_int_equal(proto_scan_header(b, 5, 0, &type, &len), PROTO_BAD_LENGTH);
}

/* ---- proto_startup_length ----------------------------------------------------- */

static void test_startup_length(void **state)
{
    (void)state;
    uint8_t b[4];
    proto_put_u32(b, 8);
    for (size_t avail = 0; avail < 4; avail++)
        assert_int_equal(proto_startup_length(b, avail), 0);
    assert_int_equal(proto_startup_length(b, 4), 8);
    proto_put_u32(b, 0);
    assert_int_equal(proto_startup_length(b, 4), -1);
    proto_put_u32(b, 7);
    assert_int_equal(proto_startup_length(b, 4), -1);
    proto_put_u32(b, 10000);
    assert_int_equal(proto_startup_length(b, 4), 10000);
    proto_put_u32(b, 10001);
    assert_int_equal(proto_startup_length(b, 4), -1);
    proto_put_u32(b, 0xffffffffu);
    assert_int_equal(proto_startup_length(b, 4), -1);
}

/* ---- proto_parse_startup: special requests ------------------------------------ */

static void test_startup_ssl_gssenc(void **state)
{
    (void)state;
    uint8_t pkt[16];
    struct proto_startup st;
    char err[256];

    assert_int_equal(parse(pkt, STARTUP(pkt, PROTO_SSL_REQUEST, ""), &st, err), 0);
    assert_int_equal(st.kind, PROTO_STARTUP_SSL);
    assert_int_equal(parse(pkt, STARTUP(pkt, PROTO_GSSENC_REQUEST, ""), &st, err), 0);
    assert_int_equal(st.kind, PROTO_STARTUP_GSSENC);

    expect_startup_error(pkt, STARTUP(pkt, PROTO_SSL_REQUEST, "\0\0\0\0"), "SSLRequest");
    expect_startup_error(pkt, STARTUP(pkt, PROTO_GSSENC_REQUEST, "x"), "GSSENCRequest");
}

static void test_startup_cancel(void **state)
{
    (void)state;
    uint8_t pkt[24];
    struct proto_startup st;
    char err[256];

    uint32_t len = STARTUP(pkt, PROTO_CANCEL_REQUEST, "\0\0\x30\x39\xde\xad\xbe\xef");
    assert_int_equal(len, 16);
    assert_int_equal(parse(pkt, len, &st, err), 0);
    assert_int_equal(st.kind, PROTO_STARTUP_CANCEL);
    assert_int_equal(st.cancel_pid, 12345);
    assert_int_equal(st.cancel_key, 0xdeadbeefu);

    expect_startup_error(pkt, STARTUP(pkt, PROTO_CANCEL_REQUEST, ""), "CancelRequest");
    expect_startup_error(pkt, STARTUP(pkt, PROTO_CANCEL_REQUEST, "\0\0\0\1"), "CancelRequest");
    expect_startup_error(pkt, STARTUP(pkt, PROTO_CANCEL_REQUEST, "0123456789ab"), "CancelRequest");
}

static void test_startup_unsupported_versions(void **state)
{
    (void)state;
    uint8_t pkt[64];
    struct proto_startup st;
    char err[256];

    uint32_t len = STARTUP(pkt, 0x00020000u, "user\0alice\0\0");
    assert_int_equal(parse(pkt, len, &st, err), -1);
    assert_string_equal(err, "unsupported frontend protocol 2.0: server supports 3.0");

    len = STARTUP(pkt, 0x00040001u, "user\0alice\0\0");
    assert_int_equal(parse(pkt, len, &st, err), -1);
    assert_string_equal(err, "unsupported frontend protocol 4.1: server supports 3.0");

    /* An unknown 1234.x request code is not a special request. */
    expect_startup_error(pkt, STARTUP(pkt, (1234u << 16) | 5681u, ""), "1234.5681");
}

static void test_startup_bad_length(void **state)
{
    (void)state;
    uint8_t pkt[64];
    struct proto_startup st;
    char err[256];
    uint32_t len = STARTUP(pkt, PROTO_V3, "user\0alice\0\0");

    assert_int_equal(proto_parse_startup(pkt, 7, &st, err, sizeof(err)), -1);
    /* The caller's len must match the packet's own length field. */
    assert_int_equal(proto_parse_startup(pkt, len - 1, &st, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "length"));
    assert_int_equal(proto_parse_startup(pkt, PROTO_MAX_STARTUP_LEN + 1, &st, err, sizeof(err)),
                     -1);
}

/* ---- proto_parse_startup: v3 parameters --------------------------------------- */

static void test_startup_v3_full(void **state)
{
    (void)state;
    uint8_t pkt[128];
    struct proto_startup st;
    char err[256];
    uint32_t len = STARTUP(pkt, PROTO_V3,
                           "user\0alice\0database\0shop\0application_name\0psql\0"
                           "options\0-c search_path=app\0\0");

    assert_int_equal(parse(pkt, len, &st, err), 0);
    assert_int_equal(st.kind, PROTO_STARTUP_V3);
    assert_int_equal(st.version, PROTO_V3);
    assert_int_equal(st.nparams, 4);
    assert_string_equal(st.user, "alice");
    assert_string_equal(st.database, "shop");
    assert_string_equal(st.names[2], "application_name");
    assert_string_equal(st.values[2], "psql");
    assert_string_equal(st.names[3], "options");
    assert_string_equal(st.values[3], "-c search_path=app");
    /* Everything points into the caller's buffer. */
    for (int i = 0; i < st.nparams; i++) {
        assert_true((const uint8_t *)st.names[i] >= copy + 8);
        assert_true((const uint8_t *)st.values[i] < copy + len);
    }
    assert_ptr_equal(st.user, st.values[0]);
}

static void test_startup_database_defaults_to_user(void **state)
{
    (void)state;
    uint8_t pkt[64];
    struct proto_startup st;
    char err[256];

    assert_int_equal(parse(pkt, STARTUP(pkt, PROTO_V3, "user\0bob\0\0"), &st, err), 0);
    assert_string_equal(st.database, "bob");
    assert_ptr_equal(st.database, st.user);

    /* An empty database means "unset" to PostgreSQL too. */
    assert_int_equal(parse(pkt, STARTUP(pkt, PROTO_V3, "database\0\0user\0bob\0\0"), &st, err), 0);
    assert_ptr_equal(st.database, st.user);
}

static void test_startup_without_user(void **state)
{
    (void)state;
    uint8_t pkt[64];
    struct proto_startup st;
    char err[256];

    assert_int_equal(parse(pkt, STARTUP(pkt, PROTO_V3, "database\0shop\0\0"), &st, err), -1);
    assert_string_equal(err, "no PostgreSQL user name specified in startup packet");
    assert_null(st.user);
    assert_int_equal(parse(pkt, STARTUP(pkt, PROTO_V3, "user\0\0\0"), &st, err), -1);
    assert_string_equal(err, "no PostgreSQL user name specified in startup packet");
    /* Terminator only: well-formed, but still no user. */
    assert_int_equal(parse(pkt, STARTUP(pkt, PROTO_V3, "\0"), &st, err), -1);
    assert_string_equal(err, "no PostgreSQL user name specified in startup packet");
}

static void test_startup_last_duplicate_wins(void **state)
{
    (void)state;
    uint8_t pkt[64];
    struct proto_startup st;
    char err[256];

    assert_int_equal(parse(pkt, STARTUP(pkt, PROTO_V3, "user\0a\0user\0b\0\0"), &st, err), 0);
    assert_string_equal(st.user, "b");
    assert_int_equal(st.nparams, 2);
}

static void test_startup_malformed_pairs(void **state)
{
    (void)state;
    uint8_t pkt[64];

    expect_startup_error(pkt, STARTUP(pkt, PROTO_V3, ""), "terminator");
    expect_startup_error(pkt, STARTUP(pkt, PROTO_V3, "user\0alice\0"), "terminator");
    expect_startup_error(pkt, STARTUP(pkt, PROTO_V3, "user\0alice\0database\0"),
                         "\"database\" has no value");
    expect_startup_error(pkt, STARTUP(pkt, PROTO_V3, "user\0ali"), "\"user\" has no value");
    expect_startup_error(pkt, STARTUP(pkt, PROTO_V3, "user\0alice\0data"), "unterminated");
    expect_startup_error(pkt, STARTUP(pkt, PROTO_V3, "user\0alice\0\0x"), "after terminator");
    expect_startup_error(pkt, STARTUP(pkt, PROTO_V3, "user\0alice\0\0\0"), "after terminator");
    /* An empty name is a terminator in the middle of the packet. */
    expect_startup_error(pkt, STARTUP(pkt, PROTO_V3, "\0x\0user\0alice\0\0"), "after terminator");
}

/* n pairs p0=v, p1=v, ... with user first; returns the packet length. */
static uint32_t mk_many(uint8_t *pkt, int n)
{
    size_t off = 8;
    memcpy(pkt + off, "user\0u", 7);
    off += 7;
    for (int i = 1; i < n; i++) {
        int w = sprintf((char *)pkt + off, "p%d", i);
        off += (size_t)w + 1;
        pkt[off++] = 'v';
        pkt[off++] = '\0';
    }
    pkt[off++] = '\0';
    proto_put_u32(pkt, (uint32_t)off);
    proto_put_u32(pkt + 4, PROTO_V3);
    return (uint32_t)off;
}

static void test_startup_param_limit(void **state)
{
    (void)state;
    uint8_t pkt[1024];
    struct proto_startup st;
    char err[256];

    assert_int_equal(parse(pkt, mk_many(pkt, PROTO_MAX_STARTUP_PARAMS), &st, err), 0);
    assert_int_equal(st.nparams, PROTO_MAX_STARTUP_PARAMS);
    assert_string_equal(st.names[PROTO_MAX_STARTUP_PARAMS - 1], "p63");
    expect_startup_error(pkt, mk_many(pkt, PROTO_MAX_STARTUP_PARAMS + 1), "more than 64");
}

/* name\0value\0 for user=u plus one parameter `name` = `value_len` x's. */
static uint32_t mk_sized(uint8_t *pkt, const char *name, size_t value_len)
{
    char body[8192];
    size_t n = 0;
    memcpy(body, "user\0u\0", 7);
    n = 7;
    memcpy(body + n, name, strlen(name) + 1);
    n += strlen(name) + 1;
    memset(body + n, 'x', value_len);
    n += value_len;
    body[n++] = '\0';
    body[n++] = '\0';
    return mk_startup(pkt, PROTO_V3, body, n);
}

static void expect_sized(const char *name, size_t value_len, const char *sqlstate)
{
    static uint8_t pkt[9000];
    struct proto_startup st;
    char err[256];
    int rc = parse(pkt, mk_sized(pkt, name, value_len), &st, err);
    if (!sqlstate) {
        assert_int_equal(rc, 0);
        return;
    }
    assert_int_equal(rc, -1);
    assert_string_equal(st.sqlstate, sqlstate);
    assert_non_null(strstr(err, "too long"));
}

/* Bounded names and values: the CVE shape of unchecked copies of startup strings. */
static void test_startup_size_limits(void **state)
{
    (void)state;
    char name[80];
    memset(name, 'n', sizeof name);
    name[PROTO_MAX_STARTUP_NAME] = '\0';
    expect_sized(name, 1, NULL);
    name[PROTO_MAX_STARTUP_NAME] = 'n';
    name[PROTO_MAX_STARTUP_NAME + 1] = '\0';
    expect_sized(name, 1, "54000");
    expect_sized("application_name", PROTO_MAX_STARTUP_VALUE, NULL);
    expect_sized("application_name", PROTO_MAX_STARTUP_VALUE + 1, "54000");
    expect_sized("options", 5000, "54000");
    expect_sized("database", PROTO_MAX_IDENT, NULL);
    expect_sized("database", PROTO_MAX_IDENT + 1, "54000");
    expect_sized("user", PROTO_MAX_IDENT + 1, "54000");
    /* Malformed packets say 08P01. */
    uint8_t pkt[1024];
    struct proto_startup st;
    char err[256];
    assert_int_equal(parse(pkt, mk_many(pkt, PROTO_MAX_STARTUP_PARAMS + 1), &st, err), -1);
    assert_string_equal(st.sqlstate, "08P01");
}

/* Lengths from unauthenticated peers: no value wraps, the limit holds at every size. */
static void test_untrusted_lengths(void **state)
{
    (void)state;
    static const uint32_t bad[] = {0xFFFFFFFFu, 0xFFFFFFFBu, 0x80000000u, 0x7FFFFFFFu, 8193, 0, 3};
    uint8_t b[8] = {0};
    uint8_t type;
    uint32_t len;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hdr(b, 'p', bad[i]);
        assert_int_equal(proto_scan_header(b, sizeof b, 8192, &type, &len), PROTO_BAD_LENGTH);
        assert_int_equal(proto_length_too_large(b), bad[i] >= 4);
        proto_put_u32(b, bad[i]);
        if (bad[i] > PROTO_MAX_STARTUP_LEN || bad[i] < 8)
            assert_int_equal(proto_startup_length(b, 4), -1);
    }
    hdr(b, 'p', 8191);
    assert_int_equal(proto_scan_header(b, sizeof b, 8192, &type, &len), PROTO_HEADER);
    assert_int_equal(len, 8192);
}

static void test_startup_error_buffer_edges(void **state)
{
    (void)state;
    uint8_t pkt[64];
    struct proto_startup st;
    char err[8];
    uint32_t len = STARTUP(pkt, PROTO_V3, "database\0shop\0\0");

    assert_int_equal(proto_parse_startup(exact(pkt, len), len, &st, NULL, 0), -1);
    assert_int_equal(proto_parse_startup(exact(pkt, len), len, &st, err, sizeof(err)), -1);
    assert_string_equal(err, "no Post"); /* truncated, still terminated */
}

static void test_startup_max_size_packet(void **state)
{
    (void)state;
    static uint8_t pkt[PROTO_MAX_STARTUP_LEN];
    struct proto_startup st;
    char err[256];
    /* user=u, then a, b, c with values under PROTO_MAX_STARTUP_VALUE that fill the
       packet to exactly PROTO_MAX_STARTUP_LEN. */
    size_t off = 8;
    memcpy(pkt + off, "user\0u\0", 7);
    off += 7;
    size_t room = PROTO_MAX_STARTUP_LEN - off - 1 - 3 * 3; /* final NUL, "x\0" + value NUL */
    size_t vlen[3] = {room / 3, room / 3, room - 2 * (room / 3)};
    for (int i = 0; i < 3; i++) {
        pkt[off++] = (uint8_t)('a' + i);
        pkt[off++] = '\0';
        memset(pkt + off, 'x', vlen[i]);
        off += vlen[i];
        pkt[off++] = '\0';
    }
    pkt[off++] = '\0';
    assert_int_equal(off, PROTO_MAX_STARTUP_LEN);
    proto_put_u32(pkt, PROTO_MAX_STARTUP_LEN);
    proto_put_u32(pkt + 4, PROTO_V3);
    assert_int_equal(parse(pkt, PROTO_MAX_STARTUP_LEN, &st, err), 0);
    assert_int_equal(st.nparams, 4);
    assert_int_equal(strlen(st.values[3]), vlen[2]);
}

/* ---- proto_error_field -------------------------------------------------------- */

static const char *field(const void *body, size_t n, char code)
{
    return proto_error_field(exact(body, n), n, code);
}

#define FIELD(lit, code) field(lit, sizeof(lit) - 1, code)

static void test_error_field_found_and_absent(void **state)
{
    (void)state;
    static const char body[] = "SERROR\0C42P01\0Mrelation \"t\" does not exist\0P15\0\0";
    assert_string_equal(FIELD(body, 'S'), "ERROR");
    assert_string_equal(FIELD(body, 'C'), "42P01");
    assert_string_equal(FIELD(body, 'M'), "relation \"t\" does not exist");
    assert_string_equal(FIELD(body, 'P'), "15");
    assert_null(FIELD(body, 'D'));
    assert_null(FIELD(body, '\0'));
    /* The CVE-2026-6666 shape: no SQLSTATE at all. */
    assert_null(FIELD("SFATAL\0Mgoodbye\0\0", 'C'));
    assert_string_equal(FIELD("SFATAL\0Mgoodbye\0\0", 'M'), "goodbye");
    /* Empty value is still a value; the first of duplicates wins. */
    assert_string_equal(FIELD("C\0\0", 'C'), "");
    assert_string_equal(FIELD("C1\0C2\0\0", 'C'), "1");
}

static void test_error_field_malformed(void **state)
{
    (void)state;
    assert_null(field("", 0, 'C'));
    assert_null(FIELD("\0", 'C'));
    assert_null(FIELD("C", 'C'));
    assert_null(FIELD("C42P01", 'C'));         /* no NUL before end */
    assert_null(FIELD("C42P01\0", 'C'));       /* no terminator */
    assert_null(FIELD("C42P01\0\0junk", 'C')); /* bytes after terminator */
    assert_null(FIELD("C42P01\0Mhalf", 'C'));  /* later field truncated */
    assert_null(FIELD("SERROR\0C42P01\0M", 'M'));
}

/* ---- proto_parse_param_status ------------------------------------------------- */

static int param(const void *body, size_t n, const char **name, const char **value)
{
    return proto_parse_param_status(exact(body, n), n, name, value);
}

#define PARAM(lit, name, value) param(lit, sizeof(lit) - 1, name, value)

static void test_param_status(void **state)
{
    (void)state;
    const char *name = NULL, *value = NULL;

    assert_int_equal(PARAM("TimeZone\0UTC\0", &name, &value), 0);
    assert_string_equal(name, "TimeZone");
    assert_string_equal(value, "UTC");
    assert_ptr_equal(name, copy);
    assert_int_equal(PARAM("application_name\0\0", &name, &value), 0);
    assert_string_equal(value, "");

    name = value = NULL;
    assert_int_equal(param("", 0, &name, &value), -1);
    assert_int_equal(PARAM("\0", &name, &value), -1);
    assert_int_equal(PARAM("\0UTC\0", &name, &value), -1);           /* empty name */
    assert_int_equal(PARAM("TimeZone", &name, &value), -1);          /* no NUL */
    assert_int_equal(PARAM("TimeZone\0", &name, &value), -1);        /* no value */
    assert_int_equal(PARAM("TimeZone\0UTC", &name, &value), -1);     /* value unterminated */
    assert_int_equal(PARAM("TimeZone\0UTC\0\0", &name, &value), -1); /* trailing byte */
    assert_int_equal(PARAM("a\0b\0c\0", &name, &value), -1);
    assert_null(name);
    assert_null(value);
}

/* ---- builders ----------------------------------------------------------------- */

#define EXPECT_BYTES(b, lit)                                                                       \
    do {                                                                                           \
        assert_int_equal(buf_unread(b), sizeof(lit) - 1);                                          \
        assert_memory_equal(buf_head(b), lit, sizeof(lit) - 1);                                    \
    } while (0)

static void test_put_error_bytes(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    assert_int_equal(proto_put_error(&b, "FATAL", "08P01", "bad"), 0);
    EXPECT_BYTES(&b, "E\0\0\0\x1f"
                     "SFATAL\0VFATAL\0C08P01\0Mbad\0\0");
    buf_free(&b);
}

static void test_put_error_round_trip(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    uint8_t type = 0;
    uint32_t len = 0;

    assert_int_equal(proto_put_error(&b, "ERROR", "57014", "canceling statement"), 0);
    assert_int_equal(proto_scan_header(buf_head(&b), buf_unread(&b), 1024, &type, &len),
                     PROTO_HEADER);
    assert_int_equal(type, 'E');
    assert_int_equal(len, buf_unread(&b));
    const uint8_t *body = buf_head(&b) + 5;
    assert_string_equal(proto_error_field(body, len - 5, 'C'), "57014");
    assert_string_equal(proto_error_field(body, len - 5, 'M'), "canceling statement");
    assert_string_equal(proto_error_field(body, len - 5, 'S'), "ERROR");
    assert_string_equal(proto_error_field(body, len - 5, 'V'), "ERROR");
    buf_free(&b);
}

static void test_put_error_null_defaults(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    assert_int_equal(proto_put_error(&b, NULL, NULL, NULL), 0);
    EXPECT_BYTES(&b, "E\0\0\0\x1c"
                     "SERROR\0VERROR\0CXX000\0M\0\0");
    buf_free(&b);
}

static void test_put_notice(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    assert_int_equal(proto_put_notice(&b, "01000", "hi"), 0);
    EXPECT_BYTES(&b, "N\0\0\0\x20"
                     "SNOTICE\0VNOTICE\0C01000\0Mhi\0\0");
    assert_string_equal(proto_error_field(buf_head(&b) + 5, buf_unread(&b) - 5, 'C'), "01000");
    buf_free(&b);
}

static void test_put_auth(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    assert_int_equal(proto_put_auth(&b, 0, NULL, 0), 0);
    EXPECT_BYTES(&b, "R\0\0\0\x08\0\0\0\0");
    buf_reset(&b);
    assert_int_equal(proto_put_auth(&b, 5, "\x01\x02\x03\x04", 4), 0); /* MD5 + salt */
    EXPECT_BYTES(&b, "R\0\0\0\x0c\0\0\0\x05\x01\x02\x03\x04");
    buf_reset(&b);
    assert_int_equal(proto_put_auth(&b, 10, "SCRAM-SHA-256\0\0", 15), 0);
    EXPECT_BYTES(&b, "R\0\0\0\x17\0\0\0\x0a"
                     "SCRAM-SHA-256\0\0");
    buf_free(&b);
}

static void test_put_param_status_round_trip(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    const char *name, *value;
    assert_int_equal(proto_put_param_status(&b, "client_encoding", "UTF8"), 0);
    EXPECT_BYTES(&b, "S\0\0\0\x19"
                     "client_encoding\0UTF8\0");
    assert_int_equal(proto_parse_param_status(buf_head(&b) + 5, buf_unread(&b) - 5, &name, &value),
                     0);
    assert_string_equal(name, "client_encoding");
    assert_string_equal(value, "UTF8");
    buf_free(&b);
}

static void test_put_fixed_messages(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    assert_int_equal(proto_put_backend_key(&b, 0x01020304u, 0xa0b0c0d0u), 0);
    EXPECT_BYTES(&b, "K\0\0\0\x0c\x01\x02\x03\x04\xa0\xb0\xc0\xd0");
    buf_reset(&b);
    assert_int_equal(proto_put_ready(&b, 'T'), 0);
    EXPECT_BYTES(&b, "Z\0\0\0\x05T");
    buf_reset(&b);
    assert_int_equal(proto_put_query(&b, "SELECT 1"), 0);
    EXPECT_BYTES(&b, "Q\0\0\0\x0dSELECT 1\0");
    buf_reset(&b);
    assert_int_equal(proto_put_simple(&b, '1'), 0);
    assert_int_equal(proto_put_simple(&b, 'S'), 0);
    EXPECT_BYTES(&b, "1\0\0\0\x04S\0\0\0\x04");
    buf_free(&b);
}

static void test_put_negotiate_version(void **state)
{
    (void)state;
    uint8_t pkt[128];
    struct proto_startup st;
    char err[256];
    struct wp_buf b = {0};

    /* 3.0 without protocol options: nothing to negotiate. */
    assert_int_equal(parse(pkt, STARTUP(pkt, PROTO_V3, "user\0u\0\0"), &st, err), 0);
    assert_int_equal(proto_put_negotiate_version(&b, &st), 0);
    assert_int_equal(buf_unread(&b), 0);

    /* 3.2: answer 3.0 and list no options. */
    assert_int_equal(parse(pkt, STARTUP(pkt, V3_2, "user\0u\0\0"), &st, err), 0);
    assert_int_equal(st.version, V3_2);
    assert_int_equal(proto_put_negotiate_version(&b, &st), 0);
    EXPECT_BYTES(&b, "v\0\0\0\x0c\0\x03\0\0\0\0\0\0");
    buf_reset(&b);

    /* 3.0 with _pq_ options: each is listed, the GUCs are not. */
    uint32_t len = STARTUP(pkt, PROTO_V3, "_pq_.a\0on\0user\0u\0_pq_.bb\0x\0\0");
    assert_int_equal(parse(pkt, len, &st, err), 0);
    assert_int_equal(proto_put_negotiate_version(&b, &st), 0);
    EXPECT_BYTES(&b, "v\0\0\0\x1b\0\x03\0\0\0\0\0\x02_pq_.a\0_pq_.bb\0");
    buf_reset(&b);

    /* Not a v3 startup: nothing. */
    assert_int_equal(parse(pkt, STARTUP(pkt, PROTO_SSL_REQUEST, ""), &st, err), 0);
    assert_int_equal(proto_put_negotiate_version(&b, &st), 0);
    assert_int_equal(buf_unread(&b), 0);
    buf_free(&b);
}

static void test_put_result_rows(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    const char *names[] = {"db", "n"};
    const char *values[] = {"shop", NULL};

    assert_int_equal(proto_put_row_description(&b, 2, names), 0);
    EXPECT_BYTES(&b, "T\0\0\0\x2f\0\x02"
                     "db\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0"
                     "n\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0");
    buf_reset(&b);
    assert_int_equal(proto_put_data_row(&b, 2, values), 0);
    EXPECT_BYTES(&b, "D\0\0\0\x12\0\x02\0\0\0\x04shop\xff\xff\xff\xff");
    buf_reset(&b);
    assert_int_equal(proto_put_data_row(&b, 0, NULL), 0);
    EXPECT_BYTES(&b, "D\0\0\0\x06\0\0");
    buf_reset(&b);
    assert_int_equal(proto_put_command_complete(&b, "SHOW"), 0);
    EXPECT_BYTES(&b, "C\0\0\0\x09SHOW\0");
    assert_int_equal(proto_put_row_description(&b, -1, names), -1);
    assert_int_equal(proto_put_data_row(&b, 40000, values), -1);
    EXPECT_BYTES(&b, "C\0\0\0\x09SHOW\0");
    buf_free(&b);
}

static void test_put_typed_row_description(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    const char *names[] = {"n", "v"};
    const uint32_t oids[] = {PROTO_OID_INT4, PROTO_OID_NUMERIC};

    /* The type oid of each column (23, 1700); typlen and typmod stay -1, text format. */
    assert_int_equal(proto_put_row_description_typed(&b, 2, names, oids), 0);
    EXPECT_BYTES(&b, "T\0\0\0\x2e\0\x02"
                     "n\0\0\0\0\0\0\0\0\0\0\x17\xff\xff\xff\xff\xff\xff\0\0"
                     "v\0\0\0\0\0\0\0\0\0\x06\xa4\xff\xff\xff\xff\xff\xff\0\0");
    buf_free(&b);
}

static void test_put_parse_close(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    const uint32_t oids[] = {23, 25};

    assert_int_equal(proto_put_parse(&b, "wp_7", "SELECT $1, $2", 2, oids), 0);
    EXPECT_BYTES(&b, "P\0\0\0\x21"
                     "wp_7\0SELECT $1, $2\0\0\x02\0\0\0\x17\0\0\0\x19");
    buf_reset(&b);
    assert_int_equal(proto_put_parse(&b, "", "SELECT 1", 0, NULL), 0);
    EXPECT_BYTES(&b, "P\0\0\0\x10\0SELECT 1\0\0\0");
    buf_reset(&b);
    assert_int_equal(proto_put_parse(&b, "x", "SELECT $1", 1, NULL), -1);
    assert_int_equal(buf_unread(&b), 0);
    assert_int_equal(proto_put_close(&b, 'S', "wp_7"), 0);
    EXPECT_BYTES(&b, "C\0\0\0\x0aSwp_7\0");
    buf_free(&b);
}

static void test_put_appends_after_unread(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    uint8_t type = 0;
    uint32_t len = 0;
    static const char expect[] = {'E', 'N', 'S', 'Z', 'K'};

    /* Leave a consumed prefix so builders must write at len, not at 0 or pos. */
    assert_int_equal(buf_append(&b, "xxxxxxx", 7), 0);
    buf_consume(&b, 3);
    assert_int_equal(proto_put_error(&b, "ERROR", "42601", "syntax error"), 0);
    assert_int_equal(proto_put_notice(&b, "00000", "note"), 0);
    assert_int_equal(proto_put_param_status(&b, "TimeZone", "UTC"), 0);
    assert_int_equal(proto_put_ready(&b, 'I'), 0);
    assert_int_equal(proto_put_backend_key(&b, 1, 2), 0);
    assert_memory_equal(buf_head(&b), "xxxx", 4);
    buf_consume(&b, 4);

    for (size_t i = 0; i < sizeof(expect); i++) {
        assert_int_equal(proto_scan_header(buf_head(&b), buf_unread(&b), 1 << 20, &type, &len),
                         PROTO_HEADER);
        assert_int_equal(type, expect[i]);
        assert_true(len <= buf_unread(&b));
        if (type == 'E')
            assert_string_equal(proto_error_field(buf_head(&b) + 5, len - 5, 'C'), "42601");
        buf_consume(&b, len);
    }
    assert_int_equal(buf_unread(&b), 0);
    buf_free(&b);
}

static void test_put_too_large_leaves_buffer(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    assert_int_equal(proto_put_ready(&b, 'I'), 0);
    uint8_t *data = b.data;
    size_t cap = b.cap;

    /* Bodies the int32 length field cannot describe fail before any allocation. */
    assert_int_equal(proto_put_auth(&b, 12, "", SIZE_MAX), -1);
    assert_int_equal(proto_put_auth(&b, 12, "", (size_t)INT32_MAX), -1);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    EXPECT_BYTES(&b, "Z\0\0\0\x05I");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_split_header),
        cmocka_unit_test(test_scan_min_and_short_lengths),
        cmocka_unit_test(test_scan_max_len),
        cmocka_unit_test(test_scan_no_wrap_at_uint32_max),
        cmocka_unit_test(test_startup_length),
        cmocka_unit_test(test_startup_ssl_gssenc),
        cmocka_unit_test(test_startup_cancel),
        cmocka_unit_test(test_startup_unsupported_versions),
        cmocka_unit_test(test_startup_bad_length),
        cmocka_unit_test(test_startup_v3_full),
        cmocka_unit_test(test_startup_database_defaults_to_user),
        cmocka_unit_test(test_startup_without_user),
        cmocka_unit_test(test_startup_last_duplicate_wins),
        cmocka_unit_test(test_startup_malformed_pairs),
        cmocka_unit_test(test_startup_param_limit),
        cmocka_unit_test(test_startup_error_buffer_edges),
        cmocka_unit_test(test_startup_max_size_packet),
        cmocka_unit_test(test_error_field_found_and_absent),
        cmocka_unit_test(test_error_field_malformed),
        cmocka_unit_test(test_param_status),
        cmocka_unit_test(test_put_error_bytes),
        cmocka_unit_test(test_put_error_round_trip),
        cmocka_unit_test(test_put_error_null_defaults),
        cmocka_unit_test(test_put_notice),
        cmocka_unit_test(test_put_auth),
        cmocka_unit_test(test_put_param_status_round_trip),
        cmocka_unit_test(test_put_fixed_messages),
        cmocka_unit_test(test_put_negotiate_version),
        cmocka_unit_test(test_put_result_rows),
        cmocka_unit_test(test_put_typed_row_description),
        cmocka_unit_test(test_put_parse_close),
        cmocka_unit_test(test_put_appends_after_unread),
        cmocka_unit_test(test_put_too_large_leaves_buffer),
        cmocka_unit_test(test_startup_size_limits),
        cmocka_unit_test(test_untrusted_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, free_copy);
}
