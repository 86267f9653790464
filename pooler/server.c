/*
 * server — one backend connection. libpq opens it without blocking (PQconnectPoll
 * driven by libevent), or warmpool's own login does (server_login.c: entries it
 * supports, pools with a password or SCRAM keys); after that warmpool owns the socket
 * and speaks raw protocol.
 * Also: internal queries (parameter sync, ROLLBACK, reset), the drain after an
 * abandoned client, and closing.
 */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/cancel.h"
#include "warmpool/client.h"
#include "warmpool/fleet.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/proto.h"
#include "warmpool/relay.h"
#include "warmpool/relay_prepared.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/server_hosts.h"
#include "warmpool/server_login.h"
#include "warmpool/server_setup.h"
#include "warmpool/stats.h"
#include "warmpool/timeouts.h"

static struct wp_list closed_servers = {&closed_servers, &closed_servers};

const char *server_state_name(enum wp_server_state state)
{
    static const char *const names[] = {"connecting", "idle",     "active",
                                        "resetting",  "draining", "closed"};
    return names[state];
}

void server_set_state(struct wp_server *s, enum wp_server_state state)
{
    s->state = state;
    pool_file_server(s); /* the pool's lists follow the state */
}

static void server_readable(void *arg);
static void server_writable(void *arg);
static void connect_step(void *arg);

static int has_key(const struct wp_db_config *db, const char *key)
{
    for (int i = 0; i < db->nconn; i++)
        if (strcmp(db->conn_keys[i], key) == 0)
            return 1;
    return 0;
}

/* libpq keywords: the database's connection string, then the pool's login; in a fleet
   the stamp comes last, so that it wins over the entry's application_name. */
int server_conninfo(struct wp_pool *pool, const char **keys, const char **values, int max)
{
    const struct wp_db_config *db = pool->db;
    const char *stamp = fleet_stamp();
    int n = 0;
    for (int i = 0; i < db->nconn && n < max - 7 - SERVER_SETUP_TLS_KEYS; i++) {
        keys[n] = db->conn_keys[i];
        values[n++] = db->conn_values[i];
    }
    if (!db->forced_user) {
        keys[n] = "user";
        values[n++] = pool->backend_user;
        if (pool->backend_password) {
            keys[n] = "password";
            values[n++] = pool->backend_password;
        }
    }
    if (strcmp(db->name, "*") == 0 && !has_key(db, "dbname")) {
        /* The fallback entry serves whatever database the client named. */
        keys[n] = "dbname";
        values[n++] = pool->dbname;
    }
    n = server_setup_tls_keys(pool->db_cfg, db, keys, values, n);
    keys[n] = "fallback_application_name";
    values[n++] = "warmpool";
    /* warmpool relays the socket itself and cannot relay GSSAPI encryption; asking
       for it would also load Kerberos into every pooler (~0.6 MB resident). */
    keys[n] = "gssencmode";
    values[n++] = "disable";
    if (stamp) {
        keys[n] = "application_name";
        values[n++] = stamp;
    }
    keys[n] = NULL;
    values[n] = NULL;
    return n;
}

/* libpq's socket may change while it tries hosts and addresses: watch the current one. */
static int arm_connect_event(struct wp_server *s, int for_write)
{
    return conn_watch_connect(&s->conn, PQsocket(s->pq), for_write, connect_step, s);
}

static void connect_failed(struct wp_server *s, const char *libpq_text);

/* warmpool's own login (server_login.c) serves the entries it can, whenever the pool
   has something to log in with; libpq the rest. */
static int use_own_login(const struct wp_pool *pool)
{
    return server_login_has_secret(pool) && !server_login_unsupported(pool->db_cfg, pool->db);
}

struct wp_server *server_connect(struct wp_pool *pool)
{
    struct wp_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    const char *keys[80], *values[80];
    int nkeys = server_conninfo(pool, keys, values, 80);
    s->id = runtime_next_id();
    s->host_index = -1;
    s->pool = pool;
    pool_hold(pool);
    s->conn.fd = -1;
    s->tx_status = 'I';
    s->connect_started_ms = wp_now_ms();
    list_init(&s->node);
    serverset_init(&s->stmts);
    pool_server_opening(pool);
    server_set_state(s, SV_CONNECTING);
    if (use_own_login(pool))
        return server_login_start(s) < 0 ? NULL : s;
    struct server_host_lists lists;
    server_hosts_order(s, keys, values, nkeys, &lists);
    s->pq = PQconnectStartParams(keys, values, 0);
    if (!s->pq || PQstatus(s->pq) == CONNECTION_BAD || arm_connect_event(s, 1) < 0) {
        connect_failed(s, s->pq ? PQerrorMessage(s->pq) : "out of memory");
        return NULL;
    }
    log_debug("S-%llu %s/%s: connecting", (unsigned long long)s->id, pool->dbname, pool->user);
    return s;
}

