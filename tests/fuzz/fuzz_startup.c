/*
 * fuzz_startup — libFuzzer target for startup-phase packets (see README.md).
 *
 * Feeds arbitrary bytes to proto_startup_length and proto_parse_startup, both as the
 * pooler does (length first, then the packet) and with the whole input as the packet,
 * and checks what a caller relies on: every pointer lands inside the packet and is
 * NUL-terminated there, user and database are set on success, and the error text is
 * always a terminated string. Any violation aborts so libFuzzer reports it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/proto.h"

/* A string the parser returned must start and end (with its NUL) inside [pkt, pkt+len). */
static void check_str(const char *s, const uint8_t *pkt, uint32_t len)
{
    const uint8_t *p = (const uint8_t *)s;
    if (!s || p < pkt || p >= pkt + len)
        abort();
    if (!memchr(p, '\0', (size_t)(pkt + len - p)))
        abort();
}

/* An accepted packet is exactly its pairs in order plus one NUL: nothing skipped or extra. */
static void check_reserialized(const struct proto_startup *st, const uint8_t *pkt, uint32_t len)
{
    const uint8_t *p = pkt + 8;
    for (int i = 0; i < st->nparams; i++) {
        const char *parts[2] = {st->names[i], st->values[i]};
        for (int j = 0; j < 2; j++) {
            size_t n = strlen(parts[j]) + 1;
            if ((const uint8_t *)parts[j] != p || (size_t)(pkt + len - p) < n)
                abort();
            p += n;
        }
    }
    if (p + 1 != pkt + len || *p != '\0')
        abort();
}

static void check_v3(const struct proto_startup *st, const uint8_t *pkt, uint32_t len)
{
    if (st->nparams < 0 || st->nparams > PROTO_MAX_STARTUP_PARAMS)
        abort();
    for (int i = 0; i < st->nparams; i++) {
        check_str(st->names[i], pkt, len);
        check_str(st->values[i], pkt, len);
        if (st->names[i][0] == '\0')
            abort();
    }
    check_reserialized(st, pkt, len);
    check_str(st->user, pkt, len);
    check_str(st->database, pkt, len);
    if (st->user[0] == '\0' || st->database[0] == '\0')
        abort();
    if (st->version >> 16 != 3)
        abort();
    /* The negotiation builder walks the same params; it must stay consistent. */
    struct wp_buf out = {0};
    if (proto_put_negotiate_version(&out, st) < 0)
        abort();
    uint8_t type;
    uint32_t mlen;
    if (buf_unread(&out)) {
        if (proto_scan_header(buf_head(&out), buf_unread(&out), UINT32_MAX, &type, &mlen) !=
                PROTO_HEADER ||
            type != 'v' || mlen != buf_unread(&out))
            abort();
    }
    buf_free(&out);
}

static void parse_one(const uint8_t *pkt, uint32_t len)
{
    struct proto_startup st;
    char err[128];
    memset(err, 'x', sizeof(err));
    if (proto_parse_startup(pkt, len, &st, err, sizeof(err)) < 0) {
        if (!memchr(err, '\0', sizeof(err)) || err[0] == '\0')
            abort();
        return;
    }
    if (len != proto_get_u32(pkt))
        abort();
    switch (st.kind) {
    case PROTO_STARTUP_V3:
        check_v3(&st, pkt, len);
        break;
    case PROTO_STARTUP_SSL:
    case PROTO_STARTUP_GSSENC:
        if (len != 8)
            abort();
        break;
    case PROTO_STARTUP_CANCEL:
        if (len != 16)
            abort();
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t n = proto_startup_length(data, size);
    if (n < -1 || (size < 4 && n != 0) || n > (int64_t)PROTO_MAX_STARTUP_LEN)
        abort();
    /* As the pooler does: a complete packet of the announced length. */
    if (n > 0 && (size_t)n <= size)
        parse_one(data, (uint32_t)n);
    /* The whole input as the packet; the parser must cope with any len it is given. */
    if (size <= UINT32_MAX)
        parse_one(data, (uint32_t)size);
    return 0;
}
