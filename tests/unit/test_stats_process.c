/*
 * test_stats_process — the process_* metrics' sources (pooler/stats_process.c): the
 * /proc/<pid>/stat parser on lines whose command name holds spaces and ')', and a
 * read of this test's own process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "warmpool/stats_process.h"

static void test_parse_stat(void **state)
{
    (void)state;
    /* proc(5) fields 1..24: utime 14 = 1234, stime 15 = 567, starttime 22 = 890123,
       vsize 23 = 123456789, rss 24 = 4321. The name fools a parser that splits on the
       first ')' or on spaces. */
    const char *line = "4242 (war) mpool x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 "
                       "0 3 0 890123 123456789 4321 18446744073709551615 1 1 0 0 0 0\n";
    uint64_t utime, stime, start, vsize, rss;
    assert_int_equal(stats_process_parse_stat(line, &utime, &stime, &start, &vsize, &rss), 0);
    assert_int_equal(utime, 1234);
    assert_int_equal(stime, 567);
    assert_int_equal(start, 890123);
    assert_int_equal(vsize, 123456789);
    assert_int_equal(rss, 4321);

    assert_int_equal(
        stats_process_parse_stat("4242 (no paren", &utime, &stime, &start, &vsize, &rss), -1);
    assert_int_equal(
        stats_process_parse_stat("4242 (short) S 1 2 3\n", &utime, &stime, &start, &vsize, &rss),
        -1);
}

static void test_read_self(void **state)
{
    (void)state;
    struct stats_process p;
    assert_int_equal(stats_process_read(&p), 0);
    assert_true(p.cpu_seconds >= 0);
    assert_true(p.resident_bytes > 0);
    assert_true(p.virtual_bytes >= p.resident_bytes);
    assert_true(p.open_fds >= 3); /* stdin, stdout, stderr */
    assert_true(p.max_fds >= p.open_fds);
    double now = (double)time(NULL);
    assert_true(p.start_time_seconds <= now + 1 && p.start_time_seconds > now - 600);

    /* A descriptor more is counted (the one the count itself opens is not). */
    uint64_t before = p.open_fds;
    int fd = dup(0);
    assert_true(fd >= 0);
    assert_int_equal(stats_process_read(&p), 0);
    assert_int_equal(p.open_fds, before + 1);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_stat),
        cmocka_unit_test(test_read_self),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
