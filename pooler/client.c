/*
 * client — lifecycle of one application connection: accept, read/write events,
 * welcome after login, errors, close. Login itself (startup packet, passwords) is
 * in login.c; moving bytes to and from a backend is in relay.c.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/admin.h"
#include "warmpool/admin_control.h"
#include "warmpool/auth.h"
#include "warmpool/authq.h"
#include "warmpool/cancel_key.h"
#include "warmpool/client.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/proto.h"
#include "warmpool/relay.h"
#include "warmpool/relay_prepared.h"
#include "warmpool/relay_session.h"
#include "warmpool/runtime.h"
#include "warmpool/scram.h"
#include "warmpool/server.h"
#include "warmpool/stats.h"
#include "warmpool/timeouts.h"
#include "warmpool/tls.h"

static struct wp_list closed_clients = {&closed_clients, &closed_clients};

const char *client_state_name(enum wp_client_state state)
{
    static const char *const names[] = {"startup", "auth",   "welcome", "idle",
                                        "waiting", "active", "closing"};
    return names[state];
}

static void client_readable(void *arg);
static void client_writable(void *arg);

/* What relay_flush_to_client writes after the client's own bytes (conn_set_peer). */
static struct wp_conn *client_peer(void *arg)
{
    struct wp_client *c = arg;
    return c->server ? &c->server->conn : NULL;
}

void client_accept(int fd, const char *addr)
{
    const struct wp_config *cfg = wp_rt.cfg;
    if (wp_rt.nclients >= cfg->max_client_conn || wp_rt.shutting_down) {
        struct wp_buf msg = {0};
        proto_put_error(&msg, "FATAL", "53300",
                        wp_rt.shutting_down ? "warmpool is shutting down"
                                            : "no more connections allowed (max_client_conn)");
        conn_reject(fd, &msg);
        buf_free(&msg);
        log_warn("refused client %s: %s", addr,
                 wp_rt.shutting_down ? "shutting down" : "max_client_conn reached");
        return;
    }
    size_t addr_size = strlen(addr) + 1;
    struct wp_client *c = calloc(1, offsetof(struct wp_client, addr) + addr_size);
    if (!c) {
        conn_reject(fd, &(struct wp_buf){0});
        return;
    }
    c->id = runtime_next_id();
    memcpy(c->addr, addr, addr_size);
    client_set_state(c, CL_STARTUP);
    c->login_started_ms = wp_now_ms();
    list_init(&c->node);
    if (conn_open(&c->conn, fd, client_readable, client_writable, c) < 0) {
        conn_reject(fd, &(struct wp_buf){0});
        free(c);
        return;
    }
    conn_set_peer(&c->conn, client_peer);
    list_push_tail(&wp_rt.clients, &c->all);
    wp_rt.nclients++;
    log_debug("C-%llu %s: new connection", (unsigned long long)c->id, c->addr);
}

static void client_free(struct wp_client *c)
{
    prepared_client_forget(c);
    conn_free(&c->conn);
    params_clear(&c->params);
    params_clear(&c->startup);
    session_free(&c->session);
    if (c->scram)
        scram_state_clear(c->scram); /* it may hold a ClientKey */
    free(c->scram);
    authq_secret_free(c->looked_up);
    free(c->stats.group); /* NULL unless a query ended after client_close */
    if (!c->pool || c->user != c->pool->user)
        free(c->user); /* and dbname: one allocation (login.c), or the pool's */
    if (c->pool)
        pool_drop(c->pool);
    free(c);
}

void client_reap(void)
{
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &closed_clients)
    {
        list_remove(pos);
        client_free(list_entry(pos, struct wp_client, all));
    }
}

void client_close(struct wp_client *c, const char *reason)
{
    if (c->state == CL_CLOSING)
        return;
    if (c->user && wp_rt.cfg->log_disconnections)
        log_info("C-%llu %s/%s@%s: closing: %s", (unsigned long long)c->id, c->dbname, c->user,
                 c->addr, reason);
    else if (c->user)
        log_debug("C-%llu %s/%s@%s: closing: %s", (unsigned long long)c->id, c->dbname, c->user,
                  c->addr, reason);
    else
        log_debug("C-%llu %s: closing: %s", (unsigned long long)c->id, c->addr, reason);
    stats_client_closed(c->pool, c, &c->stats);
    if (c->admin_waiting)
        admin_wait_forget(c);
    if (c->state == CL_WAITING)
        pool_cancel_wait(c);
    list_remove(&c->node);
    client_set_state(c, CL_CLOSING);
    relay_session_client_closing(c);
    if (c->server) {
        struct wp_server *s = c->server;
        c->server = NULL;
        /* A message only partly forwarded, or scanned but not all written, leaves the
           backend mid-message (or owing answers to bytes it never got). */
        if (conn_mid_message(&c->conn))
            s->close_when_quiet = 1;
        server_abandon(s);
    }
    /* Best effort: deliver what warmpool itself still had to say (a FATAL). */
    conn_close(&c->conn);
    list_remove(&c->all);
    wp_rt.nclients--;
    list_push_tail(&closed_clients, &c->all);
    runtime_schedule_reap();
}

