/*
 * fuzz_session_state — libFuzzer target for a client's settings and pins
 * (pooler/session_state.c), beside owed as the relay runs them.
 *
 * Input: two bytes per operation. The first picks what happens, the second a detail:
 *   client: a Query (text from the table below), a Parse (statement name, text), a
 *           Bind (portal, statement), an Execute (portal), a Sync;
 *   backend: the oldest request is answered — a Query with CommandCompletes (tags
 *           from the table), perhaps an ErrorResponse, then ReadyForQuery with a
 *           status from the detail; a Parse/Bind/Execute with its completion or an
 *           ErrorResponse; a Sync with ReadyForQuery.
 * The client starts with no startup values, so every setting comes from a SET.
 * Checked after each operation, abort() on violation:
 *   - tickets are in request order, each for a Query or Execute sent (those owed has
 *     dropped go at the next answer read);
 *   - tickets imply `watching`; after ReadyForQuery 'I' nothing is pending;
 *   - the client's and the backend's views hold the same unreported settings with
 *     the same values (a SET reaches both or neither: nothing leaks to the next
 *     client, nothing is lost for this one), and no resync is asked for;
 *   - a pin cause held by name has its bit set.
 * No undefined behaviour (UBSan) and no leak (ASan).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/owed.h"
#include "warmpool/session_sql.h"
#include "warmpool/session_state.h"

static const char *const texts[] = {
    "SELECT 1",
    "SET work_mem = '8MB'",
    "SET search_path = a, \"B\"",
    "RESET work_mem",
    "RESET ALL",
    "DISCARD ALL",
    "SET LOCAL work_mem = '1MB'",
    "BEGIN; SET lock_timeout = 5; COMMIT",
    "SET statement_timeout = 1; SELECT 1/0",
    "LISTEN a",
    "UNLISTEN *",
    "UNLISTEN a",
    "SELECT pg_advisory_lock(1)",
    "SELECT pg_advisory_unlock_all()",
    "CREATE TEMP TABLE t(x int)",
    "DROP TABLE t",
    "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
    "CLOSE ALL",
    "SELECT set_config('a.b', 'c', false)",
    "SET ROLE bob",
    "SET transaction_isolation = 'serializable'",
    "SET a.b = 1; SET a.c = 2; RESET a.b",
    "SAVEPOINT s",
    "ROLLBACK TO SAVEPOINT s",
    "RELEASE s",
    "BEGIN; SET a.b = 3; SAVEPOINT t; SET a.c = 4; ROLLBACK TO t; COMMIT",
};
static const char *const tags[] = {"SELECT 1", "SET",     "COMMIT", "ROLLBACK",
                                   "SAVEPOINT", "RESET",  "BEGIN",  "DISCARD ALL",
                                   "RELEASE",  "LISTEN", "PREPARE TRANSACTION"};
static const char *const names[] = {"", "s1", "s2"};
static const char status_of[] = {'I', 'T', 'E'};

#define PICK(list, b) list[(b) % (sizeof list / sizeof list[0])]

struct env {
    struct wp_owed owed;
    struct wp_session ss;
    struct wp_params client, server, startup;
    struct session_views views;
    struct session_sql scan;
};

static struct session_text *text_of(struct env *e, const char *sql)
{
    int failed = 0;
    session_sql_scan(sql, strlen(sql), 0, &e->scan);
    return session_text_from_scan(&e->scan, &failed);
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_session_state: %s\n", what);
        abort();
    }
}

static uint8_t head(const struct wp_owed *o)
{
    return o->count ? o->ring[o->head] : 0;
}

static void answer(struct env *e, uint8_t type, const char *tag)
{
    if (e->ss.watching && type == 'C')
        session_command_complete(&e->ss, &e->owed, tag, &e->views);
    if (e->ss.watching && type == 'E')
        session_error(&e->ss);
    owed_answer(&e->owed, type);
}

static void ready(struct env *e, char status)
{
    owed_answer(&e->owed, 'Z');
    if (e->ss.watching)
        session_ready(&e->ss, &e->owed, status, &e->views);
    if (status == 'I')
        check(e->ss.npending == 0, "changes pending after ReadyForQuery 'I'");
}

static void client_op(struct env *e, uint8_t op, uint8_t arg)
{
    struct session_text *text;
    switch (op % 5) {
    case 0: {
        uint64_t before = e->owed.exec_sent; /* skipped after an error: never sent */
        text = text_of(e, PICK(texts, arg));
        owed_sent(&e->owed, 'Q');
        if (text && e->owed.exec_sent > before)
            session_query_sent(&e->ss, text, before);
        session_text_unref(text);
        break;
    }
    case 1:
        text = text_of(e, PICK(texts, arg >> 2));
        session_parse_sent(&e->ss, PICK(names, arg), text);
        session_text_unref(text);
        owed_sent(&e->owed, 'P');
        break;
    case 2:
        session_bind_sent(&e->ss, PICK(names, arg), PICK(names, arg >> 2));
        owed_sent(&e->owed, 'B');
        break;
    case 3: {
        uint64_t before = e->owed.exec_sent;
        owed_sent(&e->owed, 'E');
        if (e->owed.exec_sent > before)
            session_execute_sent(&e->ss, PICK(names, arg), before);
        break;
    }
    default:
        owed_sent(&e->owed, 'S');
        break;
    }
}

