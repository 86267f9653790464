/*
 * test_session_sql — the session effects of SQL texts (pooler/session_sql.c).
 *
 * Each case is a text, the standard_conforming_strings setting it is read with, and
 * the effects expected, rendered one after another as
 *     [@statement ]KIND[ cause][ name][=value][ *]
 * joined with " | " (@statement only when it is not the first; '*' for an UNPIN of
 * everything of its cause; a SET_LOCAL without value has no '='). Texts are scanned
 * from exact-size heap copies without a NUL, so ASan or valgrind catch a read past
 * len. The values of SET were checked against PostgreSQL 15.18: SET …; SHOW … printed
 * them (custom settings such as my.a store the string as given; search_path shows the
 * quoting). Every text of every table also goes through the differential test:
 * session_sql_mentions never says 0 for a text the scan finds an effect in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/session_sql.h"

struct scase {
    const char *sql;
    const char *expected; /* rendered effects, "" for none */
};

#define STANDARD 0
#define BACKSLASH 1

/* ---- helpers ---- */

static const char *kind_name(enum session_sql_kind kind)
{
    static const char *const names[] = {"NONE",      "SET",         "SET_LOCAL",  "RESET",
                                        "RESET_ALL", "DISCARD_ALL", "PIN",        "UNPIN",
                                        "SAVEPOINT", "RELEASE",     "ROLLBACK_TO"};
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

static const char *cause_name(enum session_sql_cause cause)
{
    static const char *const names[] = {"",       "listen",     "advisory", "temp",
                                        "cursor", "set_config", "set",      "hidden"};
    return (unsigned)cause < sizeof names / sizeof names[0] ? names[cause] : "?";
}

static void append(char *out, size_t cap, const char *text)
{
    size_t n = strlen(out);
    snprintf(out + n, cap - n, "%s", text);
}

/* The effects as the cases write them. */
static void render(const struct session_sql *s, char *out, size_t cap)
{
    out[0] = '\0';
    for (int i = 0; i < s->neffects; i++) {
        const struct session_sql_effect *e = &s->effects[i];
        char statement[16] = "";
        if (e->statement > 0)
            snprintf(statement, sizeof statement, "@%d ", e->statement);
        if (i > 0)
            append(out, cap, " | ");
        append(out, cap, statement);
        append(out, cap, kind_name(e->kind));
        if (e->cause != SSQL_CAUSE_NONE) {
            append(out, cap, " ");
            append(out, cap, cause_name(e->cause));
        }
        if (e->name != SESSION_SQL_NO_TEXT && session_sql_name(s, e)[0] != '\0') {
            append(out, cap, " ");
            append(out, cap, session_sql_name(s, e));
        }
        if (session_sql_value(s, e)) {
            append(out, cap, "=");
            append(out, cap, session_sql_value(s, e));
        }
        if (e->all)
            append(out, cap, " *");
    }
}

/* Scan an exact-size heap copy of sql. */
static void scan(const char *sql, int backslash_strings, struct session_sql *s)
{
    size_t len = strlen(sql);
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, sql, len);
    session_sql_scan(copy, len, backslash_strings, s);
    free(copy);
}

static void check_case(const struct scase *c, int backslash_strings)
{
    struct session_sql s = {0};
    char got[4096];
    scan(c->sql, backslash_strings, &s);
    render(&s, got, sizeof got);
    if (strcmp(got, c->expected) != 0)
        print_error("text: %s\n expected: %s\n      got: %s\n", c->sql, c->expected, got);
    int malformed = s.malformed;
    session_sql_free(&s);
    assert_false(malformed);
    assert_string_equal(got, c->expected);
}

#define CHECK_ALL(cases, setting)                                                                  \
    do {                                                                                           \
        for (size_t i_ = 0; i_ < sizeof(cases) / sizeof(cases)[0]; i_++)                           \
            check_case(&(cases)[i_], setting);                                                     \
    } while (0)

/* ---- SET ---- */

