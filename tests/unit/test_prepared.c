/*
 * test_prepared — the prepared-statement registry, client name maps, per-backend LRU
 * sets, the pending-request ring and prepared_parse_parse (pooler/prepared.c).
 *
 * Inputs live in exact-size heap copies (no spare NUL), so running this under
 * valgrind or ASan catches any read past what a caller handed over. Reference counts
 * are checked by value, and every test releases what it took: a clean valgrind run
 * means no entry is leaked or freed while still referenced.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/prepared.h"
#include "warmpool/proto.h"

#define OID_INT4 23u
#define OID_TEXT 25u

/* ---- helpers ---- */

/* A statement as the relay would hand it over: text and big-endian OIDs on the heap. */
struct spec {
    char *text;
    uint8_t *types;
    struct wp_parse_msg msg;
};

static void *heap_copy(const void *data, size_t len)
{
    void *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, data, len);
    return copy;
}

static void spec_make(struct spec *s, const char *query, const uint32_t *oids, uint16_t n,
                      int sql_level)
{
    size_t len = strlen(query);
    s->text = heap_copy(query, len);
    s->types = malloc(n ? 4 * (size_t)n : 1);
    assert_non_null(s->types);
    for (uint16_t i = 0; i < n; i++)
        proto_put_u32(s->types + 4 * (size_t)i, oids[i]);
    memset(&s->msg, 0, sizeof s->msg);
    s->msg.name = "";
    s->msg.query = s->text;
    s->msg.query_len = len;
    s->msg.nparams = n;
    s->msg.param_types = s->types;
    s->msg.sql_level = sql_level;
}

static void spec_free(struct spec *s)
{
    free(s->text);
    free(s->types);
}

/* Intern or find a statement; the source buffers are freed before returning, which
   also proves the registry keeps its own copies. */
static struct wp_stmt *intern(struct wp_registry *reg, const char *query, const uint32_t *oids,
                              uint16_t n, int sql_level)
{
    struct spec s;
    spec_make(&s, query, oids, n, sql_level);
    struct wp_stmt *stmt = registry_intern(reg, &s.msg);
    spec_free(&s);
    assert_non_null(stmt);
    return stmt;
}

static struct wp_stmt *find(const struct wp_registry *reg, const char *query, const uint32_t *oids,
                            uint16_t n, int sql_level)
{
    struct spec s;
    spec_make(&s, query, oids, n, sql_level);
    struct wp_stmt *stmt = registry_find(reg, &s.msg);
    spec_free(&s);
    return stmt;
}

static struct wp_stmt *intern_text(struct wp_registry *reg, const char *query)
{
    return intern(reg, query, NULL, 0, 0);
}

static void registry_setup(struct wp_registry *reg)
{
    assert_int_equal(registry_init(reg), 0);
    assert_int_equal(reg->count, 0);
}

static void numbered_query(char *out, size_t outlen, const char *fmt, int i)
{
    int n = snprintf(out, outlen, fmt, i);
    assert_true(n > 0 && (size_t)n < outlen);
}

/* A Parse body: name\0 query\0 int16 n, n × int32 OID; in an exact-size heap block. */
static uint8_t *parse_body(const char *name, const char *query, uint16_t n, const uint32_t *oids,
                           size_t *len)
{
    size_t nl = strlen(name) + 1, ql = strlen(query) + 1;
    *len = nl + ql + 2 + 4 * (size_t)n;
    uint8_t *body = malloc(*len);
    assert_non_null(body);
    memcpy(body, name, nl);
    memcpy(body + nl, query, ql);
    body[nl + ql] = (uint8_t)(n >> 8);
    body[nl + ql + 1] = (uint8_t)n;
    for (uint16_t i = 0; i < n; i++)
        proto_put_u32(body + nl + ql + 2 + 4 * (size_t)i, oids[i]);
    return body;
}

/* prepared_parse_parse on an exact-size copy of the first len bytes of bytes. */
static int parse_prefix(const uint8_t *bytes, size_t len)
{
    uint8_t *copy = heap_copy(bytes, len);
    struct wp_parse_msg msg;
    int rc = prepared_parse_parse(copy, len, &msg);
    free(copy);
    return rc;
}

/* ---- prepared_parse_parse ---- */

