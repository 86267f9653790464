/*
 * backend_login — warmpool's side of a backend login, one message at a time. See
 * backend_login.h; the socket work is server_login.c's.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "warmpool/backend_login.h"
#include "warmpool/proto.h"

/* Authentication request codes (PostgreSQL's protocol). */
enum {
    AUTH_OK = 0,
    AUTH_CLEARTEXT = 3,
    AUTH_MD5 = 5,
    AUTH_SASL = 10,
    AUTH_SASL_CONTINUE = 11,
    AUTH_SASL_FINAL = 12,
};

static enum backend_login_result fail(struct backend_login *bl, const char *sqlstate,
                                      const char *text)
{
    snprintf(bl->sqlstate, sizeof bl->sqlstate, "%s", sqlstate);
    snprintf(bl->error, sizeof bl->error, "%s", text);
    return BLOGIN_FAILED;
}

int backend_login_startup(struct wp_buf *out, const char *const *names, const char *const *values)
{
    size_t len = 8 + 1;
    for (int i = 0; names[i]; i++)
        len += strlen(names[i]) + 1 + strlen(values[i]) + 1;
    if (len > 10000)
        return -1;
    uint8_t *p = buf_append_space(out, len);
    if (!p)
        return -1;
    proto_put_u32(p, (uint32_t)len);
    proto_put_u32(p + 4, 196608); /* 3.0 */
    p += 8;
    for (int i = 0; names[i]; i++) {
        size_t n = strlen(names[i]) + 1, v = strlen(values[i]) + 1;
        memcpy(p, names[i], n);
        memcpy(p + n, values[i], v);
        p += n + v;
    }
    *p = '\0';
    return 0;
}

/* PasswordMessage / SASL(Initial)Response: 'p' and the bytes given. */
static int put_password_message(struct wp_buf *out, const void *a, size_t alen, const void *b,
                                size_t blen)
{
    uint8_t *p = buf_append_space(out, 5 + alen + blen);
    if (!p)
        return -1;
    p[0] = 'p';
    proto_put_u32(p + 1, (uint32_t)(4 + alen + blen));
    memcpy(p + 5, a, alen);
    if (blen)
        memcpy(p + 5 + alen, b, blen);
    return 0;
}

static enum backend_login_result no_memory(struct backend_login *bl)
{
    return fail(bl, "53200", "out of memory");
}

static enum backend_login_result answer_cleartext(struct backend_login *bl, struct wp_buf *reply)
{
    if (!bl->password)
        return fail(bl, "28P01", "the server asked for a password and warmpool has none");
    if (put_password_message(reply, bl->password, strlen(bl->password) + 1, NULL, 0) < 0)
        return no_memory(bl);
    return BLOGIN_MORE;
}

static enum backend_login_result answer_md5(struct backend_login *bl, const uint8_t *data,
                                            size_t len, struct wp_buf *reply)
{
    char answer[36];
    int rc = -1;
    if (len != 4)
        return fail(bl, "08P01", "malformed AuthenticationMD5Password");
    if (bl->password)
        rc = scram_md5_response_from_password(bl->password, bl->user, data, answer);
    else if (bl->md5_secret)
        rc = scram_md5_response_from_secret(bl->md5_secret, data, answer);
    else
        return fail(bl, "28P01", "the server asked for an md5 password and warmpool has none");
    if (rc < 0)
        return fail(bl, "28P01",
                    "cannot compute the md5 answer (the stored md5 secret is invalid)");
    if (put_password_message(reply, answer, sizeof answer, NULL, 0) < 0)
        return no_memory(bl);
    return BLOGIN_MORE;
}

/* The mechanisms offered: SCRAM-SHA-256 chosen; -PLUS alone refused. */
static enum backend_login_result answer_sasl(struct backend_login *bl, const uint8_t *data,
                                             size_t len, struct wp_buf *reply)
{
    int plain = 0, plus = 0;
    for (size_t i = 0; i < len && data[i];) {
        const char *mech = (const char *)data + i;
        size_t n = strnlen(mech, len - i);
        if (n == len - i)
            return fail(bl, "08P01", "malformed AuthenticationSASL");
        plain |= strcmp(mech, "SCRAM-SHA-256") == 0;
        plus |= strcmp(mech, "SCRAM-SHA-256-PLUS") == 0;
        i += n + 1;
    }
    if (!plain)
        return fail(bl, "08006",
                    plus ? "the server requires channel binding "
                           "(SCRAM-SHA-256-PLUS), which warmpool does not support"
                         : "the server offers no SASL mechanism warmpool supports");
    if (!bl->keys && !bl->password)
        return fail(bl, "28P01",
                    "the server asked for a SCRAM login and warmpool has no "
                    "password or SCRAM key for this user (no client has logged in "
                    "with it yet)");
    char first[200];
    if (scram_client_first(&bl->scram, "", NULL, first, sizeof first) < 0)
        return fail(bl, "08006", "cannot start a SCRAM exchange");
    static const char mech[] = "SCRAM-SHA-256";
    uint8_t head[sizeof mech + 4];
    memcpy(head, mech, sizeof mech);
    proto_put_u32(head + sizeof mech, (uint32_t)strlen(first));
    if (put_password_message(reply, head, sizeof head, first, strlen(first)) < 0)
        return no_memory(bl);
    bl->scram_step = 1;
    return BLOGIN_MORE;
}

/* Keys for the server's salt and iteration count: the given ones if they fit, else
   derived from the password (the caller caches them). */