static void capture_params(struct wp_server *s)
{
    /* libpq keeps the values of every parameter the backend reported. */
    for (int i = 0; params_reported_names[i]; i++) {
        const char *value = PQparameterStatus(s->pq, params_reported_names[i]);
        if (value)
            params_set(&s->params, params_reported_names[i], value);
    }
}

/* Guess a SQLSTATE for a failed connect; libpq gives text only. */
static const char *connect_sqlstate(const char *message)
{
    /* The server asked for a password warmpool does not have: to the client, as a
       failed password login (see connect_failed). */
    if (strstr(message, "password authentication failed") ||
        strstr(message, "no password supplied"))
        return "28P01";
    if (strstr(message, "does not exist") && strstr(message, "database"))
        return "3D000";
    /* "too many clients already", "too many connections for role|database", and
       "remaining connection slots are reserved …": all 53300 in PostgreSQL. */
    if (strstr(message, "too many clients") || strstr(message, "too many connections") ||
        strstr(message, "remaining connection slots"))
        return "53300";
    return "08006";
}

/* libpq's text on one line, without the trailing newline (it has a line per host
   tried, and hints indented with a tab). */
static void one_line(const char *libpq_text, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", libpq_text);
    size_t len = strlen(out);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
        out[--len] = '\0';
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
}

/* A connect or login failed. libpq's text names socket paths, host names and the
   server's database names: it goes to the log and to the pool's last_error (for
   operators); clients get only a fixed text for the inferred SQLSTATE (pool.c).
   The pool learns of the failure before the close, which may start a new connect:
   by then server_login_retry must hold. */
static void connect_failed(struct wp_server *s, const char *libpq_text)
{
    struct wp_pool *pool = s->pool;
    char text[1024];
    one_line(libpq_text, text, sizeof text);
    /* No password to give: the user is not in auth_file with a plaintext password and
       the entry forces no user= / password=; SCRAM pass-through could not serve it. */
    int no_password =
        strstr(text, "no password supplied") && !pool->db->forced_user && !pool->backend_password;
    const char *why_not = server_login_unsupported(pool->db_cfg, pool->db);
    char hint[256] = "";
    if (no_password && why_not)
        snprintf(hint, sizeof hint,
                 " (no backend password for this user, and SCRAM pass-through cannot serve "
                 "this entry: %s)",
                 why_not);
    else if (no_password)
        snprintf(hint, sizeof hint,
                 " (no backend password for this user, and no SCRAM key to "
                 "pass through yet: none of its clients has logged in with "
                 "SCRAM)");
    log_warn("S-%llu %s/%s: connect failed: %s%s", (unsigned long long)s->id, pool->dbname,
             pool->user, text, hint);
    server_hosts_failed(s);
    pool_connect_failed(pool, connect_sqlstate(text), text);
    server_close(s, "connect failed");
}

void server_connect_error(struct wp_server *s, const char *sqlstate, const char *text)
{
    struct wp_pool *pool = s->pool;
    log_warn("S-%llu %s/%s: connect failed: %s", (unsigned long long)s->id, pool->dbname,
             pool->user, text);
    pool_connect_failed(pool, sqlstate, text);
    server_close(s, "connect failed");
}

static void connected(struct wp_server *s);

/* What relay_flush_to_server writes after the backend's own bytes (conn_set_peer). */
static struct wp_conn *server_peer(void *arg)
{
    struct wp_server *s = arg;
    return s->client ? &s->client->conn : NULL;
}

static void connect_done(struct wp_server *s)
{
    s->backend_pid = (uint32_t)PQbackendPID(s->pq);
    if (conn_open_borrowed(&s->conn, PQsocket(s->pq), server_readable, server_writable, s) < 0) {
        server_close(s, "out of memory");
        return;
    }
    conn_set_peer(&s->conn, server_peer);
    /* With TLS, libpq's SSL object carries the bytes from here on. */
    if (PQsslInUse(s->pq)) {
        SSL *ssl = PQsslStruct(s->pq, "OpenSSL");
        if (!ssl || conn_use_backend_tls(&s->conn, ssl) < 0) {
            server_close(s, ssl ? "out of memory" : "libpq gave no OpenSSL object");
            return;
        }
    }
    capture_params(s);
    server_hosts_logged_in(s, PQhost(s->pq), PQport(s->pq));
    connected(s);
}

