/*
 * Unit tests for scram.c: base64, secrets, key derivation, and whole exchanges against
 * RFC 7677's test vector and a secret produced by a real PostgreSQL 15 server, plus the
 * malformed and hostile inputs an unauthenticated client can send.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "warmpool/scram.h"

/* RFC 7677, section 3. */
#define RFC_PASSWORD "pencil"
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_CLIENT_FIRST_BARE "n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_SERVER_FIRST                                                                           \
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_FINAL_NO_PROOF "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_PROOF "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/*
 * From PostgreSQL 15: SET password_encryption = 'scram-sha-256';
 * CREATE ROLE t PASSWORD 'pencil'; SELECT rolpassword FROM pg_authid WHERE rolname = 't';
 */
#define PG_PASSWORD "pencil"
#define PG_SECRET                                                                                  \
    "SCRAM-SHA-256$4096:PYlv2olrcq2ysNXroPTcxw==$S1UDhRwItgmolVGG4UaHh1Q/iOU2c1CxkkeQNr4tCVU=:"    \
    "XWNucLLulpjTDDyMXmlHdPDQE8TK4Q3Y0gFwJ+IxtDk="
/* Same, with a password full of characters that need care in the userlist format. */
#define PG_PASSWORD2 "S3cr\"et;#x"
#define PG_SECRET2                                                                                 \
    "SCRAM-SHA-256$4096:yofL6+2xPYJ2WwaaYHSJ8A==$UwuWYo3XxoKk9nc2XiHTDAupLo/19rZGL21tlyVoxG4=:"    \
    "fPbM9m13c84XJd5R6u5x1duX6QVRs1gH86qP9qXUBC0="

/* ---- helpers ---- */

static void rfc_keys(struct scram_keys *keys)
{
    uint8_t salt[64];
    int n = scram_b64_decode(RFC_SALT, strlen(RFC_SALT), salt, sizeof(salt));
    assert_int_equal(n, 16);
    assert_int_equal(scram_keys_from_password(RFC_PASSWORD, salt, (size_t)n, 4096, keys), 0);
}

/* Run client-first and return the server-first message via out. */
static void start(struct scram_state *st, const struct scram_keys *keys, const char *first,
                  char *out, size_t outlen)
{
    char err[128];
    memset(st, 0, sizeof(*st));
    assert_int_equal(
        scram_handle_client_first(st, keys, first, strlen(first), out, outlen, err, sizeof(err)),
        0);
    assert_int_equal(st->step, 1);
}

/* A complete client: returns what scram_handle_client_final returned; v= in server_final. */
static int exchange(const struct scram_keys *keys, const char *password, const char *gs2,
                    const char *cbind, char *server_final, size_t sflen)
{
    struct scram_state st;
    char first[128], sfirst[SCRAM_SERVER_FIRST_MAX], final[512], proof[64], err[128];
    const char *bare = "n=,r=fyko+d2lbbFgONRv9qkxdawL";
    const char *nonce = strchr(bare, 'r') + 2;

    snprintf(first, sizeof(first), "%s%s", gs2, bare);
    start(&st, keys, first, sfirst, sizeof(sfirst));
    assert_memory_equal(sfirst, "r=", 2);
    assert_memory_equal(sfirst + 2, nonce, strlen(nonce));

    const char *full_nonce = sfirst + 2;
    size_t full_len = strcspn(full_nonce, ",");
    int n = snprintf(final, sizeof(final), "c=%s,r=%.*s", cbind, (int)full_len, full_nonce);
    assert_int_equal(scram_client_proof(password, bare, sfirst, final, proof, sizeof(proof)), 0);
    snprintf(final + n, sizeof(final) - (size_t)n, ",p=%s", proof);
    int rc =
        scram_handle_client_final(&st, final, strlen(final), server_final, sflen, err, sizeof(err));
    assert_int_equal(st.step, 2);
    scram_state_clear(&st);
    return rc;
}

/* ---- base64 ---- */

static void test_b64_known(void **state)
{
    (void)state;
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char out[16];
    uint8_t back[16];

    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        size_t n = strlen(plain[i]);
        assert_int_equal(scram_b64_encode((const uint8_t *)plain[i], n, out, sizeof(out)),
                         (int)strlen(enc[i]));
        assert_string_equal(out, enc[i]);
        assert_int_equal(scram_b64_decode(enc[i], strlen(enc[i]), back, sizeof(back)), (int)n);
        assert_memory_equal(back, plain[i], n);
    }
}