static void test_parse_valid_body(void **state)
{
    (void)state;
    const uint32_t oids[2] = {OID_INT4, 0xdeadbeefu};
    size_t len;
    uint8_t *body = parse_body("s1", "SELECT $1, $2", 2, oids, &len);
    struct wp_parse_msg msg;
    memset(&msg, 0xa5, sizeof msg);
    assert_int_equal(prepared_parse_parse(body, len, &msg), 0);
    assert_ptr_equal(msg.name, (const char *)body);
    assert_string_equal(msg.name, "s1");
    assert_ptr_equal(msg.query, (const char *)body + 3);
    assert_int_equal(msg.query_len, strlen("SELECT $1, $2"));
    assert_memory_equal(msg.query, "SELECT $1, $2", msg.query_len);
    assert_int_equal(msg.nparams, 2);
    assert_ptr_equal(msg.param_types, body + len - 8);
    assert_int_equal(proto_get_u32(msg.param_types), OID_INT4);
    assert_int_equal(proto_get_u32(msg.param_types + 4), 0xdeadbeefu);
    assert_int_equal(msg.sql_level, 0);
    free(body);
}

static void test_parse_unnamed_empty_zero_params(void **state)
{
    (void)state;
    size_t len;
    uint8_t *body = parse_body("", "", 0, NULL, &len);
    assert_int_equal(len, 4);
    struct wp_parse_msg msg;
    assert_int_equal(prepared_parse_parse(body, len, &msg), 0);
    assert_string_equal(msg.name, "");
    assert_int_equal(msg.query_len, 0);
    assert_int_equal(msg.nparams, 0);
    assert_ptr_equal(msg.param_types, body + len);
    free(body);
}

static void test_parse_many_params(void **state)
{
    (void)state;
    enum { N = 1000 };
    static uint32_t oids[N];
    for (uint32_t i = 0; i < N; i++)
        oids[i] = i * 7 + 1;
    size_t len;
    uint8_t *body = parse_body("", "SELECT 1", N, oids, &len);
    struct wp_parse_msg msg;
    assert_int_equal(prepared_parse_parse(body, len, &msg), 0);
    assert_int_equal(msg.nparams, N);
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(proto_get_u32(msg.param_types + 4 * i), oids[i]);
    free(body);
}

static void test_parse_every_truncation_fails(void **state)
{
    (void)state;
    const uint32_t oids[3] = {OID_INT4, OID_TEXT, 16};
    size_t len;
    uint8_t *body = parse_body("stmt", "SELECT $1, $2, $3", 3, oids, &len);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(parse_prefix(body, cut), -1);
    assert_int_equal(parse_prefix(body, len), 0);
    free(body);

    body = parse_body("", "", 0, NULL, &len);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(parse_prefix(body, cut), -1);
    free(body);
}

static void test_parse_missing_nuls(void **state)
{
    (void)state;
    /* no NUL at all; name terminated but the query is not (count bytes look like text) */
    assert_int_equal(parse_prefix((const uint8_t *)"stmt", 4), -1);
    assert_int_equal(parse_prefix((const uint8_t *)"s\0SELECT 1", 10), -1);
    assert_int_equal(parse_prefix((const uint8_t *)"s\0SELECT 1\x00\x00", 11), -1);
    /* only the name's NUL, followed by what would be a count */
    assert_int_equal(parse_prefix((const uint8_t *)"s\0\x00", 3), -1);
}

static void test_parse_param_count_mismatch(void **state)
{
    (void)state;
    const uint32_t oids[2] = {OID_INT4, OID_TEXT};
    size_t len;
    uint8_t *body = parse_body("", "q", 2, oids, &len);
    /* claims 1 parameter but carries 2 */
    body[len - 9] = 1;
    assert_int_equal(parse_prefix(body, len), -1);
    /* claims 3 but carries 2 */
    body[len - 9] = 3;
    assert_int_equal(parse_prefix(body, len), -1);
    /* claims 0 with 8 bytes left over */
    body[len - 9] = 0;
    assert_int_equal(parse_prefix(body, len), -1);
    /* claims 65535 */
    body[len - 10] = 0xff;
    body[len - 9] = 0xff;
    assert_int_equal(parse_prefix(body, len), -1);
    /* a high byte that only matters when read big-endian: 0x0102 = 258 */
    body[len - 10] = 1;
    body[len - 9] = 2;
    assert_int_equal(parse_prefix(body, len), -1);
    free(body);

    /* zero parameters and one stray byte */
    const uint8_t stray[] = {'s', 0, 'q', 0, 0, 0, 7};
    assert_int_equal(parse_prefix(stray, sizeof stray), -1);
    assert_int_equal(parse_prefix(stray, sizeof stray - 1), 0);
}

/* ---- registry ---- */

static void test_registry_same_statement_shares_entry(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    const uint32_t oids[1] = {OID_INT4};
    struct wp_stmt *a = intern(&reg, "SELECT $1", oids, 1, 0);
    struct wp_stmt *b = intern(&reg, "SELECT $1", oids, 1, 0);
    assert_ptr_equal(a, b);
    assert_int_equal(a->refs, 2);
    assert_int_equal(reg.count, 1);
    registry_ref(a);
    assert_int_equal(a->refs, 3);
    registry_unref(&reg, a);
    registry_unref(&reg, a);
    assert_int_equal(a->refs, 1);
    assert_ptr_equal(find(&reg, "SELECT $1", oids, 1, 0), a);
    registry_unref(&reg, a);
    assert_int_equal(reg.count, 0);
    assert_null(find(&reg, "SELECT $1", oids, 1, 0));
    registry_free(&reg);
}

