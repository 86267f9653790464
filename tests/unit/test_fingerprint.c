/*
 * test_fingerprint — unit tests for SQL normalisation and hashing (pooler/fingerprint.c).
 *
 * Each case gives SQL and the exact normalised text expected; the hash must agree with
 * the text: equal texts hash equal, different texts (almost surely) not. Inputs are
 * exact-size heap copies so valgrind/ASan see any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/fingerprint.h"

/* Normalise an exact-size copy (no NUL after it) of sql into out. */
static uint64_t norm(const char *sql, char *out, size_t outlen)
{
    size_t n = strlen(sql);
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, sql, n);
    uint64_t h = fingerprint_normalize(copy, n, out, outlen);
    uint64_t h2 = fingerprint_hash(copy, n);
    free(copy);
    assert_true(h == h2);
    assert_true(h != 0);
    return h;
}

static void expect(const char *sql, const char *want)
{
    char out[1024];
    norm(sql, out, sizeof out);
    if (strcmp(out, want) != 0)
        fail_msg("normalise(%s)\n   got: [%s]\n  want: [%s]", sql, out, want);
}

static void expect_same(const char *a, const char *b)
{
    char x[1024], y[1024];
    uint64_t ha = norm(a, x, sizeof x), hb = norm(b, y, sizeof y);
    if (ha != hb)
        fail_msg("expected one fingerprint:\n  [%s] -> [%s]\n  [%s] -> [%s]", a, x, b, y);
}

static void expect_different(const char *a, const char *b)
{
    char x[1024], y[1024];
    uint64_t ha = norm(a, x, sizeof x), hb = norm(b, y, sizeof y);
    if (ha == hb)
        fail_msg("expected different fingerprints:\n  [%s] -> [%s]\n  [%s] -> [%s]", a, x, b, y);
}

static void test_numbers(void **state)
{
    (void)state;
    expect("SELECT * FROM t WHERE id = 42", "SELECT * FROM t WHERE id = ?");
    expect("select 1.5, .5, 1e10, 1.5E-3, 0x1F, 1_000_000", "select ?, ?, ?, ?, ?, ?");
    expect("SELECT a FROM t LIMIT 10 OFFSET 20", "SELECT a FROM t LIMIT ? OFFSET ?");
    /* Digits inside identifiers are not literals. */
    expect("SELECT col1 FROM t2", "SELECT col1 FROM t2");
}

static void test_negative_numbers(void **state)
{
    (void)state;
    expect("SELECT * FROM t WHERE x = -1", "SELECT * FROM t WHERE x = ?");
    /* PostgreSQL lexes "=-1" as "=" then "-1": an operator cannot end in '-'. */
    expect("SELECT * FROM t WHERE x=-1", "SELECT * FROM t WHERE x = ?");
    expect("SELECT -5, +3", "SELECT ?, ?");
    expect("SELECT a - 1, a-1, (a) - 2", "SELECT a - ?, a - ?, (a) - ?");
    expect("SELECT 3 - -2", "SELECT ? - ?");
    expect("SELECT * FROM t WHERE x BETWEEN -10 AND -1", "SELECT * FROM t WHERE x BETWEEN ? AND ?");
    expect_same("SELECT * FROM t WHERE x = -1", "SELECT * FROM t WHERE x = 7");
    /* Operators that contain special characters may end in '-'. */
    expect("SELECT a @- 1", "SELECT a @- ?");
}

static void test_strings(void **state)
{
    (void)state;
    expect("SELECT 'abc'", "SELECT ?");
    expect("SELECT 'it''s', 'x'", "SELECT ?, ?");
    /* Standard strings: a backslash is an ordinary character, the quote ends it. */
    expect("SELECT 'a\\', b", "SELECT ?, b");
    /* E'' strings: backslash escapes the quote. */
    expect("SELECT E'it\\'s', e'\\\\', x", "SELECT ?, ?, x");
    expect("SELECT B'1010', X'1F', N'nat', U&'d\\0061t'", "SELECT ?, ?, ?, ?");
    expect("SELECT '2020-01-01'::date, DATE '2020-01-01'", "SELECT ?::date, DATE ?");
    /* A string holding comment and quote characters stays one literal. */
    expect("SELECT '-- not a comment /* nor this */ \"x\"' AS s", "SELECT ? AS s");
    /* Unterminated: the rest is the literal, no read past the end. */
    expect("SELECT 'abc", "SELECT ?");
    expect("SELECT E'abc\\", "SELECT ?");
}

