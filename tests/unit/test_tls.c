/*
 * test_tls — unit tests for pooler/tls.c: client_tls_protocols parsing, sslmode names,
 * and building the client context from files (good ones, missing ones, a key that
 * does not match, a failed rebuild that keeps the running context). The certificates
 * are made here with OpenSSL's API, so no files from the repository are needed.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
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
#include "warmpool/tls.h"

static void test_protocols(void **state)
{
    (void)state;
    unsigned mask = 0;
    char err[256];
    assert_int_equal(tls_parse_protocols("secure", &mask, err, sizeof err), 0);
    assert_int_equal(mask, WP_TLS_V1_2 | WP_TLS_V1_3);
    assert_int_equal(tls_parse_protocols("tlsv1.2,tlsv1.3", &mask, err, sizeof err), 0);
    assert_int_equal(mask, WP_TLS_V1_2 | WP_TLS_V1_3);
    assert_int_equal(tls_parse_protocols(" TLSv1.3 ", &mask, err, sizeof err), 0);
    assert_int_equal(mask, WP_TLS_V1_3);
    assert_int_equal(tls_parse_protocols("all", &mask, err, sizeof err), 0);
    assert_int_equal(mask, WP_TLS_V1_0 | WP_TLS_V1_1 | WP_TLS_V1_2 | WP_TLS_V1_3);
    assert_int_equal(tls_parse_protocols("tlsv1.0 tlsv1.3", &mask, err, sizeof err), 0);
    assert_int_equal(mask, WP_TLS_V1_0 | WP_TLS_V1_3);
    assert_int_equal(tls_parse_protocols("default", &mask, err, sizeof err), 0);
    assert_int_equal(mask, WP_TLS_V1_2 | WP_TLS_V1_3);

    assert_int_equal(tls_parse_protocols("tlsv1.4", &mask, err, sizeof err), -1);
    assert_string_equal(err, "unknown protocol \"tlsv1.4\" (use tlsv1.0, tlsv1.1, tlsv1.2, "
                             "tlsv1.3, secure or all)");
    assert_int_equal(tls_parse_protocols(" , ", &mask, err, sizeof err), -1);
    assert_string_equal(err, "no protocol given (use e.g. secure or tlsv1.2,tlsv1.3)");
    assert_int_equal(tls_parse_protocols("tlsv1.2x", &mask, err, sizeof err), -1);
}

static void test_sslmode_names(void **state)
{
    (void)state;
    assert_string_equal(tls_sslmode_names[WP_SSLMODE_DISABLE], "disable");
    assert_string_equal(tls_sslmode_names[WP_SSLMODE_REQUIRE], "require");
    assert_string_equal(tls_sslmode_names[WP_SSLMODE_VERIFY_FULL], "verify-full");
    assert_null(tls_sslmode_names[WP_SSLMODE_VERIFY_FULL + 1]);
}

/* ---------------------------------------------------------------- context from files */

static char dir[] = "/tmp/warmpool-test-tls-XXXXXX";
static char key_path[128], cert_path[128], other_key_path[128], junk_path[128];

static EVP_PKEY *write_key(const char *path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    return key;
}

static void write_self_signed(const char *path, EVP_PKEY *key)
{
    X509 *cert = X509_new();
    assert_non_null(cert);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    X509_set_pubkey(cert, key);
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, cert), 1);
    fclose(f);
    X509_free(cert);
}

static int setup_files(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(key_path, sizeof key_path, "%s/key.pem", dir);
    snprintf(cert_path, sizeof cert_path, "%s/cert.pem", dir);
    snprintf(other_key_path, sizeof other_key_path, "%s/other.pem", dir);
    snprintf(junk_path, sizeof junk_path, "%s/junk.pem", dir);
    EVP_PKEY *key = write_key(key_path);
    write_self_signed(cert_path, key);
    EVP_PKEY_free(key);
    EVP_PKEY_free(write_key(other_key_path));
    FILE *f = fopen(junk_path, "w");
    fputs("not a certificate\n", f);
    fclose(f);
    return 0;
}

static int teardown_files(void **state)
{
    (void)state;
    tls_client_shutdown();
    unlink(key_path);
    unlink(cert_path);
    unlink(other_key_path);
    unlink(junk_path);
    rmdir(dir);
    return 0;
}

static void tls_config(struct wp_config *cfg, int mode, const char *key, const char *cert,
                       const char *ca)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->client_tls_sslmode = mode;
    cfg->client_tls_key_file = (char *)key;
    cfg->client_tls_cert_file = (char *)cert;
    cfg->client_tls_ca_file = (char *)ca;
    cfg->client_tls_protocols = (char *)"secure";
    cfg->client_tls_ciphers = (char *)"default";
}

static void expect_setup_error(const struct wp_config *cfg, const char *want)
{
    char err[512] = "";
    assert_int_equal(tls_client_setup(cfg, err, sizeof err), -1);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
}

static void test_client_context(void **state)
{
    (void)state;
    struct wp_config cfg;
    char err[512], want[256];

    tls_config(&cfg, WP_SSLMODE_REQUIRE, key_path, cert_path, NULL);
    assert_int_equal(tls_client_setup(&cfg, err, sizeof err), 0);
    assert_true(tls_client_available());

    /* A bad rebuild (a reload) fails with the file's name and keeps the context. */
    tls_config(&cfg, WP_SSLMODE_REQUIRE, key_path, "/nonexistent/cert.pem", NULL);
    expect_setup_error(&cfg, "client_tls_cert_file /nonexistent/cert.pem: No such file");
    assert_true(tls_client_available());

    tls_config(&cfg, WP_SSLMODE_REQUIRE, other_key_path, cert_path, NULL);
    snprintf(want, sizeof want, "client_tls_key_file %s: key values mismatch", other_key_path);
    expect_setup_error(&cfg, want);

    tls_config(&cfg, WP_SSLMODE_REQUIRE, junk_path, cert_path, NULL);
    snprintf(want, sizeof want, "client_tls_key_file %s: ", junk_path);
    expect_setup_error(&cfg, want);

    tls_config(&cfg, WP_SSLMODE_VERIFY_CA, key_path, cert_path, junk_path);
    snprintf(want, sizeof want, "client_tls_ca_file %s: ", junk_path);
    expect_setup_error(&cfg, want);

    tls_config(&cfg, WP_SSLMODE_REQUIRE, key_path, cert_path, NULL);
    cfg.client_tls_ciphers = (char *)"NO-SUCH-CIPHER";
    expect_setup_error(&cfg, "client_tls_ciphers \"NO-SUCH-CIPHER\": ");
    assert_true(tls_client_available());

    /* The self-signed certificate doubles as a CA file. */
    tls_config(&cfg, WP_SSLMODE_VERIFY_FULL, key_path, cert_path, cert_path);
    assert_int_equal(tls_client_setup(&cfg, err, sizeof err), 0);

    tls_config(&cfg, WP_SSLMODE_DISABLE, NULL, NULL, NULL);
    assert_int_equal(tls_client_setup(&cfg, err, sizeof err), 0);
    assert_false(tls_client_available());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocols),
        cmocka_unit_test(test_sslmode_names),
        cmocka_unit_test_setup_teardown(test_client_context, setup_files, teardown_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
