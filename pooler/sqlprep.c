/*
 * sqlprep — where a SQL text names prepared statements (see include/warmpool/sqlprep.h).
 *
 * The lexer (sqllex.c) follows PostgreSQL's scan.l where it matters for finding
 * statements and names: what a quote, comment or dollar quote hides, where a word
 * ends, ';'. Wherever it cannot follow PostgreSQL — a quote or comment that does not
 * end, a zero-length quoted name, a NUL byte — PostgreSQL refuses the whole text
 * before running any of it, and the scan says so (malformed).
 *
 * On top, a few rules of PostgreSQL's grammar: PrepareStmt, DeallocateStmt,
 * ExecuteStmt (also inside ExplainStmt and CREATE TABLE … AS EXECUTE), and PREPARE
 * TRANSACTION, which is two-phase commit and names no statement.
 */
#include <string.h>

#include "warmpool/sqllex.h"
#include "warmpool/sqlprep.h"
#include "warmpool/sqlwords.h"

/* ---------------------------------------------------------------- statements */

struct reader {
    struct sqllex lx;
    struct sqllex_token tok; /* the current token */
    size_t last_token_end;   /* end of the statement's last token so far */
    int cleared;             /* a DEALLOCATE ALL came before */
    struct sqlprep_scan *out;
};

static int in_statement(const struct reader *rd)
{
    return rd->tok.kind != SQLLEX_SEMI && rd->tok.kind != SQLLEX_END;
}

static void advance(struct reader *rd)
{
    sqllex_next(&rd->lx, &rd->tok);
    if (in_statement(rd))
        rd->last_token_end = rd->tok.end;
}

/* Is the current token this keyword (lower case)? */
static int is_word(const struct reader *rd, const char *word)
{
    return sqllex_is_word(&rd->lx, &rd->tok, word);
}

/* Over a parenthesised list, to the token after its ')'; 0 when it does not close
   inside the statement. */
static int skip_parens(struct reader *rd)
{
    int depth = 0;
    do {
        if (rd->tok.kind == SQLLEX_OPEN)
            depth++;
        else if (rd->tok.kind == SQLLEX_CLOSE)
            depth--;
        advance(rd);
    } while (depth > 0 && in_statement(rd));
    return depth == 0;
}

/* The name the token stands for, as PostgreSQL stores it: unquoted folded, "" inside
   quotes one quote, cut to SQLPREP_IDENT_MAX bytes on a UTF-8 character boundary. */
static void decode_name(const struct reader *rd, char *out)
{
    _Static_assert(SQLPREP_IDENT_MAX == SQLLEX_IDENT_MAX, "names are identifiers");
    sqllex_decode_ident(&rd->lx, &rd->tok, out);
}

/* The current token as a statement name: 1 decoded into name, 0 not a name (a syntax
   error for PostgreSQL), -1 a name sqlprep cannot decode. */
static int take_name(struct reader *rd, char *name)
{
    if (rd->tok.kind == SQLLEX_UIDENT) {
        rd->out->unreadable = 1;
        return -1;
    }
    if (rd->tok.kind != SQLLEX_WORD && rd->tok.kind != SQLLEX_QIDENT)
        return 0;
    decode_name(rd, name);
    return 1;
}

static void note_statement_kind(struct reader *rd, enum sqlprep_kind kind)
{
    struct sqlprep_scan *out = rd->out;
    if (out->first == SQLPREP_NONE)
        out->first = kind;
    if (kind == SQLPREP_EXECUTE)
        return;
    out->defines++;
    if (out->first_define == SQLPREP_NONE)
        out->first_define = kind;
}

/* EXECUTE at the current token: records the name it uses; cmd gets the statement
   when it is exactly EXECUTE name [(args)]. */
static void read_execute(struct reader *rd, struct sqlprep *cmd)
{
    struct sqlprep_scan *out = rd->out;
    note_statement_kind(rd, SQLPREP_EXECUTE);
    advance(rd);
    char name[SQLPREP_NAME_MAX];
    if (take_name(rd, name) <= 0)
        return;
    if (out->nuses == SQLPREP_USES_MAX) {
        out->uses_overflow = 1;
    } else {
        struct sqlprep_use *use = &out->uses[out->nuses++];
        use->offset = rd->tok.start;
        use->len = rd->tok.end - rd->tok.start;
        use->after_clear = rd->cleared;
        memcpy(use->name, name, strlen(name) + 1);
    }
    advance(rd);
    const char *rest = rd->lx.text + rd->tok.start;
    if (rd->tok.kind == SQLLEX_OPEN && !skip_parens(rd))
        return;
    if (in_statement(rd))
        return;
    cmd->kind = SQLPREP_EXECUTE;
    memcpy(cmd->name, name, strlen(name) + 1);
    cmd->rest = rest;
}