int client_is_unix(const struct wp_client *c)
{
    return strcmp(c->addr, "unix") == 0;
}

void client_kick_write(struct wp_client *c)
{
    if (c->state == CL_CLOSING)
        return;
    int rc = relay_flush_to_client(c);
    if (rc < 0)
        client_close(c, "write to client failed");
}

void client_send_error(struct wp_client *c, const char *severity, const char *sqlstate,
                       const char *message)
{
    if (c->state == CL_CLOSING)
        return;
    if (wp_rt.cfg->log_pooler_errors)
        log_warn("C-%llu %s/%s@%s: pooler error: %s %s", (unsigned long long)c->id,
                 c->dbname ? c->dbname : "-", c->user ? c->user : "-", c->addr, sqlstate, message);
    proto_put_error(&c->conn.out, severity, sqlstate, message);
    if (strcmp(severity, "FATAL") == 0) {
        client_close(c, message);
        return;
    }
    client_kick_write(c);
}

/* Bytes of the whole request at the head of the input (a Query or FunctionCall, or
   extended messages through their Sync), or 0 when it is not all buffered. */
static size_t buffered_request_length(const struct wp_client *c)
{
    const uint8_t *p = buf_head(&c->conn.in);
    size_t avail = buf_unread(&c->conn.in), off = 0;
    uint32_t max_len = (uint32_t)wp_rt.cfg->max_packet_size;
    if (c->state == CL_CLOSING || c->server || c->conn.ready > 0 || c->conn.msg_left > 0)
        return 0;
    for (;;) {
        uint8_t type;
        uint32_t len;
        if (proto_scan_header(p + off, avail - off, max_len, &type, &len) != PROTO_HEADER ||
            avail - off < len || type == 'X')
            return 0;
        off += len;
        /* As after any error, PostgreSQL would skip the rest up to Sync. */
        if (type == 'Q' || type == 'F' || type == 'S')
            return off;
    }
}

int client_request_buffered(const struct wp_client *c)
{
    return buffered_request_length(c) > 0;
}

int client_refuse_request(struct wp_client *c, const char *sqlstate, const char *message)
{
    size_t off = buffered_request_length(c);
    if (off == 0)
        return -1;
    buf_consume(&c->conn.in, off);
    proto_put_error(&c->conn.out, "ERROR", sqlstate, message);
    proto_put_ready(&c->conn.out, 'I');
    client_kick_write(c);
    return 0;
}

/* The one read of client bytes (conn_read). Logged in, the input is bounded: this
   many unconsumed bytes, more only while the message at the scan position is wanted
   whole (within max_packet_size, or it would have been refused). */
static int read_input(struct wp_client *c)
{
    size_t cap = c->state >= CL_WELCOME ? runtime_client_input_cap() : 0;
    long n =
        conn_read(&c->conn, (size_t)wp_rt.cfg->pkt_buf, cap, (uint32_t)wp_rt.cfg->max_packet_size);
    if (n > 0 && c->pool)
        c->pool->bytes_in += (uint64_t)n;
    return n > 0 ? 1 : (int)n;
}

static void read_and_dispatch(struct wp_client *c)
{
    int rc = read_input(c);
    if (rc < 0) {
        if (c->conn.error)
            log_warn("C-%llu %s: %s", (unsigned long long)c->id, c->addr, c->conn.error);
        client_close(c, c->conn.error ? "TLS handshake failed" : "client disconnected");
        return;
    }
    if (rc == 0)
        return;
    c->last_active_ms = wp_now_ms();
    switch (c->state) {
    case CL_STARTUP:
    case CL_AUTH:
        login_input(c);
        break;
    case CL_WELCOME:
    case CL_WAITING:
        break; /* kept for later; conn_read bounds it */
    case CL_IDLE:
    case CL_ACTIVE:
        if (c->is_admin)
            admin_input(c);
        else
            relay_client_input(c);
        break;
    case CL_CLOSING:
        break;
    }
}

