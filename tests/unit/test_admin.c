/*
 * test_admin — unit tests for the admin console's command layer (pooler/admin.c,
 * pooler/admin_show.c) without sockets: admin_command() answers into a buffer, which
 * is read back message by message (RowDescription, DataRow, CommandComplete,
 * ErrorResponse, ReadyForQuery).
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

#include "warmpool/admin.h"
#include "warmpool/client.h"
#include "warmpool/config.h"
#include "warmpool/config_keys.h"
#include "warmpool/pool.h"
#include "warmpool/proto.h"
#include "warmpool/runtime.h"
#include "warmpool/stats.h"

static int reloads;
void runtime_reload(void)
{
    reloads++;
}

/* The last SET the console passed on; a value "refuse" fails as a bad value would. */
static char set_key[64], set_value[256];
int runtime_set_setting(const char *key, const char *value, char *err, size_t errlen)
{
    snprintf(set_key, sizeof set_key, "%s", key);
    snprintf(set_value, sizeof set_value, "%s", value);
    if (strcmp(value, "refuse") != 0)
        return 0;
    snprintf(err, errlen, "SET: %s: \"refuse\" is not valid\n", key);
    return -1;
}

static struct wp_config cfg;
static struct wp_pool pool;

/* ---------------------------------------------------------------- reading answers */

struct answer {
    char types[256];    /* message types in order */
    char columns[2048]; /* RowDescription names, comma separated */
    int ncols;
    int rows;
    char first_row[2048]; /* first DataRow, cells separated by '|' */
    char tag[64];         /* CommandComplete */
    char sqlstate[6];
    char message[256];
    char ready;
};

static void read_answer(const struct wp_buf *b, struct answer *a)
{
    memset(a, 0, sizeof *a);
    const uint8_t *p = buf_head(b);
    size_t left = buf_unread(b);
    size_t nt = 0;
    while (left > 0) {
        uint8_t type = 0;
        uint32_t len = 0;
        assert_int_equal(proto_scan_header(p, left, UINT32_MAX, &type, &len), PROTO_HEADER);
        assert_true(len <= left);
        const uint8_t *body = p + 5;
        size_t blen = len - 5;
        assert_true(nt < sizeof a->types - 1);
        a->types[nt++] = (char)type;
        if (type == 'T') {
            a->ncols = proto_get_u16(body);
            const uint8_t *q = body + 2;
            for (int i = 0; i < a->ncols; i++) {
                strcat(a->columns, i ? "," : "");
                strcat(a->columns, (const char *)q);
                q += strlen((const char *)q) + 1 + 18;
            }
            assert_ptr_equal(q, body + blen);
        } else if (type == 'D') {
            int n = proto_get_u16(body);
            assert_int_equal(n, a->ncols);
            const uint8_t *q = body + 2;
            for (int i = 0; i < n; i++) {
                uint32_t vlen = proto_get_u32(q);
                q += 4;
                if (a->rows == 0) {
                    if (i)
                        strcat(a->first_row, "|");
                    if (vlen != 0xffffffffu)
                        strncat(a->first_row, (const char *)q, vlen);
                }
                if (vlen != 0xffffffffu)
                    q += vlen;
            }
            assert_ptr_equal(q, body + blen);
            a->rows++;
        } else if (type == 'C') {
            snprintf(a->tag, sizeof a->tag, "%s", (const char *)body);
        } else if (type == 'E') {
            snprintf(a->sqlstate, sizeof a->sqlstate, "%s", proto_error_field(body, blen, 'C'));
            snprintf(a->message, sizeof a->message, "%s", proto_error_field(body, blen, 'M'));
        } else if (type == 'Z') {
            a->ready = (char)body[0];
        }
        p += len;
        left -= len;
    }
}

static void ask(const char *user, const char *sql, struct answer *a)
{
    struct wp_buf b = {0};
    admin_command(&b, user, sql);
    read_answer(&b, a);
    buf_free(&b);
    assert_int_equal(a->ready, 'I');
}

/* ---------------------------------------------------------------- fixtures */

static char *list_admin[] = {"admin", NULL};
static char *list_stats[] = {"monitor", NULL};
static char *list_none[] = {NULL};

