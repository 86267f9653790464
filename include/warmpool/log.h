/*
 * log — one-line log messages to a file, syslog, or stderr when neither is set.
 *
 * Each line: local time with its zone, pid, level, then the caller's text (which starts
 * with the connection identity, `C-<id> db/user@addr` or `S-<id> db/user pid=N`):
 *   2024-05-01 12:00:00.123 CEST 42 LOG C-7 db/user@127.0.0.1:40000 login
 * With log_format = json each line is one JSON object instead:
 *   {"time":"2024-05-01T12:00:00.123+02:00","pid":42,"level":"LOG","message":"…"}
 * Syslog gets the same text without time and pid (syslog adds its own).
 */
#ifndef WARMPOOL_LOG_H
#define WARMPOOL_LOG_H

enum wp_log_level { WP_LOG_DEBUG, WP_LOG_LOG, WP_LOG_WARNING, WP_LOG_ERROR, WP_LOG_FATAL };

enum wp_log_format { WP_LOG_FORMAT_TEXT, WP_LOG_FORMAT_JSON };

/* path NULL or "" means no file: stderr, unless syslog is on. Reopens when called
   again (log rotation); returns 0 or -1 (errno set, the previous file stays). */
int log_open(const char *path);
void log_set_verbose(int verbose);
void log_set_format(enum wp_log_format format);
/* Turn syslog on (ident, facility from log_facility_from_name) or off (enabled 0).
   Returns 0, or -1 when ident cannot be copied (syslog is then off). */
int log_set_syslog(int enabled, const char *ident, int facility);
/* Close the log file and syslog; later messages go to stderr. */
void log_close(void);
/* "text" / "json" → enum wp_log_format; -1 when unknown. */
int log_format_from_name(const char *name);
/* "daemon", "user", "local0".."local7", "auth", "authpriv" → LOG_* facility code;
   -1 when unknown. */
int log_facility_from_name(const char *name);
/* 1 when lines go to stderr, i.e. neither a log file nor syslog is set (as before
   the configuration is applied, and always under --check). */
int log_to_stderr(void);
int log_enabled(enum wp_log_level level);
void log_msg(enum wp_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(WP_LOG_DEBUG))                                                             \
            log_msg(WP_LOG_DEBUG, __VA_ARGS__);                                                    \
    } while (0)
#define log_info(...) log_msg(WP_LOG_LOG, __VA_ARGS__)
#define log_warn(...) log_msg(WP_LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(WP_LOG_ERROR, __VA_ARGS__)

#endif
