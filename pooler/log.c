/*
 * log — one line per event, to a file, syslog, or stderr (see include/warmpool/log.h).
 *
 * The line is formatted once into a stack buffer and then written to each
 * destination: the file (if `logfile` is set), syslog (if `syslog = 1`), and stderr
 * only when there is neither, so that under systemd with syslog on the journal does
 * not get every line twice.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "warmpool/log.h"

#define LINE_MAX_BYTES 2048

static FILE *log_file; /* NULL = no file */
static int log_verbose;
static enum wp_log_format log_format = WP_LOG_FORMAT_TEXT;
static int syslog_on;
static char *syslog_ident; /* openlog() keeps the pointer: ours must outlive it */

int log_open(const char *path)
{
    if (!path || !*path) {
        if (log_file)
            fclose(log_file);
        log_file = NULL;
        return 0;
    }
    FILE *f = fopen(path, "a");
    if (!f)
        return -1;
    setvbuf(f, NULL, _IOLBF, 0);
    if (log_file)
        fclose(log_file);
    log_file = f;
    return 0;
}

void log_set_verbose(int verbose)
{
    log_verbose = verbose;
}

void log_set_format(enum wp_log_format format)
{
    log_format = format;
}

int log_set_syslog(int enabled, const char *ident, int facility)
{
    if (syslog_on)
        closelog();
    syslog_on = 0;
    free(syslog_ident);
    syslog_ident = NULL;
    if (!enabled)
        return 0;
    syslog_ident = strdup(ident && *ident ? ident : "warmpool");
    if (!syslog_ident)
        return -1;
    openlog(syslog_ident, LOG_PID | LOG_NDELAY, facility);
    syslog_on = 1;
    return 0;
}

void log_close(void)
{
    log_open(NULL);
    log_set_syslog(0, NULL, 0);
}

int log_format_from_name(const char *name)
{
    if (strcasecmp(name, "text") == 0)
        return WP_LOG_FORMAT_TEXT;
    if (strcasecmp(name, "json") == 0)
        return WP_LOG_FORMAT_JSON;
    return -1;
}

