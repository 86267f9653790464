/*
 * session_sql — the session effects of a SQL text (see include/warmpool/session_sql.h).
 *
 * Each statement is read twice from its first token: once by the reader its first
 * word selects (SET, RESET, DISCARD, LISTEN, UNLISTEN, CREATE, DECLARE, CLOSE, DROP,
 * EXPLAIN), on a copy of the lexer, and once token by token for function calls and
 * SELECT … INTO TEMP, which can be anywhere in any statement. The readers follow
 * PostgreSQL 15's grammar (gram.y: VariableSetStmt, set_rest, set_rest_more,
 * generic_set, var_list, var_value, zone_value, transaction_mode_item,
 * VariableResetStmt, DiscardStmt, ListenStmt, UnlistenStmt, CreateStmt, ViewStmt,
 * CreateSeqStmt, OptTempTableName, DeclareCursorStmt, ClosePortalStmt, DropStmt) as
 * far as a session effect depends on it; whatever they do not recognise in a SET or
 * RESET pins.
 */
#include <stdio.h>
#include <string.h>

#include "warmpool/session_sql.h"
#include "warmpool/sqllex.h"
#include "warmpool/sqlwords.h"

/* ---------------------------------------------------------------- keywords */

/* PostgreSQL 15's keywords other than the unreserved ones (SELECT word FROM
   pg_get_keywords() WHERE catcode …), each between spaces: quote_identifier quotes
   them all, and a reserved one cannot be a SET value (TRUE, FALSE and ON aside). */
static const char reserved_keywords[] = /* catcode R */
    " all analyse analyze and any array as asc asymmetric both case cast check collate "
    " column constraint create current_catalog current_date current_role current_time "
    " current_timestamp current_user default deferrable desc distinct do else end except "
    " false fetch for foreign from grant group having in initially intersect into lateral "
    " leading limit localtime localtimestamp not null offset on only or order placing "
    " primary references returning select session_user some symmetric table then to "
    " trailing true union unique user using variadic when where window with ";

static const char other_keywords[] = /* catcode C (column name) and T (type or function) */
    " authorization between bigint binary bit boolean char character coalesce collation "
    " concurrently cross current_schema dec decimal exists extract float freeze full "
    " greatest grouping ilike inner inout int integer interval is isnull join least left "
    " like national natural nchar none normalize notnull nullif numeric out outer "
    " overlaps overlay position precision real right row setof similar smallint substring "
    " tablesample time timestamp treat trim values varchar verbose xmlattributes "
    " xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot "
    " xmlserialize xmltable ";

/* Is word[0..n) (lower case) one of the list's words? */
static int in_keywords(const char *list, const char *word, size_t n)
{
    for (const char *at = strstr(list, " "); at; at = strstr(at + 1, " "))
        if (strncmp(at + 1, word, n) == 0 && at[1 + n] == ' ')
            return 1;
    return 0;
}

static int is_reserved(const char *word, size_t n)
{
    return n > 0 && in_keywords(reserved_keywords, word, n);
}

/* A keyword other than an unreserved one? */
static int is_keyword(const char *word, size_t n)
{
    return is_reserved(word, n) || (n > 0 && in_keywords(other_keywords, word, n));
}

/* ---------------------------------------------------------------- settings */

/* Settings PostgreSQL 15 flags GUC_LIST_QUOTE: each element of a SET list is
   quote_identifier()-ed (pg_dump's variable_is_guc_list_quote lists the same). */
static const char *const list_quote_settings[] = {
    "local_preload_libraries",  "search_path",      "session_preload_libraries",
    "shared_preload_libraries", "temp_tablespaces", "unix_socket_directories",
};

/* The other GUC_LIST_INPUT settings: they take several values, unquoted. Any other
   setting given several is an error ("SET x takes only one argument"). */
static const char *const list_input_settings[] = {
    "datestyle",
    "log_destination",
    "restrict_nonsystem_relation_kind",
    "wal_consistency_checking",
};

static int listed(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return 1;
    return 0;
}

static int quotes_list(const char *name)
{
    return listed(name, list_quote_settings,
                  sizeof list_quote_settings / sizeof list_quote_settings[0]);
}

static int takes_list(const char *name)
{
    return quotes_list(name) || listed(name, list_input_settings,
                                       sizeof list_input_settings / sizeof list_input_settings[0]);
}

/* ---------------------------------------------------------------- bounded text */

/* A value being put together, at most SESSION_SQL_VALUE_MAX bytes. */
struct piece {
    size_t len;
    int too_long;
    char text[SESSION_SQL_VALUE_MAX];
};

static void put_byte(struct piece *p, char c)
{
    if (p->len < sizeof p->text)
        p->text[p->len++] = c;
    else
        p->too_long = 1;
}

static void put_bytes(struct piece *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put_byte(p, s[i]);
}

static void put_string(struct piece *p, const char *s)
{
    put_bytes(p, s, strlen(s));
}

static int is_lower_ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* quote_identifier's test: lower-case letters, digits and '_', not starting with a
   digit, and not a keyword other than an unreserved one. */
static int needs_quotes(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return 1;
    for (size_t i = 0; i < n; i++)
        if (!is_lower_ident_char(s[i]))
            return 1;
    return is_keyword(s, n);
}

static void put_identifier(struct piece *p, const struct piece *element)
{
    if (!needs_quotes(element->text, element->len)) {
        put_bytes(p, element->text, element->len);
        return;
    }
    put_byte(p, '"');
    for (size_t i = 0; i < element->len; i++) {
        if (element->text[i] == '"')
            put_byte(p, '"');
        put_byte(p, element->text[i]);
    }
    put_byte(p, '"');
}

