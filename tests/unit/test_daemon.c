/*
 * test_daemon — unit tests for the pidfile, sd_notify (pooler/daemon.c) and the log
 * line formats (pooler/log.c).
 *
 * sd_notify is checked against a real datagram socket standing in for systemd, both a
 * path and an abstract name; the pidfile against a second process (fork) holding or
 * not holding the lock; the JSON log line and the time zone of both formats by reading
 * the log file back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "warmpool/daemon.h"
#include "warmpool/log.h"

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/warmpool-test-daemon-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void in_dir(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static void test_notify_address(void **state)
{
    (void)state;
    struct sockaddr_un a;
    unsigned len;
    assert_int_equal(daemon_notify_address("/run/systemd/notify", &a, &len), 0);
    assert_string_equal(a.sun_path, "/run/systemd/notify");
    assert_int_equal(len,
                     offsetof(struct sockaddr_un, sun_path) + strlen("/run/systemd/notify") + 1);

    assert_int_equal(daemon_notify_address("@abstract/name", &a, &len), 0);
    assert_int_equal(a.sun_path[0], '\0');
    assert_memory_equal(a.sun_path + 1, "abstract/name", 13);
    assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 14);

    char longname[200];
    memset(longname, 'x', sizeof longname - 1);
    longname[0] = '/';
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(daemon_notify_address(longname, &a, &len), -1);
    assert_int_equal(daemon_notify_address("relative", &a, &len), -1);
    assert_int_equal(daemon_notify_address("@", &a, &len), -1);
    assert_int_equal(daemon_notify_address("", &a, &len), -1);
    assert_int_equal(daemon_notify_address(NULL, &a, &len), -1);
}

/* Bind a datagram socket at `name` (path or '@'abstract), send through
   daemon_notify, and read back what arrived. */
static void notify_roundtrip(const char *name)
{
    struct sockaddr_un a;
    unsigned len;
    assert_int_equal(daemon_notify_address(name, &a, &len), 0);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, (socklen_t)len), 0);

    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(daemon_notify("RELOADING=1\nSTATUS=x"), 1);
    char buf[64] = {0};
    ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    assert_int_equal(n, 20);
    assert_string_equal(buf, "RELOADING=1\nSTATUS=x");
    unsetenv("NOTIFY_SOCKET");
    close(fd);
}

static void test_notify_path_and_abstract(void **state)
{
    (void)state;
    char path[128], abstract[64];
    in_dir(path, sizeof path, "notify");
    notify_roundtrip(path);
    snprintf(abstract, sizeof abstract, "@warmpool-test-%d", (int)getpid());
    notify_roundtrip(abstract);
}

