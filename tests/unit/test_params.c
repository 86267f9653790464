/*
 * test_params — session parameter sets and the SQL that syncs a backend to a client.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/params.h"

static char *sync_sql(const struct wp_params *client, const struct wp_params *server, int *count)
{
    static char text[4096];
    struct wp_buf sql = {0};
    *count = params_build_sync(client, server, &sql);
    size_t n = sql.len < sizeof text - 1 ? sql.len : sizeof text - 1;
    memcpy(text, sql.data ? (const char *)sql.data : "", n);
    text[n] = '\0';
    buf_free(&sql);
    return text;
}

static void test_set_get_replace_remove(void **state)
{
    (void)state;
    struct wp_params p = {0};
    assert_int_equal(params_set(&p, "TimeZone", "UTC"), 0);
    assert_string_equal(params_get(&p, "timezone"), "UTC"); /* GUC names ignore case */
    assert_int_equal(params_set(&p, "timezone", "Asia/Tokyo"), 0);
    assert_int_equal(p.n, 1);
    assert_string_equal(params_get(&p, "TimeZone"), "Asia/Tokyo");
    params_remove(&p, "TIMEZONE");
    assert_null(params_get(&p, "TimeZone"));
    assert_int_equal(p.n, 0);
    assert_true(p.digest == 0);
    params_clear(&p);
}

static void test_digest_is_order_independent(void **state)
{
    (void)state;
    struct wp_params a = {0}, b = {0};
    params_set(&a, "application_name", "x");
    params_set(&a, "TimeZone", "UTC");
    params_set(&b, "TimeZone", "UTC");
    params_set(&b, "application_name", "x");
    assert_true(params_in_sync(&a, &b));
    params_set(&b, "application_name", "y");
    assert_false(params_in_sync(&a, &b));
    params_set(&b, "application_name", "x");
    assert_true(params_in_sync(&a, &b));
    /* read-only reported values never need a sync */
    params_set(&b, "server_version", "15.18");
    assert_true(params_in_sync(&a, &b));
    params_clear(&a);
    params_clear(&b);
}

static void test_sync_sets_differences_only(void **state)
{
    (void)state;
    struct wp_params client = {0}, server = {0};
    params_set(&client, "TimeZone", "Asia/Tokyo");
    params_set(&client, "application_name", "app");
    params_set(&server, "TimeZone", "UTC");
    params_set(&server, "application_name", "app");
    params_set(&server, "server_version", "15.18");
    int n;
    char *sql = sync_sql(&client, &server, &n);
    assert_int_equal(n, 1);
    assert_string_equal(sql, "SELECT pg_catalog.set_config('TimeZone', 'Asia/Tokyo', false);");
    params_apply_sync(&client, &server);
    assert_true(params_in_sync(&client, &server));
    sync_sql(&client, &server, &n);
    assert_int_equal(n, 0);
    params_clear(&client);
    params_clear(&server);
}

static void test_sync_quotes_and_resets(void **state)
{
    (void)state;
    struct wp_params client = {0}, server = {0};
    /* unreported, client-chosen: quoted as a literal, never as SQL */
    params_set(&client, "search_path", "a'; DROP TABLE t; --\\x");
    params_set(&server, "extra_float_digits", "3");
    params_set_reported(&server, "extra_float_digits", 0);
    int n;
    char *sql = sync_sql(&client, &server, &n);
    assert_int_equal(n, 2);
    assert_string_equal(sql, "SELECT pg_catalog.set_config('search_path', "
                             "E'a''; DROP TABLE t; --\\\\x', false);RESET \"extra_float_digits\";");
    params_apply_sync(&client, &server);
    assert_null(params_get(&server, "extra_float_digits"));
    assert_true(params_in_sync(&client, &server));
    params_clear(&client);
    params_clear(&server);
}

static void test_parse_options(void **state)
{
    (void)state;
    struct wp_params p = {0};
    assert_int_equal(params_parse_options(&p, "-c search_path=s1 --statement-timeout=5s "
                                              "-cwork_mem=64MB -c x.y=a\\ b"),
                     0);
    assert_string_equal(params_get(&p, "search_path"), "s1");
    assert_string_equal(params_get(&p, "statement_timeout"), "5s");
    assert_string_equal(params_get(&p, "work_mem"), "64MB");
    assert_string_equal(params_get(&p, "x.y"), "a b");
    assert_int_equal(params_parse_options(&p, "-d 5"), -1);
    assert_int_equal(params_parse_options(&p, "-c user=postgres"), -1); /* reserved */
    assert_int_equal(params_parse_options(&p, "-c"), -1);
    params_clear(&p);
}

static void test_capacity_bound(void **state)
{
    (void)state;
    struct wp_params p = {0};
    char name[32];
    for (int i = 0; i < PARAMS_MAX; i++) {
        snprintf(name, sizeof name, "x.p%d", i);
        assert_int_equal(params_set(&p, name, "v"), 0);
    }
    assert_int_equal(params_set(&p, "x.one_more", "v"), -1);
    params_clear(&p);
}

/* Interned sets: equal contents share one copy; a change copies; the last user frees it. */
static void test_intern_shares_and_copies_on_write(void **state)
{
    (void)state;
    struct wp_params a = {0}, b = {0}, c = {0}, d = {0};
    params_set(&a, "TimeZone", "UTC");
    params_set(&a, "application_name", "app");
    params_set(&b, "application_name", "app"); /* same contents, other order */
    params_set(&b, "TimeZone", "UTC");
    params_set(&c, "TimeZone", "UTC");
    params_set(&c, "application_name", "other");
    params_intern(&a);
    params_intern(&b);
    params_intern(&c);
    assert_int_equal(params_interned_count(), 2);
    assert_ptr_equal(a.items, b.items);
    assert_ptr_not_equal(a.items, c.items);
    params_copy(&d, &a); /* a copy of an interned set shares it too */
    assert_ptr_equal(d.items, a.items);

    /* Setting the value it already has changes nothing and copies nothing. */
    assert_int_equal(params_set(&b, "timezone", "UTC"), 0);
    assert_ptr_equal(a.items, b.items);
    /* A real change gives b its own copy; a and d are untouched. */
    assert_int_equal(params_set(&b, "TimeZone", "Asia/Tokyo"), 0);
    assert_ptr_not_equal(a.items, b.items);
    assert_string_equal(params_get(&a, "TimeZone"), "UTC");
    assert_string_equal(params_get(&d, "TimeZone"), "UTC");
    assert_string_equal(params_get(&b, "TimeZone"), "Asia/Tokyo");
    assert_false(params_in_sync(&a, &b));
    assert_true(params_in_sync(&a, &d));
    params_remove(&d, "application_name"); /* remove copies too */
    assert_string_equal(params_get(&a, "application_name"), "app");
    assert_null(params_get(&d, "application_name"));
    params_set_reported(&c, "application_name", 0);
    assert_int_equal(params_interned_count(), 1); /* c left its set; only a's remains */

    params_clear(&a);
    assert_int_equal(params_interned_count(), 0);
    params_clear(&b);
    params_clear(&c);
    params_clear(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get_replace_remove),
        cmocka_unit_test(test_digest_is_order_independent),
        cmocka_unit_test(test_sync_sets_differences_only),
        cmocka_unit_test(test_sync_quotes_and_resets),
        cmocka_unit_test(test_parse_options),
        cmocka_unit_test(test_capacity_bound),
        cmocka_unit_test(test_intern_shares_and_copies_on_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
