/*
 * fingerprint — SQL text → normalised text + 64-bit hash (include/warmpool/fingerprint.h).
 *
 * A small lexer follows PostgreSQL's lexical rules closely enough to find every
 * literal: standard and E'' strings, dollar quotes, quoted identifiers, nested block
 * comments, and the operator rule that "=-1" is "=" then "-1". Tokens are then written
 * out with canonical spacing, so the text, and therefore the hash, depends only on the
 * token sequence. No parse tree is built: an unusual statement still gets a stable
 * fingerprint, only perhaps a less pretty one.
 *
 * The same emitter feeds the hash and, when asked, the output buffer, so the two can
 * never disagree. The hash is FNV-1a over the emitted bytes (words case-folded),
 * finished with a 64-bit mixer so that similar texts land far apart in hash tables.
 */
#include <string.h>

#if defined(__SSE2__) && defined(__x86_64__)
#include <emmintrin.h>
#endif

#include "warmpool/fingerprint.h"

enum tok_kind {
    TK_END,
    TK_WORD,   /* unquoted identifier or keyword */
    TK_QIDENT, /* "quoted identifier", U&"..." */
    TK_NUMBER,
    TK_STRING, /* any string literal, dollar-quoted included */
    TK_PARAM,  /* $1 */
    TK_OP,     /* operator characters */
    TK_PUNCT,  /* ( ) [ ] , ; . : :: and any other single byte */
};

/* What a word means to the normaliser; decided once, when it is lexed. */
enum word_class {
    W_PLAIN,
    W_EXPR,  /* a keyword after which an expression starts */
    W_IN,    /* IN (also W_EXPR-like) */
    W_ARRAY, /* ARRAY */
    W_BOOL,  /* TRUE, FALSE: literals */
};

struct tok {
    enum tok_kind kind;
    enum word_class word; /* TK_WORD only */
    size_t start, end;
};

struct lexer {
    const char *s;
    size_t len;
    size_t pos;
};

/* ---------------------------------------------------------------- lexer */

/*
 * Character classes, as tables built at compile time: the lexer asks about every
 * byte, so a lookup beats a chain of comparisons. The macros expand a formula over
 * all 256 byte values.
 */
enum {
    C_SPACE = 1,
    C_DIGIT = 2,
    C_IDENT_START = 4, /* letters, '_', bytes >= 0x80 */
    C_IDENT = 8,       /* what may follow in a word: also digits and '$' */
    C_OP = 16,         /* PostgreSQL's operator characters */
    C_OP_SPECIAL = 32, /* those that let an operator end in + or - */
};

#define IS_LETTER(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define CLASS_OF(c)                                                                                \
    ((((c) == ' ' || ((c) >= '\t' && (c) <= '\r')) ? C_SPACE : 0) |                                \
     (IS_DIGIT(c) ? C_DIGIT | C_IDENT : 0) |                                                       \
     ((IS_LETTER(c) || (c) == '_' || (c) >= 0x80) ? C_IDENT_START | C_IDENT : 0) |                 \
     ((c) == '$' ? C_IDENT : 0) |                                                                  \
     (((c) == '+' || (c) == '-' || (c) == '*' || (c) == '/' || (c) == '<' || (c) == '>' ||         \
       (c) == '=')                                                                                 \
          ? C_OP                                                                                   \
          : 0) |                                                                                   \
     (((c) == '~' || (c) == '!' || (c) == '@' || (c) == '#' || (c) == '%' || (c) == '^' ||         \
       (c) == '&' || (c) == '|' || (c) == '`' || (c) == '?')                                       \
          ? C_OP | C_OP_SPECIAL                                                                    \
          : 0))
#define LOWER_OF(c) ((c) >= 'A' && (c) <= 'Z' ? (c) | 0x20 : (c))

#define ROW4(F, b) F(b), F(b + 1), F(b + 2), F(b + 3)
#define ROW16(F, b) ROW4(F, b), ROW4(F, b + 4), ROW4(F, b + 8), ROW4(F, b + 12)
#define ROW64(F, b) ROW16(F, b), ROW16(F, b + 16), ROW16(F, b + 32), ROW16(F, b + 48)
#define ROW256(F) ROW64(F, 0), ROW64(F, 64), ROW64(F, 128), ROW64(F, 192)

static const unsigned char char_class[256] = {ROW256(CLASS_OF)};
static const unsigned char lower[256] = {ROW256(LOWER_OF)};

static int is_space(unsigned char c)
{
    return char_class[c] & C_SPACE;
}

