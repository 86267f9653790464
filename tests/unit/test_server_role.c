/*
 * test_server_role — does a backend's reported state still fit target_session_attrs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "warmpool/server_role.h"

/* A backend that reported in_hot_standby and default_transaction_read_only
   (NULL: not reported). */
static int fits(const char *attrs, const char *standby, const char *read_only)
{
    struct wp_params reported = {0};
    if (standby)
        assert_int_equal(params_set(&reported, "in_hot_standby", standby), 0);
    if (read_only)
        assert_int_equal(params_set(&reported, "default_transaction_read_only", read_only), 0);
    int result = server_role_fits(server_role_wanted(attrs), &reported);
    params_clear(&reported);
    return result;
}

static void test_roles_of_target_session_attrs(void **state)
{
    (void)state;
    assert_int_equal(server_role_wanted(NULL), ROLE_ANY);
    assert_int_equal(server_role_wanted("any"), ROLE_ANY);
    assert_int_equal(server_role_wanted("prefer-standby"), ROLE_ANY);
    assert_int_equal(server_role_wanted("read-write"), ROLE_READ_WRITE);
    assert_int_equal(server_role_wanted("primary"), ROLE_PRIMARY);
    assert_int_equal(server_role_wanted("read-only"), ROLE_READ_ONLY);
    assert_int_equal(server_role_wanted("standby"), ROLE_STANDBY);
}

static void test_read_write_needs_a_writable_primary(void **state)
{
    (void)state;
    assert_true(fits("read-write", "off", "off"));
    assert_false(fits("read-write", "on", "off")); /* demoted: now a standby */
    assert_false(fits("read-write", "off", "on")); /* fenced by a reload */
    assert_true(fits("read-write", NULL, NULL));   /* nothing reported: libpq checked */
    assert_false(fits("read-write", NULL, "on"));
    assert_true(fits("primary", "off", "on")); /* primary ignores read-only */
    assert_false(fits("primary", "on", "off"));
}

static void test_standby_and_read_only(void **state)
{
    (void)state;
    assert_true(fits("standby", "on", "on"));
    assert_false(fits("standby", "off", "on")); /* promoted */
    assert_true(fits("standby", NULL, NULL));
    assert_true(fits("read-only", "on", "off"));
    assert_true(fits("read-only", "off", "on"));
    assert_false(fits("read-only", "off", "off"));
    assert_true(fits("read-only", "off", NULL));
}

static void test_any_always_fits(void **state)
{
    (void)state;
    assert_true(fits(NULL, "on", "on"));
    assert_true(fits("any", "off", "off"));
    assert_true(fits("prefer-standby", "off", "off"));
    assert_true(fits("bogus", "on", "on")); /* libpq refuses it at connect */
}

static void test_role_params(void **state)
{
    (void)state;
    assert_true(server_role_param("in_hot_standby"));
    assert_true(server_role_param("Default_Transaction_Read_Only"));
    assert_false(server_role_param("TimeZone"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles_of_target_session_attrs),
        cmocka_unit_test(test_read_write_needs_a_writable_primary),
        cmocka_unit_test(test_standby_and_read_only),
        cmocka_unit_test(test_any_always_fits),
        cmocka_unit_test(test_role_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
