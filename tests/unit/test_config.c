/*
 * test_config — unit tests for pooler/config.c: defaults, every key kind, unit parsing,
 * `file:line` error reporting, [databases] conninfo handling, overrides, the "*"
 * fallback and the shipped conf/warmpool.ini.
 *
 * Each test writes its ini text to a fresh mkstemp() file, so tests are independent of
 * the working directory (except the example-config test, which looks for the repo).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "warmpool/config.h"

static const char *argv0;

struct loaded {
    char path[64];
    struct wp_config cfg;
    char err[8192];
    int rc;
};

static void write_temp(char *path, size_t len, const char *text)
{
    snprintf(path, len, "%s", "/tmp/warmpool-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

/* Loads `text` from a temp file; the file is removed again before returning. */
static void load_text(struct loaded *l, const char *text)
{
    write_temp(l->path, sizeof l->path, text);
    l->rc = config_load(l->path, &l->cfg, l->err, sizeof l->err);
    unlink(l->path);
}

static void load_ok(struct loaded *l, const char *text)
{
    load_text(l, text);
    if (l->rc != 0)
        print_error("unexpected errors:\n%s", l->err);
    assert_int_equal(l->rc, 0);
    assert_string_equal(l->err, "");
}

/* Asserts that err holds exactly "path:line: msg\n" as one of its lines. */
static void expect_error(const struct loaded *l, int line, const char *msg)
{
    char want[1024];

    snprintf(want, sizeof want, "%s:%d: %s\n", l->path, line, msg);
    if (l->rc != -1 || !strstr(l->err, want)) {
        print_error("wanted: %sgot (rc=%d):\n%s", want, l->rc, l->err);
        fail();
    }
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static const struct wp_db_config *db_named(const struct wp_config *cfg, const char *name)
{
    const struct wp_db_config *db = config_find_db(cfg, name);
    assert_non_null(db);
    return db;
}

static const char *conn_value(const struct wp_db_config *db, const char *key)
{
    for (int i = 0; i < db->nconn; i++)
        if (strcmp(db->conn_keys[i], key) == 0)
            return db->conn_values[i];
    return NULL;
}

#define TRUST "[warmpool]\nauth_type = trust\n"

/* ---------------------------------------------------------------- defaults and keys */

static void test_defaults(void **state)
{
    (void)state;
    struct loaded l;
    load_ok(&l, "[warmpool]\nauth_file = /etc/warmpool/userlist.txt\n");
    const struct wp_config *c = &l.cfg;

    assert_string_equal(c->path, l.path);
    assert_string_equal(c->listen_addr, "127.0.0.1");
    assert_int_equal(c->listen_port, 6432);
    assert_string_equal(c->unix_socket_dir, "/tmp");
    assert_int_equal(c->unix_socket_mode, 0777);
    assert_int_equal(c->listen_backlog, 128);
    assert_int_equal(c->so_reuseport, 0);
    assert_int_equal(c->max_client_conn, 100);
    assert_int_equal(c->auth_type, WP_AUTH_MD5);
    assert_string_equal(c->auth_file, "/etc/warmpool/userlist.txt");
    assert_non_null(c->admin_users);
    assert_null(c->admin_users[0]);
    assert_non_null(c->stats_users);
    assert_null(c->stats_users[0]);
    assert_int_equal(c->pool.pool_mode, WP_MODE_SESSION);
    assert_int_equal(c->pool.min_pool_size, 0);
    assert_int_equal(c->pool.max_pool_size, 20);
    assert_int_equal(c->pool.reserve_pool_size, 0);
    assert_int_equal(c->pool.max_db_connections, 0);
    assert_int_equal(c->pool.query_timeout, 0);
    assert_int_equal(c->pool.query_wait_timeout, 120000);
    assert_int_equal(c->pool.client_idle_timeout, 0);
    assert_int_equal(c->pool.idle_transaction_timeout, 0);
    assert_int_equal(c->pool.server_lifetime, 3600000);
    assert_int_equal(c->pool.server_idle_timeout, 600000);
    assert_string_equal(c->server_reset_query, "DISCARD ALL");
    assert_int_equal(c->server_reset_query_always, 0);
    assert_string_equal(c->server_check_query, "");
    assert_int_equal(c->server_check_delay, 30000);
    assert_int_equal(c->server_connect_timeout, 15000);
    assert_int_equal(c->server_login_retry, 1000);
    assert_int_equal(c->client_login_timeout, 60000);
    assert_int_equal(c->reserve_pool_timeout, 5000);
    assert_int_equal(c->shutdown_wait_timeout, 30000);
    assert_int_equal(c->max_prepared_statements, 200);
    assert_int_equal(c->warm_prepared_statements, 50);
    assert_int_equal(c->max_user_connections, 0);
    assert_non_null(c->ignore_startup_parameters);
    assert_null(c->ignore_startup_parameters[0]);
    assert_int_equal(c->pkt_buf, 16384);
    assert_int_equal(c->max_packet_size, 1024LL * 1024 * 1024);
    assert_null(c->stats_socket);
    assert_string_equal(c->stats_listen, "");
    assert_int_equal(c->stats_socket_mode, 0660);
    assert_int_equal(c->stats_top_statements, 1000);
    assert_int_equal(c->nplus1_threshold, 10);
    assert_int_equal(c->nplus1_window_ms, 1000);
    assert_int_equal(c->nplus1_log_interval_ms, 60000);
    assert_int_equal(c->log_slow_queries_ms, 0);
    assert_int_equal(c->log_parameters, 0);
    assert_null(c->logfile);
    assert_null(c->pidfile);
    assert_int_equal(c->verbose, 0);
    assert_int_equal(c->ndbs, 0);
    assert_null(c->dbs);
    assert_int_equal(c->nusers, 0);
    assert_null(c->users);
    config_free(&l.cfg);
}

static const char full_file[] =
    "; every key set to a non-default value\n"
    "[warmpool]\n"
    "listen_addr = *\n"
    "listen_port = 7432\n"
    "unix_socket_dir = /run/warmpool\n"
    "unix_socket_mode = 0700\n"
    "listen_backlog = 512\n"
    "so_reuseport = yes\n"
    "max_client_conn = 5000\n"
    "auth_type = scram-sha-256\n"
    "auth_file = /etc/warmpool/userlist.txt\n"
    "admin_users = postgres, admin\n"
    "stats_users = monitor\n"
    "pool_mode = transaction\n"
    "min_pool_size = 2\n"
    "max_pool_size = 40\n"
    "reserve_pool_size = 3\n"
    "max_db_connections = 90\n"
    "max_user_connections = 30\n"
    "query_timeout = 2min\n"
    "query_wait_timeout = 30s\n"
    "client_idle_timeout = 1h\n"
    "idle_transaction_timeout = 250ms\n"
    "server_lifetime = 2d\n"
    "server_idle_timeout = 45\n"
    "server_reset_query = RESET ALL\n"
    "server_reset_query_always = on\n"
    "server_check_query = select 1\n"
    "server_check_delay = 10s\n"
    "server_connect_timeout = 3s\n"
    "server_login_retry = 500ms\n"
    "client_login_timeout = 20s\n"
    "reserve_pool_timeout = 2s\n"
    "shutdown_wait_timeout = 1min\n"
    "max_prepared_statements = 0\n"
    "ignore_startup_parameters = extra_float_digits, search_path\n"
    "pkt_buf = 32kB\n"
    "max_packet_size = 64MB\n"
    "stats_socket = /run/warmpool/stats.sock\n"
    "stats_listen = 127.0.0.1:9127\n"
    "stats_socket_mode = 0600\n"
    "stats_top_statements = 50\n"
    "nplus1_threshold = 25\n"
    "nplus1_window_ms = 500ms\n"
    "nplus1_log_interval_ms = 5min\n"
    "log_slow_queries_ms = 2s\n"
    "log_parameters = yes\n"
    "logfile = /var/log/warmpool.log\n"
    "pidfile = /run/warmpool/warmpool.pid\n"
    "verbose = 2\n"
    "workers = 1\n"
    "\n"
    "[databases]\n"
    "appdb = host=127.0.0.1 port=5432 dbname=appdb\n"
    "reports = host=replica dbname=warehouse user=reporter pool_mode=session pool_size=5\n"
    "\n"
    "[users]\n"
    "batch = pool_mode=statement max_user_connections=5\n";

static void test_full_file(void **state)
{
    (void)state;
    struct loaded l;
    load_ok(&l, full_file);
    const struct wp_config *c = &l.cfg;

    assert_string_equal(c->listen_addr, "*");
    assert_int_equal(c->listen_port, 7432);
    assert_string_equal(c->unix_socket_dir, "/run/warmpool");
    assert_int_equal(c->unix_socket_mode, 0700);
    assert_int_equal(c->listen_backlog, 512);
    assert_int_equal(c->so_reuseport, 1);
    assert_int_equal(c->max_client_conn, 5000);
    assert_int_equal(c->auth_type, WP_AUTH_SCRAM);
    assert_string_equal(c->auth_file, "/etc/warmpool/userlist.txt");
    assert_string_equal(c->admin_users[0], "postgres");
    assert_string_equal(c->admin_users[1], "admin");
    assert_null(c->admin_users[2]);
    assert_string_equal(c->stats_users[0], "monitor");
    assert_null(c->stats_users[1]);
    assert_int_equal(c->pool.pool_mode, WP_MODE_TRANSACTION);
    assert_int_equal(c->pool.min_pool_size, 2);
    assert_int_equal(c->pool.max_pool_size, 40);
    assert_int_equal(c->pool.reserve_pool_size, 3);
    assert_int_equal(c->pool.max_db_connections, 90);
    assert_int_equal(c->max_user_connections, 30);
    assert_int_equal(c->pool.query_timeout, 120000);
    assert_int_equal(c->pool.query_wait_timeout, 30000);
    assert_int_equal(c->pool.client_idle_timeout, 3600000);
    assert_int_equal(c->pool.idle_transaction_timeout, 250);
    assert_int_equal(c->pool.server_lifetime, 2 * 86400000LL);
    assert_int_equal(c->pool.server_idle_timeout, 45000);
    assert_string_equal(c->server_reset_query, "RESET ALL");
    assert_int_equal(c->server_reset_query_always, 1);
    assert_string_equal(c->server_check_query, "select 1");
    assert_int_equal(c->server_check_delay, 10000);
    assert_int_equal(c->server_connect_timeout, 3000);
    assert_int_equal(c->server_login_retry, 500);
    assert_int_equal(c->client_login_timeout, 20000);
    assert_int_equal(c->reserve_pool_timeout, 2000);
    assert_int_equal(c->shutdown_wait_timeout, 60000);
    assert_int_equal(c->max_prepared_statements, 0);
    assert_string_equal(c->ignore_startup_parameters[0], "extra_float_digits");
    assert_string_equal(c->ignore_startup_parameters[1], "search_path");
    assert_null(c->ignore_startup_parameters[2]);
    assert_int_equal(c->pkt_buf, 32768);
    assert_int_equal(c->max_packet_size, 64 * 1024 * 1024);
    assert_string_equal(c->stats_socket, "/run/warmpool/stats.sock");
    assert_string_equal(c->stats_listen, "127.0.0.1:9127");
    assert_int_equal(c->stats_socket_mode, 0600);
    assert_int_equal(c->stats_top_statements, 50);
    assert_int_equal(c->nplus1_threshold, 25);
    assert_int_equal(c->nplus1_log_interval_ms, 300000);
    assert_int_equal(c->nplus1_window_ms, 500);
    assert_int_equal(c->log_slow_queries_ms, 2000);
    assert_int_equal(c->log_parameters, 1);
    assert_string_equal(c->logfile, "/var/log/warmpool.log");
    assert_string_equal(c->pidfile, "/run/warmpool/warmpool.pid");
    assert_int_equal(c->verbose, 2);

    assert_int_equal(c->ndbs, 2);
    const struct wp_db_config *app = db_named(c, "appdb");
    assert_int_equal(app->line, 54);
    assert_int_equal(app->nconn, 3);
    assert_string_equal(app->conn_keys[0], "host");
    assert_string_equal(app->conn_values[0], "127.0.0.1");
    assert_string_equal(app->conn_keys[1], "port");
    assert_string_equal(app->conn_values[1], "5432");
    assert_string_equal(app->conn_keys[2], "dbname");
    assert_string_equal(app->conn_values[2], "appdb");
    assert_null(app->conn_keys[3]);
    assert_null(app->conn_values[3]);
    assert_null(app->forced_user);
    assert_int_equal(app->overrides.pool_mode, WP_MODE_UNSET);
    assert_int_equal(app->overrides.max_pool_size, WP_UNSET);

    const struct wp_db_config *rep = db_named(c, "reports");
    assert_int_equal(rep->nconn, 3);
    assert_string_equal(conn_value(rep, "dbname"), "warehouse");
    assert_string_equal(rep->forced_user, "reporter");
    assert_null(conn_value(rep, "pool_mode"));
    assert_null(conn_value(rep, "pool_size"));
    assert_int_equal(rep->overrides.pool_mode, WP_MODE_SESSION);
    assert_int_equal(rep->overrides.max_pool_size, 5);

    assert_int_equal(c->nusers, 1);
    const struct wp_user_config *batch = config_find_user(c, "batch");
    assert_non_null(batch);
    assert_int_equal(batch->line, 58);
    assert_int_equal(batch->overrides.pool_mode, WP_MODE_STATEMENT);
    assert_int_equal(batch->max_user_connections, 5);
    config_free(&l.cfg);
}

static void test_pgbouncer_section_and_aliases(void **state)
{
    (void)state;
    struct loaded l;
    load_ok(&l, "[pgbouncer]\nauth_type = trust\ndefault_pool_size = 7\n"
                "\n[databases]\nx = pool_size=3\n");
    assert_int_equal(l.cfg.pool.max_pool_size, 7);
    assert_int_equal(db_named(&l.cfg, "x")->overrides.max_pool_size, 3);
    config_free(&l.cfg);

    load_text(&l, "[pgbouncer]\nauth_type = trust\ndns_max_tll = 15\n");
    expect_error(&l, 3, "unknown key \"dns_max_tll\" in [pgbouncer]");

    load_text(&l, TRUST "max_pool_size = 10\ndefault_pool_size = 7\n");
    expect_error(&l, 4,
                 "duplicate key \"default_pool_size\": max_pool_size is already set on line 3");

    load_text(&l, "[warmpool]\nlisten_port = 1\n[pgbouncer]\nauth_type = trust\nLISTEN_PORT = 2\n");
    expect_error(&l, 5, "duplicate key \"LISTEN_PORT\" (already set on line 2)");
}

static void test_bool_values(void **state)
{
    (void)state;
    static const char *const yes[] = {"1", "true", "TRUE", "on", "yes", "Yes"};
    static const char *const no[] = {"0", "false", "off", "no", "NO"};
    char text[128];
    struct loaded l;

    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        snprintf(text, sizeof text, TRUST "so_reuseport = %s\n", yes[i]);
        load_ok(&l, text);
        assert_int_equal(l.cfg.so_reuseport, 1);
        config_free(&l.cfg);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        snprintf(text, sizeof text, TRUST "so_reuseport = %s\n", no[i]);
        load_ok(&l, text);
        assert_int_equal(l.cfg.so_reuseport, 0);
        config_free(&l.cfg);
    }
    load_text(&l, TRUST "so_reuseport = maybe\n");
    expect_error(&l, 3,
                 "so_reuseport: \"maybe\" is not a boolean (use 1/0, true/false, on/off, yes/no)");
}

