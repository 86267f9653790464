/*
 * client_limits — clients per database and per user (include/warmpool/client_limits.h).
 *
 * The clients counted are those in a pool (logged in, waiting for the pool's first
 * backend included), by the names they asked for, as PgBouncer counts them: the
 * database of the client's [databases] entry name, the user it logged in as. A limit
 * of 0 is none; a [databases] or [users] entry's own value wins over [warmpool]'s.
 */
#include <stdio.h>
#include <string.h>

#include "warmpool/client.h"
#include "warmpool/client_limits.h"
#include "warmpool/config.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/runtime.h"

static void count_clients(const char *dbname, const char *user, int *per_db, int *per_user)
{
    *per_db = *per_user = 0;
    for (struct wp_list *pos = wp_rt.clients.next; pos != &wp_rt.clients; pos = pos->next) {
        const struct wp_client *o = list_entry(pos, struct wp_client, all);
        if (!o->pool || o->state == CL_CLOSING)
            continue;
        *per_db += strcmp(o->pool->dbname, dbname) == 0;
        *per_user += strcmp(o->pool->user, user) == 0;
    }
}

static void refuse(struct wp_client *c, const char *key, int limit)
{
    char msg[96];

    snprintf(msg, sizeof msg, "client connections exceeded (%s)", key);
    log_warn("C-%llu %s/%s@%s: refused: %s = %d reached", (unsigned long long)c->id, c->dbname,
             c->user, c->addr, key, limit);
    client_send_error(c, "FATAL", "53300", msg);
}

int client_limits_refuse(struct wp_client *c, const struct wp_db_config *db)
{
    const struct wp_config *cfg = wp_rt.cfg;
    const struct wp_user_config *u = config_find_user(cfg, c->user);
    int db_limit = db->max_db_client_connections ? db->max_db_client_connections
                                                 : cfg->max_db_client_connections;
    int user_limit = u && u->max_user_client_connections ? u->max_user_client_connections
                                                         : cfg->max_user_client_connections;
    int per_db, per_user;

    if (!db_limit && !user_limit)
        return 0;
    count_clients(c->dbname, c->user, &per_db, &per_user);
    if (db_limit && per_db >= db_limit) {
        refuse(c, "max_db_client_connections", db_limit);
        return 1;
    }
    if (user_limit && per_user >= user_limit) {
        refuse(c, "max_user_client_connections", user_limit);
        return 1;
    }
    return 0;
}