static const struct scase set_cases[] = {
    {"SET statement_timeout = 10000", "SET statement_timeout=10000"},
    {"SET statement_timeout = '10s'", "SET statement_timeout=10s"},
    {"SET statement_timeout = -1", "SET statement_timeout=-1"},
    {"SET statement_timeout TO 0", "SET statement_timeout=0"},
    {"set Statement_Timeout to 5", "SET statement_timeout=5"},
    {"SET SESSION work_mem = '64MB'", "SET work_mem=64MB"},
    {"SET application_name = \"Mixed Case\"", "SET application_name=Mixed Case"},
    {"SET application_name TO MyApp", "SET application_name=myapp"},
    {"SET \"Application_Name\" = 'x'", "SET application_name=x"},
    {"SET my.a = 007", "SET my.a=7"},
    {"SET my.a = -0", "SET my.a=0"},
    {"SET my.a = +5", "SET my.a=5"},
    {"SET my.a = 1.50", "SET my.a=1.50"},
    {"SET my.a = -1.5e3", "SET my.a=-1.5e3"},
    {"SET my.a = 1E+5", "SET my.a=1E+5"},
    {"SET my.a = .5", "SET my.a=.5"},
    {"SET my.a = 1.", "SET my.a=1."},
    {"SET my.a = -00.10", "SET my.a=-00.10"},
    {"SET my.a = 99999999999", "SET my.a=99999999999"},
    {"SET my.a = 2147483647", "SET my.a=2147483647"},
    {"SET my.a = 2147483648", "SET my.a=2147483648"},
    {"SET my.a = -2147483648", "SET my.a=-2147483648"},
    {"SET my.a = 0002147483648", "SET my.a=0002147483648"},
    {"SET my.a =-1", "SET my.a=-1"},
    {"SET my.a = TRUE", "SET my.a=true"},
    {"SET my.a = False", "SET my.a=false"},
    {"SET my.a = ON", "SET my.a=on"},
    {"SET my.a = Off", "SET my.a=off"},
    {"SET my.a = none", "SET my.a=none"},
    {"SET my.a = varchar", "SET my.a=varchar"},
    {"SET my.a = left", "SET my.a=left"},
    {"SET my.a = 'it''s'", "SET my.a=it's"},
    {"SET my.a = $q$x'y$q$", "SET my.a=x'y"},
    {"SET my.a = $$a;b$$", "SET my.a=a;b"},
    {"SET my.a = E'a\\tb\\'c\\x41\\101'", "SET my.a=a\tb'cAA"},
    {"SET my.a = E'\\\\ \\q \\x \\n'", "SET my.a=\\ q x \n"},
    {"SET my.a = 'a\\nb'", "SET my.a=a\\nb"},
    {"SET \"My.B\" = x", "SET my.b=x"},
    {"SET a.b.c = 1", "SET a.b.c=1"},
    {"SET datestyle = iso, mdy", "SET datestyle=iso, mdy"},
    {"SET session = 1", "SET session=1"},
    {"SET local = 1", "SET local=1"},
    {"SET my.a = ''", "SET my.a="},
    {"SET TIME ZONE 'UTC'", "SET timezone=UTC"},
    {"set time zone 'Europe/Paris'", "SET timezone=Europe/Paris"},
    {"SET TIME ZONE utc", "SET timezone=utc"},
    {"SET TIME ZONE \"Europe/Paris\"", "SET timezone=Europe/Paris"},
    {"SET TIME ZONE -7", "SET timezone=-7"},
    {"SET TIME ZONE 3.5", "SET timezone=3.5"},
    {"SET timezone = 'UTC'", "SET timezone=UTC"},
    {"SET SCHEMA 'x'", "SET search_path=x"},
    {"SET SCHEMA 'My Schema'", "SET search_path=\"My Schema\""},
    {"SET NAMES 'utf8'", "SET client_encoding=utf8"},
    {"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
     "SET default_transaction_isolation=serializable"},
    {"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
     "SET default_transaction_isolation=repeatable read | SET default_transaction_read_only=1"},
    {"set session characteristics as transaction read write not deferrable",
     "SET default_transaction_read_only=0 | SET default_transaction_deferrable=0"},
    {"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED DEFERRABLE",
     "SET default_transaction_isolation=read committed | "
     "SET default_transaction_deferrable=1"},
    {"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ UNCOMMITTED",
     "SET default_transaction_isolation=read uncommitted"},
};

static void test_set(void **state)
{
    (void)state;
    CHECK_ALL(set_cases, STANDARD);
}

/* search_path and the other GUC_LIST_QUOTE settings: quote_identifier per element. */
static const struct scase list_cases[] = {
    {"SET search_path TO Foo, \"Bar\", 'a b'", "SET search_path=foo, \"Bar\", \"a b\""},
    {"SET search_path = true, 'select', \"$user\", '', x1, \"a\"\"b\", 'UPPER'",
     "SET search_path=\"true\", \"select\", \"$user\", \"\", x1, \"a\"\"b\", \"UPPER\""},
    {"SET search_path = 1, -2.5", "SET search_path=1, -2.5"},
    {"SET search_path = public, \"$user\"", "SET search_path=public, \"$user\""},
    {"SET search_path = '1abc', _x, user_1, 'left', 'float', 'name'",
     "SET search_path=\"1abc\", _x, user_1, \"left\", \"float\", name"},
    {"SET search_path = '\xc3\x9c' || 'ber'", "PIN set search_path"},
    {"SET temp_tablespaces = 'A b'", "SET temp_tablespaces=\"A b\""},
    {"SET session_preload_libraries = 'auto_explain', 'x.so'",
     "SET session_preload_libraries=auto_explain, \"x.so\""},
    {"SET application_name = 'a b'", "SET application_name=a b"},
};

