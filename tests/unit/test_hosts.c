/*
 * test_hosts — unit tests for pooler/hosts.c: splitting an entry's host, hostaddr and
 * port lists by libpq's rules, the order of a connect per load_balance_hosts, the
 * back-off of hosts that failed, what a login on a given host says about the others,
 * and failovers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/hosts.h"

#define CAP 1000 /* server_login_retry, ms */

static struct wp_hosts *three(void)
{
    const char *err;
    struct wp_hosts *h = hosts_parse("a,b,c", NULL, "5432,5433,5434", &err);
    assert_non_null(h);
    return h;
}

static void join(const struct wp_hosts *h, const struct wp_host_order *o, enum wp_host_field field,
                 const char *want)
{
    char out[256];
    assert_int_equal(hosts_join(h, o, field, out, sizeof out), 0);
    assert_string_equal(out, want);
}

static void test_parse_lists(void **state)
{
    (void)state;
    const char *err;
    struct wp_hosts *h = hosts_parse("a,b", NULL, "6000", &err);
    assert_non_null(h);
    assert_int_equal(h->n, 2);
    assert_string_equal(h->v[1].host, "b");
    assert_string_equal(h->v[1].port, "6000"); /* one port for all */
    assert_null(h->v[0].hostaddr);
    assert_int_equal(h->last, -1);
    assert_true(hosts_same_lists(h, "a,b", NULL, "6000"));
    assert_false(hosts_same_lists(h, "a,b", NULL, "6001"));
    assert_false(hosts_same_lists(h, "a,b", "x", "6000"));
    hosts_free(h);

    h = hosts_parse(NULL, "10.0.0.1,10.0.0.2", NULL, &err); /* hostaddr only */
    assert_non_null(h);
    assert_string_equal(h->v[0].host, "");
    assert_string_equal(h->v[1].hostaddr, "10.0.0.2");
    assert_null(h->v[1].port);
    char text[64];
    hosts_describe(h, 1, text, sizeof text);
    assert_string_equal(text, "10.0.0.2");
    hosts_free(h);

    h = hosts_parse("a,,c", NULL, NULL, &err); /* libpq keeps empty items */
    assert_non_null(h);
    assert_int_equal(h->n, 3);
    assert_string_equal(h->v[1].host, "");
    hosts_free(h);
}

static void test_parse_single_or_bad(void **state)
{
    (void)state;
    const char *err = "unset";
    assert_null(hosts_parse("a", NULL, "5432", &err));
    assert_string_equal(err, ""); /* one host: not ours, no error */
    assert_null(hosts_parse(NULL, NULL, NULL, &err));
    assert_string_equal(err, "");
    assert_null(hosts_parse("a,b,c", NULL, "1,2", &err));
    assert_non_null(strstr(err, "port list"));
    assert_null(hosts_parse("a,b", "1.1.1.1", NULL, &err));
    assert_non_null(strstr(err, "hostaddr"));
    assert_null(hosts_parse("a", NULL, "1,2", &err));
    assert_non_null(strstr(err, "port list"));
    char many[200] = "h";
    for (int i = 1; i < HOSTS_MAX + 1; i++)
        strcat(many, ",h");
    assert_null(hosts_parse(many, NULL, NULL, &err));
    assert_non_null(strstr(err, "32"));
}

static void test_disable_keeps_entry_order(void **state)
{
    (void)state;
    struct wp_hosts *h = three();
    struct wp_host_order o;
    uint64_t rng = 1;
    hosts_order(h, WP_LB_DISABLE, 0, &rng, &o);
    assert_int_equal(o.n, 3);
    join(h, &o, HOSTS_HOST, "a,b,c");
    join(h, &o, HOSTS_PORT, "5432,5433,5434");
    join(h, &o, HOSTS_HOSTADDR, ""); /* the entry has none */
    char tiny[4];
    assert_int_equal(hosts_join(h, &o, HOSTS_HOST, tiny, sizeof tiny), -1);
    hosts_free(h);
}

