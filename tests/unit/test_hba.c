/*
 * Unit tests for hba.c: rule syntax (types, lists, quoting, CIDR v4/v6, comments),
 * first-match-wins, hostssl/hostnossl against the TLS flag, local vs TCP, cert only
 * on hostssl lines, and parse errors that name file:line.
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

#include "warmpool/hba.h"

static const char rules_text[] = "# comment line\n"
                                 "\n"
                                 "local   all        all                  trust\n"
                                 "host    app,shop   alice  10.0.0.0/8    md5   # trailing\n"
                                 "hostssl all        bob    all           scram-sha-256\n"
                                 "hostnossl all      bob    all           reject\n"
                                 "host    \"all\"    carol  192.168.1.7   password\n"
                                 "host    all        all    ::1/128       trust\n"
                                 "hostssl all        dave   2001:db8::/32 cert\n";

static struct wp_hba load_rules(void)
{
    struct wp_hba hba;
    char err[512];
    int rc = hba_parse(rules_text, "hba.conf", &hba, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(hba.n, 7);
    return hba;
}

static const struct hba_rule *match(const struct wp_hba *hba, const char *addr, int tls,
                                    const char *db, const char *user)
{
    struct hba_peer peer;
    assert_int_equal(hba_peer_from_addr(addr, tls, &peer), 0);
    return hba_match(hba, &peer, db, user);
}

static void test_parse_and_match(void **state)
{
    (void)state;
    struct wp_hba hba = load_rules();
    const struct hba_rule *r = match(&hba, "unix", 0, "anything", "anyone");
    assert_non_null(r);
    assert_int_equal(r->method, HBA_TRUST);
    assert_int_equal(r->line, 3);

    r = match(&hba, "10.20.30.40:5000", 0, "shop", "alice");
    assert_non_null(r);
    assert_int_equal(r->method, HBA_MD5);
    assert_int_equal(r->line, 4);
    /* Outside the network, other database, other user: no rule. */
    assert_null(match(&hba, "11.0.0.1:5000", 0, "shop", "alice"));
    assert_null(match(&hba, "10.0.0.1:5000", 0, "other", "alice"));
    assert_null(match(&hba, "10.0.0.1:5000", 0, "app", "alicia"));
    hba_free(&hba);
}

static void test_tls_types(void **state)
{
    (void)state;
    struct wp_hba hba = load_rules();
    const struct hba_rule *r = match(&hba, "10.0.0.1:1", 1, "app", "bob");
    assert_non_null(r);
    assert_int_equal(r->method, HBA_SCRAM);
    r = match(&hba, "10.0.0.1:1", 0, "app", "bob");
    assert_non_null(r);
    assert_int_equal(r->method, HBA_REJECT);
    hba_free(&hba);
    /* local rules never match TCP */
    char err[128];
    assert_int_equal(hba_parse("local all all trust\n", "l", &hba, err, sizeof err), 0);
    assert_null(match(&hba, "127.0.0.1:1", 0, "x", "y"));
    assert_non_null(match(&hba, "unix", 0, "x", "y"));
    hba_free(&hba);
}

static void test_quoted_all_is_a_name(void **state)
{
    (void)state;
    struct wp_hba hba = load_rules();
    assert_null(match(&hba, "192.168.1.7:9", 0, "app", "carol"));
    const struct hba_rule *r = match(&hba, "192.168.1.7:9", 0, "all", "carol");
    assert_non_null(r);
    assert_int_equal(r->method, HBA_PASSWORD);
    /* a bare address is a single host */
    assert_null(match(&hba, "192.168.1.8:9", 0, "all", "carol"));
    hba_free(&hba);
}

static void test_ipv6(void **state)
{
    (void)state;
    struct wp_hba hba = load_rules();
    const struct hba_rule *r = match(&hba, "::1:6000", 0, "db", "zed");
    assert_non_null(r);
    assert_int_equal(r->line, 8);
    r = match(&hba, "2001:db8:1::5:6000", 1, "db", "dave");
    assert_non_null(r);
    assert_int_equal(r->method, HBA_CERT);
    assert_null(match(&hba, "2001:db8:1::5:6000", 0, "db", "dave")); /* hostssl */
    assert_null(match(&hba, "2001:db9::5:6000", 0, "db", "dave"));
    /* IPv4-mapped addresses are matched as IPv4 */
    r = match(&hba, "::ffff:10.1.1.1:6000", 0, "app", "alice");
    assert_non_null(r);
    assert_int_equal(r->line, 4);
    hba_free(&hba);
}

