/*
 * test_session_state — settings and pins from a client's texts and the backend's
 * answers (pooler/session_state.c), driven with the message sequences PostgreSQL 15
 * answers with: CommandComplete tags, ErrorResponse, ReadyForQuery status. owed runs
 * beside it, as in the relay, so that request numbers are real.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/owed.h"
#include "warmpool/session_sql.h"
#include "warmpool/session_state.h"

struct env {
    struct wp_owed owed;
    struct wp_session ss;
    struct wp_params client, server, startup;
    struct session_views views;
    struct session_sql scan;
};

static struct env *env_new(void)
{
    struct env *e = calloc(1, sizeof *e);
    e->views = (struct session_views){&e->client, &e->server, &e->startup};
    return e;
}

static void env_free(struct env *e)
{
    session_free(&e->ss);
    owed_free(&e->owed);
    params_clear(&e->client);
    params_clear(&e->server);
    params_clear(&e->startup);
    session_sql_free(&e->scan);
    free(e);
}

static struct session_text *text_of(struct env *e, const char *sql)
{
    int failed = 0;
    session_sql_scan(sql, strlen(sql), 0, &e->scan);
    struct session_text *text = session_text_from_scan(&e->scan, &failed);
    assert_false(failed);
    return text;
}

/* A simple Query goes to the backend. */
static void query(struct env *e, const char *sql)
{
    struct session_text *text = text_of(e, sql);
    owed_sent(&e->owed, 'Q');
    if (text)
        session_query_sent(&e->ss, text, e->owed.exec_sent - 1);
    session_text_unref(text);
}

static void feed(struct env *e, uint8_t type)
{
    owed_answer(&e->owed, type);
    assert_false(e->owed.lost);
}

/* The backend answers the oldest request: "SET", "COMMIT", … for CommandComplete,
   "!" for an ErrorResponse; then ReadyForQuery with status (0: none). */
static void answer(struct env *e, const char *const *tags, int n, char status)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(tags[i], "!") == 0) {
            if (e->ss.watching)
                session_error(&e->ss);
            feed(e, 'E');
            continue;
        }
        if (e->ss.watching)
            session_command_complete(&e->ss, &e->owed, tags[i], &e->views);
        feed(e, 'C');
    }
    if (!status)
        return;
    feed(e, 'Z');
    if (e->ss.watching)
        session_ready(&e->ss, &e->owed, status, &e->views);
}

#define ANSWER(e, status, ...)                                                                     \
    do {                                                                                           \
        const char *const tags_[] = {__VA_ARGS__};                                                 \
        answer(e, tags_, (int)(sizeof tags_ / sizeof tags_[0]), status);                           \
    } while (0)

/* One statement's Query and its answer. */
static void run(struct env *e, const char *sql, const char *tag, char status)
{
    query(e, sql);
    ANSWER(e, status, tag);
}

static void assert_setting(const struct wp_params *view, const char *name, const char *value)
{
    const char *have = params_get(view, name);
    if (!value) {
        assert_null(have);
        return;
    }
    assert_non_null(have);
    assert_string_equal(have, value);
}

#define PINNED(e, cause) (((e)->ss.causes >> (cause)) & 1)

/* ---- settings ---- */

static void test_set_outside_a_block_follows(void **state)
{
    (void)state;
    struct env *e = env_new();
    run(e, "SET statement_timeout = '10s'", "SET", 'I');
    assert_setting(&e->client, "statement_timeout", "10s");
    assert_setting(&e->server, "statement_timeout", "10s");
    assert_false(e->ss.watching);
    run(e, "select 1", "SELECT 1", 'I'); /* no effects: not even watched */
    assert_setting(&e->client, "statement_timeout", "10s");
    run(e, "set search_path = a, \"B\"", "SET", 'I');
    assert_setting(&e->client, "search_path", "a, \"B\"");
    assert_false(session_pinned(&e->ss));
    env_free(e);
}