static void test_dollar_quotes(void **state)
{
    (void)state;
    expect("SELECT $$it's$$", "SELECT ?");
    expect("SELECT $tag$ a $$ b $ c $tag$, 1", "SELECT ?, ?");
    expect("DO $body$BEGIN PERFORM 1; END$body$", "DO ?");
    expect("SELECT $a$x$b$y$a$", "SELECT ?");
    /* Placeholders are kept, not treated as quotes or literals. */
    expect("SELECT * FROM t WHERE id = $1 AND name = $2",
           "SELECT * FROM t WHERE id = $1 AND name = $2");
    expect("SELECT $1::int, $10", "SELECT $1::int, $10");
    /* A '$' inside an identifier is part of it. */
    expect("SELECT foo$bar$ FROM t", "SELECT foo$bar$ FROM t");
    expect("SELECT $tag$unterminated", "SELECT ?");
    expect_different("SELECT * FROM t WHERE id = $1", "SELECT * FROM t WHERE id = $2");
}

static void test_comments_and_whitespace(void **state)
{
    (void)state;
    expect("  SELECT\t*\n\nFROM   t  -- trailing comment\n WHERE /* c1 /* nested */ c2 */ a = 1 ",
           "SELECT * FROM t WHERE a = ?");
    expect("/* leading */ SELECT 1", "SELECT ?");
    expect("SELECT 1 --", "SELECT ?");
    expect("SELECT a--b\nFROM t", "SELECT a FROM t");
    expect("SELECT a/*b*/FROM t", "SELECT a FROM t");
    expect("SELECT 1 /* unterminated", "SELECT ?");
    expect_same("select a,b from t where x=1", "SELECT a, b\nFROM t\nWHERE x = 2");
    expect("SELECT count(*), t.a, x::text, arr[1], f( a , b ) FROM s.t",
           "SELECT count(*), t.a, x::text, arr[?], f(a, b) FROM s.t");
}

static void test_case_and_identifiers(void **state)
{
    (void)state;
    /* Keywords and unquoted names fold to one fingerprint; the text is as written. */
    expect_same("SELECT Id FROM Users", "select id from users");
    expect("SELECT Id FROM Users", "SELECT Id FROM Users");
    /* Quoted identifiers keep their case and are not literals. */
    expect("SELECT \"Id\", \"a\"\"b\" FROM \"T\"", "SELECT \"Id\", \"a\"\"b\" FROM \"T\"");
    expect_different("SELECT \"Id\" FROM t", "SELECT \"id\" FROM t");
    expect_different("SELECT a FROM t", "SELECT b FROM t");
}

static void test_booleans(void **state)
{
    (void)state;
    expect("UPDATE t SET active = TRUE WHERE deleted = false",
           "UPDATE t SET active = ? WHERE deleted = ?");
    expect("SELECT * FROM t WHERE x IS NULL", "SELECT * FROM t WHERE x IS NULL");
    expect("SELECT truex, \"true\"", "SELECT truex, \"true\"");
}

static void test_in_lists(void **state)
{
    (void)state;
    expect("SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (...)");
    expect("SELECT * FROM t WHERE id in ($1,$2,$3,$4)", "SELECT * FROM t WHERE id in (...)");
    expect("SELECT * FROM t WHERE c IN ('a', E'b', -1, 2::int)",
           "SELECT * FROM t WHERE c IN (...)");
    expect_same("SELECT * FROM t WHERE id IN (1)", "SELECT * FROM t WHERE id IN (1,2,3,4,5,6,7,8)");
    /* Lists with anything else are kept, literals inside normalised. */
    expect("SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE k = 1)",
           "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE k = ?)");
    expect("SELECT * FROM t WHERE id IN (a, 1)", "SELECT * FROM t WHERE id IN (a, ?)");
    expect("SELECT * FROM t WHERE id = ANY(ARRAY[1, 2, 3])",
           "SELECT * FROM t WHERE id = ANY (ARRAY[...])");
    expect("SELECT (1, 2)", "SELECT (?, ?)");
}

