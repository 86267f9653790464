/*
 * test_fleet_share — unit tests for pooler/fleet_share.c: names, the published state
 * and its query, the max-min fair allocation, and the rule that lowers a cap at once
 * but raises it only into free room, so that members raising from one snapshot never
 * take more than the budget together.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/config.h"
#include "warmpool/fleet.h"
#include "warmpool/fleet_share.h"
#include "warmpool/runtime.h"

static struct fleet_member member(const char *name, int cap, int held, int want)
{
    struct fleet_member m = {.cap = cap, .held = held, .want = want};
    snprintf(m.name, sizeof m.name, "%s", name);
    return m;
}

static void test_names(void **state)
{
    (void)state;
    assert_true(fleet_name_valid("app-1.prod_x"));
    assert_true(fleet_name_valid("0123456789abcdef"));
    assert_false(fleet_name_valid(""));
    assert_false(fleet_name_valid("0123456789abcdefg"));
    assert_false(fleet_name_valid("a:b"));
    assert_false(fleet_name_valid("a b"));
    assert_false(fleet_name_valid("it's"));
    char s[64] = "web host:6432 and more";
    fleet_name_sanitize(s);
    assert_string_equal(s, "web-host-6432-an");
    assert_true(fleet_name_valid(s));
}

static void test_state_round_trip(void **state)
{
    (void)state;
    char app[64];
    assert_int_equal(fleet_format_state(app, sizeof app, "f", "web-1", 4, 3, 20), 0);
    assert_string_equal(app, "wpfleet:f:web-1:4:3:20");
    struct fleet_member m;
    assert_int_equal(fleet_parse_state(app, "f", &m), 0);
    assert_string_equal(m.name, "web-1");
    assert_int_equal(m.cap, 4);
    assert_int_equal(m.held, 3);
    assert_int_equal(m.want, 20);
    /* The longest state fits PostgreSQL's 63 bytes. */
    assert_int_equal(fleet_format_state(app, sizeof app, "0123456789abcdef", "0123456789abcdef",
                                        123456, 99999, -3),
                     0);
    assert_true(strlen(app) <= 63);
    assert_int_equal(fleet_parse_state(app, "0123456789abcdef", &m), 0);
    assert_int_equal(m.cap, 99999);
    assert_int_equal(m.want, 0);
}

static void test_parse_refuses(void **state)
{
    (void)state;
    struct fleet_member m;
    assert_int_equal(fleet_parse_state("wpfleet:g:web-1:4:3:20", "f", &m), -1);
    assert_int_equal(fleet_parse_state("wpfleet:ff:web-1:4:3:20", "f", &m), -1);
    assert_int_equal(fleet_parse_state("wpfleet:f:web-1", "f", &m), -1);
    assert_int_equal(fleet_parse_state("wpfleet:f:web-1:4:3", "f", &m), -1);
    assert_int_equal(fleet_parse_state("wpfleet:f:web-1:4:3:20:1", "f", &m), -1);
    assert_int_equal(fleet_parse_state("wpfleet:f::4:3:20", "f", &m), -1);
    assert_int_equal(fleet_parse_state("wpfleet:f:w:4:x:20", "f", &m), -1);
    assert_int_equal(fleet_parse_state("wpfleet:f:w:4:123456:20", "f", &m), -1);
    assert_int_equal(fleet_parse_state("wp:f:w", "f", &m), -1);
}

static void test_query(void **state)
{
    (void)state;
    char q[512];
    assert_int_equal(fleet_build_query(q, sizeof q, "my_fleet", "a", 1, 2, 3), 0);
    assert_string_equal(q, "SET application_name = 'wpfleet:my_fleet:a:1:2:3'; SELECT "
                           "application_name, pid = pg_backend_pid() FROM pg_stat_activity "
                           "WHERE datname = "
                           "current_database() AND left(application_name, 17) = "
                           "'wpfleet:my_fleet:'");
    /* Quotes are doubled even though valid names have none. */
    assert_int_equal(fleet_build_publish(q, sizeof q, "a'b", "c", 1, 2, 3), 0);
    assert_string_equal(q, "SET application_name = 'wpfleet:a''b:c:1:2:3'");
    assert_int_equal(fleet_build_query(q, 40, "f", "a", 1, 2, 3), -1);
}

static void test_allocate_alone_and_idle(void **state)
{
    (void)state;
    struct fleet_member m[3] = {member("c", 0, 0, 0), member("a", 0, 0, 30), member("b", 0, 0, 0)};
    fleet_allocate(m, 3, 12);
    assert_string_equal(m[0].name, "a"); /* sorted */
    assert_int_equal(m[0].alloc, 12);    /* the others idle: all of it */
    assert_int_equal(m[1].alloc, 0);
    assert_int_equal(m[2].alloc, 0);
}

static void test_allocate_fair(void **state)
{
    (void)state;
    struct fleet_member m[3] = {member("a", 0, 0, 20), member("b", 0, 0, 20), member("c", 0, 0, 2)};
    fleet_allocate(m, 3, 12);
    assert_int_equal(m[0].alloc, 5); /* 12 - 2 = 10 split evenly */
    assert_int_equal(m[1].alloc, 5);
    assert_int_equal(m[2].alloc, 2);
    struct fleet_member r[3] = {member("x", 0, 0, 9), member("y", 0, 0, 9), member("z", 0, 0, 9)};
    fleet_allocate(r, 3, 11); /* 3 each, remainder 2 to x and y */
    assert_int_equal(r[0].alloc, 4);
    assert_int_equal(r[1].alloc, 4);
    assert_int_equal(r[2].alloc, 3);
}