static void test_registry_keeps_copies(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    const uint32_t oids[2] = {0x01020304u, OID_TEXT};
    struct wp_stmt *s = intern(&reg, "SELECT $1, $2", oids, 2, 1);
    assert_int_equal(s->query_len, strlen("SELECT $1, $2"));
    assert_string_equal(s->query, "SELECT $1, $2"); /* NUL-terminated copy */
    assert_int_equal(s->nparams, 2);
    assert_int_equal(s->param_types[0], 0x01020304u); /* host order */
    assert_int_equal(s->param_types[1], OID_TEXT);
    assert_int_equal(s->sql_level, 1);
    assert_int_equal(s->refs, 1);
    assert_int_equal(s->validated, 0);
    assert_int_equal(s->uses, 0);
    assert_null(s->describe);
    registry_unref(&reg, s);
    registry_free(&reg);
}

static void test_registry_distinguishes_types_and_level(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    const uint32_t i4[2] = {OID_INT4, OID_INT4}, tx[1] = {OID_TEXT}, zero[1] = {0};
    struct wp_stmt *e[7] = {
        intern(&reg, "SELECT $1", NULL, 0, 0),  intern(&reg, "SELECT $1", i4, 1, 0),
        intern(&reg, "SELECT $1", tx, 1, 0),    intern(&reg, "SELECT $1", i4, 2, 0),
        intern(&reg, "SELECT $1", i4, 1, 1),    intern(&reg, "SELECT $1", zero, 1, 0),
        intern(&reg, "SELECT $10", NULL, 0, 0),
    };
    assert_int_equal(reg.count, 7);
    for (int i = 0; i < 7; i++)
        for (int j = i + 1; j < 7; j++)
            assert_ptr_not_equal(e[i], e[j]);
    assert_ptr_equal(find(&reg, "SELECT $1", NULL, 0, 0), e[0]);
    assert_ptr_equal(find(&reg, "SELECT $1", i4, 1, 0), e[1]);
    assert_ptr_equal(find(&reg, "SELECT $1", tx, 1, 0), e[2]);
    assert_ptr_equal(find(&reg, "SELECT $1", i4, 2, 0), e[3]);
    assert_ptr_equal(find(&reg, "SELECT $1", i4, 1, 1), e[4]);
    assert_ptr_equal(find(&reg, "SELECT $1", zero, 1, 0), e[5]);
    assert_ptr_equal(find(&reg, "SELECT $10", NULL, 0, 0), e[6]);
    assert_null(find(&reg, "SELECT $1 ", NULL, 0, 0));
    assert_null(find(&reg, "select $1", NULL, 0, 0));
    assert_null(find(&reg, "SELECT $1", NULL, 0, 1));
    for (int i = 0; i < 7; i++) {
        assert_int_equal(e[i]->refs, 1);
        registry_unref(&reg, e[i]);
    }
    assert_int_equal(reg.count, 0);
    registry_free(&reg);
}

static void test_registry_ids_and_names(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    char query[32], expect[32];
    uint64_t last = 0;
    for (int i = 0; i < 50; i++) {
        numbered_query(query, sizeof query, "SELECT %d", i);
        struct wp_stmt *s = intern_text(&reg, query);
        if (i > 0)
            assert_true(s->id > last);
        last = s->id;
        snprintf(expect, sizeof expect, "wp_%llu", (unsigned long long)s->id);
        assert_string_equal(s->name, expect);
        registry_unref(&reg, s); /* freed at once: ids are still never reused */
    }
    assert_int_equal(reg.count, 0);
    struct wp_stmt *again = intern_text(&reg, "SELECT 0");
    assert_true(again->id > last);
    registry_unref(&reg, again);
    registry_free(&reg);
}

static void test_registry_find_takes_no_reference(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    struct wp_stmt *s = intern_text(&reg, "SELECT 1");
    for (int i = 0; i < 3; i++)
        assert_ptr_equal(find(&reg, "SELECT 1", NULL, 0, 0), s);
    assert_int_equal(s->refs, 1);
    assert_null(find(&reg, "SELECT 2", NULL, 0, 0));
    assert_int_equal(reg.count, 1);
    registry_unref(&reg, s); /* the one reference was enough: freed here */
    assert_int_equal(reg.count, 0);
    registry_free(&reg);
}

enum { MANY = 5000 };

