/*
 * admin_commands — the console's process-control commands, with PgBouncer 1.25's
 * meaning (its doc/usage.md, "Process controlling commands"):
 *
 *   PAUSE [db]         clients queue; servers close as they are released; answered once
 *                      none is left (admin_wait.c)
 *   RESUME [db]        undoes PAUSE, KILL and SUSPEND
 *   KILL [db]          drops clients and servers at once, and pauses
 *   KILL_CLIENT id     drops that client (SHOW CLIENTS' id)
 *   DISABLE / ENABLE db   refuse / allow new logins to db
 *   RECONNECT [db]     servers close once released, new ones are made as needed
 *   WAIT_CLOSE [db]    answered once the servers RECONNECT or RELOAD retired are gone
 *   SUSPEND            reading stops on every socket; answered once output is flushed
 *   SHUTDOWN [WAIT_FOR_SERVERS | WAIT_FOR_CLIENTS], RELOAD
 *
 * Only admin_users get here (admin.c checks). Databases are named as clients name
 * them; the console's own names are refused.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "warmpool/admin.h"
#include "warmpool/admin_control.h"
#include "warmpool/client.h"
#include "warmpool/config.h"
#include "warmpool/conn.h"
#include "warmpool/db_state.h"
#include "warmpool/listener.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/proto.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/timeouts.h"

static int suspended;

int admin_suspended(void)
{
    return suspended;
}

void admin_answer_error(struct wp_buf *out, const char *sqlstate, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    proto_put_error(out, "ERROR", sqlstate, msg);
}

/* ---------------------------------------------------------------- databases */

static int database_known(const char *db)
{
    const struct wp_config *cfg = wp_rt.cfg;
    for (int i = 0; i < cfg->ndbs; i++)
        if (strcmp(cfg->dbs[i].name, db) == 0)
            return 1;
    /* Pools of the "*" entry exist under the names clients asked for. */
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        if (strcmp(list_entry(pos, struct wp_pool, node)->dbname, db) == 0)
            return 1;
    }
    return 0;
}

/* The database argument of verb, if it names one that may be acted on: else an error
   is answered and NULL returned. */
static const char *target_database(struct wp_buf *out, const char *verb, const char *db)
{
    if (admin_is_console_db(db)) {
        admin_answer_error(out, "55000", "cannot %s the admin console's database %.64s", verb, db);
        return NULL;
    }
    if (!database_known(db)) {
        admin_answer_error(out, "3D000", "no such database: %.64s", db);
        return NULL;
    }
    return db;
}

/* Pools take the paused state db_state now holds for their database. */
static int apply_pause_state(void)
{
    int n = 0;
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        int paused = db_state_paused(pool->dbname);
        n += pool->paused != paused;
        pool_set_paused(pool, paused);
    }
    return n;
}

int admin_set_paused(const char *db, int paused)
{
    if (!db && paused)
        db_state_pause_all();
    else if (!db)
        db_state_resume_all();
    else if (db_state_set_paused(db, paused) < 0)
        return -1;
    return apply_pause_state();
}

/* ---------------------------------------------------------------- KILL */

/* The first open client of db (any database when NULL) that is not a console client. */
static struct wp_client *client_of_db(const char *db)
{
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.clients)
    {
        struct wp_client *c = list_entry(pos, struct wp_client, all);
        if (c->state != CL_CLOSING && !c->is_admin && c->dbname &&
            (!db || strcmp(c->dbname, db) == 0))
            return c;
    }
    return NULL;
}

static void kill_database(const char *db)
{
    struct wp_client *c;
    int nclients = 0, nservers = 0;
    /* One at a time: closing a client may close others' links, so rescan. */
    while ((c = client_of_db(db)) != NULL) {
        client_send_error(c, "FATAL", "57P01", "terminated from the admin console (KILL)");
        if (c->state != CL_CLOSING)
            client_close(c, "killed from the admin console");
        nclients++;
    }
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        if (!db || strcmp(pool->dbname, db) == 0)
            nservers += pool_close_servers(pool, "killed from the admin console (KILL)");
    }
    log_info("admin console: KILL %s closed %d clients and %d servers; paused until RESUME",
             db ? db : "(all)", nclients, nservers);
}

/* PAUSE's and KILL's optional database (words[1]; NULL = all), once it may be paused:
   0, or -1 with the error answered. */
static int pause_target(struct wp_buf *out, const char *verb, char **words, int n, const char **db)
{
    *db = n == 2 ? target_database(out, verb, words[1]) : NULL;
    if (n == 2 && !*db)
        return -1;
    if (db_state_all_paused() || suspended) {
        admin_answer_error(out, "55000", "already suspended/paused");
        return -1;
    }
    return 0;
}

static void run_kill(struct wp_buf *out, char **words, int n)
{
    const char *db;
    if (pause_target(out, "KILL", words, n, &db) < 0)
        return;
    /* Paused first: a killed client's backend, returned to the pool, is closed. */
    if (admin_set_paused(db, 1) < 0) {
        admin_answer_error(out, "53200", "out of memory");
        return;
    }
    kill_database(db);
    proto_put_command_complete(out, "KILL");
}