/* ---------------------------------------------------------------- tokens */

struct scanner {
    struct sqllex lx;
    struct sqllex_token tok; /* the current token */
    struct session_sql *out;
    int statement; /* index of the current statement */
};

static void advance(struct scanner *sc)
{
    sqllex_next(&sc->lx, &sc->tok);
}

static int in_statement(const struct scanner *sc)
{
    return sc->tok.kind != SQLLEX_SEMI && sc->tok.kind != SQLLEX_END;
}

static int is_word(const struct scanner *sc, const char *word)
{
    return sqllex_is_word(&sc->lx, &sc->tok, word);
}

/* Is the current token the one-byte operator or punctuation c? */
static int is_char(const struct scanner *sc, char c)
{
    return sc->tok.kind == SQLLEX_OTHER && sc->tok.end - sc->tok.start == 1 &&
           sc->lx.text[sc->tok.start] == c;
}

/* The scanner one token further on; sc does not move. */
static struct scanner peek(const struct scanner *sc)
{
    struct scanner ahead = *sc;
    advance(&ahead);
    return ahead;
}

static int next_is_word(const struct scanner *sc, const char *word)
{
    struct scanner ahead = peek(sc);
    return is_word(&ahead, word);
}

/* Is the current word a setting's name, followed by TO or '='? */
static int assigns_next(const struct scanner *sc)
{
    struct scanner ahead = peek(sc);
    return is_word(&ahead, "to") || is_char(&ahead, '=');
}

/* The identifier the current token stands for, into out[SQLLEX_IDENT_MAX + 1]; 0
   when it is not a name sqllex decodes (U&"…" is not). */
static int take_ident(const struct scanner *sc, char *out)
{
    if (sc->tok.kind != SQLLEX_WORD && sc->tok.kind != SQLLEX_QIDENT)
        return 0;
    sqllex_decode_ident(&sc->lx, &sc->tok, out);
    return 1;
}

#define QUALIFIED_MAX (3 * (SQLLEX_IDENT_MAX + 1))

/* name[.name[.name]] from the current token on, decoded and joined with '.' into
   out[QUALIFIED_MAX]; the scanner stops after it. 0 when there is no such name. */
static size_t read_qualified_name(struct scanner *sc, char *out)
{
    size_t n = 0;
    for (int parts = 0;; parts++) {
        char part[SQLLEX_IDENT_MAX + 1];
        if (parts == 3 || !take_ident(sc, part))
            return 0;
        size_t k = strlen(part);
        if (parts > 0)
            out[n++] = '.';
        memcpy(out + n, part, k);
        n += k;
        advance(sc);
        if (!is_char(sc, '.'))
            break;
        advance(sc);
    }
    out[n] = '\0';
    return n;
}

/* Is the object name's schema a temporary one (pg_temp, pg_temp_N)? */
static int in_temp_schema(const char *name)
{
    return strncmp(name, "pg_temp", 7) == 0 && strchr(name, '.') != NULL &&
           (name[7] == '.' || name[7] == '_');
}

/* ---------------------------------------------------------------- effects */

/* text[0..n) and a NUL into strings; its offset, or SESSION_SQL_NO_TEXT when memory
   ran out. */
static size_t store_text(struct scanner *sc, const char *text, size_t n)
{
    struct wp_buf *b = &sc->out->strings;
    if (buf_reserve(b, n + 1) < 0)
        return SESSION_SQL_NO_TEXT;
    size_t at = b->len;
    memcpy(b->data + at, text, n);
    b->data[at + n] = '\0';
    b->len += n + 1;
    return at;
}

static struct session_sql_effect *add_effect(struct scanner *sc, enum session_sql_kind kind,
                                             enum session_sql_cause cause)
{
    struct session_sql *out = sc->out;
    if (out->neffects == SESSION_SQL_EFFECTS_MAX) {
        out->overflow = 1;
        return NULL;
    }
    struct session_sql_effect *e = &out->effects[out->neffects++];
    *e = (struct session_sql_effect){.kind = kind,
                                     .cause = cause,
                                     .statement = sc->statement,
                                     .name = SESSION_SQL_NO_TEXT,
                                     .value = SESSION_SQL_NO_TEXT};
    return e;
}

/* A PIN or UNPIN of one named thing (name may be empty: not known). An UNPIN whose
   name cannot be stored is dropped: the pin it would release stays. */
static void add_named(struct scanner *sc, enum session_sql_kind kind, enum session_sql_cause cause,
                      const char *name)
{
    struct session_sql_effect *e = add_effect(sc, kind, cause);
    if (!e)
        return;
    e->name = store_text(sc, name, strlen(name));
    if (e->name == SESSION_SQL_NO_TEXT && kind == SSQL_UNPIN)
        sc->out->neffects--;
}

static void add_all(struct scanner *sc, enum session_sql_kind kind, enum session_sql_cause cause)
{
    struct session_sql_effect *e = add_effect(sc, kind, cause);
    if (e)
        e->all = 1;
}

/*
 * A call's effect, once per statement and cause. Calls in one statement need not run
 * in text order (pg_advisory_unlock_all() in the select list, pg_advisory_lock(1) in
 * WHERE), so a statement that pins never also unpins the same cause: it stays pinned.
 */
static void add_call(struct scanner *sc, enum session_sql_kind kind, enum session_sql_cause cause,
                     int all)
{
    struct session_sql *out = sc->out;
    for (int i = out->neffects - 1; i >= 0 && out->effects[i].statement == sc->statement; i--) {
        struct session_sql_effect *e = &out->effects[i];
        if (e->cause != cause)
            continue;
        if (e->kind == SSQL_UNPIN && kind == SSQL_PIN) {
            e->kind = SSQL_PIN; /* the statement's unpin becomes its pin */
            e->all = 0;
        }
        return;
    }
    struct session_sql_effect *e = add_effect(sc, kind, cause);
    if (e)
        e->all = all;
}

