/*
 * client_limits — PgBouncer's max_db_client_connections and max_user_client_connections
 * (pooler/client_limits.c): clients per database name and per user name, counted at
 * login once the client authenticated, refused beyond with 53300.
 */
#ifndef WARMPOOL_CLIENT_LIMITS_H
#define WARMPOOL_CLIENT_LIMITS_H

struct wp_client;
struct wp_db_config;

/* 1 when c, about to join db's pool, is one client too many for its database or its
   user: it was sent FATAL 53300 (and closed); 0 when it may join. */
int client_limits_refuse(struct wp_client *c, const struct wp_db_config *db);

#endif
