/*
 * test_buf — unit tests for the growable byte buffer (pooler/buf.c).
 *
 * Covers append, consume, compact, reserve growth and reuse of the consumed prefix,
 * and the size overflow guards (which must fail before calling realloc).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/buf.h"

/* Fill b with n bytes 0, 1, 2, ... so moved data can be checked by value. */
static void fill(struct wp_buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)i;
        assert_int_equal(buf_append(b, &c, 1), 0);
    }
}

static void expect_sequence(const struct wp_buf *b, size_t first, size_t n)
{
    assert_int_equal(buf_unread(b), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(buf_head(b)[i], (uint8_t)(first + i));
}

static void test_append_from_zero(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    assert_int_equal(buf_append(&b, "hello", 5), 0);
    assert_non_null(b.data);
    assert_int_equal(b.cap, 256);
    assert_int_equal(b.pos, 0);
    assert_int_equal(buf_unread(&b), 5);
    assert_memory_equal(buf_head(&b), "hello", 5);
    assert_int_equal(buf_append(&b, " world", 6), 0);
    assert_memory_equal(buf_head(&b), "hello world", 11);
    buf_free(&b);
}

static void test_growth_doubles(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    uint8_t big[600];
    memset(big, 'x', sizeof(big));

    fill(&b, 256);
    assert_int_equal(b.cap, 256);
    fill(&b, 1); /* one past: 256 -> 512 */
    assert_int_equal(b.cap, 512);
    assert_int_equal(buf_append(&b, big, sizeof(big)), 0); /* 857 bytes -> 1024 */
    assert_int_equal(b.cap, 1024);
    assert_int_equal(buf_unread(&b), 857);
    for (size_t i = 0; i < 256; i++)
        assert_int_equal(b.data[i], (uint8_t)i);
    buf_free(&b);
}

static void test_consume(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    fill(&b, 10);
    buf_consume(&b, 3);
    assert_int_equal(b.pos, 3);
    expect_sequence(&b, 3, 7);
    buf_consume(&b, 0);
    expect_sequence(&b, 3, 7);
    /* Consuming everything rewinds, so the next read starts at the front. */
    buf_consume(&b, 7);
    assert_int_equal(b.pos, 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 256);
    buf_free(&b);
}

static void test_compact(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    fill(&b, 10);
    buf_compact(&b); /* nothing consumed: no-op */
    expect_sequence(&b, 0, 10);
    buf_consume(&b, 4);
    uint8_t *data = b.data;
    buf_compact(&b);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.pos, 0);
    assert_int_equal(b.len, 6);
    expect_sequence(&b, 4, 6);
    buf_free(&b);
}

static void test_reserve_with_room(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    assert_int_equal(buf_reserve(&b, 0), 0);
    assert_int_equal(buf_reserve(&b, 100), 0);
    assert_int_equal(b.cap, 256);
    assert_int_equal(buf_unread(&b), 0);
    fill(&b, 50);
    uint8_t *data = b.data;
    assert_int_equal(buf_reserve(&b, 206), 0); /* exactly the free tail */
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, 256);
    expect_sequence(&b, 0, 50);
    buf_free(&b);
}

static void test_reserve_reuses_consumed_prefix(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    fill(&b, 256);
    buf_consume(&b, 200);
    uint8_t *data = b.data;
    /* No tail room, but the consumed prefix is enough: compact, do not grow. */
    assert_int_equal(buf_reserve(&b, 150), 0);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, 256);
    assert_int_equal(b.pos, 0);
    expect_sequence(&b, 200, 56);
    assert_true(b.cap - b.len >= 150);
    buf_free(&b);
}

static void test_reserve_grows_keeping_unread(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    fill(&b, 256);
    buf_consume(&b, 10);
    assert_int_equal(buf_reserve(&b, 100), 0); /* 246 + 100 > 256 */
    assert_int_equal(b.cap, 512);
    assert_int_equal(b.pos, 0);
    expect_sequence(&b, 10, 246);
    assert_int_equal(buf_reserve(&b, 5000), 0);
    assert_int_equal(b.cap, 8192);
    expect_sequence(&b, 10, 246);
    buf_free(&b);
}