static void test_lists_and_paths(void **state)
{
    (void)state;
    struct loaded l;
    load_ok(&l, TRUST "admin_users = ' a , b ,,c ,'\nstats_users =\nlogfile =\n");
    /* quotes are not special in [warmpool]; they are part of the names */
    assert_string_equal(l.cfg.admin_users[0], "' a");
    assert_string_equal(l.cfg.admin_users[1], "b");
    assert_string_equal(l.cfg.admin_users[2], "c");
    assert_string_equal(l.cfg.admin_users[3], "'");
    assert_null(l.cfg.admin_users[4]);
    assert_null(l.cfg.stats_users[0]);
    assert_null(l.cfg.logfile);
    config_free(&l.cfg);
}

static void test_octal_mode(void **state)
{
    (void)state;
    struct loaded l;
    load_ok(&l, TRUST "unix_socket_mode = 660\n");
    assert_int_equal(l.cfg.unix_socket_mode, 0660);
    config_free(&l.cfg);

    load_text(&l, TRUST "unix_socket_mode = 0789\n");
    expect_error(&l, 3, "unix_socket_mode: \"0789\" is not an octal file mode (e.g. 0777)");
    load_text(&l, TRUST "unix_socket_mode = 017777\n");
    expect_error(&l, 3, "unix_socket_mode: \"017777\" is too large (maximum 4095)");
}