/* The i-th of MANY distinct statements: text, types and level all vary. */
static struct wp_stmt *many_op(struct wp_registry *reg, int i, int add)
{
    char query[48];
    const uint32_t oids[2] = {OID_INT4, (uint32_t)i};
    numbered_query(query, sizeof query, "SELECT %d FROM t", i / 4);
    uint16_t n = (uint16_t)(i % 4 == 3 ? 2 : i % 4 == 2 ? 1 : 0);
    int level = i % 4 == 1;
    return add ? intern(reg, query, oids, n, level) : find(reg, query, oids, n, level);
}

static void test_registry_growth_keeps_entries(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    static struct wp_stmt *all[MANY];
    for (int i = 0; i < MANY; i++)
        all[i] = many_op(&reg, i, 1);
    assert_int_equal(reg.count, MANY);
    assert_true(reg.nbuckets > 256);
    assert_int_equal(reg.nbuckets & (reg.nbuckets - 1), 0);
    for (int i = 0; i < MANY; i++) {
        assert_ptr_equal(many_op(&reg, i, 0), all[i]);
        assert_int_equal(all[i]->refs, 1);
    }
    /* interning again after growth finds the old entry */
    assert_ptr_equal(many_op(&reg, 4321, 1), all[4321]);
    assert_int_equal(all[4321]->refs, 2);
    registry_unref(&reg, all[4321]);
    /* drop every third: chains are unlinked correctly, the rest stay findable */
    for (int i = 0; i < MANY; i += 3)
        registry_unref(&reg, all[i]);
    for (int i = 0; i < MANY; i++) {
        struct wp_stmt *got = many_op(&reg, i, 0);
        if (i % 3 == 0)
            assert_null(got);
        else
            assert_ptr_equal(got, all[i]);
    }
    for (int i = MANY - 1; i >= 0; i--)
        if (i % 3 != 0)
            registry_unref(&reg, all[i]);
    assert_int_equal(reg.count, 0);
    registry_free(&reg);
}

static void test_registry_free_releases_live_entries(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    char query[32];
    for (int i = 0; i < 600; i++) {
        numbered_query(query, sizeof query, "SELECT %d", i);
        struct wp_stmt *s = intern_text(&reg, query);
        if (i % 2)
            registry_set_describe(s, (const uint8_t *)"n\0\0\0\4", 5);
    }
    registry_free(&reg); /* valgrind: nothing leaked */
    assert_null(reg.buckets);
    assert_int_equal(reg.count, 0);
}

/* ---- describe cache ---- */

static void test_describe_set_replace_drop(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    struct wp_stmt *s = intern_text(&reg, "SELECT 1");
    uint8_t *bytes = heap_copy("t\0\0\0\6\0\0n\0\0\0\4", 13);
    assert_int_equal(registry_set_describe(s, bytes, 13), 0);
    memset(bytes, 0, 13); /* the cache holds a copy */
    assert_int_equal(s->describe_len, 13);
    assert_memory_equal(s->describe, "t\0\0\0\6\0\0n\0\0\0\4", 13);
    free(bytes);
    assert_int_equal(registry_set_describe(s, (const uint8_t *)"n\0\0\0\4", 5), 0);
    assert_int_equal(s->describe_len, 5);
    assert_memory_equal(s->describe, "n\0\0\0\4", 5);
    registry_drop_describe(s);
    assert_null(s->describe);
    assert_int_equal(s->describe_len, 0);
    registry_drop_describe(s); /* twice is harmless */
    assert_int_equal(registry_set_describe(s, (const uint8_t *)"n\0\0\0\4", 5), 0);
    registry_unref(&reg, s); /* frees the cached bytes too */
    registry_free(&reg);
}

static void test_describe_drop_all(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    static struct wp_stmt *all[700];
    char query[32];
    for (int i = 0; i < 700; i++) {
        numbered_query(query, sizeof query, "SELECT %d", i);
        all[i] = intern_text(&reg, query);
        if (i % 5)
            assert_int_equal(registry_set_describe(all[i], (const uint8_t *)"n\0\0\0\4", 5), 0);
    }
    registry_drop_all_describes(&reg);
    for (int i = 0; i < 700; i++) {
        assert_null(all[i]->describe);
        assert_int_equal(all[i]->describe_len, 0);
        assert_int_equal(all[i]->refs, 1);
        registry_unref(&reg, all[i]);
    }
    registry_drop_all_describes(&reg); /* on an empty registry */
    registry_free(&reg);
}

/* ---- client name maps ---- */

