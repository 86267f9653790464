/*
 * Unit tests for auth.c: the userlist parser (quoting, comments, bad lines with line
 * numbers, no secrets in errors), md5 checks against values from a real PostgreSQL,
 * plaintext checks against all three secret kinds, and SCRAM keys from secrets.
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
#include <openssl/evp.h>

#include "warmpool/auth.h"
#include "warmpool/scram.h"

/*
 * From PostgreSQL 15: SET password_encryption = 'md5'; CREATE ROLE wp_auth_t1 PASSWORD 'pw';
 * SELECT rolpassword FROM pg_authid WHERE rolname = 'wp_auth_t1';
 */
#define PG_MD5_USER "wp_auth_t1"
#define PG_MD5_PASSWORD "pw"
#define PG_MD5_SECRET "md5f9b14cf31083310a0705a8a08733b4e1"
/* The response libpq sends for that role and salt 01 02 03 04 (python hashlib, by hand). */
#define PG_MD5_RESPONSE_01020304 "md5a209a8ffd6b31d7e4ab096eddf7cc981"

/* From PostgreSQL 15 with password_encryption = 'scram-sha-256', password "pencil". */
#define PG_SCRAM_SECRET                                                                            \
    "SCRAM-SHA-256$4096:PYlv2olrcq2ysNXroPTcxw==$S1UDhRwItgmolVGG4UaHh1Q/iOU2c1CxkkeQNr4tCVU=:"    \
    "XWNucLLulpjTDDyMXmlHdPDQE8TK4Q3Y0gFwJ+IxtDk="

static const uint8_t salt1234[4] = {1, 2, 3, 4};

/* ---- helpers ---- */

/* PostgreSQL's client-side formula, written independently of auth.c. */
static void client_md5_response(const char *password, const char *user, const uint8_t salt[4],
                                char out[36])
{
    uint8_t d[16];
    char inner[33];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    assert_non_null(ctx);
    assert_true(EVP_DigestInit_ex(ctx, EVP_md5(), NULL));
    assert_true(EVP_DigestUpdate(ctx, password, strlen(password)));
    assert_true(EVP_DigestUpdate(ctx, user, strlen(user)));
    assert_true(EVP_DigestFinal_ex(ctx, d, NULL));
    for (int i = 0; i < 16; i++)
        sprintf(inner + 2 * i, "%02x", d[i]);
    assert_true(EVP_DigestInit_ex(ctx, EVP_md5(), NULL));
    assert_true(EVP_DigestUpdate(ctx, inner, 32));
    assert_true(EVP_DigestUpdate(ctx, salt, 4));
    assert_true(EVP_DigestFinal_ex(ctx, d, NULL));
    EVP_MD_CTX_free(ctx);
    strcpy(out, "md5");
    for (int i = 0; i < 16; i++)
        sprintf(out + 3 + 2 * i, "%02x", d[i]);
}

static struct wp_user_secret make_secret(const char *user, const char *secret)
{
    struct wp_user_secret s = {(char *)user, (char *)secret, auth_secret_kind(secret)};
    return s;
}