/* ---------------------------------------------------------------- units */

static void test_parse_duration(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {
        {"250ms", 250},           {"5s", 5000},   {"10min", 600000}, {"1h", 3600000},
        {"2d", 172800000},        {"7", 7000},    {"0", 0},          {"0ms", 0},
        {" 5 s ", 5000},          {"5S", 5000},   {"15MIN", 900000}, {"007", 7000},
        {"86400000ms", 86400000}, {"1.5s", 1500}, {"0.5", 500},      {"0.001", 1},
        {"2.25min", 135000},      {"1.0ms", 1},   {"0.5h", 1800000},
    };
    static const char *const bad[] = {
        "",
        " ",
        "abc",
        "-5s",
        "+5s",
        "5x",
        "5 sec",
        "1.5ms",
        "0.0005",
        "1.",
        ".5",
        "1.5.5",
        "0.1234567891",
        "5ms5",
        "s",
        "5 m s",
        "5m",
        "0x10",
        "9223372036854775807s",
        "99999999999999999999",
        "106751991167301d",
    };
    int64_t ms;

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ms = -42;
        assert_int_equal(config_parse_duration(good[i].text, &ms), 0);
        assert_int_equal(ms, good[i].ms);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms = -42;
        if (config_parse_duration(bad[i], &ms) != -1) {
            print_error("accepted \"%s\"\n", bad[i]);
            fail();
        }
        assert_int_equal(ms, -42);
    }
    assert_int_equal(config_parse_duration(NULL, &ms), -1);
    /* the largest value that still fits */
    assert_int_equal(config_parse_duration("9223372036854775807ms", &ms), 0);
    assert_true(ms == INT64_MAX);
}

static void test_parse_size(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t bytes;
    } good[] = {
        {"512", 512},
        {"16kB", 16384},
        {"8MB", 8 * 1024 * 1024},
        {"1GB", 1024LL * 1024 * 1024},
        {"1TB", 1024LL * 1024 * 1024 * 1024},
        {"0", 0},
        {"100B", 100},
        {"16KB", 16384},
        {"16 kb", 16384},
    };
    static const char *const bad[] = {
        "",       "16XB", "-1", "1.5MB", "kB", "16k", "1 G", "9999999999TB", "99999999999999999999",
        "8MB ok",
    };
    int64_t bytes;

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(config_parse_size(good[i].text, &bytes), 0);
        assert_int_equal(bytes, good[i].bytes);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (config_parse_size(bad[i], &bytes) != -1) {
            print_error("accepted \"%s\"\n", bad[i]);
            fail();
        }
    }
}

static void test_unit_errors_in_file(void **state)
{
    (void)state;
    struct loaded l;

    load_text(&l, TRUST "query_timeout = 5 sec\n");
    expect_error(&l, 3,
                 "query_timeout: \"5 sec\" is not a duration "
                 "(e.g. 250ms, 5s, 10min, 1h, 2d; bare number = seconds)");
    load_text(&l, TRUST "server_lifetime = -1\n");
    expect_error(&l, 3,
                 "server_lifetime: \"-1\" is not a duration "
                 "(e.g. 250ms, 5s, 10min, 1h, 2d; bare number = seconds)");
    load_text(&l, TRUST "query_timeout = 400d\n");
    expect_error(&l, 3, "query_timeout: \"400d\" is too large (maximum 365d)");
    load_text(&l, TRUST "pkt_buf = 2kB\n");
    expect_error(&l, 3, "pkt_buf: \"2kB\" is too small (minimum 4kB)");
    load_text(&l, TRUST "max_packet_size = 2GB\n");
    expect_error(&l, 3, "max_packet_size: \"2GB\" is too large (maximum 2147483647)");
    load_text(&l, TRUST "pkt_buf = 16XB\n");
    expect_error(&l, 3, "pkt_buf: \"16XB\" is not a size (e.g. 512, 16kB, 8MB, 1GB)");
    load_text(&l, TRUST "max_client_conn = 99999999999\n");
    expect_error(&l, 3, "max_client_conn: \"99999999999\" is too large (maximum 2147483647)");
    load_text(&l, TRUST "max_client_conn = 999999999999999999999\n");
    expect_error(&l, 3, "max_client_conn: \"999999999999999999999\" is not an integer");
}

