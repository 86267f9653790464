/*
 * test_peering — unit tests for peering's pure parts: the cancel key layout
 * (pooler/cancel_key.c, PgBouncer 1.21's) and the [peers] section (pooler/peers_config.c,
 * and through config_load_string the file:line of its errors), and the addresses
 * pooler/peer_resolve.c makes of numeric hosts and socket paths (no DNS here).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/un.h>

#include "warmpool/cancel_key.h"
#include "warmpool/config.h"
#include "warmpool/peer_resolve.h"
#include "warmpool/peers_config.h"

/* The 8 bytes of BackendKeyData as a client sees them. */
static void key_bytes(uint32_t pid, uint32_t key, uint8_t b[8])
{
    for (int i = 0; i < 4; i++) {
        b[i] = (uint8_t)(pid >> (24 - 8 * i));
        b[4 + i] = (uint8_t)(key >> (24 - 8 * i));
    }
}

static void test_layout_matches_pgbouncer(void **state)
{
    (void)state;
    const uint8_t rnd[8] = {0xFF, 0xAA, 0xBB, 0xCC, 0x10, 0x20, 0x30, 0x40};
    uint32_t pid, key;
    uint8_t b[8];
    cancel_key_make(0x1234, rnd, &pid, &key);
    key_bytes(pid, key, b);
    assert_int_equal(b[0], 0x7F); /* sign bit cleared, rest random */
    assert_int_equal(b[1], 0x34); /* peer id, low byte first */
    assert_int_equal(b[2], 0x12);
    assert_int_equal(b[3], 0xCC);
    assert_int_equal(b[4], 0x10);
    assert_int_equal(b[7], 0x43); /* hop count 3 in the two low bits */
    assert_int_equal(cancel_key_peer_id(pid), 0x1234);
    assert_int_equal(cancel_key_ttl(key), 3);
}

static void test_no_peering_keeps_random(void **state)
{
    (void)state;
    const uint8_t rnd[8] = {0x80, 1, 2, 3, 4, 5, 6, 0xFC};
    uint32_t pid, key;
    cancel_key_make(0, rnd, &pid, &key);
    assert_int_equal(pid, 0x00010203u);
    assert_int_equal(key, 0x040506FCu);
}

static void test_every_peer_id_round_trips(void **state)
{
    (void)state;
    uint8_t rnd[8] = {0};
    for (int id = 1; id <= CANCEL_KEY_MAX_PEER_ID; id++) {
        uint32_t pid, key;
        rnd[0] = (uint8_t)id;
        rnd[7] = (uint8_t)(id * 7);
        cancel_key_make(id, rnd, &pid, &key);
        assert_int_equal(cancel_key_peer_id(pid), id);
        assert_int_equal(cancel_key_ttl(key), 3);
        assert_true(pid <= 0x7FFFFFFFu);
    }
}

static void test_hops(void **state)
{
    (void)state;
    uint32_t key = 0xDEADBEEFu; /* ttl 3 */
    assert_int_equal(cancel_key_ttl(key), 3);
    key = cancel_key_spend_hop(key);
    assert_int_equal(key, 0xDEADBEEEu);
    key = cancel_key_spend_hop(cancel_key_spend_hop(key));
    assert_int_equal(cancel_key_ttl(key), 0);
    assert_int_equal(key, 0xDEADBEECu);
    assert_int_equal(cancel_key_spend_hop(key), key); /* spent stays spent, no borrow */
    assert_int_equal(cancel_key_as_issued(key), 0xDEADBEEFu);
}

static void test_peers_parse(void **state)
{
    (void)state;
    struct wp_peers peers = {0};
    char why[256];
    assert_int_equal(
        peers_config_add(&peers, "2", "host=/tmp/x port=5555", "f", 3, why, sizeof why), 0);
    assert_int_equal(
        peers_config_add(&peers, "1", "host = 'a b' pool_size=4", "f", 4, why, sizeof why), 0);
    assert_int_equal(peers_config_add(&peers, "16383", "host=h", "f", 5, why, sizeof why), 0);
    assert_int_equal(peers.n, 3);
    assert_int_equal(peers.v[0].id, 1); /* kept in id order */
    assert_string_equal(peers.v[0].host, "a b");
    assert_int_equal(peers.v[0].port, 6432);
    assert_int_equal(peers.v[0].pool_size, 4);
    assert_int_equal(peers.v[1].port, 5555);
    assert_int_equal(peers.v[1].pool_size, -1);
    assert_int_equal(peers_config_find(&peers, 16383)->line, 5);
    assert_null(peers_config_find(&peers, 7));
    peers_config_free(&peers);
}

static void expect_bad(const char *name, const char *value, const char *msg)
{
    struct wp_peers peers = {0};
    char why[256];
    assert_int_equal(peers_config_add(&peers, name, value, "f", 1, why, sizeof why), -1);
    assert_string_equal(why, msg);
    assert_int_equal(peers.n, 0);
    peers_config_free(&peers);
}

