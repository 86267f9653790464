/*
 * fuzz_backend_login — libFuzzer target for warmpool's own backend login
 * (backend_login.c): what a server, hostile or broken, can send while warmpool logs in.
 *
 * Input: one flag byte, then backend messages as on the wire (type, int32 length, body),
 * framed with proto_scan_header as server_login.c frames them.
 *   flags & 1   a plaintext password
 *   flags & 2   an md5 secret
 *   flags & 4   SCRAM keys (passed through when flags & 8)
 *
 * Checked, abort() on violation:
 *   - a failure carries a 5-character SQLSTATE and a message;
 *   - ReadyForQuery succeeds only after AuthenticationOk, and never in the middle of a
 *     SCRAM exchange whose server signature was not verified;
 *   - every answer warmpool queues is a whole 'p' message.
 * A random server nonce and salt mean a proof never verifies here: SCRAM success paths
 * are the unit tests' (test_backend_login.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/backend_login.h"
#include "warmpool/proto.h"

static void check_reply(struct wp_buf *reply)
{
    while (buf_unread(reply) > 0) {
        const uint8_t *p = buf_head(reply);
        if (buf_unread(reply) < 5 || p[0] != 'p')
            abort();
        uint32_t len = proto_get_u32(p + 1) + 1;
        if (len < 5 || len > buf_unread(reply))
            abort();
        buf_consume(reply, len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    struct scram_client_keys keys = {.iterations = 4096, .salt_len = 16};
    struct wp_params params = {0};
    struct backend_login bl = {
        .user = "alice",
        .password = flags & 1 ? "pencil" : NULL,
        .md5_secret = flags & 2 ? "md553f48b7c4b76a86ce72276c5755f217d" : NULL,
        .keys = flags & 4 ? &keys : NULL,
        .keys_passed = (flags & 8) != 0,
        .params = &params,
    };
    struct wp_buf reply = {0};
    size_t pos = 1;
    for (;;) {
        uint8_t type;
        uint32_t len;
        if (proto_scan_header(data + pos, size - pos, BACKEND_LOGIN_MAX_MESSAGE, &type, &len) !=
                PROTO_HEADER ||
            len > size - pos)
            break;
        /* An exact-size heap copy, so ASan sees any over-read. */
        uint8_t *body = malloc(len - 5 + 1);
        if (!body)
            break;
        memcpy(body, data + pos + 5, len - 5);
        enum backend_login_result r = backend_login_message(&bl, type, body, len - 5, &reply);
        free(body);
        pos += len;
        check_reply(&reply);
        if (r == BLOGIN_FAILED) {
            if (strlen(bl.sqlstate) != 5 || !bl.error[0])
                abort();
            break;
        }
        if (r == BLOGIN_READY) {
            if (!bl.authenticated || (bl.scram_step != 0 && bl.scram_step != 3))
                abort();
            break;
        }
    }
    backend_login_wipe(&bl);
    params_clear(&params);
    buf_free(&reply);
    return 0;
}