/* A SET or RESET whose effect cannot be recorded: it pins, unless it is LOCAL (then
   it ends with its transaction and no value is recorded). */
static void unrecordable(struct scanner *sc, int local, const char *name)
{
    add_named(sc, local ? SSQL_SET_LOCAL : SSQL_PIN, local ? SSQL_CAUSE_NONE : SSQL_CAUSE_SET,
              name);
}

/* A setting's new value, or its default when value is NULL. */
static void add_setting(struct scanner *sc, int local, const char *name, const struct piece *value)
{
    if (value && value->too_long) {
        unrecordable(sc, local, name);
        return;
    }
    enum session_sql_kind kind = local ? SSQL_SET_LOCAL : value ? SSQL_SET : SSQL_RESET;
    struct session_sql_effect *e = add_effect(sc, kind, SSQL_CAUSE_NONE);
    if (!e)
        return;
    e->name = store_text(sc, name, strlen(name));
    if (value)
        e->value = store_text(sc, value->text, value->len);
    if (e->name == SESSION_SQL_NO_TEXT || (value && e->value == SESSION_SQL_NO_TEXT)) {
        /* out of memory: what cannot be recorded pins */
        *e = (struct session_sql_effect){.kind = local ? SSQL_SET_LOCAL : SSQL_PIN,
                                         .cause = local ? SSQL_CAUSE_NONE : SSQL_CAUSE_SET,
                                         .statement = sc->statement,
                                         .name = SESSION_SQL_NO_TEXT,
                                         .value = SESSION_SQL_NO_TEXT};
    }
}

/* Is the statement over once the current token is passed? */
static int ends_after(const struct scanner *sc)
{
    struct scanner ahead = peek(sc);
    return !in_statement(&ahead);
}

/* ---------------------------------------------------------------- constants */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    c = sqllex_lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Is the current token a number (sqllex cuts numbers as one SQLLEX_OTHER token)? */
static int is_number(const struct scanner *sc)
{
    const char *s = sc->lx.text + sc->tok.start;
    size_t n = sc->tok.end - sc->tok.start;
    return sc->tok.kind == SQLLEX_OTHER && (is_digit(s[0]) || (s[0] == '.' && n > 1));
}

/* PostgreSQL's NumericOnly, [+|-] number, from the current token to the number: an
   integer that fits 32 bits is an Integer node, printed back with %d; anything else is
   a Float node that keeps its text, '-' put in front. 0 when it is no number. */
static int read_number(struct scanner *sc, struct piece *out)
{
    int negative = is_char(sc, '-');
    if (negative || is_char(sc, '+'))
        advance(sc);
    if (!is_number(sc))
        return 0;
    const char *s = sc->lx.text + sc->tok.start;
    size_t n = sc->tok.end - sc->tok.start;
    unsigned long value = 0;
    size_t i = 0;
    for (; i < n && is_digit(s[i]) && value <= 0x7fffffff; i++)
        value = value * 10 + (unsigned long)(s[i] - '0');
    if (i == n && value <= 0x7fffffff) {
        char digits[16];
        snprintf(digits, sizeof digits, "%s%lu", negative && value ? "-" : "", value);
        put_string(out, digits);
        return 1;
    }
    if (negative)
        put_byte(out, '-');
    put_bytes(out, s, n);
    return 1;
}

/* One backslash escape of an E'…' string at s[0] (a '\', never the last byte before
   the closing quote: sqllex saw to that); returns the bytes it takes, 0 when its value
   is not recorded (\u, \U, a NUL byte, which PostgreSQL refuses). */
static size_t decode_escape(const char *s, const char *end, struct piece *out)
{
    static const char plain[] = "bfnrt", meant[] = "\b\f\n\r\t";
    const char *named = strchr(plain, s[1]);
    if (named && s[1] != '\0') {
        put_byte(out, meant[named - plain]);
        return 2;
    }
    unsigned value = 0;
    size_t n = 1;
    if (s[1] >= '0' && s[1] <= '7') {
        for (; n < 4 && s + n < end && s[n] >= '0' && s[n] <= '7'; n++)
            value = value * 8 + (unsigned)(s[n] - '0');
    } else if (s[1] == 'x' && s + 2 < end && hex_value(s[2]) >= 0) {
        for (n = 2; n < 4 && s + n < end && hex_value(s[n]) >= 0; n++)
            value = value * 16 + (unsigned)hex_value(s[n]);
    } else if (s[1] == 'u' || s[1] == 'U') {
        return 0;
    } else {
        put_byte(out, s[1]); /* \\, \', \" and every other byte stand for themselves */
        return 2;
    }
    if ((value & 0xff) == 0)
        return 0;
    put_byte(out, (char)(value & 0xff));
    return n;
}

/* A string constant PostgreSQL's grammar takes as Sconst: '…', E'…' or $tag$…$tag$,
   decoded. 0 for the others (N'…', B'…', X'…' are other tokens there; U&'…' is not
   decoded here) and for escapes not recorded. */
