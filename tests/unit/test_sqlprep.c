/*
 * test_sqlprep — where SQL text names prepared statements (pooler/sqlprep.c):
 * sqlprep_parse for a query that is one PREPARE / EXECUTE / DEALLOCATE, and
 * sqlprep_scan for every statement of a text (the EXECUTEs it uses, where the names
 * are written, the PREPAREs and DEALLOCATEs, whatever hides words from PostgreSQL).
 *
 * Every text is parsed from an exact-size heap copy without a NUL, as the relay hands
 * it over, so valgrind or ASan report any read past len. rest must point into that
 * copy. The "not ours" groups hold inputs PostgreSQL would run as several statements
 * or reject, which sqlprep_parse must leave alone (SQLPREP_NONE).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/sqlprep.h"

/* ---- helpers ---- */

static const char *kind_name(enum sqlprep_kind kind)
{
    switch (kind) {
    case SQLPREP_NONE:
        return "NONE";
    case SQLPREP_PREPARE:
        return "PREPARE";
    case SQLPREP_EXECUTE:
        return "EXECUTE";
    case SQLPREP_DEALLOCATE:
        return "DEALLOCATE";
    case SQLPREP_DEALLOCATE_ALL:
        return "DEALLOCATE_ALL";
    }
    return "?";
}

/* The text for a failure message, with control and non-ASCII bytes as \xNN. */
static const char *shown(const char *text, size_t len)
{
    static char out[1024];
    size_t at = 0;
    for (size_t i = 0; i < len && at + 5 < sizeof out; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c < 0x7f)
            out[at++] = (char)c;
        else
            at += (size_t)snprintf(out + at, sizeof out - at, "\\x%02x", c);
    }
    out[at] = '\0';
    return out;
}

/* Parse the first len bytes of a heap copy holding size bytes of text (size >= len),
   then check kind, and name and rest when given. The copy is freed before any assert,
   so a failing test leaks nothing. */
static void check_bytes(const char *text, size_t size, size_t len, enum sqlprep_kind kind,
                        const char *name, const char *rest)
{
    char *copy = malloc(size ? size : 1);
    assert_non_null(copy);
    memcpy(copy, text, size);
    struct sqlprep sp;
    sqlprep_parse(copy, len, &sp);
    int inside = sp.rest && sp.rest >= copy && sp.rest_len <= len &&
                 (size_t)(sp.rest - copy) <= len - sp.rest_len;
    int rest_equal =
        rest && inside && sp.rest_len == strlen(rest) && memcmp(sp.rest, rest, sp.rest_len) == 0;
    free(copy);
    if (sp.kind != kind)
        fail_msg("\"%s\" (len %zu): %s, expected %s", shown(text, len), len, kind_name(sp.kind),
                 kind_name(kind));
    assert_non_null(memchr(sp.name, '\0', sizeof sp.name));
    if (name)
        assert_string_equal(sp.name, name);
    if (rest) {
        assert_true(inside);
        assert_true(rest_equal);
    }
}

static void expect(const char *sql, enum sqlprep_kind kind, const char *name, const char *rest)
{
    check_bytes(sql, strlen(sql), strlen(sql), kind, name, rest);
}

static void expect_none(const char *sql)
{
    expect(sql, SQLPREP_NONE, NULL, NULL);
}

/* "<ch × n>" as an identifier, optionally quoted; out must hold n + 3 bytes. */
static char *long_name(char *out, size_t n, char ch, int quoted)
{
    size_t at = 0;
    if (quoted)
        out[at++] = '"';
    memset(out + at, ch, n);
    at += n;
    if (quoted)
        out[at++] = '"';
    out[at] = '\0';
    return out;
}

/* ---- PREPARE ---- */

static void test_prepare_basic(void **state)
{
    (void)state;
    expect("PREPARE q(int) AS SELECT $1", SQLPREP_PREPARE, "q", "(int) AS SELECT $1");
    expect("prepare Q as select 1;", SQLPREP_PREPARE, "q", "as select 1");
    expect(" \t\r\n PREPARE q AS SELECT 1 ;  \n\t", SQLPREP_PREPARE, "q", "AS SELECT 1");
    expect("PREPARE q (int, text) AS INSERT INTO t VALUES ($1, $2)", SQLPREP_PREPARE, "q",
           "(int, text) AS INSERT INTO t VALUES ($1, $2)");
    expect("PrEpArE MyStmt_1$x\nAS\nSELECT 1", SQLPREP_PREPARE, "mystmt_1$x", "AS\nSELECT 1");
    expect("PREPARE prepare AS SELECT 1", SQLPREP_PREPARE, "prepare", "AS SELECT 1");
    expect("PREPARE _q AS SELECT 1", SQLPREP_PREPARE, "_q", "AS SELECT 1");
}