static void test_b64_roundtrip_binary(void **state)
{
    (void)state;
    uint8_t in[64], back[64];
    char out[100];

    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i * 37 + 250);
    for (size_t n = 0; n <= sizeof(in); n++) {
        int e = scram_b64_encode(in, n, out, sizeof(out));
        assert_int_equal(e, (int)((n + 2) / 3 * 4));
        assert_int_equal(scram_b64_decode(out, (size_t)e, back, sizeof(back)), (int)n);
        assert_memory_equal(back, in, n);
    }
}

static void test_b64_rejects(void **state)
{
    (void)state;
    uint8_t out[16];
    char small[8];
    static const char *bad[] = {
        "Zg=",      /* not a whole quartet */
        "Zg",       /* same */
        "Z===",     /* too much padding */
        "====",     /* all padding */
        "Zg==Zm8=", /* padding before the end */
        "Zm 9",     /* whitespace */
        "Zm9\n",    /* newline */
        "Zm-v",     /* URL-safe alphabet is not base64 here */
        "Zh==",     /* non-zero bits under the padding */
        "Zm9=",     /* same, one pad */
        "Zm=v",     /* '=' in the middle of a quartet */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(scram_b64_decode(bad[i], strlen(bad[i]), out, sizeof(out)), -1);

    /* Output too small: refuse, never write past the end. */
    assert_int_equal(scram_b64_decode("Zm9vYmFy", 8, out, 5), -1);
    assert_int_equal(scram_b64_encode((const uint8_t *)"foobar", 6, small, 8), -1);
    char fits[9];
    assert_int_equal(scram_b64_encode((const uint8_t *)"foobar", 6, fits, sizeof(fits)), 8);
}

/* ---- secrets and keys ---- */

static void test_parse_pg_secret(void **state)
{
    (void)state;
    struct scram_keys k;
    char again[256];

    assert_int_equal(scram_parse_secret(PG_SECRET, &k), 0);
    assert_int_equal(k.iterations, 4096);
    assert_int_equal(k.salt_len, 16);
    assert_int_equal(scram_build_secret(&k, again, sizeof(again)), 0);
    assert_string_equal(again, PG_SECRET);
}

/* Our PBKDF2/HMAC chain must reproduce PostgreSQL's verifier byte for byte. */
static void test_keys_match_postgres(void **state)
{
    (void)state;
    const char *secrets[] = {PG_SECRET, PG_SECRET2};
    const char *passwords[] = {PG_PASSWORD, PG_PASSWORD2};

    for (int i = 0; i < 2; i++) {
        struct scram_keys pg, ours;
        char built[256];
        assert_int_equal(scram_parse_secret(secrets[i], &pg), 0);
        assert_int_equal(
            scram_keys_from_password(passwords[i], pg.salt, pg.salt_len, pg.iterations, &ours), 0);
        assert_memory_equal(ours.stored_key, pg.stored_key, SCRAM_KEY_LEN);
        assert_memory_equal(ours.server_key, pg.server_key, SCRAM_KEY_LEN);
        assert_int_equal(scram_build_secret(&ours, built, sizeof(built)), 0);
        assert_string_equal(built, secrets[i]);
    }
}

static void test_parse_secret_rejects(void **state)
{
    (void)state;
    struct scram_keys k;
    static const char *bad[] = {
        "",
        "md5f9b14cf31083310a0705a8a08733b4e1",
        "SCRAM-SHA-1$4096:PYlv2olrcq2ysNXroPTcxw==$S1UDhRwItgmolVGG4UaHh1Q/iOU2c1CxkkeQNr4tCVU=:"
        "XWNucLLulpjTDDyMXmlHdPDQE8TK4Q3Y0gFwJ+IxtDk=",
        "SCRAM-SHA-256$0:PYlv2olrcq2ysNXroPTcxw==$S1UDhRwItgmolVGG4UaHh1Q/iOU2c1CxkkeQNr4tCVU=:"
        "XWNucLLulpjTDDyMXmlHdPDQE8TK4Q3Y0gFwJ+IxtDk=",
        "SCRAM-SHA-256$-1:PYlv2olrcq2ysNXroPTcxw==$S1UDhRwItgmolVGG4UaHh1Q/iOU2c1CxkkeQNr4tCVU=:"
        "XWNucLLulpjTDDyMXmlHdPDQE8TK4Q3Y0gFwJ+IxtDk=",
        "SCRAM-SHA-256$99999999999:PYlv2olrcq2ysNXroPTcxw==$S1UDhRwItgmolVGG4UaHh1Q/iOU2c1CxkkeQ"
        "Nr4tCVU=:XWNucLLulpjTDDyMXmlHdPDQE8TK4Q3Y0gFwJ+IxtDk=",
        "SCRAM-SHA-256$4096:$S1UDhRwItgmolVGG4UaHh1Q/iOU2c1CxkkeQNr4tCVU=:"
        "XWNucLLulpjTDDyMXmlHdPDQE8TK4Q3Y0gFwJ+IxtDk=",
        "SCRAM-SHA-256$4096:PYlv2olrcq2ysNXroPTcxw==$S1UDhRwItgmolVGG4UaHh1Q/iOU2c1CxkkeQNr4tCVU=",
        "SCRAM-SHA-256$4096:PYlv2olrcq2ysNXroPTcxw==$S1UDhRwItgmolVGG4UaHh1Q/iOU2c1Cxkk=:"
        "XWNucLLulpjTDDyMXmlHdPDQE8TK4Q3Y0gFwJ+IxtDk=",
        "SCRAM-SHA-256$4096:PYlv2olrcq2ysNXroPTcxw==$S1UDhRwItgmolVGG4UaHh1Q/iOU2c1CxkkeQNr4tCVU=:"
        "XWNucLLulpjTDDyMXmlHdPDQE8TK4Q3Y0gFwJ+IxtDk=:extra",
        "SCRAM-SHA-256$4096$PYlv2olrcq2ysNXroPTcxw==$S1UDhRwItgmolVGG4UaHh1Q/iOU2c1CxkkeQNr4tCVU=:"
        "XWNucLLulpjTDDyMXmlHdPDQE8TK4Q3Y0gFwJ+IxtDk=",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(scram_parse_secret(bad[i], &k), -1);
}

static void test_build_secret_small_buffer(void **state)
{
    (void)state;
    struct scram_keys k;
    char out[64];

    assert_int_equal(scram_parse_secret(PG_SECRET, &k), 0);
    assert_int_equal(scram_build_secret(&k, out, sizeof(out)), -1);
}

/* ---- exchanges ---- */

static void test_rfc7677_vector(void **state)
{
    (void)state;
    struct scram_keys keys;
    struct scram_state st;
    char sfirst[SCRAM_SERVER_FIRST_MAX], sfinal[SCRAM_SERVER_FINAL_MAX], proof[64], err[128];

    rfc_keys(&keys);
    memset(&st, 0, sizeof(st));
    assert_int_equal(scram_set_test_server_nonce(&st, RFC_SERVER_NONCE), 0);
    assert_int_equal(scram_handle_client_first(&st, &keys, RFC_CLIENT_FIRST,
                                               strlen(RFC_CLIENT_FIRST), sfirst, sizeof(sfirst),
                                               err, sizeof(err)),
                     0);
    assert_string_equal(sfirst, RFC_SERVER_FIRST);
    assert_string_equal(st.client_first_bare, RFC_CLIENT_FIRST_BARE);

    assert_int_equal(scram_client_proof(RFC_PASSWORD, RFC_CLIENT_FIRST_BARE, RFC_SERVER_FIRST,
                                        RFC_FINAL_NO_PROOF, proof, sizeof(proof)),
                     0);
    assert_string_equal(proof, RFC_PROOF);

    const char *final = RFC_FINAL_NO_PROOF ",p=" RFC_PROOF;
    assert_int_equal(scram_handle_client_final(&st, final, strlen(final), sfinal, sizeof(sfinal),
                                               err, sizeof(err)),
                     1);
    assert_string_equal(sfinal, RFC_SERVER_FINAL);
    /* The proof matched: the ClientKey is kept for pass-through, and it is the one the
       password gives (its hash is the StoredKey). */
    struct scram_keys derived;
    assert_true(st.have_client_key);
    assert_int_equal(
        scram_keys_from_password(RFC_PASSWORD, keys.salt, keys.salt_len, 4096, &derived), 0);
    uint8_t hashed[SCRAM_KEY_LEN];
    unsigned int hlen = 0;
    assert_true(EVP_Digest(st.client_key, SCRAM_KEY_LEN, hashed, &hlen, EVP_sha256(), NULL));
    assert_memory_equal(hashed, derived.stored_key, SCRAM_KEY_LEN);
    scram_state_clear(&st);
    assert_false(st.have_client_key);
}

/* A wrong proof leaves no ClientKey behind. */
static void test_no_client_key_on_failure(void **state)
{
    (void)state;
    struct scram_keys keys;
    struct scram_state st;
    char sfirst[SCRAM_SERVER_FIRST_MAX], sfinal[SCRAM_SERVER_FINAL_MAX], err[128];
    static const uint8_t zero[SCRAM_KEY_LEN];

    rfc_keys(&keys);
    memset(&st, 0, sizeof(st));
    assert_int_equal(scram_set_test_server_nonce(&st, RFC_SERVER_NONCE), 0);
    assert_int_equal(scram_handle_client_first(&st, &keys, RFC_CLIENT_FIRST,
                                               strlen(RFC_CLIENT_FIRST), sfirst, sizeof(sfirst),
                                               err, sizeof(err)),
                     0);
    const char *final = RFC_FINAL_NO_PROOF ",p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    assert_int_equal(scram_handle_client_final(&st, final, strlen(final), sfinal, sizeof(sfinal),
                                               err, sizeof(err)),
                     0);
    assert_false(st.have_client_key);
    assert_memory_equal(st.client_key, zero, SCRAM_KEY_LEN);
}

