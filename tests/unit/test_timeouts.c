/*
 * test_timeouts — unit tests for the timer rules in pooler/timeouts.c: which deadline a
 * client has passed (login, query_timeout, idle_transaction_timeout, client_idle_timeout),
 * server_lifetime jitter, when a backend is due for server_check_query, how durations
 * are named, the re-worded 57014 a client gets after a query_timeout cancel, and the
 * relay hooks that start and stop a request's clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/buf.h"
#include "warmpool/client.h"
#include "warmpool/config.h"
#include "warmpool/proto.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/timeouts.h"

static struct wp_pool_settings settings(int64_t query, int64_t idle_tx, int64_t client_idle)
{
    struct wp_pool_settings s;
    memset(&s, 0, sizeof s);
    s.query_timeout = query;
    s.idle_transaction_timeout = idle_tx;
    s.client_idle_timeout = client_idle;
    return s;
}

/* ---- timeouts_judge ---- */

static void test_login_deadline(void **state)
{
    (void)state;
    struct wp_client_clock k = {.logging_in = 1, .login_started_ms = 5000};
    struct wp_pool_settings s = settings(100, 100, 100);
    assert_int_equal(timeouts_judge(&k, &s, 60000, 64999), TIMEOUT_NONE);
    assert_int_equal(timeouts_judge(&k, &s, 60000, 65000), TIMEOUT_LOGIN);
    /* While logging in nothing else applies, and 0 disables the limit. */
    assert_int_equal(timeouts_judge(&k, &s, 0, 1000000), TIMEOUT_NONE);
}

static void test_query_deadline(void **state)
{
    (void)state;
    struct wp_client_clock k = {.running = 1, .query_started_ms = 10000};
    struct wp_pool_settings s = settings(1000, 0, 0);
    assert_int_equal(timeouts_judge(&k, &s, 0, 10999), TIMEOUT_NONE);
    assert_int_equal(timeouts_judge(&k, &s, 0, 11000), TIMEOUT_QUERY);
    k.cancel_sent = 1; /* fires once per request */
    assert_int_equal(timeouts_judge(&k, &s, 0, 20000), TIMEOUT_NONE);
    k.cancel_sent = 0;
    k.running = 0;
    assert_int_equal(timeouts_judge(&k, &s, 0, 20000), TIMEOUT_NONE);
    k.running = 1;
    s.query_timeout = 0;
    assert_int_equal(timeouts_judge(&k, &s, 0, 1000000), TIMEOUT_NONE);
}

static void test_running_is_not_idle(void **state)
{
    (void)state;
    struct wp_client_clock k = {.running = 1, .query_started_ms = 0, .in_transaction = 1};
    struct wp_pool_settings s = settings(0, 1000, 1000);
    assert_int_equal(timeouts_judge(&k, &s, 0, 50000), TIMEOUT_NONE);
}

static void test_idle_transaction_deadline(void **state)
{
    (void)state;
    struct wp_client_clock k = {.idle = 1, .in_transaction = 1, .idle_since_ms = 2000};
    struct wp_pool_settings s = settings(0, 1000, 0);
    assert_int_equal(timeouts_judge(&k, &s, 0, 2999), TIMEOUT_NONE);
    assert_int_equal(timeouts_judge(&k, &s, 0, 3000), TIMEOUT_IDLE_TRANSACTION);
    /* Outside a transaction idle_transaction_timeout has nothing to say. */
    k.in_transaction = 0;
    assert_int_equal(timeouts_judge(&k, &s, 0, 100000), TIMEOUT_NONE);
}

static void test_client_idle_deadline(void **state)
{
    (void)state;
    struct wp_client_clock k = {.idle = 1, .idle_since_ms = 0};
    struct wp_pool_settings s = settings(0, 0, 500);
    assert_int_equal(timeouts_judge(&k, &s, 0, 499), TIMEOUT_NONE);
    assert_int_equal(timeouts_judge(&k, &s, 0, 500), TIMEOUT_CLIENT_IDLE);
    /* Idle inside a transaction is idle too; the transaction limit wins when both pass. */
    k.in_transaction = 1;
    assert_int_equal(timeouts_judge(&k, &s, 0, 500), TIMEOUT_CLIENT_IDLE);
    s.idle_transaction_timeout = 400;
    assert_int_equal(timeouts_judge(&k, &s, 0, 500), TIMEOUT_IDLE_TRANSACTION);
    k.idle = 0;
    assert_int_equal(timeouts_judge(&k, &s, 0, 100000), TIMEOUT_NONE);
}

