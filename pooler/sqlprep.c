/*
 * sqlprep — recognise SQL-level prepared-statement commands (see
 * include/warmpool/sqlprep.h). Conservative: when in doubt, SQLPREP_NONE.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "warmpool/sqlprep.h"

struct cursor {
    const char *p, *end;
};

static void skip_space(struct cursor *cur)
{
    while (cur->p < cur->end && isspace((unsigned char)*cur->p))
        cur->p++;
}

/* Whitespace and comments before the first keyword ("--" to end of line, nested
   block comments); 0 when a block comment does not end. */
static int skip_leading_comments(struct cursor *cur)
{
    for (;;) {
        skip_space(cur);
        if (cur->end - cur->p >= 2 && cur->p[0] == '-' && cur->p[1] == '-') {
            while (cur->p < cur->end && *cur->p != '\n')
                cur->p++;
            continue;
        }
        if (cur->end - cur->p < 2 || cur->p[0] != '/' || cur->p[1] != '*')
            return 1;
        int depth = 0;
        while (cur->p < cur->end) {
            if (cur->end - cur->p >= 2 && cur->p[0] == '/' && cur->p[1] == '*') {
                depth++;
                cur->p += 2;
            } else if (cur->end - cur->p >= 2 && cur->p[0] == '*' && cur->p[1] == '/') {
                cur->p += 2;
                if (--depth == 0)
                    break;
            } else {
                cur->p++;
            }
        }
        if (depth > 0)
            return 0;
    }
}

static int is_ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

static int is_ident_char(char c)
{
    return is_ident_start(c) || isdigit((unsigned char)c) || c == '$';
}

/* Match a keyword followed by a non-identifier character. */
static int take_keyword(struct cursor *cur, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(cur->end - cur->p) < n || strncasecmp(cur->p, word, n) != 0)
        return 0;
    if (cur->p + n < cur->end && is_ident_char(cur->p[n]))
        return 0;
    cur->p += n;
    skip_space(cur);
    return 1;
}

/* An identifier, folded to lower case unless double-quoted ("" inside = one "). */
static int take_identifier(struct cursor *cur, char *out, size_t outlen)
{
    size_t n = 0;
    if (cur->p < cur->end && *cur->p == '"') {
        cur->p++;
        while (cur->p < cur->end) {
            if (*cur->p == '"') {
                if (cur->p + 1 < cur->end && cur->p[1] == '"') {
                    cur->p++;
                } else {
                    cur->p++;
                    break;
                }
            }
            if (n + 1 >= outlen)
                return 0;
            out[n++] = *cur->p++;
        }
    } else {
        if (cur->p >= cur->end || !is_ident_start(*cur->p))
            return 0;
        while (cur->p < cur->end && is_ident_char(*cur->p)) {
            if (n + 1 >= outlen)
                return 0;
            out[n++] = (char)tolower((unsigned char)*cur->p++);
        }
    }
    /* PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes, on a character
       boundary; names must match what it would have stored. */
    if (n > SQLPREP_IDENT_MAX) {
        n = SQLPREP_IDENT_MAX;
        while (n > 0 && ((unsigned char)out[n] & 0xc0) == 0x80)
            n--;
    }
    out[n] = '\0';
    skip_space(cur);
    return n > 0;
}

/* Is the quote at p an E'' string (backslash escapes)? Needs the byte before. */
static int is_escape_string(const char *start, const char *p)
{
    if (p == start || (p[-1] != 'E' && p[-1] != 'e'))
        return 0;
    return p - 1 == start || !is_ident_char(p[-2]);
}

/* Skip a quoted section starting at p (', ", or $tag$); returns the byte after it,
   or NULL when it does not end. */
static const char *skip_quoted(const char *start, const char *p, const char *end)
{
    char q = *p;
    if (q == '\'' || q == '"') {
        int escapes = q == '\'' && is_escape_string(start, p);
        for (p++; p < end; p++) {
            if (escapes && *p == '\\' && p + 1 < end) {
                p++;
                continue;
            }
            if (*p == q) {
                if (p + 1 < end && p[1] == q) {
                    p++;
                    continue;
                }
                return p + 1;
            }
        }
        return NULL;
    }
    /* '$' inside an identifier (x$1) or a parameter ($1) does not open a quote. */
    if (p > start && is_ident_char(p[-1]))
        return p + 1;
    const char *tag_end = p + 1;
    while (tag_end < end && is_ident_char(*tag_end) && *tag_end != '$')
        tag_end++;
    if (tag_end >= end || *tag_end != '$' || (tag_end > p + 1 && isdigit((unsigned char)p[1])))
        return p + 1;
    size_t tag_len = (size_t)(tag_end - p) + 1;
    for (const char *s = tag_end + 1; s + tag_len <= end; s++)
        if (memcmp(s, p, tag_len) == 0)
            return s + tag_len;
    return NULL;
}