/* Write `content` to a fresh temp file; returns its path (static buffer). */
static const char *write_temp(const char *content, size_t len)
{
    static char path[64];
    strcpy(path, "/tmp/wp_userlist_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

static int load_string(const char *content, struct wp_userlist *list, char *err, size_t errlen)
{
    const char *path = write_temp(content, strlen(content));
    int rc = auth_userlist_load(path, list, err, errlen);
    unlink(path);
    return rc;
}

/* ---- md5 ---- */

static void test_md5_secret_matches_postgres(void **state)
{
    (void)state;
    char out[36];

    auth_md5_secret(PG_MD5_PASSWORD, PG_MD5_USER, out);
    assert_string_equal(out, PG_MD5_SECRET);
}

static void test_md5_check(void **state)
{
    (void)state;
    char response[36];
    struct wp_user_secret plain = make_secret(PG_MD5_USER, PG_MD5_PASSWORD);
    struct wp_user_secret md5 = make_secret(PG_MD5_USER, PG_MD5_SECRET);

    client_md5_response(PG_MD5_PASSWORD, PG_MD5_USER, salt1234, response);
    assert_string_equal(response, PG_MD5_RESPONSE_01020304);
    assert_int_equal(plain.kind, WP_SECRET_PLAIN);
    assert_int_equal(md5.kind, WP_SECRET_MD5);
    assert_int_equal(auth_md5_check(&plain, salt1234, response), 1);
    assert_int_equal(auth_md5_check(&md5, salt1234, response), 1);

    /* Another salt, including bytes that are not ASCII. */
    static const uint8_t salt2[4] = {0xde, 0xad, 0x00, 0xef};
    client_md5_response(PG_MD5_PASSWORD, PG_MD5_USER, salt2, response);
    assert_int_equal(auth_md5_check(&md5, salt2, response), 1);
    assert_int_equal(auth_md5_check(&md5, salt1234, response), 0);
}

static void test_md5_check_rejects(void **state)
{
    (void)state;
    char response[36], mangled[40];
    struct wp_user_secret md5 = make_secret(PG_MD5_USER, PG_MD5_SECRET);
    struct wp_user_secret other_user = make_secret("someone", PG_MD5_PASSWORD);
    struct wp_user_secret scram = make_secret(PG_MD5_USER, PG_SCRAM_SECRET);
    struct wp_user_secret empty = make_secret(PG_MD5_USER, "");

    client_md5_response("wrong", PG_MD5_USER, salt1234, response);
    assert_int_equal(auth_md5_check(&md5, salt1234, response), 0);

    client_md5_response(PG_MD5_PASSWORD, PG_MD5_USER, salt1234, response);
    assert_int_equal(auth_md5_check(&other_user, salt1234, response), 0); /* user is salted in */
    assert_int_equal(auth_md5_check(&scram, salt1234, response), 0);
    assert_int_equal(auth_md5_check(&empty, salt1234, "md5"), 0);
    assert_int_equal(auth_md5_check(&md5, salt1234, ""), 0);
    assert_int_equal(auth_md5_check(&md5, salt1234, NULL), 0);
    assert_int_equal(auth_md5_check(NULL, salt1234, response), 0);

    /* Truncated, extended, upper-cased responses. */
    snprintf(mangled, sizeof(mangled), "%.34s", response);
    assert_int_equal(auth_md5_check(&md5, salt1234, mangled), 0);
    snprintf(mangled, sizeof(mangled), "%s0", response);
    assert_int_equal(auth_md5_check(&md5, salt1234, mangled), 0);
    strcpy(mangled, response);
    for (char *p = mangled + 3; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    assert_int_equal(auth_md5_check(&md5, salt1234, mangled), 0);
    /* The stored secret itself is not a valid response (pass-the-hash needs the salt). */
    assert_int_equal(auth_md5_check(&md5, salt1234, PG_MD5_SECRET), 0);
}

/* ---- secret kinds and plaintext checks ---- */

static void test_secret_kind(void **state)
{
    (void)state;
    assert_int_equal(auth_secret_kind("hunter2"), WP_SECRET_PLAIN);
    assert_int_equal(auth_secret_kind(""), WP_SECRET_PLAIN);
    assert_int_equal(auth_secret_kind(PG_MD5_SECRET), WP_SECRET_MD5);
    assert_int_equal(auth_secret_kind(PG_SCRAM_SECRET), WP_SECRET_SCRAM);
    /* PostgreSQL's rule: only lowercase hex of the exact length is md5. */
    assert_int_equal(auth_secret_kind("md5F9B14CF31083310A0705A8A08733B4E1"), WP_SECRET_PLAIN);
    assert_int_equal(auth_secret_kind("md5f9b14cf31083310a0705a8a08733b4e"), WP_SECRET_PLAIN);
    assert_int_equal(auth_secret_kind("md5f9b14cf31083310a0705a8a08733b4e1a"), WP_SECRET_PLAIN);
    assert_int_equal(auth_secret_kind("md5g9b14cf31083310a0705a8a08733b4e1"), WP_SECRET_PLAIN);
    assert_int_equal(auth_secret_kind("SCRAM-SHA-256$4096:abc"), WP_SECRET_PLAIN);
}

static void test_plain_check(void **state)
{
    (void)state;
    struct wp_user_secret plain = make_secret("alice", "secret");
    struct wp_user_secret md5 = make_secret(PG_MD5_USER, PG_MD5_SECRET);
    struct wp_user_secret scram = make_secret("bob", PG_SCRAM_SECRET);
    struct wp_user_secret empty = make_secret("eve", "");

    assert_int_equal(auth_plain_check(&plain, "secret"), 1);
    assert_int_equal(auth_plain_check(&plain, "secret "), 0);
    assert_int_equal(auth_plain_check(&plain, "secre"), 0);
    assert_int_equal(auth_plain_check(&plain, "Secret"), 0);
    assert_int_equal(auth_plain_check(&md5, PG_MD5_PASSWORD), 1);
    assert_int_equal(auth_plain_check(&md5, "pW"), 0);
    assert_int_equal(auth_plain_check(&md5, PG_MD5_SECRET), 0); /* the hash is not the password */
    assert_int_equal(auth_plain_check(&scram, "pencil"), 1);
    assert_int_equal(auth_plain_check(&scram, "pencil!"), 0);
    assert_int_equal(auth_plain_check(&empty, ""), 0); /* empty never logs in */
    assert_int_equal(auth_plain_check(&plain, ""), 0);
    assert_int_equal(auth_plain_check(&plain, NULL), 0);
    assert_int_equal(auth_plain_check(NULL, "secret"), 0);
}

/* ---- SCRAM keys from secrets ---- */

/* A full SCRAM exchange driven by the client helper; returns the final result. */
static int scram_login(const struct scram_keys *keys, const char *password)
{
    struct scram_state st;
    char sfirst[SCRAM_SERVER_FIRST_MAX], final[256], proof[64], out[SCRAM_SERVER_FINAL_MAX];
    char err[128];

    memset(&st, 0, sizeof(st));
    assert_int_equal(scram_handle_client_first(&st, keys, "n,,n=,r=clientnonce", 19, sfirst,
                                               sizeof(sfirst), err, sizeof(err)),
                     0);
    int n =
        snprintf(final, sizeof(final), "c=biws,r=%.*s", (int)strcspn(sfirst + 2, ","), sfirst + 2);
    assert_int_equal(
        scram_client_proof(password, "n=,r=clientnonce", sfirst, final, proof, sizeof(proof)), 0);
    snprintf(final + n, sizeof(final) - (size_t)n, ",p=%s", proof);
    return scram_handle_client_final(&st, final, strlen(final), out, sizeof(out), err, sizeof(err));
}

static void test_scram_keys_from_secret(void **state)
{
    (void)state;
    struct scram_keys a, b;
    struct wp_user_secret plain = make_secret("alice", "secret");
    struct wp_user_secret scram = make_secret("bob", PG_SCRAM_SECRET);
    struct wp_user_secret md5 = make_secret(PG_MD5_USER, PG_MD5_SECRET);
    struct wp_user_secret empty = make_secret("eve", "");

    assert_int_equal(auth_scram_keys(&plain, &a), 0);
    assert_int_equal(auth_scram_keys(&plain, &b), 0);
    assert_int_equal(a.salt_len, 16);
    assert_int_equal(a.iterations, 4096);
    assert_memory_not_equal(a.salt, b.salt, 16); /* fresh salt each time */
    assert_int_equal(scram_login(&a, "secret"), 1);
    assert_int_equal(scram_login(&a, "secret2"), 0);

    assert_int_equal(auth_scram_keys(&scram, &a), 0);
    assert_int_equal(scram_login(&a, "pencil"), 1);
    assert_int_equal(scram_login(&a, "secret"), 0);

    assert_int_equal(auth_scram_keys(&md5, &a), -1);
    assert_int_equal(auth_scram_keys(&empty, &a), -1);
}

/* The one rule every password method asks: no entry, or "", never logs in. */
static void test_secret_usable(void **state)
{
    (void)state;
    struct wp_user_secret plain = make_secret("alice", "secret");
    struct wp_user_secret scram = make_secret("bob", PG_SCRAM_SECRET);
    struct wp_user_secret empty = make_secret("eve", "");
    struct wp_user_secret missing = {"mallory", NULL, WP_SECRET_PLAIN};

    assert_int_equal(auth_secret_usable(&plain), 1);
    assert_int_equal(auth_secret_usable(&scram), 1);
    assert_int_equal(auth_secret_usable(&empty), 0);
    assert_int_equal(auth_secret_usable(&missing), 0);
    assert_int_equal(auth_secret_usable(NULL), 0);
}

static void test_random(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    assert_int_equal(auth_random(a, sizeof(a)), 0);
    assert_int_equal(auth_random(b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_int_equal(auth_random(a, 0), 0);
}

/* ---- userlist ---- */

static void test_userlist_load(void **state)
{
    (void)state;
    struct wp_userlist list;
    char err[256] = "";
    const struct wp_user_secret *u;
    const char *content = "; comment\n"
                          "# another comment\n"
                          "\n"
                          "   \t\n"
                          "\"alice\" \"secret\"\n"
                          "  \"bob\"\t\"" PG_SCRAM_SECRET "\" \"extra\" fields ignored\n"
                          "\"carol\" \"" PG_MD5_SECRET "\"\r\n"
                          "\"o\"\"brien\" \"it\"\"s \"\"quoted\"\"\"\n"
                          "\"semi;colon\" \"#not a comment\"\n"
                          "\"trust-only\" \"\"\n"
                          "\"alice\" \"newer\"\n"
                          "\"last\"\"x\"\"\" \"no newline at end\"";

    assert_int_equal(load_string(content, &list, err, sizeof(err)), 0);
    assert_int_equal(list.n, 7); /* alice once: the later line replaced the first */

    u = auth_userlist_find(&list, "alice");
    assert_non_null(u);
    assert_string_equal(u->secret, "newer");
    assert_int_equal(u->kind, WP_SECRET_PLAIN);
    u = auth_userlist_find(&list, "bob");
    assert_non_null(u);
    assert_string_equal(u->secret, PG_SCRAM_SECRET);
    assert_int_equal(u->kind, WP_SECRET_SCRAM);
    u = auth_userlist_find(&list, "carol");
    assert_non_null(u);
    assert_string_equal(u->secret, PG_MD5_SECRET); /* CR stripped */
    assert_int_equal(u->kind, WP_SECRET_MD5);
    u = auth_userlist_find(&list, "o\"brien");
    assert_non_null(u);
    assert_string_equal(u->secret, "it\"s \"quoted\"");
    u = auth_userlist_find(&list, "semi;colon");
    assert_non_null(u);
    assert_string_equal(u->secret, "#not a comment");
    u = auth_userlist_find(&list, "trust-only");
    assert_non_null(u);
    assert_string_equal(u->secret, "");
    u = auth_userlist_find(&list, "last\"x\"");
    assert_non_null(u);
    assert_string_equal(u->secret, "no newline at end");

    assert_null(auth_userlist_find(&list, "mallory"));
    assert_null(auth_userlist_find(&list, "Alice"));
    assert_null(auth_userlist_find(&list, NULL));
    auth_userlist_free(&list);
    assert_int_equal(list.n, 0);
    assert_null(list.entries);
    auth_userlist_free(&list); /* twice is harmless */
}

static void test_userlist_empty_file(void **state)
{
    (void)state;
    struct wp_userlist list;
    char err[256];

    assert_int_equal(load_string("", &list, err, sizeof(err)), 0);
    assert_int_equal(list.n, 0);
    assert_null(auth_userlist_find(&list, "x"));
    auth_userlist_free(&list);
}

/* Each bad file: expected "line: message" suffix, and a secret that must not leak. */
static void expect_bad(const char *content, size_t len, const char *want, const char *secret)
{
    struct wp_userlist list = {NULL, 0};
    char err[256] = "", expect[300];
    const char *path = write_temp(content, len);

    assert_int_equal(auth_userlist_load(path, &list, err, sizeof(err)), -1);
    snprintf(expect, sizeof(expect), "%s:%s", path, want);
    assert_string_equal(err, expect);
    if (secret)
        assert_null(strstr(err, secret));
    assert_int_equal(list.n, 0); /* untouched on failure */
    unlink(path);
}

static void test_userlist_bad_lines(void **state)
{
    (void)state;
    const char *good = "; header\n\"alice\" \"topsecret\"\n";
    char buf[512];

#define BAD(line, want)                                                                            \
    do {                                                                                           \
        snprintf(buf, sizeof(buf), "%s%s\n\"zed\" \"later\"\n", good, line);                       \
        expect_bad(buf, strlen(buf), want, "topsecret");                                           \
    } while (0)

    BAD("alice secret", "3: expected a quoted user name");
    BAD("'alice' 'secret'", "3: expected a quoted user name");
    BAD("\"alice\" secret", "3: expected a quoted secret after user \"alice\"");
    BAD("\"alice\"", "3: expected a quoted secret after user \"alice\"");
    BAD("\"alice", "3: unterminated quoted user name");
    BAD("\"alice\" \"hunter2", "3: unterminated quoted secret");
    BAD("\"a\"\"\" \"hunter2\"\"", "3: unterminated quoted secret");
    BAD("\"\" \"hunter2\"", "3: empty user name");
    BAD("\"bob\" \"SCRAM-SHA-256$4096:c2FsdA==$hunter2:hunter2\"",
        "3: malformed SCRAM secret for user \"bob\"");
#undef BAD

    /* The bad secret itself never shows up in the message. */
    expect_bad("\"bob\" \"SCRAM-SHA-256$4096:hunter2\"\n", 34,
               "1: malformed SCRAM secret for user \"bob\"", "hunter2");
    expect_bad("\"bob\" \"hunter2\n", 15, "1: unterminated quoted secret", "hunter2");

    /* A NUL byte inside a line. */
    static const char nul[] = "\"alice\" \"a\0b\"\n";
    expect_bad(nul, sizeof(nul) - 1, "1: line contains a NUL byte", NULL);

    /* A line longer than the limit. */
    size_t big = 70000;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, 'x', big);
    huge[0] = huge[1] = '"';
    huge[big - 1] = '\n';
    huge[big] = '\0';
    expect_bad(huge, big, "1: line too long (over 65536 bytes)", NULL);
    free(huge);
}

static void test_userlist_missing_file(void **state)
{
    (void)state;
    struct wp_userlist list = {NULL, 0};
    char err[256];

    assert_int_equal(
        auth_userlist_load("/nonexistent/warmpool/userlist.txt", &list, err, sizeof(err)), -1);
    assert_string_equal(err, "/nonexistent/warmpool/userlist.txt: cannot open: No such file "
                             "or directory");
}

/* The shipped example must load and mean what its comments say. */
static void test_example_userlist(void **state)
{
    (void)state;
    struct wp_userlist list;
    char err[256], response[36];
    const struct wp_user_secret *u;

    if (access("conf/userlist.txt", R_OK) != 0)
        skip(); /* not run from the repository root */
    assert_int_equal(auth_userlist_load("conf/userlist.txt", &list, err, sizeof(err)), 0);
    assert_int_equal(list.n, 4);
    u = auth_userlist_find(&list, "alice");
    assert_non_null(u);
    assert_int_equal(auth_plain_check(u, "secret"), 1);
    u = auth_userlist_find(&list, "carol");
    assert_non_null(u);
    assert_int_equal(u->kind, WP_SECRET_MD5);
    client_md5_response("pw", "carol", salt1234, response);
    assert_int_equal(auth_md5_check(u, salt1234, response), 1);
    u = auth_userlist_find(&list, "bob");
    assert_non_null(u);
    assert_int_equal(u->kind, WP_SECRET_SCRAM);
    assert_int_equal(auth_plain_check(u, "pencil"), 1);
    u = auth_userlist_find(&list, "o\"brien");
    assert_non_null(u);
    assert_int_equal(auth_plain_check(u, "it\"s"), 1);
    auth_userlist_free(&list);
}

/* auth_userlist_load_string reads text exactly as auth_userlist_load reads a file. */
static void test_userlist_load_string(void **state)
{
    (void)state;
    static const char nul[] = "\"alice\" \"a\0b\"\n";
    const struct {
        const char *text;
        size_t len;
    } cases[] = {
        {"", 0},
        {"\"alice\" \"secret\"\n; note\n\"bob\" \"md5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", 67},
        {"\"alice\" \"secret\"\n\"bob\n", 22},
        {nul, sizeof nul - 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct wp_userlist from_file = {NULL, 0}, from_mem = {NULL, 0};
        char err_file[256] = "", err_mem[256] = "";
        const char *path = write_temp(cases[i].text, cases[i].len);
        int rc_file = auth_userlist_load(path, &from_file, err_file, sizeof err_file);
        int rc_mem = auth_userlist_load_string(path, cases[i].text, cases[i].len, &from_mem,
                                               err_mem, sizeof err_mem);
        unlink(path);
        assert_int_equal(rc_mem, rc_file);
        assert_string_equal(err_mem, err_file);
        assert_int_equal(from_mem.n, from_file.n);
        for (int j = 0; j < from_mem.n; j++) {
            assert_string_equal(from_mem.entries[j].user, from_file.entries[j].user);
            assert_string_equal(from_mem.entries[j].secret, from_file.entries[j].secret);
        }
        auth_userlist_free(&from_file);
        auth_userlist_free(&from_mem);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_md5_secret_matches_postgres),
        cmocka_unit_test(test_md5_check),
        cmocka_unit_test(test_md5_check_rejects),
        cmocka_unit_test(test_secret_kind),
        cmocka_unit_test(test_plain_check),
        cmocka_unit_test(test_scram_keys_from_secret),
        cmocka_unit_test(test_secret_usable),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_userlist_load),
        cmocka_unit_test(test_userlist_empty_file),
        cmocka_unit_test(test_userlist_bad_lines),
        cmocka_unit_test(test_userlist_missing_file),
        cmocka_unit_test(test_example_userlist),
        cmocka_unit_test(test_userlist_load_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