static void client_readable(void *arg)
{
    wp_clock_hold(1); /* one clock reading for the whole callback */
    read_and_dispatch(arg);
    wp_clock_hold(0);
}

static void client_writable(void *arg)
{
    relay_client_writable(arg);
}

/* Login done and the pool knows its parameters: send them, a key, and ReadyForQuery. */
/* application_name_add_host: "app - host:port" (PgBouncer's form), part of what the
   client asked for at startup, so that RESET returns to it. */
static void add_host_to_appname(struct wp_client *c)
{
    const char *app = params_get(&c->startup, "application_name");
    char value[512];

    snprintf(value, sizeof value, "%s - %s", app ? app : "", c->addr);
    params_set(&c->startup, "application_name", value);
}

void client_welcome(struct wp_client *c)
{
    struct wp_pool *pool = c->pool;
    list_remove(&c->node);
    if (wp_rt.cfg->application_name_add_host)
        add_host_to_appname(c);
    params_copy(&c->params, &pool->params);
    for (int i = 0; i < c->startup.n; i++)
        params_set(&c->params, c->startup.items[i].name, c->startup.items[i].value);
    params_intern(&c->startup); /* kept for RESET; shared by clients that asked alike */
    params_intern(&c->params);  /* clients with the same parameters share one copy */
    for (int i = 0; i < c->params.n; i++) {
        const struct wp_param *p = &c->params.items[i];
        if (p->reported)
            proto_put_param_status(&c->conn.out, p->name, p->value);
    }
    client_issue_cancel_key(c);
    proto_put_ready(&c->conn.out, 'I');
    client_set_state(c, CL_IDLE);
    /* Idleness counts from this answer, not from the password message: the wait for
       the pool's first backend may have lasted longer than client_idle_timeout. */
    c->answered_ms = wp_now_ms();
    char tls[96];
    if (wp_rt.cfg->log_connections)
        log_info("C-%llu %s/%s@%s: login, %s%s", (unsigned long long)c->id, c->dbname, c->user,
                 c->addr, c->conn.tls ? "TLS " : "no TLS",
                 tls_describe(c->conn.tls, tls, sizeof tls));
    client_kick_write(c);
    buf_release_if_empty(&c->conn.in); /* logged in and idle: no buffer until it speaks */
    if (c->state != CL_CLOSING && buf_unread(&c->conn.in) > 0)
        relay_client_input(c);
}

/* The pool gave this client a backend: sync session parameters, then relay. */
void client_sync_params(struct wp_client *c)
{
    struct wp_server *s = c->server;
    c->session.resync = 0;
    if (params_in_sync(&c->params, &s->params))
        return;
    struct wp_buf sql = {0};
    int n = params_build_sync(&c->params, &s->params, &sql);
    if (n > 0 && buf_append(&sql, "", 1) == 0 &&
        server_queue_internal(s, (const char *)sql.data) == 0) {
        params_apply_sync(&c->params, &s->params);
        /* The client's first message waits for the answer: if the sync fails, the
           backend's settings are unknown and the client must not run on it. */
        s->syncing_params = 1;
    }
    buf_free(&sql);
}

void client_linked(struct wp_client *c)
{
    relay_session_linked(c);
    client_sync_params(c);
    conn_pause_read(&c->conn, 0);
    relay_client_input(c);
}

/* BackendKeyData: random, with this instance's peer id and hop count when peering is on
   (cancel_key.h), so a peer that receives the CancelRequest knows where to send it. */
void client_issue_cancel_key(struct wp_client *c)
{
    uint8_t random[8];
    auth_random(random, sizeof random);
    cancel_key_make(wp_rt.cfg->peer_id, random, &c->cancel_pid, &c->cancel_key);
    proto_put_backend_key(&c->conn.out, c->cancel_pid, c->cancel_key);
}

struct wp_client *client_find_by_cancel_key(uint32_t pid, uint32_t key)
{
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.clients)
    {
        struct wp_client *c = list_entry(pos, struct wp_client, all);
        if (c->state >= CL_IDLE && c->cancel_pid == pid && c->cancel_key == key)
            return c;
    }
    return NULL;
}