static void test_blocks_commit_or_roll_back(void **state)
{
    (void)state;
    struct env *e = env_new();
    run(e, "BEGIN", "BEGIN", 'T');
    run(e, "SET work_mem = '8MB'", "SET", 'T');
    assert_setting(&e->client, "work_mem", NULL); /* not before the commit */
    run(e, "ROLLBACK", "ROLLBACK", 'I');
    assert_setting(&e->client, "work_mem", NULL);

    run(e, "BEGIN", "BEGIN", 'T');
    run(e, "SET work_mem = '9MB'", "SET", 'T');
    run(e, "COMMIT", "COMMIT", 'I');
    assert_setting(&e->client, "work_mem", "9MB");
    assert_setting(&e->server, "work_mem", "9MB");

    /* A failed block: COMMIT answers ROLLBACK. */
    run(e, "BEGIN", "BEGIN", 'T');
    run(e, "SET work_mem = '1MB'", "SET", 'T');
    query(e, "SELECT 1/0");
    ANSWER(e, 'E', "!");
    run(e, "COMMIT", "ROLLBACK", 'I');
    assert_setting(&e->client, "work_mem", "9MB");

    /* SET LOCAL never outlives its transaction. */
    run(e, "BEGIN", "BEGIN", 'T');
    run(e, "SET LOCAL work_mem = '2MB'", "SET", 'T');
    run(e, "COMMIT", "COMMIT", 'I');
    assert_setting(&e->client, "work_mem", "9MB");
    env_free(e);
}

static void test_implicit_transaction_of_a_query(void **state)
{
    (void)state;
    struct env *e = env_new();
    query(e, "SET work_mem = '9MB'; SELECT 1/0");
    ANSWER(e, 'I', "SET", "!");
    assert_setting(&e->client, "work_mem", NULL);

    query(e, "SET work_mem = '7MB'; COMMIT; SELECT 1/0");
    ANSWER(e, 'I', "SET", "COMMIT", "!");
    assert_setting(&e->client, "work_mem", "7MB");

    /* Only the statements that ran: the error stops the rest. */
    query(e, "SELECT 1/0; SET work_mem = '5MB'");
    ANSWER(e, 'I', "!");
    assert_setting(&e->client, "work_mem", "7MB");

    query(e, "BEGIN; SET work_mem = '6MB'; COMMIT; SET lock_timeout = '1s'");
    ANSWER(e, 'I', "BEGIN", "SET", "COMMIT", "SET");
    assert_setting(&e->client, "work_mem", "6MB");
    assert_setting(&e->client, "lock_timeout", "1s");
    env_free(e);
}

static void test_savepoints(void **state)
{
    (void)state;
    struct env *e = env_new();
    /* A savepoint before every change: ROLLBACK TO undoes them all. */
    query(e, "BEGIN; SAVEPOINT s; SET work_mem = '3MB'; ROLLBACK TO s; COMMIT");
    ANSWER(e, 'I', "BEGIN", "SAVEPOINT", "SET", "ROLLBACK", "COMMIT");
    assert_setting(&e->client, "work_mem", NULL);
    assert_false(session_pinned(&e->ss));

    /* RELEASE keeps them. */
    query(e, "BEGIN; SET work_mem = '3MB'; SAVEPOINT s; RELEASE s; COMMIT");
    ANSWER(e, 'I', "BEGIN", "SET", "SAVEPOINT", "RELEASE", "COMMIT");
    assert_setting(&e->client, "work_mem", "3MB");

    /* A savepoint among changes: ROLLBACK TO undoes only those after it. */
    query(e, "BEGIN; SET work_mem = '4MB'; SAVEPOINT s; SET lock_timeout = 5; ROLLBACK TO s; "
             "COMMIT");
    ANSWER(e, 'I', "BEGIN", "SET", "SAVEPOINT", "SET", "ROLLBACK", "COMMIT");
    assert_setting(&e->client, "work_mem", "4MB");
    assert_setting(&e->client, "lock_timeout", NULL);
    assert_setting(&e->server, "lock_timeout", NULL);

    /* One statement per Query, the savepoint statements scanned because effects wait;
       an error recovered by ROLLBACK TO; names used twice (the newest counts). */
    run(e, "BEGIN", "BEGIN", 'T');
    run(e, "SET work_mem = '5MB'", "SET", 'T');
    run(e, "SAVEPOINT a", "SAVEPOINT", 'T');
    run(e, "SET lock_timeout = 6", "SET", 'T');
    run(e, "SAVEPOINT a", "SAVEPOINT", 'T');
    run(e, "SET statement_timeout = 7", "SET", 'T');
    query(e, "SELECT 1/0");
    ANSWER(e, 'E', "!");
    run(e, "ROLLBACK TO SAVEPOINT a", "ROLLBACK", 'T');
    run(e, "RELEASE a", "RELEASE", 'T');
    run(e, "COMMIT", "COMMIT", 'I');
    assert_setting(&e->client, "work_mem", "5MB");
    assert_setting(&e->client, "lock_timeout", "6");
    assert_setting(&e->client, "statement_timeout", NULL);

    /* A plain ROLLBACK after savepoints undoes everything. */
    run(e, "BEGIN", "BEGIN", 'T');
    run(e, "SET work_mem = '9MB'", "SET", 'T');
    run(e, "SAVEPOINT b", "SAVEPOINT", 'T');
    run(e, "ROLLBACK", "ROLLBACK", 'I');
    assert_setting(&e->client, "work_mem", "5MB");
    assert_false(session_pinned(&e->ss));
    env_free(e);
}