void server_connect_finished(struct wp_server *s, int fd, SSL *ssl)
{
    /* The socket and SSL stay server_login's, closed by server_login_close. */
    if (conn_open_borrowed(&s->conn, fd, server_readable, server_writable, s) < 0 ||
        (ssl && conn_use_backend_tls(&s->conn, ssl) < 0)) {
        server_close(s, "out of memory");
        return;
    }
    conn_set_peer(&s->conn, server_peer);
    server_hosts_logged_in(s, NULL, NULL); /* the entry's one host */
    connected(s);                          /* s->params already hold the ParameterStatus values */
}

/* Logged in, by libpq or by server_login: to work. */
static void connected(struct wp_server *s)
{
    struct wp_pool *pool = s->pool;
    s->created_ms = s->last_used_ms = wp_now_ms();
    s->lifetime_ms = timeouts_jitter_lifetime(pool->settings.server_lifetime, (uint32_t)random());
    pool_server_connected(pool);
    stats_server_opened(pool);
    log_info("S-%llu %s/%s pid=%u: connected", (unsigned long long)s->id, pool->dbname, pool->user,
             s->backend_pid);
    if (!pool->params_known)
        pool_set_params(pool, &s->params);
    if (server_setup_start(s))
        return;
    pool_login_worked(pool);
    if (prepared_warm_server(s)) {
        server_set_state(s, SV_RESETTING);
        server_kick_write(s);
        return;
    }
    server_on_quiet(s);
}

static void connect_step(void *arg)
{
    struct wp_server *s = arg;
    switch (PQconnectPoll(s->pq)) {
    case PGRES_POLLING_READING:
        if (arm_connect_event(s, 0) < 0)
            server_close(s, "cannot watch socket");
        return;
    case PGRES_POLLING_WRITING:
        if (arm_connect_event(s, 1) < 0)
            server_close(s, "cannot watch socket");
        return;
    case PGRES_POLLING_OK:
        connect_done(s);
        return;
    case PGRES_POLLING_FAILED:
    default:
        connect_failed(s, PQerrorMessage(s->pq));
        return;
    }
}

static void server_free(struct wp_server *s)
{
    prepared_server_forget(s);
    server_hosts_forget(s);
    conn_free(&s->conn);
    params_clear(&s->params);
    owed_free(&s->owed);
    free(s->sync_error);
    pool_drop(s->pool);
    free(s);
}

void server_reap(void)
{
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &closed_servers)
    {
        struct wp_server *s = list_entry(pos, struct wp_server, node);
        if (s->cancel_pending > 0)
            continue; /* the cancel's completion still points here */
        list_remove(pos);
        server_free(s);
    }
}

void server_close(struct wp_server *s, const char *reason)
{
    if (s->state == SV_CLOSED)
        return;
    struct wp_pool *pool = s->pool;
    stats_server_closed(pool, reason);
    if (s->state == SV_CONNECTING) {
        server_hosts_closing(s);
        pool_server_connected(pool); /* no longer connecting, closed below */
    }
    if (s->backend_pid)
        log_info("S-%llu %s/%s pid=%u: closing: %s", (unsigned long long)s->id, pool->dbname,
                 pool->user, s->backend_pid, reason);
    struct wp_client *c = s->client;
    s->client = NULL;
    if (!s->warming)
        prepared_save_warm(s);
    server_set_state(s, SV_CLOSED);
    if (c) {
        c->server = NULL;
        if (s->out_of_memory)
            client_send_error(c, "FATAL", "53200", "out of memory");
        else
            client_send_error(c, "FATAL", "08006", "server connection lost");
    }
    conn_close(&s->conn); /* events and TLS wrapper; the socket and SSL are libpq's */
    if (s->pq) {
        /* PQfinish sends Terminate and closes the socket. */
        PQfinish(s->pq);
        s->pq = NULL;
    }
    server_login_close(s); /* the same for warmpool's own login */
    list_push_tail(&closed_servers, &s->node);
    runtime_schedule_reap();
    pool_server_closed(pool, s);
}

int server_queue_internal(struct wp_server *s, const char *sql)
{
    if (proto_put_query(&s->conn.out, sql) < 0)
        return -1;
    owed_sent(&s->owed, 'Q');
    s->swallow++;
    return 0;
}

void server_kick_write(struct wp_server *s)
{
    if (s->state == SV_CLOSED)
        return;
    if (relay_flush_to_server(s) < 0)
        server_close(s, "write to server failed");
}

/* The one read of backend bytes (conn_read); unbounded here, since reading pauses
   while the client is slow (relay.c). */