static int is_digit(unsigned char c)
{
    return char_class[c] & C_DIGIT;
}

static int is_ident_start(unsigned char c)
{
    return char_class[c] & C_IDENT_START;
}

static int is_ident_char(unsigned char c)
{
    return char_class[c] & C_IDENT;
}

static int is_op_char(unsigned char c)
{
    return char_class[c] & C_OP;
}

static unsigned char at(const struct lexer *lx, size_t i)
{
    return i < lx->len ? (unsigned char)lx->s[i] : '\0';
}

static int comment_starts(const struct lexer *lx, size_t i)
{
    return (at(lx, i) == '-' && at(lx, i + 1) == '-') || (at(lx, i) == '/' && at(lx, i + 1) == '*');
}

/* Position after the comment at i: "--" to end of line, or nested block comments. */
static size_t skip_comment(const struct lexer *lx, size_t i)
{
    if (at(lx, i) == '-') {
        while (i < lx->len && lx->s[i] != '\n')
            i++;
        return i;
    }
    int depth = 0;
    while (i < lx->len) {
        if (at(lx, i) == '/' && at(lx, i + 1) == '*') {
            depth++;
            i += 2;
        } else if (at(lx, i) == '*' && at(lx, i + 1) == '/') {
            i += 2;
            if (--depth == 0)
                return i;
        } else {
            i++;
        }
    }
    return i;
}

/* `quote` opens at i; returns the position after its closing quote (or the end). A
   doubled quote is an escaped quote; with backslashes set, so is \' (E'' strings). */
static size_t skip_quoted(const struct lexer *lx, size_t i, char quote, int backslashes)
{
    for (i++; i < lx->len; i++) {
        char c = lx->s[i];
        if (backslashes && c == '\\') {
            i++;
            continue;
        }
        if (c == quote) {
            if (at(lx, i + 1) != (unsigned char)quote)
                return i + 1;
            i++;
        }
    }
    return lx->len;
}

/* "$tag$" opening at i: returns the delimiter length, or 0 when it is not one. */
static size_t dollar_tag_len(const struct lexer *lx, size_t i)
{
    size_t j = i + 1;
    if (at(lx, j) != '$') {
        if (!is_ident_start(at(lx, j)))
            return 0;
        while (is_ident_start(at(lx, j)) || is_digit(at(lx, j)))
            j++;
        if (at(lx, j) != '$')
            return 0;
    }
    return j - i + 1;
}

static size_t skip_dollar_quoted(const struct lexer *lx, size_t i, size_t tag_len)
{
    const char *tag = lx->s + i;
    for (size_t j = i + tag_len; j + tag_len <= lx->len; j++)
        if (lx->s[j] == '$' && memcmp(lx->s + j, tag, tag_len) == 0)
            return j + tag_len;
    return lx->len;
}

static size_t skip_number(const struct lexer *lx, size_t i)
{
    unsigned char radix = at(lx, i + 1) | 0x20;
    if (at(lx, i) == '0' && (radix == 'x' || radix == 'o' || radix == 'b')) {
        i += 2;
        while (is_ident_char(at(lx, i)) && at(lx, i) != '$')
            i++;
        return i;
    }
    while (is_digit(at(lx, i)) || at(lx, i) == '_')
        i++;
    if (at(lx, i) == '.' && at(lx, i + 1) != '.') {
        i++;
        while (is_digit(at(lx, i)) || at(lx, i) == '_')
            i++;
    }
    if ((at(lx, i) | 0x20) == 'e') {
        size_t j = i + 1;
        if (at(lx, j) == '+' || at(lx, j) == '-')
            j++;
        if (is_digit(at(lx, j))) {
            i = j;
            while (is_digit(at(lx, i)))
                i++;
        }
    }
    return i;
}

/* Operators may not end in + or - unless they hold one of these (PostgreSQL's rule). */
static size_t operator_end(const struct lexer *lx, size_t i)
{
    size_t start = i;
    while (is_op_char(at(lx, i)) && !(i > start && comment_starts(lx, i)))
        i++;
    int special = 0;
    for (size_t k = start; k < i; k++)
        special |= char_class[(unsigned char)lx->s[k]] & C_OP_SPECIAL;
    while (!special && i - start > 1 && (lx->s[i - 1] == '+' || lx->s[i - 1] == '-'))
        i--;
    return i;
}