static void test_namemap_put_get_replace(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    struct wp_name_map map = {0};
    assert_null(namemap_get(&map, "a"));
    struct wp_stmt *s1 = intern_text(&reg, "SELECT 1");
    struct wp_stmt *s2 = intern_text(&reg, "SELECT 2");
    char name[8] = "a";
    assert_int_equal(namemap_put(&map, &reg, name, s1), 0);
    name[0] = 'z'; /* the map keeps its own copy of the name */
    assert_ptr_equal(namemap_get(&map, "a"), s1);
    assert_null(namemap_get(&map, "z"));
    assert_null(namemap_get(&map, "A"));
    assert_null(namemap_get(&map, ""));
    assert_int_equal(s1->refs, 2);
    assert_int_equal(namemap_put(&map, &reg, "a", s2), 0);
    assert_ptr_equal(namemap_get(&map, "a"), s2);
    assert_int_equal(map.count, 1);
    assert_int_equal(s1->refs, 1);
    assert_int_equal(s2->refs, 2);
    assert_int_equal(namemap_put(&map, &reg, "a", s2), 0); /* same again: no change */
    assert_int_equal(s2->refs, 2);
    assert_int_equal(namemap_put(&map, &reg, "", s1), 0); /* the unnamed statement */
    assert_ptr_equal(namemap_get(&map, ""), s1);
    assert_int_equal(map.count, 2);
    registry_unref(&reg, s1);
    registry_unref(&reg, s2);
    namemap_clear(&map, &reg);
    assert_int_equal(reg.count, 0);
    registry_free(&reg);
}

static void test_namemap_replace_frees_last_reference(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    struct wp_name_map map = {0};
    struct wp_stmt *old = intern_text(&reg, "SELECT old");
    assert_int_equal(namemap_put(&map, &reg, "q", old), 0);
    registry_unref(&reg, old); /* only the name holds it now */
    struct wp_stmt *fresh = intern_text(&reg, "SELECT new");
    assert_int_equal(namemap_put(&map, &reg, "q", fresh), 0);
    registry_unref(&reg, fresh);
    assert_int_equal(reg.count, 1); /* "old" was freed by the replacement */
    assert_null(find(&reg, "SELECT old", NULL, 0, 0));
    assert_ptr_equal(namemap_get(&map, "q"), fresh);
    assert_int_equal(fresh->refs, 1);
    namemap_clear(&map, &reg);
    assert_int_equal(reg.count, 0);
    registry_free(&reg);
}

static void test_namemap_remove(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    struct wp_name_map map = {0};
    assert_int_equal(namemap_remove(&map, &reg, "q"), 0); /* never used */
    struct wp_stmt *s = intern_text(&reg, "SELECT 1");
    assert_int_equal(namemap_put(&map, &reg, "q", s), 0);
    assert_int_equal(namemap_put(&map, &reg, "r", s), 0);
    assert_int_equal(s->refs, 3);
    assert_int_equal(namemap_remove(&map, &reg, "Q"), 0);
    assert_int_equal(namemap_remove(&map, &reg, "q"), 1);
    assert_int_equal(namemap_remove(&map, &reg, "q"), 0);
    assert_null(namemap_get(&map, "q"));
    assert_ptr_equal(namemap_get(&map, "r"), s);
    assert_int_equal(map.count, 1);
    assert_int_equal(s->refs, 2);
    registry_unref(&reg, s);
    assert_int_equal(namemap_remove(&map, &reg, "r"), 1); /* last reference: freed */
    assert_int_equal(reg.count, 0);
    assert_int_equal(map.count, 0);
    namemap_clear(&map, &reg);
    registry_free(&reg);
}

static void test_namemap_clear_releases_and_reuses(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    struct wp_name_map map = {0};
    namemap_clear(&map, &reg); /* on a never-used map */
    struct wp_stmt *s = intern_text(&reg, "SELECT 1");
    char name[16];
    for (int i = 0; i < 40; i++) {
        numbered_query(name, sizeof name, "n%d", i);
        assert_int_equal(namemap_put(&map, &reg, name, s), 0);
    }
    assert_int_equal(s->refs, 41);
    namemap_clear(&map, &reg);
    assert_int_equal(s->refs, 1);
    assert_int_equal(map.count, 0);
    assert_null(namemap_get(&map, "n0"));
    assert_int_equal(namemap_put(&map, &reg, "again", s), 0);
    assert_ptr_equal(namemap_get(&map, "again"), s);
    registry_unref(&reg, s);
    namemap_clear(&map, &reg);
    assert_int_equal(reg.count, 0);
    registry_free(&reg);
}