static void test_reset_returns_to_startup_values(void **state)
{
    (void)state;
    struct env *e = env_new();
    params_set(&e->startup, "search_path", "zz");
    params_set(&e->startup, "application_name", "mine");
    params_set(&e->client, "search_path", "zz");
    params_set(&e->client, "application_name", "mine");
    params_set(&e->server, "search_path", "zz");
    params_set(&e->server, "application_name", "mine");

    run(e, "SET search_path = a", "SET", 'I');
    run(e, "SET statement_timeout = 100", "SET", 'I');
    run(e, "RESET search_path", "RESET", 'I');
    assert_setting(&e->client, "search_path", "zz");
    assert_setting(&e->server, "search_path", NULL); /* the backend's own default */
    assert_true(e->ss.resync);
    e->ss.resync = 0;

    run(e, "SET statement_timeout TO DEFAULT", "SET", 'I');
    assert_setting(&e->client, "statement_timeout", NULL);
    assert_setting(&e->server, "statement_timeout", NULL);
    assert_false(e->ss.resync);

    run(e, "SET statement_timeout = 100", "SET", 'I');
    run(e, "RESET ALL", "RESET", 'I');
    assert_setting(&e->client, "statement_timeout", NULL);
    assert_setting(&e->server, "statement_timeout", NULL);
    assert_setting(&e->client, "search_path", "zz");
    assert_setting(&e->client, "application_name", "mine");
    assert_true(e->ss.resync);
    env_free(e);
}

static void test_settings_never_carried(void **state)
{
    (void)state;
    struct env *e = env_new();
    run(e, "SET transaction_isolation = 'serializable'", "SET", 'I');
    run(e, "RESET transaction_isolation", "RESET", 'I');
    assert_int_equal(e->client.n, 0);
    assert_false(session_pinned(&e->ss));
    /* Reported settings follow through ParameterStatus, not here. */
    run(e, "SET application_name = 'x'", "SET", 'I');
    assert_int_equal(e->client.n, 0);
    /* Who runs the next statement cannot be synced: pinned. */
    run(e, "SET ROLE bob", "SET", 'I');
    assert_true(PINNED(e, PIN_SET));
    env_free(e);
}

/* ---- pins ---- */

static void test_listen_pins_until_unlisten(void **state)
{
    (void)state;
    struct env *e = env_new();
    run(e, "BEGIN", "BEGIN", 'T');
    run(e, "LISTEN a", "LISTEN", 'T');
    run(e, "ROLLBACK", "ROLLBACK", 'I');
    assert_false(session_pinned(&e->ss)); /* a rolled-back LISTEN never listened */

    run(e, "LISTEN a", "LISTEN", 'I');
    run(e, "LISTEN b", "LISTEN", 'I');
    assert_true(PINNED(e, PIN_LISTEN));
    run(e, "UNLISTEN a", "UNLISTEN", 'I');
    assert_true(PINNED(e, PIN_LISTEN));
    run(e, "UNLISTEN b", "UNLISTEN", 'I');
    assert_false(session_pinned(&e->ss));

    query(e, "UNLISTEN *; LISTEN c");
    ANSWER(e, 'I', "UNLISTEN", "LISTEN");
    assert_true(PINNED(e, PIN_LISTEN));
    run(e, "UNLISTEN *", "UNLISTEN", 'I');
    assert_false(session_pinned(&e->ss));
    env_free(e);
}

static void test_advisory_lock_pins_when_sent(void **state)
{
    (void)state;
    struct env *e = env_new();
    query(e, "SELECT pg_advisory_lock(1), 1/0");
    assert_true(PINNED(e, PIN_ADVISORY_LOCK)); /* taken before the error */
    ANSWER(e, 'I', "!");
    assert_true(PINNED(e, PIN_ADVISORY_LOCK));
    run(e, "SELECT pg_advisory_unlock_all()", "SELECT 1", 'I');
    assert_false(session_pinned(&e->ss));
    /* Transaction-level locks end with their transaction. */
    run(e, "SELECT pg_advisory_xact_lock(1)", "SELECT 1", 'I');
    assert_false(session_pinned(&e->ss));
    env_free(e);
}