/* Words, and the literal prefixes that look like them: E'', B'', X'', N'', U&'', U&"". */
static enum tok_kind scan_word(const struct lexer *lx, size_t i, size_t *end)
{
    unsigned char c = at(lx, i) | 0x20, next = at(lx, i + 1);
    if (next == '\'' && (c == 'e' || c == 'b' || c == 'x' || c == 'n')) {
        *end = skip_quoted(lx, i + 1, '\'', c == 'e');
        return TK_STRING;
    }
    if (c == 'u' && next == '&' && (at(lx, i + 2) == '\'' || at(lx, i + 2) == '"')) {
        char q = (char)at(lx, i + 2);
        *end = skip_quoted(lx, i + 2, q, 0);
        return q == '"' ? TK_QIDENT : TK_STRING;
    }
    while (i < lx->len && is_ident_char((unsigned char)lx->s[i]))
        i++;
    *end = i;
    return TK_WORD;
}

static enum tok_kind scan_dollar(const struct lexer *lx, size_t i, size_t *end)
{
    if (is_digit(at(lx, i + 1))) {
        i++;
        while (is_digit(at(lx, i)))
            i++;
        *end = i;
        return TK_PARAM;
    }
    size_t tag_len = dollar_tag_len(lx, i);
    if (tag_len == 0) {
        *end = i + 1;
        return TK_PUNCT;
    }
    *end = skip_dollar_quoted(lx, i, tag_len);
    return TK_STRING;
}

/* Keywords grouped by length; only words this short are compared at all. */
static enum word_class classify_word(const struct lexer *lx, const struct tok *t)
{
    static const char *const expr_words[10] = {
        [2] = "as by is on or ",
        [3] = "all and any not set ",
        [4] = "case else from into join like some then when with ",
        [5] = "ilike limit using where ",
        [6] = "exists having offset return select values ",
        [7] = "between similar ",
        [8] = "distinct ",
        [9] = "returning ",
    };
    size_t n = t->end - t->start;
    char w[10];
    if (n < 2 || n > 9)
        return W_PLAIN;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)lx->s[t->start + i];
        if (c >= 0x80)
            return W_PLAIN;
        w[i] = (char)lower[c];
    }
    if (n == 2 && memcmp(w, "in", 2) == 0)
        return W_IN;
    if ((n == 4 && memcmp(w, "true", 4) == 0) || (n == 5 && memcmp(w, "false", 5) == 0))
        return W_BOOL;
    if (n == 5 && memcmp(w, "array", 5) == 0)
        return W_ARRAY;
    for (const char *k = expr_words[n]; k && *k; k += n + 1)
        if (k[0] == w[0] && memcmp(w, k, n) == 0)
            return W_EXPR;
    return W_PLAIN;
}

static void next_token(struct lexer *lx, struct tok *t)
{
    size_t i = lx->pos;
    for (;;) {
        while (i < lx->len && is_space(at(lx, i)))
            i++;
        if (!comment_starts(lx, i))
            break;
        i = skip_comment(lx, i);
    }
    t->start = i;
    t->word = W_PLAIN;
    unsigned char c = at(lx, i);
    size_t end = i + 1;
    if (i >= lx->len || c == '\0') {
        t->kind = TK_END;
        end = i;
    } else if (is_ident_start(c)) {
        t->kind = scan_word(lx, i, &end);
        t->end = end;
        if (t->kind == TK_WORD)
            t->word = classify_word(lx, t);
    } else if (is_digit(c) || (c == '.' && is_digit(at(lx, i + 1)))) {
        t->kind = TK_NUMBER;
        end = skip_number(lx, i);
    } else if (c == '\'') {
        t->kind = TK_STRING;
        end = skip_quoted(lx, i, '\'', 0);
    } else if (c == '"') {
        t->kind = TK_QIDENT;
        end = skip_quoted(lx, i, '"', 0);
    } else if (c == '$') {
        t->kind = scan_dollar(lx, i, &end);
    } else if (is_op_char(c)) {
        t->kind = TK_OP;
        end = operator_end(lx, i);
    } else if (c == ':' && at(lx, i + 1) == '=') {
        t->kind = TK_OP; /* := of named arguments and PL/pgSQL */
        end = i + 2;
    } else {
        t->kind = TK_PUNCT;
        if (c == ':' && at(lx, i + 1) == ':')
            end = i + 2;
    }
    t->end = end;
    lx->pos = end;
}

/* ---------------------------------------------------------------- token tests */

/* A one- or two-character token spelled exactly `text` (punctuation, operators). */
static int tok_is(const struct lexer *lx, const struct tok *t, const char *text)
{
    size_t n = t->end - t->start;
    return n == (text[1] ? 2u : 1u) && lx->s[t->start] == text[0] &&
           (n == 1 || lx->s[t->start + 1] == text[1]);
}

