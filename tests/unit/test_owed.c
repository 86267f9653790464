/*
 * test_owed — unit tests for what a backend still owes (pooler/owed.c), driven with
 * message sequences as PostgreSQL would see and answer them.
 *
 * A script is a string: an upper-case letter or digit after '>' is a frontend message
 * sent, after '<' a backend answer, e.g. ">PBES<12CZ". Spaces are ignored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/owed.h"

static void run(struct wp_owed *o, const char *script)
{
    int sending = 1;
    for (const char *p = script; *p; p++) {
        if (*p == '>' || *p == '<') {
            sending = *p == '>';
            continue;
        }
        if (*p == ' ')
            continue;
        if (sending)
            owed_sent(o, (uint8_t)*p);
        else
            owed_answer(o, (uint8_t)*p);
    }
}

static void expect_settled_after(const char *script)
{
    struct wp_owed o = {0};
    run(&o, script);
    if (!owed_settled(&o))
        fail_msg("not settled after \"%s\": count=%u ready=%u unsynced=%d skipping=%d "
                 "copy_in=%d lost=%d",
                 script, o.count, o.ready, o.unsynced, o.skipping, o.copy_in, o.lost);
    owed_free(&o);
}

static void expect_owing_after(const char *script, uint32_t ready)
{
    struct wp_owed o = {0};
    run(&o, script);
    assert_false(owed_settled(&o));
    assert_false(o.lost);
    assert_int_equal(o.ready, ready);
    owed_free(&o);
}

static void expect_lost_after(const char *script)
{
    struct wp_owed o = {0};
    run(&o, script);
    assert_true(o.lost);
    assert_false(owed_settled(&o));
    owed_free(&o);
}

static void test_simple_query(void **state)
{
    (void)state;
    expect_settled_after(">Q<TDDDCZ");
    expect_settled_after(">Q<TDCTDCZ"); /* two statements, one ReadyForQuery */
    expect_settled_after(">Q<IZ");      /* empty query */
    expect_settled_after(">Q<TDE Z");   /* error in the middle of the rows */
    expect_owing_after(">Q<TDC", 1);    /* ReadyForQuery still to come */
    expect_owing_after(">QQ<CZ", 1);    /* pipelined */
    expect_settled_after(">QQ<CZ EZ");  /* the second failed: still answered */
    expect_settled_after(">Q<NSACZ");   /* notices, parameter changes, notify */
    expect_settled_after(">F<VZ");      /* function call */
}

static void test_extended_batch(void **state)
{
    (void)state;
    expect_settled_after(">PBDES<12TDDCZ");
    expect_settled_after(">PDBES<1tT2DCZ"); /* Describe of a statement */
    expect_settled_after(">PDBES<1tn2CZ");  /* ... that returns no rows */
    expect_settled_after(">BES<2sZ");       /* portal suspended */
    expect_settled_after(">CS<3Z");         /* Close */
    expect_owing_after(">PBE<12", 0);       /* answers before Sync: not done */
    expect_owing_after(">PBEH<12C", 0);     /* flushed, but no Sync yet */
    expect_settled_after(">PBEH<12C >S<Z");
    expect_settled_after(">PBES PBES<12CZ 12CZ"); /* pipelined batches */
}

static void test_error_skips_to_sync(void **state)
{
    (void)state;
    /* The failed Execute and everything up to Sync get nothing more. */
    expect_settled_after(">PBEPBES<12E Z");
    /* A Query inside skip-until-Sync is ignored: only the Sync's ReadyForQuery comes. */
    expect_settled_after(">PBEQS<12E Z");
    expect_owing_after(">PBEQS<12E", 1);
    /* The error arrives before the Sync is sent: what follows is ignored until it. */
    expect_owing_after(">PBEH<12E", 0);
    expect_settled_after(">PBEH<12E >QPBE S<Z");
    /* A second batch after the Sync is not skipped. */
    expect_settled_after(">PBES PBES<1E Z 12CZ");
    /* An error in a Sync (deferred constraint at commit) still gets its ReadyForQuery. */
    expect_settled_after(">BES<2C EZ");
}

static void test_query_after_unsynced_batch(void **state)
{
    (void)state;
    /* Without an error, a Query after unsynced extended messages runs and answers. */
    expect_owing_after(">PBEQS<12CCZ", 1);
    expect_settled_after(">PBEQS<12CCZ Z");
    /* ... and ends their implicit transaction: no Sync is owed after it (warmpool's
       own Parse before a SQL EXECUTE of a protocol-level statement). */
    expect_settled_after(">PQ<1CZ");
    expect_settled_after(">PBEQ<12CCZ");
    /* Unless the Parse failed: then the Query was skipped and a Sync is needed. */
    expect_owing_after(">PQ<E", 0);
    expect_settled_after(">PQ<E >S<Z");
}

static void test_copy_in(void **state)
{
    (void)state;
    /* Simple protocol. */
    expect_settled_after(">Q<G >dddc<CZ");
    expect_owing_after(">Q<G >dd", 1);
    expect_settled_after(">Q<G >df<EZ");
    /* Extended: the Sync sent with the batch is read by the COPY and ignored; the
       client sends another after CopyDone. */
    expect_settled_after(">PBES<12G >ddc S<CZ");
    expect_owing_after(">PBES<12G >ddc", 0);
    /* CopyDone pipelined before CopyInResponse arrived. */
    expect_settled_after(">PBES ddc S<12G CZ");
    /* An error during COPY IN in the extended protocol skips to the next Sync. */
    expect_settled_after(">PBES<12G >dd<E >c S<Z");
}