static int decode_string(const struct scanner *sc, struct piece *out)
{
    const char *s = sc->lx.text + sc->tok.start, *end = sc->lx.text + sc->tok.end;
    char first = sqllex_lower(s[0]);
    if (first == '$') {
        size_t delimiter =
            (size_t)((const char *)memchr(s + 1, '$', (size_t)(end - s - 1)) - s) + 1;
        put_bytes(out, s + delimiter, (size_t)(end - s) - 2 * delimiter);
        return 1;
    }
    int escapes = first == 'e' || (first == '\'' && sc->lx.backslash_strings);
    if (first == 'e')
        s++;
    else if (first != '\'')
        return 0;
    for (s++, end--; s < end;) {
        size_t taken = 1;
        if (*s == '\\' && escapes) {
            taken = decode_escape(s, end, out);
        } else {
            put_byte(out, *s);
            taken = *s == '\'' ? 2 : 1; /* '' inside: one quote */
        }
        if (taken == 0)
            return 0;
        s += taken;
    }
    return 1;
}

enum value_kind {
    VALUE_BAD,    /* not a value PostgreSQL's var_value takes, or not recorded */
    VALUE_TEXT,   /* a string, identifier or keyword: quoted in a GUC_LIST_QUOTE list */
    VALUE_NUMBER, /* never quoted */
};

/* var_value from the current token on (the scanner stops at its last token):
   opt_boolean_or_string or NumericOnly. */
static enum value_kind read_var_value(struct scanner *sc, struct piece *out)
{
    char ident[SQLLEX_IDENT_MAX + 1];
    switch (sc->tok.kind) {
    case SQLLEX_WORD: {
        size_t n = sqllex_decode_ident(&sc->lx, &sc->tok, ident);
        /* TRUE, FALSE and ON are the reserved words opt_boolean_or_string takes */
        if (is_reserved(ident, n) && strcmp(ident, "true") != 0 && strcmp(ident, "false") != 0 &&
            strcmp(ident, "on") != 0)
            return VALUE_BAD;
        put_bytes(out, ident, n);
        return VALUE_TEXT;
    }
    case SQLLEX_QIDENT:
        put_bytes(out, ident, sqllex_decode_ident(&sc->lx, &sc->tok, ident));
        return VALUE_TEXT;
    case SQLLEX_STRING:
        return decode_string(sc, out) ? VALUE_TEXT : VALUE_BAD;
    case SQLLEX_OTHER:
        return read_number(sc, out) ? VALUE_NUMBER : VALUE_BAD;
    default:
        return VALUE_BAD;
    }
}

/* ---------------------------------------------------------------- SET and RESET */

/* var_name: ColId ['.' ColId …], lower-cased (setting names compare without case).
   1 read (the scanner stops after it), 0 no name, -1 longer than SESSION_SQL_NAME_MAX. */
static int read_var_name(struct scanner *sc, char *name)
{
    size_t n = 0;
    int too_long = 0;
    for (;;) {
        char part[SQLLEX_IDENT_MAX + 1];
        if (!take_ident(sc, part))
            return 0;
        size_t k = strlen(part);
        if (n > 0 && n < SESSION_SQL_NAME_MAX)
            name[n] = '.';
        n += n > 0;
        for (size_t i = 0; i < k; i++, n++)
            if (n < SESSION_SQL_NAME_MAX)
                name[n] = sqllex_lower(part[i]);
        too_long |= n > SESSION_SQL_NAME_MAX;
        advance(sc);
        if (!is_char(sc, '.'))
            break;
        advance(sc);
    }
    name[too_long ? 0 : n] = '\0';
    return too_long ? -1 : 1;
}

/* var_list after TO or '=': the values joined with ", ", list elements quoted where
   the setting says so. */
static void read_var_list(struct scanner *sc, int local, const char *name)
{
    struct piece value = {0}, element;
    int count = 0;
    for (;;) {
        element.len = 0;
        element.too_long = 0;
        enum value_kind kind = read_var_value(sc, &element);
        if (kind == VALUE_BAD || element.too_long) {
            unrecordable(sc, local, name);
            return;
        }
        if (count++ > 0)
            put_string(&value, ", ");
        if (kind == VALUE_TEXT && quotes_list(name))
            put_identifier(&value, &element);
        else
            put_bytes(&value, element.text, element.len);
        advance(sc);
        if (!in_statement(sc))
            break;
        if (!is_char(sc, ',')) {
            unrecordable(sc, local, name); /* "a" "b", 'a'\n'b' (not recorded), junk */
            return;
        }
        advance(sc);
    }
    if (count > 1 && !takes_list(name))
        unrecordable(sc, local, name); /* PostgreSQL refuses it */
    else
        add_setting(sc, local, name, &value);
}

/* generic_set and var_name FROM CURRENT, from the name on. */
static void read_generic_set(struct scanner *sc, int local)
{
    char name[SESSION_SQL_NAME_MAX + 1];
    if (read_var_name(sc, name) <= 0) {
        unrecordable(sc, local, "");
        return;
    }
    if (!is_word(sc, "to") && !is_char(sc, '=')) {
        unrecordable(sc, local, name); /* FROM CURRENT, or junk */
        return;
    }
    advance(sc);
    if (is_word(sc, "default")) {
        if (ends_after(sc))
            add_setting(sc, local, name, NULL);
        else
            unrecordable(sc, local, name);
        return;
    }
    read_var_list(sc, local, name);
}

/* Is the current token a keyword other than an unreserved one (not an IDENT)? */
static int is_keyword_token(const struct scanner *sc)
{
    char word[SQLLEX_IDENT_MAX + 1];
    if (sc->tok.kind != SQLLEX_WORD)
        return 0;
    return is_keyword(word, sqllex_decode_ident(&sc->lx, &sc->tok, word));
}

/* zone_value after TIME ZONE: Sconst, IDENT, NumericOnly, DEFAULT, LOCAL; INTERVAL
   forms are not recorded. */