static void test_namemap_growth(void **state)
{
    (void)state;
    enum { NAMES = 1000, STMTS = 10 };
    struct wp_registry reg;
    registry_setup(&reg);
    struct wp_name_map map = {0};
    struct wp_stmt *s[STMTS];
    char text[32], name[32];
    for (int i = 0; i < STMTS; i++) {
        numbered_query(text, sizeof text, "SELECT %d", i);
        s[i] = intern_text(&reg, text);
    }
    for (int i = 0; i < NAMES; i++) {
        numbered_query(name, sizeof name, "stmt_%d", i);
        assert_int_equal(namemap_put(&map, &reg, name, s[i % STMTS]), 0);
    }
    assert_int_equal(map.count, NAMES);
    assert_true(map.nbuckets >= 16);
    assert_int_equal(map.nbuckets & (map.nbuckets - 1), 0);
    for (int i = 0; i < STMTS; i++)
        assert_int_equal(s[i]->refs, 1 + NAMES / STMTS);
    for (int i = 0; i < NAMES; i++) {
        numbered_query(name, sizeof name, "stmt_%d", i);
        assert_ptr_equal(namemap_get(&map, name), s[i % STMTS]);
    }
    for (int i = 0; i < NAMES; i += 2) {
        numbered_query(name, sizeof name, "stmt_%d", i);
        assert_int_equal(namemap_remove(&map, &reg, name), 1);
    }
    for (int i = 0; i < NAMES; i++) {
        numbered_query(name, sizeof name, "stmt_%d", i);
        if (i % 2)
            assert_ptr_equal(namemap_get(&map, name), s[i % STMTS]);
        else
            assert_null(namemap_get(&map, name));
    }
    assert_int_equal(map.count, NAMES / 2);
    for (int i = 0; i < STMTS; i++)
        registry_unref(&reg, s[i]);
    namemap_clear(&map, &reg);
    assert_int_equal(reg.count, 0);
    registry_free(&reg);
}

/* ---- per-backend sets ---- */

/* Take the set apart from least recent to most recent and compare with expect. */
static void assert_lru_order(struct wp_server_set *set, struct wp_registry *reg,
                             struct wp_stmt *const *expect, size_t n)
{
    assert_int_equal(set->count, n);
    for (size_t i = 0; i < n; i++) {
        struct wp_stmt *victim = serverset_lru(set);
        assert_ptr_equal(victim, expect[i]);
        serverset_remove(set, reg, victim);
        assert_int_equal(serverset_touch(set, victim), 0);
    }
    assert_null(serverset_lru(set));
    assert_int_equal(set->count, 0);
}

static void make_stmts(struct wp_registry *reg, struct wp_stmt **s, int n)
{
    char text[32];
    for (int i = 0; i < n; i++) {
        numbered_query(text, sizeof text, "SELECT %d", i);
        s[i] = intern_text(reg, text);
    }
}

static void unref_all(struct wp_registry *reg, struct wp_stmt **s, int n)
{
    for (int i = 0; i < n; i++)
        registry_unref(reg, s[i]);
}

static void test_serverset_empty(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    struct wp_server_set set;
    serverset_init(&set);
    struct wp_stmt *s = intern_text(&reg, "SELECT 1");
    assert_null(serverset_lru(&set));
    assert_int_equal(serverset_touch(&set, s), 0);
    serverset_remove(&set, &reg, s); /* absent: no reference dropped */
    assert_int_equal(s->refs, 1);
    serverset_clear(&set, &reg);
    assert_null(serverset_lru(&set));
    registry_unref(&reg, s);
    registry_free(&reg);
}

