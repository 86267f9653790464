/*
 * fuzz_sqlprep — libFuzzer target for sqlprep_parse (see README.md).
 *
 * Input: the text of one simple Query, without its NUL. Each text is parsed from an
 * exact-size heap copy, so ASan reports any read past len. Checked properties:
 * the name is always NUL-terminated inside SQLPREP_NAME_MAX; a recognised command
 * has a non-empty name, and its rest lies inside the input, starts as the grammar
 * says and carries no trailing space or ';'. Padding the text with whitespace
 * changes nothing, and appending a second statement always gives SQLPREP_NONE.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "warmpool/sqlprep.h"

static const char pad_front[] = " \n\t";
static const char pad_back[] = "\r\n ";
static const char second[] = "; SELECT 1";

/* Parse front + data + back from one exact-size heap block; *copy receives the
   block (freed by the caller) so rest can be checked against it. */
static void parse_framed(const uint8_t *data, size_t size, const char *front, const char *back,
                         char **copy, struct sqlprep *out)
{
    size_t nf = strlen(front), nb = strlen(back), len = nf + size + nb;
    char *text = malloc(len ? len : 1);
    if (!text)
        abort();
    memcpy(text, front, nf);
    if (size)
        memcpy(text + nf, data, size);
    memcpy(text + nf + size, back, nb);
    sqlprep_parse(text, len, out);
    *copy = text;
}

static int has_rest(enum sqlprep_kind kind)
{
    return kind == SQLPREP_PREPARE || kind == SQLPREP_EXECUTE;
}

static void check_rest(const struct sqlprep *sp, const char *text, size_t len)
{
    if (!sp->rest || sp->rest < text || sp->rest_len > len ||
        (size_t)(sp->rest - text) > len - sp->rest_len)
        abort();
    if (sp->rest_len > 0) {
        char last = sp->rest[sp->rest_len - 1];
        if (last == ';' || isspace((unsigned char)last))
            abort();
    }
    if (sp->kind == SQLPREP_EXECUTE && sp->rest_len > 0 && sp->rest[0] != '(')
        abort();
    if (sp->kind == SQLPREP_PREPARE && sp->rest_len == 0)
        abort();
    if (sp->kind == SQLPREP_PREPARE && sp->rest[0] != '(' &&
        (sp->rest_len < 2 || strncasecmp(sp->rest, "as", 2) != 0))
        abort();
}

static void check_one(const struct sqlprep *sp, const char *text, size_t len)
{
    if ((unsigned)sp->kind > SQLPREP_DEALLOCATE_ALL)
        abort();
    if (!memchr(sp->name, '\0', SQLPREP_NAME_MAX))
        abort();
    if (sp->kind == SQLPREP_NONE)
        return;
    if (sp->kind != SQLPREP_DEALLOCATE_ALL && sp->name[0] == '\0')
        abort();
    if (has_rest(sp->kind))
        check_rest(sp, text, len);
}

/* Whitespace around the text must not change the answer. */
static void check_padded(const uint8_t *data, size_t size, const struct sqlprep *plain,
                         const char *plain_text)
{
    char *text;
    struct sqlprep sp;
    parse_framed(data, size, pad_front, pad_back, &text, &sp);
    check_one(&sp, text, strlen(pad_front) + size + strlen(pad_back));
    if (sp.kind != plain->kind || strcmp(sp.name, plain->name) != 0)
        abort();
    if (has_rest(sp.kind) &&
        (sp.rest_len != plain->rest_len ||
         (size_t)(sp.rest - text) != strlen(pad_front) + (size_t)(plain->rest - plain_text)))
        abort();
    free(text);
}

/* A recognised command followed by another statement is not one command any more. */
static void check_second_statement(const uint8_t *data, size_t size)
{
    char *text;
    struct sqlprep sp;
    parse_framed(data, size, "", second, &text, &sp);
    check_one(&sp, text, size + strlen(second));
    if (sp.kind != SQLPREP_NONE)
        abort();
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;
    struct sqlprep sp;
    parse_framed(data, size, "", "", &text, &sp);
    check_one(&sp, text, size);
    check_padded(data, size, &sp, text);
    if (sp.kind != SQLPREP_NONE)
        check_second_statement(data, size);
    free(text);
    return 0;
}
