/*
 * Unit tests for backend_login.c: the StartupMessage, trust, cleartext and md5 (from a
 * password and from a stored md5 secret), a whole SCRAM exchange against a server
 * played here with scram.c (password, cached keys, passed-through keys, a server that
 * cannot sign), channel binding alone refused, ErrorResponse, ParameterStatus,
 * BackendKeyData and ReadyForQuery, and out-of-order or malformed messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/backend_login.h"
#include "warmpool/proto.h"

static enum backend_login_result feed(struct backend_login *bl, uint8_t type, const void *body,
                                      size_t len, struct wp_buf *reply)
{
    return backend_login_message(bl, type, body, len, reply);
}

static enum backend_login_result auth(struct backend_login *bl, uint32_t code, const void *data,
                                      size_t len, struct wp_buf *reply)
{
    uint8_t body[600];
    proto_put_u32(body, code);
    if (len > 0) /* data may be NULL for a request without data (AuthenticationOk) */
        memcpy(body + 4, data, len);
    return feed(bl, 'R', body, 4 + len, reply);
}

/* The body of the one 'p' message in reply, NUL-terminated for comparisons. */
static const char *password_sent(struct wp_buf *reply, size_t *len)
{
    static char copy[1024];
    assert_true(buf_unread(reply) >= 5);
    const uint8_t *p = buf_head(reply);
    assert_int_equal(p[0], 'p');
    *len = proto_get_u32(p + 1) - 4;
    assert_int_equal(buf_unread(reply), *len + 5);
    memcpy(copy, p + 5, *len);
    copy[*len] = '\0';
    buf_consume(reply, *len + 5);
    return copy;
}

static void finish_ok(struct backend_login *bl, struct wp_buf *reply)
{
    static const uint8_t key[8] = {0, 0, 0x30, 0x39, 1, 2, 3, 4};
    static const char param[] = "server_version\00015.0";
    assert_int_equal(feed(bl, 'S', param, sizeof param, reply), BLOGIN_MORE);
    assert_int_equal(feed(bl, 'K', key, 8, reply), BLOGIN_MORE);
    assert_int_equal(feed(bl, 'N', "", 0, reply), BLOGIN_MORE);
    assert_int_equal(feed(bl, 'Z', "I", 1, reply), BLOGIN_READY);
    assert_int_equal(bl->backend_pid, 12345);
    assert_int_equal(bl->cancel_key, 0x01020304);
    assert_true(bl->have_cancel_key);
}

static void test_startup(void **state)
{
    (void)state;
    struct wp_buf out = {0};
    const char *names[] = {"user", "database", NULL}, *values[] = {"alice", "db", NULL};
    assert_int_equal(backend_login_startup(&out, names, values), 0);
    static const char want[] = "\0\0\0\x20\0\x03\0\0user\0alice\0database\0db\0";
    assert_int_equal(buf_unread(&out), sizeof want);
    assert_memory_equal(buf_head(&out), want, sizeof want);
    buf_free(&out);
}

static void test_trust_and_params(void **state)
{
    (void)state;
    struct wp_params params = {0};
    struct backend_login bl = {.user = "alice", .params = &params};
    struct wp_buf reply = {0};
    /* ParameterStatus before AuthenticationOk is out of order. */
    assert_int_equal(feed(&bl, 'S', "a\0b", 4, &reply), BLOGIN_FAILED);
    memset(&bl, 0, sizeof bl);
    bl.user = "alice";
    bl.params = &params;
    assert_int_equal(auth(&bl, 0, NULL, 0, &reply), BLOGIN_MORE);
    finish_ok(&bl, &reply);
    assert_string_equal(params_get(&params, "server_version"), "15.0");
    assert_int_equal(buf_unread(&reply), 0);
    params_clear(&params);
    buf_free(&reply);
}

