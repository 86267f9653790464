/*
 * fuzz_scan — libFuzzer target for the regular message stream (see README.md).
 *
 * Input: one selector byte choosing max_len, then a stream of messages. The target
 * walks the stream with proto_scan_header as the relay does and opens the bodies
 * the pooler acts on: ErrorResponse/NoticeResponse with proto_error_field and
 * ParameterStatus with proto_parse_param_status. Results are checked against a
 * byte-at-a-time reference and round-tripped through the builders; any mismatch
 * aborts so libFuzzer reports it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/proto.h"

static const uint32_t max_lens[4] = {16, 256, 1u << 20, UINT32_MAX};

/* The same contract as proto_error_field, written with indexes instead of memchr. */
static const char *ref_error_field(const uint8_t *body, size_t n, char field)
{
    const char *found = NULL;
    size_t i = 0;
    for (;;) {
        if (i >= n)
            return NULL;
        uint8_t code = body[i++];
        if (code == 0)
            return i == n ? found : NULL;
        size_t start = i;
        while (i < n && body[i] != 0)
            i++;
        if (i >= n)
            return NULL;
        if (code == (uint8_t)field && !found)
            found = (const char *)body + start;
        i++;
    }
}

/* Rebuilding from the extracted S, C, M must give back the same three values. */
static void round_trip_error(const char *sev, const char *code, const char *msg)
{
    struct wp_buf b = {0};
    uint8_t type;
    uint32_t len;
    if (proto_put_error(&b, sev, code, msg) < 0)
        abort();
    if (proto_scan_header(buf_head(&b), buf_unread(&b), UINT32_MAX, &type, &len) != PROTO_HEADER ||
        type != 'E' || len != buf_unread(&b))
        abort();
    const uint8_t *body = buf_head(&b) + 5;
    if (strcmp(proto_error_field(body, len - 5, 'S'), sev) != 0 ||
        strcmp(proto_error_field(body, len - 5, 'V'), sev) != 0 ||
        strcmp(proto_error_field(body, len - 5, 'C'), code) != 0 ||
        strcmp(proto_error_field(body, len - 5, 'M'), msg) != 0)
        abort();
    buf_free(&b);
}

static void check_error_body(const uint8_t *body, size_t n)
{
    static const char codes[] = {'S', 'V', 'C', 'M', 'D', 'H', 'P', 'W', 'x', '\0', '\xff'};
    for (size_t i = 0; i < sizeof(codes); i++) {
        const char *got = proto_error_field(body, n, codes[i]);
        if (got != ref_error_field(body, n, codes[i]))
            abort();
    }
    const char *sev = proto_error_field(body, n, 'S');
    const char *code = proto_error_field(body, n, 'C');
    const char *msg = proto_error_field(body, n, 'M');
    if (sev && code && msg)
        round_trip_error(sev, code, msg);
}

/* Well-formed exactly when: non-empty name, and the body holds two NULs, the last at the end. */
static int ref_param_ok(const uint8_t *body, size_t n)
{
    size_t nuls = 0;
    for (size_t i = 0; i < n; i++)
        nuls += body[i] == 0;
    return n >= 2 && body[0] != 0 && body[n - 1] == 0 && nuls == 2;
}

static void check_param_status(const uint8_t *msg, uint32_t len)
{
    const uint8_t *body = msg + 5;
    size_t n = len - 5;
    const char *name = NULL, *value = NULL;
    int ok = proto_parse_param_status(body, n, &name, &value) == 0;
    if (ok != ref_param_ok(body, n))
        abort();
    if (!ok)
        return;
    /* A well-formed ParameterStatus rebuilds to the identical bytes. */
    struct wp_buf b = {0};
    if (proto_put_param_status(&b, name, value) < 0)
        abort();
    if (buf_unread(&b) != len || memcmp(buf_head(&b), msg, len) != 0)
        abort();
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t max_len = max_lens[data[0] & 3];
    const uint8_t *p = data + 1;
    size_t left = size - 1;

    for (;;) {
        uint8_t type = 0;
        uint32_t len = 0;
        enum proto_scan r = proto_scan_header(p, left, max_len, &type, &len);
        if (r == PROTO_NEED_MORE) {
            if (left >= 5)
                abort();
            break;
        }
        if (r == PROTO_BAD_LENGTH)
            break;
        if (r != PROTO_HEADER || len < 5 || len > max_len || type != p[0])
            abort();
        if (len > left)
            break; /* the relay would wait for more bytes */
        if (type == 'E' || type == 'N')
            check_error_body(p + 5, len - 5);
        else if (type == 'S')
            check_param_status(p, len);
        p += len;
        left -= len;
    }
    return 0;
}