/* The server keys of the RFC vector, checked through a stored secret round trip. */
static void test_rfc7677_via_secret(void **state)
{
    (void)state;
    struct scram_keys keys, parsed;
    char secret[256];

    rfc_keys(&keys);
    assert_int_equal(scram_build_secret(&keys, secret, sizeof(secret)), 0);
    assert_memory_equal(secret, "SCRAM-SHA-256$4096:" RFC_SALT "$", 19 + strlen(RFC_SALT) + 1);
    assert_int_equal(scram_parse_secret(secret, &parsed), 0);
    assert_memory_equal(parsed.stored_key, keys.stored_key, SCRAM_KEY_LEN);
    assert_memory_equal(parsed.server_key, keys.server_key, SCRAM_KEY_LEN);
}

static void test_postgres_secret_exchange(void **state)
{
    (void)state;
    struct scram_keys keys, derived;
    char sfinal[SCRAM_SERVER_FINAL_MAX];

    assert_int_equal(scram_parse_secret(PG_SECRET, &keys), 0);
    assert_int_equal(exchange(&keys, PG_PASSWORD, "n,,", "biws", sfinal, sizeof(sfinal)), 1);
    assert_int_equal(strlen(sfinal), 46);
    assert_memory_equal(sfinal, "v=", 2);

    /* The second real secret, whose password has quotes and comment characters. */
    assert_int_equal(scram_parse_secret(PG_SECRET2, &derived), 0);
    assert_int_equal(exchange(&derived, PG_PASSWORD2, "n,,", "biws", sfinal, sizeof(sfinal)), 1);
}

