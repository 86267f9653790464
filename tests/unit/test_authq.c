/*
 * Unit tests for authq.c's pure parts: what a lookup's result means, the answer cache
 * (expiry, replacement, its bound), the cache key, the kind of a fetched secret, where
 * a lookup goes (auth_user / auth_dbname / auth_query, global and per database), and
 * the lookup's connection string (login as auth_user, search_path pinned); plus the
 * configuration keys themselves.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/auth.h"
#include "warmpool/authq.h"
#include "warmpool/config.h"
#include "warmpool/scram.h"

static void test_interpret(void **state)
{
    (void)state;
    const char *why = NULL;
    assert_int_equal(authq_interpret(0, 2, 1, NULL, 1, &why), AUTHQ_NO_USER);
    assert_int_equal(authq_interpret(1, 2, 0, "md5abc", 0, &why), AUTHQ_FOUND);
    /* PgBouncer's recommended function returns a row of NULLs for a missing user */
    assert_int_equal(authq_interpret(1, 2, 1, NULL, 1, &why), AUTHQ_NO_USER);
    /* expired (rolvaliduntil) or no password at all */
    assert_int_equal(authq_interpret(1, 2, 0, NULL, 1, &why), AUTHQ_NO_PASSWORD);
    assert_int_equal(authq_interpret(1, 2, 0, "", 0, &why), AUTHQ_NO_PASSWORD);
    why = NULL;
    assert_int_equal(authq_interpret(2, 2, 0, "x", 0, &why), AUTHQ_QUERY_FAILED);
    assert_non_null(strstr(why, "more than one row"));
    why = NULL;
    assert_int_equal(authq_interpret(1, 1, 0, NULL, 1, &why), AUTHQ_QUERY_FAILED);
    assert_non_null(strstr(why, "two columns"));
    assert_true(authq_outcome_cacheable(AUTHQ_FOUND));
    assert_true(authq_outcome_cacheable(AUTHQ_NO_USER));
    assert_true(authq_outcome_cacheable(AUTHQ_NO_PASSWORD));
    assert_false(authq_outcome_cacheable(AUTHQ_CONNECT_FAILED));
    assert_false(authq_outcome_cacheable(AUTHQ_QUERY_FAILED));
}

static void test_cache_expiry(void **state)
{
    (void)state;
    struct authq_cache cache = {NULL, 0, 16};
    assert_int_equal(authq_cache_put(&cache, "a\0k", 3, AUTHQ_FOUND, "md5x", 1000, 500), 0);
    assert_int_equal(authq_cache_put(&cache, "b\0k", 3, AUTHQ_NO_USER, NULL, 1000, 2000), 0);
    assert_int_equal(cache.n, 2);
    const struct authq_cache_entry *e = authq_cache_get(&cache, "a\0k", 3, 1499);
    assert_non_null(e);
    assert_int_equal(e->outcome, AUTHQ_FOUND);
    assert_string_equal(e->secret, "md5x");
    e = authq_cache_get(&cache, "b\0k", 3, 1200);
    assert_non_null(e);
    assert_null(e->secret);
    /* Expired at exactly now + ttl, and freed on the way. */
    assert_null(authq_cache_get(&cache, "a\0k", 3, 1500));
    assert_int_equal(cache.n, 1);
    /* A key is compared whole: a prefix is another key. */
    assert_null(authq_cache_get(&cache, "b", 1, 1500));
    assert_null(authq_cache_get(&cache, "b\0k", 3, 3000));
    assert_int_equal(cache.n, 0);
    authq_cache_clear(&cache);
}

static void test_cache_replace_and_bound(void **state)
{
    (void)state;
    struct authq_cache cache = {NULL, 0, 3};
    assert_int_equal(authq_cache_put(&cache, "u1", 2, AUTHQ_FOUND, "old", 0, 100), 0);
    assert_int_equal(authq_cache_put(&cache, "u1", 2, AUTHQ_FOUND, "new", 10, 100), 0);
    assert_int_equal(cache.n, 1);
    assert_string_equal(authq_cache_get(&cache, "u1", 2, 50)->secret, "new");
    assert_int_equal(authq_cache_put(&cache, "u2", 2, AUTHQ_NO_USER, NULL, 10, 50), 0);
    assert_int_equal(authq_cache_put(&cache, "u3", 2, AUTHQ_FOUND, "s3", 10, 300), 0);
    assert_int_equal(cache.n, 3);
    /* Full: the entry closest to expiring (u2) makes room. */
    assert_int_equal(authq_cache_put(&cache, "u4", 2, AUTHQ_FOUND, "s4", 20, 300), 0);
    assert_int_equal(cache.n, 3);
    assert_null(authq_cache_get(&cache, "u2", 2, 20));
    assert_non_null(authq_cache_get(&cache, "u1", 2, 20));
    assert_non_null(authq_cache_get(&cache, "u3", 2, 20));
    assert_non_null(authq_cache_get(&cache, "u4", 2, 20));
    authq_cache_clear(&cache);
    assert_int_equal(cache.n, 0);
    assert_null(cache.head);
}

