/*
 * admin — the PgBouncer-style admin console: clients that log in to the database
 * `warmpool` (or `pgbouncer`) talk to warmpool itself, never to a backend.
 */
#ifndef WARMPOOL_ADMIN_H
#define WARMPOOL_ADMIN_H

struct wp_client;

/* Is `dbname` the console's name? */
int admin_is_console_db(const char *dbname);
/* Authenticated console client: may it use the console (admin_users/stats_users)? */
int admin_may_connect(const char *user);
/* Send ParameterStatus, BackendKeyData and ReadyForQuery; the client is then idle. */
void admin_welcome(struct wp_client *client);
/* Bytes arrived from a console client: answer complete Query messages. */
void admin_input(struct wp_client *client);

#endif