static void test_list_quoting(void **state)
{
    (void)state;
    CHECK_ALL(list_cases, STANDARD);
}

/* E'…' always escapes; '…' only with standard_conforming_strings off. */
static const struct scase backslash_cases[] = {
    {"SET my.a = 'a\\'b'", "SET my.a=a'b"},
    {"SET my.a = 'a\\tb'", "SET my.a=a\tb"},
    {"SET my.a = E'x\\\\y'", "SET my.a=x\\y"},
    {"SELECT 'it\\'s; set x = 1'", ""},
};

static const struct scase standard_backslash_cases[] = {
    {"SET my.a = 'a\\'; SET my.b = 'c'", "SET my.a=a\\ | @1 SET my.b=c"},
    {"SELECT 'it\\'; set x = 1; --'", "@1 SET x=1"},
};

static void test_backslash_strings(void **state)
{
    (void)state;
    CHECK_ALL(backslash_cases, BACKSLASH);
    CHECK_ALL(standard_backslash_cases, STANDARD);
}

static const struct scase local_cases[] = {
    {"SET LOCAL statement_timeout = 0", "SET_LOCAL statement_timeout=0"},
    {"set local search_path to a, B", "SET_LOCAL search_path=a, b"},
    {"SET LOCAL work_mem TO DEFAULT", "SET_LOCAL work_mem"},
    {"SET LOCAL TIME ZONE 'UTC'", "SET_LOCAL timezone=UTC"},
    {"SET LOCAL TIME ZONE LOCAL", "SET_LOCAL timezone"},
    {"SET LOCAL ROLE admin", "SET_LOCAL role"},
    {"SET LOCAL SESSION AUTHORIZATION bob", "SET_LOCAL session_authorization"},
    {"SET LOCAL my.a FROM CURRENT", "SET_LOCAL my.a"},
    {"SET LOCAL SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
     "SET_LOCAL default_transaction_read_only=1"},
    {"BEGIN; SET LOCAL lock_timeout = '1s'; COMMIT", "@1 SET_LOCAL lock_timeout=1s"},
};

static void test_set_local(void **state)
{
    (void)state;
    CHECK_ALL(local_cases, STANDARD);
}

static const struct scase reset_cases[] = {
    {"RESET statement_timeout", "RESET statement_timeout"},
    {"reset My.A", "RESET my.a"},
    {"SET work_mem TO DEFAULT", "RESET work_mem"},
    {"SET work_mem = default", "RESET work_mem"},
    {"SET work_mem = 'default'", "SET work_mem=default"},
    {"SET TIME ZONE DEFAULT", "RESET timezone"},
    {"SET TIME ZONE LOCAL", "RESET timezone"},
    {"SET NAMES DEFAULT", "RESET client_encoding"},
    {"SET NAMES", "RESET client_encoding"},
    {"RESET TIME ZONE", "RESET timezone"},
    {"RESET TRANSACTION ISOLATION LEVEL", "RESET transaction_isolation"},
    {"RESET SESSION AUTHORIZATION", "RESET session_authorization"},
    {"RESET ROLE", "RESET role"},
    {"RESET ALL", "RESET_ALL"},
    {"DISCARD ALL", "DISCARD_ALL"},
    {"discard all;", "DISCARD_ALL"},
    {"DISCARD PLANS; DISCARD SEQUENCES", ""},
};

static void test_reset_and_discard(void **state)
{
    (void)state;
    CHECK_ALL(reset_cases, STANDARD);
}