static void test_secret_kinds(void **state)
{
    (void)state;
    struct scram_keys keys;
    uint8_t salt[16] = {1, 2, 3};
    char verifier[256];
    assert_int_equal(scram_keys_from_password("pw", salt, sizeof salt, 4096, &keys), 0);
    assert_int_equal(scram_build_secret(&keys, verifier, sizeof verifier), 0);

    struct wp_user_secret *s = authq_secret_new("alice", verifier);
    assert_non_null(s);
    assert_int_equal(s->kind, WP_SECRET_SCRAM);
    assert_string_equal(s->user, "alice");
    /* Used as an auth_file entry: a plaintext password checks against the verifier. */
    assert_true(auth_plain_check(s, "pw"));
    assert_false(auth_plain_check(s, "other"));
    authq_secret_free(s);

    char md5[36];
    auth_md5_secret("pw", "alice", md5);
    s = authq_secret_new("alice", md5);
    assert_int_equal(s->kind, WP_SECRET_MD5);
    assert_true(auth_plain_check(s, "pw"));
    authq_secret_free(s);

    s = authq_secret_new("alice", "md5-not-a-hash");
    assert_int_equal(s->kind, WP_SECRET_PLAIN);
    authq_secret_free(s);
    authq_secret_free(NULL);
}

static struct wp_config load(const char *text)
{
    struct wp_config cfg;
    char err[2048];
    int rc = config_load_string("t.ini", text, strlen(text), &cfg, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "%s", err);
    assert_int_equal(rc, 0);
    return cfg;
}

static const char ini[] =
    "[warmpool]\n"
    "auth_type = trust\n"
    "auth_user = pgb_auth\n"
    "auth_query_cache_ttl = 1s\n"
    "[databases]\n"
    "app = host=db1 dbname=appdb user=forced password=secret options='-c work_mem=8MB'\n"
    "other = host=db2 auth_user=other_auth auth_dbname=authdb "
    "auth_query='SELECT u, p FROM f($1)'\n"
    "authdb = host=db3 dbname=realauth\n"
    "lost = host=db4 auth_dbname=nowhere\n"
    "* = host=db5\n";

static void test_config_keys(void **state)
{
    (void)state;
    struct wp_config cfg = load(ini);
    assert_string_equal(cfg.auth_user, "pgb_auth");
    assert_null(cfg.auth_dbname);
    assert_int_equal(cfg.auth_query_cache_ttl, 1000);
    assert_non_null(strstr(cfg.auth_query, "FROM pg_authid WHERE rolname=$1 AND rolcanlogin"));
    const struct wp_db_config *other = config_find_db(&cfg, "other");
    assert_string_equal(other->auth_user, "other_auth");
    assert_string_equal(other->auth_dbname, "authdb");
    assert_string_equal(other->auth_query, "SELECT u, p FROM f($1)");
    /* Taken out of the connection string: never given to libpq. */
    for (int i = 0; i < other->nconn; i++)
        assert_null(strstr(other->conn_keys[i], "auth_"));
    config_free(&cfg);

    struct wp_config defaults = load("[warmpool]\nauth_type = trust\n");
    assert_null(defaults.auth_user);
    assert_int_equal(defaults.auth_query_cache_ttl, 60000);
    assert_string_equal(defaults.auth_query,
                        "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE "
                        "rolpassword END FROM pg_authid WHERE rolname=$1 AND rolcanlogin");
    config_free(&defaults);

    /* As in PgBouncer, auth_user alone (no auth_file) is enough for md5 and SCRAM. */
    static const char no_file[] = "[warmpool]\nauth_type = scram-sha-256\nauth_user = a\n";
    cfg = load(no_file);
    config_free(&cfg);
    static const char db_only[] = "[warmpool]\n[databases]\nx = host=h auth_user=a\n";
    cfg = load(db_only);
    config_free(&cfg);

    char err[1024];
    static const char per_user[] = "[warmpool]\nauth_type = trust\n[users]\nbob = auth_user=x\n";
    assert_int_equal(config_load_string("u.ini", per_user, strlen(per_user), &cfg, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "auth_user cannot be set per user"));
}

