/*
 * fuzz_sqlprep — libFuzzer target for sqlprep_scan and sqlprep_parse (see README.md).
 *
 * Input: the text of one simple Query, without its NUL. Each text is scanned from an
 * exact-size heap copy, so ASan reports any read past len. Checked properties:
 *   - every used name lies inside the text, in order, starts like a name, and decodes
 *     to a non-empty name of at most SQLPREP_IDENT_MAX bytes; the counts agree with
 *     each other (nothing named when first is SQLPREP_NONE, at most SQLPREP_USES_MAX);
 *   - a text sqlprep_mentions rejects names nothing (the relay skips the scan then);
 *   - SQLPREP_STRINGS_EITHER gives one of the two readings unless it says ambiguous;
 *   - replacing every used name by a backend name (what the relay sends) keeps the
 *     statements, the defines and the uses, which then all name that backend name;
 *   - whitespace around the text changes nothing but the offsets; a statement appended
 *     on a new line adds one statement and no use;
 *   - sqlprep_parse: a recognised command is the only statement, has a non-empty name,
 *     and its rest lies inside the input, starts as the grammar says and carries no
 *     trailing space or ';'.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "warmpool/sqlprep.h"

#include "fuzz_text.h"


static int starts_like_name(char c)
{
    return c == '"' || c == '_' || isalpha((unsigned char)c) || (unsigned char)c >= 0x80;
}

static void check_scan(const struct sqlprep_scan *sc, const char *text, size_t len)
{
    if (sc->nuses < 0 || sc->nuses > SQLPREP_USES_MAX ||
        (sc->uses_overflow && sc->nuses < SQLPREP_USES_MAX))
        abort();
    size_t done = 0;
    for (int i = 0; i < sc->nuses; i++) {
        const struct sqlprep_use *u = &sc->uses[i];
        if (u->offset < done || u->len == 0 || u->offset > len || u->len > len - u->offset ||
            !starts_like_name(text[u->offset]))
            abort();
        size_t n = strnlen(u->name, SQLPREP_NAME_MAX);
        if (n == 0 || n > SQLPREP_IDENT_MAX || (u->after_clear && sc->clears == 0))
            abort();
        done = u->offset + u->len;
    }
    if (sc->first == SQLPREP_NONE &&
        (sc->nuses || sc->defines || sc->unreadable || sc->uses_overflow))
        abort();
    if (sc->defines && sc->first_define != SQLPREP_PREPARE &&
        sc->first_define != SQLPREP_DEALLOCATE)
        abort();
    if ((sc->nuses || sc->defines) && sc->statements == 0)
        abort();
}

static int same_reading(const struct sqlprep_scan *a, const struct sqlprep_scan *b, size_t shift)
{
    if (a->statements != b->statements || a->first != b->first || a->defines != b->defines ||
        a->nuses != b->nuses || a->malformed != b->malformed || a->unreadable != b->unreadable)
        return 0;
    for (int i = 0; i < a->nuses; i++)
        if (a->uses[i].offset + shift != b->uses[i].offset || a->uses[i].len != b->uses[i].len ||
            strcmp(a->uses[i].name, b->uses[i].name) != 0)
            return 0;
    return 1;
}

/* What the relay does: every used name replaced by a backend name, spaced so that it
   cannot run into the bytes around it. */
static void check_rewrite(const struct sqlprep_scan *sc, const char *text, size_t len)
{
    if (sc->malformed || sc->nuses == 0)
        return;
    static const char stand_in[] = " wp_missing_12 ";
    size_t cap = len + (size_t)sc->nuses * sizeof stand_in, n = 0, done = 0;
    char *out = malloc(cap);
    if (!out)
        abort();
    for (int i = 0; i < sc->nuses; i++) {
        memcpy(out + n, text + done, sc->uses[i].offset - done);
        n += sc->uses[i].offset - done;
        memcpy(out + n, stand_in, sizeof stand_in - 1);
        n += sizeof stand_in - 1;
        done = sc->uses[i].offset + sc->uses[i].len;
    }
    memcpy(out + n, text + done, len - done);
    n += len - done;
    struct sqlprep_scan again;
    sqlprep_scan(out, n, SQLPREP_STRINGS_STANDARD, &again);
    if (again.statements != sc->statements || again.defines != sc->defines ||
        again.nuses != sc->nuses || again.malformed)
        abort();
    for (int i = 0; i < again.nuses; i++)
        if (strcmp(again.uses[i].name, "wp_missing_12") != 0)
            abort();
    free(out);
}

static void check_command(const struct sqlprep *sp, const struct sqlprep_scan *sc, const char *text,
                          size_t len)
{
    if (!memchr(sp->name, '\0', SQLPREP_NAME_MAX) || (unsigned)sp->kind > SQLPREP_DEALLOCATE_ALL)
        abort();
    if (sp->kind == SQLPREP_NONE)
        return;
    if (sc->statements != 1 || (sp->kind != SQLPREP_DEALLOCATE_ALL && sp->name[0] == '\0'))
        abort();
    if (sp->kind != SQLPREP_PREPARE && sp->kind != SQLPREP_EXECUTE)
        return;
    if (!sp->rest || sp->rest < text || sp->rest_len > len ||
        (size_t)(sp->rest - text) > len - sp->rest_len)
        abort();
    if (sp->rest_len > 0 &&
        (sp->rest[sp->rest_len - 1] == ';' || isspace((unsigned char)sp->rest[sp->rest_len - 1])))
        abort();
    if (sp->kind == SQLPREP_EXECUTE && sp->rest_len > 0 && sp->rest[0] != '(')
        abort();
    if (sp->kind == SQLPREP_PREPARE &&
        (sp->rest_len == 0 || (sp->rest[0] != '(' && strncasecmp(sp->rest, "as", 2) != 0)))
        abort();
}

/* The three settings: EITHER is one of the readings unless ambiguous. */
static void check_settings(const char *text, size_t len, const struct sqlprep_scan *standard)
{
    struct sqlprep_scan backslash, either;
    sqlprep_scan(text, len, SQLPREP_STRINGS_BACKSLASH, &backslash);
    sqlprep_scan(text, len, SQLPREP_STRINGS_EITHER, &either);
    check_scan(&backslash, text, len);
    check_scan(&either, text, len);
    if (!either.ambiguous && !same_reading(&either, standard, 0) &&
        !same_reading(&either, &backslash, 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len, padded_len, longer_len;
    char *text = framed(data, size, "", "", &len);
    struct sqlprep_scan sc, padded, longer;
    sqlprep_scan(text, len, SQLPREP_STRINGS_STANDARD, &sc);
    check_scan(&sc, text, len);
    if (!sqlprep_mentions(text, len) && sc.first != SQLPREP_NONE)
        abort();
    check_settings(text, len, &sc);
    check_rewrite(&sc, text, len);
    struct sqlprep sp;
    sqlprep_parse(text, len, &sp);
    check_command(&sp, &sc, text, len);

    char *padded_text = framed(data, size, pad_front, pad_back, &padded_len);
    sqlprep_scan(padded_text, padded_len, SQLPREP_STRINGS_STANDARD, &padded);
    if (!same_reading(&sc, &padded, strlen(pad_front)))
        abort();
    char *longer_text = framed(data, size, "", second, &longer_len);
    sqlprep_scan(longer_text, longer_len, SQLPREP_STRINGS_STANDARD, &longer);
    if (!sc.malformed && (longer.statements != sc.statements + 1 || longer.nuses != sc.nuses))
        abort();
    free(longer_text);
    free(padded_text);
    free(text);
    return 0;
}