static const struct scram_client_keys *keys_for_exchange(struct backend_login *bl)
{
    const struct scram_client *sc = &bl->scram;
    if (bl->keys && scram_client_keys_match(bl->keys, sc->salt, sc->salt_len, sc->iterations)) {
        bl->keys_reused = 1;
        return bl->keys;
    }
    if (!bl->password || sc->iterations > BACKEND_LOGIN_MAX_ITERATIONS ||
        scram_client_derive(bl->password, sc->salt, sc->salt_len, sc->iterations, &bl->derived) < 0)
        return NULL;
    bl->derived_new = 1;
    return &bl->derived;
}

static enum backend_login_result answer_server_first(struct backend_login *bl, const uint8_t *data,
                                                     size_t len, struct wp_buf *reply)
{
    char err[200] = "", final[400];
    if (bl->scram_step != 1)
        return fail(bl, "08P01", "unexpected SASL continuation from the server");
    if (scram_client_read_server_first(&bl->scram, (const char *)data, len, err, sizeof err) < 0)
        return fail(bl, "08P01", err);
    const struct scram_client_keys *keys = keys_for_exchange(bl);
    if (!keys)
        return fail(bl, "28P01",
                    bl->password ? "cannot derive SCRAM keys from the password (more than "
                                   "100000 iterations asked?)"
                                 : "the server's SCRAM salt or iteration count is "
                                   "not the one of the secret the client logged in "
                                   "with (the password changed?)");
    if (scram_client_final(&bl->scram, keys, final, sizeof final) < 0)
        return fail(bl, "08006", "cannot build the SCRAM client-final-message");
    if (put_password_message(reply, final, strlen(final), NULL, 0) < 0)
        return no_memory(bl);
    bl->scram_step = 2;
    return BLOGIN_MORE;
}

static enum backend_login_result check_server_final(struct backend_login *bl, const uint8_t *data,
                                                    size_t len)
{
    char err[200] = "";
    if (bl->scram_step != 2)
        return fail(bl, "08P01", "unexpected SASL final message from the server");
    const struct scram_client_keys *keys = bl->keys_reused ? bl->keys : &bl->derived;
    int rc =
        scram_client_check_server_final(&bl->scram, keys, (const char *)data, len, err, sizeof err);
    if (rc < 0)
        return fail(bl, "08P01", err);
    if (rc == 0)
        return fail(bl, "08006",
                    "the server's SCRAM signature is wrong: it did not prove that "
                    "it knows the password");
    bl->scram_step = 3;
    return BLOGIN_MORE;
}

static enum backend_login_result on_auth(struct backend_login *bl, const uint8_t *body, size_t len,
                                         struct wp_buf *reply)
{
    if (len < 4)
        return fail(bl, "08P01", "malformed authentication request");
    uint32_t code = proto_get_u32(body);
    const uint8_t *data = body + 4;
    len -= 4;
    switch (code) {
    case AUTH_OK:
        if (bl->scram_step != 0 && bl->scram_step != 3)
            return fail(bl, "08006",
                        "the server ended the SCRAM exchange before proving that "
                        "it knows the password");
        bl->authenticated = 1;
        return BLOGIN_MORE;
    case AUTH_CLEARTEXT:
        return answer_cleartext(bl, reply);
    case AUTH_MD5:
        return answer_md5(bl, data, len, reply);
    case AUTH_SASL:
        return answer_sasl(bl, data, len, reply);
    case AUTH_SASL_CONTINUE:
        return answer_server_first(bl, data, len, reply);
    case AUTH_SASL_FINAL:
        return check_server_final(bl, data, len);
    default: {
        char text[120];
        snprintf(text, sizeof text,
                 "the server asked for an authentication method warmpool "
                 "does not support (code %u)",
                 code);
        return fail(bl, "08006", text);
    }
    }
}

static enum backend_login_result on_error(struct backend_login *bl, const uint8_t *body, size_t len)
{
    const char *state = proto_error_field(body, len, 'C');
    const char *text = proto_error_field(body, len, 'M');
    int valid_state = state && strlen(state) == 5;
    return fail(bl, valid_state ? state : "08006",
                text && *text ? text : "the server refused the login");
}

enum backend_login_result backend_login_message(struct backend_login *bl, uint8_t type,
                                                const uint8_t *body, size_t body_len,
                                                struct wp_buf *reply)
{
    const char *name, *value;
    switch (type) {
    case 'R':
        if (bl->authenticated)
            return fail(bl, "08P01", "authentication request after AuthenticationOk");
        return on_auth(bl, body, body_len, reply);
    case 'E':
        return on_error(bl, body, body_len);
    case 'N':
    case 'v': /* NegotiateProtocolVersion: nothing optional was asked for */
        return BLOGIN_MORE;
    case 'S':
        if (!bl->authenticated || proto_parse_param_status(body, body_len, &name, &value) < 0)
            return fail(bl, "08P01", "malformed or early ParameterStatus");
        if (params_is_reported(name) && bl->params && params_set(bl->params, name, value) < 0)
            return no_memory(bl);
        return BLOGIN_MORE;
    case 'K':
        if (!bl->authenticated || body_len != 8)
            return fail(bl, "08P01", "malformed or early BackendKeyData");
        bl->backend_pid = proto_get_u32(body);
        bl->cancel_key = proto_get_u32(body + 4);
        bl->have_cancel_key = 1;
        return BLOGIN_MORE;
    case 'Z':
        if (!bl->authenticated || body_len != 1)
            return fail(bl, "08P01", "ReadyForQuery before the login finished");
        return BLOGIN_READY;
    default: {
        char text[80];
        snprintf(text, sizeof text, "unexpected message type 0x%02x during login", type);
        return fail(bl, "08P01", text);
    }
    }
}

void backend_login_wipe(struct backend_login *bl)
{
    scram_client_keys_wipe(&bl->derived);
    scram_client_wipe(&bl->scram);
    bl->derived_new = 0;
}
