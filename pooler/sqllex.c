/*
 * sqllex — PostgreSQL's lexical rules for what hides text from its parser (see
 * include/warmpool/sqllex.h).
 *
 * The lexer follows PostgreSQL's scan.l where it matters for finding statements and
 * names: what a quote, comment or dollar quote hides, where a word ends, ';'. Tokens
 * it does not need (numbers, operators) are cut coarsely; that cannot move a statement
 * boundary. Wherever it cannot follow PostgreSQL — a quote or comment that does not
 * end, a zero-length quoted name — PostgreSQL refuses the whole text before running
 * any of it, and the lexer says so (broken).
 */
#include <string.h>

#include "warmpool/sqllex.h"

/* ---------------------------------------------------------------- characters */

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* PostgreSQL's ident_start; bytes of multibyte characters count as letters. */
static int is_ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static int is_ident_char(unsigned char c)
{
    return is_ident_start(c) || is_digit(c) || c == '$';
}

/* The byte at i, or 0 past the end (the text holds no NUL: see sqllex.h). */
static unsigned char at(const struct sqllex *lx, size_t i)
{
    return i < lx->len ? (unsigned char)lx->text[i] : 0;
}

/* ---------------------------------------------------------------- lexer */

static void fail(struct sqllex *lx)
{
    lx->broken = 1;
    lx->pos = lx->len;
}

/* A block comment at pos; they nest, and each star-slash closes the innermost (scan.l's
   xc state). */
static void skip_block_comment(struct sqllex *lx)
{
    int depth = 0;
    while (lx->pos < lx->len) {
        if (at(lx, lx->pos) == '/' && at(lx, lx->pos + 1) == '*') {
            depth++;
            lx->pos += 2;
        } else if (at(lx, lx->pos) == '*' && at(lx, lx->pos + 1) == '/') {
            lx->pos += 2;
            if (--depth == 0)
                return;
        } else {
            lx->pos++;
        }
    }
    fail(lx); /* unterminated comment */
}

/* Whitespace and comments. Outside quotes a comment starts wherever "--" or slash-star
   does, also inside what would otherwise be an operator. */
static void skip_blank(struct sqllex *lx)
{
    for (;;) {
        while (is_space(at(lx, lx->pos)))
            lx->pos++;
        if (at(lx, lx->pos) == '-' && at(lx, lx->pos + 1) == '-') {
            while (lx->pos < lx->len && at(lx, lx->pos) != '\n' && at(lx, lx->pos) != '\r')
                lx->pos++;
        } else if (at(lx, lx->pos) == '/' && at(lx, lx->pos + 1) == '*') {
            skip_block_comment(lx);
        } else {
            return;
        }
    }
}

/* A string constant whose opening quote is at pos: '' is a quote inside it; with
   escapes (E'…', or '…' with standard_conforming_strings off) '\' takes the next byte
   along. Without escapes a '\' is a plain byte, read otherwise by the other setting. */
static void skip_string(struct sqllex *lx, int escapes)
{
    for (size_t i = lx->pos + 1; i < lx->len; i++) {
        char c = lx->text[i];
        if (c == '\\') {
            if (escapes)
                i++;
            else
                lx->setting_matters = 1;
        } else if (c == '\'') {
            if (at(lx, i + 1) != '\'') {
                lx->pos = i + 1;
                return;
            }
            i++;
        }
    }
    fail(lx); /* unterminated string */
}

/* B'…' and X'…' end at the first quote (scan.l's xb/xh states know no '' or '\'). */
static void skip_bit_string(struct sqllex *lx)
{
    const char *close = memchr(lx->text + lx->pos + 1, '\'', lx->len - lx->pos - 1);
    if (!close)
        fail(lx);
    else
        lx->pos = (size_t)(close - lx->text) + 1;
}

/* "…" at pos, "" being a quote inside; a zero-length one is an error. */
static void skip_quoted_ident(struct sqllex *lx)
{
    size_t i = lx->pos + 1;
    while (i < lx->len && (lx->text[i] != '"' || at(lx, i + 1) == '"'))
        i += lx->text[i] == '"' ? 2 : 1;
    if (i >= lx->len || i == lx->pos + 1)
        fail(lx);
    else
        lx->pos = i + 1;
}

/* Length of a dollar-quote delimiter ($$ or $tag$) at i, 0 when there is none. */
static size_t dollar_delimiter(const struct sqllex *lx, size_t i)
{
    size_t j = i + 1;
    if (is_ident_start(at(lx, j)))
        while (is_ident_start(at(lx, j)) || is_digit(at(lx, j)))
            j++;
    return at(lx, j) == '$' ? j + 1 - i : 0;
}

/* '$' at pos: a dollar-quoted string (it ends at the same delimiter), a parameter, or
   a lone '$'. Inside a word a '$' is part of it and never gets here. */
static enum sqllex_kind scan_dollar(struct sqllex *lx)
{
    size_t delim = dollar_delimiter(lx, lx->pos);
    if (!delim) {
        lx->pos++;
        while (is_digit(at(lx, lx->pos)))
            lx->pos++;
        return SQLLEX_OTHER;
    }
    const char *body = lx->text + lx->pos + delim;
    const char *close = memmem(body, lx->len - lx->pos - delim, lx->text + lx->pos, delim);
    if (!close)
        fail(lx); /* unterminated dollar-quoted string */
    else
        lx->pos = (size_t)(close - lx->text) + delim;
    return SQLLEX_STRING;
}