static void test_prepare_quoted_names(void **state)
{
    (void)state;
    expect("PREPARE \"My Stmt\" AS SELECT 1", SQLPREP_PREPARE, "My Stmt", "AS SELECT 1");
    expect("PREPARE \"a\"\"b\" AS SELECT 1", SQLPREP_PREPARE, "a\"b", "AS SELECT 1");
    expect("PREPARE \"\"\"\" AS SELECT 1", SQLPREP_PREPARE, "\"", "AS SELECT 1");
    expect("PREPARE \"q\"AS SELECT 1", SQLPREP_PREPARE, "q", "AS SELECT 1");
    expect("PREPARE \"x;--y\"(int) AS SELECT $1", SQLPREP_PREPARE, "x;--y", "(int) AS SELECT $1");
    expect("PREPARE\"Q\" AS SELECT 1", SQLPREP_PREPARE, "Q", "AS SELECT 1");
}

static void test_prepare_body_quotes(void **state)
{
    (void)state;
    expect("PREPARE q AS SELECT 'a;b', \"c;d\" FROM t;", SQLPREP_PREPARE, "q",
           "AS SELECT 'a;b', \"c;d\" FROM t");
    expect("PREPARE q AS SELECT $$a;b$$", SQLPREP_PREPARE, "q", "AS SELECT $$a;b$$");
    expect("PREPARE q AS SELECT $tag$ a;'b $$ $tag$ ;", SQLPREP_PREPARE, "q",
           "AS SELECT $tag$ a;'b $$ $tag$");
    expect("PREPARE q AS SELECT 'it''s; fine'", SQLPREP_PREPARE, "q", "AS SELECT 'it''s; fine'");
    expect("PREPARE q AS SELECT E'a\\';b'", SQLPREP_PREPARE, "q", "AS SELECT E'a\\';b'");
    expect("PREPARE q AS SELECT '--', '/*'", SQLPREP_PREPARE, "q", "AS SELECT '--', '/*'");
    expect("PREPARE q(int) AS SELECT $1::int, $1", SQLPREP_PREPARE, "q",
           "(int) AS SELECT $1::int, $1");
}

static void test_prepare_not_ours(void **state)
{
    (void)state;
    expect_none("PREPARE");
    expect_none("PREPARE ;");
    expect_none("PREPARE q");
    expect_none("PREPARE q SELECT 1");
    expect_none("PREPAREx q AS SELECT 1");
    expect_none("PREPARE_q AS SELECT 1");
    expect_none("PREPARE 1q AS SELECT 1");
    expect_none("PREPARE \"\" AS SELECT 1");
    expect_none("PREPARED q AS SELECT 1");
    expect_none("PREPARE q AS SELECT 1; SELECT 2");
    /* empty statements and comments after the statement do not count */
    expect("PREPARE q AS SELECT 1;;", SQLPREP_PREPARE, "q", "AS SELECT 1");
    expect("PREPARE q AS SELECT 1; -- done", SQLPREP_PREPARE, "q", "AS SELECT 1");
    /* comments before the keyword are skipped; one that does not end is not ours */
    expect("-- c\nPREPARE q AS SELECT 1", SQLPREP_PREPARE, "q", "AS SELECT 1");
    expect("/* c /* nested */ */ EXECUTE q(1)", SQLPREP_EXECUTE, "q", "(1)");
    expect_none("/* c */* PREPARE q AS SELECT 1");
    expect_none("/* never ends PREPARE q AS SELECT 1");
    expect_none("-- only a comment PREPARE q AS SELECT 1");
    expect("PREPARE q AS SELECT 1 -- trailing", SQLPREP_PREPARE, "q", "AS SELECT 1");
    expect("PREPARE q AS SELECT 1 /* c */", SQLPREP_PREPARE, "q", "AS SELECT 1");
    expect("PREPARE /* a */ q -- b\n AS SELECT 1", SQLPREP_PREPARE, "q", "AS SELECT 1");
    expect_none("PREPARE q AS SELECT 'unterminated");
    expect_none("PREPARE q AS SELECT \"unterminated");
    expect_none("PREPARE \"q AS SELECT 1");
    expect_none("PREPARE q AS SELECT $$a;b");
    expect_none("PREPARE q AS SELECT $x$a;b$y$");
}

/* ---- EXECUTE ---- */