static void read_zone(struct scanner *sc, int local)
{
    static const char timezone[] = "timezone";
    struct piece value = {0};
    if (is_word(sc, "default") || is_word(sc, "local")) {
        if (ends_after(sc))
            add_setting(sc, local, timezone, NULL);
        else
            unrecordable(sc, local, timezone);
        return;
    }
    if (is_keyword_token(sc) || read_var_value(sc, &value) == VALUE_BAD || !ends_after(sc)) {
        unrecordable(sc, local, timezone); /* INTERVAL '…' …, or not a zone_value */
        return;
    }
    add_setting(sc, local, timezone, &value);
}

/* SCHEMA Sconst: search_path, quoted as a list element. */
static void read_schema(struct scanner *sc, int local)
{
    static const char search_path[] = "search_path";
    struct piece element = {0}, value = {0};
    if (sc->tok.kind != SQLLEX_STRING || !decode_string(sc, &element) || !ends_after(sc)) {
        unrecordable(sc, local, search_path);
        return;
    }
    put_identifier(&value, &element);
    add_setting(sc, local, search_path, element.too_long ? &element : &value);
}

/* NAMES [Sconst | DEFAULT]: client_encoding. */
static void read_names(struct scanner *sc, int local)
{
    static const char client_encoding[] = "client_encoding";
    struct piece value = {0};
    if (!in_statement(sc) || (is_word(sc, "default") && ends_after(sc)))
        add_setting(sc, local, client_encoding, NULL);
    else if (sc->tok.kind == SQLLEX_STRING && decode_string(sc, &value) && ends_after(sc))
        add_setting(sc, local, client_encoding, &value);
    else
        unrecordable(sc, local, client_encoding);
}

struct mode {
    const char *setting, *value;
};

/* iso_level at the current token; the scanner stops at its last word. */
static const char *read_iso_level(struct scanner *sc)
{
    if (is_word(sc, "serializable"))
        return "serializable";
    if (is_word(sc, "repeatable") && next_is_word(sc, "read")) {
        advance(sc);
        return "repeatable read";
    }
    if (!is_word(sc, "read"))
        return NULL;
    advance(sc);
    return is_word(sc, "committed")     ? "read committed"
           : is_word(sc, "uncommitted") ? "read uncommitted"
                                        : NULL;
}

/* transaction_mode_item at the current token; the scanner stops at its last word. */
static int read_mode(struct scanner *sc, struct mode *m)
{
    if (is_word(sc, "isolation") && next_is_word(sc, "level")) {
        advance(sc);
        advance(sc);
        m->setting = "default_transaction_isolation";
        m->value = read_iso_level(sc);
        return m->value != NULL;
    }
    if (is_word(sc, "read")) {
        advance(sc);
        m->setting = "default_transaction_read_only";
        m->value = is_word(sc, "only") ? "1" : is_word(sc, "write") ? "0" : NULL;
        return m->value != NULL;
    }
    m->setting = "default_transaction_deferrable";
    m->value = "1";
    if (is_word(sc, "not")) {
        advance(sc);
        m->value = "0";
    }
    return is_word(sc, "deferrable");
}

#define MODES_MAX 8

/* SESSION CHARACTERISTICS AS TRANSACTION transaction_mode_list (items separated by
   ',' or nothing): one default_transaction_* setting per item, recorded only when the
   whole list reads. */
static void read_characteristics(struct scanner *sc, int local)
{
    struct mode modes[MODES_MAX];
    int n = 0;
    advance(sc); /* SESSION */
    if (!is_word(sc, "characteristics") || !next_is_word(sc, "as")) {
        unrecordable(sc, local, "");
        return;
    }
    advance(sc);
    advance(sc);
    if (!is_word(sc, "transaction") || ends_after(sc)) {
        unrecordable(sc, local, "");
        return;
    }
    for (advance(sc); in_statement(sc); advance(sc)) {
        if (n == MODES_MAX || !read_mode(sc, &modes[n++])) {
            unrecordable(sc, local, "");
            return;
        }
        struct scanner ahead = peek(sc);
        if (is_char(&ahead, ',') && !ends_after(&ahead))
            advance(sc);
    }
    for (int i = 0; i < n; i++) {
        struct piece value = {0};
        put_string(&value, modes[i].value);
        add_setting(sc, local, modes[i].setting, &value);
    }
}

/* set_rest after SET [LOCAL|SESSION]. */
static void read_set_rest(struct scanner *sc, int local)
{
    if (assigns_next(sc)) {
        read_generic_set(sc, local);
    } else if (is_word(sc, "transaction") || is_word(sc, "constraints")) {
        return; /* SET TRANSACTION …, SET CONSTRAINTS …: this transaction only */
    } else if (is_word(sc, "session") && next_is_word(sc, "authorization")) {
        unrecordable(sc, local, "session_authorization");
    } else if (is_word(sc, "session")) {
        read_characteristics(sc, local);
    } else if (is_word(sc, "time") && next_is_word(sc, "zone")) {
        advance(sc);
        advance(sc);
        read_zone(sc, local);
    } else if (is_word(sc, "schema")) {
        advance(sc);
        read_schema(sc, local);
    } else if (is_word(sc, "names")) {
        advance(sc);
        read_names(sc, local);
    } else if (is_word(sc, "role")) {
        unrecordable(sc, local, "role");
    } else if (is_word(sc, "xml") && next_is_word(sc, "option")) {
        unrecordable(sc, local, "xmloption");
    } else {
        read_generic_set(sc, local); /* FROM CURRENT, or not a SET PostgreSQL takes */
    }
}