static void test_cleartext_and_md5(void **state)
{
    (void)state;
    static const uint8_t salt[4] = {1, 2, 3, 4};
    struct wp_buf reply = {0};
    size_t len;
    struct backend_login bl = {.user = "postgres", .password = "secret"};
    assert_int_equal(auth(&bl, 3, NULL, 0, &reply), BLOGIN_MORE);
    assert_string_equal(password_sent(&reply, &len), "secret");
    assert_int_equal(len, 7);
    assert_int_equal(auth(&bl, 5, salt, 4, &reply), BLOGIN_MORE);
    assert_string_equal(password_sent(&reply, &len), "md5bb41a296aab6baccb36ff243a562abff");

    struct backend_login hashed = {.user = "postgres",
                                   .md5_secret = "md553f48b7c4b76a86ce72276c5755f217d"};
    assert_int_equal(auth(&hashed, 5, salt, 4, &reply), BLOGIN_MORE);
    assert_string_equal(password_sent(&reply, &len), "md5bb41a296aab6baccb36ff243a562abff");
    assert_int_equal(auth(&hashed, 3, NULL, 0, &reply), BLOGIN_FAILED); /* no plaintext */
    assert_string_equal(hashed.sqlstate, "28P01");

    struct backend_login none = {.user = "postgres"};
    assert_int_equal(auth(&none, 5, salt, 4, &reply), BLOGIN_FAILED);
    assert_string_equal(none.sqlstate, "28P01");
    assert_int_equal(auth(&bl, 5, salt, 3, &reply), BLOGIN_FAILED); /* short salt */
    buf_free(&reply);
}

static void test_sasl_mechanisms(void **state)
{
    (void)state;
    struct wp_buf reply = {0};
    static const char plus[] = "SCRAM-SHA-256-PLUS\0";
    struct backend_login bl = {.user = "u", .password = "pw"};
    assert_int_equal(auth(&bl, 10, plus, sizeof plus, &reply), BLOGIN_FAILED);
    assert_non_null(strstr(bl.error, "channel binding"));
    static const char other[] = "OTHER\0";
    memset(&bl, 0, sizeof bl);
    bl.password = "pw";
    assert_int_equal(auth(&bl, 10, other, sizeof other, &reply), BLOGIN_FAILED);
    static const char unterminated[] = {'S', 'C'};
    memset(&bl, 0, sizeof bl);
    bl.password = "pw";
    assert_int_equal(auth(&bl, 10, unterminated, 2, &reply), BLOGIN_FAILED);
    assert_string_equal(bl.sqlstate, "08P01");
    static const char both[] = "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0";
    memset(&bl, 0, sizeof bl);
    assert_int_equal(auth(&bl, 10, both, sizeof both, &reply), BLOGIN_FAILED); /* no secret */
    assert_string_equal(bl.sqlstate, "28P01");
    memset(&bl, 0, sizeof bl);
    bl.password = "pw";
    assert_int_equal(auth(&bl, 10, both, sizeof both, &reply), BLOGIN_MORE);
    size_t len;
    const char *sent = password_sent(&reply, &len);
    assert_string_equal(sent, "SCRAM-SHA-256");
    assert_int_equal(strncmp(sent + 18, "n,,n=,r=", 8), 0);
    backend_login_wipe(&bl);
    buf_free(&reply);
}

/* A server played with scram.c's server side; returns the login's state after it. */
static enum backend_login_result scram_exchange(struct backend_login *bl, const char *password,
                                                int break_signature)
{
    struct wp_buf reply = {0};
    struct scram_state server = {0};
    static const uint8_t salt[16] = "0123456789abcdef";
    char first[SCRAM_SERVER_FIRST_MAX], final[SCRAM_SERVER_FINAL_MAX], err[200];
    size_t len;
    assert_int_equal(scram_keys_from_password(password, salt, sizeof salt, 4096, &server.keys), 0);
    static const char mech[] = "SCRAM-SHA-256\0";
    assert_int_equal(auth(bl, 10, mech, sizeof mech, &reply), BLOGIN_MORE);
    const char *sent = password_sent(&reply, &len);
    assert_int_equal(scram_handle_client_first(&server, &server.keys, sent + 18, len - 18, first,
                                               sizeof first, err, sizeof err),
                     0);
    assert_int_equal(auth(bl, 11, first, strlen(first), &reply), BLOGIN_MORE);
    sent = password_sent(&reply, &len);
    int ok = scram_handle_client_final(&server, sent, len, final, sizeof final, err, sizeof err);
    enum backend_login_result r = BLOGIN_FAILED;
    if (ok == 1) {
        if (break_signature)
            final[3] = final[3] == 'A' ? 'B' : 'A';
        r = auth(bl, 12, final, strlen(final), &reply);
        if (r == BLOGIN_MORE)
            r = auth(bl, 0, NULL, 0, &reply);
    }
    scram_state_clear(&server);
    buf_free(&reply);
    return r;
}