static void test_reserve_overflow_guard(void **state)
{
    (void)state;
    struct wp_buf b = {0};

    /* Unallocated: the doubling guard refuses before any realloc. */
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -1);
    assert_int_equal(buf_reserve(&b, SIZE_MAX / 2 + 2), -1);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    assert_true(buf_failed(&b));
    buf_free(&b);
    assert_false(buf_failed(&b));

    /* Each failure on a buffer of its own: one failure makes the next ones trivial. */
    static const size_t extras[] = {SIZE_MAX - 10 /* unread + extra wraps around */,
                                    SIZE_MAX / 2 + 2 /* no wrap, but doubling would */};
    for (size_t i = 0; i < 2; i++) {
        fill(&b, 20);
        buf_consume(&b, 5);
        uint8_t *data = b.data;
        assert_int_equal(buf_reserve(&b, extras[i]), -1);
        assert_ptr_equal(b.data, data);
        assert_true(buf_failed(&b));
        expect_sequence(&b, 5, 15); /* what was there stays */
        buf_free(&b);
    }
    fill(&b, 20);
    assert_int_equal(buf_append(&b, "x", SIZE_MAX - 10), -1);
    expect_sequence(&b, 0, 20);
    buf_free(&b);
}

static void test_failure_is_sticky(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    fill(&b, 10);
    assert_false(buf_failed(&b));
    assert_int_equal(buf_append(&b, "x", SIZE_MAX - 10), -1);
    assert_true(buf_failed(&b));
    assert_int_equal(buf_append(&b, "y", 1), -1); /* room or not */
    assert_int_equal(buf_reserve(&b, 1000), -1);
    expect_sequence(&b, 0, 10); /* what was there stays readable */
    buf_consume(&b, 10);
    buf_release_if_empty(&b);
    assert_true(buf_failed(&b));
    buf_free(&b);
    assert_false(buf_failed(&b));
    assert_int_equal(buf_append(&b, "ok", 2), 0);
    buf_free(&b);
}

static void test_append_space(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    fill(&b, 10);
    uint8_t *space = buf_append_space(&b, 300); /* grows like an append */
    assert_non_null(space);
    assert_int_equal(buf_unread(&b), 310);
    assert_ptr_equal(space, buf_head(&b) + 10);
    for (int i = 0; i < 300; i++)
        space[i] = (uint8_t)(10 + i);
    expect_sequence(&b, 0, 310);
    assert_null(buf_append_space(&b, SIZE_MAX - 10));
    assert_true(buf_failed(&b));
    assert_null(buf_append_space(&b, 1)); /* sticky, room or not */
    assert_int_equal(buf_unread(&b), 310);
    buf_free(&b);
}

static void test_reset_and_free(void **state)
{
    (void)state;
    struct wp_buf b = {0};
    fill(&b, 300);
    buf_consume(&b, 7);
    size_t cap = b.cap;
    buf_reset(&b);
    assert_int_equal(buf_unread(&b), 0);
    assert_int_equal(b.pos, 0);
    assert_int_equal(b.cap, cap); /* memory kept for reuse */
    fill(&b, 3);
    expect_sequence(&b, 0, 3);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.pos + b.len + b.cap, 0);
    buf_free(&b); /* idempotent */
    assert_int_equal(buf_append(&b, "ok", 2), 0);
    assert_memory_equal(buf_head(&b), "ok", 2);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_from_zero),
        cmocka_unit_test(test_growth_doubles),
        cmocka_unit_test(test_consume),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_reserve_with_room),
        cmocka_unit_test(test_reserve_reuses_consumed_prefix),
        cmocka_unit_test(test_reserve_grows_keeping_unread),
        cmocka_unit_test(test_reserve_overflow_guard),
        cmocka_unit_test(test_failure_is_sticky),
        cmocka_unit_test(test_append_space),
        cmocka_unit_test(test_reset_and_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