static void test_execute(void **state)
{
    (void)state;
    expect("EXECUTE q", SQLPREP_EXECUTE, "q", "");
    expect("EXECUTE q(1, 'a;b')", SQLPREP_EXECUTE, "q", "(1, 'a;b')");
    expect("execute Q (1) ;  ", SQLPREP_EXECUTE, "q", "(1)");
    expect("EXECUTE \"Q\"", SQLPREP_EXECUTE, "Q", "");
    expect("EXECUTE \"Q\"(2)", SQLPREP_EXECUTE, "Q", "(2)");
    expect("EXECUTE q;\n", SQLPREP_EXECUTE, "q", "");
    expect("EXECUTE q($$x);y$$, 'it''s')", SQLPREP_EXECUTE, "q", "($$x);y$$, 'it''s')");
    expect("EXECUTE CAF\xc3\x89", SQLPREP_EXECUTE, "caf\xc3\x89", "");
}

static void test_execute_not_ours(void **state)
{
    (void)state;
    expect_none("EXECUTE");
    expect_none("EXECUTE ;");
    expect_none("EXECUTE q 1");
    expect_none("EXECUTE q, r");
    expect_none("EXECUTEq");
    expect_none("EXECUTE q(1); EXECUTE q(2)");
    expect_none("EXECUTE q(';')x;y");
    expect_none("EXECUTE q('a;b)");
    expect("EXECUTE q -- x", SQLPREP_EXECUTE, "q", "");
    expect_none("EXPLAIN EXECUTE q");
    expect_none("EXECUTE 'q'");
}

/* ---- DEALLOCATE ---- */

static void test_deallocate(void **state)
{
    (void)state;
    expect("DEALLOCATE q", SQLPREP_DEALLOCATE, "q", NULL);
    expect("DEALLOCATE PREPARE q", SQLPREP_DEALLOCATE, "q", NULL);
    expect("deallocate Q;", SQLPREP_DEALLOCATE, "q", NULL);
    expect("DEALLOCATE \"Q\" ; ", SQLPREP_DEALLOCATE, "Q", NULL);
    expect("DEALLOCATE \"all\"", SQLPREP_DEALLOCATE, "all", NULL);
    expect("DEALLOCATE allx", SQLPREP_DEALLOCATE, "allx", NULL);
    expect("DEALLOCATE prepare \"ALL\"", SQLPREP_DEALLOCATE, "ALL", NULL);
}

static void test_deallocate_all(void **state)
{
    (void)state;
    expect("DEALLOCATE ALL", SQLPREP_DEALLOCATE_ALL, NULL, NULL);
    expect("deallocate prepare all;", SQLPREP_DEALLOCATE_ALL, NULL, NULL);
    expect("  Deallocate All ;\n", SQLPREP_DEALLOCATE_ALL, NULL, NULL);
    expect("DEALLOCATE PREPARE ALL", SQLPREP_DEALLOCATE_ALL, NULL, NULL);
}

static void test_deallocate_not_ours(void **state)
{
    (void)state;
    expect_none("DEALLOCATE");
    expect_none("DEALLOCATE ;");
    expect_none("DEALLOCATE q r");
    expect_none("DEALLOCATE ALL q");
    expect_none("DEALLOCATE q(1)");
    expect_none("DEALLOCATE q; SELECT 1");
    expect_none("DEALLOCATE ALL; DEALLOCATE ALL");
    expect_none("DEALLOCATEq");
    expect_none("DEALLOCATE PREPARE PREPARE q");
}

/* ---- everything else, and the text as bytes ---- */

static void test_other_statements(void **state)
{
    (void)state;
    expect_none("");
    expect_none("   \n\t");
    expect_none(";");
    expect_none("SELECT 1");
    expect_none("SELECT 'PREPARE q AS SELECT 1'");
    expect_none("BEGIN; PREPARE q AS SELECT 1");
    expect_none("CREATE TABLE prepare (x int)");
}

static void test_name_length_limit(void **state)
{
    (void)state;
    /* Names of any length are kept as PostgreSQL stores them: cut to 63 bytes. Left to
       the backend, a long one would create a statement under the client's own name. */
    static const size_t lengths[] = {SQLPREP_IDENT_MAX, SQLPREP_IDENT_MAX + 1, 300, 5000};
    static char name[5004], sql[5100];
    char expect_name[SQLPREP_NAME_MAX];
    long_name(expect_name, SQLPREP_IDENT_MAX, 'n', 0);
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++)
        for (int quoted = 0; quoted <= 1; quoted++) {
            long_name(name, lengths[i], quoted ? 'n' : 'N', quoted);
            snprintf(sql, sizeof sql, "PREPARE %s AS SELECT 1", name);
            expect(sql, SQLPREP_PREPARE, expect_name, "AS SELECT 1");
            snprintf(sql, sizeof sql, "EXECUTE %s(1)", name);
            expect(sql, SQLPREP_EXECUTE, expect_name, "(1)");
            snprintf(sql, sizeof sql, "DEALLOCATE %s", name);
            expect(sql, SQLPREP_DEALLOCATE, expect_name, NULL);
        }
}