static int read_input(struct wp_server *s)
{
    long n = conn_read(&s->conn, (size_t)wp_rt.cfg->pkt_buf, 0, 0);
    if (n > 0)
        s->pool->bytes_out += (uint64_t)n;
    return n > 0 ? 1 : (int)n;
}

int server_input_pending(const struct wp_server *s)
{
    return conn_input_pending(&s->conn);
}

static void server_readable(void *arg)
{
    struct wp_server *s = arg;
    wp_clock_hold(1); /* one clock reading for the whole callback */
    int rc = read_input(s);
    if (rc < 0) {
        if (s->state != SV_CONNECTING)
            pool_server_lost(s->pool);
        server_close(s, "server closed the connection");
    } else if (rc > 0)
        relay_server_input(s);
    wp_clock_hold(0);
}

static void server_writable(void *arg)
{
    server_kick_write(arg);
}

/* Nothing outstanding and no client: roll back, reset, or go back to the pool. */
void server_on_quiet(struct wp_server *s)
{
    if (s->state == SV_CLOSED || s->client)
        return;
    if (!s->owed.lost && (!owed_settled(&s->owed) || s->swallow > 0))
        return;
    if (s->cancel_pending > 0)
        return; /* the cancel's completion calls back */
    if (s->setting_up && server_setup_finish(s))
        return;
    if (s->close_when_quiet || s->owed.lost || wp_rt.shutting_down == WP_SHUTDOWN_IMMEDIATE) {
        server_close(s, s->close_when_quiet ? "not reusable" : "shutting down");
        return;
    }
    if (s->tx_status != 'I') {
        server_set_state(s, SV_RESETTING);
        server_queue_internal(s, "ROLLBACK");
        server_kick_write(s);
        return;
    }
    if (s->needs_reset && wp_rt.cfg->server_reset_query && *wp_rt.cfg->server_reset_query) {
        s->needs_reset = 0;
        server_set_state(s, SV_RESETTING);
        server_queue_internal(s, wp_rt.cfg->server_reset_query);
        server_kick_write(s);
        return;
    }
    s->needs_reset = 0;
    pool_server_ready(s);
}

void server_abandon(struct wp_server *s)
{
    s->client = NULL;
    /* A parameter sync in flight was for this client: its outcome must not reach the
       next one (a failed sync closes the backend anyway: note_internal_error). */
    s->syncing_params = 0;
    s->params_outcome = 0;
    free(s->sync_error);
    s->sync_error = NULL;
    conn_pause_read(&s->conn, 0); /* it may have been paused for the client; drain it */
    server_set_state(s, SV_DRAINING);
    s->drain_started_ms = wp_now_ms();
    /* Output read for the client has no reader now, and reading was paused while the
       client was slow to take it: drop it and read on. Otherwise a backend blocked
       writing a big result never sees the cancel (PostgreSQL ignores cancels while
       blocked in a write to its client) and is only closed by the drain timeout. */
    buf_consume(&s->conn.in, s->conn.ready);
    s->conn.ready = 0;
    s->msg_discard = 1; /* the rest of a message in flight goes nowhere either */
    if (s->close_when_quiet) {
        server_close(s, "client left in the middle of a message");
        return;
    }
    if (s->owed.lost) {
        server_close(s, "its state is unknown");
        return;
    }
    if (s->owed.copy_in) {
        /* End the COPY so the backend answers with an error and ReadyForQuery. */
        static const char reason[] = "client disconnected during COPY";
        uint8_t header[5] = {'f'};
        proto_put_u32(header + 1, (uint32_t)(4 + sizeof reason));
        buf_append(&s->conn.out, header, 5);
        buf_append(&s->conn.out, reason, sizeof reason);
        owed_sent(&s->owed, 'f');
    }
    if (s->owed.unsynced || s->owed.skipping) {
        /* A bare Sync would commit the client's unsynced implicit transaction: make
           the batch fail first (a Parse that cannot parse), so the Sync rolls it back. */
        static const char poison[] = "\0warmpool: client left before Sync, rolling back";
        uint8_t header[5] = {'P'};
        proto_put_u32(header + 1, (uint32_t)(4 + sizeof poison + 2));
        buf_append(&s->conn.out, header, 5);
        buf_append(&s->conn.out, poison, sizeof poison);
        buf_append(&s->conn.out, "\0\0", 2); /* no parameter types */
        proto_put_simple(&s->conn.out, 'S');
        owed_sent(&s->owed, 'P');
        owed_sent(&s->owed, 'S');
        if (prepared_active(s))
            prepared_abandon_batch(s);
    }
    if (server_outstanding(s))
        cancel_server(s);
    server_kick_write(s);
    server_on_quiet(s);
}