static void test_host_all_needs_tcp(void **state)
{
    (void)state;
    struct wp_hba hba;
    char err[256];
    assert_int_equal(hba_parse("host all all all trust\n", "h", &hba, err, sizeof err), 0);
    assert_null(match(&hba, "unix", 0, "d", "u"));
    assert_non_null(match(&hba, "1.2.3.4:5", 0, "d", "u"));
    hba_free(&hba);
}

static void expect_error(const char *text, const char *needle)
{
    struct wp_hba hba = {0};
    char err[512];
    assert_int_equal(hba_parse(text, "f.conf", &hba, err, sizeof err), -1);
    if (!strstr(err, needle))
        fprintf(stderr, "error was: %s\nexpected: %s\n", err, needle);
    assert_non_null(strstr(err, needle));
    assert_int_equal(hba.n, 0);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("local all all trust\nhosty all all all trust\n", "f.conf:2: invalid connection");
    expect_error("host all all 10.0.0.0/33 trust\n", "f.conf:1: CIDR prefix");
    expect_error("host all all 10.0.0.0/x trust\n", "f.conf:1: invalid CIDR");
    expect_error("host all all ::1/129 trust\n", "f.conf:1: CIDR prefix");
    expect_error("host all all nothost trust\n", "f.conf:1: invalid address");
    expect_error("host all all all ident\n", "f.conf:1: invalid method");
    expect_error("local all all 10.0.0.0/8 trust\n", "f.conf:1: local rules take");
    expect_error("host all all trust\n", "f.conf:1: host rules take");
    expect_error("host all all all trust extra\n", "f.conf:1: too many fields");
    expect_error("host \"app all all trust\n", "f.conf:1: unterminated");
    expect_error("host app,,b all all trust\n", "f.conf:1: empty name");
    expect_error("host app, all all trust\n", "f.conf:1: empty name");
    /* cert can only ever succeed over TLS, as in PostgreSQL */
    expect_error("host all all all cert\n", "f.conf:1: cert authentication is only supported on "
                                            "hostssl lines");
    expect_error("local all all cert\n", "f.conf:1: cert authentication is only supported");
    expect_error("hostnossl all all all cert\n", "f.conf:1: cert authentication is only");
    /* every broken line is listed */
    struct wp_hba hba;
    char err[512];
    assert_int_equal(hba_parse("bad\nlocal all all trust\nworse x\n", "g", &hba, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "g:1:"));
    assert_non_null(strstr(err, "g:3:"));
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/wp_hba_testXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "local all all md5\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    struct wp_hba hba;
    char err[256];
    assert_int_equal(hba_load(path, &hba, err, sizeof err), 0);
    assert_int_equal(hba.n, 1);
    assert_int_equal(hba.loaded, 1);
    hba_free(&hba);
    unlink(path);
    assert_int_equal(hba_load(path, &hba, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
}

static void test_bad_peer(void **state)
{
    (void)state;
    struct hba_peer peer;
    assert_int_equal(hba_peer_from_addr("garbage", 0, &peer), -1);
    assert_int_equal(hba_peer_from_addr("", 0, &peer), -1);
    assert_int_equal(hba_method_name(HBA_SCRAM)[0], 's');
}

static void test_first_line_with(void **state)
{
    (void)state;
    struct wp_hba hba = load_rules();
    assert_int_equal(hba_first_line_with(&hba, HBA_CERT), 9);
    assert_int_equal(hba_first_line_with(&hba, HBA_TRUST), 3);
    assert_int_equal(hba_first_line_with(&hba, HBA_MD5), 4);
    hba_free(&hba);
    char err[256];
    assert_int_equal(hba_parse("host all all all md5\n", "h", &hba, err, sizeof err), 0);
    assert_int_equal(hba_first_line_with(&hba, HBA_CERT), 0);
    hba_free(&hba);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_match),
        cmocka_unit_test(test_tls_types),
        cmocka_unit_test(test_quoted_all_is_a_name),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_host_all_needs_tcp),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_bad_peer),
        cmocka_unit_test(test_first_line_with),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
