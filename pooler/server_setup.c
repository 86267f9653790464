/*
 * server_setup — a new backend's configuration beyond its [databases] entry
 * (include/warmpool/server_setup.h).
 *
 * PgBouncer's server_tls_* keys are libpq keywords under other names: they are added
 * to the connection of every entry that does not set the keyword itself. connect_query
 * (PgBouncer's, per database; warmpool also takes it in [warmpool]) runs once on each
 * new backend as an internal query, before prepared-statement warming and before the
 * backend is first lent. If it fails, the backend is closed (vouch or close), with a
 * log line, as PgBouncer does.
 */
#include <stdio.h>
#include <string.h>

#include "warmpool/config.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/relay_prepared.h"
#include "warmpool/server.h"
#include "warmpool/server_setup.h"
#include "warmpool/tls.h"

static int entry_sets(const struct wp_db_config *db, const char *key)
{
    for (int i = 0; i < db->nconn; i++)
        if (strcmp(db->conn_keys[i], key) == 0)
            return 1;
    return 0;
}

static int add_key(const struct wp_db_config *db, const char **keys, const char **values, int n,
                   const char *key, const char *value)
{
    if (!value || entry_sets(db, key))
        return n;
    keys[n] = key;
    values[n] = value;
    return n + 1;
}

/* server_tls_protocols as libpq's lowest and highest version names; 0 when it does
   not parse (refused at load time). */
static int protocol_bounds(const char *text, const char **lowest, const char **highest)
{
    static const char *const names[] = {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
    unsigned mask;
    char err[160];

    *lowest = *highest = NULL;
    if (tls_parse_protocols(text, &mask, err, sizeof err) < 0)
        return 0;
    for (int i = 0; i < 4; i++) {
        if (mask & (1u << i)) {
            if (!*lowest)
                *lowest = names[i];
            *highest = names[i];
        }
    }
    return *lowest != NULL;
}

int server_setup_tls_keys(const struct wp_config *cfg, const struct wp_db_config *db,
                          const char **keys, const char **values, int n)
{
    int mode = cfg->server_tls_sslmode;
    const char *lowest, *highest;

    n = add_key(db, keys, values, n, "sslmode",
                mode >= 0 && mode <= WP_SSLMODE_VERIFY_FULL ? tls_sslmode_names[mode] : NULL);
    n = add_key(db, keys, values, n, "sslrootcert", cfg->server_tls_ca_file);
    n = add_key(db, keys, values, n, "sslcert", cfg->server_tls_cert_file);
    n = add_key(db, keys, values, n, "sslkey", cfg->server_tls_key_file);
    if (protocol_bounds(cfg->server_tls_protocols, &lowest, &highest)) {
        n = add_key(db, keys, values, n, "ssl_min_protocol_version", lowest);
        n = add_key(db, keys, values, n, "ssl_max_protocol_version", highest);
    }
    return n;
}

const char *server_setup_connect_query(const struct wp_config *cfg, const struct wp_db_config *db)
{
    const char *q = db && db->connect_query ? db->connect_query : cfg->connect_query;
    return q && *q ? q : NULL;
}

static int same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int server_setup_changed(const struct wp_config *ca, const struct wp_db_config *a,
                         const struct wp_config *cb, const struct wp_db_config *b)
{
    return ca->server_tls_sslmode != cb->server_tls_sslmode ||
           !same_text(ca->server_tls_ca_file, cb->server_tls_ca_file) ||
           !same_text(ca->server_tls_cert_file, cb->server_tls_cert_file) ||
           !same_text(ca->server_tls_key_file, cb->server_tls_key_file) ||
           !same_text(ca->server_tls_protocols, cb->server_tls_protocols) ||
           !same_text(server_setup_connect_query(ca, a), server_setup_connect_query(cb, b));
}

int server_setup_start(struct wp_server *s)
{
    const char *q = server_setup_connect_query(s->pool->db_cfg, s->pool->db);

    if (!q)
        return 0;
    if (server_queue_internal(s, q) < 0) {
        server_close(s, "out of memory");
        return 1;
    }
    s->setting_up = 1;
    server_set_state(s, SV_RESETTING);
    server_kick_write(s);
    return 1;
}

int server_setup_finish(struct wp_server *s)
{
    s->setting_up = 0;
    if (s->close_when_quiet || s->owed.lost) {
        log_warn("S-%llu %s/%s pid=%u: connect_query failed: closing the connection",
                 (unsigned long long)s->id, s->pool->dbname, s->pool->user, s->backend_pid);
        /* As a failed login: the next connect waits server_login_retry, not a loop of
           connects that each fail the same way. */
        pool_connect_failed(s->pool, "08006", "connect_query failed");
        server_close(s, "connect_query failed");
        return 1;
    }
    pool_login_worked(s->pool);
    if (prepared_warm_server(s)) {
        server_set_state(s, SV_RESETTING);
        server_kick_write(s);
        return 1;
    }
    return 0;
}