static void test_name_cut_on_character_boundary(void **state)
{
    (void)state;
    /* 62 x's then "é" (2 bytes): byte 63 would split it, so the name is the x's */
    char sql[128], want[SQLPREP_NAME_MAX];
    long_name(want, SQLPREP_IDENT_MAX - 1, 'x', 0);
    snprintf(sql, sizeof sql, "EXECUTE %s\xc3\xa9", want);
    expect(sql, SQLPREP_EXECUTE, want, "");
}

static void test_quoted_name_limit_counts_unescaped(void **state)
{
    (void)state;
    /* 62 x's and one "" pair: 63 characters after unescaping, kept whole */
    char sql[SQLPREP_NAME_MAX + 64], want[SQLPREP_NAME_MAX];
    int n = snprintf(sql, sizeof sql, "EXECUTE \"%.*s\"\"\"", SQLPREP_IDENT_MAX - 1,
                     long_name(want, SQLPREP_IDENT_MAX - 1, 'x', 0));
    assert_true(n > 0 && (size_t)n < sizeof sql);
    want[SQLPREP_IDENT_MAX - 1] = '"';
    want[SQLPREP_IDENT_MAX] = '\0';
    expect(sql, SQLPREP_EXECUTE, want, "");
}

static void test_len_bounds_the_text(void **state)
{
    (void)state;
    const char *text = "EXECUTE q; SELECT 1";
    check_bytes(text, strlen(text), 9, SQLPREP_EXECUTE, "q", "");
    check_bytes("DEALLOCATE ALL", 14, 12, SQLPREP_DEALLOCATE, "a", NULL);
    check_bytes("EXECUTE qq", 10, 9, SQLPREP_EXECUTE, "q", "");
    check_bytes("PREPARE q AS SELECT 1", 21, 0, SQLPREP_NONE, NULL, NULL);
    /* exact-size copy ending right after "a": valgrind/ASan flag any look past it */
    check_bytes("PREPARE q a", 11, 11, SQLPREP_NONE, NULL, NULL);
}

static void test_output_reset_each_call(void **state)
{
    (void)state;
    struct sqlprep sp;
    const char *prep = "PREPARE q AS SELECT 1", *other = "SELECT 1";
    sqlprep_parse(prep, strlen(prep), &sp);
    assert_int_equal(sp.kind, SQLPREP_PREPARE);
    sqlprep_parse(other, strlen(other), &sp);
    assert_int_equal(sp.kind, SQLPREP_NONE);
    assert_string_equal(sp.name, "");
    sqlprep_parse(prep, 0, &sp);
    assert_int_equal(sp.kind, SQLPREP_NONE);
}

/* ---- sqlprep_scan: every statement of a text ---- */

/* Scan an exact-size heap copy (freed before any assert; command.rest dangles). */
static struct sqlprep_scan scan_as(const char *sql, size_t len, enum sqlprep_strings strings)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, sql, len);
    struct sqlprep_scan scan;
    sqlprep_scan(copy, len, strings, &scan);
    free(copy);
    return scan;
}

static struct sqlprep_scan scan(const char *sql)
{
    return scan_as(sql, strlen(sql), SQLPREP_STRINGS_STANDARD);
}

/* The text with each used name replaced by <name>: shows what the relay rewrites. */
static const char *marked(const char *sql, const struct sqlprep_scan *sc)
{
    static char out[1024];
    size_t at = 0, done = 0;
    for (int i = 0; i < sc->nuses; i++) {
        const struct sqlprep_use *u = &sc->uses[i];
        at += (size_t)snprintf(out + at, sizeof out - at, "%.*s<%s>", (int)(u->offset - done),
                               sql + done, u->name);
        done = u->offset + u->len;
    }
    snprintf(out + at, sizeof out - at, "%s", sql + done);
    return out;
}

static void expect_uses(const char *sql, const char *want)
{
    struct sqlprep_scan sc = scan(sql);
    if (sc.malformed || sc.ambiguous || sc.unreadable || sc.defines)
        fail_msg("\"%s\": malformed %d, ambiguous %d, unreadable %d, defines %d", sql, sc.malformed,
                 sc.ambiguous, sc.unreadable, sc.defines);
    assert_string_equal(marked(sql, &sc), want);
    assert_int_equal(sc.first, sc.nuses ? SQLPREP_EXECUTE : SQLPREP_NONE);
}