/* PREPARE at the current token. */
static void read_prepare(struct reader *rd, struct sqlprep *cmd)
{
    advance(rd);
    if (is_word(rd, "transaction")) {
        struct reader probe = *rd;
        advance(&probe);
        if (probe.tok.kind == SQLLEX_STRING)
            return; /* PREPARE TRANSACTION 'gid': two-phase commit */
    }
    note_statement_kind(rd, SQLPREP_PREPARE);
    if (take_name(rd, cmd->name) <= 0)
        return;
    advance(rd);
    const char *rest = rd->lx.text + rd->tok.start;
    if (rd->tok.kind == SQLLEX_OPEN && !skip_parens(rd))
        return;
    if (!is_word(rd, "as"))
        return;
    advance(rd);
    if (!in_statement(rd))
        return;
    cmd->kind = SQLPREP_PREPARE;
    cmd->rest = rest;
}

/* DEALLOCATE at the current token: [PREPARE] name | ALL, and nothing after. ALL
   names no statement (the relay learns from its answer that the names are gone). */
static void read_deallocate(struct reader *rd, struct sqlprep *cmd)
{
    advance(rd);
    if (is_word(rd, "prepare")) {
        /* "DEALLOCATE prepare" deallocates a statement called prepare */
        struct reader probe = *rd;
        advance(&probe);
        if (probe.tok.kind == SQLLEX_WORD || probe.tok.kind == SQLLEX_QIDENT ||
            probe.tok.kind == SQLLEX_UIDENT)
            *rd = probe;
    }
    if (is_word(rd, "all")) {
        advance(rd);
        if (in_statement(rd)) {
            note_statement_kind(rd, SQLPREP_DEALLOCATE); /* a syntax error */
            return;
        }
        rd->out->clears++;
        rd->cleared = 1;
        cmd->kind = SQLPREP_DEALLOCATE_ALL;
        return;
    }
    note_statement_kind(rd, SQLPREP_DEALLOCATE);
    if (take_name(rd, cmd->name) <= 0)
        return;
    advance(rd);
    if (!in_statement(rd))
        cmd->kind = SQLPREP_DEALLOCATE;
}

/* CREATE [GLOBAL|LOCAL] [TEMP|TEMPORARY|UNLOGGED] TABLE … AS EXECUTE name: the first
   AS outside parentheses is the one (names before it cannot be an unquoted AS). */
static void read_create(struct reader *rd)
{
    advance(rd);
    /* in any order and number: PostgreSQL checks the grammar */
    while (is_word(rd, "global") || is_word(rd, "local") || is_word(rd, "temp") ||
           is_word(rd, "temporary") || is_word(rd, "unlogged"))
        advance(rd);
    if (!is_word(rd, "table"))
        return;
    int depth = 0;
    for (advance(rd); in_statement(rd); advance(rd)) {
        if (rd->tok.kind == SQLLEX_OPEN)
            depth++;
        else if (rd->tok.kind == SQLLEX_CLOSE)
            depth--;
        else if (depth == 0 && is_word(rd, "as"))
            break;
    }
    if (!in_statement(rd))
        return;
    advance(rd);
    struct sqlprep ignored = {0};
    if (is_word(rd, "execute"))
        read_execute(rd, &ignored);
}

/* EXPLAIN [(options) | ANALYZE | VERBOSE …] followed by EXECUTE or CREATE TABLE AS. */
static void read_explain(struct reader *rd)
{
    advance(rd);
    if (rd->tok.kind == SQLLEX_OPEN && !skip_parens(rd))
        return;
    while (is_word(rd, "analyze") || is_word(rd, "analyse") || is_word(rd, "verbose"))
        advance(rd);
    struct sqlprep ignored = {0};
    if (is_word(rd, "execute"))
        read_execute(rd, &ignored);
    else if (is_word(rd, "create"))
        read_create(rd);
}