static void test_target(void **state)
{
    (void)state;
    struct wp_config cfg = load(ini);
    struct authq_target t;
    const char *why = NULL;

    assert_int_equal(authq_target_for(&cfg, "app", &t, &why), 1);
    assert_string_equal(t.auth_user, "pgb_auth");
    assert_string_equal(t.entry->name, "app");
    assert_string_equal(t.dbname, "appdb");
    assert_ptr_equal(t.query, cfg.auth_query);

    /* Per-database overrides; auth_dbname names the entry the query runs in. */
    assert_int_equal(authq_target_for(&cfg, "other", &t, &why), 1);
    assert_string_equal(t.auth_user, "other_auth");
    assert_string_equal(t.entry->name, "authdb");
    assert_string_equal(t.dbname, "realauth");
    assert_string_equal(t.query, "SELECT u, p FROM f($1)");

    /* The "*" entry serves any name, and the query runs in the database named. */
    assert_int_equal(authq_target_for(&cfg, "anything", &t, &why), 1);
    assert_string_equal(t.entry->name, "*");
    assert_string_equal(t.dbname, "anything");

    assert_int_equal(authq_target_for(&cfg, "lost", &t, &why), 1);
    assert_string_equal(t.entry->name, "*"); /* "nowhere" falls to the "*" entry */
    config_free(&cfg);

    static const char no_star[] = "[warmpool]\nauth_type = trust\n"
                                  "[databases]\n"
                                  "a = host=x auth_user=au\n"
                                  "b = host=x auth_user=au auth_dbname=nowhere\n"
                                  "c = host=x\n";
    cfg = load(no_star);
    assert_int_equal(authq_target_for(&cfg, "a", &t, &why), 1);
    assert_string_equal(t.dbname, "a");
    why = NULL;
    assert_int_equal(authq_target_for(&cfg, "b", &t, &why), -1);
    assert_non_null(strstr(why, "auth_dbname"));
    /* No auth_user for c, and no entry at all for d: auth_query does not apply. */
    assert_int_equal(authq_target_for(&cfg, "c", &t, &why), 0);
    assert_int_equal(authq_target_for(&cfg, "d", &t, &why), 0);
    config_free(&cfg);
}

static const char *value_of(const char **keys, const char **values, const char *key)
{
    const char *found = NULL;
    for (int i = 0; keys[i]; i++)
        if (strcmp(keys[i], key) == 0) {
            assert_null(found); /* each key once */
            found = values[i];
        }
    return found;
}

static void test_conninfo(void **state)
{
    (void)state;
    struct wp_config cfg = load(ini);
    struct authq_target t;
    const char *why, *keys[20], *values[20];
    char opts[256];

    assert_int_equal(authq_target_for(&cfg, "app", &t, &why), 1);
    int n = authq_conninfo(&t, "authpw", opts, sizeof opts, keys, values, 20);
    assert_true(n > 0);
    assert_null(keys[n]);
    assert_string_equal(value_of(keys, values, "host"), "db1");
    /* auth_user's login, not the login the entry forces */
    assert_string_equal(value_of(keys, values, "user"), "pgb_auth");
    assert_string_equal(value_of(keys, values, "password"), "authpw");
    assert_string_equal(value_of(keys, values, "dbname"), "appdb");
    /* The entry's options kept, search_path pinned after them. */
    assert_string_equal(value_of(keys, values, "options"),
                        "-c work_mem=8MB -c search_path=pg_catalog,pg_temp");

    assert_int_equal(authq_target_for(&cfg, "other", &t, &why), 1);
    n = authq_conninfo(&t, NULL, opts, sizeof opts, keys, values, 20);
    assert_true(n > 0);
    assert_string_equal(value_of(keys, values, "host"), "db3");
    assert_null(value_of(keys, values, "password"));
    assert_string_equal(value_of(keys, values, "options"), "-c search_path=pg_catalog,pg_temp");
    assert_string_equal(value_of(keys, values, "dbname"), "realauth");

    /* Too small a buffer or array: refused, never cut. */
    assert_int_equal(authq_conninfo(&t, NULL, opts, 10, keys, values, 20), -1);
    assert_int_equal(authq_conninfo(&t, NULL, opts, sizeof opts, keys, values, 3), -1);
    config_free(&cfg);
}

static void test_key(void **state)
{
    (void)state;
    struct wp_config cfg = load(ini);
    struct authq_target t;
    const char *why;
    size_t la, lb;
    assert_int_equal(authq_target_for(&cfg, "app", &t, &why), 1);
    char *a = authq_key("ab", &t, &la);
    char *b = authq_key("a", &t, &lb);
    assert_true(la != lb || memcmp(a, b, la) != 0);
    free(b);
    b = authq_key("ab", &t, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(b);
    assert_int_equal(authq_target_for(&cfg, "other", &t, &why), 1);
    b = authq_key("ab", &t, &lb);
    assert_true(la != lb || memcmp(a, b, la) != 0);
    free(a);
    free(b);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interpret),
        cmocka_unit_test(test_cache_expiry),
        cmocka_unit_test(test_cache_replace_and_bound),
        cmocka_unit_test(test_secret_kinds),
        cmocka_unit_test(test_config_keys),
        cmocka_unit_test(test_target),
        cmocka_unit_test(test_conninfo),
        cmocka_unit_test(test_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