/* SET forms whose effect cannot be carried, and malformed ones. */
static const struct scase unrecordable_cases[] = {
    {"SET ROLE admin", "PIN set role"},
    {"SET ROLE NONE", "PIN set role"},
    {"SET SESSION AUTHORIZATION bob", "PIN set session_authorization"},
    {"SET SESSION SESSION AUTHORIZATION DEFAULT", "PIN set session_authorization"},
    {"SET search_path FROM CURRENT", "PIN set search_path"},
    {"SET TIME ZONE INTERVAL '+02:00' HOUR TO MINUTE", "PIN set timezone"},
    {"SET XML OPTION DOCUMENT", "PIN set xmloption"},
    {"SET my.a = null", "PIN set my.a"},
    {"SET my.a = all", "PIN set my.a"},
    {"SET my.a = a, b", "PIN set my.a"},
    {"SET my.a = 'x' 'y'", "PIN set my.a"},
    {"SET my.a = 'x'\n'y'", "PIN set my.a"},
    {"SET my.a = N'x'", "PIN set my.a"},
    {"SET my.a = B'1'", "PIN set my.a"},
    {"SET my.a = U&'\\0041'", "PIN set my.a"},
    {"SET my.a = E'\\u0041'", "PIN set my.a"},
    {"SET my.a = E'\\000'", "PIN set my.a"},
    {"SET my.a = 1abc", "PIN set my.a"},
    {"SET my.a = 0x10", "PIN set my.a"},
    {"SET my.a = =1", "PIN set my.a"},
    {"SET my.a ==1", "PIN set my.a"},
    {"SET my.a = +-1", "PIN set my.a"},
    {"SET my.a = $1", "PIN set my.a"},
    {"SET my.a = 1,", "PIN set my.a"},
    {"SET my.a", "PIN set my.a"},
    {"SET my.a = a, DEFAULT", "PIN set my.a"},
    {"SET", "PIN set"},
    {"SET = 1", "PIN set"},
    {"SET CATALOG 'x'", "PIN set catalog"},
    {"SET SESSION CHARACTERISTICS AS TRANSACTION", "PIN set"},
    {"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY,", "PIN set"},
    {"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SOMETIMES", "PIN set"},
    {"SET TIME ZONE 'UTC' 'x'", "PIN set timezone"},
    {"SET TIME ZONE true", "PIN set timezone"},
    {"SET TIME ZONE none", "PIN set timezone"},
    {"SET NAMES utf8", "PIN set client_encoding"},
    {"SET SCHEMA x", "PIN set search_path"},
    {"RESET", "PIN set"},
    {"RESET ALL x", "PIN set all"},
    {"RESET a b", "PIN set a"},
    {"SET U&\"a\" = 1", "PIN set"},
    {"SET "
     "a_very_long_setting_name_that_goes_on.and_on_and_on_past_sixty_three_bytes_in_total "
     "= 1",
     "PIN set"},
};

static void test_unrecordable_set(void **state)
{
    (void)state;
    CHECK_ALL(unrecordable_cases, STANDARD);
}

/* Not session settings at all. */
static const struct scase transaction_only_cases[] = {
    {"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", ""},
    {"SET TRANSACTION SNAPSHOT '00000003-0000001B-1'", ""},
    {"SET CONSTRAINTS ALL DEFERRED", ""},
    {"UPDATE t SET a = 1", ""},
    {"ALTER ROLE bob SET search_path = x", ""},
    {"ALTER SYSTEM SET work_mem = '1GB'", ""},
    {"CREATE FUNCTION f() RETURNS int SET search_path = x AS $$ SET x = 1 $$ LANGUAGE sql", ""},
    {"SELECT current_setting('search_path')", ""},
    {"SELECT 1", ""},
};

static void test_not_session_state(void **state)
{
    (void)state;
    CHECK_ALL(transaction_only_cases, STANDARD);
}

/* ---- pins ---- */