/* Keys stored in the state itself (as the login code does) must work too. */
static void test_keys_inside_state(void **state)
{
    (void)state;
    struct scram_state st;
    char sfirst[SCRAM_SERVER_FIRST_MAX], final[256], proof[64], out[SCRAM_SERVER_FINAL_MAX];
    char err[128];

    memset(&st, 0, sizeof(st));
    assert_int_equal(scram_parse_secret(PG_SECRET, &st.keys), 0);
    assert_int_equal(scram_handle_client_first(&st, &st.keys, "n,,n=,r=abc", 11, sfirst,
                                               sizeof(sfirst), err, sizeof(err)),
                     0);
    int n =
        snprintf(final, sizeof(final), "c=biws,r=%.*s", (int)strcspn(sfirst + 2, ","), sfirst + 2);
    assert_int_equal(
        scram_client_proof(PG_PASSWORD, "n=,r=abc", sfirst, final, proof, sizeof(proof)), 0);
    snprintf(final + n, sizeof(final) - (size_t)n, ",p=%s", proof);
    assert_int_equal(
        scram_handle_client_final(&st, final, strlen(final), out, sizeof(out), err, sizeof(err)),
        1);
}

static void test_wrong_password(void **state)
{
    (void)state;
    struct scram_keys keys;
    char sfinal[SCRAM_SERVER_FINAL_MAX] = "untouched";

    assert_int_equal(scram_parse_secret(PG_SECRET, &keys), 0);
    assert_int_equal(exchange(&keys, "pencil2", "n,,", "biws", sfinal, sizeof(sfinal)), 0);
    assert_int_equal(exchange(&keys, "", "n,,", "biws", sfinal, sizeof(sfinal)), 0);
    assert_int_equal(exchange(&keys, "Pencil", "n,,", "biws", sfinal, sizeof(sfinal)), 0);
}

