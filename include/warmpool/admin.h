/*
 * admin — the PgBouncer-style admin console: clients that log in to the database
 * `warmpool` (or `pgbouncer`) talk to warmpool itself, never to a backend.
 *
 * admin.c runs the console protocol (simple Query only) and the commands; the rows
 * of SHOW commands are built in admin_show.c.
 */
#ifndef WARMPOOL_ADMIN_H
#define WARMPOOL_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "warmpool/buf.h"

#ifndef WARMPOOL_VERSION
#define WARMPOOL_VERSION "0.1.0"
#endif

struct wp_client;
struct wp_config;

/* Is `dbname` the console's name? */
int admin_is_console_db(const char *dbname);
/* Authenticated console client: may it use the console (admin_users/stats_users)? */
int admin_may_connect(const char *user);
/* Send ParameterStatus, BackendKeyData and ReadyForQuery; the client is then idle. */
void admin_welcome(struct wp_client *client);
/* Bytes arrived from a console client: answer complete Query messages. */
void admin_input(struct wp_client *client);

/*
 * Run one console command (text of a Query message) as `user`; the answer (rows or
 * an error, then ReadyForQuery) is appended to out. Separate from the socket so
 * tests can drive it.
 */
void admin_command(struct wp_buf *out, const char *user, const char *sql);

/*
 * PAUSE (paused = 1) or RESUME the pools of database db, or every pool when db is
 * NULL, as the console commands do; SIGUSR1/SIGUSR2 use it. Returns the pools changed.
 */
int admin_set_paused(const char *db, int paused);

/*
 * SHOW <what> (case-insensitive): RowDescription, DataRows, CommandComplete to out.
 * 0, -1 when `what` is not a SHOW command, -2 when out of memory.
 */
int admin_show(struct wp_buf *out, const char *what, int64_t now_ms);

/*
 * The SHOW commands of admin_show_lists.c (LISTS, USERS, MEM, STATE, FDS, PEERS,
 * PEER_POOLS, DNS_HOSTS, DNS_ZONES) and admin_show_stats.c, with PgBouncer
 * 1.25's column types. 0, -1 when unknown, -2 out of memory, -3 when it needs an
 * admin user and is_admin is 0.
 */
int admin_show_more(struct wp_buf *out, const char *what, int is_admin);
/* SHOW FLEET (admin_show_fleet.c): one row per budgeted database and fleet member. */
int admin_show_fleet(struct wp_buf *out);

/* SHOW STATS, STATS_TOTALS, STATS_AVERAGES, TOTALS (admin_show_stats.c), in 1.25's
   layouts: 0, -1 when `what` is none of them, -2 out of memory. */
int admin_show_stats(struct wp_buf *out, const char *what);

/* SHOW CONFIG's rows of stored keys under warmpool's names, for tests: count, the i-th
   key with its value in cfg, its default, both as printed. SHOW CONFIG also lists each such key
   under PgBouncer's name where that differs, and PgBouncer's keys without effect (column `effect` =
   no): admin_config_show_rows() rows in all. */
int admin_config_rows(void);
int admin_config_show_rows(void);
const char *admin_config_value(const struct wp_config *cfg, int i, char *out, size_t len);
const char *admin_config_default(int i, char *out, size_t len);

#endif