static void test_random_varies_and_permutes(void **state)
{
    (void)state;
    struct wp_hosts *h = three();
    uint64_t rng = 12345;
    int first_seen[3] = {0};
    for (int k = 0; k < 300; k++) {
        struct wp_host_order o;
        hosts_order(h, WP_LB_RANDOM, 0, &rng, &o);
        assert_int_equal(o.n, 3);
        int seen = 0;
        for (int i = 0; i < 3; i++)
            seen |= 1 << o.order[i];
        assert_int_equal(seen, 7); /* a permutation: every host, once */
        first_seen[o.order[0]]++;
    }
    for (int i = 0; i < 3; i++) /* each about 100 times */
        assert_in_range(first_seen[i], 50, 150);
    hosts_free(h);
}

static void test_round_robin_rotates(void **state)
{
    (void)state;
    struct wp_hosts *h = three();
    uint64_t rng = 1;
    struct wp_host_order o;
    hosts_order(h, WP_LB_ROUND_ROBIN, 0, &rng, &o);
    join(h, &o, HOSTS_HOST, "a,b,c");
    hosts_order(h, WP_LB_ROUND_ROBIN, 0, &rng, &o);
    join(h, &o, HOSTS_HOST, "b,c,a");
    join(h, &o, HOSTS_PORT, "5433,5434,5432"); /* ports follow their hosts */
    hosts_free(h);
}

static void test_failed_host_goes_last_until_backoff_ends(void **state)
{
    (void)state;
    struct wp_hosts *h = three();
    uint64_t rng = 1;
    struct wp_host_order o;
    hosts_order(h, WP_LB_DISABLE, 1000, &rng, &o);
    /* a and b refused: libpq logged in to c */
    assert_int_equal(hosts_logged_in(h, &o, "c", "5434", 1000, CAP), 2);
    assert_int_equal(h->v[0].failures, 1);
    assert_int_equal(h->v[1].failures, 1);
    assert_int_equal(h->v[0].retry_after_ms, 1050);
    hosts_order(h, WP_LB_DISABLE, 1049, &rng, &o);
    join(h, &o, HOSTS_HOST, "c,a,b"); /* not dropped: still tried, last */
    hosts_order(h, WP_LB_DISABLE, 1050, &rng, &o);
    join(h, &o, HOSTS_HOST, "a,b,c"); /* back-off over: the entry's order again */
    hosts_free(h);
}

static void test_backoff_doubles_up_to_cap(void **state)
{
    (void)state;
    struct wp_hosts *h = three();
    uint64_t rng = 1;
    struct wp_host_order o;
    int64_t want[] = {50, 100, 200, 400, 800, 1000, 1000};
    for (int k = 0; k < 7; k++) {
        hosts_order(h, WP_LB_DISABLE, 0, &rng, &o);
        hosts_all_failed(h, &o, 0, CAP);
        assert_int_equal(h->v[1].retry_after_ms, want[k]);
        assert_int_equal(h->v[1].failures, k + 1);
    }
    for (int k = 0; k < 100; k++) /* no overflow however long it stays down */
        hosts_all_failed(h, &o, 0, CAP);
    assert_int_equal(h->v[0].retry_after_ms, CAP);
    hosts_order(h, WP_LB_DISABLE, 0, &rng, &o);
    join(h, &o, HOSTS_HOST, "a,b,c"); /* all in back-off: the entry's order */
    /* a login on b clears b only; a, before it, failed once more */
    assert_int_equal(hosts_logged_in(h, &o, "b", "5433", 0, CAP), 1);
    assert_int_equal(h->v[1].failures, 0);
    assert_int_equal(h->v[1].retry_after_ms, 0);
    assert_int_equal(h->v[0].failures, 108);
    assert_int_equal(h->v[2].failures, 107); /* after the winner: not tried */
    hosts_free(h);
}

