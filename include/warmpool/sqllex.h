/*
 * sqllex — a SQL lexer that follows PostgreSQL's scan.l wherever text is hidden from
 * its parser: string constants ('…', E'…', B'…', X'…', N'…', U&'…'), quoted
 * identifiers ("…", U&"…"), dollar quotes ($tag$…$tag$), -- comments and nested block
 * comments. It finds statement boundaries (';'), parentheses and words; tokens nobody
 * needs in detail (numbers, operators, parameters) are cut coarsely, which cannot move
 * a statement boundary or reveal hidden text.
 *
 * Where PostgreSQL refuses the whole text before running any of it (a quote or comment
 * that does not end, a zero-length quoted identifier, U&'…' with
 * standard_conforming_strings off) the lexer stops and sets `broken`. The text must
 * hold no NUL byte: callers refuse such a text first (PostgreSQL does too). Pure text
 * processing, no allocation. Used by sqlprep.c and session_sql.c.
 */
#ifndef WARMPOOL_SQLLEX_H
#define WARMPOOL_SQLLEX_H

#include <stddef.h>

#define SQLLEX_IDENT_MAX 63 /* NAMEDATALEN - 1: PostgreSQL cuts identifiers there */

enum sqllex_kind {
    SQLLEX_END,
    SQLLEX_SEMI,
    SQLLEX_OPEN,
    SQLLEX_CLOSE,
    SQLLEX_WORD,   /* unquoted identifier or keyword */
    SQLLEX_QIDENT, /* "quoted identifier" */
    SQLLEX_UIDENT, /* U&"identifier" (Unicode escapes: not decoded here) */
    SQLLEX_STRING, /* any string constant, dollar quotes included; the prefix letter,
                      quote or '$' at `start` says which */
    SQLLEX_OTHER,  /* numbers, parameters, operators, punctuation (one byte each) */
};

/* A token is text[start..end). */
struct sqllex_token {
    enum sqllex_kind kind;
    size_t start, end;
};

struct sqllex {
    const char *text;
    size_t len, pos;
    int backslash_strings; /* standard_conforming_strings off: '\' escapes inside '…' */
    int setting_matters;   /* a '\' in '…', or U&'…': the other setting reads it otherwise */
    int broken;            /* PostgreSQL refuses the whole text */
};

void sqllex_init(struct sqllex *lx, const char *text, size_t len, int backslash_strings);

/* The next token; SQLLEX_END at the end of the text and from the moment it is broken. */
void sqllex_next(struct sqllex *lx, struct sqllex_token *t);

/* Keywords and unquoted names fold ASCII letters only, whatever the locale. */
static inline char sqllex_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* Is the token the unquoted word `word` (lower case), in any case? */
int sqllex_is_word(const struct sqllex *lx, const struct sqllex_token *t, const char *word);

/* The identifier a SQLLEX_WORD or SQLLEX_QIDENT token stands for, as PostgreSQL stores
   it: unquoted folded to lower case, "" inside quotes one quote, cut to
   SQLLEX_IDENT_MAX bytes on a UTF-8 character boundary. out holds
   SQLLEX_IDENT_MAX + 1 bytes and is NUL-terminated; returns the length. */
size_t sqllex_decode_ident(const struct sqllex *lx, const struct sqllex_token *t, char *out);

/* `word` (lower case, n bytes) is at sql[at], in any case: the pre-filters' closer
   look at a candidate. `b | 0x20` is b's lower case for a letter and leaves '&' and
   '"' as they are. */
static inline int sqllex_word_at(const char *sql, size_t len, size_t at, const char *word, size_t n)
{
    if (len - at < n)
        return 0;
    for (size_t k = 0; k < n; k++)
        if ((sql[at + k] | 0x20) != word[k])
            return 0;
    return 1;
}

#endif