/* "y,," = client could bind but thinks we cannot; c= must then be base64("y,,") = eSws. */
static void test_y_flag(void **state)
{
    (void)state;
    struct scram_keys keys;
    char sfinal[SCRAM_SERVER_FINAL_MAX];

    assert_int_equal(scram_parse_secret(PG_SECRET, &keys), 0);
    assert_int_equal(exchange(&keys, PG_PASSWORD, "y,,", "eSws", sfinal, sizeof(sfinal)), 1);
    assert_int_equal(exchange(&keys, PG_PASSWORD, "y,,", "biws", sfinal, sizeof(sfinal)), -1);
    assert_int_equal(exchange(&keys, PG_PASSWORD, "n,,", "eSws", sfinal, sizeof(sfinal)), -1);
}

/* Two exchanges give different server nonces, each 24 base64 characters. */
static void test_server_nonce_random(void **state)
{
    (void)state;
    struct scram_keys keys;
    struct scram_state a, b;
    char fa[SCRAM_SERVER_FIRST_MAX], fb[SCRAM_SERVER_FIRST_MAX];

    assert_int_equal(scram_parse_secret(PG_SECRET, &keys), 0);
    start(&a, &keys, "n,,n=,r=abc", fa, sizeof(fa));
    start(&b, &keys, "n,,n=,r=abc", fb, sizeof(fb));
    assert_int_equal(strlen(a.server_nonce), 24);
    assert_string_not_equal(a.server_nonce, b.server_nonce);
    assert_string_not_equal(fa, fb);
    assert_memory_equal(fa, "r=abc", 5);
    assert_non_null(strstr(fa, ",s=PYlv2olrcq2ysNXroPTcxw==,i=4096"));
}

static void test_mock_keys(void **state)
{
    (void)state;
    struct scram_keys a, a2, b;
    char sfinal[SCRAM_SERVER_FINAL_MAX];

    assert_int_equal(scram_mock_keys("ghost", &a), 0);
    assert_int_equal(scram_mock_keys("ghost", &a2), 0);
    assert_int_equal(scram_mock_keys("phantom", &b), 0);
    assert_int_equal(a.salt_len, 16);
    assert_int_equal(a.iterations, 4096);
    assert_memory_equal(a.salt, a2.salt, a.salt_len); /* stable across probes */
    assert_memory_not_equal(a.salt, b.salt, a.salt_len);
    assert_int_equal(exchange(&a, "", "n,,", "biws", sfinal, sizeof(sfinal)), 0);
    assert_int_equal(exchange(&a, "pencil", "n,,", "biws", sfinal, sizeof(sfinal)), 0);
}

/* ---- hostile client-first messages ---- */

static void expect_first_fails(const struct scram_keys *keys, const char *msg, size_t len)
{
    struct scram_state st;
    char out[SCRAM_SERVER_FIRST_MAX], err[128] = "";

    memset(&st, 0, sizeof(st));
    assert_int_equal(
        scram_handle_client_first(&st, keys, msg, len, out, sizeof(out), err, sizeof(err)), -1);
    assert_true(err[0] != '\0');
    assert_int_equal(st.step, 2);
}