/* Budget nobody wants lets an idle member keep what it holds, not more. */
static void test_allocate_keeps_held(void **state)
{
    (void)state;
    struct fleet_member m[3] = {member("a", 6, 6, 0), member("b", 4, 4, 2), member("c", 0, 0, 0)};
    fleet_allocate(m, 3, 12);
    assert_int_equal(m[0].alloc, 6); /* keeps its 6 idle backends */
    assert_int_equal(m[1].alloc, 4);
    assert_int_equal(m[2].alloc, 0);
    /* c gets busy: a's idle backends give way to c's want. */
    struct fleet_member w[3] = {member("a", 6, 6, 0), member("b", 4, 4, 2), member("c", 0, 0, 20)};
    fleet_allocate(w, 3, 12);
    assert_int_equal(w[0].alloc, 0);
    assert_int_equal(w[1].alloc, 2);
    assert_int_equal(w[2].alloc, 10);
}

static void test_lower_at_once(void **state)
{
    (void)state;
    struct fleet_member m[2] = {member("a", 12, 12, 20), member("b", 0, 0, 20)};
    fleet_allocate(m, 2, 12);
    assert_int_equal(fleet_next_cap(m, 2, 0, 12), 6);
    /* b may not raise: a still holds the whole budget. */
    assert_int_equal(fleet_next_cap(m, 2, 1, 12), 0);
}

static void test_raise_into_free_room(void **state)
{
    (void)state;
    /* a has lowered to 6 and holds 6: b gets the free 6 (its allocation). */
    struct fleet_member m[2] = {member("a", 6, 6, 20), member("b", 0, 0, 20)};
    fleet_allocate(m, 2, 12);
    assert_int_equal(fleet_next_cap(m, 2, 1, 12), 6);
    /* a is still closing backends above its cap: only what nobody holds. */
    struct fleet_member h[2] = {member("a", 6, 9, 20), member("b", 0, 0, 20)};
    fleet_allocate(h, 2, 12);
    assert_int_equal(fleet_next_cap(h, 2, 1, 12), 3);
}

/* Every member raises from the same snapshot: together they stay within B. */
static void test_simultaneous_raises(void **state)
{
    (void)state;
    struct fleet_member m[3] = {member("a", 0, 0, 20), member("b", 1, 1, 20),
                                member("c", 0, 0, 20)};
    fleet_allocate(m, 3, 12);
    int total = 0;
    for (int i = 0; i < 3; i++) {
        int next = fleet_next_cap(m, 3, i, 12);
        assert_true(next >= m[i].cap);
        assert_true(next <= m[i].alloc);
        total += next > m[i].held ? next : m[i].held;
    }
    assert_true(total <= 12);
    assert_true(total >= 11); /* b's portion goes beyond its share: 1 left for next time */
}

/* A member leaves (its row is gone): the others grow beyond their three-way share. */
static void test_rebalance_after_leave(void **state)
{
    (void)state;
    struct fleet_member m[2] = {member("a", 4, 4, 20), member("b", 4, 4, 20)};
    fleet_allocate(m, 2, 12);
    int a = fleet_next_cap(m, 2, 0, 12), b = fleet_next_cap(m, 2, 1, 12);
    assert_int_equal(a, 6);
    assert_int_equal(b, 6);
}

static void test_fallback(void **state)
{
    (void)state;
    assert_int_equal(fleet_fallback_cap(12, 3), 4);
    assert_int_equal(fleet_fallback_cap(12, 5), 2);
    assert_int_equal(fleet_fallback_cap(12, 0), 12);
}

/* fleet.c's names: fleet_instance, else peer_id, else host-port; the stamp. */
static void test_instance_names(void **state)
{
    (void)state;
    static struct wp_config off, named, peer, host;
    wp_rt.cfg = &off;
    assert_null(fleet_stamp());
    assert_string_equal(fleet_instance(), "");
    named.fleet_name = "shop";
    named.fleet_instance = "web-07";
    named.peer_id = 3;
    wp_rt.cfg = &named;
    assert_string_equal(fleet_stamp(), "wp:shop:web-07");
    peer.fleet_name = "shop";
    peer.fleet_instance = "";
    peer.peer_id = 7;
    wp_rt.cfg = &peer;
    assert_string_equal(fleet_instance(), "7");
    host.fleet_name = "shop";
    host.listen_port = 6432;
    wp_rt.cfg = &host;
    const char *name = fleet_instance();
    assert_true(fleet_name_valid(name));
    assert_true(strlen(name) > 5 && strcmp(name + strlen(name) - 5, "-6432") == 0);
    wp_rt.cfg = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_state_round_trip),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_allocate_alone_and_idle),
        cmocka_unit_test(test_allocate_fair),
        cmocka_unit_test(test_allocate_keeps_held),
        cmocka_unit_test(test_lower_at_once),
        cmocka_unit_test(test_raise_into_free_room),
        cmocka_unit_test(test_simultaneous_raises),
        cmocka_unit_test(test_rebalance_after_leave),
        cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_instance_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
