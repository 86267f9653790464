/*
 * fuzz_owed — libFuzzer target for what a backend still owes (pooler/owed.c), fed
 * random sequences of messages sent to the backend and answers read from it.
 *
 * Input: one byte per operation. Below 0x80 a message sent (owed_sent), from 0x80 an
 * answer (owed_answer): the low 7 bits pick a type from the table below, or, past its
 * end, are the type byte itself (types owed does not know). 0x7f is owed_reset.
 *
 * Every operation runs on two states: one through the inline owed_sent/owed_answer of
 * owed.h, one through owed_sent_slow/owed_answer_slow only. Checked after each, abort()
 * on violation:
 *   - until one is lost, both hold the same requests in the same order and the same
 *     flags (the fast paths do exactly what the general code does);
 *   - ready is the number of Sync/Query/FunctionCall in the ring, and (until lost)
 *     exec_sent - exec_done the number of Query/Execute;
 *   - the ring holds only requests and CopyDone/CopyFail markers, never a marker at
 *     its head, and fits its capacity (0 or a power of two);
 *   - skipping implies an empty ring; settled implies nothing owed (count and ready 0);
 *   - lost stays set until a reset.
 * No undefined behaviour (UBSan) and no leak (each input frees its rings).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/owed.h"

static const char sent_types[] = "PBDECHSQFdcfX";
static const char answer_types[] = "123tnTCIsGHVZEDNSAdcWK";
#define OP_RESET 0x7f

static uint8_t ring_at(const struct wp_owed *o, uint32_t i)
{
    return o->ring[(o->head + i) & (o->cap - 1)];
}

static int same_state(const struct wp_owed *a, const struct wp_owed *b)
{
    if (a->count != b->count || a->ready != b->ready || a->unsynced != b->unsynced ||
        a->skipping != b->skipping || a->copy_in != b->copy_in || a->lost != b->lost ||
        a->exec_sent != b->exec_sent || a->exec_done != b->exec_done)
        return 0;
    for (uint32_t i = 0; i < a->count; i++)
        if (ring_at(a, i) != ring_at(b, i))
            return 0;
    return 1;
}

static void dump(const char *what, const struct wp_owed *o, uint8_t op)
{
    fprintf(stderr, "after op 0x%02x: %s (count %u, ready %u, unsynced %d, skipping %d, "
            "copy_in %d, lost %d) [", op, what, o->count, o->ready, o->unsynced, o->skipping,
            o->copy_in, o->lost);
    for (uint32_t i = 0; i < o->count && o->cap; i++)
        fputc(ring_at(o, i), stderr);
    fputs("]\n", stderr);
}

static void fail(const char *what, const struct wp_owed *o, uint8_t op)
{
    dump(what, o, op);
    abort();
}

static void check_state(const struct wp_owed *o, uint8_t op)
{
    if (o->cap & (o->cap - 1))
        fail("capacity not a power of two", o, op);
    if (o->count > o->cap)
        fail("more requests than room", o, op);
    uint32_t ready = 0, execs = 0;
    for (uint32_t i = 0; i < o->count; i++) {
        uint8_t t = ring_at(o, i);
        if (!memchr("PBDECSQFcf", t, 10))
            fail("a ring entry that is no request", o, op);
        ready += t == 'S' || t == 'Q' || t == 'F';
        execs += t == 'Q' || t == 'E';
    }
    if (ready != o->ready)
        fail("ready is not the Syncs/Queries/FunctionCalls in the ring", o, op);
    if (!o->lost && o->exec_sent - o->exec_done != execs)
        fail("exec_sent - exec_done is not the Queries/Executes in the ring", o, op);
    if (o->count > 0 && (ring_at(o, 0) == 'c' || ring_at(o, 0) == 'f'))
        fail("a CopyDone/CopyFail marker at the head", o, op);
    if (o->skipping && o->count > 0)
        fail("skipping with requests waiting", o, op);
    if (owed_settled(o) && (o->count != 0 || o->ready != 0))
        fail("settled while owing", o, op);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wp_owed fast = {0}, slow = {0};
    int was_lost = 0, fast_was_lost = 0;
    for (size_t i = 0; i < size; i++) {
        uint8_t op = data[i], index = op & 0x7f;
        if (op == OP_RESET) {
            owed_reset(&fast);
            owed_reset(&slow);
            was_lost = fast_was_lost = 0;
        } else if (op & 0x80) {
            uint8_t type = index < sizeof answer_types - 1 ? (uint8_t)answer_types[index] : index;
            owed_answer(&fast, type);
            owed_answer_slow(&slow, type);
        } else {
            uint8_t type = index < sizeof sent_types - 1 ? (uint8_t)sent_types[index] : index;
            owed_sent(&fast, type);
            owed_sent_slow(&slow, type);
        }
        check_state(&fast, op);
        check_state(&slow, op);
        if ((was_lost && !slow.lost) || (fast_was_lost && !fast.lost))
            fail("lost cleared without a reset", was_lost ? &slow : &fast, op);
        /* Once lost the backend is closed: what the two do after that does not matter. */
        if (!was_lost && !same_state(&fast, &slow)) {
            dump("inline", &fast, op);
            fail("general", &slow, op);
        }
        was_lost = slow.lost;
        fast_was_lost = fast.lost;
    }
    owed_free(&fast);
    owed_free(&slow);
    return 0;
}
