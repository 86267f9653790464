/*
 * owed — what a backend still owes, from the messages sent to it and its answers
 * (see include/warmpool/owed.h). The ring holds one byte per request; markers for a
 * CopyDone/CopyFail whose COPY has not started yet ('c', 'f') ride along so that the
 * Syncs the backend will ignore inside that COPY can be told from the ones it answers.
 */
#include <stdlib.h>
#include <string.h>

#include "warmpool/owed.h"

#define OWED_FIRST_CAP 8u

const uint8_t owed_request_kind[256] = {
    ['S'] = OWED_READY,
    ['Q'] = OWED_READY | OWED_EXEC,
    ['F'] = OWED_READY,
    ['P'] = OWED_EXTENDED,
    ['B'] = OWED_EXTENDED,
    ['D'] = OWED_EXTENDED,
    ['E'] = OWED_EXTENDED | OWED_EXEC,
    ['C'] = OWED_EXTENDED,
};

static int answers_with_ready(uint8_t type)
{
    return owed_request_kind[type] & OWED_READY;
}

static int is_extended(uint8_t type)
{
    return owed_request_kind[type] & OWED_EXTENDED;
}

static int is_copy_end(uint8_t type)
{
    return type == 'c' || type == 'f';
}

static uint8_t *slot(const struct wp_owed *o, uint32_t i)
{
    return &o->ring[(o->head + i) & (o->cap - 1)];
}

static int grow(struct wp_owed *o)
{
    uint32_t cap = o->cap ? o->cap * 2 : OWED_FIRST_CAP;
    uint8_t *ring = malloc(cap);
    if (!ring || cap < o->cap)
        goto fail;
    for (uint32_t i = 0; i < o->count; i++)
        ring[i] = *slot(o, i);
    free(o->ring);
    o->ring = ring;
    o->cap = cap;
    o->head = 0;
    return 0;
fail:
    free(ring);
    o->lost = 1;
    return -1;
}

static void push(struct wp_owed *o, uint8_t type)
{
    if (o->count == o->cap && grow(o) < 0)
        return;
    *slot(o, o->count) = type;
    o->count++;
    o->exec_sent += owed_request_kind[type] >> 2;
    if (answers_with_ready(type))
        o->ready++;
}

/* A CopyDone/CopyFail the backend reads outside COPY is ignored: at the head, it
   owes nothing for it. */
static void drop_leading_copy_ends(struct wp_owed *o)
{
    while (o->count > 0 && is_copy_end(*slot(o, 0))) {
        o->head = (o->head + 1) & (o->cap - 1);
        o->count--;
    }
}

static void pop(struct wp_owed *o)
{
    if (answers_with_ready(*slot(o, 0)))
        o->ready--;
    o->exec_done += owed_request_kind[*slot(o, 0)] >> 2;
    o->head = (o->head + 1) & (o->cap - 1);
    o->count--;
    drop_leading_copy_ends(o);
}

void owed_sent_slow(struct wp_owed *o, uint8_t type)
{
    if (o->skipping && type != 'S')
        return; /* the backend ignores it */
    if (o->copy_in) {
        if (is_copy_end(type))
            o->copy_in = 0;
        else if (type != 'd' && type != 'S' && type != 'H')
            o->lost = 1; /* aborts the COPY and is swallowed by it */
        return;          /* CopyData, and Flush/Sync inside COPY IN, get no answer */
    }
    switch (type) {
    case 'P':
    case 'B':
    case 'D':
    case 'E':
    case 'C':
        push(o, type);
        o->unsynced = 1;
        break;
    case 'H':
        o->unsynced = 1;
        break;
    case 'S':
        push(o, type);
        o->unsynced = 0;
        o->skipping = 0;
        break;
    case 'Q':
    case 'F':
        /* A Query ends the implicit transaction of extended messages before it (it
           commits them, or its error rolls them back): unless the backend skips it,
           it is a boundary as good as a Sync. */
        push(o, type);
        o->unsynced = 0;
        break;
    case 'c':
    case 'f':
        if (o->count > 0) /* its COPY may still start */
            push(o, type);
        break;
    default:
        break;
    }
}

/*
 * The request at the head started COPY IN. Syncs sent after it and before the
 * client's CopyDone/CopyFail are read by the COPY and ignored. Any other request
 * there would abort the COPY: not modelled, so the state is lost.
 */
static void copy_in_started(struct wp_owed *o)
{
    uint32_t kept = 1, i = 1;
    o->copy_in = 1;
    for (; i < o->count; i++) {
        uint8_t type = *slot(o, i);
        if (type == 'S') {
            o->ready--;
            continue;
        }
        if (is_copy_end(type)) {
            o->copy_in = 0;
            i++;
            break;
        }
        o->lost = 1;
        break;
    }
    for (; i < o->count; i++)
        *slot(o, kept++) = *slot(o, i);
    o->count = kept;
}

/* An extended request failed: it and everything up to the next Sync get no answer. */
static void skip_to_sync(struct wp_owed *o)
{
    while (o->count > 0 && *slot(o, 0) != 'S')
        pop(o);
    if (o->count == 0)
        o->skipping = 1;
}

/* head: the oldest request's type, 0 when none is waiting. */
static int answer_fits(struct wp_owed *o, uint8_t type, uint8_t head)
{
    switch (type) {
    case '1':
        return head == 'P';
    case '2':
        return head == 'B';
    case '3':
        return head == 'C';
    case 't':
    case 'n':
        return head == 'D';
    case 'T':
        return head == 'D' || head == 'Q';
    case 'C':
    case 'I':
    case 'G':
    case 'H':
        return head == 'E' || head == 'Q';
    case 's':
        return head == 'E';
    case 'D': /* the relay passes rows without asking */
        return head == 'E' || head == 'Q';
    case 'V':
        return head == 'F';
    case 'Z':
        return answers_with_ready(head);
    case 'E':
        return o->count > 0; /* else unsolicited: the backend is going away */
    case 'd':
    case 'c':
    case 'N':
    case 'A':
    case 'S':
        return 1; /* copy data, notices, notifications, parameter changes */
    default:
        return 0;
    }
}

void owed_answer_slow(struct wp_owed *o, uint8_t type)
{
    uint8_t head = o->count ? *slot(o, 0) : 0;
    if (!answer_fits(o, type, head)) {
        o->lost = 1;
        return;
    }
    switch (type) {
    case '1':
    case '2':
    case '3':
    case 'n':
    case 's':
    case 'Z':
        pop(o);
        break;
    case 'T':
    case 'C':
    case 'I':
        if (head != 'Q')
            pop(o);
        break;
    case 'G':
        copy_in_started(o);
        break;
    case 'E':
        o->copy_in = 0;
        if (is_extended(head))
            skip_to_sync(o);
        break;
    default:
        break;
    }
}

void owed_reset(struct wp_owed *o)
{
    uint8_t *ring = o->ring;
    uint32_t cap = o->cap;
    memset(o, 0, sizeof *o);
    o->ring = ring;
    o->cap = cap;
}

void owed_free(struct wp_owed *o)
{
    free(o->ring);
    memset(o, 0, sizeof *o);
}