static void test_scan_uses(void **state)
{
    (void)state;
    expect_uses("execute y", "execute <y>");
    expect_uses("select 1; EXECUTE \"Y\"(1, 'a;b')", "select 1; EXECUTE <Y>(1, 'a;b')");
    expect_uses("select 1;EXECUTE/*c*/y;;execute Z", "select 1;EXECUTE/*c*/<y>;;execute <z>");
    expect_uses("begin; execute y; commit", "begin; execute <y>; commit");
    expect_uses("EXPLAIN EXECUTE y", "EXPLAIN EXECUTE <y>");
    expect_uses("explain (analyze, costs off, format json) execute y(2)",
                "explain (analyze, costs off, format json) execute <y>(2)");
    expect_uses("EXPLAIN ANALYZE VERBOSE EXECUTE y", "EXPLAIN ANALYZE VERBOSE EXECUTE <y>");
    expect_uses("explain analyse execute y", "explain analyse execute <y>");
    expect_uses("explain verbose execute y", "explain verbose execute <y>");
    expect_uses("CREATE TEMP TABLE t AS EXECUTE y", "CREATE TEMP TABLE t AS EXECUTE <y>");
    expect_uses("create global temporary table t as execute y",
                "create global temporary table t as execute <y>");
    expect_uses("create unlogged table if not exists s.t (a, b) using heap with (fillfactor = "
                "70) tablespace x as execute y (1) with no data",
                "create unlogged table if not exists s.t (a, b) using heap with (fillfactor = "
                "70) tablespace x as execute <y> (1) with no data");
    expect_uses("explain analyze create table t as execute y",
                "explain analyze create table t as execute <y>");
    expect_uses("execute y; execute y", "execute <y>; execute <y>");
    /* junk after a number starts a new token (PostgreSQL 14; 15 refuses the text) */
    expect_uses("select 1x$a$; execute y; select 1x$a$", "select 1x$a$; execute <y>; select 1x$a$");
    expect_uses("select 1E'\\' , '; execute y; --'", "select 1E'\\' , '; execute <y>; --'");
    expect_uses("select 1.5e-3, .5e1, 1..2; execute y", "select 1.5e-3, .5e1, 1..2; execute <y>");
    /* a line comment ends at \r too */
    expect_uses("select 1 --\r; execute y", "select 1 --\r; execute <y>");
}

static void test_scan_words_that_are_not_uses(void **state)
{
    (void)state;
    expect_uses("select execute from t", "select execute from t");
    expect_uses("select 1 as execute; select 2 as prepare",
                "select 1 as execute; select 2 as prepare");
    expect_uses("create table t as select 1 as execute from x",
                "create table t as select 1 as execute from x");
    expect_uses("create table t (execute int)", "create table t (execute int)");
    expect_uses("create trigger tr after insert on t for each row execute function f()",
                "create trigger tr after insert on t for each row execute function f()");
    expect_uses("grant execute on function f() to u", "grant execute on function f() to u");
    expect_uses("create view v as select 1", "create view v as select 1");
    expect_uses("explain select 1", "explain select 1");
    expect_uses("CREATE FUNCTION f() RETURNS int AS 'execute y' LANGUAGE sql",
                "CREATE FUNCTION f() RETURNS int AS 'execute y' LANGUAGE sql");
    expect_uses("PREPARE TRANSACTION 'execute y'", "PREPARE TRANSACTION 'execute y'");
}

/* Quotes, dollar quotes and comments hide the words: one statement, nothing named. */
static void test_scan_hidden_words(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "select 'prepare y as select 1; execute y'",
        "select 'it''s; execute y'",
        "select E'\\'; execute y'",
        "select e'\\\\', '; execute y'",
        "select $$; execute y$$",
        "select $a$ $b$ ; execute y $b$ $$ $a$",
        "select $_1$; execute y$_1$",
        "select /* /* */ ; execute y */ 1",
        "select 1 -- ; execute y",
        "select \"x; execute y\" from t",
        "select \"a\"\"; execute y\" from t",
        "select N'; execute y'",
        "select B'1', X'; execute y'",
        "select U&'; execute y'",
        "select 1 +/* ; execute y */ 2",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct sqlprep_scan sc = scan(texts[i]);
        if (sc.statements != 1 || sc.malformed || sc.first != SQLPREP_NONE || sc.nuses != 0)
            fail_msg("\"%s\": %d statements, malformed %d, first %s, %d uses", texts[i],
                     sc.statements, sc.malformed, kind_name(sc.first), sc.nuses);
        assert_true(sqlprep_mentions(texts[i], strlen(texts[i])));
    }
    /* '$' inside a word opens no dollar quote */
    struct sqlprep_scan sc = scan("select x$a$; execute$a$");
    assert_int_equal(sc.statements, 2);
    assert_false(sc.malformed);
    assert_int_equal(sc.nuses, 0);
}