/* Length of the statement without trailing spaces and one ';'; 0 when the text holds
   another statement, a comment, or an unterminated quote. */
static size_t single_statement_length(const char *start, const char *end)
{
    const char *p = start, *stmt_end = end;
    while (p < end) {
        if (*p == '\'' || *p == '"' || *p == '$') {
            p = skip_quoted(start, p, end);
            if (!p)
                return 0;
            continue;
        }
        if ((*p == '-' && p + 1 < end && p[1] == '-') || (*p == '/' && p + 1 < end && p[1] == '*'))
            return 0;
        if (*p == ';') {
            stmt_end = p;
            for (p++; p < end; p++)
                if (!isspace((unsigned char)*p))
                    return 0;
            break;
        }
        p++;
    }
    while (stmt_end > start && isspace((unsigned char)stmt_end[-1]))
        stmt_end--;
    return (size_t)(stmt_end - start);
}

/* A parenthesised list, quotes inside skipped; the cursor ends after ')'. */
static int skip_parens(struct cursor *cur)
{
    const char *start = cur->p;
    int depth = 0;
    while (cur->p < cur->end) {
        char c = *cur->p;
        if (c == '\'' || c == '"' || c == '$') {
            const char *after = skip_quoted(start, cur->p, cur->end);
            if (!after)
                return 0;
            cur->p = after;
            continue;
        }
        cur->p++;
        if (c == '(')
            depth++;
        else if (c == ')' && --depth == 0) {
            skip_space(cur);
            return 1;
        }
    }
    return 0;
}

static void parse_prepare(struct cursor *cur, struct sqlprep *out)
{
    if (!take_identifier(cur, out->name, sizeof out->name))
        return;
    const char *rest = cur->p;
    if (cur->p < cur->end && *cur->p == '(' && !skip_parens(cur))
        return;
    if (!take_keyword(cur, "as") || cur->p == cur->end)
        return;
    out->rest = rest;
    out->rest_len = (size_t)(cur->end - rest);
    out->kind = SQLPREP_PREPARE;
}

static void parse_execute(struct cursor *cur, struct sqlprep *out)
{
    if (!take_identifier(cur, out->name, sizeof out->name))
        return;
    const char *rest = cur->p;
    if (cur->p < cur->end && (*cur->p != '(' || !skip_parens(cur) || cur->p != cur->end))
        return;
    out->rest = rest;
    out->rest_len = (size_t)(cur->end - rest);
    out->kind = SQLPREP_EXECUTE;
}

static void parse_deallocate(struct cursor *cur, struct sqlprep *out)
{
    struct cursor after_prepare = *cur;
    /* "DEALLOCATE prepare" names a statement called prepare. */
    if (take_keyword(&after_prepare, "prepare") && after_prepare.p < after_prepare.end)
        *cur = after_prepare;
    struct cursor probe = *cur;
    if (take_keyword(&probe, "all") && probe.p == probe.end) {
        out->kind = SQLPREP_DEALLOCATE_ALL;
        return;
    }
    if (take_identifier(cur, out->name, sizeof out->name) && cur->p == cur->end)
        out->kind = SQLPREP_DEALLOCATE;
}

void sqlprep_parse(const char *sql, size_t len, struct sqlprep *out)
{
    memset(out, 0, sizeof *out);
    if (memchr(sql, '\0', len))
        return; /* PostgreSQL refuses such a Query message too */
    struct cursor cur = {sql, sql + len};
    if (!skip_leading_comments(&cur))
        return;
    size_t stmt_len = single_statement_length(cur.p, cur.end);
    if (stmt_len == 0)
        return;
    cur.end = cur.p + stmt_len;
    if (take_keyword(&cur, "prepare"))
        parse_prepare(&cur, out);
    else if (take_keyword(&cur, "execute"))
        parse_execute(&cur, out);
    else if (take_keyword(&cur, "deallocate"))
        parse_deallocate(&cur, out);
}