/* ---------------------------------------------------------------- file:line errors */

static void test_unknown_key(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, TRUST "\n; comment\nfoo = bar\n");
    expect_error(&l, 5, "unknown key \"foo\" in [warmpool]");
    assert_int_equal(count_lines(l.err), 1);
    /* failure leaves the struct zeroed */
    struct wp_config zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&l.cfg, &zero, sizeof zero);
}

static void test_wrong_type(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, TRUST "max_pool_size = abc\n");
    expect_error(&l, 3, "max_pool_size: \"abc\" is not an integer");
    load_text(&l, TRUST "listen_port = 80x\n");
    expect_error(&l, 3, "listen_port: \"80x\" is not an integer");
}

/* The fleet keys: defaults, a [databases] budget of its own, names checked. */
static void test_fleet_keys(void **state)
{
    (void)state;
    struct loaded l;
    load_ok(&l, TRUST);
    assert_string_equal(l.cfg.fleet_name, "");
    assert_string_equal(l.cfg.fleet_instance, "");
    assert_int_equal(l.cfg.pool.fleet_max_db_connections, 0);
    assert_int_equal(l.cfg.fleet_poll_interval, 2000);
    config_free(&l.cfg);
    load_ok(&l, TRUST "fleet_name = shop.eu-1\nfleet_instance = web_07\n"
                      "fleet_max_db_connections = 60\nfleet_poll_interval = 500ms\n"
                      "[databases]\nappdb = host=x fleet_max_db_connections=10\n");
    assert_string_equal(l.cfg.fleet_name, "shop.eu-1");
    assert_int_equal(l.cfg.fleet_poll_interval, 500);
    struct wp_pool_settings eff;
    config_effective(&l.cfg, config_find_db(&l.cfg, "appdb"), NULL, &eff);
    assert_int_equal(eff.fleet_max_db_connections, 10);
    config_free(&l.cfg);
    load_text(&l, TRUST "fleet_name = shop:1\nfleet_instance = 0123456789abcdefg\n");
    expect_error(&l, 3, "fleet_name: \"shop:1\" is not 1 to 16 characters of A-Z a-z 0-9 _ . -");
    expect_error(&l, 4,
                 "fleet_instance: \"0123456789abcdefg\" is not 1 to 16 characters of A-Z a-z "
                 "0-9 _ . -");
    load_text(&l, TRUST "fleet_max_db_connections = 100000\n");
    assert_int_equal(l.rc, -1);
    load_text(&l, TRUST "fleet_poll_interval = 10ms\n");
    assert_int_equal(l.rc, -1);
}

static void test_unknown_section(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, TRUST "[server]\nhost = x\nport = 1\n[users]\nbob = pool_mode=session\n");
    expect_error(&l, 3,
                 "unknown section [server] (expected [warmpool], [databases], [users] or [peers])");
    /* keys in it are not reported again, and later sections still work */
    assert_int_equal(count_lines(l.err), 1);

    load_text(&l, TRUST "[databases\nappdb = host=x\n");
    expect_error(&l, 3, "section header is missing \"]\"");
    assert_int_equal(count_lines(l.err), 1);
}

static void test_bad_pool_mode(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, TRUST "pool_mode = transactions\n");
    expect_error(
        &l, 3, "pool_mode: \"transactions\" is not a pool mode (session, transaction, statement)");
    load_text(&l, TRUST "[databases]\nx = host=h pool_mode=batch\n");
    expect_error(&l, 4,
                 "database \"x\": pool_mode: \"batch\" is not a pool mode "
                 "(session, transaction, statement)");
    load_text(&l, "[warmpool]\nauth_file = x\nauth_type = pam\n");
    expect_error(&l, 3,
                 "auth_type: \"pam\" is not an auth type "
                 "(trust, md5, scram-sha-256, plain, password, cert, hba)");
}

/* client_tls_*: enum and list parsing, and the rules between them. */
static void test_tls_keys(void **state)
{
    (void)state;
    struct loaded l;
    load_ok(&l, TRUST "client_tls_sslmode = verify-full\nclient_tls_key_file = k.pem\n"
                      "client_tls_cert_file = c.pem\nclient_tls_ca_file = ca.pem\n"
                      "client_tls_protocols = tlsv1.3\nclient_tls_ciphers = HIGH\n");
    assert_int_equal(l.cfg.client_tls_sslmode, 5);
    assert_string_equal(l.cfg.client_tls_key_file, "k.pem");
    assert_string_equal(l.cfg.client_tls_ca_file, "ca.pem");
    assert_string_equal(l.cfg.client_tls_protocols, "tlsv1.3");
    config_free(&l.cfg);
    load_ok(&l, TRUST);
    assert_int_equal(l.cfg.client_tls_sslmode, 0);
    assert_null(l.cfg.client_tls_cert_file);
    assert_string_equal(l.cfg.client_tls_protocols, "secure");
    assert_string_equal(l.cfg.client_tls_ciphers, "default");
    config_free(&l.cfg);

    load_text(&l, TRUST "client_tls_sslmode = always\n");
    expect_error(&l, 3,
                 "client_tls_sslmode: \"always\" is not an sslmode (disable, allow, prefer, "
                 "require, verify-ca, verify-full)");
    load_text(&l, TRUST "client_tls_sslmode = require\nclient_tls_key_file = k.pem\n");
    expect_error(&l, 3,
                 "client_tls_sslmode require needs client_tls_key_file and "
                 "client_tls_cert_file");
    load_text(&l, TRUST "client_tls_sslmode = verify-ca\nclient_tls_key_file = k.pem\n"
                        "client_tls_cert_file = c.pem\n");
    expect_error(&l, 3,
                 "client_tls_sslmode verify-ca needs client_tls_ca_file to verify "
                 "client certificates");
    load_text(&l, TRUST "client_tls_protocols = tlsv1.2, sslv3\n");
    expect_error(&l, 3,
                 "client_tls_protocols: unknown protocol \"sslv3\" (use tlsv1.0, "
                 "tlsv1.1, tlsv1.2, tlsv1.3, secure or all)");
    load_text(&l, "[warmpool]\nauth_type = cert\n");
    expect_error(&l, 2,
                 "auth_type cert needs client_tls_sslmode (not disable) and "
                 "client_tls_ca_file");
    /* cert needs no auth_file */
    load_ok(&l, "[warmpool]\nauth_type = cert\nclient_tls_sslmode = require\n"
                "client_tls_key_file = k\nclient_tls_cert_file = c\nclient_tls_ca_file = ca\n");
    assert_int_equal(l.cfg.auth_type, WP_AUTH_CERT);
    config_free(&l.cfg);
    /* They are [warmpool] keys, not libpq ones. */
    load_text(&l, TRUST "[databases]\nx = host=h client_tls_sslmode=require\n");
    expect_error(&l, 4, "database \"x\": client_tls_sslmode can only be set in [warmpool]");
}

static void test_bad_libpq_keyword(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, TRUST "[databases]\nappdb = host=127.0.0.1 prot=5432\n");
    expect_error(&l, 4, "database \"appdb\": invalid connection option \"prot\"");
}