static void test_login_matches_host_and_port(void **state)
{
    (void)state;
    const char *err;
    struct wp_hosts *h = hosts_parse("127.0.0.1,127.0.0.1", NULL, "7001,7002", &err);
    uint64_t rng = 1;
    struct wp_host_order o;
    hosts_order(h, WP_LB_DISABLE, 0, &rng, &o);
    assert_int_equal(hosts_logged_in(h, &o, "127.0.0.1", "7002", 0, CAP), 1);
    assert_int_equal(h->v[0].failures, 1);
    assert_int_equal(hosts_logged_in(h, &o, "127.0.0.1", "7003", 0, CAP), -1);
    assert_int_equal(hosts_logged_in(h, &o, "10.0.0.9", "7001", 0, CAP), -1);
    assert_int_equal(h->v[0].failures, 1); /* no match: nothing marked */
    hosts_free(h);

    /* hostaddr only: PQhost reports the address; no port list matches any port */
    h = hosts_parse(NULL, "10.0.0.1,10.0.0.2", NULL, &err);
    hosts_order(h, WP_LB_DISABLE, 0, &rng, &o);
    assert_int_equal(hosts_logged_in(h, &o, "10.0.0.2", "5432", 0, CAP), 1);
    hosts_free(h);
    /* host and hostaddr: PQhost reports the name */
    h = hosts_parse("db1,db2", "10.0.0.1,10.0.0.2", "5432", &err);
    hosts_order(h, WP_LB_DISABLE, 0, &rng, &o);
    join(h, &o, HOSTS_HOSTADDR, "10.0.0.1,10.0.0.2");
    assert_int_equal(hosts_logged_in(h, &o, "db2", "5432", 0, CAP), 1);
    hosts_free(h);
}

static void test_timeout_marks_up_to_current(void **state)
{
    (void)state;
    struct wp_hosts *h = three();
    uint64_t rng = 1;
    struct wp_host_order o;
    hosts_order(h, WP_LB_DISABLE, 0, &rng, &o);
    /* given up while libpq waited on b: a refused, b hung, c never tried */
    assert_int_equal(hosts_timed_out(h, &o, "b", "5433", 0, CAP), 1);
    assert_int_equal(h->v[0].failures, 1);
    assert_int_equal(h->v[1].failures, 1);
    assert_int_equal(h->v[2].failures, 0);
    hosts_order(h, WP_LB_DISABLE, 10, &rng, &o);
    join(h, &o, HOSTS_HOST, "c,a,b"); /* the next connect does not wait on b first */
    assert_int_equal(hosts_timed_out(h, &o, "x", "1", 0, CAP), -1);
    assert_int_equal(h->v[2].failures, 0);
    hosts_free(h);
}

static void test_failover_counted_once(void **state)
{
    (void)state;
    struct wp_hosts *h = three();
    assert_int_equal(hosts_note_backend(h, 0, 1), -1); /* the first: no failover */
    assert_int_equal(hosts_note_backend(h, 0, 1), -1);
    assert_int_equal(hosts_note_backend(h, 1, 1), 0); /* moved from a to b */
    assert_int_equal(hosts_note_backend(h, 1, 1), -1);
    assert_int_equal(hosts_note_backend(h, 1, 1), -1);
    assert_int_equal(h->failovers, 1);
    assert_int_equal(hosts_note_backend(h, 2, 0), -1); /* random pools: not counted */
    assert_int_equal(h->last, 2);
    assert_int_equal(h->failovers, 1);
    char text[64];
    hosts_describe(h, 2, text, sizeof text);
    assert_string_equal(text, "c:5434");
    hosts_free(h);
}

static void test_mode_names(void **state)
{
    (void)state;
    assert_string_equal(hosts_lb_name(WP_LB_DISABLE), "disable");
    assert_string_equal(hosts_lb_name(WP_LB_RANDOM), "random");
    assert_string_equal(hosts_lb_name(WP_LB_ROUND_ROBIN), "round-robin");
    assert_string_equal(hosts_lb_name(7), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_lists),
        cmocka_unit_test(test_parse_single_or_bad),
        cmocka_unit_test(test_disable_keeps_entry_order),
        cmocka_unit_test(test_random_varies_and_permutes),
        cmocka_unit_test(test_round_robin_rotates),
        cmocka_unit_test(test_failed_host_goes_last_until_backoff_ends),
        cmocka_unit_test(test_backoff_doubles_up_to_cap),
        cmocka_unit_test(test_login_matches_host_and_port),
        cmocka_unit_test(test_timeout_marks_up_to_current),
        cmocka_unit_test(test_failover_counted_once),
        cmocka_unit_test(test_mode_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