static void test_temp_objects_and_cursors(void **state)
{
    (void)state;
    struct env *e = env_new();
    run(e, "CREATE TEMP TABLE t(x int)", "CREATE TABLE", 'I');
    run(e, "CREATE TEMP TABLE u(x int)", "CREATE TABLE", 'I');
    assert_true(PINNED(e, PIN_TEMP_OBJECT));
    run(e, "DROP TABLE pg_temp.t", "DROP TABLE", 'I');
    assert_true(PINNED(e, PIN_TEMP_OBJECT));
    run(e, "DROP TABLE IF EXISTS u", "DROP TABLE", 'I');
    assert_false(session_pinned(&e->ss));

    run(e, "BEGIN", "BEGIN", 'T');
    run(e, "CREATE TEMP TABLE v(x int) ON COMMIT DROP", "CREATE TABLE", 'T');
    run(e, "COMMIT", "COMMIT", 'I');
    assert_false(session_pinned(&e->ss));

    run(e, "DECLARE c CURSOR WITH HOLD FOR SELECT 1", "DECLARE CURSOR", 'I');
    assert_true(PINNED(e, PIN_HOLD_CURSOR));
    run(e, "CLOSE c", "CLOSE CURSOR", 'I');
    assert_false(session_pinned(&e->ss));

    run(e, "LISTEN a", "LISTEN", 'I');
    run(e, "CREATE TEMP TABLE w(x int)", "CREATE TABLE", 'I');
    run(e, "SELECT set_config('a.b', 'c', false)", "SELECT 1", 'I');
    assert_int_equal(__builtin_popcount(e->ss.causes), 3);
    run(e, "DISCARD ALL", "DISCARD ALL", 'I');
    assert_false(session_pinned(&e->ss));
    env_free(e);
}

/* ---- extended protocol ---- */

static void parse(struct env *e, const char *name, const char *sql)
{
    struct session_text *text = text_of(e, sql);
    assert_int_equal(session_parse_sent(&e->ss, name, text), 0);
    session_text_unref(text);
    owed_sent(&e->owed, 'P');
}

static void bind_execute_sync(struct env *e, const char *portal, const char *stmt)
{
    assert_int_equal(session_bind_sent(&e->ss, portal, stmt), 0);
    owed_sent(&e->owed, 'B');
    owed_sent(&e->owed, 'E');
    session_execute_sent(&e->ss, portal, e->owed.exec_sent - 1);
    owed_sent(&e->owed, 'S');
}

static void test_extended_protocol(void **state)
{
    (void)state;
    struct env *e = env_new();
    parse(e, "", "SET statement_timeout = '3s'");
    bind_execute_sync(e, "", "");
    feed(e, '1');
    feed(e, '2');
    ANSWER(e, 'I', "SET");
    assert_setting(&e->client, "statement_timeout", "3s");

    /* A named statement run again after another statement took the unnamed one. */
    parse(e, "s1", "SET lock_timeout = '2s'");
    parse(e, "", "SELECT 1");
    bind_execute_sync(e, "", "");
    feed(e, '1');
    feed(e, '1');
    feed(e, '2');
    ANSWER(e, 'I', "SELECT 1");
    assert_setting(&e->client, "lock_timeout", NULL);
    bind_execute_sync(e, "p", "s1");
    feed(e, '2');
    ANSWER(e, 'I', "SET");
    assert_setting(&e->client, "lock_timeout", "2s");

    /* An error before the Execute: it is skipped, nothing applies. */
    parse(e, "", "SET work_mem = '1MB'");
    bind_execute_sync(e, "", "");
    if (e->ss.watching)
        session_error(&e->ss);
    feed(e, 'E');
    feed(e, 'Z');
    if (e->ss.watching)
        session_ready(&e->ss, &e->owed, 'I', &e->views);
    assert_setting(&e->client, "work_mem", NULL);
    assert_int_equal(e->ss.ntickets, 0);
    env_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_outside_a_block_follows),
        cmocka_unit_test(test_blocks_commit_or_roll_back),
        cmocka_unit_test(test_implicit_transaction_of_a_query),
        cmocka_unit_test(test_savepoints),
        cmocka_unit_test(test_reset_returns_to_startup_values),
        cmocka_unit_test(test_settings_never_carried),
        cmocka_unit_test(test_listen_pins_until_unlisten),
        cmocka_unit_test(test_advisory_lock_pins_when_sent),
        cmocka_unit_test(test_temp_objects_and_cursors),
        cmocka_unit_test(test_extended_protocol),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
