/*
 * admin_control — the console's process-control commands (admin_commands.c) and the
 * console clients that wait for one to complete (admin_wait.c): PAUSE, WAIT_CLOSE
 * and SUSPEND answer only once what they asked for has happened, as in PgBouncer.
 * Internal to the admin_*.c files.
 */
#ifndef WARMPOOL_ADMIN_CONTROL_H
#define WARMPOOL_ADMIN_CONTROL_H

#include <stdint.h>

#include "warmpool/buf.h"

struct wp_client;

enum admin_wait_kind {
    ADMIN_WAIT_NONE,
    ADMIN_WAIT_PAUSE,   /* no server left in the paused pools */
    ADMIN_WAIT_CLOSE,   /* no server left that RECONNECT/RELOAD retired */
    ADMIN_WAIT_SUSPEND, /* every socket's output flushed */
};

struct admin_wait {
    enum admin_wait_kind kind;
    char db[64]; /* "" = every database */
    int64_t started_ms;
};

/* Is w one of the commands below (RELOAD, PAUSE, RESUME, KILL, KILL_CLIENT, DISABLE,
   ENABLE, RECONNECT, WAIT_CLOSE, SUSPEND, SHUTDOWN)? */
int admin_is_control_verb(const char *w);
/* Run one (words[0] is the verb) as an admin user: its answer to out, or, when it must
   wait, nothing and *wait filled in. */
void admin_run_control(struct wp_buf *out, const char *user, char **words, int n,
                       struct admin_wait *wait);
/* Append an ErrorResponse (severity ERROR). */
void admin_answer_error(struct wp_buf *out, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Has the wait's condition come (its CommandComplete, or an error, appended to out:
   1), or not yet (0)? */
int admin_wait_done(const struct admin_wait *w, struct wp_buf *out, int64_t now_ms);
/* The client waits: its input is not read until the answer is out. */
int admin_wait_start(struct wp_client *client, const struct admin_wait *w);
/* A waiting client closes. */
void admin_wait_forget(struct wp_client *client);
/* Periodic (timeouts.c): answer the waits that are over. */
void admin_waits_check(int64_t now_ms);
/* SUSPEND in force: reading is stopped on every client and server socket. */
int admin_suspended(void);

#endif
