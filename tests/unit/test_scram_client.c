/*
 * Unit tests for scram_client.c: the client side of SCRAM-SHA-256 against RFC 7677's
 * test vector, pass-through keys (a ClientKey recovered from a proof logs in like the
 * password), server-first-messages that are malformed or hostile, the server's final
 * signature, and md5 answers from a password and from a stored md5 hash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/scram_client.h"

/* RFC 7677, section 3. */
#define RFC_NONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_FIRST                                                                           \
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_FINAL                                                                                  \
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfM"  \
    "Hgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static void rfc_exchange(struct scram_client *sc, struct scram_client_keys *keys)
{
    char first[200], err[200] = "";
    assert_int_equal(scram_client_first(sc, "user", RFC_NONCE, first, sizeof first), 0);
    assert_string_equal(first, "n,,n=user,r=" RFC_NONCE);
    assert_int_equal(scram_client_read_server_first(sc, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST),
                                                    err, sizeof err),
                     0);
    assert_int_equal(sc->iterations, 4096);
    assert_int_equal(sc->salt_len, 16);
    assert_int_equal(scram_client_derive("pencil", sc->salt, sc->salt_len, sc->iterations, keys),
                     0);
}

static void test_rfc7677_vector(void **state)
{
    (void)state;
    struct scram_client sc;
    struct scram_client_keys keys;
    char final[400], err[200] = "";
    rfc_exchange(&sc, &keys);
    assert_int_equal(scram_client_final(&sc, &keys, final, sizeof final), 0);
    assert_string_equal(final, RFC_FINAL);
    assert_int_equal(scram_client_check_server_final(&sc, &keys, RFC_SERVER_FINAL,
                                                     strlen(RFC_SERVER_FINAL), err, sizeof err),
                     1);
    /* A server that does not know the ServerKey: refused. */
    const char *forged = "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    assert_int_equal(
        scram_client_check_server_final(&sc, &keys, forged, strlen(forged), err, sizeof err), 0);
    assert_true(scram_client_keys_match(&keys, sc.salt, sc.salt_len, 4096));
    assert_false(scram_client_keys_match(&keys, sc.salt, sc.salt_len, 4097));
    assert_int_equal(scram_client_final(&sc, &keys, final, 20), -1); /* too small */
}

/* A pooler that checked RFC 7677's proof against the secret recovers the ClientKey;
   with it and the secret's ServerKey it logs in exactly as the password would. */
static void test_client_key_from_proof(void **state)
{
    (void)state;
    struct scram_client sc;
    struct scram_client_keys keys, passed;
    char final[400], auth[1000];
    uint8_t stored[SCRAM_KEY_LEN], proof[40], recovered[SCRAM_KEY_LEN];
    rfc_exchange(&sc, &keys);
    struct scram_keys secret;
    assert_int_equal(scram_keys_from_password("pencil", sc.salt, sc.salt_len, 4096, &secret), 0);
    memcpy(stored, secret.stored_key, SCRAM_KEY_LEN);
    assert_int_equal(
        scram_b64_decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", 44, proof, sizeof proof),
        SCRAM_KEY_LEN);
    snprintf(auth, sizeof auth, "%s,%s,%s", sc.client_first_bare, sc.server_first,
             sc.final_without_proof);
    assert_int_equal(scram_client_key_from_proof(stored, proof, auth, strlen(auth), recovered), 0);
    assert_memory_equal(recovered, keys.client_key, SCRAM_KEY_LEN);
    scram_client_keys_from_login(&secret, recovered, &passed);
    assert_memory_equal(passed.server_key, keys.server_key, SCRAM_KEY_LEN);
    assert_int_equal(scram_client_final(&sc, &passed, final, sizeof final), 0);
    assert_string_equal(final, RFC_FINAL);
    /* A wrong proof recovers nothing. */
    proof[0] ^= 1;
    assert_int_equal(scram_client_key_from_proof(stored, proof, auth, strlen(auth), recovered), -1);
}

static void expect_bad_first(const char *msg, size_t len, const char *reason)
{
    struct scram_client sc;
    char first[200], err[200] = "";
    assert_int_equal(scram_client_first(&sc, "", RFC_NONCE, first, sizeof first), 0);
    assert_int_equal(scram_client_read_server_first(&sc, msg, len, err, sizeof err), -1);
    if (!strstr(err, reason))
        fail_msg("'%.*s': error '%s' lacks '%s'", (int)len, msg, err, reason);
}

