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

/* Match a keyword followed by a non-identifier character. */
static int take_keyword(struct cursor *cur, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(cur->end - cur->p) < n || strncasecmp(cur->p, word, n) != 0)
        return 0;
    if (cur->p + n < cur->end &&
        (isalnum((unsigned char)cur->p[n]) || cur->p[n] == '_' || cur->p[n] == '$'))
        return 0;
    cur->p += n;
    skip_space(cur);
    return 1;
}

static int is_ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

static int is_ident_char(char c)
{
    return is_ident_start(c) || isdigit((unsigned char)c) || c == '$';
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
    out[n] = '\0';
    skip_space(cur);
    return n > 0;
}

/* Skip a quoted section starting at p (', ", or $tag$); returns the byte after it. */
static const char *skip_quoted(const char *p, const char *end)
{
    char q = *p;
    if (q == '\'' || q == '"') {
        for (p++; p < end; p++) {
            if (*p == q) {
                if (p + 1 < end && p[1] == q) {
                    p++;
                    continue;
                }
                return p + 1;
            }
            if (*p == '\\' && q == '\'' && p + 1 < end)
                p++; /* E'' escapes; harmless for standard strings we only skip */
        }
        return NULL;
    }
    const char *tag_end = p + 1;
    while (tag_end < end && (isalnum((unsigned char)*tag_end) || *tag_end == '_'))
        tag_end++;
    if (tag_end >= end || *tag_end != '$')
        return p + 1; /* a parameter like $1, not a dollar quote */
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
            p = skip_quoted(p, end);
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

static void parse_prepare(struct cursor *cur, struct sqlprep *out)
{
    if (!take_identifier(cur, out->name, sizeof out->name))
        return;
    if (cur->p >= cur->end || (*cur->p != '(' && strncasecmp(cur->p, "as", 2) != 0))
        return;
    out->rest = cur->p;
    out->rest_len = (size_t)(cur->end - cur->p);
    out->kind = SQLPREP_PREPARE;
}

static void parse_execute(struct cursor *cur, struct sqlprep *out)
{
    if (!take_identifier(cur, out->name, sizeof out->name))
        return;
    if (cur->p < cur->end && *cur->p != '(')
        return;
    out->rest = cur->p;
    out->rest_len = (size_t)(cur->end - cur->p);
    out->kind = SQLPREP_EXECUTE;
}

static void parse_deallocate(struct cursor *cur, struct sqlprep *out)
{
    take_keyword(cur, "prepare");
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
    struct cursor cur = {sql, sql + len};
    skip_space(&cur);
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