static const struct scase pin_cases[] = {
    {"LISTEN ch", "PIN listen ch"},
    {"listen \"My Channel\"", "PIN listen My Channel"},
    {"LISTEN U&\"\\0063h\"", "PIN listen"},
    {"UNLISTEN ch", "UNPIN listen ch"},
    {"UNLISTEN *", "UNPIN listen *"},
    {"SELECT pg_advisory_lock(1)", "PIN advisory"},
    {"SELECT pg_catalog.pg_advisory_lock_shared(1, 2)", "PIN advisory"},
    {"select PG_TRY_ADVISORY_LOCK(1), pg_try_advisory_lock_shared (2)", "PIN advisory"},
    {"SELECT \"pg_advisory_lock\"(1)", "PIN advisory"},
    {"SELECT pg_advisory_lock /* why */ (1)", "PIN advisory"},
    {"SELECT pg_advisory_xact_lock(1), pg_try_advisory_xact_lock(2)", ""},
    {"SELECT pg_advisory_xact_lock_shared(1)", ""},
    {"SELECT pg_advisory_unlock(1)", ""},
    {"SELECT pg_advisory_lock", ""},
    {"SELECT \"PG_ADVISORY_LOCK\"(1)", ""},
    {"SELECT pg_advisory_unlock_all()", "UNPIN advisory *"},
    {"SELECT pg_advisory_lock(1); SELECT pg_advisory_unlock_all()",
     "PIN advisory | @1 UNPIN advisory *"},
    {"SELECT U&\"\\0070g_advisory_lock\"(1)", "PIN hidden"},
    {"SELECT pg_advisory_unlock_all(), set_config('a', 'b', false), pg_advisory_lock(1)",
     "PIN advisory | PIN set_config"},
    {"SELECT pg_advisory_lock(1), pg_advisory_unlock_all(), pg_advisory_lock(2)", "PIN advisory"},
    {"SELECT pg_advisory_unlock_all() WHERE pg_advisory_lock(1)", "PIN advisory"},
    {"CREATE TEMP TABLE t (a int)", "PIN temp t"},
    {"create temporary table if not exists s.t (a int)", "PIN temp s.t"},
    {"CREATE GLOBAL TEMPORARY TABLE t (a int)", "PIN temp t"},
    {"CREATE LOCAL TEMP TABLE \"T\" AS SELECT 1", "PIN temp T"},
    {"CREATE TEMP TABLE t (a int) ON COMMIT DROP", ""},
    {"CREATE TEMP TABLE t ON COMMIT DROP AS SELECT 1", ""},
    {"CREATE TEMP TABLE t (a int) ON COMMIT DELETE ROWS", "PIN temp t"},
    {"CREATE TEMP TABLE t (a int default 'on commit drop')", "PIN temp t"},
    {"CREATE TEMP VIEW v AS SELECT 1", "PIN temp v"},
    {"CREATE OR REPLACE TEMP RECURSIVE VIEW v (n) AS SELECT 1", "PIN temp v"},
    {"CREATE TEMP SEQUENCE s", "PIN temp s"},
    {"CREATE TABLE pg_temp.x (a int)", "PIN temp pg_temp.x"},
    {"CREATE TABLE t (a int)", ""},
    {"CREATE UNLOGGED TABLE t (a int)", ""},
    {"CREATE TABLE pg_temporary.x (a int)", ""},
    {"EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1", "PIN temp t"},
    {"SELECT 1 AS a INTO TEMP t", "PIN temp t"},
    {"SELECT * INTO TEMPORARY TABLE t FROM x", "PIN temp t"},
    {"SELECT * INTO LOCAL TEMP t FROM x", "PIN temp t"},
    {"SELECT * INTO pg_temp.t FROM x", "PIN temp pg_temp.t"},
    {"SELECT * INTO t FROM x", ""},
    {"WITH a AS (SELECT 1) SELECT * INTO TEMP t FROM a", "PIN temp t"},
    {"INSERT INTO temp VALUES (1)", ""},
    {"DECLARE c CURSOR WITH HOLD FOR SELECT 1", "PIN cursor c"},
    {"declare \"C\" binary no scroll cursor with hold for select 1", "PIN cursor C"},
    {"DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1", ""},
    {"DECLARE c CURSOR FOR WITH hold AS (SELECT 1) SELECT * FROM hold", ""},
    {"CLOSE c", "UNPIN cursor c"},
    {"CLOSE ALL", "UNPIN cursor *"},
    {"CLOSE \"all\"", "UNPIN cursor all"},
    {"DROP TABLE t", "UNPIN temp t"},
    {"DROP TABLE IF EXISTS a, s.b, pg_temp.\"C\" CASCADE",
     "UNPIN temp a | UNPIN temp s.b | UNPIN temp pg_temp.C"},
    {"DROP VIEW v; DROP SEQUENCE s", "UNPIN temp v | @1 UNPIN temp s"},
    {"DROP FUNCTION f()", ""},
    {"DISCARD TEMP", "UNPIN temp *"},
    {"DISCARD TEMPORARY", "UNPIN temp *"},
};

static void test_pins(void **state)
{
    (void)state;
    CHECK_ALL(pin_cases, STANDARD);
}

static const struct scase set_config_cases[] = {
    {"SELECT set_config('search_path', 'x', false)", "PIN set_config"},
    {"SELECT set_config('search_path', 'x', true)", ""},
    {"SELECT pg_catalog.set_config('a.b', 'x', TRUE)", ""},
    {"SELECT set_config('a.b', 'x', 'true')", "PIN set_config"},
    {"SELECT set_config('a.b', 'x', true::bool)", "PIN set_config"},
    {"SELECT set_config('a.b', 'x', (true))", "PIN set_config"},
    {"SELECT set_config('a.b', 'x', $1)", "PIN set_config"},
    {"SELECT set_config('a.b', f(1, 2), true)", ""},
    {"SELECT set_config('a.b', f(1, 2), false)", "PIN set_config"},
    {"SELECT set_config('a.b', 'x')", "PIN set_config"},
    {"SELECT set_config('a.b', 'x', true, 4)", "PIN set_config"},
    {"SELECT set_config('a.b', 'x', true", "PIN set_config"},
    {"SELECT set_config('a', 'x', false), set_config('b', 'y', false)", "PIN set_config"},
    {"SELECT set_config('a', (SELECT set_config('b', 'y', false)), true)", "PIN set_config"},
    {"SELECT \"set_config\"('a', 'x', false)", "PIN set_config"},
    {"SELECT set_config", ""},
};

