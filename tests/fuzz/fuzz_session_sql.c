/*
 * fuzz_session_sql — libFuzzer target for session_sql_scan and session_sql_mentions.
 *
 * Input: the text of one simple Query, without its NUL, read with
 * standard_conforming_strings on and off, each time from an exact-size heap copy so
 * ASan reports any read past len. Checked properties:
 *   - a text session_sql_mentions rejects has no effect but savepoint statements (the
 *     relay skips the scan then, unless it follows savepoints),
 *     and it answers as a plain search for its words does (bytes compared as b | 0x20);
 *   - effects stay within bounds: at most SESSION_SQL_EFFECTS_MAX, overflow only when
 *     full, in statement order within the statement count, kinds and causes that go
 *     together, names and values NUL-terminated inside the buffer and no longer than
 *     their limits, a SET with a value and a RESET without; a malformed text has none;
 *   - a struct reused from an earlier scan reports what a fresh one does;
 *   - whitespace around the text changes nothing, and a statement appended on a new
 *     line adds one statement and no effect.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/session_sql.h"

#include "fuzz_text.h"

#define OBJECT_NAME_MAX (3 * 64) /* schema.name with quotes decoded, or a setting */


/* The text at offset lies in the buffer and ends there; its length, or -1. */
static long text_length(const struct session_sql *s, size_t offset)
{
    if (offset == SESSION_SQL_NO_TEXT)
        return -1;
    if (offset >= s->strings.len)
        abort();
    const void *nul = memchr(s->strings.data + offset, '\0', s->strings.len - offset);
    if (!nul)
        abort();
    return (long)((const uint8_t *)nul - (s->strings.data + offset));
}

static int is_savepoint(enum session_sql_kind kind)
{
    return kind == SSQL_SAVEPOINT || kind == SSQL_RELEASE || kind == SSQL_ROLLBACK_TO;
}

/* Effects other than savepoint statements (which session_sql_mentions does not look for). */
static int session_effects(const struct session_sql *s)
{
    int n = s->overflow;
    for (int i = 0; i < s->neffects; i++)
        n += !is_savepoint(s->effects[i].kind);
    return n;
}

static int pins_or_unpins(enum session_sql_kind kind)
{
    return kind == SSQL_PIN || kind == SSQL_UNPIN;
}

static void check_effect(const struct session_sql *s, const struct session_sql_effect *e,
                         int last_statement)
{
    if ((unsigned)e->kind > SSQL_ROLLBACK_TO || e->kind == SSQL_NONE ||
        (unsigned)e->cause > SSQL_CAUSE_HIDDEN_CALL)
        abort();
    if (pins_or_unpins(e->kind) != (e->cause != SSQL_CAUSE_NONE))
        abort();
    if (e->statement < last_statement || e->statement >= s->statements)
        abort();
    long name = text_length(s, e->name), value = text_length(s, e->value);
    if (name > OBJECT_NAME_MAX || value > SESSION_SQL_VALUE_MAX)
        abort();
    if (is_savepoint(e->kind) && name <= 0)
        abort();
    if ((e->kind == SSQL_SET || e->kind == SSQL_RESET) &&
        (name <= 0 || name > SESSION_SQL_NAME_MAX))
        abort();
    if ((e->kind == SSQL_SET) != (value >= 0) && e->kind != SSQL_SET_LOCAL)
        abort();
    if (e->all && (e->kind != SSQL_UNPIN || name >= 0))
        abort();
    if (session_sql_value(s, e) == NULL && value >= 0)
        abort();
}

static void check_scan(const struct session_sql *s)
{
    if (s->neffects < 0 || s->neffects > SESSION_SQL_EFFECTS_MAX ||
        (s->overflow && s->neffects != SESSION_SQL_EFFECTS_MAX))
        abort();
    if (s->malformed && (s->neffects || s->overflow))
        abort();
    int last_statement = 0;
    for (int i = 0; i < s->neffects; i++) {
        check_effect(s, &s->effects[i], last_statement);
        last_statement = s->effects[i].statement;
    }
}

/* Same effects, names and values (statement indexes as well). */
static int same_effects(const struct session_sql *a, const struct session_sql *b)
{
    if (a->neffects != b->neffects || a->overflow != b->overflow || a->malformed != b->malformed)
        return 0;
    for (int i = 0; i < a->neffects; i++) {
        const struct session_sql_effect *x = &a->effects[i], *y = &b->effects[i];
        const char *xv = session_sql_value(a, x), *yv = session_sql_value(b, y);
        if (x->kind != y->kind || x->cause != y->cause || x->statement != y->statement ||
            x->all != y->all || strcmp(session_sql_name(a, x), session_sql_name(b, y)) != 0 ||
            (xv == NULL) != (yv == NULL) || (xv && strcmp(xv, yv) != 0))
            return 0;
    }
    return 1;
}

/* The words session_sql_mentions looks for, searched one byte at a time. */
static int mentions_reference(const char *text, size_t len)
{
    static const char *const words[] = {"set",      "discard", "drop",  "listen", "hold",
                                        "advisory", "temp",    "close", "u&\""};
    for (size_t i = 0; i < len; i++)
        for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
            size_t n = strlen(words[w]), k = 0;
            while (k < n && i + k < len && (char)(text[i + k] | 0x20) == words[w][k])
                k++;
            if (k == n)
                return 1;
        }
    return 0;
}

/* Kept from input to input: reuse must not leak what an earlier scan found. */
static struct session_sql reused;

static void check_setting(const uint8_t *data, size_t size, int backslash_strings)
{
    size_t len, padded_len, longer_len;
    char *text = framed(data, size, "", "", &len);
    struct session_sql fresh = {0}, padded = {0}, longer = {0};
    session_sql_scan(text, len, backslash_strings, &fresh);
    check_scan(&fresh);
    int mentioned = session_sql_mentions(text, len);
    if (mentioned != mentions_reference(text, len))
        abort();
    if (!mentioned && session_effects(&fresh))
        abort();
    session_sql_scan(text, len, backslash_strings, &reused);
    if (!same_effects(&fresh, &reused) || fresh.statements != reused.statements)
        abort();

    char *padded_text = framed(data, size, pad_front, pad_back, &padded_len);
    session_sql_scan(padded_text, padded_len, backslash_strings, &padded);
    if (!same_effects(&fresh, &padded) || fresh.statements != padded.statements)
        abort();
    char *longer_text = framed(data, size, "", second, &longer_len);
    session_sql_scan(longer_text, longer_len, backslash_strings, &longer);
    if (!fresh.malformed &&
        (!same_effects(&fresh, &longer) || longer.statements != fresh.statements + 1))
        abort();
    session_sql_free(&longer);
    session_sql_free(&padded);
    session_sql_free(&fresh);
    free(longer_text);
    free(padded_text);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_setting(data, size, 0);
    check_setting(data, size, 1);
    return 0;
}