/* One statement from its first token up to its ';' (or the end). */
static void read_statement(struct reader *rd, struct sqlprep *cmd)
{
    if (is_word(rd, "prepare"))
        read_prepare(rd, cmd);
    else if (is_word(rd, "deallocate"))
        read_deallocate(rd, cmd);
    else if (is_word(rd, "execute"))
        read_execute(rd, cmd);
    else if (is_word(rd, "explain"))
        read_explain(rd);
    else if (is_word(rd, "create"))
        read_create(rd);
    while (in_statement(rd))
        advance(rd);
    /* EXECUTE name without arguments: rest is empty, at the end of the statement */
    const char *last = rd->lx.text + rd->last_token_end;
    if (cmd->rest)
        cmd->rest_len = last > cmd->rest ? (size_t)(last - cmd->rest) : 0;
}

/* One reading of the text; returns whether the other setting could read it otherwise. */
static int read_text(const char *sql, size_t len, int backslash_strings, struct sqlprep_scan *out)
{
    memset(out, 0, sizeof *out);
    struct reader rd = {.out = out};
    sqllex_init(&rd.lx, sql, len, backslash_strings);
    if (len > 0 && memchr(sql, '\0', len)) {
        out->malformed = 1; /* PostgreSQL refuses such a Query or Parse message */
        return 0;
    }
    for (advance(&rd); rd.tok.kind != SQLLEX_END; advance(&rd)) {
        if (rd.tok.kind == SQLLEX_SEMI)
            continue; /* an empty statement */
        struct sqlprep cmd = {0};
        out->statements++;
        read_statement(&rd, &cmd);
        if (out->statements == 1 && cmd.kind != SQLPREP_NONE)
            out->command = cmd;
        if (rd.tok.kind == SQLLEX_END)
            break;
    }
    out->malformed = rd.lx.broken;
    return rd.lx.setting_matters;
}

/* ---------------------------------------------------------------- entry points */

/* The pass over the text is shared with session_sql's words (sqlwords.c): the relay
   asks for both at once. */
int sqlprep_mentions(const char *sql, size_t len)
{
    return sqlwords_mentions(sql, len, SQLWORDS_PREPARED) != 0;
}

static int same_uses(const struct sqlprep_scan *a, const struct sqlprep_scan *b)
{
    for (int i = 0; i < a->nuses; i++)
        if (a->uses[i].offset != b->uses[i].offset || a->uses[i].len != b->uses[i].len ||
            a->uses[i].after_clear != b->uses[i].after_clear ||
            strcmp(a->uses[i].name, b->uses[i].name) != 0)
            return 0;
    return 1;
}

/* Do two readings name the same statements at the same places? */
static int same_meaning(const struct sqlprep_scan *a, const struct sqlprep_scan *b)
{
    return a->statements == b->statements && a->first == b->first &&
           a->first_define == b->first_define && a->defines == b->defines &&
           a->clears == b->clears && a->unreadable == b->unreadable && a->nuses == b->nuses &&
           a->uses_overflow == b->uses_overflow && same_uses(a, b) &&
           a->command.kind == b->command.kind && a->command.rest == b->command.rest &&
           a->command.rest_len == b->command.rest_len &&
           strcmp(a->command.name, b->command.name) == 0;
}

void sqlprep_scan(const char *sql, size_t len, enum sqlprep_strings strings,
                  struct sqlprep_scan *out)
{
    int setting_matters = read_text(sql, len, strings == SQLPREP_STRINGS_BACKSLASH, out);
    if (strings != SQLPREP_STRINGS_EITHER || !setting_matters)
        return;
    struct sqlprep_scan other;
    read_text(sql, len, 1, &other);
    /* A reading PostgreSQL refuses runs nothing: only the other one can run. */
    if (out->malformed || other.malformed) {
        if (out->malformed && !other.malformed)
            *out = other;
        return;
    }
    if (!same_meaning(out, &other))
        out->ambiguous = 1;
}

void sqlprep_parse(const char *sql, size_t len, struct sqlprep *out)
{
    struct sqlprep_scan scan;
    sqlprep_scan(sql, len, SQLPREP_STRINGS_STANDARD, &scan);
    if (scan.statements == 1 && !scan.malformed && !scan.unreadable)
        *out = scan.command;
    else
        memset(out, 0, sizeof *out);
}