static int setup(void **state)
{
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.admin_users = list_admin;
    cfg.stats_users = list_stats;
    cfg.ignore_startup_parameters = list_none;
    cfg.listen_port = 6432;
    cfg.stats_top_statements = 10;
    cfg.pool.max_pool_size = 20;
    memset(&wp_rt, 0, sizeof wp_rt);
    wp_rt.cfg = &cfg;
    list_init(&wp_rt.pools);
    list_init(&wp_rt.clients);
    memset(&pool, 0, sizeof pool);
    pool.dbname = "appdb";
    pool.user = "app";
    pool.settings.pool_mode = WP_MODE_TRANSACTION;
    list_init(&pool.idle);
    list_init(&pool.active);
    list_init(&pool.busy);
    list_init(&pool.waiting);
    list_init(&pool.welcoming);
    list_push_tail(&wp_rt.pools, &pool.node);
    reloads = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stats_pool_free(&pool);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_show_columns(void **state)
{
    (void)state;
    struct answer a;
    ask("monitor", "SHOW POOLS", &a);
    assert_string_equal(a.types, "TDDCZ"); /* appdb's pool, then the console's */
    assert_string_equal(a.tag, "SHOW");
    assert_string_equal(a.columns,
                        "database,user,cl_active,cl_waiting,cl_active_cancel_req,"
                        "cl_waiting_cancel_req,sv_active,sv_active_cancel,sv_being_canceled,"
                        "sv_idle,sv_used,sv_tested,sv_login,maxwait,maxwait_us,pool_mode,"
                        "load_balance_hosts,cl_idle,paused,cl_pinned,host,failovers,fleet_cap,"
                        "fleet_backends");
    assert_string_equal(a.first_row, "appdb|app|0|0|0|0|0|0|0|0|0|0|0|0|0|transaction||0|0|0||0||");

    struct wp_client_stats cs = {0};
    stats_query_start(&pool, &cs, "SELECT 1", 8, 0, 100);
    stats_query_end(&pool, NULL, &cs, 'I', 350);
    ask("monitor", "show stats;", &a);
    assert_string_equal(a.types, "TDCZ");
    assert_string_equal(
        a.columns,
        "database,total_server_assignment_count,total_xact_count,total_query_count,"
        "total_received,total_sent,total_xact_time,total_query_time,total_wait_time,"
        "total_client_parse_count,total_server_parse_count,total_bind_count,"
        "avg_server_assignment_count,avg_xact_count,avg_query_count,avg_recv,avg_sent,"
        "avg_xact_time,avg_query_time,avg_wait_time,avg_client_parse_count,"
        "avg_server_parse_count,avg_bind_count,total_query_errors,query_p50_us,query_p95_us,"
        "query_p99_us,xact_p95_us,wait_p95_us,wait_p99_us");
    assert_true(strncmp(a.first_row, "appdb|0|1|1|0|0|250|250|0|0|0|0|", 32) == 0);

    ask("monitor", "SHOW SERVERS", &a);
    assert_string_equal(a.types, "TCZ");
    assert_string_equal(a.columns,
                        "type,user,database,replication,state,addr,port,local_addr,local_port,"
                        "connect_time,request_time,wait,wait_us,close_needed,ptr,link,remote_pid,"
                        "tls,application_name,prepared_statements,id");
    ask("monitor", "SHOW CLIENTS", &a);
    assert_int_equal(a.ncols, 21);
    ask("monitor", "SHOW DATABASES", &a);
    assert_string_equal(a.columns, "name,host,port,database,force_user,pool_size,min_pool_size,"
                                   "reserve_pool_size,server_lifetime,pool_mode,load_balance_hosts,"
                                   "max_connections,current_connections,max_client_connections,"
                                   "current_client_connections,paused,disabled");
    assert_int_equal(a.rows, 1); /* the console itself; no [databases] in this config */
    assert_true(strncmp(a.first_row, "pgbouncer||", 11) == 0);
    ask("monitor", "SHOW STATEMENTS", &a);
    assert_string_equal(a.columns, "database,user,fingerprint,calls,total_time_us,mean_time_us,"
                                   "max_time_us,errors,nplus1_bursts,query");
    assert_int_equal(a.rows, 1);
    assert_true(strstr(a.first_row, "|1|250|250|250|0|0|SELECT ?") != NULL);
    ask("monitor", "SHOW PREPARED", &a);
    assert_string_equal(a.columns, "name,uses,refs,params,validated,query");
    ask("monitor", "SHOW VERSION", &a);
    assert_string_equal(a.columns, "version");
    assert_true(strncmp(a.first_row, "warmpool ", 9) == 0);
    ask("monitor", "SHOW CONFIG", &a);
    assert_string_equal(a.columns, "key,value,default,changeable,effect");
    assert_int_equal(a.rows, admin_config_show_rows());
    assert_true(admin_config_show_rows() > admin_config_rows());
    ask("monitor", "  Show   Help ", &a);
    assert_string_equal(a.types, "NCZ");
}

static void test_errors_and_permissions(void **state)
{
    (void)state;
    struct answer a;
    ask("monitor", "SHOW NOTHING", &a);
    assert_string_equal(a.types, "EZ");
    assert_string_equal(a.sqlstate, "42601");
    ask("monitor", "SELECT 1", &a);
    assert_string_equal(a.sqlstate, "42601");
    ask("monitor", "SHOW POOLS; SHOW STATS", &a);
    assert_string_equal(a.sqlstate, "42601");
    ask("monitor", "SHOW", &a);
    assert_string_equal(a.sqlstate, "42601");
    ask("monitor", "", &a);
    assert_string_equal(a.types, "IZ");
    ask("monitor", " ; ", &a);
    assert_string_equal(a.types, "IZ");
    static const char *const admin_only[] = {"PAUSE", "RESUME", "RELOAD", "KILL appdb", "SHUTDOWN"};
    for (size_t i = 0; i < sizeof admin_only / sizeof admin_only[0]; i++) {
        ask("monitor", admin_only[i], &a);
        assert_string_equal(a.types, "EZ");
        assert_string_equal(a.sqlstate, "42501");
    }
    assert_int_equal(pool.paused, 0);
    assert_int_equal(reloads, 0);
    ask("admin", "PAUSE nosuchdb", &a);
    assert_string_equal(a.sqlstate, "3D000");
    ask("admin", "KILL a b", &a);
    assert_string_equal(a.sqlstate, "42601");
    ask("admin", "KILL warmpool", &a);
    assert_string_equal(a.sqlstate, "55000");
    ask("admin", "RESUME", &a); /* nothing paused */
    assert_string_equal(a.sqlstate, "55000");
    ask("admin", "KILL_CLIENT 12345", &a);
    assert_string_equal(a.sqlstate, "42704");
    ask("admin", "KILL_CLIENT 12x", &a);
    assert_string_equal(a.sqlstate, "22P02");
    ask("admin", "DISABLE nosuchdb", &a);
    assert_string_equal(a.sqlstate, "3D000");
    ask("admin", "SHUTDOWN NOW", &a);
    assert_string_equal(a.sqlstate, "42601");
    ask("admin", "RELOAD now", &a);
    assert_string_equal(a.sqlstate, "42601");
    ask("admin", "SHOW \"unterminated", &a);
    assert_string_equal(a.sqlstate, "42601");
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ask("admin", big, &a);
    assert_string_equal(a.sqlstate, "42601");
}

static void test_admin_commands(void **state)
{
    (void)state;
    struct answer a;
    ask("admin", "pause appdb;", &a);
    assert_string_equal(a.types, "CZ");
    assert_string_equal(a.tag, "PAUSE");
    assert_int_equal(pool.paused, 1);
    ask("admin", "SHOW POOLS", &a);
    assert_true(strstr(a.first_row, "|transaction||0|1|") != NULL);
    ask("admin", "RESUME \"appdb\"", &a);
    assert_string_equal(a.tag, "RESUME");
    assert_int_equal(pool.paused, 0);
    ask("admin", "PAUSE", &a);
    assert_int_equal(pool.paused, 1);
    ask("admin", "RESUME", &a);
    assert_int_equal(pool.paused, 0);
    ask("admin", "RELOAD", &a);
    assert_string_equal(a.tag, "RELOAD");
    assert_int_equal(reloads, 1);
    ask("admin", "KILL appdb", &a);
    assert_string_equal(a.tag, "KILL");
    assert_int_equal(pool.paused, 1); /* KILL pauses until RESUME */
    ask("admin", "RESUME appdb", &a);
    assert_string_equal(a.tag, "RESUME");
    assert_int_equal(pool.paused, 0);
    ask("admin", "DISABLE appdb", &a);
    assert_string_equal(a.tag, "DISABLE");
    ask("admin", "ENABLE appdb", &a);
    assert_string_equal(a.tag, "ENABLE");
    ask("admin", "RECONNECT appdb", &a);
    assert_string_equal(a.tag, "RECONNECT");
    ask("admin", "WAIT_CLOSE", &a);
    assert_string_equal(a.tag, "WAIT_CLOSE");
    ask("admin", "PAUSE appdb", &a);
    ask("admin", "SUSPEND", &a);
    assert_string_equal(a.sqlstate, "55000"); /* not with a paused database */
    ask("admin", "RESUME", &a);
    assert_string_equal(a.tag, "RESUME");
    assert_int_equal(pool.paused, 0);
}

/* Rights are checked per command: a user no longer listed (after a RELOAD) is refused
   42501 for every command, SHOW included, also with arguments an admin would get a
   syntax error for. */
static void test_every_command_checks_rights(void **state)
{
    (void)state;
    struct answer a;
    static const char *const all[] = {"SHOW POOLS",     "SHOW HELP",    "SHOW CONFIG",
                                      "PAUSE",          "PAUSE appdb",  "RESUME",
                                      "RELOAD",         "KILL appdb",   "SHUTDOWN",
                                      "KILL",           "RELOAD now",   "KILL_CLIENT 1",
                                      "DISABLE appdb",  "ENABLE appdb", "RECONNECT",
                                      "WAIT_CLOSE",     "SUSPEND",      "SHUTDOWN WAIT_FOR_CLIENTS",
                                      "SET verbose = 1"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        ask("stranger", all[i], &a);
        assert_string_equal(a.types, "EZ");
        assert_string_equal(a.sqlstate, "42501");
        ask("monitor", all[i], &a);
        if (strncmp(all[i], "SHOW", 4) != 0)
            assert_string_equal(a.sqlstate, "42501");
    }
    assert_int_equal(pool.paused, 0);
    assert_int_equal(reloads, 0);
}

/* A printed value equals a printed default. In PgBouncer's style a file mode's value is
   decimal and its default the octal text (511 and 0777), as PgBouncer prints them. */
static int same_as_default(const char *key, const char *value, const char *dflt)
{
    const struct wp_key *k = &wp_keys[config_key_find(key, WP_SEC_GLOBAL)];
    if (k->type == WP_KEY_OCTAL && k->pgbouncer)
        return strtol(value, NULL, 10) == strtol(dflt, NULL, 8);
    return strcmp(value, dflt) == 0;
}

/* auth_type's default (md5) would need an auth_file, so trust stands for it. */
static const char *default_shown(int i, const char *key, char *out, size_t len)
{
    return strcmp(key, "auth_type") == 0 ? "trust" : admin_config_default(i, out, len);
}

/* Every row of the loaded file shows its default. */
static void check_defaults_shown(const struct wp_config *loaded, const char *what)
{
    for (int i = 0; i < admin_config_rows(); i++) {
        char value[256], dflt_buf[64];
        const char *key = admin_config_value(loaded, i, value, sizeof value);
        const char *dflt = default_shown(i, key, dflt_buf, sizeof dflt_buf);
        if (!same_as_default(key, value, dflt))
            fail_msg("%s: value \"%s\" != %s \"%s\"", key, value, what, dflt);
    }
}

/* Every SHOW CONFIG key exists in config.c with the default it claims, and the
   default as printed (PgBouncer's units for its keys) reads back as the same value. */
static void test_config_defaults(void **state)
{
    (void)state;
    char path[] = "/tmp/test_admin_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "[warmpool]\n");
    for (int i = 0; i < admin_config_rows(); i++) {
        char value[256], dflt[64];
        const char *key = admin_config_value(&cfg, i, value, sizeof value);
        /* An empty list or path is written as an empty value. */
        fprintf(f, "%s = %s\n", key, default_shown(i, key, dflt, sizeof dflt));
    }
    fclose(f);
    struct wp_config loaded;
    char err[4096];
    int rc = config_load(path, &loaded, err, sizeof err);
    if (rc != 0)
        fail_msg("SHOW CONFIG defaults rejected by config_load:\n%s", err);
    check_defaults_shown(&loaded, "default");
    config_free(&loaded);

    /* And an almost empty file gives the same values: the defaults are real. */
    f = fopen(path, "w");
    fprintf(f, "[warmpool]\nauth_type = trust\n");
    fclose(f);
    assert_int_equal(config_load(path, &loaded, err, sizeof err), 0);
    check_defaults_shown(&loaded, "documented default");
    config_free(&loaded);
    unlink(path);
}

/* SHOW CONFIG prints a key PgBouncer has as PgBouncer does: seconds ("%g"), the
   milliseconds of tcp_user_timeout, bytes, a decimal mode, "<empty>"; warmpool's own
   keys keep their unit. */
static void test_config_pgbouncer_units(void **state)
{
    (void)state;
    static const char ini[] = "[warmpool]\nauth_type = trust\nquery_wait_timeout = 0.5\n"
                              "server_lifetime = 2h\nclient_idle_timeout = 365d\n"
                              "tcp_user_timeout = 1500ms\npkt_buf = 8kB\nunix_socket_mode = 0700\n"
                              "shutdown_wait_timeout = 90s\n";
    static const struct {
        const char *key, *value, *dflt;
    } want[] = {
        {"query_wait_timeout", "0.5", "120"},
        {"server_lifetime", "7200", "3600"},
        {"client_idle_timeout", "3.1536e+07", "0"},
        {"tcp_user_timeout", "1500", "0"},
        {"pkt_buf", "8192", "16384"},
        {"unix_socket_mode", "448", "0777"},
        {"server_check_query", "<empty>", "<empty>"},
        {"max_packet_size", "1073741824", "1073741824"},
        {"shutdown_wait_timeout", "90s", "30s"},
        {"stats_socket_mode", "0660", "0660"},
    };
    struct wp_config loaded;
    char err[1024];
    assert_int_equal(config_load_string("units.ini", ini, strlen(ini), &loaded, err, sizeof err),
                     0);
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        int found = 0;
        for (int i = 0; i < admin_config_rows(); i++) {
            char value[256], dflt[64];
            if (strcmp(admin_config_value(&loaded, i, value, sizeof value), want[w].key) != 0)
                continue;
            assert_string_equal(value, want[w].value);
            assert_string_equal(admin_config_default(i, dflt, sizeof dflt), want[w].dflt);
            found++;
        }
        if (found != 1)
            fail_msg("%s: %d rows", want[w].key, found);
    }
    config_free(&loaded);
}