static void test_set_config(void **state)
{
    (void)state;
    CHECK_ALL(set_config_cases, STANDARD);
}

/* ---- what hides words ---- */

static const struct scase hidden_cases[] = {
    {"select 'set x=1'", ""},
    {"/* listen x */ SELECT 1", ""},
    {"-- SET x = 1\nSELECT 1", ""},
    {"SELECT $$; SET x = 1; $$", ""},
    {"SELECT $a$ $$; LISTEN x; $$ $a$", ""},
    {"SELECT \"set\"", ""},
    {"SELECT 'pg_advisory_lock(1)'", ""},
    {"SELECT e'\\'; set x = 1; --'", ""},
    {"/* a /* nested */ LISTEN x; */ SELECT 1", ""},
    {"DO $$BEGIN PERFORM pg_advisory_lock(1); SET x = 1; END$$", ""},
    {"SELECT 1; /* c */ SET x = 1", "@1 SET x=1"},
    {"SET /* a */ x /* b */ = /* c */ 1 -- d", "SET x=1"},
    {"SET x = 1 -- ; LISTEN y\n; LISTEN z", "SET x=1 | @1 PIN listen z"},
};

static void test_hidden(void **state)
{
    (void)state;
    CHECK_ALL(hidden_cases, STANDARD);
}

static const struct scase multi_cases[] = {
    {"SET a = 1; SET b = 2;; RESET c", "SET a=1 | @1 SET b=2 | @2 RESET c"},
    {"BEGIN; SET LOCAL a = 1; SET b = 2; COMMIT", "@1 SET_LOCAL a=1 | @2 SET b=2"},
    {"SELECT 1; LISTEN a; SELECT pg_advisory_lock(1)", "@1 PIN listen a | @2 PIN advisory"},
    {"SET a = 1\n;\nDISCARD ALL", "SET a=1 | @1 DISCARD_ALL"},
};

static void test_multi_statement(void **state)
{
    (void)state;
    CHECK_ALL(multi_cases, STANDARD);
}

/* Savepoint statements, reported with their names (folded like identifiers). */
static const struct scase savepoint_cases[] = {
    {"SAVEPOINT s1", "SAVEPOINT s1"},
    {"savepoint \"My Point\"", "SAVEPOINT My Point"},
    {"RELEASE SAVEPOINT S1", "RELEASE s1"},
    {"release s2", "RELEASE s2"},
    {"ROLLBACK TO SAVEPOINT s1", "ROLLBACK_TO s1"},
    {"rollback work to s3", "ROLLBACK_TO s3"},
    {"ROLLBACK TRANSACTION TO SAVEPOINT \"x\"", "ROLLBACK_TO x"},
    {"ROLLBACK", ""},
    {"ROLLBACK AND CHAIN", ""},
    {"ROLLBACK PREPARED 'gid'", ""},
    {"BEGIN; SET a = 1; SAVEPOINT p; SET b = 2; ROLLBACK TO p; COMMIT",
     "@1 SET a=1 | @2 SAVEPOINT p | @3 SET b=2 | @4 ROLLBACK_TO p"},
};

static void test_savepoints(void **state)
{
    (void)state;
    CHECK_ALL(savepoint_cases, STANDARD);
}

/* The relay's inline check on Parse texts: a savepoint statement's first word. A
   superset (the word may go on: release_x) costs only a scan. */
