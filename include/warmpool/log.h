/*
 * log — one-line log messages to stderr or a file.
 *
 * Each line: timestamp, level, then the caller's text (which starts with the
 * connection identity, `C-<id> db/user@addr` or `S-<id> db/user pid=N`).
 */
#ifndef WARMPOOL_LOG_H
#define WARMPOOL_LOG_H

enum wp_log_level { WP_LOG_DEBUG, WP_LOG_LOG, WP_LOG_WARNING, WP_LOG_ERROR, WP_LOG_FATAL };

/* path NULL or "" means stderr; returns 0 or -1 (errno set). */
int log_open(const char *path);
void log_set_verbose(int verbose);
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
