/*
 * Unit tests for what relay_scan.c relies on when it passes a backend message by
 * without calling the prepared layer (relay_prepared.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "warmpool/proto.h"
#include "warmpool/relay_prepared.h"

/* A CommandComplete message with this tag, in msg; returns its length. */
static uint32_t command_complete(uint8_t *msg, size_t size, const char *tag)
{
    size_t tag_len = strlen(tag) + 1;
    assert_true(5 + tag_len <= size);
    msg[0] = 'C';
    proto_put_u32(msg + 1, (uint32_t)(4 + tag_len));
    memcpy(msg + 5, tag, tag_len);
    return (uint32_t)(5 + tag_len);
}

/* The tags whose CommandComplete changes what statements mean are all ones the scan
   hands to the layer. */
static void test_effective_tags_may_matter(void **state)
{
    (void)state;
    static const char *const effective[] = {"DISCARD ALL", "DEALLOCATE ALL", "CREATE TABLE",
                                            "ALTER TABLE", "DROP TABLE",     "CREATE INDEX"};
    for (size_t i = 0; i < sizeof effective / sizeof effective[0]; i++)
        assert_true(prepared_tag_may_matter((uint8_t)effective[i][0]));
}

/* With nothing pending, the layer leaves the backend as it is for any other tag and
   keeps the message for the client: what the scan's shortcut assumes. */
static void test_other_tags_change_nothing(void **state)
{
    (void)state;
    static const char *const tags[] = {
        "SELECT 1", "INSERT 0 1",     "UPDATE 5", "DELETE 2", "BEGIN",  "COMMIT", "ROLLBACK",
        "SET",      "PREPARE",        "EXECUTE",  "FETCH 10", "MOVE 1", "COPY 3", "SHOW",
        "RESET",    "TRUNCATE TABLE", "LISTEN",   "NOTIFY",   "VACUUM", "EXPLAIN"};
    uint8_t msg[64];
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        uint32_t len = command_complete(msg, sizeof msg, tags[i]);
        if (prepared_tag_may_matter(msg[5]))
            continue; /* DELETE, DEALLOCATE…: the layer reads those */
        for (uint32_t plain = 0; plain < 2; plain++) {
            struct wp_server s, before;
            memset(&s, 0, sizeof s);
            s.plain_queries = plain;
            before = s;
            assert_int_equal(prepared_server_message(&s, 'C', msg, len), 0);
            assert_memory_equal(&s, &before, sizeof s);
        }
    }
}

/* The scan counts off the ReadyForQuery of a plain Query itself: exactly what the
   layer does with it. */
static void test_plain_query_ready_inline(void **state)
{
    (void)state;
    static const uint8_t ready[] = {'Z', 0, 0, 0, 5, 'I'};
    for (uint32_t plain = 0; plain < 3; plain++) {
        struct wp_server general, inline_path;
        memset(&general, 0, sizeof general);
        general.plain_queries = plain;
        inline_path = general;
        assert_int_equal(prepared_server_message(&general, 'Z', ready, sizeof ready), 0);
        assert_int_equal(prepared_plain_query_ready(&inline_path, 'Z'), plain > 0);
        assert_memory_equal(&general, &inline_path, sizeof general);
        for (const char *other = "CTDSNE"; *other; other++) /* no other answer counts */
            assert_false(prepared_plain_query_ready(&inline_path, (uint8_t)*other));
        assert_memory_equal(&general, &inline_path, sizeof general);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_effective_tags_may_matter),
        cmocka_unit_test(test_other_tags_change_nothing),
        cmocka_unit_test(test_plain_query_ready_inline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
