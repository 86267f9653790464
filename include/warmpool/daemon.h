/*
 * daemon — the process's relations with whoever started it: `-d` background mode,
 * the pidfile, and systemd's readiness protocol (sd_notify).
 *
 * Startup order in main: daemon_detach() (only with -d) → daemon_pidfile_acquire() →
 * open listeners → daemon_ready(). The parent of a detached process waits until the
 * child calls daemon_ready() (exit 0) or dies first (exit 1), so `warmpool -d` fails
 * visibly when the port is taken. Error messages are written into the caller's buffer;
 * nothing here logs or prints on its own, except the waiting parent, which has no
 * caller left to return to.
 */
#ifndef WARMPOOL_DAEMON_H
#define WARMPOOL_DAEMON_H

#include <stddef.h>

/*
 * Fork into the background: the calling process waits for the child's readiness and
 * exits (never returns); the child returns 0 in a new session, umask 022, cwd
 * unchanged (relative paths in the config keep working). stdin/stdout/stderr stay
 * attached until daemon_ready(), so start-up errors still reach the terminal.
 * Returns -1 with err filled if the fork itself failed.
 */
int daemon_detach(char *err, size_t errlen);

/*
 * Take the pidfile: create it, lock it (flock, held until exit), write our pid.
 * A pidfile that is locked by a live process is refused with its pid in err; an
 * unlocked one is stale (left by a crash) and is taken over. path NULL or "" is a
 * no-op. Returns 0 or -1.
 */
int daemon_pidfile_acquire(const char *path, char *err, size_t errlen);
/* Remove and unlock the pidfile taken by daemon_pidfile_acquire (no-op if none). */
void daemon_pidfile_release(void);

/*
 * The pid recorded in a pidfile if a process holds its lock, 0 if the file is
 * missing, unlocked (stale) or empty, -1 on read errors. For --status style checks
 * and tests.
 */
long daemon_pidfile_owner(const char *path);

/*
 * Listeners are open: release a waiting `-d` parent (and point stdio at /dev/null),
 * and tell systemd READY=1. Safe to call when neither applies.
 */
void daemon_ready(void);

/*
 * Send one state line to systemd (e.g. "RELOADING=1", "STOPPING=1",
 * "STATUS=…") when $NOTIFY_SOCKET is set. Returns 1 if sent, 0 if there is no
 * socket, -1 on error. Several lines may be joined with '\n'.
 */
int daemon_notify(const char *state);

/* The parsed $NOTIFY_SOCKET address, exposed for unit tests: fills *addr (a struct
   sockaddr_un) and *len. Returns 0, or -1 if the value is unusable. */
struct sockaddr_un;
int daemon_notify_address(const char *value, struct sockaddr_un *addr, unsigned *len);

#endif