static void test_semicolons_and_multi(void **state)
{
    (void)state;
    expect("SELECT 1;", "SELECT ?");
    expect("SELECT 1 ; ; ", "SELECT ?");
    expect(";SELECT 1", "SELECT ?");
    expect("BEGIN; SELECT 1; COMMIT;", "BEGIN; SELECT ?; COMMIT");
    expect_same("SELECT 1;", "SELECT 2");
}

static void test_empty_and_odd(void **state)
{
    (void)state;
    expect("", "");
    expect("   \n\t ", "");
    expect("-- only a comment", "");
    char out[16];
    /* NULL text is the empty statement. */
    uint64_t h = fingerprint_normalize(NULL, 0, out, sizeof out);
    assert_string_equal(out, "");
    assert_true(h == fingerprint_hash("", 0));
    /* A NUL byte ends the text, like the C string PostgreSQL reads. */
    assert_true(fingerprint_hash("SELECT 1\0garbage", 16) == fingerprint_hash("SELECT 2", 8));
    /* Stray characters are kept as punctuation. */
    expect("SELECT $ \\ {", "SELECT $ \\ {");
    expect("SELECT a.b.c, x[1:2], y := 3", "SELECT a.b.c, x[?:?], y := ?");
}

static void test_truncation(void **state)
{
    (void)state;
    char big[4000], out[64];
    strcpy(big, "SELECT ");
    for (int i = 0; i < 300; i++)
        strcat(big, "col_name, ");
    strcat(big, "x FROM t");
    uint64_t h = norm(big, out, sizeof out);
    assert_int_equal(strlen(out), sizeof out - 1);
    assert_memory_equal(out, "SELECT col_name, col_name,", 26);
    /* The hash covers the whole text, not the shown part. */
    big[strlen(big) - 1] = 'u';
    char out2[64];
    assert_true(norm(big, out2, sizeof out2) != h);
    assert_string_equal(out, out2);

    /* Cut at a UTF-8 boundary: "é" is 2 bytes and must not be split. */
    char tiny[9];
    norm("SELECT éé", tiny, sizeof tiny); /* "SELECT " is 7 bytes, room for one more */
    assert_string_equal(tiny, "SELECT ");
    char nine[10];
    norm("SELECT éé", nine, sizeof nine);
    assert_string_equal(nine, "SELECT é");
}

static void test_hash_spread(void **state)
{
    (void)state;
    /* 2000 different statements: no two share a hash. */
    uint64_t seen[2000];
    char sql[64];
    for (int i = 0; i < 2000; i++) {
        snprintf(sql, sizeof sql, "SELECT * FROM table_%d WHERE id = 1", i);
        seen[i] = fingerprint_hash(sql, strlen(sql));
        for (int j = 0; j < i; j++)
            assert_true(seen[j] != seen[i]);
    }
}

/* The shape cache hashes plain text a chunk (8 or 16 bytes) at a time: put literals,
   glued digits, quotes and comments on both sides of the chunk boundaries and near the
   end of the text. A wrong cache hit shows as a hash that differs from the normaliser's. */