static void test_client_first_malformed(void **state)
{
    (void)state;
    struct scram_keys keys;
    static const char *bad[] = {
        "",
        "n",
        "n,",
        "n,,",
        "p=tls-server-end-point,,n=,r=abc", /* channel binding */
        "p,,n=,r=abc",
        "x,,n=,r=abc",               /* bad flag */
        "N,,n=,r=abc",               /* flags are case sensitive */
        "n,a=bob,n=,r=abc",          /* authzid */
        "n,n=,r=abc",                /* missing authzid slot */
        "n,,m=ext,n=,r=abc",         /* mandatory extension */
        "n,,r=abc",                  /* missing n= */
        "n,,r=abc,n=",               /* wrong order */
        "n,,n=,x=abc",               /* unknown attribute instead of r= */
        "n,,n=",                     /* missing r= */
        "n,,n=,",                    /* same */
        "n,,n=,r=",                  /* empty nonce */
        "n,,n=,r=ab c",              /* nonce not printable */
        "n,,n=,r=ab\x7f",            /* same */
        "n,,n=,r=\xc3\xa9t\xc3\xa9", /* non-ASCII nonce */
        "n,,n=,r=abc,",              /* trailing comma */
        "n,,n=,r=abc,x=ext",         /* unknown extension */
        "n,,n=,r=abc,r=def",         /* repeated attribute */
        "n,,n,r=abc",                /* attribute without '=' */
        "n,, n=,r=abc",              /* stray space */
        " n,,n=,r=abc",
    };
    assert_int_equal(scram_parse_secret(PG_SECRET, &keys), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_first_fails(&keys, bad[i], strlen(bad[i]));
}

static void test_client_first_nul_and_size(void **state)
{
    (void)state;
    struct scram_keys keys;
    static const char with_nul[] = "n,,n=,r=abc\0def";
    static const char nul_in_user[] = "n,,n=a\0b,r=abc";
    char nonce_msg[300];

    assert_int_equal(scram_parse_secret(PG_SECRET, &keys), 0);
    expect_first_fails(&keys, with_nul, sizeof(with_nul) - 1);
    expect_first_fails(&keys, nul_in_user, sizeof(nul_in_user) - 1);

    /* 100 KB of a plausible-looking message. */
    size_t big = 100 * 1024;
    char *huge = malloc(big);
    assert_non_null(huge);
    memcpy(huge, "n,,n=,r=", 8);
    memset(huge + 8, 'A', big - 8);
    expect_first_fails(&keys, huge, big);
    /* Same, with the size just over the limit, and a long user name under it. */
    expect_first_fails(&keys, huge, SCRAM_MAX_CLIENT_MSG + 1);
    memcpy(huge, "n,,n=", 5);
    memset(huge + 5, 'u', 900);
    memcpy(huge + 905, ",r=abc", 6);
    expect_first_fails(&keys, huge, 911); /* bare part does not fit client_first_bare */
    free(huge);

    /* A nonce longer than the state can hold. */
    memcpy(nonce_msg, "n,,n=,r=", 8);
    memset(nonce_msg + 8, 'x', 200);
    expect_first_fails(&keys, nonce_msg, 208);
    /* The longest nonce that fits is accepted. */
    struct scram_state st;
    char out[SCRAM_SERVER_FIRST_MAX];
    start(&st, &keys, "n,,n=,r=x", out, sizeof(out));
    memset(nonce_msg + 8, 'x', sizeof(st.client_nonce) - 1);
    nonce_msg[8 + sizeof(st.client_nonce) - 1] = '\0';
    start(&st, &keys, nonce_msg, out, sizeof(out));
}

/* Output buffers that are too small give -1, not a truncated or overflowing message. */
/* Overlong attributes inside the size limit: a long user name in n= (ignored, but
   copied as part of client-first-bare) and a client-final over the limit. */
static void test_overlong_attributes(void **state)
{
    (void)state;
    struct scram_keys keys;
    struct scram_state st;
    char msg[SCRAM_MAX_CLIENT_MSG + 2], out[SCRAM_SERVER_FIRST_MAX], err[128];
    assert_int_equal(scram_parse_secret(PG_SECRET, &keys), 0);
    size_t n = (size_t)snprintf(msg, sizeof msg, "n,,n=");
    memset(msg + n, 'u', 900);
    n += 900;
    n += (size_t)snprintf(msg + n, sizeof msg - n, ",r=abc");
    assert_true(n <= SCRAM_MAX_CLIENT_MSG);
    expect_first_fails(&keys, msg, n);
    /* client-final-message longer than the limit, after a good first message. */
    start(&st, &keys, "n,,n=,r=abc", out, sizeof out);
    memset(msg, 'c', sizeof msg);
    char final_out[SCRAM_SERVER_FINAL_MAX];
    assert_true(scram_handle_client_final(&st, msg, SCRAM_MAX_CLIENT_MSG + 1, final_out,
                                          sizeof final_out, err, sizeof err) < 0);
    assert_int_equal(st.step, 2);
}

static void test_small_output_buffers(void **state)
{
    (void)state;
    struct scram_keys keys;
    struct scram_state st;
    char out[SCRAM_SERVER_FIRST_MAX], err[8];

    assert_int_equal(scram_parse_secret(PG_SECRET, &keys), 0);
    memset(&st, 0, sizeof(st));
    assert_int_equal(
        scram_handle_client_first(&st, &keys, "n,,n=,r=abc", 11, out, 20, err, sizeof(err)), -1);
    assert_int_equal(strlen(err), sizeof(err) - 1); /* error text truncated, not overflowed */

    /* A NULL error buffer is allowed. */
    memset(&st, 0, sizeof(st));
    assert_int_equal(scram_handle_client_first(&st, &keys, "x", 1, out, sizeof(out), NULL, 0), -1);
}

/* ---- hostile client-final messages ---- */

/* Build "c=..,r=<nonce>,p=<proof>"-style messages from a template with one %s for the nonce. */
static int run_final(const char *tmpl, int append_proof, const char *msg_override,
                     size_t override_len)
{
    struct scram_keys keys;
    struct scram_state st;
    const char *bare = "n=,r=abc";
    char sfirst[SCRAM_SERVER_FIRST_MAX], msg[600], proof[64], out[SCRAM_SERVER_FINAL_MAX];
    char err[128];

    assert_int_equal(scram_parse_secret(PG_SECRET, &keys), 0);
    start(&st, &keys, "n,,n=,r=abc", sfirst, sizeof(sfirst));
    if (msg_override) {
        int rc = scram_handle_client_final(&st, msg_override, override_len, out, sizeof(out), err,
                                           sizeof(err));
        assert_int_equal(st.step, 2);
        return rc;
    }
    char nonce[200];
    snprintf(nonce, sizeof(nonce), "%.*s", (int)strcspn(sfirst + 2, ","), sfirst + 2);
    int n = snprintf(msg, sizeof(msg), tmpl, nonce);
    if (append_proof) {
        assert_int_equal(scram_client_proof(PG_PASSWORD, bare, sfirst, msg, proof, sizeof(proof)),
                         0);
        snprintf(msg + n, sizeof(msg) - (size_t)n, ",p=%s", proof);
    }
    err[0] = '\0';
    int rc = scram_handle_client_final(&st, msg, strlen(msg), out, sizeof(out), err, sizeof(err));
    if (rc < 0)
        assert_true(err[0] != '\0');
    assert_int_equal(st.step, 2);
    return rc;
}

static void test_client_final_good(void **state)
{
    (void)state;
    assert_int_equal(run_final("c=biws,r=%s", 1, NULL, 0), 1);
}

static void test_client_final_malformed(void **state)
{
    (void)state;
    static const char *with_proof[] = {
        "r=%s",                        /* missing c= */
        "c=eSws,r=%s",                 /* c= does not match the gs2 header sent */
        "c=cD10bHMtdW5pcXVlLCw=,r=%s", /* channel binding data */
        "c=,r=%s",
        "c=biws,r=%sX",      /* nonce with extra characters */
        "c=biws,r=abc",      /* client nonce only */
        "c=biws,r=%s,x=ext", /* extension before p= */
        "c=biws,r=",         /* empty nonce */
        "c=biws",            /* missing r= */
        "c=biws,,r=%s",      /* empty attribute */
        "r=%s,c=biws",       /* wrong order */
    };
    for (size_t i = 0; i < sizeof(with_proof) / sizeof(with_proof[0]); i++)
        assert_int_equal(run_final(with_proof[i], 1, NULL, 0), -1);

    static const char *without_proof[] = {
        "c=biws,r=%s",                                                    /* missing p= */
        "c=biws,r=%s,",                                                   /* empty after comma */
        "c=biws,r=%s,p=",                                                 /* empty proof */
        "c=biws,r=%s,p=!!!!",                                             /* bad base64 */
        "c=biws,r=%s,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndQ==",     /* 31 bytes */
        "c=biws,r=%s,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQA",     /* 33 bytes */
        "c=biws,r=%s,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",      /* unpadded */
        "c=biws,r=%s,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=1", /* after proof */
        "c=biws,r=%s,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,",
        "c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,r=%s", /* order */
    };
    for (size_t i = 0; i < sizeof(without_proof) / sizeof(without_proof[0]); i++)
        assert_int_equal(run_final(without_proof[i], 0, NULL, 0), -1);

    /* Well-formed with a proof that is simply wrong: 0, not -1. */
    assert_int_equal(
        run_final("c=biws,r=%s,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", 0, NULL, 0), 0);
}

static void test_client_final_nul_and_size(void **state)
{
    (void)state;
    static const char with_nul[] = "c=biws,r=abc\0,p=AAAA";
    size_t big = 100 * 1024;
    char *huge = malloc(big);

    assert_int_equal(run_final(NULL, 0, with_nul, sizeof(with_nul) - 1), -1);
    assert_int_equal(run_final(NULL, 0, "", 0), -1);
    assert_non_null(huge);
    memcpy(huge, "c=biws,r=abc", 12);
    memset(huge + 12, 'A', big - 12);
    assert_int_equal(run_final(NULL, 0, huge, big), -1);
    free(huge);
}

static void test_state_machine(void **state)
{
    (void)state;
    struct scram_keys keys;
    struct scram_state st;
    char out[SCRAM_SERVER_FIRST_MAX], err[128];
    const char *final = "c=biws,r=abc,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

    assert_int_equal(scram_parse_secret(PG_SECRET, &keys), 0);
    /* client-final first */
    memset(&st, 0, sizeof(st));
    assert_int_equal(
        scram_handle_client_final(&st, final, strlen(final), out, sizeof(out), err, sizeof(err)),
        -1);
    /* client-first twice */
    start(&st, &keys, "n,,n=,r=abc", out, sizeof(out));
    assert_int_equal(scram_handle_client_first(&st, &keys, "n,,n=,r=abc", 11, out, sizeof(out), err,
                                               sizeof(err)),
                     -1);
    /* and nothing after a failure */
    assert_int_equal(
        scram_handle_client_final(&st, final, strlen(final), out, sizeof(out), err, sizeof(err)),
        -1);
    /* clear makes it reusable */
    scram_state_clear(&st);
    start(&st, &keys, "n,,n=,r=abc", out, sizeof(out));
    /* bad keys are an internal error */
    struct scram_keys none;
    memset(&none, 0, sizeof(none));
    memset(&st, 0, sizeof(st));
    assert_int_equal(scram_handle_client_first(&st, &none, "n,,n=,r=abc", 11, out, sizeof(out), err,
                                               sizeof(err)),
                     -1);
    assert_int_equal(scram_set_test_server_nonce(&st, "has,comma"), -1);
    assert_int_equal(scram_set_test_server_nonce(&st, ""), -1);
}

/* Cheap fuzzing: random mutations of valid messages must never crash or accept. */
static void test_random_mutations(void **state)
{
    (void)state;
    struct scram_keys keys;
    const char *first = "n,,n=,r=fyko+d2lbbFgONRv9qkxdawL";
    char msg[256], out[SCRAM_SERVER_FIRST_MAX], err[128];
    unsigned seed = 12345;

    assert_int_equal(scram_parse_secret(PG_SECRET, &keys), 0);
    for (int iter = 0; iter < 20000; iter++) {
        struct scram_state st;
        size_t len = strlen(first);
        memset(msg, 'q', sizeof(msg)); /* a duplicated chunk may reach past the old end */
        memcpy(msg, first, len);
        int edits = 1 + (int)(rand_r(&seed) % 4);
        for (int e = 0; e < edits; e++) {
            size_t pos = rand_r(&seed) % len;
            switch (rand_r(&seed) % 3) {
            case 0:
                msg[pos] = (char)(rand_r(&seed) & 0xff);
                break;
            case 1: /* truncate */
                len = pos;
                break;
            default: /* duplicate a chunk */
                if (len + 16 < sizeof(msg)) {
                    memmove(msg + pos + 16, msg + pos, len - pos);
                    len += 16;
                }
            }
            if (len == 0)
                break;
        }
        memset(&st, 0, sizeof(st));
        int rc =
            scram_handle_client_first(&st, &keys, msg, len, out, sizeof(out), err, sizeof(err));
        if (rc == 0) {
            /* Whatever was accepted must produce a sane server-first. */
            assert_true(strlen(out) < SCRAM_SERVER_FIRST_MAX);
            const char *bad_final = "c=biws,r=x,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
            assert_true(scram_handle_client_final(&st, bad_final, strlen(bad_final), out,
                                                  sizeof(out), err, sizeof(err)) <= 0);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_known),
        cmocka_unit_test(test_overlong_attributes),
        cmocka_unit_test(test_b64_roundtrip_binary),
        cmocka_unit_test(test_b64_rejects),
        cmocka_unit_test(test_parse_pg_secret),
        cmocka_unit_test(test_keys_match_postgres),
        cmocka_unit_test(test_parse_secret_rejects),
        cmocka_unit_test(test_build_secret_small_buffer),
        cmocka_unit_test(test_rfc7677_vector),
        cmocka_unit_test(test_no_client_key_on_failure),
        cmocka_unit_test(test_rfc7677_via_secret),
        cmocka_unit_test(test_postgres_secret_exchange),
        cmocka_unit_test(test_keys_inside_state),
        cmocka_unit_test(test_wrong_password),
        cmocka_unit_test(test_y_flag),
        cmocka_unit_test(test_server_nonce_random),
        cmocka_unit_test(test_mock_keys),
        cmocka_unit_test(test_client_first_malformed),
        cmocka_unit_test(test_client_first_nul_and_size),
        cmocka_unit_test(test_small_output_buffers),
        cmocka_unit_test(test_client_final_good),
        cmocka_unit_test(test_client_final_malformed),
        cmocka_unit_test(test_client_final_nul_and_size),
        cmocka_unit_test(test_state_machine),
        cmocka_unit_test(test_random_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