int log_facility_from_name(const char *name)
{
    static const struct {
        const char *name;
        int code;
    } facilities[] = {
        {"daemon", LOG_DAEMON},     {"user", LOG_USER},     {"auth", LOG_AUTH},
        {"authpriv", LOG_AUTHPRIV}, {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},
        {"local2", LOG_LOCAL2},     {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},
        {"local5", LOG_LOCAL5},     {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
    };
    for (size_t i = 0; i < sizeof facilities / sizeof facilities[0]; i++)
        if (strcasecmp(name, facilities[i].name) == 0)
            return facilities[i].code;
    return -1;
}

int log_to_stderr(void)
{
    return !log_file && !syslog_on;
}

int log_enabled(enum wp_log_level level)
{
    return level != WP_LOG_DEBUG || log_verbose > 0;
}

static const char *level_name(enum wp_log_level level)
{
    switch (level) {
    case WP_LOG_DEBUG:
        return "DEBUG";
    case WP_LOG_LOG:
        return "LOG";
    case WP_LOG_WARNING:
        return "WARNING";
    case WP_LOG_ERROR:
        return "ERROR";
    case WP_LOG_FATAL:
        return "FATAL";
    }
    return "?";
}

static int syslog_priority(enum wp_log_level level)
{
    switch (level) {
    case WP_LOG_DEBUG:
        return LOG_DEBUG;
    case WP_LOG_LOG:
        return LOG_INFO;
    case WP_LOG_WARNING:
        return LOG_WARNING;
    case WP_LOG_ERROR:
        return LOG_ERR;
    case WP_LOG_FATAL:
        return LOG_CRIT;
    }
    return LOG_NOTICE;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    size_t need;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        need = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        need = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        need = 4;
    else
        return 0;
    if (avail < need)
        return 0;
    for (size_t i = 1; i < need; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* Overlong 3- and 4-byte forms, surrogates, and code points past U+10FFFF. */
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return need;
}

/* Appends text to out as the inside of a JSON string. Log text may hold client-chosen
   bytes (user and database names), so control characters are escaped and invalid
   UTF-8 becomes U+FFFD: every line stays parseable. Always NUL-terminates. */
static void json_escape(char *out, size_t outlen, size_t *used, const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text), u = *used;
    for (size_t i = 0; i < n;) {
        char esc[8];
        const char *add = esc;
        size_t addlen;
        size_t len = utf8_len(s + i, n - i);
        if (len == 0) {
            add = "\\ufffd";
            addlen = 6;
            len = 1;
        } else if (s[i] == '"' || s[i] == '\\') {
            esc[0] = '\\';
            esc[1] = (char)s[i];
            addlen = 2;
        } else if (s[i] < 0x20) {
            addlen = (size_t)snprintf(esc, sizeof esc, "\\u%04x", s[i]);
        } else {
            add = (const char *)s + i;
            addlen = len;
        }
        if (u + addlen + 1 > outlen)
            break;
        memcpy(out + u, add, addlen);
        u += addlen;
        i += len;
    }
    out[u] = '\0';
    *used = u;
}

/* The local time of tv as "2024-05-01T12:00:00.123+02:00": ISO 8601 (RFC 3339) wants
   the offset written with a colon when the rest is in the extended form; strftime's %z
   has none. */
static void iso8601_stamp(char *out, size_t len, const struct timeval *tv, const struct tm *tm)
{
    char date[32], zone[8];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", tm);
    if (strftime(zone, sizeof zone, "%z", tm) != 5)
        snprintf(zone, sizeof zone, "+0000");
    snprintf(out, len, "%s.%03d%.3s:%.2s", date, (int)(tv->tv_usec / 1000), zone, zone + 3);
}

static void format_json(char *line, size_t len, const struct timeval *tv, const struct tm *tm,
                        const char *level, const char *text)
{
    char stamp[48];
    iso8601_stamp(stamp, sizeof stamp, tv, tm);
    int n = snprintf(line, len, "{\"time\":\"%s\",\"pid\":%d,\"level\":\"%s\",\"message\":\"",
                     stamp, (int)getpid(), level);
    if (n < 0 || (size_t)n >= len - 3) {
        line[0] = '\0';
        return;
    }
    size_t used = (size_t)n;
    json_escape(line, len - 2, &used, text);
    memcpy(line + used, "\"}", 3);
}

/* "2024-05-01 12:00:00.123 CEST 4242 LOG text": the zone as PostgreSQL's and PgBouncer's
   log lines carry it, so a line read on another machine, or across a change to or from
   summer time, still names one instant. A zone without an abbreviation gets the offset. */
static void format_text(char *line, size_t len, const struct timeval *tv, const struct tm *tm,
                        const char *level, const char *text)
{
    char stamp[32], zone[16];
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", tm);
    if (strftime(zone, sizeof zone, "%Z", tm) == 0)
        strftime(zone, sizeof zone, "%z", tm);
    snprintf(line, len, "%s.%03d %s %d %s %s", stamp, (int)(tv->tv_usec / 1000), zone,
             (int)getpid(), level, text);
}

void log_msg(enum wp_log_level level, const char *fmt, ...)
{
    int saved_errno = errno;
    struct timeval tv;
    struct tm tm;
    char text[LINE_MAX_BYTES], line[LINE_MAX_BYTES + 256];

    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    if (log_format == WP_LOG_FORMAT_JSON)
        format_json(line, sizeof line, &tv, &tm, level_name(level), text);
    else
        format_text(line, sizeof line, &tv, &tm, level_name(level), text);

    if (log_file)
        fprintf(log_file, "%s\n", line);
    if (syslog_on) {
        if (log_format == WP_LOG_FORMAT_JSON)
            syslog(syslog_priority(level), "%s", line);
        else
            syslog(syslog_priority(level), "%s %s", level_name(level), text);
    }
    if (log_to_stderr()) {
        fprintf(stderr, "%s\n", line);
        fflush(stderr);
    }
    errno = saved_errno;
}