static void test_may_be_savepoint(void **state)
{
    (void)state;
    static const struct {
        const char *sql;
        int want;
    } cases[] = {
        {"SAVEPOINT a", 1},
        {"  savepoint", 1},
        {"\n\tRelease a", 1},
        {"RELEASE", 1},
        {"ROLLBACK TO a", 1},
        {"rollback", 1},
        {"release_x", 1},
        {"savepoints", 1},
        {"SELECT 1", 0},
        {"rel", 0},
        {"", 0},
        {"/* c */ SAVEPOINT a", 0},
        {"RESET ALL", 0},
        {"ROLLUP", 0},
        {"SAVE", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = session_sql_may_be_savepoint(cases[i].sql, strlen(cases[i].sql));
        if (got != cases[i].want)
            fail_msg("\"%s\": %d, want %d", cases[i].sql, got, cases[i].want);
    }
}

/* ---- counts, bounds, malformed texts ---- */

static void test_counts_and_overflow(void **state)
{
    (void)state;
    struct session_sql s = {0};
    scan(";; SELECT 1; ; SET a = 1;", STANDARD, &s);
    assert_int_equal(s.statements, 2);
    assert_int_equal(s.neffects, 1);
    assert_int_equal(s.effects[0].statement, 1);
    assert_false(s.overflow);

    char text[2048] = "";
    for (int i = 0; i < SESSION_SQL_EFFECTS_MAX + 3; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "SET a%d = %d;", i, i);
    scan(text, STANDARD, &s);
    assert_int_equal(s.statements, SESSION_SQL_EFFECTS_MAX + 3);
    assert_int_equal(s.neffects, SESSION_SQL_EFFECTS_MAX);
    assert_true(s.overflow);
    assert_string_equal(session_sql_name(&s, &s.effects[15]), "a15");
    assert_string_equal(session_sql_value(&s, &s.effects[15]), "15");

    /* the same struct again: nothing left from before */
    scan("SELECT 1", STANDARD, &s);
    assert_int_equal(s.neffects, 0);
    assert_false(s.overflow);
    assert_int_equal(s.statements, 1);
    session_sql_free(&s);
}

static void test_value_bounds(void **state)
{
    (void)state;
    struct session_sql s = {0};
    size_t n = SESSION_SQL_VALUE_MAX;
    char *text = malloc(n + 64);
    assert_non_null(text);
    /* exactly the limit: recorded */
    int at = snprintf(text, n + 64, "SET my.a = '");
    memset(text + at, 'v', n);
    snprintf(text + at + n, 64, "'");
    scan(text, STANDARD, &s);
    assert_int_equal(s.neffects, 1);
    assert_int_equal(s.effects[0].kind, SSQL_SET);
    assert_int_equal(strlen(session_sql_value(&s, &s.effects[0])), n);
    /* one byte more: pins rather than cut */
    at = snprintf(text, n + 64, "SET my.a = '");
    memset(text + at, 'v', n + 1);
    snprintf(text + at + n + 1, 32, "'");
    scan(text, STANDARD, &s);
    assert_int_equal(s.neffects, 1);
    assert_int_equal(s.effects[0].kind, SSQL_PIN);
    assert_int_equal(s.effects[0].cause, SSQL_CAUSE_SET);
    assert_string_equal(session_sql_name(&s, &s.effects[0]), "my.a");
    assert_null(session_sql_value(&s, &s.effects[0]));
    free(text);
    session_sql_free(&s);
}

static void test_identifier_truncation(void **state)
{
    (void)state;
    struct session_sql s = {0};
    /* identifiers are cut to 63 bytes, as PostgreSQL's lexer cuts them */
    scan("SET my.a = abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijXYZW", STANDARD,
         &s);
    assert_int_equal(s.neffects, 1);
    assert_string_equal(session_sql_value(&s, &s.effects[0]),
                        "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijxyz");
    assert_int_equal(strlen(session_sql_value(&s, &s.effects[0])), 63);
    /* a name of exactly 63 bytes is fine */
    scan("SET a23456789.b23456789c23456789d23456789e23456789f23456789g2345678 = 1", STANDARD, &s);
    assert_int_equal(s.effects[0].kind, SSQL_SET);
    assert_int_equal(strlen(session_sql_name(&s, &s.effects[0])), 63);
    /* one more byte: not recorded */
    scan("SET a23456789.b23456789c23456789d23456789e23456789f23456789g23456783 = 1", STANDARD, &s);
    assert_int_equal(s.effects[0].kind, SSQL_PIN);
    session_sql_free(&s);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "SET a = 'unterminated",  "SET a = 1; /* unterminated", "LISTEN \"x",
        "SELECT $$ never closed", "SET a = 1; SELECT \"\"",     "SET a = U&'x'",
    };
    struct session_sql s = {0};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        scan(texts[i], strstr(texts[i], "U&'") ? BACKSLASH : STANDARD, &s);
        assert_true(s.malformed);
        assert_int_equal(s.neffects, 0);
    }
    static const char nul_text[] = "SET a = 1;\0 LISTEN x";
    session_sql_scan(nul_text, sizeof nul_text - 1, STANDARD, &s);
    assert_true(s.malformed);
    assert_int_equal(s.neffects, 0);
    session_sql_free(&s);
}

/* ---- the pre-filter ---- */

static int mentions(const char *sql)
{
    return session_sql_mentions(sql, strlen(sql));
}