static void test_shape_boundaries(void **state)
{
    (void)state;
    static const char pad[] = "SELECT abalance_from_pgbench_accounts_where_aid_is";
    static const char *pairs[][2] = {
        /* literals of any length: one fingerprint */
        {" = 7;", " = 123456789012345678;"},
        {" ='' AND b = 'x'", " ='abcdefghijklmnopq' AND b = ''"},
        {" = 1.5", " = 22.75"},
        {" = $1 AND b = 7", " = $1 AND b = 123"},
        {" a$1 = 5 OR $2 = 'x'", " a$1 = 66 OR $2 = 'yz'"},
        /* placeholders, quoted names, comments and E'' strings are never literals */
        {" $1", " $2"},
        {" = $1", " = $12"},
        {" a$1 = 5", " a$2 = 5"},
        {" x$y = 5", " x$z = 5"},
        {" \"1\"", " \"2\""},
        {"x1 = 1", "x2 = 1"},
        {"\xc3\xa9"
         "1",
         "\xc3\xa9"
         "2"},
        {" -- '\nb\n'", " -- '\nc\n'"},
        {" /* '*/ b '", " /* '*/ c '"},
        {" E'\\'', b, '", " E'\\'', c, '"},
    };
    char a[160], b[160];
    for (int n = 0; n <= 40; n++) {
        for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
            snprintf(a, sizeof a, "%.*s%s", n, pad, pairs[k][0]);
            snprintf(b, sizeof b, "%.*s%s", n, pad, pairs[k][1]);
            if (k < 5)
                expect_same(a, b);
            else
                expect_different(a, b);
        }
    }
}

/* fingerprint_hash(b) after fingerprint_hash(a) (and every text hashed before): a shape
   cache answer that belongs to another text shows as a fingerprint other than b's own. */
static void expect_own_fingerprint_after(const char *a, const char *b)
{
    fingerprint_hash(a, strlen(a));
    if (fingerprint_hash(b, strlen(b)) != fingerprint_normalize(b, strlen(b), NULL, 0))
        fail_msg("[%s] got a fingerprint not its own (after [%s])", b, a);
}

/* Texts a few flipped bits apart never share a shape: each pair of single-bit changes to
   the bytes of one name, wherever they fall in the hash's chunks, checked against all
   the variants before it. A one-round chunk mix failed this. */
/* "1._1_$$x": the lexer reads a number with underscores, then opens a dollar quote at
   "$$"; a shape that took "_1_$$x" for a name skipped the string after it, so the two
   texts below had one shape and the second got the first one's fingerprint (found by
   fuzz_fingerprint). Each must hash as it normalises, in either order. */
static void test_shape_number_then_dollar(void **state)
{
    (void)state;
    const char *texts[] = {"SELECT 1._1_$$x 'y$$z' w", "SELECT 1._1_$$x 'kz' w"};
    uint64_t want[2];
    char out[256];
    for (int i = 0; i < 2; i++)
        want[i] = fingerprint_normalize(texts[i], strlen(texts[i]), out, sizeof out);
    assert_true(want[0] != want[1]);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 2; i++)
            assert_true(fingerprint_hash(texts[i], strlen(texts[i])) == want[i]);
}

static void test_shape_two_flips(void **state)
{
    (void)state;
    static const char base[] = "SELECT abcdefghijklmnopqrstuvwxyzABCDEF FROM t WHERE x = 1";
    enum { FIRST = 7, LAST = 38, BITS = 7 };
    char b[sizeof base];
    for (int p = FIRST * BITS; p <= LAST * BITS + BITS - 1; p++) {
        for (int q = p + 1; q <= LAST * BITS + BITS - 1; q++) {
            memcpy(b, base, sizeof base);
            b[p / BITS] ^= (char)(1 << (p % BITS));
            b[q / BITS] ^= (char)(1 << (q % BITS));
            if (b[p / BITS] != 0 && b[q / BITS] != 0)
                expect_own_fingerprint_after(base, b);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_negative_numbers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_dollar_quotes),
        cmocka_unit_test(test_comments_and_whitespace),
        cmocka_unit_test(test_case_and_identifiers),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_in_lists),
        cmocka_unit_test(test_semicolons_and_multi),
        cmocka_unit_test(test_empty_and_odd),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_hash_spread),
        cmocka_unit_test(test_shape_boundaries),
        cmocka_unit_test(test_shape_two_flips),
        cmocka_unit_test(test_shape_number_then_dollar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