static int tok_is_bool(const struct tok *t)
{
    return t->kind == TK_WORD && t->word == W_BOOL;
}

/* Keywords after which an expression starts: a sign there is unary, and "(" there
   is not a function call. Only these two decisions depend on it. */
static int tok_is_expr_keyword(const struct tok *t)
{
    return t->kind == TK_WORD && (t->word == W_EXPR || t->word == W_IN);
}

static int tok_is_sign(const struct lexer *lx, const struct tok *t)
{
    return t->kind == TK_OP && (tok_is(lx, t, "-") || tok_is(lx, t, "+"));
}

/* ---------------------------------------------------------------- emitter */

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

struct emitter {
    char *out;
    size_t cap, len;
    int cut;
    uint64_t h;
    int started;
    int glue_right;    /* the last piece wants no space after it */
    int prev_operand;  /* the last piece ends an operand: a following sign is binary */
    int prev_callable; /* the last piece may be followed by "(" of a call */
    int pending_semicolon;
};

static void put_byte(struct emitter *em, unsigned char shown, unsigned char hashed)
{
    em->h = (em->h ^ hashed) * FNV_PRIME;
    if (!em->out)
        return;
    if (em->len + 1 < em->cap)
        em->out[em->len++] = (char)shown;
    else
        em->cut = 1;
}

static void put_text(struct emitter *em, const char *s, size_t n, int fold)
{
    uint64_t h = em->h;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        h = (h ^ (fold ? lower[c] : c)) * FNV_PRIME;
    }
    em->h = h;
    if (!em->out)
        return;
    size_t room = em->cap - 1 - em->len; /* keep one byte for the NUL */
    if (n > room) {
        n = room;
        em->cut = 1;
    }
    memcpy(em->out + em->len, s, n);
    em->len += n;
}

/* One output piece: a space before it unless either side glues. */
static void emit(struct emitter *em, const char *s, size_t n, int fold, int glue_left,
                 int glue_right)
{
    if (em->pending_semicolon) {
        em->pending_semicolon = 0;
        put_byte(em, ';', ';');
        em->glue_right = 0;
    }
    if (em->started && !em->glue_right && !glue_left)
        put_byte(em, ' ', ' ');
    put_text(em, s, n, fold);
    em->started = 1;
    em->glue_right = glue_right;
}

static void emit_literal(struct emitter *em, const char *text)
{
    emit(em, text, strlen(text), 0, 0, 0);
    em->prev_operand = 1;
    em->prev_callable = 0;
}

static void emit_punct(struct emitter *em, const struct lexer *lx, const struct tok *t)
{
    char c = lx->s[t->start];
    size_t n = t->end - t->start;
    int glue_left = 1, glue_right = 0;
    switch (c) {
    case '(':
        glue_left = em->prev_callable;
        glue_right = 1;
        break;
    case '[':
    case '.':
    case ':':
        glue_right = 1;
        break;
    case ')':
    case ']':
    case ',':
        break;
    default:
        glue_left = 0;
        break;
    }
    emit(em, lx->s + t->start, n, 0, glue_left, glue_right);
    em->prev_operand = c == ')' || c == ']';
    em->prev_callable = 0;
}

/* ---------------------------------------------------------------- lists of literals */

/* One literal at the lexer's position: [sign] number | string | $n | true | false,
   with any "::type" casts after it. Returns 1 and consumes it, or 0. */
static int take_literal(struct lexer *lx)
{
    struct tok t;
    next_token(lx, &t);
    if (tok_is_sign(lx, &t))
        next_token(lx, &t);
    if (t.kind != TK_NUMBER && t.kind != TK_STRING && t.kind != TK_PARAM && !tok_is_bool(&t))
        return 0;
    for (;;) {
        struct lexer peek = *lx;
        next_token(&peek, &t);
        if (t.kind != TK_PUNCT || !tok_is(&peek, &t, "::"))
            return 1;
        next_token(&peek, &t);
        if (t.kind != TK_WORD)
            return 1;
        *lx = peek;
    }
}

/* After "(" or "[": literals separated by commas up to `close`? Returns the position
   after `close`, or 0 when the list holds anything else. */
static size_t literal_list_end(const struct lexer *at_open, char close)
{
    struct lexer lx = *at_open;
    struct tok t;
    for (;;) {
        if (!take_literal(&lx))
            return 0;
        next_token(&lx, &t);
        if (t.kind == TK_PUNCT && lx.s[t.start] == close)
            return t.end;
        if (t.kind != TK_PUNCT || lx.s[t.start] != ',')
            return 0;
    }
}