static void test_scram_password_then_cached(void **state)
{
    (void)state;
    struct backend_login bl = {.user = "u", .password = "pencil"};
    assert_int_equal(scram_exchange(&bl, "pencil", 0), BLOGIN_MORE);
    assert_true(bl.authenticated);
    assert_true(bl.derived_new);
    assert_false(bl.keys_reused);
    struct scram_client_keys cached = bl.derived;
    /* The next login with the keys cached: no derivation. */
    struct backend_login again = {.user = "u", .password = "pencil", .keys = &cached};
    assert_int_equal(scram_exchange(&again, "pencil", 0), BLOGIN_MORE);
    assert_true(again.keys_reused);
    assert_false(again.derived_new);
    /* Keys alone (pass-through), no password. */
    struct backend_login passed = {.user = "u", .keys = &cached, .keys_passed = 1};
    assert_int_equal(scram_exchange(&passed, "pencil", 0), BLOGIN_MORE);
    /* A server with another password refuses the proof (no final message). */
    struct backend_login wrong = {.user = "u", .keys = &cached};
    assert_int_equal(scram_exchange(&wrong, "other", 0), BLOGIN_FAILED);
    backend_login_wipe(&bl);
}

static void test_scram_bad_server_signature(void **state)
{
    (void)state;
    struct backend_login bl = {.user = "u", .password = "pencil"};
    assert_int_equal(scram_exchange(&bl, "pencil", 1), BLOGIN_FAILED);
    assert_false(bl.authenticated);
    assert_non_null(strstr(bl.error, "signature"));
    /* AuthenticationOk in the middle of an exchange: refused too. */
    struct wp_buf reply = {0};
    struct backend_login mid = {.user = "u", .password = "pencil"};
    static const char mech[] = "SCRAM-SHA-256\0";
    assert_int_equal(auth(&mid, 10, mech, sizeof mech, &reply), BLOGIN_MORE);
    assert_int_equal(auth(&mid, 0, NULL, 0, &reply), BLOGIN_FAILED);
    assert_int_equal(auth(&mid, 11, "r=x", 3, &reply), BLOGIN_FAILED); /* step 1 still */
    buf_free(&reply);
}

static void test_error_and_junk(void **state)
{
    (void)state;
    struct wp_buf reply = {0};
    struct backend_login bl = {.user = "u"};
    static const char error[] = "SFATAL\0C28000\0Mrole \"u\" is not permitted to log in\0";
    assert_int_equal(feed(&bl, 'E', error, sizeof error, &reply), BLOGIN_FAILED);
    assert_string_equal(bl.sqlstate, "28000");
    assert_string_equal(bl.error, "role \"u\" is not permitted to log in");
    memset(&bl, 0, sizeof bl);
    assert_int_equal(feed(&bl, 'E', "Cxx\0", 5, &reply), BLOGIN_FAILED);
    assert_string_equal(bl.sqlstate, "08006");
    memset(&bl, 0, sizeof bl);
    assert_int_equal(feed(&bl, 'Z', "I", 1, &reply), BLOGIN_FAILED); /* not logged in */
    assert_int_equal(feed(&bl, 'D', "", 0, &reply), BLOGIN_FAILED);
    assert_int_equal(auth(&bl, 7, NULL, 0, &reply), BLOGIN_FAILED); /* GSS */
    assert_int_equal(feed(&bl, 'R', "\0", 1, &reply), BLOGIN_FAILED);
    assert_int_equal(auth(&bl, 0, NULL, 0, &reply), BLOGIN_MORE);
    assert_int_equal(feed(&bl, 'K', "1234567", 7, &reply), BLOGIN_FAILED);
    assert_int_equal(auth(&bl, 0, NULL, 0, &reply), BLOGIN_FAILED); /* twice */
    assert_int_equal(buf_unread(&reply), 0);
    buf_free(&reply);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_startup),
        cmocka_unit_test(test_trust_and_params),
        cmocka_unit_test(test_cleartext_and_md5),
        cmocka_unit_test(test_sasl_mechanisms),
        cmocka_unit_test(test_scram_password_then_cached),
        cmocka_unit_test(test_scram_bad_server_signature),
        cmocka_unit_test(test_error_and_junk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