/* SET [LOCAL | SESSION] set_rest. LOCAL or SESSION followed by TO or '=' is a name. */
static void read_set(struct scanner *sc)
{
    advance(sc);
    int local = 0;
    if (is_word(sc, "local") && !assigns_next(sc)) {
        local = 1;
        advance(sc);
    } else if (is_word(sc, "session") && !assigns_next(sc) && !next_is_word(sc, "authorization") &&
               !next_is_word(sc, "characteristics")) {
        advance(sc);
    }
    read_set_rest(sc, local);
}

/* RESET reset_rest. */
static void read_reset(struct scanner *sc)
{
    char name[SESSION_SQL_NAME_MAX + 1];
    advance(sc);
    if (is_word(sc, "all") && ends_after(sc)) {
        add_effect(sc, SSQL_RESET_ALL, SSQL_CAUSE_NONE);
    } else if (is_word(sc, "time") && next_is_word(sc, "zone")) {
        advance(sc);
        if (ends_after(sc))
            add_setting(sc, 0, "timezone", NULL);
        else
            unrecordable(sc, 0, "timezone");
    } else if (is_word(sc, "transaction") && next_is_word(sc, "isolation")) {
        advance(sc);
        int level = next_is_word(sc, "level");
        if (level)
            advance(sc);
        if (level && ends_after(sc))
            add_setting(sc, 0, "transaction_isolation", NULL);
        else
            unrecordable(sc, 0, "transaction_isolation");
    } else if (is_word(sc, "session") && next_is_word(sc, "authorization")) {
        advance(sc);
        if (ends_after(sc))
            add_setting(sc, 0, "session_authorization", NULL);
        else
            unrecordable(sc, 0, "session_authorization");
    } else {
        int r = read_var_name(sc, name);
        if (r > 0 && !in_statement(sc))
            add_setting(sc, 0, name, NULL);
        else
            unrecordable(sc, 0, r > 0 ? name : "");
    }
}

/* ---------------------------------------------------------------- pins */

static void read_discard(struct scanner *sc)
{
    advance(sc);
    if (is_word(sc, "all") && ends_after(sc))
        add_effect(sc, SSQL_DISCARD_ALL, SSQL_CAUSE_NONE);
    else if ((is_word(sc, "temp") || is_word(sc, "temporary")) && ends_after(sc))
        add_all(sc, SSQL_UNPIN, SSQL_CAUSE_TEMP_OBJECT);
    /* DISCARD PLANS, DISCARD SEQUENCES: nothing to carry or release */
}

/* LISTEN channel: a U&"…" channel pins without a name (only UNLISTEN * releases it). */
static void read_listen(struct scanner *sc)
{
    char channel[SQLLEX_IDENT_MAX + 1];
    advance(sc);
    if (take_ident(sc, channel))
        add_named(sc, SSQL_PIN, SSQL_CAUSE_LISTEN, channel);
    else if (sc->tok.kind == SQLLEX_UIDENT)
        add_named(sc, SSQL_PIN, SSQL_CAUSE_LISTEN, "");
}

static void read_unlisten(struct scanner *sc)
{
    char channel[SQLLEX_IDENT_MAX + 1];
    advance(sc);
    if (is_char(sc, '*'))
        add_all(sc, SSQL_UNPIN, SSQL_CAUSE_LISTEN);
    else if (take_ident(sc, channel))
        add_named(sc, SSQL_UNPIN, SSQL_CAUSE_LISTEN, channel);
}

/* Over IF NOT EXISTS / IF EXISTS, when there. */
static void skip_if_exists(struct scanner *sc)
{
    if (!is_word(sc, "if"))
        return;
    advance(sc);
    if (is_word(sc, "not"))
        advance(sc);
    if (is_word(sc, "exists"))
        advance(sc);
}

/* ON COMMIT DROP outside parentheses, from the current token to the statement's end. */
static int drops_on_commit(struct scanner *sc)
{
    int depth = 0, matched = 0; /* words of ON COMMIT DROP seen in a row */
    for (; in_statement(sc); advance(sc)) {
        if (sc->tok.kind == SQLLEX_OPEN || sc->tok.kind == SQLLEX_CLOSE)
            depth += sc->tok.kind == SQLLEX_OPEN ? 1 : -1;
        if (depth != 0 || sc->tok.kind == SQLLEX_OPEN || sc->tok.kind == SQLLEX_CLOSE)
            matched = 0;
        else if (is_word(sc, "on"))
            matched = 1;
        else if (matched == 1 && is_word(sc, "commit"))
            matched = 2;
        else if (matched == 2 && is_word(sc, "drop"))
            return 1;
        else
            matched = 0;
    }
    return 0;
}

/* CREATE [OR REPLACE] [GLOBAL|LOCAL] [TEMP|TEMPORARY|UNLOGGED] [RECURSIVE]
   TABLE|VIEW|SEQUENCE [IF NOT EXISTS] name …: a temporary object pins until dropped,
   unless ON COMMIT DROP ends it with its transaction. */
static void read_create(struct scanner *sc)
{
    int temp = 0;
    char name[QUALIFIED_MAX];
    advance(sc);
    if (is_word(sc, "or") && next_is_word(sc, "replace")) {
        advance(sc);
        advance(sc);
    }
    for (; is_word(sc, "global") || is_word(sc, "local") || is_word(sc, "temp") ||
           is_word(sc, "temporary") || is_word(sc, "unlogged") || is_word(sc, "recursive");
         advance(sc))
        temp |= is_word(sc, "temp") || is_word(sc, "temporary");
    if (!is_word(sc, "table") && !is_word(sc, "view") && !is_word(sc, "sequence"))
        return;
    advance(sc);
    skip_if_exists(sc);
    if (!read_qualified_name(sc, name))
        name[0] = '\0';
    if ((temp || in_temp_schema(name)) && !drops_on_commit(sc))
        add_named(sc, SSQL_PIN, SSQL_CAUSE_TEMP_OBJECT, name);
}