static void test_scan_defines(void **state)
{
    (void)state;
    struct sqlprep_scan sc = scan("select 1; prepare y as select 'A secret'");
    assert_int_equal(sc.statements, 2);
    assert_int_equal(sc.defines, 1);
    assert_int_equal(sc.first_define, SQLPREP_PREPARE);
    sc = scan("begin; PrEpArE \"y\"(int) as select $1; commit");
    assert_int_equal(sc.statements, 3);
    assert_int_equal(sc.first_define, SQLPREP_PREPARE);
    /* DEALLOCATE ALL names no statement; EXECUTEs after it use no name the client had */
    sc = scan("/* c */ execute y -- x\n;;DEALLOCATE PREPARE ALL; execute y");
    assert_int_equal(sc.statements, 3);
    assert_int_equal(sc.defines, 0);
    assert_int_equal(sc.clears, 1);
    assert_int_equal(sc.first, SQLPREP_EXECUTE);
    assert_int_equal(sc.nuses, 2);
    assert_false(sc.uses[0].after_clear);
    assert_true(sc.uses[1].after_clear);
    sc = scan("select 1; deallocate all x");
    assert_int_equal(sc.defines, 1);
    assert_int_equal(sc.first_define, SQLPREP_DEALLOCATE);
    sc = scan("execute a; deallocate b; prepare c as select 1");
    assert_int_equal(sc.first, SQLPREP_EXECUTE);
    assert_int_equal(sc.first_define, SQLPREP_DEALLOCATE);
    assert_int_equal(sc.defines, 2);
    assert_int_equal(sc.nuses, 1);
    /* even ones PostgreSQL refuses count: the statement is refused either way */
    sc = scan("select 1; prepare");
    assert_int_equal(sc.defines, 1);
    /* two-phase commit names no statement; a statement may be called transaction */
    sc = scan("begin; PREPARE TRANSACTION 'gid'");
    assert_int_equal(sc.defines, 0);
    assert_int_equal(sc.first, SQLPREP_NONE);
    sc = scan("prepare transaction as select 1");
    assert_int_equal(sc.command.kind, SQLPREP_PREPARE);
    assert_string_equal(sc.command.name, "transaction");
}

static void test_scan_unreadable_and_too_many(void **state)
{
    (void)state;
    static const char *const unreadable[] = {
        "EXECUTE U&\"y\"",
        "select 1; execute u&\"\\0079\" UESCAPE '!'",
        "PREPARE U&\"y\" AS SELECT 1",
        "DEALLOCATE PREPARE U&\"y\"",
        "explain execute U&\"y\"",
    };
    for (size_t i = 0; i < sizeof unreadable / sizeof unreadable[0]; i++) {
        struct sqlprep_scan sc = scan(unreadable[i]);
        if (!sc.unreadable || sc.nuses != 0 || sc.first == SQLPREP_NONE)
            fail_msg("\"%s\": unreadable %d, %d uses", unreadable[i], sc.unreadable, sc.nuses);
    }
    assert_false(scan("select U&\"y\" from t").unreadable);
    char sql[512] = "";
    for (int i = 0; i <= SQLPREP_USES_MAX; i++)
        strcat(sql, "execute y;");
    struct sqlprep_scan sc = scan(sql);
    assert_int_equal(sc.nuses, SQLPREP_USES_MAX);
    assert_true(sc.uses_overflow);
    sql[strlen(sql) - strlen("execute y;")] = '\0';
    assert_false(scan(sql).uses_overflow);
}

/* PostgreSQL refuses these texts whole, before running any statement. */
static void test_scan_malformed(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "select 'abc; execute y",
        "select E'abc\\'; execute y",
        "select \"abc; execute y",
        "/* prepare y as /* */",
        "select $a$ execute y $b$",
        "select \"\"; execute y",
        "select x$y$; execute z; select $y$",
        "execute U&\"y",
        "select B'01",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (!scan(texts[i]).malformed)
            fail_msg("\"%s\" not malformed", texts[i]);
    assert_true(
        scan_as("execute y\0; prepare z as select 1", 33, SQLPREP_STRINGS_STANDARD).malformed);
}