static void test_notify_without_socket(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(daemon_notify("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "not-a-socket", 1);
    assert_int_equal(daemon_notify("READY=1"), -1);
    unsetenv("NOTIFY_SOCKET");
    daemon_ready(); /* neither -d nor systemd: a no-op */
}

static long read_pidfile(const char *path)
{
    FILE *f = fopen(path, "r");
    long pid = -1;
    if (!f)
        return -1;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = -1;
    fclose(f);
    return pid;
}

/* In a child: try to take the pidfile; exit 0 if refused with the owner's pid named. */
static int child_acquire(const char *path, long owner)
{
    pid_t pid = fork();
    if (pid == 0) {
        char err[256] = "", want[64];
        int rc = daemon_pidfile_acquire(path, err, sizeof err);
        snprintf(want, sizeof want, "already running as pid %ld", owner);
        _exit(rc == -1 && strstr(err, want) ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_pidfile_lock(void **state)
{
    (void)state;
    char path[128], err[256];
    in_dir(path, sizeof path, "wp.pid");
    assert_int_equal(daemon_pidfile_owner(path), 0); /* missing */
    assert_int_equal(daemon_pidfile_acquire(path, err, sizeof err), 0);
    assert_int_equal(read_pidfile(path), (long)getpid());
    assert_int_equal(daemon_pidfile_owner(path), (long)getpid());
    assert_int_equal(child_acquire(path, (long)getpid()), 0);
    daemon_pidfile_release();
    assert_int_equal(access(path, F_OK), -1);
    daemon_pidfile_release(); /* twice is harmless */
    assert_int_equal(daemon_pidfile_acquire("", err, sizeof err), 0);
    assert_int_equal(daemon_pidfile_acquire(NULL, err, sizeof err), 0);
}

static void test_pidfile_stale(void **state)
{
    (void)state;
    char path[128], err[256];
    in_dir(path, sizeof path, "stale.pid");
    /* A crash leaves the file but not the lock; pid 1 is alive, which must not matter. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("1\n", f);
    fclose(f);
    assert_int_equal(daemon_pidfile_owner(path), 0);
    assert_int_equal(daemon_pidfile_acquire(path, err, sizeof err), 0);
    assert_int_equal(read_pidfile(path), (long)getpid());
    daemon_pidfile_release();

    in_dir(path, sizeof path, "no/such/dir.pid");
    assert_int_equal(daemon_pidfile_acquire(path, err, sizeof err), -1);
    assert_non_null(strstr(err, "No such file"));
}

static void read_log(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    fclose(f);
}

/* Fails the test, naming both, unless text matches the extended regular expression. */
static void assert_matches(const char *text, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    if (rc != 0)
        fail_msg("\"%s\" does not match /%s/", text, pattern);
}

static void test_log_json(void **state)
{
    (void)state;
    char path[128], text[4096];
    in_dir(path, sizeof path, "json.log");
    assert_int_equal(log_open(path), 0);
    log_set_format(WP_LOG_FORMAT_JSON);
    log_msg(WP_LOG_WARNING, "C-1 %s \"q\" back\\slash tab\t bad\xff ok\xc3\xa9 nl\n", "db/u");
    log_set_format(WP_LOG_FORMAT_TEXT);
    log_info("plain %d", 42);
    log_close();
    read_log(path, text, sizeof text);

    char *nl = strchr(text, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_true(strncmp(text, "{\"time\":\"", 9) == 0);
    assert_non_null(strstr(text, "\",\"pid\":"));
    assert_non_null(strstr(text, ",\"level\":\"WARNING\",\"message\":\"C-1 db/u \\\"q\\\" "
                                 "back\\\\slash tab\\u0009 bad\\ufffd ok\xc3\xa9 nl\\u000a\"}"));
    assert_non_null(strstr(nl + 1, " LOG plain 42\n"));
}

/* The first line of the log file at path, written by one log_info under time zone tz. */
static void log_line_in_zone(const char *path, const char *tz, char *out, size_t len)
{
    setenv("TZ", tz, 1);
    tzset(); /* localtime_r need not look at TZ again by itself */
    unlink(path);
    assert_int_equal(log_open(path), 0);
    log_info("zoned");
    log_close();
    read_log(path, out, len);
    unsetenv("TZ");
    tzset();
}

/* Text lines name the zone as PostgreSQL's do ("... 18:42:18.123 CET 42 LOG");
   JSON lines carry an RFC 3339 offset ("...T18:42:18.123+01:00"). */
static void test_log_time_zone(void **state)
{
    (void)state;
    char path[128], text[512];
    in_dir(path, sizeof path, "zone.log");
    const char *text_re = "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} "
                          "%s [0-9]+ LOG zoned\n$";
    const struct {
        const char *tz, *abbrev, *offset;
    } zones[] = {
        {"Asia/Tokyo", "JST", "\\+09:00"},
        {"UTC", "UTC", "\\+00:00"},
        {"America/St_Johns", "N[SD]T", "-0[23]:30"},
    };
    for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
        char re[256];
        log_set_format(WP_LOG_FORMAT_TEXT);
        log_line_in_zone(path, zones[i].tz, text, sizeof text);
        snprintf(re, sizeof re, text_re, zones[i].abbrev);
        assert_matches(text, re);
        log_set_format(WP_LOG_FORMAT_JSON);
        log_line_in_zone(path, zones[i].tz, text, sizeof text);
        snprintf(re, sizeof re, "^\\{\"time\":\"[0-9-]{10}T[0-9:]{8}\\.[0-9]{3}%s\",",
                 zones[i].offset);
        assert_matches(text, re);
    }
    log_set_format(WP_LOG_FORMAT_TEXT);
}

static void test_log_names(void **state)
{
    (void)state;
    assert_int_equal(log_format_from_name("text"), WP_LOG_FORMAT_TEXT);
    assert_int_equal(log_format_from_name("JSON"), WP_LOG_FORMAT_JSON);
    assert_int_equal(log_format_from_name("xml"), -1);
    assert_int_equal(log_facility_from_name("daemon"), LOG_DAEMON);
    assert_int_equal(log_facility_from_name("local7"), LOG_LOCAL7);
    assert_int_equal(log_facility_from_name("kern"), -1);
    /* syslog on and off again; nothing to assert but that it neither crashes nor leaks */
    assert_int_equal(log_set_syslog(1, "warmpool-test", LOG_USER), 0);
    assert_int_equal(log_set_syslog(0, NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notify_address),
        cmocka_unit_test(test_notify_path_and_abstract),
        cmocka_unit_test(test_notify_without_socket),
        cmocka_unit_test(test_pidfile_lock),
        cmocka_unit_test(test_pidfile_stale),
        cmocka_unit_test(test_log_json),
        cmocka_unit_test(test_log_time_zone),
        cmocka_unit_test(test_log_names),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