static void test_line_without_equals(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, TRUST "justtext\nmax_pool_size = 5\n");
    expect_error(&l, 3, "syntax error: expected \"key = value\", \"[section]\" or a comment");
    assert_int_equal(count_lines(l.err), 1);

    load_text(&l, TRUST "= 5\n");
    expect_error(&l, 3, "missing name before \"=\"");
}

static void test_key_outside_section(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, "max_pool_size = 5\n" TRUST);
    expect_error(&l, 1,
                 "\"max_pool_size\" is outside any section (start the file with [warmpool])");
}

static void test_several_errors(void **state)
{
    (void)state;
    struct loaded l;
    load_text(&l, "[warmpool]\n"               /* 1 */
                  "auth_type = trust\n"        /* 2 */
                  "bogus = 1\n"                /* 3 */
                  "max_pool_size = lots\n"     /* 4 */
                  "justtext\n"                 /* 5 */
                  "[nowhere]\n"                /* 6 */
                  "x = 1\n"                    /* 7 */
                  "[databases]\n"              /* 8 */
                  "a = host=h sslmod=off\n"    /* 9 */
                  "a = host=h\n"               /* 10 */
                  "b = password='open\n"       /* 11 */
                  "[users]\n"                  /* 12 */
                  "u = frobnicate=1\n"         /* 13 */
                  "v = max_db_connections=3\n" /* 14 */
                  "[warmpool]\n"               /* 15 */
                  "listen_port = 0\n");        /* 16 */
    expect_error(&l, 3, "unknown key \"bogus\" in [warmpool]");
    expect_error(&l, 4, "max_pool_size: \"lots\" is not an integer");
    expect_error(&l, 5, "syntax error: expected \"key = value\", \"[section]\" or a comment");
    expect_error(
        &l, 6, "unknown section [nowhere] (expected [warmpool], [databases], [users] or [peers])");
    expect_error(&l, 9, "database \"a\": invalid connection option \"sslmod\"");
    expect_error(&l, 10, "duplicate database \"a\" (first defined on line 9)");
    expect_error(&l, 11, "database \"b\": unterminated quoted value (missing closing ')");
    expect_error(&l, 13, "user \"u\": unknown key \"frobnicate\"");
    expect_error(&l, 14, "user \"v\": max_db_connections cannot be set per user");
    expect_error(&l, 16, "listen_port: \"0\" is too small (minimum 1)");
    assert_int_equal(count_lines(l.err), 10);
    /* reported in file order */
    assert_true(strstr(l.err, ":3: ") < strstr(l.err, ":16: "));
}

static void test_validation(void **state)
{
    (void)state;
    struct loaded l;

    load_text(&l, TRUST "min_pool_size = 10\nmax_pool_size = 5\n");
    expect_error(&l, 3, "min_pool_size (10) is larger than max_pool_size (5)");
    load_text(&l, TRUST "max_pool_size = 0\n");
    expect_error(&l, 3, "max_pool_size: \"0\" is too small (minimum 1)");
    load_text(&l, TRUST "listen_port = 65536\n");
    expect_error(&l, 3, "listen_port: \"65536\" is too large (maximum 65535)");
    load_text(&l, "\n[warmpool]\nlisten_port = 6000\n");
    expect_error(&l, 2,
                 "auth_type md5 needs auth_file (md5 is the default; auth_type = trust has none)");
    load_text(&l, "[warmpool]\nlisten_port = 6000\nauth_type = plain\n");
    expect_error(&l, 3, "auth_type plain needs auth_file");
    load_text(&l, TRUST "unix_socket_dir =\nlisten_addr =\n");
    expect_error(&l, 4, "listen_addr and unix_socket_dir are both empty: nothing to listen on");
    load_text(&l, TRUST "workers = 65\nverbose = 10\n");
    expect_error(&l, 3, "workers: \"65\" is too large (maximum 64)");
    expect_error(&l, 4, "verbose: \"10\" is too large (maximum 3)");
    load_text(&l, TRUST "workers = 0\n");
    expect_error(&l, 3, "workers: \"0\" is too small (minimum 1)");
    load_text(&l, TRUST "workers = 1\nWorkers = 1\n");
    expect_error(&l, 4, "duplicate key \"Workers\" (already set on line 3)");
    static const char *const bad_listen[] = {"9127",  "localhost", ":9127", "h:0",    "h:65536",
                                             "h:12x", "::1:9127",  "[::1]", "[]:9127"};
    for (size_t i = 0; i < sizeof bad_listen / sizeof bad_listen[0]; i++) {
        char text[128], want[192];
        snprintf(text, sizeof text, TRUST "stats_listen = %s\n", bad_listen[i]);
        snprintf(want, sizeof want,
                 "stats_listen: \"%s\" is not host:port (e.g. 127.0.0.1:9127, [::1]:9127)",
                 bad_listen[i]);
        load_text(&l, text);
        expect_error(&l, 3, want);
    }
    load_text(&l, TRUST "stats_top_statements = -1\nnplus1_window_ms = 1.5ms\n");
    expect_error(&l, 3, "stats_top_statements: \"-1\" is too small (minimum 0)");
    expect_error(&l, 4,
                 "nplus1_window_ms: \"1.5ms\" is not a duration "
                 "(e.g. 250ms, 5s, 10min, 1h, 2d; bare number = seconds)");
    load_text(&l, TRUST "max_pool_size = 4\n[databases]\nd = min_pool_size=5\n"
                        "[users]\nu = max_pool_size=1 min_pool_size=2\n");
    expect_error(&l, 5, "database \"d\": min_pool_size (5) is larger than max_pool_size (4)");
    expect_error(&l, 7, "user \"u\": min_pool_size (2) is larger than max_pool_size (1)");

    /* only one of the two listeners is enough */
    load_ok(&l, TRUST "listen_addr =\n");
    config_free(&l.cfg);
    load_ok(&l, TRUST "unix_socket_dir =\n");
    config_free(&l.cfg);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct wp_config cfg;
    char err[256];
    assert_int_equal(config_load("/nonexistent/warmpool.ini", &cfg, err, sizeof err), -1);
    assert_string_equal(err, "/nonexistent/warmpool.ini: cannot open: No such file or directory\n");
    assert_null(cfg.path);
    assert_null(cfg.listen_addr);
    config_free(&cfg); /* harmless on a zeroed struct */
}

static void test_error_truncation(void **state)
{
    (void)state;
    struct loaded l;
    char text[4096] = TRUST;
    for (int i = 0; i < 50; i++)
        strcat(text, "nonsense_key_with_a_long_name = 1\n");
    write_temp(l.path, sizeof l.path, text);

    char small[200];
    memset(small, 'x', sizeof small);
    assert_int_equal(config_load(l.path, &l.cfg, small, sizeof small), -1);
    assert_true(strlen(small) < sizeof small);
    assert_true(strstr(small, ":3: unknown key") != NULL);
    assert_non_null(strstr(small, "more errors not shown)\n"));

    char tiny[16];
    assert_int_equal(config_load(l.path, &l.cfg, tiny, sizeof tiny), -1);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);

    assert_int_equal(config_load(l.path, &l.cfg, NULL, 0), -1);
    unlink(l.path);
}