/* With standard_conforming_strings off, '\' escapes inside '…'. */
static void test_scan_strings_setting(void **state)
{
    (void)state;
    const char *sql = "select 'a\\'; execute y";
    size_t len = strlen(sql);
    assert_int_equal(scan_as(sql, len, SQLPREP_STRINGS_STANDARD).nuses, 1);
    assert_true(scan_as(sql, len, SQLPREP_STRINGS_BACKSLASH).malformed);
    /* off, PostgreSQL refuses it; on, it runs the EXECUTE: that reading counts */
    struct sqlprep_scan sc = scan_as(sql, len, SQLPREP_STRINGS_EITHER);
    assert_int_equal(sc.nuses, 1);
    assert_false(sc.ambiguous || sc.malformed);

    sql = "select 'a\\' || '; execute y; --'";
    len = strlen(sql);
    assert_int_equal(scan_as(sql, len, SQLPREP_STRINGS_STANDARD).nuses, 0);
    assert_int_equal(scan_as(sql, len, SQLPREP_STRINGS_BACKSLASH).nuses, 1);
    assert_true(scan_as(sql, len, SQLPREP_STRINGS_EITHER).ambiguous);

    sql = "select E'a\\'; execute y', 'b'; execute z";
    sc = scan_as(sql, strlen(sql), SQLPREP_STRINGS_EITHER);
    assert_int_equal(sc.nuses, 1);
    assert_string_equal(sc.uses[0].name, "z");
    assert_false(sc.ambiguous);

    sql = "select U&'\\0041'; execute y";
    sc = scan_as(sql, strlen(sql), SQLPREP_STRINGS_EITHER);
    assert_int_equal(sc.nuses, 1);
    assert_false(sc.ambiguous || sc.malformed);
    assert_true(scan_as(sql, strlen(sql), SQLPREP_STRINGS_BACKSLASH).malformed);
}