/* ---------------------------------------------------------------- normaliser */

static void emit_word(struct emitter *em, const struct lexer *lx, const struct tok *t)
{
    if (tok_is_bool(t)) {
        emit_literal(em, "?");
        return;
    }
    emit(em, lx->s + t->start, t->end - t->start, 1, 0, 0);
    int keyword = tok_is_expr_keyword(t);
    em->prev_operand = !keyword;
    em->prev_callable = !keyword;
}

/* "(" after IN or "[" after ARRAY: a literal-only list collapses to "(...)" / "[...]". */
static int collapse_list(struct emitter *em, struct lexer *lx, const struct tok *t,
                         const struct tok *prev)
{
    char open = lx->s[t->start];
    int in_list = open == '(' && prev->kind == TK_WORD && prev->word == W_IN;
    int array = open == '[' && prev->kind == TK_WORD && prev->word == W_ARRAY;
    if (!in_list && !array)
        return 0;
    size_t end = literal_list_end(lx, in_list ? ')' : ']');
    if (end == 0)
        return 0;
    lx->pos = end;
    emit(em, in_list ? "(...)" : "[...]", 5, 0, array, 0);
    em->prev_operand = 1;
    em->prev_callable = 0;
    return 1;
}

/* A sign before a number is part of the literal unless it follows an operand. */
static int merge_signed_number(struct emitter *em, struct lexer *lx, const struct tok *t)
{
    if (em->prev_operand || !tok_is_sign(lx, t))
        return 0;
    struct lexer peek = *lx;
    struct tok num;
    next_token(&peek, &num);
    if (num.kind != TK_NUMBER)
        return 0;
    *lx = peek;
    emit_literal(em, "?");
    return 1;
}

static void emit_token(struct emitter *em, struct lexer *lx, const struct tok *t,
                       const struct tok *prev)
{
    switch (t->kind) {
    case TK_WORD:
        emit_word(em, lx, t);
        break;
    case TK_QIDENT:
        emit(em, lx->s + t->start, t->end - t->start, 0, 0, 0);
        em->prev_operand = 1;
        em->prev_callable = 1;
        break;
    case TK_NUMBER:
    case TK_STRING:
        emit_literal(em, "?");
        break;
    case TK_PARAM:
        emit(em, lx->s + t->start, t->end - t->start, 0, 0, 0);
        em->prev_operand = 1;
        em->prev_callable = 0;
        break;
    case TK_OP:
        if (merge_signed_number(em, lx, t))
            break;
        emit(em, lx->s + t->start, t->end - t->start, 0, 0, 0);
        em->prev_operand = 0;
        em->prev_callable = 0;
        break;
    case TK_PUNCT:
        if (lx->s[t->start] == ';') {
            em->pending_semicolon = em->started; /* leading and repeated ones vanish */
            break;
        }
        if (collapse_list(em, lx, t, prev))
            break;
        emit_punct(em, lx, t);
        break;
    case TK_END:
        break;
    }
}

/* Cut back to the last whole UTF-8 character. */
static size_t utf8_boundary(const char *s, size_t len)
{
    size_t k = len;
    while (k > 0 && ((unsigned char)s[k - 1] & 0xC0) == 0x80)
        k--;
    if (k == 0)
        return len;
    unsigned char lead = (unsigned char)s[k - 1];
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return len - (k - 1) >= want ? len : k - 1;
}

static uint64_t finish_hash(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h ? h : 1;
}

static uint64_t normalize(const char *sql, size_t len, char *out, size_t outlen)
{
    struct lexer lx = {sql, len, 0};
    struct emitter em = {.out = out, .cap = outlen, .h = FNV_OFFSET};
    struct tok t, prev = {TK_END, W_PLAIN, 0, 0};
    if (!sql)
        lx.len = 0;
    for (;;) {
        next_token(&lx, &t);
        if (t.kind == TK_END)
            break;
        emit_token(&em, &lx, &t, &prev);
        prev = t;
    }
    if (out) {
        size_t n = em.cut ? utf8_boundary(out, em.len) : em.len;
        out[n] = '\0';
    }
    return finish_hash(em.h);
}

/*
 * The full normaliser costs thousands of instructions per statement, and it runs for
 * every query on the hot path. Applications send the same few shapes with different
 * literals, so a cheap "shape" hash comes first: the text with the digits of numbers
 * and the contents of plain '…' strings skipped, every other byte kept. Two texts of
 * the same shape normalise alike, so a small cache from shape to fingerprint answers
 * almost every query for a few instructions a byte. Texts where skipping could fall out
 * of step with the real lexer (dollar quotes, quoted identifiers, comments, escape
 * strings, backslashes) have no shape and are always normalised in full.
 */