static void test_copy_out(void **state)
{
    (void)state;
    expect_settled_after(">Q<Hdddc CZ");
    expect_settled_after(">PBES<12Hddc CZ");
}

static void test_stray_copy_messages(void **state)
{
    (void)state;
    /* CopyData/CopyDone outside COPY are ignored by PostgreSQL. */
    expect_settled_after(">dc");
    expect_settled_after(">Qc<CZ");
}

static void test_mismatch_is_lost(void **state)
{
    (void)state;
    expect_lost_after("<Z");      /* nothing was asked */
    expect_lost_after(">Q<1");    /* ParseComplete for a Query */
    expect_lost_after(">P<Z");    /* ReadyForQuery before ParseComplete */
    expect_lost_after("<E");      /* an error with nothing pending (FATAL) */
    expect_lost_after(">Q<K");    /* BackendKeyData after startup */
    expect_lost_after(">Q<G >P"); /* a Parse inside COPY IN aborts it */
    expect_lost_after(">Q<W");    /* COPY BOTH (replication) */
}

static void test_ring_grows_in_order(void **state)
{
    (void)state;
    struct wp_owed o = {0};
    for (int i = 0; i < 1000; i++)
        run(&o, ">PBES");
    assert_int_equal(o.ready, 1000);
    for (int i = 0; i < 999; i++)
        run(&o, "<12CZ");
    assert_int_equal(o.ready, 1);
    run(&o, "<1E Z");
    assert_true(owed_settled(&o));
    /* Reset keeps the ring for reuse but forgets everything. */
    run(&o, ">Q");
    owed_reset(&o);
    assert_true(owed_settled(&o));
    owed_free(&o);
}

static int same_state(const struct wp_owed *a, const struct wp_owed *b)
{
    if (a->count != b->count || a->ready != b->ready || a->unsynced != b->unsynced ||
        a->skipping != b->skipping || a->copy_in != b->copy_in || a->lost != b->lost)
        return 0;
    for (uint32_t i = 0; i < a->count; i++)
        if (a->ring[(a->head + i) & (a->cap - 1)] != b->ring[(b->head + i) & (b->cap - 1)])
            return 0;
    return 1;
}

/* An answer the request at the head may get (r picks one), or any answer when none
   is waiting: keeps random runs going long without losing the state. */
static uint8_t fitting_answer(const struct wp_owed *o, uint32_t r)
{
    static const char *const by_head[][2] = {
        {"P", "1E"}, {"B", "2E"}, {"D", "tnTE"}, {"E", "CIsDTE"},
        {"C", "3E"}, {"S", "ZN"}, {"Q", "TDCZ"}, {"F", "VZ"},
    };
    uint8_t head = o->count ? o->ring[o->head] : 0;
    for (size_t i = 0; i < sizeof by_head / sizeof by_head[0]; i++)
        if (by_head[i][0][0] == head)
            return (uint8_t)by_head[i][1][r % strlen(by_head[i][1])];
    return 'N';
}

/* The inline fast paths must do exactly what the general code does: random runs of
   requests and answers, half of the answers chosen to fit the head request. */
static void test_inline_matches_general(void **state)
{
    (void)state;
    static const char sent[] = "PBDECHSQFdcf";
    static const char answers[] = "123tnTCIsGHVZEDNSAdcWK";
    uint32_t seed = 12345;
    for (int round = 0; round < 400; round++) {
        struct wp_owed fast = {0}, slow = {0};
        for (int step = 0; step < 500; step++) {
            seed = seed * 1103515245u + 12345u;
            uint32_t r = seed >> 8;
            uint8_t type;
            if (r % 2) {
                type = (uint8_t)sent[(r / 2) % (sizeof sent - 1)];
                owed_sent(&fast, type);
                owed_sent_slow(&slow, type);
            } else {
                type = round % 2 && (r / 2) % 4 ? fitting_answer(&slow, r / 8)
                                                : (uint8_t)answers[(r / 2) % (sizeof answers - 1)];
                owed_answer(&fast, type);
                owed_answer_slow(&slow, type);
            }
            if (!same_state(&fast, &slow))
                fail_msg("round %d step %d: '%c' leaves the inline and general states apart", round,
                         step, type);
            if (fast.lost)
                break; /* nothing after that matters */
        }
        owed_free(&fast);
        owed_free(&slow);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_query),
        cmocka_unit_test(test_extended_batch),
        cmocka_unit_test(test_error_skips_to_sync),
        cmocka_unit_test(test_query_after_unsynced_batch),
        cmocka_unit_test(test_copy_in),
        cmocka_unit_test(test_copy_out),
        cmocka_unit_test(test_stray_copy_messages),
        cmocka_unit_test(test_mismatch_is_lost),
        cmocka_unit_test(test_ring_grows_in_order),
        cmocka_unit_test(test_inline_matches_general),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