/* SET's forms reach runtime_set_setting with the key and the unquoted value; its
   refusals and the console's own give PostgreSQL's SQLSTATEs. */
static void test_set(void **state)
{
    (void)state;
    static const struct {
        const char *sql, *key, *value;
    } good[] = {
        {"SET query_wait_timeout = 30", "query_wait_timeout", "30"},
        {"  set log_connections=0 ;", "log_connections", "0"},
        {"SET server_check_query TO 'select 2';", "server_check_query", "select 2"},
        {"Set default_pool_size to 5", "default_pool_size", "5"},
        {"SET auth_query = 'SELECT ''x'''", "auth_query", "SELECT 'x'"},
        {"SET server_check_query = ''", "server_check_query", ""},
    };
    struct answer a;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ask("admin", good[i].sql, &a);
        assert_string_equal(a.types, "CZ");
        char tag[256];
        snprintf(tag, sizeof tag, "SET %s=%s", good[i].key, good[i].value);
        assert_string_equal(a.tag, tag); /* PgBouncer's tag */
        assert_string_equal(set_key, good[i].key);
        assert_string_equal(set_value, good[i].value);
    }
    static const struct {
        const char *user, *sql, *sqlstate;
    } bad[] = {
        {"monitor", "SET query_wait_timeout = 30", "42501"},
        {"admin", "SET", "42601"},
        {"admin", "SET query_wait_timeout", "42601"},
        {"admin", "SET query_wait_timeout 30", "42601"},
        {"admin", "SET query_wait_timeout = 'open", "42601"},
        {"admin", "SET query_wait_timeout = 'a' b", "42601"},
        {"admin", "SET query_wait_timeout = 1; SET x = 2", "42601"},
        {"admin", "SET no_such_key = 1", "42704"},
        {"admin", "SET pool_size = 1", "42704"}, /* a [databases]/[users] key only */
        {"admin", "SET listen_port = 7000", "55P02"},
        {"admin", "SET query_wait_timeout = refuse", "22023"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ask(bad[i].user, bad[i].sql, &a);
        if (strcmp(a.sqlstate, bad[i].sqlstate) != 0)
            fail_msg("%s: want %s, got %s (%s)", bad[i].sql, bad[i].sqlstate, a.sqlstate,
                     a.message);
        assert_string_equal(a.types, "EZ");
    }
    assert_string_equal(a.message, "SET: query_wait_timeout: \"refuse\" is not valid");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_show_columns),
        T(test_errors_and_permissions),
        T(test_admin_commands),
        T(test_every_command_checks_rights),
        T(test_config_defaults),
        T(test_config_pgbouncer_units),
        T(test_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
