/*
 * log — one line per event, to stderr or a file (see include/warmpool/log.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "warmpool/log.h"

static FILE *log_file;
static int log_verbose;

int log_open(const char *path)
{
    if (!path || !*path) {
        if (log_file && log_file != stderr)
            fclose(log_file);
        log_file = stderr;
        return 0;
    }
    FILE *f = fopen(path, "a");
    if (!f)
        return -1;
    setvbuf(f, NULL, _IOLBF, 0);
    if (log_file && log_file != stderr)
        fclose(log_file);
    log_file = f;
    return 0;
}

void log_set_verbose(int verbose)
{
    log_verbose = verbose;
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

void log_msg(enum wp_log_level level, const char *fmt, ...)
{
    int saved_errno = errno;
    FILE *out = log_file ? log_file : stderr;
    struct timeval tv;
    struct tm tm;
    char stamp[32];
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);

    char line[2048];
    int n = snprintf(line, sizeof line, "%s.%03d %d %s ", stamp, (int)(tv.tv_usec / 1000),
                     (int)getpid(), level_name(level));
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(out, "%s\n", line);
    if (out == stderr)
        fflush(out);
    errno = saved_errno;
}
