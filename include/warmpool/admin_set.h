/*
 * admin_set — the console's SET key = value (pooler/admin_set.c): PgBouncer's "changes
 * a configuration setting", as a reload of the file with that key changed
 * (runtime_set_setting).
 */
#ifndef WARMPOOL_ADMIN_SET_H
#define WARMPOOL_ADMIN_SET_H

#include "warmpool/buf.h"

/* Whether the console command sql starts with the word SET (any case). */
int admin_is_set(const char *sql);
/* Runs `SET key = value` or `SET key TO value` (value bare or in single quotes, '' for
   a quote in it) for user, answering CommandComplete "SET" or an error: 42501 for a
   user not in admin_users, 42601 a malformed command, 42704 an unknown key, 55P02 a key
   only a restart changes, 22023 a value refused. No ReadyForQuery. */
void admin_run_set(struct wp_buf *out, const char *user, const char *sql);

#endif