#define SHAPE_CACHE_SIZE 256
#define SHAPE_MAX_LEN 8192
#define FNV_STEP(h, c) (((h) ^ (c)) * 0x100000001b3ULL)
/* Placeholders outside the byte range: no text byte can stand in for them. */
#define SHAPE_NUMBER 0x1f1u
#define SHAPE_STRING 0x1f2u

static struct {
    uint64_t shape;
    uint64_t fingerprint;
} shape_cache[SHAPE_CACHE_SIZE];

static int shape_ident_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c >= 0x80;
}

/* Index just past a plain '…' literal starting at i, or 0 when it does not end. */
static size_t shape_skip_string(const char *s, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (s[i] != '\'')
            continue;
        if (i + 1 < len && s[i + 1] == '\'') {
            i++;
            continue;
        }
        return i + 1;
    }
    return 0;
}

enum shape_class { SC_OTHER, SC_IDENT, SC_DIGIT, SC_QUOTE, SC_BAIL, SC_DASH, SC_SLASH, SC_DOLLAR };

static unsigned char shape_classes[256];

static void shape_init_classes(void)
{
    for (int c = 0; c < 256; c++)
        shape_classes[c] = shape_ident_char((unsigned char)c) ? SC_IDENT : SC_OTHER;
    for (int c = '0'; c <= '9'; c++)
        shape_classes[c] = SC_DIGIT;
    shape_classes['\''] = SC_QUOTE;
    shape_classes['"'] = shape_classes['\\'] = shape_classes[0] = SC_BAIL;
    shape_classes['$'] = SC_DOLLAR;
    shape_classes['-'] = SC_DASH;
    shape_classes['/'] = SC_SLASH;
}

#define SHAPE_MIX_MUL 0x9e3779b97f4a7c15ULL
#define SHAPE_MIX_MUL2 0xd6e8feb86659fd93ULL

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

#define SWAR_ONES 0x0101010101010101ULL
#define SWAR_LOW7 0x7f7f7f7f7f7f7f7fULL
#define SWAR_HIGH 0x8080808080808080ULL

/*
 * A chunk's mix must spread a difference in any of its bits over the whole result: with
 * one multiply and one shift, a flipped high bit in one word stayed a sparse, predictable
 * difference the next word could flip back, and texts of different shapes hashed alike
 * (fuzz_fingerprint found 'SELECT  bcdefghij...' and 'SELECT ebcdefghhj...').
 *
 * Plain bytes are hashed a chunk at a time. A byte is plain unless it is '"' to '9'
 * (quotes, dollar, dash, slash, digits, and some harmless punctuation), backslash, NUL
 * or non-ASCII: those take the byte-by-byte path. Over the SHAPE_CHUNK bytes at p,
 * shape_plain_prefix(p) counts the plain bytes at the start, shape_digit_prefix(p, skip)
 * the ASCII digits from p[skip] on, and shape_mix_chunk mixes in a chunk of plain bytes.
 */
#if defined(__SSE2__) && defined(__x86_64__)
#define SHAPE_CHUNK 16

static unsigned shape_plain_prefix(const unsigned char *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    __m128i ascii = _mm_cmpgt_epi8(v, _mm_setzero_si128()); /* signed: 0x01..0x7f */
    /* '"'..'9' moved to the bottom of the signed range, then one compare */
    __m128i low = _mm_add_epi8(v, _mm_set1_epi8((char)(0x80 - '"')));
    __m128i punct = _mm_cmplt_epi8(low, _mm_set1_epi8((char)(0x80 + '9' + 1 - '"')));
    __m128i bs = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    __m128i plain = _mm_andnot_si128(_mm_or_si128(punct, bs), ascii);
    return (unsigned)__builtin_ctz(~(unsigned)_mm_movemask_epi8(plain));
}

static unsigned shape_digit_prefix(const unsigned char *p, unsigned skip)
{
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    __m128i low = _mm_add_epi8(v, _mm_set1_epi8((char)(0x80 - '0')));
    __m128i digit = _mm_cmplt_epi8(low, _mm_set1_epi8((char)(0x80 + 10)));
    return (unsigned)__builtin_ctz(~((unsigned)_mm_movemask_epi8(digit) >> skip));
}

__extension__ typedef unsigned __int128 shape_u128;