static void test_peers_errors(void **state)
{
    (void)state;
    expect_bad("0", "host=h", "peer id \"0\" must be a number from 1 to 16383");
    expect_bad("16384", "host=h", "peer id \"16384\" must be a number from 1 to 16383");
    expect_bad("x1", "host=h", "peer id \"x1\" must be a number from 1 to 16383");
    expect_bad("-1", "host=h", "peer id \"-1\" must be a number from 1 to 16383");
    expect_bad("1", "port=5", "peer 1: host is missing");
    expect_bad("1", "host=", "peer 1: host is missing");
    expect_bad("1", "host=h dbname=x",
               "peer 1: unknown key \"dbname\" (expected host, port or "
               "pool_size)");
    expect_bad("1", "host=h port=0", "peer 1: port must be a number from 1 to 65535");
    expect_bad("1", "host=h port=70000", "peer 1: port must be a number from 1 to 65535");
    expect_bad("1", "host=h pool_size=0", "peer 1: pool_size must be a number of at least 1");
    expect_bad("1", "host='h", "peer 1: unterminated quoted value (missing closing ')");
    expect_bad("1", "host", "peer 1: expected key=value");
}

static void test_peers_in_file(void **state)
{
    (void)state;
    static const char text[] = "[warmpool]\n"
                               "auth_type = trust\n"
                               "peer_id = 2\n"
                               "[peers]\n"
                               "1 = host=127.0.0.1 port=7001\n"
                               "2 = host=127.0.0.1 port=7002\n"
                               "99999 = host=h\n"
                               "3 = host=h bogus=1\n"
                               "4 = port=1\n"
                               "1 = host=again\n";
    struct wp_config cfg;
    char err[2048];
    assert_int_equal(config_load_string("w.ini", text, strlen(text), &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "w.ini:7: peer id \"99999\" must be a number from 1 to 16383"));
    assert_non_null(strstr(err, "w.ini:8: peer 3: unknown key \"bogus\""));
    assert_non_null(strstr(err, "w.ini:9: peer 4: host is missing"));
    assert_non_null(strstr(err, "w.ini:10: duplicate peer 1 (first defined on line 5)"));

    static const char good[] = "[pgbouncer]\nauth_type = trust\npeer_id = 1\n"
                               "[peers]\n1 = host=/tmp\n2 = host=b port=7002 pool_size=3\n";
    assert_int_equal(config_load_string("w.ini", good, strlen(good), &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.peer_id, 1);
    assert_int_equal(cfg.peers.n, 2);
    assert_int_equal(cfg.peers.v[1].pool_size, 3);
    config_free(&cfg);

    static const char bad_id[] = "[warmpool]\nauth_type = trust\npeer_id = 16384\n";
    assert_int_equal(config_load_string("w.ini", bad_id, strlen(bad_id), &cfg, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "w.ini:3:"));
}

static void test_resolve_numeric(void **state)
{
    (void)state;
    struct wp_peer_addrs a;
    peer_resolve("127.0.0.1", 6432, &a);
    assert_int_equal(a.n, 1);
    const struct sockaddr_in *in = (const struct sockaddr_in *)&a.v[0].sa;
    assert_int_equal(in->sin_family, AF_INET);
    assert_int_equal(ntohs(in->sin_port), 6432);
    assert_int_equal(in->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    assert_int_equal(a.v[0].len, sizeof *in);
    peer_resolve("::1", 5432, &a);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.v[0].sa.ss_family, AF_INET6);
}

static void test_resolve_unix(void **state)
{
    (void)state;
    struct wp_peer_addrs a;
    const struct sockaddr_un *un = (const struct sockaddr_un *)&a.v[0].sa;
    peer_resolve("/run/wp", 6433, &a);
    assert_int_equal(a.n, 1);
    assert_int_equal(un->sun_family, AF_UNIX);
    assert_string_equal(un->sun_path, "/run/wp/.s.PGSQL.6433");
    assert_int_equal(a.v[0].len, offsetof(struct sockaddr_un, sun_path) + 22);
    peer_resolve("@wp-3", 6433, &a); /* abstract: NUL, the name, no port, no NUL after */
    assert_int_equal(a.n, 1);
    assert_int_equal(un->sun_path[0], 0);
    assert_memory_equal(un->sun_path + 1, "wp-3", 4);
    assert_int_equal(a.v[0].len, offsetof(struct sockaddr_un, sun_path) + 5);
    char long_dir[200];
    memset(long_dir, 'd', sizeof long_dir - 1);
    long_dir[0] = '/';
    long_dir[sizeof long_dir - 1] = '\0';
    peer_resolve(long_dir, 6432, &a);
    assert_int_equal(a.n, 0);
    assert_non_null(strstr(a.err, "too long"));
}

static void test_resolve_all(void **state)
{
    (void)state;
    struct wp_peers peers = {0};
    char why[256];
    assert_int_equal(peers_config_add(&peers, "1", "host=127.0.0.1", "f", 1, why, sizeof why), 0);
    assert_int_equal(peers_config_add(&peers, "2", "host=/tmp port=7", "f", 2, why, sizeof why), 0);
    assert_null(peers.v[0].addrs); /* parsing resolves nothing */
    assert_int_equal(peer_resolve_all(&peers), 0);
    assert_int_equal(peers.v[0].addrs->n, 1);
    assert_int_equal(peers.v[1].addrs->n, 1);
    assert_int_equal(peer_resolve_all(&peers), 0); /* a second time reuses the storage */
    peers_config_free(&peers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_matches_pgbouncer),
        cmocka_unit_test(test_no_peering_keeps_random),
        cmocka_unit_test(test_every_peer_id_round_trips),
        cmocka_unit_test(test_hops),
        cmocka_unit_test(test_peers_parse),
        cmocka_unit_test(test_peers_errors),
        cmocka_unit_test(test_peers_in_file),
        cmocka_unit_test(test_resolve_numeric),
        cmocka_unit_test(test_resolve_unix),
        cmocka_unit_test(test_resolve_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
