/*
 * test_config_keys — the key table (pooler/config_keys.c) and what it drives, and the
 * PgBouncer side of the loader: every key loads its own default, SHOW CONFIG lists each
 * key once, overrides go through the table, %include (nesting, loops, depth, messages
 * that name the included file), [pgbouncer], keys accepted without effect (one notice
 * each), fractional durations, per-database datestyle/timezone, and docs/CONFIG.md
 * naming every key. Run from the repository root (make unit does).
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "warmpool/admin.h"
#include "warmpool/config.h"
#include "warmpool/config_keys.h"
#include "warmpool/from_pgbouncer.h"
#include "warmpool/hosts.h"
#include "warmpool/tls.h"

/* A private directory for the files of one test. */
static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/warmpool-test-keys-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes dir/name and returns its path (static buffer per call site is the caller's). */
static void write_file(const char *name, const char *text, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

struct loaded {
    struct wp_config cfg;
    char err[8192];
    int rc;
};

static void load(struct loaded *l, const char *path)
{
    l->rc = config_load(path, &l->cfg, l->err, sizeof l->err);
}

static void load_ok(struct loaded *l, const char *path)
{
    load(l, path);
    if (l->rc != 0)
        print_error("unexpected errors:\n%s", l->err);
    assert_int_equal(l->rc, 0);
}

static void expect_error(const struct loaded *l, const char *file, int line, const char *msg)
{
    char want[1024];

    snprintf(want, sizeof want, "%s:%d: %s\n", file, line, msg);
    if (l->rc != -1 || !strstr(l->err, want)) {
        print_error("wanted: %sgot (rc=%d):\n%s", want, l->rc, l->err);
        fail();
    }
}

static int count_notices(const struct wp_config *cfg)
{
    int n = 0;
    while (cfg->notices && cfg->notices[n])
        n++;
    return n;
}

/* ---------------------------------------------------------------- the table */

/* Each key, written with its own default in each section it is allowed in, loads. */
static void test_every_key_loads_its_default(void **state)
{
    (void)state;
    char path[256];
    size_t cap = 1 << 16, used = 0;
    char *text = malloc(cap);
    assert_non_null(text);

    used += (size_t)snprintf(text + used, cap - used, "[pgbouncer]\n");
    for (int i = 0; i < wp_nkeys; i++) {
        const struct wp_key *k = &wp_keys[i];
        if (!(k->sections & WP_SEC_GLOBAL) || !k->dflt || strcmp(k->name, "auth_type") == 0)
            continue;
        used += (size_t)snprintf(text + used, cap - used, "%s = %s\n", k->name, k->dflt);
    }
    used += (size_t)snprintf(text + used, cap - used, "auth_type = trust\n[databases]\nd =");
    for (int i = 0; i < wp_nkeys; i++) {
        const struct wp_key *k = &wp_keys[i];
        if ((k->sections & WP_SEC_DB) && k->dflt && *k->dflt)
            used += (size_t)snprintf(text + used, cap - used, " %s='%s'", k->name, k->dflt);
    }
    used += (size_t)snprintf(text + used, cap - used, "\n[users]\nu =");
    for (int i = 0; i < wp_nkeys; i++) {
        const struct wp_key *k = &wp_keys[i];
        if ((k->sections & WP_SEC_USER) && k->dflt && *k->dflt)
            used += (size_t)snprintf(text + used, cap - used, " %s='%s'", k->name, k->dflt);
    }
    used += (size_t)snprintf(text + used, cap - used, "\n");
    assert_true(used < cap);
    write_file("defaults.ini", text, path, sizeof path);
    free(text);

    struct loaded l;
    load_ok(&l, path);
    config_free(&l.cfg);
}

/* Names are unique per section; aliases follow a stored row of the same field;
   PgBouncer's own keys carry their name. */
static void test_table_is_consistent(void **state)
{
    (void)state;
    for (int i = 0; i < wp_nkeys; i++) {
        const struct wp_key *k = &wp_keys[i];
        for (int j = 0; j < i; j++) {
            if ((wp_keys[j].sections & k->sections) && strcmp(wp_keys[j].name, k->name) == 0) {
                print_error("%s is listed twice for one section\n", k->name);
                fail();
            }
        }
        if (k->flags & WP_KEY_ALIAS) {
            assert_true(config_key_canonical(i) < i);
            assert_null(k->dflt);
        }
        if (k->type == WP_KEY_NO_EFFECT) {
            assert_int_equal(k->base, WP_KEY_NOWHERE);
            assert_string_equal(k->pgbouncer, k->name);
        }
        if (k->pgbouncer)
            assert_true(strlen(k->pgbouncer) > 0);
    }
}

/* SHOW CONFIG: every stored [warmpool] key once, in the table's order, nothing else. */
static void test_show_config_lists_every_key_once(void **state)
{
    (void)state;
    int expected = 0;
    for (int i = 0; i < wp_nkeys; i++)
        expected += config_key_shown(&wp_keys[i]);
    assert_int_equal(admin_config_rows(), expected);

    struct wp_config cfg;
    char err[1024], value[1024];
    char path[256];
    write_file("show.ini", "[warmpool]\nauth_type = trust\n", path, sizeof path);
    assert_int_equal(config_load(path, &cfg, err, sizeof err), 0);
    for (int r = 0; r < admin_config_rows(); r++) {
        const char *key = admin_config_value(&cfg, r, value, sizeof value);
        for (int s = 0; s < r; s++) {
            char other[1024];
            assert_string_not_equal(admin_config_value(&cfg, s, other, sizeof other), key);
        }
        int i = config_key_find(key, WP_SEC_GLOBAL);
        assert_true(i >= 0);
        assert_true(config_key_shown(&wp_keys[i]));
    }
    for (int i = 0; i < wp_nkeys; i++) {
        const struct wp_key *k = &wp_keys[i];
        bool stored = k->base == WP_KEY_IN_CONFIG || k->base == WP_KEY_IN_POOL;
        if ((k->sections & WP_SEC_GLOBAL) && stored && !(k->flags & WP_KEY_ALIAS))
            assert_true(config_key_shown(k));
    }
    config_free(&cfg);

    /* auth_query's keys are rows with the values in force, not keys without effect */
    write_file("show.ini",
               "[warmpool]\nauth_type = md5\nauth_user = lookup\nauth_dbname = authdb\n"
               "auth_query = SELECT u, p FROM f($1)\nauth_query_cache_ttl = 90s\n"
               "[databases]\nauthdb = host=h\n",
               path, sizeof path);
    assert_int_equal(config_load(path, &cfg, err, sizeof err), 0);
    assert_null(cfg.notices);
    static const struct {
        const char *key, *value;
    } want[] = {
        {"auth_user", "lookup"},
        {"auth_query", "SELECT u, p FROM f($1)"},
        {"auth_dbname", "authdb"},
        {"auth_query_cache_ttl", "90s"},
    };
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        int found = 0;
        for (int r = 0; r < admin_config_rows(); r++) {
            if (strcmp(admin_config_value(&cfg, r, value, sizeof value), want[w].key) != 0)
                continue;
            assert_string_equal(value, want[w].value);
            found++;
        }
        assert_int_equal(found, 1);
    }
    config_free(&cfg);
}

/* An entry that sets nothing inherits everything; what it sets, through any alias,
   wins; a user entry wins over a database entry. */
static void test_overrides_follow_the_table(void **state)
{
    (void)state;
    char path[256];
    write_file("over.ini",
               "[warmpool]\nauth_type = trust\nmax_pool_size = 9\nquery_timeout = 30\n"
               "[databases]\nplain = host=h\n"
               "tuned = host=h pool_size=3 reserve_pool=2 query_timeout=0.5 "
               "pool_mode=transaction server_lifetime=1.5min\n"
               "[users]\nbob = max_pool_size=1 query_timeout=250ms\n",
               path, sizeof path);
    struct loaded l;
    load_ok(&l, path);
    struct wp_pool_settings eff;
    const struct wp_db_config *plain = config_find_db(&l.cfg, "plain");
    const struct wp_db_config *tuned = config_find_db(&l.cfg, "tuned");
    const struct wp_user_config *bob = config_find_user(&l.cfg, "bob");
    assert_non_null(plain);
    assert_non_null(tuned);
    assert_non_null(bob);

    config_effective(&l.cfg, plain, NULL, &eff);
    assert_memory_equal(&eff, &l.cfg.pool, sizeof eff);

    config_effective(&l.cfg, tuned, NULL, &eff);
    assert_int_equal(eff.max_pool_size, 3);
    assert_int_equal(eff.reserve_pool_size, 2);
    assert_int_equal(eff.query_timeout, 500);
    assert_int_equal(eff.pool_mode, WP_MODE_TRANSACTION);
    assert_int_equal(eff.server_lifetime, 90000);
    assert_int_equal(eff.query_wait_timeout, l.cfg.pool.query_wait_timeout);

    config_effective(&l.cfg, tuned, bob, &eff);
    assert_int_equal(eff.max_pool_size, 1);
    assert_int_equal(eff.query_timeout, 250);
    assert_int_equal(eff.reserve_pool_size, 2);
    config_free(&l.cfg);
}

/* docs/CONFIG.md names every key of the table. */
static void test_docs_name_every_key(void **state)
{
    (void)state;
    FILE *fp = fopen("docs/CONFIG.md", "r");
    if (!fp)
        skip(); /* not run from the repository root */
    static char doc[1 << 18];
    size_t n = fread(doc, 1, sizeof doc - 1, fp);
    fclose(fp);
    doc[n] = '\0';
    int missing = 0;
    for (int i = 0; i < wp_nkeys; i++) {
        char quoted[128];
        snprintf(quoted, sizeof quoted, "`%s`", wp_keys[i].name);
        if (!strstr(doc, quoted)) {
            print_error("docs/CONFIG.md does not mention %s\n", quoted);
            missing++;
        }
    }
    assert_int_equal(missing, 0);
}

/* ---------------------------------------------------------------- PgBouncer files */

static void test_include_nested(void **state)
{
    (void)state;
    char main_path[256], mid[256], leaf[256], text[1024];

    write_file("leaf.ini", "[databases]\nleafdb = host=h dbname=x\n", leaf, sizeof leaf);
    snprintf(text, sizeof text, "[users]\nbob = pool_mode=session\n%%include %s\n", leaf);
    write_file("mid.ini", text, mid, sizeof mid);
    snprintf(text, sizeof text,
             "[pgbouncer]\nauth_type = trust\n  %%include %s  \n[pgbouncer]\nlisten_port = 7001\n",
             mid);
    write_file("main.ini", text, main_path, sizeof main_path);

    struct loaded l;
    load_ok(&l, main_path);
    const struct wp_db_config *db = config_find_db(&l.cfg, "leafdb");
    assert_non_null(db);
    assert_string_equal(db->file, leaf);
    assert_int_equal(db->line, 2);
    assert_non_null(config_find_user(&l.cfg, "bob"));
    assert_int_equal(l.cfg.listen_port, 7001);
    assert_string_equal(l.cfg.files[0], main_path);
    assert_string_equal(l.cfg.files[1], mid);
    assert_string_equal(l.cfg.files[2], leaf);
    assert_null(l.cfg.files[3]);
    config_free(&l.cfg);

    /* an error inside an included file names that file and its line; a duplicate
       across files names where the first one is */
    write_file("leaf.ini", "[databases]\nleafdb = host=h\n[pgbouncer]\nno_such_key = 1\n", leaf,
               sizeof leaf);
    snprintf(text, sizeof text, "[databases]\nleafdb = host=h\n%%include %s\nlate = 1\n", leaf);
    write_file("main.ini", text, main_path, sizeof main_path);
    load(&l, main_path);
    char msg[512];
    snprintf(msg, sizeof msg, "duplicate database \"leafdb\" (first defined on %s:2)", main_path);
    expect_error(&l, leaf, 2, msg);
    expect_error(&l, leaf, 4, "unknown key \"no_such_key\" in [pgbouncer]");
    expect_error(&l, main_path, 4, "unknown key \"late\" in [pgbouncer]");
}

/* PgBouncer resolves a relative %include against the working directory. */
static void test_include_relative_to_cwd(void **state)
{
    (void)state;
    char cwd[PATH_MAX], path[256];
    assert_non_null(getcwd(cwd, sizeof cwd));
    write_file("rel.ini", "[databases]\nreldb = host=h\n", path, sizeof path);
    write_file("top.ini", "[warmpool]\nauth_type = trust\n%include rel.ini\n", path, sizeof path);
    assert_int_equal(chdir(dir), 0);
    struct loaded l;
    load(&l, "top.ini");
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(l.rc, 0);
    assert_non_null(config_find_db(&l.cfg, "reldb"));
    config_free(&l.cfg);
}

static void test_include_refused(void **state)
{
    (void)state;
    char a[256], b[256], text[1024], msg[1024];
    struct loaded l;

    /* a loop: a includes b includes a */
    snprintf(b, sizeof b, "%s/b.ini", dir);
    snprintf(text, sizeof text, "[warmpool]\nauth_type = trust\n%%include %s\n", b);
    write_file("a.ini", text, a, sizeof a);
    snprintf(text, sizeof text, "; b\n%%include %s\n", a);
    write_file("b.ini", text, b, sizeof b);
    load(&l, a);
    snprintf(msg, sizeof msg, "%%include %s: include loop (%s is already being read)", a, a);
    expect_error(&l, b, 2, msg);

    /* a file that includes itself */
    snprintf(text, sizeof text, "[warmpool]\nauth_type = trust\n%%include %s\n", a);
    write_file("a.ini", text, a, sizeof a);
    load(&l, a);
    snprintf(msg, sizeof msg, "%%include %s: include loop (%s is already being read)", a, a);
    expect_error(&l, a, 3, msg);

    /* deeper than PgBouncer's 10 */
    for (int i = 0; i <= 11; i++) {
        char name[32], next[256], path[256];
        snprintf(name, sizeof name, "d%d.ini", i);
        snprintf(next, sizeof next, "%s/d%d.ini", dir, i + 1);
        snprintf(text, sizeof text, "%s%%include %s\n",
                 i == 0 ? "[warmpool]\nauth_type = trust\n" : "", next);
        write_file(name, text, path, sizeof path);
    }
    snprintf(a, sizeof a, "%s/d0.ini", dir);
    snprintf(b, sizeof b, "%s/d10.ini", dir);
    load(&l, a);
    snprintf(msg, sizeof msg, "%%include %s/d11.ini: nested deeper than 10 files", dir);
    expect_error(&l, b, 1, msg);

    /* missing, not a regular file, no name */
    write_file("a.ini", "[warmpool]\nauth_type = trust\n%include /nonexistent/x.ini\n", a,
               sizeof a);
    load(&l, a);
    expect_error(&l, a, 3, "%include /nonexistent/x.ini: cannot open: No such file or directory");
    write_file("a.ini", "[warmpool]\nauth_type = trust\n%include /dev/null\n", a, sizeof a);
    load(&l, a);
    expect_error(&l, a, 3, "%include /dev/null: not a regular file");

    /* text that is no file cannot include (fuzzing, tests) */
    static const char inline_text[] = "[warmpool]\nauth_type = trust\n%include /etc/passwd\n";
    l.rc = config_load_string("mem.ini", inline_text, sizeof inline_text - 1, &l.cfg, l.err,
                              sizeof l.err);
    expect_error(&l, "mem.ini", 3,
                 "%include /etc/passwd: only a configuration read from a file may include");
}

/* Ignored PgBouncer keys load, each noted once at the first place it is set; a key
   nobody knows stays an error; a value that asks for protection is refused. */
static void test_accepted_no_effect(void **state)
{
    (void)state;
    char path[256], want[512];
    write_file("pgb.ini",
               "[pgbouncer]\n"
               "auth_type = trust\n"
               "dns_max_ttl = 5\n"
               "tcp_defer_accept = 1\n"
               "server_tls_ciphers = HIGH\n"
               "[databases]\n"
               "a = host=h auth_user=x load_balance_hosts=disable\n"
               "b = host=h auth_user=y\n"
               "[users]\n"
               "bob = transaction_timeout=5\n",
               path, sizeof path);
    struct loaded l;
    load_ok(&l, path);
    static const struct {
        int line;
        const char *key;
    } notes[] = {
        {3, "dns_max_ttl"},
        {4, "tcp_defer_accept"},
        {5, "server_tls_ciphers"},
    };
    assert_int_equal(count_notices(&l.cfg), (int)(sizeof notes / sizeof notes[0]));
    for (size_t i = 0; i < sizeof notes / sizeof notes[0]; i++) {
        snprintf(want, sizeof want, "%s:%d: accepted, no effect: %s", path, notes[i].line,
                 notes[i].key);
        assert_string_equal(l.cfg.notices[i], want);
    }
    /* the database entries themselves are whole: libpq never sees those keys, and
       auth_user and load_balance_hosts are real keys of the entry (auth_query, hosts.c),
       not noted */
    const struct wp_db_config *a = config_find_db(&l.cfg, "a");
    for (int i = 0; i < a->nconn; i++) {
        assert_true(strcmp(a->conn_keys[i], "auth_user") != 0);
        assert_true(strcmp(a->conn_keys[i], "load_balance_hosts") != 0);
    }
    assert_int_equal(a->overrides.load_balance_hosts, WP_LB_DISABLE);
    assert_string_equal(a->auth_user, "x");
    assert_string_equal(config_find_db(&l.cfg, "b")->auth_user, "y");
    config_free(&l.cfg);

    write_file("pgb.ini", "[pgbouncer]\nauth_type = trust\nstats_perod = 60\n", path, sizeof path);
    load(&l, path);
    expect_error(&l, path, 3, "unknown key \"stats_perod\" in [pgbouncer]");

    write_file("pgb.ini", "[pgbouncer]\nauth_type = trust\ndisable_pqexec = 1\n", path,
               sizeof path);
    load(&l, path);
    expect_error(&l, path, 3,
                 "disable_pqexec = 1: warmpool cannot refuse the simple query protocol");
}

/* PgBouncer keys with their meaning: server_tls_*, connect_query, the client limits,
   application_name_add_host, log_pooler_errors, log_stats, stats_period. */
static void test_pgbouncer_keys(void **state)
{
    (void)state;
    char path[256];
    write_file("k.ini",
               "[pgbouncer]\nauth_type = trust\nserver_tls_sslmode = verify-full\n"
               "server_tls_ca_file = /ca.pem\nserver_tls_protocols = tlsv1.3\n"
               "connect_query = SET x.y = 1\nmax_db_client_connections = 7\n"
               "max_user_client_connections = 8\napplication_name_add_host = 1\n"
               "log_pooler_errors = 0\nlog_stats = 0\nstats_period = 15\nquery_wait_notify = 2\n"
               "[databases]\n"
               "a = host=h connect_query='SELECT 2' max_db_client_connections=3\n"
               "b = host=h\n"
               "[users]\nbob = max_user_client_connections=2\n",
               path, sizeof path);
    struct loaded l;
    load_ok(&l, path);
    assert_int_equal(count_notices(&l.cfg), 0);
    assert_int_equal(l.cfg.server_tls_sslmode, WP_SSLMODE_VERIFY_FULL);
    assert_string_equal(l.cfg.server_tls_ca_file, "/ca.pem");
    assert_null(l.cfg.server_tls_cert_file);
    assert_string_equal(l.cfg.server_tls_protocols, "tlsv1.3");
    assert_string_equal(l.cfg.connect_query, "SET x.y = 1");
    assert_int_equal(l.cfg.max_db_client_connections, 7);
    assert_int_equal(l.cfg.max_user_client_connections, 8);
    assert_int_equal(l.cfg.application_name_add_host, 1);
    assert_int_equal(l.cfg.log_pooler_errors, 0);
    assert_int_equal(l.cfg.log_stats, 0);
    assert_int_equal(l.cfg.stats_period, 15000);
    assert_int_equal(l.cfg.query_wait_notify, 2000);
    const struct wp_db_config *a = config_find_db(&l.cfg, "a");
    assert_string_equal(a->connect_query, "SELECT 2");
    assert_int_equal(a->max_db_client_connections, 3);
    for (int i = 0; i < a->nconn; i++)
        assert_true(strcmp(a->conn_keys[i], "connect_query") != 0);
    assert_null(config_find_db(&l.cfg, "b")->connect_query);
    assert_int_equal(config_find_user(&l.cfg, "bob")->max_user_client_connections, 2);
    config_free(&l.cfg);

    write_file("k.ini",
               "[pgbouncer]\nauth_type = trust\nserver_tls_protocols = tlsv9\n"
               "server_tls_cert_file = /c.pem\nstats_period = 0.5\n",
               path, sizeof path);
    load(&l, path);
    expect_error(&l, path, 3,
                 "server_tls_protocols: unknown protocol \"tlsv9\" (use tlsv1.0, tlsv1.1, "
                 "tlsv1.2, tlsv1.3, secure or all)");
    expect_error(&l, path, 4, "server_tls_cert_file and server_tls_key_file go together");
}

/* PgBouncer's units and spellings: fractions of seconds, tcp_user_timeout in
   milliseconds, its max_packet_size, auth_type hba and password, "<empty>". */
static void test_pgbouncer_values(void **state)
{
    (void)state;
    char path[256], hba[256];
    write_file("hba.conf", "local all all trust\n", hba, sizeof hba);
    char text[1024];
    snprintf(text, sizeof text,
             "[pgbouncer]\nauth_type = hba\nauth_hba_file = %s\n"
             "query_wait_timeout = 0.5\nserver_check_delay = 2.5\ntcp_user_timeout = 1500\n"
             "tcp_keepidle = 30\nmax_packet_size = 2147483647\nserver_check_query = <empty>\n"
             "log_connections = 0\nserver_round_robin = 1\n",
             hba);
    write_file("v.ini", text, path, sizeof path);
    struct loaded l;
    load_ok(&l, path);
    assert_int_equal(l.cfg.auth_type, WP_AUTH_HBA);
    assert_int_equal(l.cfg.pool.query_wait_timeout, 500);
    assert_int_equal(l.cfg.server_check_delay, 2500);
    assert_int_equal(l.cfg.tcp_user_timeout, 1500);
    assert_int_equal(l.cfg.tcp_keepidle, 30);
    assert_int_equal(l.cfg.tcp_keepalive, 1);
    assert_int_equal(l.cfg.max_packet_size, 2147483647LL);
    assert_string_equal(l.cfg.server_check_query, "");
    assert_int_equal(l.cfg.log_connections, 0);
    assert_int_equal(l.cfg.log_disconnections, 1);
    assert_int_equal(l.cfg.server_round_robin, 1);
    config_free(&l.cfg);

    write_file("v.ini", "[pgbouncer]\nauth_type = password\nauth_file = /x\n", path, sizeof path);
    load_ok(&l, path);
    assert_int_equal(l.cfg.auth_type, WP_AUTH_PLAIN);
    config_free(&l.cfg);

    write_file("v.ini", "[pgbouncer]\nauth_type = hba\n", path, sizeof path);
    load(&l, path);
    expect_error(&l, path, 2, "auth_type hba needs auth_hba_file");

    write_file("v.ini", "[pgbouncer]\nauth_type = trust\ntcp_user_timeout = 0.5\n", path,
               sizeof path);
    load(&l, path);
    expect_error(&l, path, 3,
                 "tcp_user_timeout: \"0.5\" is not a duration (e.g. 250ms, 5s, 10min, 1h, 2d; "
                 "bare number = milliseconds)");
}

/* datestyle and timezone ask the server for a setting through `options`. */
static void test_database_settings(void **state)
{
    (void)state;
    char path[256];
    write_file("s.ini",
               "[pgbouncer]\nauth_type = trust\n[databases]\n"
               "a = host=h datestyle='ISO, MDY' timezone=UTC\n"
               "b = host=h options='-c work_mem=8MB' timezone=Europe/Paris\n"
               "c = host=h datestyle=\n",
               path, sizeof path);
    struct loaded l;
    load(&l, path);
    expect_error(&l, path, 6, "database \"c\": datestyle is empty");

    write_file("s.ini",
               "[pgbouncer]\nauth_type = trust\n[databases]\n"
               "a = host=h datestyle='ISO, MDY' timezone=UTC\n"
               "b = host=h options='-c work_mem=8MB' timezone=Europe/Paris\n",
               path, sizeof path);
    load_ok(&l, path);
    const struct wp_db_config *a = config_find_db(&l.cfg, "a");
    const struct wp_db_config *b = config_find_db(&l.cfg, "b");
    const char *a_options = NULL, *b_options = NULL;
    for (int i = 0; i < a->nconn; i++)
        if (strcmp(a->conn_keys[i], "options") == 0)
            a_options = a->conn_values[i];
    for (int i = 0; i < b->nconn; i++)
        if (strcmp(b->conn_keys[i], "options") == 0)
            b_options = b->conn_values[i];
    assert_non_null(a_options);
    assert_string_equal(a_options, "-c datestyle=ISO,\\ MDY -c timezone=UTC");
    assert_non_null(b_options);
    assert_string_equal(b_options, "-c work_mem=8MB -c timezone=Europe/Paris");
    config_free(&l.cfg);
}

/* load_balance_hosts: a [warmpool] default and per entry; a bad value or host lists
   that do not pair up are errors with file:line. */
static void test_load_balance_hosts(void **state)
{
    (void)state;
    char path[256];
    struct loaded l;
    write_file("lb.ini",
               "[warmpool]\nauth_type = trust\nload_balance_hosts = random\n[databases]\n"
               "a = host=h1,h2 port=1,2 load_balance_hosts=disable\n"
               "b = host=h1,h2 port=7\n",
               path, sizeof path);
    load_ok(&l, path);
    assert_int_equal(l.cfg.pool.load_balance_hosts, WP_LB_RANDOM);
    struct wp_pool_settings eff;
    config_effective(&l.cfg, config_find_db(&l.cfg, "a"), NULL, &eff);
    assert_int_equal(eff.load_balance_hosts, WP_LB_DISABLE);
    config_effective(&l.cfg, config_find_db(&l.cfg, "b"), NULL, &eff);
    assert_int_equal(eff.load_balance_hosts, WP_LB_RANDOM);
    config_free(&l.cfg);

    write_file("lb.ini", "[warmpool]\nauth_type = trust\nload_balance_hosts = foo\n", path,
               sizeof path);
    load(&l, path);
    expect_error(&l, path, 3, "load_balance_hosts: \"foo\" is not disable, random or round-robin");
    write_file("lb.ini",
               "[warmpool]\nauth_type = trust\n[databases]\n"
               "a = host=h1,h2 load_balance_hosts=sometimes\n"
               "b = host=h1,h2,h3 port=1,2\n",
               path, sizeof path);
    load(&l, path);
    expect_error(&l, path, 4,
                 "database \"a\": load_balance_hosts: \"sometimes\" is not disable, random or "
                 "round-robin");
    expect_error(&l, path, 5,
                 "database \"b\": the port list has neither one port nor one per host");
}

/* --from-pgbouncer: the output is a warmpool.ini that loads as the PgBouncer file did,
   with warmpool's names, keys without effect commented out, %include inlined. */
static void test_from_pgbouncer(void **state)
{
    (void)state;
    char path[256], inc[256], text[1024], err[1024];
    write_file("inc.ini", "[databases]\nx = host=h load_balance_hosts=disable\n", inc, sizeof inc);
    snprintf(text, sizeof text,
             "; a comment\n[pgbouncer]\nauth_type = trust\ndefault_pool_size = 7\n"
             "dns_max_ttl = 15\nserver_check_query =\nlisten_addr = 127.0.0.1,::1\n"
             "%%include %s\n",
             inc);
    write_file("pgb.ini", text, path, sizeof path);

    char *out = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&out, &len);
    assert_non_null(fp);
    assert_int_equal(from_pgbouncer(path, fp, err, sizeof err), 0);
    fclose(fp);
    static const char *const lines[] = {
        "\n; a comment\n[warmpool]\nauth_type = trust\n",
        "\n; PgBouncer's default_pool_size\nmax_pool_size = 7\n",
        "\n; no effect in warmpool (docs/CONFIG.md says what to do instead):\n;dns_max_ttl = 15\n",
        "\n; differs from PgBouncer: an empty value sends an empty query; PgBouncer turns the "
        "check off\nserver_check_query =\n",
        "\nx = host=h load_balance_hosts=disable\n",
        "\n; PgBouncer's default (warmpool's is disable)\nload_balance_hosts = round-robin\n",
        "\n; PgBouncer's default (warmpool's is 1s)\nserver_login_retry = 15\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        if (!strstr(out, lines[i]))
            fail_msg("no \"%s\" in:\n%s", lines[i], out);
    assert_null(strstr(out, "[pgbouncer]"));
    assert_null(strstr(out, "\n%include")); /* inlined, only named in a comment */

    struct wp_config cfg;
    assert_int_equal(config_load_string("native.ini", out, len, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.pool.max_pool_size, 7);
    assert_int_equal(cfg.server_login_retry, 15000);
    assert_int_equal(cfg.max_packet_size, 2147483647LL);
    assert_string_equal(cfg.listen_addr, "127.0.0.1,::1");
    assert_int_equal(count_notices(&cfg), 0);
    assert_int_equal(cfg.pool.load_balance_hosts, WP_LB_ROUND_ROBIN); /* PgBouncer's default */
    assert_non_null(config_find_db(&cfg, "x"));
    config_free(&cfg);
    free(out);

    /* a file that does not load is not converted */
    write_file("pgb.ini", "[pgbouncer]\nauth_type = trust\nbogus = 1\n", path, sizeof path);
    fp = open_memstream(&out, &len);
    assert_int_equal(from_pgbouncer(path, fp, err, sizeof err), -1);
    fclose(fp);
    free(out);
    assert_non_null(strstr(err, ":3: unknown key \"bogus\" in [pgbouncer]"));
}

/* The checked-in PgBouncer file (tests/compat) loads unchanged. */
static void test_compat_file(void **state)
{
    (void)state;
    if (access("tests/compat/pgbouncer.ini", R_OK) != 0)
        skip();
    struct loaded l;
    load_ok(&l, "tests/compat/pgbouncer.ini");
    assert_non_null(config_find_db(&l.cfg, "included"));
    assert_true(count_notices(&l.cfg) > 0);
    config_free(&l.cfg);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, make_dir, remove_dir)
    const struct CMUnitTest tests[] = {
        T(test_every_key_loads_its_default),
        cmocka_unit_test(test_table_is_consistent),
        T(test_show_config_lists_every_key_once),
        T(test_overrides_follow_the_table),
        cmocka_unit_test(test_docs_name_every_key),
        T(test_include_nested),
        T(test_include_relative_to_cwd),
        T(test_include_refused),
        T(test_accepted_no_effect),
        T(test_pgbouncer_keys),
        T(test_from_pgbouncer),
        T(test_pgbouncer_values),
        T(test_database_settings),
        T(test_load_balance_hosts),
        cmocka_unit_test(test_compat_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