static void test_transaction_deadline(void **state)
{
    (void)state;
    /* Counted from the transaction's first request, running or idle alike. */
    struct wp_client_clock k = {
        .running = 1, .query_started_ms = 4000, .in_transaction = 1, .xact_started_ms = 1000};
    struct wp_pool_settings s = settings(0, 0, 0);
    s.transaction_timeout = 5000;
    assert_int_equal(timeouts_judge(&k, &s, 0, 5999), TIMEOUT_NONE);
    assert_int_equal(timeouts_judge(&k, &s, 0, 6000), TIMEOUT_TRANSACTION);
    k.running = 0;
    k.idle = 1;
    k.idle_since_ms = 5500;
    assert_int_equal(timeouts_judge(&k, &s, 0, 6000), TIMEOUT_TRANSACTION);
    /* idle_transaction_timeout first when both have passed (PgBouncer's order). */
    s.idle_transaction_timeout = 100;
    assert_int_equal(timeouts_judge(&k, &s, 0, 6000), TIMEOUT_IDLE_TRANSACTION);
    /* query_timeout's cancel comes first; no transaction, or 0: nothing. */
    s.idle_transaction_timeout = 0;
    k.running = 1;
    k.idle = 0;
    s.query_timeout = 1000;
    assert_int_equal(timeouts_judge(&k, &s, 0, 6000), TIMEOUT_QUERY);
    s.query_timeout = 0;
    k.xact_started_ms = 0;
    assert_int_equal(timeouts_judge(&k, &s, 0, 100000), TIMEOUT_NONE);
    k.xact_started_ms = 1000;
    s.transaction_timeout = 0;
    assert_int_equal(timeouts_judge(&k, &s, 0, 100000), TIMEOUT_NONE);
}

/* ---- jitter, health checks, names ---- */