static void backend_op(struct env *e, uint8_t arg)
{
    switch (head(&e->owed)) {
    case 'Q':
        for (int i = 0; i < (arg & 3); i++)
            answer(e, 'C', PICK(tags, arg >> 2 ^ (uint8_t)i));
        if (arg & 0x80)
            answer(e, 'E', NULL);
        ready(e, PICK(status_of, arg >> 4));
        break;
    case 'P':
    case 'B':
    case 'E':
        if (arg & 0x80)
            answer(e, 'E', NULL);
        else
            answer(e, head(&e->owed) == 'P' ? '1' : head(&e->owed) == 'B' ? '2' : 'C',
                   PICK(tags, arg));
        break;
    case 'S':
        ready(e, PICK(status_of, arg));
        break;
    default:
        break;
    }
}

static void check_views(const struct env *e)
{
    check(!e->ss.resync, "a resync without startup values");
    for (int side = 0; side < 2; side++) {
        const struct wp_params *a = side ? &e->server : &e->client;
        const struct wp_params *b = side ? &e->client : &e->server;
        for (int i = 0; i < a->n; i++) {
            const char *other = params_get(b, a->items[i].name);
            check(a->items[i].reported || (other && strcmp(other, a->items[i].value) == 0),
                  "the client's and the backend's settings differ");
        }
    }
}

static void check_state(const struct env *e)
{
    const struct wp_session *ss = &e->ss;
    check(ss->ntickets == 0 || ss->watching, "tickets while not watching");
    for (int i = 0; i < ss->ntickets; i++) {
        check(ss->tickets[i].request < e->owed.exec_sent, "a ticket for a request never sent");
        check(i == 0 || ss->tickets[i].request > ss->tickets[i - 1].request,
              "tickets out of order");
    }
    static const int cause_of[3] = {PIN_LISTEN, PIN_TEMP_OBJECT, PIN_HOLD_CURSOR};
    for (int h = 0; h < 3; h++)
        check(ss->held[h].n == 0 || (ss->causes >> cause_of[h] & 1), "a name held without pin");
    check_views(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct env e = {0};
    e.views = (struct session_views){&e.client, &e.server, &e.startup};
    for (size_t i = 0; i + 1 < size && !e.owed.lost; i += 2) {
        if (data[i] & 1)
            backend_op(&e, data[i + 1]);
        else
            client_op(&e, (uint8_t)(data[i] >> 1), data[i + 1]);
        check_state(&e);
    }
    session_free(&e.ss);
    owed_free(&e.owed);
    params_clear(&e.client);
    params_clear(&e.server);
    session_sql_free(&e.scan);
    return 0;
}