static void test_long_lines(void **state)
{
    (void)state;
    struct loaded l;
    size_t n = 20000;
    char *text = malloc(n + 256);
    assert_non_null(text);

    int len = sprintf(text, TRUST "[databases]\nbig = host=h options='");
    memset(text + len, 'o', n);
    strcpy(text + len + n, "'\nafter = host=h\n");
    load_ok(&l, text);
    assert_int_equal(strlen(conn_value(db_named(&l.cfg, "big"), "options")), n);
    assert_int_equal(db_named(&l.cfg, "after")->line, 5);
    config_free(&l.cfg);

    text = realloc(text, 70000 + 256);
    assert_non_null(text);
    len = sprintf(text, TRUST "[databases]\nhuge = host=h options=");
    memset(text + len, 'o', 70000);
    strcpy(text + len + 70000, "\nbad = nope\n");
    load_text(&l, text);
    expect_error(&l, 4, "line is longer than 65534 bytes");
    /* the counter stays right after the long line */
    expect_error(&l, 5,
                 "database \"bad\": expected key=value but found a word without \"=\" "
                 "(quote values that contain blanks: key='a b')");
    assert_int_equal(count_lines(l.err), 2);
    free(text);
}

static void test_file_format_details(void **state)
{
    (void)state;
    struct loaded l;

    /* BOM, CRLF, both comment styles, indentation, no final newline, a ';' inside a
       value is not a comment */
    load_ok(&l, "\xEF\xBB\xBF# hash comment\r\n[warmpool]\r\n  ; semicolon comment\r\n"
                "  auth_type = trust\r\n[databases]\r\n"
                "db = host=h password='a ;b'\r\n\r\n[ Users ]\r\nbob = pool_mode=session");
    assert_int_equal(l.cfg.auth_type, WP_AUTH_TRUST);
    assert_string_equal(conn_value(db_named(&l.cfg, "db"), "password"), "a ;b");
    assert_non_null(config_find_user(&l.cfg, "bob"));
    config_free(&l.cfg);

    /* inline comments are not stripped: this is a type error, reported */
    load_text(&l, TRUST "max_pool_size = 5 ; five\n");
    expect_error(&l, 3, "max_pool_size: \"5 ; five\" is not an integer");

    /* keys are case-insensitive */
    load_ok(&l, TRUST "Max_Pool_Size = 9\n");
    assert_int_equal(l.cfg.pool.max_pool_size, 9);
    config_free(&l.cfg);

    /* an embedded NUL is an error with its line number */
    static const char nul_text[] = "[warmpool]\nauth_type = trust\nx\0y = 1\n";
    write_temp(l.path, sizeof l.path, "");
    FILE *fp = fopen(l.path, "w");
    assert_non_null(fp);
    fwrite(nul_text, 1, sizeof nul_text - 1, fp);
    fclose(fp);
    l.rc = config_load(l.path, &l.cfg, l.err, sizeof l.err);
    unlink(l.path);
    expect_error(&l, 3, "line contains a NUL byte");
}

/* ---------------------------------------------------------------- [databases] */

static void test_connstring_quoting(void **state)
{
    (void)state;
    struct loaded l;
    load_ok(&l, TRUST "[databases]\n"
                      "q = host=h password='a b\\'c' options='-c search_path=x\\\\y' "
                      "application_name=one\\ two user = 'bob' port=''\n");
    const struct wp_db_config *db = db_named(&l.cfg, "q");
    assert_string_equal(conn_value(db, "password"), "a b'c");
    assert_string_equal(conn_value(db, "options"), "-c search_path=x\\y");
    assert_string_equal(conn_value(db, "application_name"), "one two");
    assert_string_equal(conn_value(db, "user"), "bob");
    assert_string_equal(conn_value(db, "port"), "");
    assert_string_equal(conn_value(db, "dbname"), "q");
    assert_ptr_equal(db->forced_user, conn_value(db, "user"));
    assert_int_equal(db->nconn, 7);
    config_free(&l.cfg);

    /* a value may be empty, and the whole entry too; an empty user forces nothing */
    load_ok(&l, TRUST "[databases]\nbare =\nanon = user=''\n");
    assert_null(db_named(&l.cfg, "anon")->forced_user);
    db = db_named(&l.cfg, "bare");
    assert_int_equal(db->nconn, 1);
    assert_string_equal(db->conn_keys[0], "dbname");
    assert_string_equal(db->conn_values[0], "bare");
    config_free(&l.cfg);
}

static void test_connstring_errors(void **state)
{
    (void)state;
    struct loaded l;

    load_text(&l, TRUST "[databases]\nd = host=h password=my secret\n");
    expect_error(&l, 4,
                 "database \"d\": expected key=value but found a word without \"=\" "
                 "(quote values that contain blanks: key='a b')");
    assert_null(strstr(l.err, "secret")); /* never echo conninfo text */
    load_text(&l, TRUST "[databases]\nd = host=h =x\n");
    expect_error(&l, 4, "database \"d\": missing keyword before \"=\"");
    load_text(&l, TRUST "[databases]\nd = host=h port=1 port=2\n");
    expect_error(&l, 4, "database \"d\": port is given twice");
    load_text(&l, TRUST "[databases]\nd = pool_size=2 max_pool_size=3\n");
    expect_error(&l, 4, "database \"d\": max_pool_size is given twice");
    load_text(&l, TRUST "[databases]\nd = host=h max_client_conn=5\n");
    expect_error(&l, 4, "database \"d\": max_client_conn can only be set in [warmpool]");
    load_text(&l, TRUST "[databases]\nd = postgresql://h/db\n");
    expect_error(&l, 4, "database \"d\": connection URIs are not supported, use key=value pairs");
    load_text(&l, TRUST "[databases]\nd = host=h pool_size=0 query_timeout=soon\n");
    expect_error(&l, 4, "database \"d\": pool_size: \"0\" is too small (minimum 1)");
    expect_error(&l, 4,
                 "database \"d\": query_timeout: \"soon\" is not a duration "
                 "(e.g. 250ms, 5s, 10min, 1h, 2d; bare number = seconds)");
}