/* DECLARE name [BINARY] [ASENSITIVE|INSENSITIVE] [[NO] SCROLL] CURSOR [WITH HOLD] FOR … */
static void read_declare(struct scanner *sc)
{
    char cursor[SQLLEX_IDENT_MAX + 1];
    advance(sc);
    if (!take_ident(sc, cursor))
        return;
    for (advance(sc); in_statement(sc) && !is_word(sc, "cursor") && !is_word(sc, "for");)
        advance(sc);
    if (!is_word(sc, "cursor"))
        return;
    advance(sc);
    if (is_word(sc, "with") && next_is_word(sc, "hold"))
        add_named(sc, SSQL_PIN, SSQL_CAUSE_HOLD_CURSOR, cursor);
}

/* CLOSE name | ALL ("all" quoted is a cursor's name). */
static void read_close(struct scanner *sc)
{
    char cursor[SQLLEX_IDENT_MAX + 1];
    advance(sc);
    if (is_word(sc, "all"))
        add_all(sc, SSQL_UNPIN, SSQL_CAUSE_HOLD_CURSOR);
    else if (take_ident(sc, cursor))
        add_named(sc, SSQL_UNPIN, SSQL_CAUSE_HOLD_CURSOR, cursor);
}

/* DROP TABLE|VIEW|SEQUENCE [IF EXISTS] name[, name…]: one UNPIN per name. */
static void read_drop(struct scanner *sc)
{
    char name[QUALIFIED_MAX];
    advance(sc);
    if (!is_word(sc, "table") && !is_word(sc, "view") && !is_word(sc, "sequence"))
        return;
    advance(sc);
    skip_if_exists(sc);
    while (read_qualified_name(sc, name)) {
        add_named(sc, SSQL_UNPIN, SSQL_CAUSE_TEMP_OBJECT, name);
        if (!is_char(sc, ','))
            return;
        advance(sc);
    }
}

/* SAVEPOINT name; RELEASE [SAVEPOINT] name; ROLLBACK [WORK|TRANSACTION] TO
   [SAVEPOINT] name (a plain ROLLBACK, ROLLBACK AND CHAIN or ROLLBACK PREPARED is none
   of them). */
static void read_savepoint(struct scanner *sc, enum session_sql_kind kind)
{
    char name[SQLLEX_IDENT_MAX + 1];
    advance(sc);
    if (kind == SSQL_ROLLBACK_TO) {
        if (is_word(sc, "work") || is_word(sc, "transaction"))
            advance(sc);
        if (!is_word(sc, "to"))
            return;
        advance(sc);
    }
    if (kind != SSQL_SAVEPOINT && is_word(sc, "savepoint"))
        advance(sc);
    if (take_ident(sc, name))
        add_named(sc, kind, SSQL_CAUSE_NONE, name);
}

/* EXPLAIN [(options) | ANALYZE | VERBOSE …] CREATE …: EXPLAIN ANALYZE runs it. */
static void read_explain(struct scanner *sc)
{
    advance(sc);
    for (int depth = 0; sc->tok.kind == SQLLEX_OPEN || depth > 0; advance(sc)) {
        if (!in_statement(sc))
            return;
        depth += sc->tok.kind == SQLLEX_OPEN ? 1 : sc->tok.kind == SQLLEX_CLOSE ? -1 : 0;
    }
    while (is_word(sc, "analyze") || is_word(sc, "analyse") || is_word(sc, "verbose"))
        advance(sc);
    if (is_word(sc, "create"))
        read_create(sc);
}

/* The statement's own effect, read on a copy of the scanner at its first token. */
static void read_statement(struct scanner sc)
{
    if (is_word(&sc, "set"))
        read_set(&sc);
    else if (is_word(&sc, "reset"))
        read_reset(&sc);
    else if (is_word(&sc, "discard"))
        read_discard(&sc);
    else if (is_word(&sc, "listen"))
        read_listen(&sc);
    else if (is_word(&sc, "unlisten"))
        read_unlisten(&sc);
    else if (is_word(&sc, "create"))
        read_create(&sc);
    else if (is_word(&sc, "declare"))
        read_declare(&sc);
    else if (is_word(&sc, "close"))
        read_close(&sc);
    else if (is_word(&sc, "drop"))
        read_drop(&sc);
    else if (is_word(&sc, "explain"))
        read_explain(&sc);
    else if (is_word(&sc, "savepoint"))
        read_savepoint(&sc, SSQL_SAVEPOINT);
    else if (is_word(&sc, "release"))
        read_savepoint(&sc, SSQL_RELEASE);
    else if (is_word(&sc, "rollback"))
        read_savepoint(&sc, SSQL_ROLLBACK_TO);
}

/* ---------------------------------------------------------------- calls */

/* Is set_config's third argument, in the call whose '(' is current, exactly TRUE? */
static int third_argument_is_true(struct scanner sc)
{
    int depth = 0, argument = 0, tokens = 0, is_true = 0;
    for (; in_statement(&sc); advance(&sc)) {
        if (sc.tok.kind == SQLLEX_CLOSE && --depth == 0)
            break;
        if (depth == 1 && is_char(&sc, ',')) {
            argument++;
        } else if (depth >= 1 && argument == 2) {
            tokens++;
            is_true = is_word(&sc, "true");
        }
        if (sc.tok.kind == SQLLEX_OPEN)
            depth++;
    }
    return depth == 0 && argument == 2 && tokens == 1 && is_true;
}

