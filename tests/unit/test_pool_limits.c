/*
 * test_pool_limits — unit tests for pooler/pool_limits.c: the room max_db_connections
 * and max_user_connections leave a pool, from the [warmpool] default and [users]
 * entries, and that a reload (pool_refresh_settings) brings in changed limits.
 * Pools are plain structs with a server count; no server is opened or closed.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/pool.h"
#include "warmpool/pool_limits.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"

#define NPOOLS 3

static struct wp_config cfg;
static struct wp_user_config users[2];
static struct wp_db_config db;
/* a/u1 with 2 servers, b/u1 with 1, a/u2 with 1. */
static struct wp_pool pools[NPOOLS];

static void add_pool(struct wp_pool *p, const char *dbname, const char *user, int nservers)
{
    memset(p, 0, sizeof *p);
    p->dbname = (char *)dbname;
    p->user = (char *)user;
    p->db = &db;
    p->nservers = nservers;
    list_init(&p->idle);
    list_init(&p->active);
    list_init(&p->busy);
    list_init(&p->waiting);
    list_init(&p->welcoming);
    list_push_tail(&wp_rt.pools, &p->node);
}

static int setup(void **state)
{
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    memset(users, 0, sizeof users);
    memset(&db, 0, sizeof db);
    users[0].name = "u1";
    users[1].name = "u2";
    users[0].max_user_connections = users[1].max_user_connections = WP_UNSET;
    memset(&wp_rt, 0, sizeof wp_rt);
    wp_rt.cfg = &cfg;
    list_init(&wp_rt.pools);
    list_init(&wp_rt.clients);
    add_pool(&pools[0], "a", "u1", 2);
    add_pool(&pools[1], "b", "u1", 1);
    add_pool(&pools[2], "a", "u2", 1);
    limits_refresh(&cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NPOOLS; i++) {
        free(pools[i].backend_user);
        free(pools[i].backend_password);
    }
    return 0;
}

static void test_no_limits(void **state)
{
    (void)state;
    for (int i = 0; i < NPOOLS; i++) {
        assert_int_equal(limits_room(&pools[i]), INT_MAX);
        assert_int_equal(limits_room_for(&pools[i]), INT_MAX);
        assert_int_equal(limits_reclaim_idle(&pools[i]), 0);
    }
    struct wp_server s = {.pool = &pools[0]};
    assert_int_equal(limits_hand_over(&s), 0);
    /* [users] entries without a limit change nothing. */
    cfg.users = users;
    cfg.nusers = 2;
    users[0].max_user_connections = 0;
    limits_refresh(&cfg);
    assert_int_equal(limits_room(&pools[0]), INT_MAX);
}

static void test_user_limit_default(void **state)
{
    (void)state;
    cfg.max_user_connections = 5;
    limits_refresh(&cfg);
    assert_int_equal(limits_room(&pools[0]), 2); /* u1: 2 + 1 servers */
    assert_int_equal(limits_room(&pools[1]), 2);
    assert_int_equal(limits_room(&pools[2]), 4); /* u2: 1 server */
    struct wp_server s = {.pool = &pools[0]};
    assert_int_equal(limits_hand_over(&s), 0); /* nobody waits */
}

static void test_user_entries(void **state)
{
    (void)state;
    cfg.users = users;
    cfg.nusers = 2;
    /* The default applies to u2 (not set); u1 is exempt. */
    cfg.max_user_connections = 5;
    users[0].max_user_connections = 0;
    limits_refresh(&cfg);
    assert_int_equal(limits_room(&pools[0]), INT_MAX);
    assert_int_equal(limits_room(&pools[2]), 4);
    /* No default: only the user with an entry is limited. */
    cfg.max_user_connections = 0;
    users[0].max_user_connections = 3;
    limits_refresh(&cfg);
    assert_int_equal(limits_room(&pools[0]), 0);
    assert_int_equal(limits_room(&pools[1]), 0);
    assert_int_equal(limits_room(&pools[2]), INT_MAX);
    /* Above the limit (lowered by a reload): negative room. */
    users[0].max_user_connections = 1;
    limits_refresh(&cfg);
    assert_int_equal(limits_room(&pools[1]), -2);
}

static void test_db_limit(void **state)
{
    (void)state;
    pools[0].settings.max_db_connections = 4;
    pools[2].settings.max_db_connections = 4;
    assert_int_equal(limits_room(&pools[0]), 1); /* db a: 2 + 1 servers */
    assert_int_equal(limits_room(&pools[2]), 1);
    assert_int_equal(limits_room(&pools[1]), INT_MAX);
    /* Both limits: the tighter one. */
    cfg.max_user_connections = 3;
    limits_refresh(&cfg);
    assert_int_equal(limits_room(&pools[0]), 0);
    assert_int_equal(limits_room(&pools[2]), 1);
    assert_int_equal(limits_room(&pools[1]), 0);
}

/* A reload installs a new configuration and refreshes every pool's settings: the
   limits follow, set, changed and removed. */
static void test_reload(void **state)
{
    (void)state;
    static struct wp_config limited, unlimited;
    limited = cfg;
    limited.max_user_connections = 4;
    unlimited = cfg;
    wp_rt.cfg = &limited;
    for (int i = 0; i < NPOOLS; i++)
        pool_refresh_settings(&pools[i]);
    assert_int_equal(limits_room(&pools[0]), 1);
    assert_int_equal(limits_room(&pools[2]), 3);
    wp_rt.cfg = &unlimited;
    for (int i = 0; i < NPOOLS; i++)
        pool_refresh_settings(&pools[i]);
    assert_int_equal(limits_room(&pools[0]), INT_MAX);
    assert_int_equal(limits_room(&pools[2]), INT_MAX);
}

/* A fleet budget before its first read: cap 0, so no room for database a (3 servers
   over its two pools) and none taken from b; without fleet_name the budget is off. */
static void test_fleet_cap_before_first_read(void **state)
{
    (void)state;
    for (int i = 0; i < NPOOLS; i++)
        pools[i].settings.fleet_max_db_connections = 12;
    assert_int_equal(limits_room(&pools[0]), INT_MAX); /* fleet_name empty: off */
    cfg.fleet_name = "f";
    assert_int_equal(limits_room(&pools[0]), -3);
    assert_int_equal(limits_room(&pools[2]), -3);
    assert_int_equal(limits_room(&pools[1]), -1);
    /* The smaller room of max_db_connections and the fleet cap wins. */
    pools[1].settings.max_db_connections = 5;
    assert_int_equal(limits_room(&pools[1]), -1);
    cfg.fleet_name = NULL;
    assert_int_equal(limits_room(&pools[1]), 4);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_no_limits),    T(test_user_limit_default),
        T(test_user_entries), T(test_db_limit),
        T(test_reload),       T(test_fleet_cap_before_first_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