static void test_serverset_add_touch_lru(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    struct wp_server_set set;
    serverset_init(&set);
    struct wp_stmt *s[4];
    make_stmts(&reg, s, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(serverset_add(&set, s[i]), 0);
    assert_ptr_equal(serverset_lru(&set), s[0]);
    assert_int_equal(s[0]->refs, 2);
    assert_int_equal(serverset_touch(&set, s[0]), 1); /* 1 2 3 0 */
    assert_ptr_equal(serverset_lru(&set), s[1]);
    assert_int_equal(serverset_touch(&set, s[0]), 1); /* already most recent */
    assert_int_equal(serverset_touch(&set, s[2]), 1); /* 1 3 0 2 */
    assert_ptr_equal(serverset_lru(&set), s[1]);
    assert_int_equal(s[2]->refs, 2); /* touching takes no reference */
    struct wp_stmt *expect[4] = {s[1], s[3], s[0], s[2]};
    assert_lru_order(&set, &reg, expect, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(s[i]->refs, 1);
    unref_all(&reg, s, 4);
    serverset_clear(&set, &reg);
    registry_free(&reg);
}

static void test_serverset_add_present_no_double_count(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    struct wp_server_set set;
    serverset_init(&set);
    struct wp_stmt *s[3];
    make_stmts(&reg, s, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(serverset_add(&set, s[i]), 0);
    assert_int_equal(serverset_add(&set, s[0]), 0);
    assert_int_equal(serverset_add(&set, s[0]), 0);
    assert_int_equal(set.count, 3);
    assert_int_equal(s[0]->refs, 2);
    /* adding again counts as a use: s[0] is now the most recent */
    struct wp_stmt *expect[3] = {s[1], s[2], s[0]};
    assert_lru_order(&set, &reg, expect, 3);
    unref_all(&reg, s, 3);
    assert_int_equal(reg.count, 0);
    serverset_clear(&set, &reg);
    registry_free(&reg);
}

static void test_serverset_remove_releases(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    struct wp_server_set set;
    serverset_init(&set);
    struct wp_stmt *s[3];
    make_stmts(&reg, s, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(serverset_add(&set, s[i]), 0);
        registry_unref(&reg, s[i]); /* the set holds the only reference */
    }
    serverset_remove(&set, &reg, s[1]); /* middle of the LRU list; frees s[1] */
    assert_int_equal(reg.count, 2);
    assert_int_equal(set.count, 2);
    assert_ptr_equal(serverset_lru(&set), s[0]);
    serverset_remove(&set, &reg, s[0]); /* the tail */
    assert_ptr_equal(serverset_lru(&set), s[2]);
    serverset_remove(&set, &reg, s[2]); /* the last one */
    assert_null(serverset_lru(&set));
    assert_int_equal(reg.count, 0);
    serverset_clear(&set, &reg);
    registry_free(&reg);
}

static void test_serverset_clear_releases_and_reuses(void **state)
{
    (void)state;
    struct wp_registry reg;
    registry_setup(&reg);
    struct wp_server_set set, other;
    serverset_init(&set);
    serverset_init(&other);
    struct wp_stmt *s[50];
    make_stmts(&reg, s, 50);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(serverset_add(&set, s[i]), 0);
        assert_int_equal(serverset_add(&other, s[i]), 0);
        assert_int_equal(s[i]->refs, 3);
    }
    serverset_clear(&set, &reg);
    assert_int_equal(set.count, 0);
    assert_null(serverset_lru(&set));
    for (int i = 0; i < 50; i++) {
        assert_int_equal(s[i]->refs, 2);
        assert_int_equal(serverset_touch(&set, s[i]), 0);
        assert_int_equal(serverset_touch(&other, s[i]), 1);
    }
    assert_int_equal(serverset_add(&set, s[7]), 0); /* usable after clear */
    assert_ptr_equal(serverset_lru(&set), s[7]);
    unref_all(&reg, s, 50);
    serverset_clear(&set, &reg);
    serverset_clear(&other, &reg);
    assert_int_equal(reg.count, 0);
    registry_free(&reg);
}

static void test_serverset_growth_keeps_order(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct wp_registry reg;
    registry_setup(&reg);
    struct wp_server_set set;
    serverset_init(&set);
    static struct wp_stmt *s[N], *expect[N];
    make_stmts(&reg, s, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(serverset_add(&set, s[i]), 0);
    assert_true(set.nbuckets >= 32);
    assert_int_equal(set.nbuckets & (set.nbuckets - 1), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(serverset_touch(&set, s[i]), 1); /* order unchanged: 0..N-1 */
    /* touch the odd ones, newest last: order becomes evens, then odds */
    for (int i = 1; i < N; i += 2)
        assert_int_equal(serverset_touch(&set, s[i]), 1);
    for (int i = 0; i < N / 2; i++) {
        expect[i] = s[2 * i];
        expect[N / 2 + i] = s[2 * i + 1];
    }
    assert_lru_order(&set, &reg, expect, N);
    unref_all(&reg, s, N);
    assert_int_equal(reg.count, 0);
    serverset_clear(&set, &reg);
    registry_free(&reg);
}

/* ---- pending queue ---- */

static struct wp_stmt markers[64];

static void push_marker(struct wp_pending_queue *q, int i)
{
    struct wp_pending item = {
        .type = (uint8_t)('A' + i % 26), .action = (uint8_t)(i % 3), .stmt = &markers[i]};
    assert_int_equal(pending_push(q, &item), 0);
}

static void pop_marker(struct wp_pending_queue *q, int i)
{
    struct wp_pending *head = pending_head(q);
    assert_non_null(head);
    assert_ptr_equal(head->stmt, &markers[i]);
    assert_int_equal(head->type, 'A' + i % 26);
    assert_int_equal(head->action, i % 3);
    assert_null(head->client_name);
    pending_pop(q);
}

static void test_pending_empty(void **state)
{
    (void)state;
    struct wp_pending_queue q = {0};
    assert_null(pending_head(&q));
    pending_pop(&q);
    pending_pop(&q);
    assert_int_equal(q.count, 0);
    push_marker(&q, 0);
    pop_marker(&q, 0);
    pending_pop(&q); /* empty again */
    assert_null(pending_head(&q));
    assert_int_equal(q.count, 0);
    push_marker(&q, 1);
    pop_marker(&q, 1);
    pending_free(&q);
    assert_null(q.items);
    pending_free(&q);
}

static void test_pending_fifo_wrap_and_growth(void **state)
{
    (void)state;
    struct wp_pending_queue q = {0};
    for (int i = 0; i < 10; i++)
        push_marker(&q, i);
    for (int i = 0; i < 7; i++)
        pop_marker(&q, i);
    for (int i = 10; i < 40; i++) /* wraps past the end, then grows while wrapped */
        push_marker(&q, i);
    assert_int_equal(q.count, 33);
    assert_int_equal(q.cap & (q.cap - 1), 0);
    for (int i = 7; i < 40; i++)
        pop_marker(&q, i);
    assert_null(pending_head(&q));
    pending_free(&q);
}

static void test_pending_full_ring_wrapped(void **state)
{
    (void)state;
    struct wp_pending_queue q = {0};
    for (int i = 0; i < 16; i++)
        push_marker(&q, i);
    uint32_t cap = q.cap;
    for (int i = 0; i < 12; i++)
        pop_marker(&q, i);
    for (int i = 16; i < 16 + 12; i++) /* refill exactly to capacity, wrapped */
        push_marker(&q, i);
    assert_int_equal(q.cap, cap);
    assert_int_equal(q.count, cap);
    push_marker(&q, 28); /* one more: grows with head in the middle */
    assert_true(q.cap > cap);
    for (int i = 12; i <= 28; i++)
        pop_marker(&q, i);
    assert_int_equal(q.count, 0);
    pending_free(&q);
}

static void test_pending_steady_state_wraps(void **state)
{
    (void)state;
    struct wp_pending_queue q = {0};
    int pushed = 0, popped = 0;
    push_marker(&q, pushed++ % 64);
    uint32_t cap = q.cap;
    /* a short queue chasing its tail round the ring many times: no growth */
    for (int round = 0; round < 200; round++) {
        for (int k = 0; k <= round % 3; k++)
            push_marker(&q, pushed++ % 64);
        for (int k = 0; k <= round % 3; k++)
            pop_marker(&q, popped++ % 64);
    }
    assert_int_equal(q.cap, cap);
    assert_int_equal(q.count, 1);
    pop_marker(&q, popped % 64);
    assert_null(pending_head(&q));
    pending_free(&q);
}

static void test_pending_keeps_fields(void **state)
{
    (void)state;
    struct wp_pending_queue q = {0};
    char *name = heap_copy("client_stmt", 12);
    struct wp_pending item = {
        .type = 'P', .action = PENDING_SYNTH, .stmt = &markers[5], .client_name = name};
    assert_int_equal(pending_push(&q, &item), 0);
    memset(&item, 0, sizeof item); /* the queue holds a copy of the item */
    struct wp_pending *head = pending_head(&q);
    assert_int_equal(head->type, 'P');
    assert_int_equal(head->action, PENDING_SYNTH);
    assert_ptr_equal(head->stmt, &markers[5]);
    assert_ptr_equal(head->client_name, name);
    free(head->client_name); /* the caller owns what the item points to */
    pending_pop(&q);
    pending_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid_body),
        cmocka_unit_test(test_parse_unnamed_empty_zero_params),
        cmocka_unit_test(test_parse_many_params),
        cmocka_unit_test(test_parse_every_truncation_fails),
        cmocka_unit_test(test_parse_missing_nuls),
        cmocka_unit_test(test_parse_param_count_mismatch),
        cmocka_unit_test(test_registry_same_statement_shares_entry),
        cmocka_unit_test(test_registry_keeps_copies),
        cmocka_unit_test(test_registry_distinguishes_types_and_level),
        cmocka_unit_test(test_registry_ids_and_names),
        cmocka_unit_test(test_registry_find_takes_no_reference),
        cmocka_unit_test(test_registry_growth_keeps_entries),
        cmocka_unit_test(test_registry_free_releases_live_entries),
        cmocka_unit_test(test_describe_set_replace_drop),
        cmocka_unit_test(test_describe_drop_all),
        cmocka_unit_test(test_namemap_put_get_replace),
        cmocka_unit_test(test_namemap_replace_frees_last_reference),
        cmocka_unit_test(test_namemap_remove),
        cmocka_unit_test(test_namemap_clear_releases_and_reuses),
        cmocka_unit_test(test_namemap_growth),
        cmocka_unit_test(test_serverset_empty),
        cmocka_unit_test(test_serverset_add_touch_lru),
        cmocka_unit_test(test_serverset_add_present_no_double_count),
        cmocka_unit_test(test_serverset_remove_releases),
        cmocka_unit_test(test_serverset_clear_releases_and_reuses),
        cmocka_unit_test(test_serverset_growth_keeps_order),
        cmocka_unit_test(test_pending_empty),
        cmocka_unit_test(test_pending_fifo_wrap_and_growth),
        cmocka_unit_test(test_pending_full_ring_wrapped),
        cmocka_unit_test(test_pending_steady_state_wraps),
        cmocka_unit_test(test_pending_keeps_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