static struct wp_client *client_by_id(uint64_t id)
{
    struct wp_list *pos;
    for (pos = wp_rt.clients.next; pos != &wp_rt.clients; pos = pos->next) {
        struct wp_client *c = list_entry(pos, struct wp_client, all);
        if (c->id == id && c->state != CL_CLOSING)
            return c;
    }
    return NULL;
}

static void run_kill_client(struct wp_buf *out, const char *user, const char *arg)
{
    char *end;
    errno = 0;
    unsigned long long id = strtoull(arg, &end, 10);
    if (errno || *end || end == arg || arg[0] == '-') {
        admin_answer_error(out, "22P02", "invalid client id \"%.32s\": SHOW CLIENTS' id", arg);
        return;
    }
    struct wp_client *c = client_by_id(id);
    if (!c) {
        admin_answer_error(out, "42704", "client %llu not found", id);
        return;
    }
    if (c->is_admin) {
        /* It may be the very client asking, whose answer is being written. */
        admin_answer_error(out, "55000", "client %llu is an admin console client", id);
        return;
    }
    log_info("admin console: KILL_CLIENT %llu (%s/%s@%s) by %s", id, c->dbname, c->user, c->addr,
             user);
    /* Its backend, in a transaction or not, is cancelled and rolled back if need be
       before anyone else gets it (server_abandon), or closed. */
    client_send_error(c, "FATAL", "57P01", "terminated from the admin console (KILL_CLIENT)");
    if (c->state != CL_CLOSING)
        client_close(c, "killed from the admin console (KILL_CLIENT)");
    proto_put_command_complete(out, "KILL_CLIENT");
}

/* ---------------------------------------------------------------- PAUSE, RESUME */

static void run_pause(struct wp_buf *out, char **words, int n, struct admin_wait *wait)
{
    const char *db;
    if (pause_target(out, "PAUSE", words, n, &db) < 0)
        return;
    int pools = admin_set_paused(db, 1);
    if (pools < 0) {
        admin_answer_error(out, "53200", "out of memory");
        return;
    }
    log_info("admin console: PAUSE %s (%d pools); waiting for their servers to be released",
             db ? db : "(all)", pools);
    *wait = (struct admin_wait){.kind = ADMIN_WAIT_PAUSE};
    if (db)
        snprintf(wait->db, sizeof wait->db, "%s", db);
}

static void resume_suspended(void);

static void run_resume(struct wp_buf *out, char **words, int n)
{
    if (wp_rt.shutting_down) {
        admin_answer_error(out, "55000", "pooler is shutting down");
        return;
    }
    if (n == 1) {
        if (suspended) {
            resume_suspended();
        } else if (!db_state_any_paused()) {
            admin_answer_error(out, "55000", "pooler is not paused/suspended");
            return;
        }
        int pools = admin_set_paused(NULL, 0);
        log_info("admin console: RESUME (%d pools)", pools);
    } else {
        const char *db = target_database(out, "RESUME", words[1]);
        if (!db)
            return;
        if (db_state_all_paused() || !db_state_paused(db)) {
            admin_answer_error(out, "55000", "database %.64s is not paused on its own%s", db,
                               db_state_all_paused() ? " (every database is: RESUME)" : "");
            return;
        }
        int pools = admin_set_paused(db, 0);
        log_info("admin console: RESUME %s (%d pools)", db, pools);
    }
    proto_put_command_complete(out, "RESUME");
}

/* ---------------------------------------------------------------- DISABLE, ENABLE */

static void run_disable(struct wp_buf *out, const char *verb, const char *arg, int disabled)
{
    const char *db = target_database(out, verb, arg);
    if (!db)
        return;
    if (db_state_set_disabled(db, disabled) < 0) {
        admin_answer_error(out, "53200", "out of memory");
        return;
    }
    log_info("admin console: %s %s: new logins %s", verb, db, disabled ? "refused" : "allowed");
    proto_put_command_complete(out, verb);
}

/* ---------------------------------------------------------------- RECONNECT, WAIT_CLOSE */

static void run_reconnect(struct wp_buf *out, char **words, int n)
{
    const char *db = n == 2 ? target_database(out, "RECONNECT", words[1]) : NULL;
    if (n == 2 && !db)
        return;
    int pools = 0;
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        if (db && strcmp(pool->dbname, db) != 0)
            continue;
        pool_retire_servers(pool, "RECONNECT from the admin console");
        pools++;
    }
    log_info("admin console: RECONNECT %s (%d pools): servers close once released",
             db ? db : "(all)", pools);
    proto_put_command_complete(out, "RECONNECT");
}