static void test_lifetime_jitter(void **state)
{
    (void)state;
    assert_int_equal(timeouts_jitter_lifetime(0, 12345), 0);
    assert_int_equal(timeouts_jitter_lifetime(2000, 0), 2000);
    assert_int_equal(timeouts_jitter_lifetime(2000, 200), 1800);
    assert_int_equal(timeouts_jitter_lifetime(2000, 201), 2000);
    int64_t lo = INT64_MAX, hi = 0;
    for (uint32_t r = 0; r < 100000; r += 7) {
        int64_t v = timeouts_jitter_lifetime(3600000, r * 2654435761u);
        assert_true(v >= 3600000 - 360000 && v <= 3600000);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    /* Spread over most of the allowed tenth, not bunched together. */
    assert_true(hi - lo > 300000);
    assert_int_equal(timeouts_jitter_lifetime(5, UINT32_MAX), 5);
}

static void test_check_due(void **state)
{
    (void)state;
    assert_true(timeouts_check_due(1000, 0, 1000));
    assert_false(timeouts_check_due(1000, 30000, 31000));
    assert_true(timeouts_check_due(1000, 30000, 31001));
}

static void test_format(void **state)
{
    (void)state;
    char out[32];
    const struct {
        int64_t ms;
        const char *want;
    } cases[] = {{1000, "1s"},     {1500, "1500ms"}, {250, "250ms"},  {0, "0ms"},
                 {60000, "1min"},  {90000, "90s"},   {3600000, "1h"}, {7200000, "2h"},
                 {86400000, "1d"}, {120000, "2min"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        timeouts_format(out, sizeof out, cases[i].ms);
        assert_string_equal(out, cases[i].want);
    }
    timeouts_format(out, 4, 1500);
    assert_string_equal(out, "150"); /* truncated, still terminated */
}

/* ---- re-worded cancel ---- */

/* An ErrorResponse with the given fields ("Xvalue" strings), as PostgreSQL sends it. */
static size_t build_error(uint8_t *out, const char *const *fields, int terminate)
{
    size_t n = 5;
    for (int i = 0; fields[i]; i++) {
        size_t len = strlen(fields[i]) + 1;
        memcpy(out + n, fields[i], len);
        n += len;
    }
    if (terminate)
        out[n++] = '\0';
    out[0] = 'E';
    proto_put_u32(out + 1, (uint32_t)(n - 1));
    return n;
}

static void test_reword_cancel(void **state)
{
    (void)state;
    static const char *const fields[] = {"SERROR",
                                         "VERROR",
                                         "C57014",
                                         "Mcanceling statement due to user request",
                                         "Fpostgres.c",
                                         "L3300",
                                         "RProcessInterrupts",
                                         NULL};
    uint8_t msg[512];
    size_t len = build_error(msg, fields, 1);
    struct wp_buf out = {0};
    buf_append(&out, "xy", 2); /* appends after what is already there */
    assert_int_equal(timeouts_reword_cancel(&out, msg, (uint32_t)len, 1000), 0);
    const uint8_t *e = out.data + 2;
    assert_int_equal(e[0], 'E');
    uint32_t body = proto_get_u32(e + 1) - 4;
    assert_int_equal(out.len, 2 + 5 + body);
    assert_string_equal(proto_error_field(e + 5, body, 'M'),
                        "query_timeout (1s) exceeded: canceling statement");
    assert_string_equal(proto_error_field(e + 5, body, 'C'), "57014");
    assert_string_equal(proto_error_field(e + 5, body, 'S'), "ERROR");
    assert_string_equal(proto_error_field(e + 5, body, 'R'), "ProcessInterrupts");
    assert_string_equal(proto_error_field(e + 5, body, 'L'), "3300");
    /* Field order kept: S V C M F L R. */
    const char *order = "SVCMFLR";
    const uint8_t *f = e + 5;
    for (int i = 0; order[i]; i++) {
        assert_int_equal(*f, order[i]);
        f += strlen((const char *)f + 1) + 2;
    }
    assert_int_equal(*f, 0);
    buf_free(&out);
}

static void test_reword_without_message(void **state)
{
    (void)state;
    static const char *const fields[] = {"SERROR", "C57014", NULL};
    uint8_t msg[128];
    size_t len = build_error(msg, fields, 1);
    struct wp_buf out = {0};
    assert_int_equal(timeouts_reword_cancel(&out, msg, (uint32_t)len, 250), 0);
    assert_string_equal(proto_error_field(out.data + 5, out.len - 5, 'M'),
                        "query_timeout (250ms) exceeded: canceling statement");
    buf_free(&out);
}

static void test_reword_refuses_others(void **state)
{
    (void)state;
    static const char *const other[] = {"SERROR", "C42P01", "Mrelation does not exist", NULL};
    static const char *const cancel[] = {"SERROR", "C57014", "Mcanceled", NULL};
    uint8_t msg[128];
    struct wp_buf out = {0};
    size_t len = build_error(msg, other, 1);
    assert_int_equal(timeouts_reword_cancel(&out, msg, (uint32_t)len, 1000), -1);
    assert_int_equal(out.len, 0);
    /* No terminator: malformed, left alone. */
    len = build_error(msg, cancel, 0);
    assert_int_equal(timeouts_reword_cancel(&out, msg, (uint32_t)len, 1000), -1);
    /* A backend error with no fields at all, or without SQLSTATE: not ours, no crash. */
    static const uint8_t empty[] = {'E', 0, 0, 0, 5, 0};
    assert_int_equal(timeouts_reword_cancel(&out, empty, sizeof empty, 1000), -1);
    static const uint8_t bare[] = {'E', 0, 0, 0, 4};
    assert_int_equal(timeouts_reword_cancel(&out, bare, sizeof bare, 1000), -1);
    static const char *const no_code[] = {"SFATAL", "Mterminating connection", NULL};
    len = build_error(msg, no_code, 1);
    assert_int_equal(timeouts_reword_cancel(&out, msg, (uint32_t)len, 1000), -1);
    assert_int_equal(out.len, 0);
    /* Not an ErrorResponse at all. */
    len = build_error(msg, cancel, 1);
    msg[0] = 'N';
    assert_int_equal(timeouts_reword_cancel(&out, msg, (uint32_t)len, 1000), -1);
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

/* ---- relay hooks ---- */

static void test_request_clock(void **state)
{
    (void)state;
    struct wp_server s;
    struct wp_client c;
    memset(&s, 0, sizeof s);
    memset(&c, 0, sizeof c);
    s.client = &c;
    s.owed.ready = 1;
    timeouts_request_sent(&s);
    int64_t started = s.query_started_ms;
    assert_true(started > 0);
    s.owed.ready = 2;
    timeouts_request_sent(&s); /* pipelined: the clock keeps the first start */
    assert_int_equal(s.query_started_ms, started);
    s.timeout_cancel = 1000;
    s.owed.ready = 1; /* the relay decremented for a ReadyForQuery */
    timeouts_request_answered(&s);
    assert_true(s.query_started_ms >= started);
    assert_int_equal(s.timeout_cancel, 0);
    assert_int_equal(c.answered_ms, 0);
    s.owed.ready = 0;
    timeouts_request_answered(&s);
    assert_int_equal(s.query_started_ms, 0);
    assert_true(c.answered_ms >= started);
    /* An Execute sent after the last Sync keeps the clock running. */
    s.owed.unsynced = 1;
    timeouts_request_answered(&s);
    assert_true(s.query_started_ms > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_deadline),
        cmocka_unit_test(test_query_deadline),
        cmocka_unit_test(test_running_is_not_idle),
        cmocka_unit_test(test_idle_transaction_deadline),
        cmocka_unit_test(test_client_idle_deadline),
        cmocka_unit_test(test_transaction_deadline),
        cmocka_unit_test(test_lifetime_jitter),
        cmocka_unit_test(test_check_due),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_reword_cancel),
        cmocka_unit_test(test_reword_without_message),
        cmocka_unit_test(test_reword_refuses_others),
        cmocka_unit_test(test_request_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