static void test_db_overrides(void **state)
{
    (void)state;
    struct loaded l;
    load_ok(&l, TRUST "pool_mode = transaction\nmax_pool_size = 30\nquery_timeout = 1min\n"
                      "[databases]\n"
                      "olap = host=h pool_mode=session max_pool_size=4 min_pool_size=1 "
                      "reserve_pool_size=2 max_db_connections=8 query_timeout=0 "
                      "query_wait_timeout=5s client_idle_timeout=10min "
                      "idle_transaction_timeout=30s server_lifetime=1h server_idle_timeout=1min\n"
                      "oltp = host=h\n");
    const struct wp_db_config *olap = db_named(&l.cfg, "olap");
    assert_int_equal(olap->nconn, 2); /* host + implicit dbname */
    struct wp_pool_settings eff;
    config_effective(&l.cfg, olap, NULL, &eff);
    assert_int_equal(eff.pool_mode, WP_MODE_SESSION);
    assert_int_equal(eff.max_pool_size, 4);
    assert_int_equal(eff.min_pool_size, 1);
    assert_int_equal(eff.reserve_pool_size, 2);
    assert_int_equal(eff.max_db_connections, 8);
    assert_int_equal(eff.query_timeout, 0);
    assert_int_equal(eff.query_wait_timeout, 5000);
    assert_int_equal(eff.client_idle_timeout, 600000);
    assert_int_equal(eff.idle_transaction_timeout, 30000);
    assert_int_equal(eff.server_lifetime, 3600000);
    assert_int_equal(eff.server_idle_timeout, 60000);

    config_effective(&l.cfg, db_named(&l.cfg, "oltp"), NULL, &eff);
    assert_int_equal(eff.pool_mode, WP_MODE_TRANSACTION);
    assert_int_equal(eff.max_pool_size, 30);
    assert_int_equal(eff.query_timeout, 60000);
    assert_int_equal(eff.server_lifetime, 3600000);

    config_effective(&l.cfg, NULL, NULL, &eff);
    assert_memory_equal(&eff, &l.cfg.pool, sizeof eff);
    config_free(&l.cfg);
}

static void test_user_overrides(void **state)
{
    (void)state;
    struct loaded l;
    load_ok(&l, TRUST "[users]\n"
                      "etl = pool_mode=statement max_user_connections=5 pool_size=3 "
                      "query_timeout=10min\n"
                      "web = min_pool_size=2\n"
                      "[databases]\n"
                      "db = host=h pool_mode=transaction max_pool_size=10 min_pool_size=4 "
                      "query_timeout=1s\n"
                      "[warmpool]\n"
                      "max_user_connections = 50\n");
    const struct wp_db_config *db = db_named(&l.cfg, "db");
    const struct wp_user_config *etl = config_find_user(&l.cfg, "etl");
    const struct wp_user_config *web = config_find_user(&l.cfg, "web");
    assert_non_null(etl);
    assert_non_null(web);
    assert_null(config_find_user(&l.cfg, "nobody"));
    assert_null(config_find_user(&l.cfg, "ETL"));
    assert_int_equal(etl->max_user_connections, 5);
    /* users that do not set it inherit the [warmpool] value, even when set later */
    assert_int_equal(web->max_user_connections, 50);
    assert_int_equal(l.cfg.max_user_connections, 50);

    struct wp_pool_settings eff;
    config_effective(&l.cfg, db, etl, &eff);
    assert_int_equal(eff.pool_mode, WP_MODE_STATEMENT); /* user beats db */
    assert_int_equal(eff.max_pool_size, 3);
    assert_int_equal(eff.min_pool_size, 3); /* db's 4 clamped to the user's max */
    assert_int_equal(eff.query_timeout, 600000);
    assert_int_equal(eff.server_idle_timeout, 600000);

    config_effective(&l.cfg, db, web, &eff);
    assert_int_equal(eff.pool_mode, WP_MODE_TRANSACTION);
    assert_int_equal(eff.max_pool_size, 10);
    assert_int_equal(eff.min_pool_size, 2);
    assert_int_equal(eff.query_timeout, 1000);

    config_effective(&l.cfg, NULL, etl, &eff);
    assert_int_equal(eff.max_pool_size, 3);
    assert_int_equal(eff.pool_mode, WP_MODE_STATEMENT);
    config_free(&l.cfg);

    load_text(&l, TRUST "[users]\nu = host=x\nu = pool_mode=session\nw = pool_mode\n");
    expect_error(&l, 4, "user \"u\": unknown key \"host\"");
    expect_error(&l, 5, "duplicate user \"u\" (first defined on line 4)");
    expect_error(&l, 6,
                 "user \"w\": expected key=value but found a word without \"=\" "
                 "(quote values that contain blanks: key='a b')");
}

static void test_star_fallback(void **state)
{
    (void)state;
    struct loaded l;
    load_ok(&l, TRUST "[databases]\n"
                      "* = host=fallback port=5433\n"
                      "exact = host=primary\n");
    const struct wp_db_config *star = db_named(&l.cfg, "*");
    assert_string_equal(star->name, "*");
    /* no dbname=* added: the caller uses the client's database name */
    assert_null(conn_value(star, "dbname"));
    assert_int_equal(star->nconn, 2);

    assert_ptr_equal(config_find_db(&l.cfg, "whatever"), star);
    const struct wp_db_config *exact = db_named(&l.cfg, "exact");
    assert_string_equal(exact->name, "exact");
    assert_string_equal(conn_value(exact, "dbname"), "exact");
    assert_null(config_find_db(&l.cfg, NULL));
    config_free(&l.cfg);

    /* without "*", unknown names find nothing; "*" with dbname forces that database */
    load_ok(&l, TRUST "[databases]\nexact = host=primary\n");
    assert_null(config_find_db(&l.cfg, "whatever"));
    config_free(&l.cfg);
    load_ok(&l, TRUST "[databases]\n* = host=h dbname=shared\n");
    assert_string_equal(conn_value(db_named(&l.cfg, "any"), "dbname"), "shared");
    config_free(&l.cfg);
}

/* ---------------------------------------------------------------- helpers, example */