static void test_mentions(void **state)
{
    (void)state;
    static const char *const yes[] = {"PREPARE",    "xprepareX", "select 1; eXeCuTe y",
                                      "deallocate", "'execute'", "... dealLOCATE"};
    static const char *const no[] = {
        "", "select 1", "prepar execut dealloca", "PREPAR", "EXECUT", "DEALLOCAT", "preparE"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(sqlprep_mentions(yes[i], strlen(yes[i])));
    for (size_t i = 0; i < sizeof no / sizeof no[0] - 1; i++)
        assert_false(sqlprep_mentions(no[i], strlen(no[i])));
    /* len bounds it: "preparE" cut before its last letter */
    assert_false(sqlprep_mentions("preparE", 6));
}

/* The obvious search, to check the fast one against. */
static int mentions_slowly(const char *sql, size_t len)
{
    static const char *const words[] = {"prepare", "execute", "deallocate"};
    for (size_t i = 0; i < len; i++)
        for (int w = 0; w < 3; w++) {
            size_t n = strlen(words[w]), k = 0;
            while (k < n && i + k < len && (sql[i + k] | 0x20) == words[w][k])
                k++;
            if (k == n)
                return 1;
        }
    return 0;
}

/* Random texts over an alphabet rich in the words' letters, words planted at random
   places, any case: the fast search agrees with the obvious one. */
static void test_mentions_matches_naive(void **state)
{
    (void)state;
    static const char alphabet[] = "prepaexcutdlonPREXCUTDALO _;'\"\n\x80\xc5@[`{";
    static const char *const words[] = {"PREPARE", "execute", "DeAlLoCaTe", "dealloc"};
    uint32_t seed = 7;
    char text[100];
    for (int round = 0; round < 200000; round++) {
        seed = seed * 1103515245u + 12345u;
        size_t len = (seed >> 16) % sizeof text;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            text[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        seed = seed * 1103515245u + 12345u;
        const char *w = words[(seed >> 16) % 4];
        size_t at = (seed >> 8) % (sizeof text), wl = strlen(w);
        if ((seed & 1) && at + wl <= len)
            memcpy(text + at, w, wl);
        if (sqlprep_mentions(text, len) != mentions_slowly(text, len))
            fail_msg("round %d: \"%.*s\" gives %d", round, (int)len, text,
                     sqlprep_mentions(text, len));
    }
}

/* ---- found bugs: each fails until sqlprep.c is fixed ---- */

/* parse_prepare compares "as" with strncasecmp(p, "as", 2) when one byte is left, so
   it reads the byte after len: "PREPARE q a" followed by 's' is taken for "AS". */
static void test_bug_prepare_as_reads_past_len(void **state)
{
    (void)state;
    check_bytes("PREPARE q as", 12, 11, SQLPREP_NONE, NULL, NULL);
}

/* "AS" is matched as a prefix, not as a keyword. */
static void test_bug_prepare_as_must_be_a_keyword(void **state)
{
    (void)state;
    expect_none("PREPARE q ASx SELECT 1");
    expect_none("PREPARE q ASSELECT 1");
    expect_none("PREPARE q ask");
}

/* A parameter type list is accepted without the AS that must follow it. */
static void test_bug_prepare_types_without_as(void **state)
{
    (void)state;
    expect_none("PREPARE q(int) SELECT $1");
    expect_none("PREPARE q (int)");
}

/* AS with no statement after it. */
static void test_bug_prepare_as_without_statement(void **state)
{
    (void)state;
    expect_none("PREPARE q AS");
    expect_none("PREPARE q AS ;");
}

/* With standard_conforming_strings on (the default), '\' does not escape a quote in
   '…'. PostgreSQL runs these as three statements (the last ' is in a comment); sqlprep
   skips from 'a\' to that ' and sees one. */
static void test_bug_backslash_in_standard_string(void **state)
{
    (void)state;
    expect_none("PREPARE q AS SELECT 'a\\'; DROP TABLE t; -- '");
    expect_none("EXECUTE q('a\\'); DROP TABLE t; -- ')");
}

/* '$' inside an identifier (x$a$) does not open a dollar quote. PostgreSQL runs three
   statements here; sqlprep takes $a$ … $a$ for one quoted span. */
static void test_bug_dollar_inside_identifier(void **state)
{
    (void)state;
    expect_none("PREPARE q AS SELECT 1 AS x$a$; DROP TABLE t; SELECT 1 AS y$a$");
}

/* Bytes >= 0x80 continue an identifier (is_ident_char), so PREPAREé is one word to
   PostgreSQL (a syntax error), but take_keyword accepts PREPARE before it. */
static void test_bug_keyword_followed_by_multibyte(void **state)
{
    (void)state;
    expect_none("PREPARE\xc3\xa9 AS SELECT 1");
    expect_none("EXECUTE\xc3\xa9");
    expect_none("DEALLOCATE\xc3\xa9");
}

/* EXECUTE name (args) must end there; text after the argument list is not ours. */
static void test_bug_execute_text_after_args(void **state)
{
    (void)state;
    expect_none("EXECUTE q(1) x");
    expect_none("EXECUTE q(1");
}

/* PostgreSQL rejects a Query whose text holds a NUL ("invalid message format"), but
   sqlprep accepts one: a quoted name starting with NUL comes back as "" (the unnamed
   statement's name), and a NUL in the body is cut off later by strlen. */
static void test_bug_nul_in_text(void **state)
{
    (void)state;
    check_bytes("EXECUTE \"\0q\"", 12, 12, SQLPREP_NONE, NULL, NULL);
    check_bytes("DEALLOCATE \"\0\"", 14, 14, SQLPREP_NONE, NULL, NULL);
    check_bytes("PREPARE q AS SELECT 1\0junk", 26, 26, SQLPREP_NONE, NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prepare_basic),
        cmocka_unit_test(test_prepare_quoted_names),
        cmocka_unit_test(test_prepare_body_quotes),
        cmocka_unit_test(test_prepare_not_ours),
        cmocka_unit_test(test_execute),
        cmocka_unit_test(test_execute_not_ours),
        cmocka_unit_test(test_deallocate),
        cmocka_unit_test(test_deallocate_all),
        cmocka_unit_test(test_deallocate_not_ours),
        cmocka_unit_test(test_other_statements),
        cmocka_unit_test(test_name_length_limit),
        cmocka_unit_test(test_name_cut_on_character_boundary),
        cmocka_unit_test(test_quoted_name_limit_counts_unescaped),
        cmocka_unit_test(test_len_bounds_the_text),
        cmocka_unit_test(test_output_reset_each_call),
        cmocka_unit_test(test_scan_uses),
        cmocka_unit_test(test_scan_words_that_are_not_uses),
        cmocka_unit_test(test_scan_hidden_words),
        cmocka_unit_test(test_scan_defines),
        cmocka_unit_test(test_scan_unreadable_and_too_many),
        cmocka_unit_test(test_scan_malformed),
        cmocka_unit_test(test_scan_strings_setting),
        cmocka_unit_test(test_mentions),
        cmocka_unit_test(test_mentions_matches_naive),
        cmocka_unit_test(test_bug_prepare_as_reads_past_len),
        cmocka_unit_test(test_bug_prepare_as_must_be_a_keyword),
        cmocka_unit_test(test_bug_prepare_types_without_as),
        cmocka_unit_test(test_bug_prepare_as_without_statement),
        cmocka_unit_test(test_bug_backslash_in_standard_string),
        cmocka_unit_test(test_bug_dollar_inside_identifier),
        cmocka_unit_test(test_bug_keyword_followed_by_multibyte),
        cmocka_unit_test(test_bug_execute_text_after_args),
        cmocka_unit_test(test_bug_nul_in_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