#define SHAPE_CHUNK_K0 0xa0761d6478bd642fULL
#define SHAPE_CHUNK_K1 0xe7037ed1a0b428dbULL

/* One 64x64->128 multiply of the state with the first word by the second, folded. The
   constants keep both factors off zero: plain bytes never have bit 7 set, and K1 (and
   the starting state ^ K0) have it in some byte. */
static uint64_t shape_mix_chunk(uint64_t h, const unsigned char *p)
{
    shape_u128 product =
        (shape_u128)(h ^ load_le64(p) ^ SHAPE_CHUNK_K0) * (load_le64(p + 8) ^ SHAPE_CHUNK_K1);
    return (uint64_t)product ^ (uint64_t)(product >> 64);
}
#else
#define SHAPE_CHUNK 8

/* Bit 7 set in each byte of w that is not plain. Each byte is tested on its own: no
   carry crosses a byte. */
static uint64_t shape_special_bytes(uint64_t w)
{
    uint64_t low = w & SWAR_LOW7;
    uint64_t from_dquote = low + SWAR_ONES * (0x7f - 0x21); /* bit 7: byte >= 0x22 */
    uint64_t to_nine = ~(low + SWAR_ONES * (0x7f - 0x39));  /* bit 7: byte <= 0x39 */
    uint64_t bs = w ^ (SWAR_ONES * '\\');
    uint64_t is_bs = ~(((bs & SWAR_LOW7) + SWAR_LOW7) | bs | SWAR_LOW7);
    uint64_t is_nul = ~((low + SWAR_LOW7) | w | SWAR_LOW7);
    return ((from_dquote & to_nine) | is_bs | is_nul | w) & SWAR_HIGH;
}

static unsigned shape_plain_prefix(const unsigned char *p)
{
    uint64_t special = shape_special_bytes(load_le64(p));
    return special ? (unsigned)__builtin_ctzll(special) / 8 : 8;
}

static unsigned shape_digit_prefix(const unsigned char *p, unsigned skip)
{
    uint64_t x = load_le64(p) ^ (SWAR_ONES * '0'); /* digits: 0 to 9 */
    uint64_t other = (((x & SWAR_LOW7) + SWAR_ONES * (0x80 - 10)) | x) & SWAR_HIGH;
    other = other >> (8 * skip) | ~(~0ULL >> (8 * skip)); /* skipped: end of the digits */
    return other ? (unsigned)__builtin_ctzll(other) / 8 : 8;
}

/* One-to-one in h and in the word; two multiply-xorshift rounds. */
static uint64_t shape_mix_chunk(uint64_t h, const unsigned char *p)
{
    h = (h ^ load_le64(p)) * SHAPE_MIX_MUL;
    h = (h ^ (h >> 32)) * SHAPE_MIX_MUL2;
    return h ^ (h >> 29);
}
#endif

/* Index of the first byte at or after i that is not an ASCII digit, or len. Near the end
   the text's last chunk is tested, from i on: nothing past len is read. */
static size_t shape_skip_digits(const unsigned char *s, size_t len, size_t i)
{
    for (; i + SHAPE_CHUNK <= len; i += SHAPE_CHUNK) {
        unsigned n = shape_digit_prefix(s + i, 0);
        if (n < SHAPE_CHUNK)
            return i + n;
    }
    if (len >= SHAPE_CHUNK && i < len)
        return i + shape_digit_prefix(s + len - SHAPE_CHUNK, (unsigned)(i + SHAPE_CHUNK - len));
    while (i < len && shape_classes[s[i]] == SC_DIGIT)
        i++;
    return i;
}

/* Takes the run of plain bytes at i and returns the index past it: whole chunks mixed in
   at once, then the rest byte by byte. Chunks count from the start of the run and are
   only taken whole, so the cut depends on the run alone, never on how far the text goes
   on after it (when fewer than a chunk's bytes are left, none can be whole): texts of one
   shape hash alike. Near the end the byte loop may also take punctuation the chunk test
   leaves to the caller; the caller would hash it the same way. */
static size_t shape_take_plain(const unsigned char *s, size_t len, size_t i, uint64_t *h)
{
    unsigned n = 0;
    while (i + SHAPE_CHUNK <= len && (n = shape_plain_prefix(s + i)) == SHAPE_CHUNK) {
        *h = shape_mix_chunk(*h, s + i);
        i += SHAPE_CHUNK;
    }
    if (i + SHAPE_CHUNK <= len) {
        for (size_t end = i + n; i < end; i++)
            *h = FNV_STEP(*h, s[i]);
        return i;
    }
    for (; i < len && shape_classes[s[i]] <= SC_IDENT; i++)
        *h = FNV_STEP(*h, s[i]);
    return i;
}