/* U&'…' or U&"…" at pos (the caller saw U&, then a quote). */
static enum sqllex_kind scan_unicode_quote(struct sqllex *lx)
{
    lx->pos += 2;
    if (at(lx, lx->pos) == '"') {
        skip_quoted_ident(lx);
        return SQLLEX_UIDENT;
    }
    /* Backslashes are Unicode escapes here, never quote escapes; with
       standard_conforming_strings off PostgreSQL refuses U&'…' outright. */
    lx->setting_matters = 1;
    if (lx->backslash_strings)
        fail(lx);
    else
        skip_string(lx, 0);
    return SQLLEX_STRING;
}

/* A word at pos, or a string constant with a prefix letter (E'…', N'…', B'…', X'…',
   U&'…', U&"…"): those take the letter only where a word would start. */
static enum sqllex_kind scan_word(struct sqllex *lx)
{
    char first = sqllex_lower((char)at(lx, lx->pos));
    unsigned char next = at(lx, lx->pos + 1);
    if (next == '\'' && (first == 'e' || first == 'n' || first == 'b' || first == 'x')) {
        lx->pos++;
        if (first == 'b' || first == 'x')
            skip_bit_string(lx);
        else
            skip_string(lx, first == 'e' || lx->backslash_strings);
        return SQLLEX_STRING;
    }
    if (first == 'u' && next == '&' && (at(lx, lx->pos + 2) == '\'' || at(lx, lx->pos + 2) == '"'))
        return scan_unicode_quote(lx);
    while (is_ident_char(at(lx, lx->pos)))
        lx->pos++;
    return SQLLEX_WORD;
}

/*
 * A number: digits [. digits] [e [+-] digits]. What follows starts a new token, as
 * PostgreSQL up to 14 reads it ("1x$a$" is 1 and the name x$a$, "1e'…'" is 1 and
 * E'…'); 15 refuses such junk after a number, so either way nothing is hidden.
 */
static void skip_number(struct sqllex *lx)
{
    while (is_digit(at(lx, lx->pos)))
        lx->pos++;
    if (at(lx, lx->pos) == '.' && at(lx, lx->pos + 1) != '.') /* 1..9 is 1 and .. */
        for (lx->pos++; is_digit(at(lx, lx->pos));)
            lx->pos++;
    if (at(lx, lx->pos) != 'e' && at(lx, lx->pos) != 'E')
        return;
    size_t i = lx->pos + 1;
    if (at(lx, i) == '+' || at(lx, i) == '-')
        i++;
    if (!is_digit(at(lx, i)))
        return;
    for (lx->pos = i; is_digit(at(lx, lx->pos));)
        lx->pos++;
}

static enum sqllex_kind scan_token(struct sqllex *lx)
{
    unsigned char c = at(lx, lx->pos);
    switch (c) {
    case ';':
        lx->pos++;
        return SQLLEX_SEMI;
    case '(':
        lx->pos++;
        return SQLLEX_OPEN;
    case ')':
        lx->pos++;
        return SQLLEX_CLOSE;
    case '\'':
        skip_string(lx, lx->backslash_strings);
        return SQLLEX_STRING;
    case '"':
        skip_quoted_ident(lx);
        return SQLLEX_QIDENT;
    case '$':
        return scan_dollar(lx);
    default:
        break;
    }
    if (is_ident_start(c))
        return scan_word(lx);
    if (is_digit(c) || (c == '.' && is_digit(at(lx, lx->pos + 1))))
        skip_number(lx);
    else
        lx->pos++;
    return SQLLEX_OTHER;
}

void sqllex_next(struct sqllex *lx, struct sqllex_token *t)
{
    skip_blank(lx);
    t->start = lx->pos;
    t->kind = lx->pos < lx->len ? scan_token(lx) : SQLLEX_END;
    if (lx->broken)
        t->kind = SQLLEX_END;
    t->end = lx->pos;
}

void sqllex_init(struct sqllex *lx, const char *text, size_t len, int backslash_strings)
{
    memset(lx, 0, sizeof *lx);
    lx->text = text;
    lx->len = len;
    lx->backslash_strings = backslash_strings;
}

/* ---------------------------------------------------------------- words and names */

int sqllex_is_word(const struct sqllex *lx, const struct sqllex_token *t, const char *word)
{
    size_t n = strlen(word);
    if (t->kind != SQLLEX_WORD || t->end - t->start != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (sqllex_lower(lx->text[t->start + i]) != word[i])
            return 0;
    return 1;
}

size_t sqllex_decode_ident(const struct sqllex *lx, const struct sqllex_token *t, char *out)
{
    const char *p = lx->text + t->start, *end = lx->text + t->end;
    int quoted = t->kind == SQLLEX_QIDENT;
    size_t n = 0;
    if (quoted) {
        p++;
        end--;
    }
    for (; p < end && n < SQLLEX_IDENT_MAX + 1; p++) {
        if (quoted && *p == '"')
            p++; /* the first of "" */
        out[n++] = quoted ? *p : sqllex_lower(*p);
    }
    if (n > SQLLEX_IDENT_MAX) {
        /* a UTF-8 character has at most 3 continuation bytes (more: invalid text,
           which PostgreSQL refuses anyway) */
        n = SQLLEX_IDENT_MAX;
        while (n > SQLLEX_IDENT_MAX - 3 && ((unsigned char)out[n] & 0xc0) == 0x80)
            n--;
    }
    out[n] = '\0';
    return n;
}