static void run_wait_close(struct wp_buf *out, char **words, int n, struct admin_wait *wait)
{
    const char *db = n == 2 ? target_database(out, "WAIT_CLOSE", words[1]) : NULL;
    if (n == 2 && !db)
        return;
    *wait = (struct admin_wait){.kind = ADMIN_WAIT_CLOSE};
    if (db)
        snprintf(wait->db, sizeof wait->db, "%s", db);
}

/* ---------------------------------------------------------------- SUSPEND */

/* Every socket but the console's stops being read; on resume, every suspended one
   (a client still logging in when suspended may have become a console client since). */
static void suspend_sockets(int on)
{
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.clients)
    {
        struct wp_client *c = list_entry(pos, struct wp_client, all);
        if ((!on || !c->is_admin) && c->state != CL_CLOSING)
            conn_suspend(&c->conn, on);
    }
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        struct wp_pool *pool = list_entry(pos, struct wp_pool, node);
        struct wp_list *lists[] = {&pool->idle, &pool->active, &pool->busy};
        for (int i = 0; i < 3; i++)
            for (struct wp_list *p = lists[i]->next; p != lists[i]; p = p->next)
                conn_suspend(&list_entry(p, struct wp_server, node)->conn, on);
    }
}

static void run_suspend(struct wp_buf *out, struct admin_wait *wait)
{
    if (db_state_any_paused() || suspended) {
        admin_answer_error(out, "55000", "already suspended/paused");
        return;
    }
    suspended = 1;
    listener_pause(1);
    suspend_sockets(1);
    log_info("admin console: SUSPEND: reading stopped, waiting for output to be flushed");
    *wait = (struct admin_wait){.kind = ADMIN_WAIT_SUSPEND};
}

static void resume_suspended(void)
{
    suspended = 0;
    suspend_sockets(0);
    listener_pause(0);
}

/* ---------------------------------------------------------------- SHUTDOWN */

static void run_shutdown(struct wp_buf *out, const char *user, char **words, int n)
{
    enum wp_shutdown_mode mode = WP_SHUTDOWN_IMMEDIATE;
    if (n == 2 && strcasecmp(words[1], "wait_for_servers") == 0)
        mode = WP_SHUTDOWN_WAIT_FOR_SERVERS;
    else if (n == 2 && strcasecmp(words[1], "wait_for_clients") == 0)
        mode = WP_SHUTDOWN_WAIT_FOR_CLIENTS;
    else if (n != 1) {
        admin_answer_error(out, "42601",
                           "syntax error: expected SHUTDOWN [WAIT_FOR_SERVERS | WAIT_FOR_CLIENTS]");
        return;
    }
    log_info("admin console: SHUTDOWN%s%s by %s", n == 2 ? " " : "", n == 2 ? words[1] : "", user);
    proto_put_command_complete(out, "SHUTDOWN");
    runtime_shutdown(mode);
}

/* ---------------------------------------------------------------- dispatch */

static const char *const control_verbs[] = {
    "reload", "pause",     "resume",     "kill",    "kill_client", "disable",
    "enable", "reconnect", "wait_close", "suspend", "shutdown",    NULL,
};

int admin_is_control_verb(const char *w)
{
    for (int i = 0; control_verbs[i]; i++)
        if (strcasecmp(w, control_verbs[i]) == 0)
            return 1;
    return 0;
}

void admin_run_control(struct wp_buf *out, const char *user, char **words, int n,
                       struct admin_wait *wait)
{
    const char *cmd = words[0];
    wait->kind = ADMIN_WAIT_NONE;
    if (strcasecmp(cmd, "reload") == 0 && n == 1) {
        log_info("admin console: RELOAD by %s", user);
        runtime_reload();
        proto_put_command_complete(out, "RELOAD");
    } else if (strcasecmp(cmd, "pause") == 0 && n <= 2) {
        run_pause(out, words, n, wait);
    } else if (strcasecmp(cmd, "resume") == 0 && n <= 2) {
        run_resume(out, words, n);
    } else if (strcasecmp(cmd, "kill") == 0 && n <= 2) {
        run_kill(out, words, n);
    } else if (strcasecmp(cmd, "kill_client") == 0 && n == 2) {
        run_kill_client(out, user, words[1]);
    } else if (strcasecmp(cmd, "disable") == 0 && n == 2) {
        run_disable(out, "DISABLE", words[1], 1);
    } else if (strcasecmp(cmd, "enable") == 0 && n == 2) {
        run_disable(out, "ENABLE", words[1], 0);
    } else if (strcasecmp(cmd, "reconnect") == 0 && n <= 2) {
        run_reconnect(out, words, n);
    } else if (strcasecmp(cmd, "wait_close") == 0 && n <= 2) {
        run_wait_close(out, words, n, wait);
    } else if (strcasecmp(cmd, "suspend") == 0 && n == 1) {
        run_suspend(out, wait);
    } else if (strcasecmp(cmd, "shutdown") == 0 && n <= 2) {
        run_shutdown(out, user, words, n);
    } else {
        admin_answer_error(out, "42601", "syntax error in %.32s command, see SHOW HELP", cmd);
    }
}