static void test_mentions(void **state)
{
    (void)state;
    assert_false(mentions("SELECT * FROM t WHERE a = 1"));
    assert_false(mentions(""));
    assert_false(mentions("INSERT INTO x VALUES (1)"));
    assert_false(mentions("UPDATE accounts"));
    assert_true(mentions("reSeT a"));
    assert_true(mentions("select Set_Config('a','b',false)"));
    assert_true(mentions("SELECT U&\"x\"(1)"));
    assert_true(mentions("SELECT pg_advisory_lock(1)"));
    assert_true(mentions("unlisten *"));
    assert_true(mentions("CREATE TABLE pg_temp.x ()"));
    assert_true(mentions("DECLARE c CURSOR WITH HOLD FOR SELECT 1"));
    assert_true(mentions("close c"));
    assert_true(mentions("Drop table t"));
    assert_true(mentions("DISCARD ALL"));
    /* it looks at len bytes only */
    assert_false(session_sql_mentions("SELECT 1; SET", 10));
}

/* Every word at every place around the 16-byte blocks the pre-filter reads at once,
   in an exact-size copy: found whole, never found cut short by the text's end. */
static void test_mentions_everywhere(void **state)
{
    (void)state;
    static const char *const words[] = {"SeT",      "DISCARD", "drop",  "Listen", "HOLD",
                                        "advisory", "tEMp",    "close", "U&\""};
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
        size_t n = strlen(words[w]);
        for (size_t at = 0; at < 40; at++) {
            for (size_t cut = 0; cut < 2; cut++) {
                size_t len = at + n - cut;
                char *text = malloc(len);
                assert_non_null(text);
                memset(text, 'x', len);
                memcpy(text, "((((((", at < 6 ? at : 6);
                memcpy(text + at, words[w], n - cut);
                int found = session_sql_mentions(text, len);
                free(text);
                if (found != !cut)
                    fail_msg("%s at %zu, cut %zu: %d", words[w], at, cut, found);
            }
        }
    }
}

#define DIFFERENTIAL(cases, setting)                                                               \
    do {                                                                                           \
        for (size_t i_ = 0; i_ < sizeof(cases) / sizeof(cases)[0]; i_++)                           \
            check_mentioned((cases)[i_].sql, setting);                                             \
    } while (0)

static void check_mentioned(const char *sql, int setting)
{
    struct session_sql s = {0};
    scan(sql, setting, &s);
    int effects = 0; /* savepoint statements are no session effect of their own */
    for (int i = 0; i < s.neffects; i++)
        effects += s.effects[i].kind < SSQL_SAVEPOINT;
    if (effects > 0 && !session_sql_mentions(sql, strlen(sql)))
        fail_msg("mentions() says 0 for: %s", sql);
    session_sql_free(&s);
}

/* Every text above: the pre-filter never hides an effect. */
static void test_mentions_differential(void **state)
{
    (void)state;
    DIFFERENTIAL(set_cases, STANDARD);
    DIFFERENTIAL(list_cases, STANDARD);
    DIFFERENTIAL(backslash_cases, BACKSLASH);
    DIFFERENTIAL(standard_backslash_cases, STANDARD);
    DIFFERENTIAL(local_cases, STANDARD);
    DIFFERENTIAL(reset_cases, STANDARD);
    DIFFERENTIAL(unrecordable_cases, STANDARD);
    DIFFERENTIAL(transaction_only_cases, STANDARD);
    DIFFERENTIAL(pin_cases, STANDARD);
    DIFFERENTIAL(set_config_cases, STANDARD);
    DIFFERENTIAL(hidden_cases, STANDARD);
    DIFFERENTIAL(multi_cases, STANDARD);
    DIFFERENTIAL(savepoint_cases, STANDARD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_list_quoting),
        cmocka_unit_test(test_backslash_strings),
        cmocka_unit_test(test_set_local),
        cmocka_unit_test(test_reset_and_discard),
        cmocka_unit_test(test_unrecordable_set),
        cmocka_unit_test(test_not_session_state),
        cmocka_unit_test(test_pins),
        cmocka_unit_test(test_set_config),
        cmocka_unit_test(test_hidden),
        cmocka_unit_test(test_multi_statement),
        cmocka_unit_test(test_savepoints),
        cmocka_unit_test(test_may_be_savepoint),
        cmocka_unit_test(test_counts_and_overflow),
        cmocka_unit_test(test_value_bounds),
        cmocka_unit_test(test_identifier_truncation),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_mentions),
        cmocka_unit_test(test_mentions_everywhere),
        cmocka_unit_test(test_mentions_differential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