static void test_helpers(void **state)
{
    (void)state;
    char *list[] = {"postgres", "admin", NULL};
    assert_int_equal(config_user_in_list(list, "admin"), 1);
    assert_int_equal(config_user_in_list(list, "Admin"), 0);
    assert_int_equal(config_user_in_list(list, "nobody"), 0);
    assert_int_equal(config_user_in_list(NULL, "admin"), 0);
    assert_int_equal(config_user_in_list(list, NULL), 0);

    assert_string_equal(config_mode_name(WP_MODE_SESSION), "session");
    assert_string_equal(config_mode_name(WP_MODE_TRANSACTION), "transaction");
    assert_string_equal(config_mode_name(WP_MODE_STATEMENT), "statement");
    assert_string_equal(config_mode_name(WP_MODE_UNSET), "unset");
    assert_string_equal(config_mode_name(42), "unknown");

    struct wp_config cfg;
    memset(&cfg, 0, sizeof cfg);
    config_free(&cfg);
    config_free(NULL);

    char host[16];
    int port = 0;
    assert_int_equal(config_split_host_port("127.0.0.1:9127", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9127);
    assert_int_equal(config_split_host_port("[::1]:80", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 80);
    assert_int_equal(config_split_host_port("*:1", host, sizeof host, &port), 0);
    assert_string_equal(host, "*");
    assert_int_equal(config_split_host_port("a-very-long-host-name:1", host, sizeof host, &port),
                     -1);
    assert_int_equal(config_split_host_port("h:1", NULL, 0, NULL), 0);
}

/* The shipped example must load; found from the repo root or next to the binary
   (build/tests/test_config → ../../conf). */
static void test_example_conf(void **state)
{
    (void)state;
    char path[4096] = "conf/warmpool.ini";

    if (access(path, R_OK) != 0 && argv0) {
        const char *slash = strrchr(argv0, '/');
        int dirlen = slash ? (int)(slash - argv0) : 1;
        snprintf(path, sizeof path, "%.*s/../../conf/warmpool.ini", dirlen, slash ? argv0 : ".");
    }
    if (access(path, R_OK) != 0)
        skip();

    struct wp_config cfg;
    char err[4096];
    int rc = config_load(path, &cfg, err, sizeof err);
    if (rc != 0)
        print_error("%s", err);
    assert_int_equal(rc, 0);
    const struct wp_db_config *app = config_find_db(&cfg, "appdb");
    assert_non_null(app);
    assert_string_equal(conn_value(app, "host"), "127.0.0.1");
    assert_string_equal(conn_value(app, "port"), "5432");
    assert_string_equal(conn_value(app, "dbname"), "appdb");
    config_free(&cfg);
}

/* config_load_string reads text exactly as config_load reads the same bytes from a file. */
static void test_load_string(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "",
        "[warmpool]\nlisten_port = 7000\n[databases]\napp = host=/tmp dbname='a b' pool_size=3\n",
        "[warmpool]\nnope = 1\nlisten_port = 0\n[databases]\nx = a b=c\n[odd\n",
        "[warmpool]\nlisten_port = 7001", /* no final newline */
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct loaded file;
        struct wp_config mem;
        char err[8192];
        load_text(&file, texts[i]);
        int rc = config_load_string(file.path, texts[i], strlen(texts[i]), &mem, err, sizeof err);
        assert_int_equal(rc, file.rc);
        assert_string_equal(err, file.err);
        if (rc == 0) {
            assert_int_equal(mem.listen_port, file.cfg.listen_port);
            assert_int_equal(mem.ndbs, file.cfg.ndbs);
            for (int d = 0; d < mem.ndbs; d++) {
                assert_int_equal(mem.dbs[d].nconn, file.cfg.dbs[d].nconn);
                for (int k = 0; k < mem.dbs[d].nconn; k++)
                    assert_string_equal(mem.dbs[d].conn_values[k], file.cfg.dbs[d].conn_values[k]);
            }
            config_free(&mem);
            config_free(&file.cfg);
        }
    }
    /* Only `len` bytes count: what follows is not read. */
    struct wp_config cfg;
    char err[512];
    static const char text[] = "[warmpool]\nauth_type = trust\nlisten_port = 7002\nbad line";
    assert_int_equal(config_load_string("mem", text, strlen(text) - 8, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.listen_port, 7002);
    config_free(&cfg);
}

/* ---------------------------------------------------------------- SET overrides */

/* Loads `text` with the SET values keys[i] = values[i] applied over it. */
static void load_with_sets(struct loaded *l, const char *text, const char *const *keys,
                           const char *const *values, int n)
{
    write_temp(l->path, sizeof l->path, text);
    l->rc = config_load_with_overrides(l->path, keys, values, n, &l->cfg, l->err, sizeof l->err);
    unlink(l->path);
}

static const char set_base_ini[] = "[pgbouncer]\nauth_type = trust\nquery_wait_timeout = 30\n"
                                   "server_check_query = select 1\ndefault_pool_size = 7\n";

/* A SET value replaces the file's, under either name, in PgBouncer's units or
   warmpool's; a later SET of the same key wins; what is not SET stays the file's. */
static void test_set_replaces_file_value(void **state)
{
    (void)state;
    static const char *const keys[] = {"query_wait_timeout", "SERVER_CHECK_QUERY", "max_pool_size",
                                       "log_connections", "query_wait_timeout"};
    static const char *const values[] = {"0.5", "select 2", "9", "0", "2min"};
    struct loaded l;

    load_with_sets(&l, set_base_ini, keys, values, 4);
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.cfg.pool.query_wait_timeout, 500);
    assert_string_equal(l.cfg.server_check_query, "select 2");
    assert_int_equal(l.cfg.pool.max_pool_size, 9);
    assert_int_equal(l.cfg.log_connections, 0);
    config_free(&l.cfg);

    load_with_sets(&l, set_base_ini, keys, values, 5);
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.cfg.pool.query_wait_timeout, 120000);
    config_free(&l.cfg);

    /* a PgBouncer key without effect is noted as the file's would be, naming SET */
    static const char *const ignored_key[] = {"dns_max_ttl"}, *const ignored_value[] = {"20"};
    load_with_sets(&l, set_base_ini, ignored_key, ignored_value, 1);
    assert_int_equal(l.rc, 0);
    assert_non_null(l.cfg.notices);
    assert_string_equal(l.cfg.notices[0], "SET: accepted, no effect: dns_max_ttl");
    config_free(&l.cfg);

    load_with_sets(&l, set_base_ini, NULL, NULL, 0);
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.cfg.pool.query_wait_timeout, 30000);
    assert_int_equal(l.cfg.pool.max_pool_size, 7);
    config_free(&l.cfg);
}

/* Refused SET values fail the load with a message naming SET and the key. */
static void expect_set_error(const char *key, const char *value, const char *want)
{
    struct loaded l;

    load_with_sets(&l, set_base_ini, &key, &value, 1);
    if (l.rc != -1 || strcmp(l.err, want) != 0) {
        print_error("SET %s = %s\nwanted: %sgot (rc=%d): %s", key, value, want, l.rc, l.err);
        fail();
    }
}

static void test_set_errors(void **state)
{
    (void)state;
    expect_set_error("no_such_key", "1", "SET: unknown configuration key \"no_such_key\"\n");
    expect_set_error("query_wait_timeout", "soon",
                     "SET: query_wait_timeout: \"soon\" is not a duration (e.g. 250ms, 5s, "
                     "10min, 1h, 2d; bare number = seconds)\n");
    expect_set_error("max_client_conn", "0",
                     "SET: max_client_conn: \"0\" is too small (minimum 1)\n");
    expect_set_error("listen_port", "7000",
                     "SET: listen_port cannot be changed without a restart\n");
    /* a value that breaks a rule between keys is blamed on SET, not on the file */
    expect_set_error("min_pool_size", "8",
                     "SET: min_pool_size (8) is larger than max_pool_size (7)\n");
}

int main(int argc, char **argv)
{
    (void)argc;
    argv0 = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_pgbouncer_section_and_aliases),
        cmocka_unit_test(test_bool_values),
        cmocka_unit_test(test_lists_and_paths),
        cmocka_unit_test(test_octal_mode),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_unit_errors_in_file),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_fleet_keys),
        cmocka_unit_test(test_unknown_section),
        cmocka_unit_test(test_bad_pool_mode),
        cmocka_unit_test(test_bad_libpq_keyword),
        cmocka_unit_test(test_tls_keys),
        cmocka_unit_test(test_line_without_equals),
        cmocka_unit_test(test_key_outside_section),
        cmocka_unit_test(test_several_errors),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_error_truncation),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_file_format_details),
        cmocka_unit_test(test_connstring_quoting),
        cmocka_unit_test(test_connstring_errors),
        cmocka_unit_test(test_db_overrides),
        cmocka_unit_test(test_user_overrides),
        cmocka_unit_test(test_star_fallback),
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_example_conf),
        cmocka_unit_test(test_load_string),
        cmocka_unit_test(test_set_replaces_file_value),
        cmocka_unit_test(test_set_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