static void test_server_first_malformed(void **state)
{
    (void)state;
#define S ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    expect_bad_first("", 0, "empty");
    expect_bad_first("r=rOprNGfwEbeRWgbNEkqO\0x,s=AA==,i=1", 35, "not text");
    expect_bad_first("m=ext,r=" RFC_NONCE "x" S, strlen("m=ext,r=" RFC_NONCE "x" S), "nonce");
    expect_bad_first("r=" RFC_NONCE S, strlen("r=" RFC_NONCE S), "does not extend");
    expect_bad_first("r=other" S, strlen("r=other" S), "does not extend");
    expect_bad_first("r=" RFC_NONCE "x y" S, strlen("r=" RFC_NONCE "x y" S), "invalid characters");
    expect_bad_first("r=" RFC_NONCE "x,i=4096", strlen("r=" RFC_NONCE "x,i=4096"), "salt");
    expect_bad_first("r=" RFC_NONCE "x,s=!!!!,i=4096", strlen("r=" RFC_NONCE "x,s=!!!!,i=4096"),
                     "salt");
    const char *cases[] = {",s=AAAA",       ",s=AAAA,i=",           ",s=AAAA,i=0", ",s=AAAA,i=-1",
                           ",s=AAAA,i=12a", ",s=AAAA,i=9999999999", ",s=AAAA,x=1"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char msg[200];
        int n = snprintf(msg, sizeof msg, "r=%sx%s", RFC_NONCE, cases[i]);
        expect_bad_first(msg, (size_t)n, "iteration count");
    }
    char big[600];
    memset(big, 'A', sizeof big);
    expect_bad_first(big, sizeof big, "too long");
    /* Every prefix of a good message: an error, never a crash. */
    for (size_t len = 0; len < strlen(RFC_SERVER_FIRST) - 4; len++) {
        struct scram_client sc;
        char first[200], err[200] = "";
        scram_client_first(&sc, "", RFC_NONCE, first, sizeof first);
        assert_int_equal(
            scram_client_read_server_first(&sc, RFC_SERVER_FIRST, len, err, sizeof err), -1);
        assert_true(err[0] != '\0');
    }
}

static void test_server_final_malformed(void **state)
{
    (void)state;
    struct scram_client sc;
    struct scram_client_keys keys;
    char err[200] = "";
    rfc_exchange(&sc, &keys);
    const char *bad[] = {"", "v=", "v=AAAA", "x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
                         "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=AAAA"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(
            scram_client_check_server_final(&sc, &keys, bad[i], strlen(bad[i]), err, sizeof err),
            -1);
    assert_int_equal(
        scram_client_check_server_final(&sc, &keys, "e=invalid-proof", 15, err, sizeof err), -1);
    assert_non_null(strstr(err, "invalid-proof"));
}

static void test_random_nonce(void **state)
{
    (void)state;
    struct scram_client a, b;
    char fa[200], fb[200];
    assert_int_equal(scram_client_first(&a, "", NULL, fa, sizeof fa), 0);
    assert_int_equal(scram_client_first(&b, "", NULL, fb, sizeof fb), 0);
    assert_int_equal(strncmp(fa, "n,,n=,r=", 8), 0);
    assert_int_equal(strlen(a.client_nonce), 24);
    assert_string_not_equal(fa, fb);
}

static void test_md5(void **state)
{
    (void)state;
    const uint8_t salt[4] = {1, 2, 3, 4};
    char out[36];
    const char *want = "md5bb41a296aab6baccb36ff243a562abff";
    assert_int_equal(scram_md5_response_from_password("secret", "postgres", salt, out), 0);
    assert_string_equal(out, want);
    assert_int_equal(
        scram_md5_response_from_secret("md553f48b7c4b76a86ce72276c5755f217d", salt, out), 0);
    assert_string_equal(out, want);
    assert_int_equal(
        scram_md5_response_from_secret("md553f48b7c4b76a86ce72276c5755f217", salt, out), -1);
    assert_int_equal(
        scram_md5_response_from_secret("md553F48B7C4B76A86CE72276C5755F217D", salt, out), -1);
    assert_int_equal(scram_md5_response_from_secret("secret", salt, out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7677_vector),
        cmocka_unit_test(test_client_key_from_proof),
        cmocka_unit_test(test_server_first_malformed),
        cmocka_unit_test(test_server_final_malformed),
        cmocka_unit_test(test_random_nonce),
        cmocka_unit_test(test_md5),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