/* Whether a digit or quote at i is glued to a name or number before it: t1, E'', 1'x'. */
static int shape_glued(const unsigned char *s, size_t i)
{
    return i > 0 && (shape_classes[s[i - 1]] == SC_IDENT || shape_classes[s[i - 1]] == SC_DIGIT);
}

/*
 * '$' inside a name (a$b) or opening a parameter ($1, as in every extended-protocol
 * query): kept as it is with the rest of the name or the parameter's digits. Returns
 * the index after them, or 0 (no shape) where '$' may open a dollar quote ($$, $tag$),
 * follows a number, or a parameter runs into a name ($1a).
 */
static size_t shape_dollar(const unsigned char *s, size_t len, size_t i, uint64_t *h)
{
    unsigned char before = i > 0 ? shape_classes[s[i - 1]] : SC_OTHER;
    int in_name = before == SC_IDENT;
    if (before == SC_DIGIT || (!in_name && (i + 1 >= len || shape_classes[s[i + 1]] != SC_DIGIT)))
        return 0;
    *h = FNV_STEP(*h, '$');
    for (i++; i < len; i++) {
        unsigned char k = shape_classes[s[i]];
        if (k != SC_DIGIT && (!in_name || (k != SC_IDENT && k != SC_DOLLAR)))
            break;
        *h = FNV_STEP(*h, s[i]);
    }
    if (!in_name && i < len && (shape_classes[s[i]] == SC_IDENT || s[i] == '$'))
        return 0;
    return i;
}

/* 0 = no shape (normalise in full). Plain runs a chunk a step, the rest one table lookup
   per byte. */
static uint64_t shape_hash(const char *text, size_t len)
{
    static int ready;
    if (!ready) {
        shape_init_classes();
        ready = 1;
    }
    const unsigned char *s = (const unsigned char *)text;
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i = 0;
    while ((i = shape_take_plain(s, len, i, &h)) < len) {
        unsigned char c = s[i];
        unsigned char k = shape_classes[c];
        if (k <= SC_IDENT || (k == SC_DIGIT && shape_glued(s, i))) { /* kept as it is */
            h = FNV_STEP(h, c);
            i++;
            continue;
        }
        switch (k) {
        case SC_DIGIT:
            i = shape_skip_digits(s, len, i);
            /* 0x1F, 1e5, 0b1: letters glued to digits are the lexer's business; so is a
               name right after "1." (1.e5, 1._1$$…), where the lexer's view of the number
               decides what the rest is (fuzz_fingerprint found a '$$' read both ways) */
            if (i < len && shape_classes[s[i]] == SC_IDENT)
                return 0;
            if (i + 1 < len && s[i] == '.' && shape_classes[s[i + 1]] == SC_IDENT)
                return 0;
            h = FNV_STEP(h, SHAPE_NUMBER);
            continue;
        case SC_QUOTE:
            if (shape_glued(s, i))
                return 0; /* E'', B'', X'', U&'' and friends */
            i = shape_skip_string(text, len, i);
            if (i == 0)
                return 0;
            h = FNV_STEP(h, SHAPE_STRING);
            continue;
        case SC_DOLLAR:
            i = shape_dollar(s, len, i, &h);
            if (i == 0)
                return 0;
            continue;
        case SC_DASH:
        case SC_SLASH:
            if (i + 1 < len && s[i + 1] == (k == SC_DASH ? '-' : '*'))
                return 0; /* a comment */
            h = FNV_STEP(h, c);
            i++;
            continue;
        default:
            return 0;
        }
    }
    return h ? h : 1;
}

uint64_t fingerprint_hash(const char *sql, size_t len)
{
    if (len > SHAPE_MAX_LEN)
        return normalize(sql, len, NULL, 0);
    uint64_t shape = shape_hash(sql, len);
    if (shape == 0)
        return normalize(sql, len, NULL, 0);
    size_t slot = (size_t)(shape ^ (shape >> 32)) & (SHAPE_CACHE_SIZE - 1);
    if (shape_cache[slot].shape == shape)
        return shape_cache[slot].fingerprint;
    uint64_t fp = normalize(sql, len, NULL, 0);
    shape_cache[slot].shape = shape;
    shape_cache[slot].fingerprint = fp;
    return fp;
}

uint64_t fingerprint_normalize(const char *sql, size_t len, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return normalize(sql, len, NULL, 0);
    return normalize(sql, len, out, outlen);
}