static const char *const advisory_locks[] = {
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
};

/* fn '(' with the '(' current: a call (or a definition, which pins just the same). */
static void check_call(struct scanner *sc, const struct sqllex_token *fn)
{
    char name[SQLLEX_IDENT_MAX + 1];
    if (fn->kind == SQLLEX_UIDENT) {
        add_call(sc, SSQL_PIN, SSQL_CAUSE_HIDDEN_CALL, 0);
        return;
    }
    sqllex_decode_ident(&sc->lx, fn, name);
    for (size_t i = 0; i < sizeof advisory_locks / sizeof advisory_locks[0]; i++)
        if (strcmp(name, advisory_locks[i]) == 0)
            add_call(sc, SSQL_PIN, SSQL_CAUSE_ADVISORY_LOCK, 0);
    if (strcmp(name, "pg_advisory_unlock_all") == 0)
        add_call(sc, SSQL_UNPIN, SSQL_CAUSE_ADVISORY_LOCK, 1);
    if (strcmp(name, "set_config") == 0 && !third_argument_is_true(*sc))
        add_call(sc, SSQL_PIN, SSQL_CAUSE_SET_CONFIG, 0);
}

/* INTO OptTempTableName of a SELECT, with INTO current: [LOCAL|GLOBAL] TEMP|TEMPORARY
   [TABLE] name, or a name in pg_temp. */
static void check_select_into(struct scanner sc)
{
    char name[QUALIFIED_MAX];
    int temp = 0;
    advance(&sc);
    if (is_word(&sc, "local") || is_word(&sc, "global"))
        advance(&sc);
    if (is_word(&sc, "temp") || is_word(&sc, "temporary")) {
        temp = 1;
        advance(&sc);
    }
    if (is_word(&sc, "table") || is_word(&sc, "unlogged"))
        advance(&sc);
    if (!read_qualified_name(&sc, name))
        name[0] = '\0';
    if (temp || in_temp_schema(name))
        add_named(&sc, SSQL_PIN, SSQL_CAUSE_TEMP_OBJECT, name);
}

/* Every token of the statement, for calls anywhere and, in SELECT, WITH and EXPLAIN
   statements, INTO outside parentheses. The scanner ends at the statement's end. */
static void walk_statement(struct scanner *sc)
{
    int selects = is_word(sc, "select") || is_word(sc, "with") || is_word(sc, "explain");
    int depth = 0;
    struct sqllex_token before = {.kind = SQLLEX_END};
    for (; in_statement(sc); advance(sc)) {
        if (sc->tok.kind == SQLLEX_OPEN) {
            if (before.kind == SQLLEX_WORD || before.kind == SQLLEX_QIDENT ||
                before.kind == SQLLEX_UIDENT)
                check_call(sc, &before);
            depth++;
        } else if (sc->tok.kind == SQLLEX_CLOSE) {
            depth--;
        } else if (selects && depth == 0 && is_word(sc, "into")) {
            check_select_into(*sc);
        }
        before = sc->tok;
    }
}

/* ---------------------------------------------------------------- entry points */

static void start_over(struct session_sql *out)
{
    if (buf_failed(&out->strings))
        buf_free(&out->strings);
    buf_reset(&out->strings);
    out->statements = out->neffects = out->overflow = out->malformed = 0;
}

void session_sql_scan(const char *sql, size_t len, int backslash_strings, struct session_sql *out)
{
    start_over(out);
    if (len > 0 && memchr(sql, '\0', len)) {
        out->malformed = 1; /* PostgreSQL refuses such a Query or Parse message */
        return;
    }
    struct scanner sc = {.out = out};
    sqllex_init(&sc.lx, sql, len, backslash_strings);
    for (advance(&sc); sc.tok.kind != SQLLEX_END; advance(&sc)) {
        if (sc.tok.kind == SQLLEX_SEMI)
            continue; /* an empty statement */
        sc.statement = out->statements++;
        read_statement(sc);
        walk_statement(&sc);
        if (sc.tok.kind == SQLLEX_END)
            break;
    }
    if (sc.lx.broken) {
        start_over(out);
        out->malformed = 1;
    }
}

const char *session_sql_name(const struct session_sql *s, const struct session_sql_effect *e)
{
    if (e->name == SESSION_SQL_NO_TEXT)
        return "";
    return (const char *)s->strings.data + e->name;
}

const char *session_sql_value(const struct session_sql *s, const struct session_sql_effect *e)
{
    if (e->value == SESSION_SQL_NO_TEXT)
        return NULL;
    return (const char *)s->strings.data + e->value;
}

void session_sql_free(struct session_sql *s)
{
    buf_free(&s->strings);
    s->neffects = 0;
}

/* The pass over the text is shared with sqlprep's words (sqlwords.c): the relay asks
   for both at once. */
int session_sql_mentions(const char *sql, size_t len)
{
    return sqlwords_mentions(sql, len, SQLWORDS_SESSION) != 0;
}

int session_sql_may_be_savepoint(const char *sql, size_t len)
{
    size_t i = 0;
    while (i < len && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r'))
        i++;
    if (len - i < 7)
        return 0; /* shorter than the shortest, RELEASE */
    /* The first two letters decide which word to compare (most texts: none). */
    char first = (char)(sql[i] | 0x20), second = (char)(sql[i + 1] | 0x20);
    if (first == 's' && second == 'a')
        return sqllex_word_at(sql, len, i, "savepoint", 9);
    if (first == 'r' && second == 'e')
        return sqllex_word_at(sql, len, i, "release", 7);
    if (first == 'r' && second == 'o')
        return sqllex_word_at(sql, len, i, "rollback", 8);
    return 0;
}
