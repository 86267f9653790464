/*
 * relay — the hot path between a linked client and backend.
 *
 * Each side reads into its own buffer. The scanner walks message headers, acts on the
 * few it must (Query/Sync counting, ReadyForQuery, ParameterStatus, COPY state,
 * Terminate), and marks how far the buffer is ready to go; the bytes then leave with
 * one writev per direction, warmpool's own bytes first. Bodies of other messages
 * are never copied, and may stream through in pieces.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "warmpool/client.h"
#include "warmpool/fingerprint.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/proto.h"
#include "warmpool/relay.h"
#include "warmpool/relay_prepared.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/stats.h"
#include "warmpool/timeouts.h"
#include "warmpool/tls.h"

#define SERVER_MAX_MESSAGE 0x7fffffffu
/* ParameterStatus bodies larger than this are passed through unread. */
#define PARAM_STATUS_MAX 65536u

enum scan_result {
    SCAN_MORE,         /* everything available was handled */
    SCAN_RELEASE,      /* transaction over: the server may go back to the pool */
    SCAN_QUIET,        /* no client and nothing outstanding */
    SCAN_TERMINATE,    /* client sent Terminate */
    SCAN_TX_FORBIDDEN, /* statement mode: the client opened a transaction block */
    SCAN_ERROR,
    SCAN_TOO_LARGE, /* a client message declared longer than max_packet_size */
    SCAN_BAD_TYPE,  /* a client message of a type PostgreSQL does not accept */
    SCAN_NO_MEMORY, /* a buffer or the statement registry could not grow */
};

static size_t client_input_limit(void)
{
    return (size_t)wp_rt.cfg->pkt_buf * 4;
}

static void set_write_armed(struct event *ev, int *armed, int want)
{
    if (*armed == want)
        return;
    *armed = want;
    if (want)
        event_add(ev, NULL);
    else
        event_del(ev);
}

static void server_pause_read(struct wp_server *s, int paused)
{
    if (s->read_paused == paused || !s->ev_read)
        return;
    s->read_paused = paused;
    if (paused) {
        event_del(s->ev_read);
        return;
    }
    event_add(s->ev_read, NULL);
    /* Input already decrypted inside OpenSSL would not wake the loop. */
    if (s->tls && tls_has_pending(s->tls))
        event_active(s->ev_read, EV_READ, 0);
}

void relay_resume_server_read(struct wp_server *s)
{
    server_pause_read(s, 0);
}

/* TLS: a write waiting for input must not spin on a writable socket; a read waiting
   for writability needs the write event. */
static int tls_write_event(const struct wp_tls *t, int done)
{
    return (!done && !t->write_wants_read) || t->read_wants_write;
}

void relay_move_client_scanned(struct wp_client *c, struct wp_server *s)
{
    if (c->scan == 0)
        return;
    buf_append(&s->wbuf, buf_head(&c->rbuf), c->scan);
    buf_consume(&c->rbuf, c->scan);
    c->scan = 0;
}

void relay_move_server_scanned(struct wp_server *s)
{
    struct wp_client *c = s->client;
    if (s->scan == 0 || !c)
        return;
    buf_append(&c->wbuf, buf_head(&s->rbuf), s->scan);
    buf_consume(&s->rbuf, s->scan);
    s->scan = 0;
}

/* ---- client → server ---- */

/* A client message goes to the backend (forwarded is 0 when the prepared layer sent
   something else in its place and told the backend state itself). */
static void note_client_message(struct wp_server *s, uint8_t type, int forwarded)
{
    if (forwarded)
        owed_sent(&s->owed, type);
    if (type == 'Q' || type == 'F' || type == 'S' || type == 'E')
        timeouts_request_sent(s); /* query_timeout counts from here */
}

/* stats: a request starts with its first message; Query and Parse carry the text. */
static void note_request_start(struct wp_client *c, uint8_t type, const uint8_t *p, size_t avail,
                               uint32_t len)
{
    const char *sql = NULL;
    size_t sql_len = 0;
    if (c->stats.query_started_us)
        return;
    if (avail >= len && type == 'Q') {
        sql = (const char *)p + 5;
        sql_len = len > 6 ? len - 6 : 0;
    } else if (avail >= len && type == 'P') {
        const char *name = (const char *)p + 5;
        size_t name_len = strnlen(name, len - 5);
        if (name_len + 1 < len - 5) {
            sql = name + name_len + 1;
            sql_len = strnlen(sql, len - 5 - name_len - 1);
        }
    } else if (avail >= len && type == 'B') {
        /* A Bind of a named statement: its text and fingerprint are in the registry. */
        const char *portal = (const char *)p + 5;
        size_t portal_len = strnlen(portal, len - 5);
        struct wp_stmt *stmt =
            portal_len + 1 < len - 5 ? namemap_get(&c->stmts, portal + portal_len + 1) : NULL;
        if (stmt) {
            if (!stmt->fingerprint)
                stmt->fingerprint = fingerprint_hash(stmt->query, stmt->query_len);
            stats_query_start(c->pool, &c->stats, stmt->query, stmt->query_len, stmt->fingerprint,
                              stats_now_us());
            return;
        }
    } else if (type != 'B' && type != 'E' && type != 'F' && type != 'D' && type != 'S') {
        return;
    }
    stats_query_start(c->pool, &c->stats, sql, sql_len, 0, stats_now_us());
}

static enum scan_result scan_client(struct wp_client *c, struct wp_server *s)
{
    uint32_t max_len = (uint32_t)wp_rt.cfg->max_packet_size;
    int prep = prepared_active(s);
    for (;;) {
        size_t avail = buf_unread(&c->rbuf) - c->scan;
        if (avail == 0)
            return SCAN_MORE;
        const uint8_t *p = buf_head(&c->rbuf) + c->scan;
        if (c->msg_left > 0) {
            size_t take = avail < c->msg_left ? avail : c->msg_left;
            c->scan += take;
            c->msg_left -= (uint32_t)take;
            continue;
        }
        if (c->input_held || c->bad_type)
            return SCAN_MORE;
        uint8_t type;
        uint32_t len;
        enum proto_scan r = proto_scan_header(p, avail, max_len, &type, &len);
        if (r == PROTO_NEED_MORE)
            return SCAN_MORE;
        if (r == PROTO_BAD_LENGTH)
            return proto_length_too_large(p) ? SCAN_TOO_LARGE : SCAN_ERROR;
        if (type == 'X')
            return SCAN_TERMINATE;
        if (!owed_frontend_type_valid(type)) {
            c->bad_type = type; /* never forwarded: the backend would die of it */
            return SCAN_BAD_TYPE;
        }
        note_request_start(c, type, p, avail, len);
        if (prep) {
            enum prep_input in = prepared_client_message(c, s, type, len);
            if (in == PREP_WAIT)
                return SCAN_MORE;
            if (in == PREP_ERROR)
                return SCAN_ERROR;
            if (in == PREP_NO_MEMORY)
                return SCAN_NO_MEMORY;
            if (in == PREP_LOCAL)
                continue; /* nothing reached the backend */
            if (in == PREP_HOLD)
                c->input_held = 1;
            note_client_message(s, type, in != PREP_DONE);
            if (in == PREP_DONE)
                continue;
        } else {
            note_client_message(s, type, 1);
        }
        c->msg_left = len;
    }
}

/*
 * One writev toward a peer: warmpool's own bytes for it first, then the `*scan`
 * bytes of the other side's buffer that are ready. Consumes what was written.
 * Returns 1 when everything went (or there was nothing), 0 when some is left, -1 on
 * a write error.
 */
static int write_own_then_theirs(int fd, struct wp_buf *own_buf, struct wp_buf *their_buf,
                                 size_t *their_scan)
{
    struct iovec iov[2];
    int n = 0;
    size_t own = buf_unread(own_buf);
    size_t theirs = their_buf ? *their_scan : 0;
    if (own)
        iov[n++] = (struct iovec){(void *)buf_head(own_buf), own};
    if (theirs)
        iov[n++] = (struct iovec){(void *)buf_head(their_buf), theirs};
    if (n == 0)
        return 1;
    ssize_t written = writev(fd, iov, n);
    if (written < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        written = 0;
    }
    size_t from_own = (size_t)written < own ? (size_t)written : own;
    buf_consume(own_buf, from_own);
    size_t from_theirs = (size_t)written - from_own;
    if (from_theirs) {
        buf_consume(their_buf, from_theirs);
        *their_scan -= from_theirs;
    }
    return (size_t)written == own + theirs;
}

int relay_flush_to_server(struct wp_server *s)
{
    struct wp_client *c = s->client;
    int done;
    if (buf_failed(&s->wbuf)) {
        s->out_of_memory = 1; /* server_close tells the client 53200 */
        return -1;
    }
    if (s->tls)
        done = tls_write(s->tls, &s->wbuf, c ? &c->rbuf : NULL, c ? &c->scan : NULL);
    else
        done = write_own_then_theirs(s->fd, &s->wbuf, c ? &c->rbuf : NULL, c ? &c->scan : NULL);
    if (done < 0)
        return -1;
    set_write_armed(s->ev_write, &s->write_armed, s->tls ? tls_write_event(s->tls, done) : !done);
    if (c)
        client_pause_read(c, !done && buf_unread(&c->rbuf) >= client_input_limit());
    return done;
}

static void protocol_violation(struct wp_client *c, const char *what)
{
    log_warn("C-%llu %s/%s@%s: protocol violation: %s", (unsigned long long)c->id, c->dbname,
             c->user, c->addr, what);
    client_send_error(c, "FATAL", "08P01", what);
}

/* PostgreSQL's answer to a message type it does not know: FATAL, to that client only. */
static void refuse_message_type(struct wp_client *c, uint8_t type)
{
    char what[64];
    snprintf(what, sizeof what, "invalid frontend message type %d", type);
    protocol_violation(c, what);
}

/*
 * A client message of an unknown type is next in the input. PostgreSQL reads in order:
 * what came before it runs and is answered, then the connection ends with FATAL. So
 * the refusal waits until the backend owes nothing and its answers reached the client;
 * answers held back for want of a Flush are asked for with one (harmless).
 */
static void refuse_bad_type_when_answered(struct wp_server *s, int may_flush)
{
    struct wp_client *c = s->client;
    if (!c || !c->bad_type)
        return;
    if (s->owed.count == 0 && s->scan == 0 && buf_unread(&s->wbuf) == 0 && c->scan == 0) {
        refuse_message_type(c, c->bad_type);
        return;
    }
    if (may_flush && s->owed.count > 0 && s->owed.unsynced) {
        relay_move_client_scanned(c, s);
        proto_put_simple(&s->wbuf, 'H');
        owed_sent(&s->owed, 'H');
    }
    if (relay_flush_to_server(s) < 0)
        server_close(s, "write to server failed");
}

/* No backend yet: decide whether the input needs one, and ask the pool. */
static int acquire_server(struct wp_client *c)
{
    uint8_t type;
    uint32_t len;
    enum proto_scan r = proto_scan_header(buf_head(&c->rbuf), buf_unread(&c->rbuf),
                                          (uint32_t)wp_rt.cfg->max_packet_size, &type, &len);
    if (r == PROTO_NEED_MORE)
        return 0;
    if (r == PROTO_BAD_LENGTH) {
        protocol_violation(c, proto_length_too_large(buf_head(&c->rbuf))
                                  ? "message too large"
                                  : "invalid message length");
        return 0;
    }
    if (type == 'X') {
        client_close(c, "client sent Terminate");
        return 0;
    }
    if (!owed_frontend_type_valid(type)) {
        refuse_message_type(c, type);
        return 0;
    }
    if (c->state == CL_WAITING)
        return 0;
    if (!pool_request_server(c->pool, c)) {
        client_pause_read(c, buf_unread(&c->rbuf) >= client_input_limit());
        return 0;
    }
    client_sync_params(c);
    return 1;
}

/* Transaction mode without a backend: answer what the registry can. 1 = wait. */
static int answer_without_server(struct wp_client *c)
{
    if (c->pool->settings.pool_mode == WP_MODE_SESSION || wp_rt.cfg->max_prepared_statements <= 0)
        return 0;
    uint8_t first = buf_unread(&c->rbuf) ? buf_head(&c->rbuf)[0] : 0;
    if (first != 'P' && first != 'D' && first != 'C')
        return 0; /* only batches that start with these can be answered here */
    int rc;
    while ((rc = prepared_answer_locally(c)) == 1)
        ;
    if (buf_unread(&c->wbuf) > 0)
        client_kick_write(c);
    return rc < 0 || c->state == CL_CLOSING || buf_unread(&c->rbuf) == 0;
}

void relay_client_input(struct wp_client *c)
{
    if (c->state == CL_CLOSING)
        return;
    if (!c->server && c->state == CL_IDLE && answer_without_server(c))
        return;
    if (!c->server && !acquire_server(c))
        return;
    struct wp_server *s = c->server;
    if (s->syncing_params) {
        /* The sync goes now; the client's input once it is answered. */
        if (relay_flush_to_server(s) < 0)
            server_close(s, "write to server failed");
        return;
    }
    if (s->cancel_pending > 0 && c->msg_left == 0) {
        /* PostgreSQL may deliver a cancel's signal late (it signals the backend and
           its process group): the next request waits until the cancel is done, so
           it cannot be the one cancelled. relay_try_release resumes it. */
        c->cancel_hold = 1;
        client_pause_read(c, buf_unread(&c->rbuf) >= client_input_limit());
        return;
    }
    enum scan_result r = scan_client(c, s);
    if (s->out_of_memory) {
        server_close(s, "out of memory");
        return;
    }
    if (r == SCAN_BAD_TYPE) {
        refuse_bad_type_when_answered(s, 1);
        return;
    }
    if (r == SCAN_ERROR || r == SCAN_TOO_LARGE) {
        protocol_violation(c, r == SCAN_ERROR ? "invalid message length" : "message too large");
        return;
    }
    if (r == SCAN_NO_MEMORY || buf_failed(&c->rbuf)) {
        log_warn("C-%llu %s/%s@%s: out of memory", (unsigned long long)c->id, c->dbname, c->user,
                 c->addr);
        client_send_error(c, "FATAL", "53200", "out of memory");
        return;
    }
    if (relay_flush_to_server(s) < 0) {
        server_close(s, "write to server failed");
        return;
    }
    if (buf_unread(&c->wbuf) > 0)
        client_kick_write(c); /* synthetic answers */
    if (c->state == CL_CLOSING)
        return;
    if (r == SCAN_MORE && c->server) {
        relay_try_release(c->server);
        return;
    }
    if (r == SCAN_TERMINATE)
        client_close(c, "client sent Terminate");
}

/* ---- server → client ---- */

static int needs_whole_body(const struct wp_server *s, uint8_t type, uint32_t len)
{
    /* An error after a query_timeout cancel is re-worded whole (timeouts.c). */
    return type == 'Z' || (type == 'S' && len <= PARAM_STATUS_MAX) ||
           (type == 'E' && s->timeout_cancel) ||
           (type == 'C' && s->swallow > 0); /* a reset's tag says what it dropped */
}

static void note_param_status(struct wp_server *s, const uint8_t *p, uint32_t len, int to_client)
{
    const char *name, *value;
    if (proto_parse_param_status(p + 5, len - 5, &name, &value) < 0)
        return;
    params_set(&s->params, name, value);
    if (to_client && s->client)
        params_set(&s->client->params, name, value);
}

/*
 * An internal query failed. Its statements ran in one implicit transaction, but which
 * of them took effect is not for warmpool to guess: the backend is closed once quiet
 * (vouch or close), except after warm statements, which prepared_warm_failed clears.
 */
static void note_internal_error(struct wp_server *s, const uint8_t *p, size_t avail, uint32_t len)
{
    s->internal_failed = 1;
    if (!s->warming)
        s->close_when_quiet = 1;
    if (avail < len)
        return;
    const char *msg = proto_error_field(p + 5, len - 5, 'M');
    log_warn("S-%llu %s/%s pid=%u: internal query failed: %s", (unsigned long long)s->id,
             s->pool->dbname, s->pool->user, s->backend_pid, msg ? msg : "(no message)");
    if (s->syncing_params && !s->sync_error) {
        s->sync_error = malloc(len);
        if (s->sync_error)
            memcpy(s->sync_error, p, len);
    }
}

/* The client's parameters could not be set: refuse it as PostgreSQL refuses an invalid
   startup parameter (FATAL, with the backend's SQLSTATE and message). */
static void refuse_client_params(struct wp_server *s)
{
    struct wp_client *c = s->client;
    const char *code = NULL, *msg = NULL;
    uint32_t len = s->sync_error ? proto_get_u32((const uint8_t *)s->sync_error + 1) : 0;
    if (len > 4) {
        code = proto_error_field((const uint8_t *)s->sync_error + 5, len - 4, 'C');
        msg = proto_error_field((const uint8_t *)s->sync_error + 5, len - 4, 'M');
    }
    if (c)
        client_send_error(c, "FATAL", code ? code : "08006",
                          msg ? msg : "could not apply the client's session parameters");
    free(s->sync_error);
    s->sync_error = NULL;
}

/* The parameter sync is answered: the client's input goes on, or the client is refused
   (both once the scan is over: refusing closes the client and then the server). */
static void note_params_synced(struct wp_server *s)
{
    s->syncing_params = 0;
    s->params_outcome = s->internal_failed ? PARAMS_REFUSE : PARAMS_RESUME;
}

static void act_on_params_outcome(struct wp_server *s)
{
    int outcome = s->params_outcome;
    s->params_outcome = 0;
    if (outcome == PARAMS_REFUSE)
        refuse_client_params(s);
    else if (s->client)
        relay_client_input(s->client);
}

/* The backend said something warmpool cannot account for: it is never lent again. */
static void note_lost(struct wp_server *s, uint8_t type)
{
    if (s->close_when_quiet)
        return;
    s->close_when_quiet = 1;
    log_warn("S-%llu %s/%s pid=%u: unexpected message '%c' from the server: closing it once "
             "its client is done",
             (unsigned long long)s->id, s->pool->dbname, s->pool->user, s->backend_pid,
             type >= 32 && type < 127 ? type : '?');
}

__attribute__((always_inline)) static inline void feed_answer(struct wp_server *s, uint8_t type)
{
    owed_answer(&s->owed, type);
    if (s->owed.lost)
        note_lost(s, type);
}

/* ReadyForQuery: settle who it answered; returns what the caller must do next. */
static enum scan_result note_ready(struct wp_server *s, const uint8_t *p)
{
    s->tx_status = (char)p[5];
    feed_answer(s, 'Z');
    if (s->swallow > 0) {
        s->swallow--;
        if (s->warming) {
            s->warming = 0;
            if (s->internal_failed)
                prepared_warm_failed(s);
        }
        if (s->syncing_params)
            note_params_synced(s);
        s->internal_failed = 0;
    } else {
        timeouts_request_answered(s);
    }
    /* Statement mode lends a backend for one statement: a transaction block cannot
       span statements, so it ends the session (as in PgBouncer). */
    if (s->client && s->swallow == 0 && s->tx_status != 'I' &&
        s->pool->settings.pool_mode == WP_MODE_STATEMENT)
        return SCAN_TX_FORBIDDEN;
    if (s->client)
        return relay_release_point(s) ? SCAN_RELEASE : SCAN_MORE;
    return (owed_settled(&s->owed) && s->swallow == 0) || s->owed.lost ? SCAN_QUIET : SCAN_MORE;
}

static void take_bytes(struct wp_server *s, uint32_t len, size_t avail, int drop)
{
    size_t take = avail < len ? avail : len;
    if (drop)
        buf_consume(&s->rbuf, take);
    else
        s->scan += take;
    s->msg_left = len - (uint32_t)take;
    s->msg_discard = drop;
}

/* Rows for a client (unless the prepared-statement layer is dropping a whole answer of
   its own), and row descriptions with no request of that layer pending (it reads them
   to answer Describe later): nothing to look at. */
static int passes_untouched(struct wp_server *s, uint8_t type)
{
    if (!s->client || s->swallow > 0 || (type != 'D' && type != 'T'))
        return 0;
    if (s->pending.count == 0) {
        if (type == 'T')
            feed_answer(s, type); /* it may answer a Describe */
        return 1;
    }
    return type == 'D' && pending_head(&s->pending)->action != PENDING_SKIP;
}

static enum scan_result scan_server(struct wp_server *s)
{
    for (;;) {
        size_t avail = buf_unread(&s->rbuf) - s->scan;
        if (avail == 0)
            return SCAN_MORE;
        const uint8_t *p = buf_head(&s->rbuf) + s->scan;
        if (s->msg_left > 0) {
            if (s->msg_discard)
                relay_move_server_scanned(s);
            size_t take = avail < s->msg_left ? avail : s->msg_left;
            take_bytes(s, s->msg_left, take, s->msg_discard);
            continue;
        }
        uint8_t type;
        uint32_t len;
        enum proto_scan r = proto_scan_header(p, avail, SERVER_MAX_MESSAGE, &type, &len);
        if (r == PROTO_NEED_MORE)
            return SCAN_MORE;
        if (r == PROTO_BAD_LENGTH || (type == 'Z' && len != 6))
            return SCAN_ERROR;
        if (passes_untouched(s, type)) {
            take_bytes(s, len, avail, 0);
            continue;
        }
        int prep = s->swallow == 0 && prepared_active(s);
        if ((needs_whole_body(s, type, len) || (prep && prepared_needs_body(type))) &&
            avail < len) {
            if (buf_reserve(&s->rbuf, len) < 0)
                return SCAN_ERROR;
            return SCAN_MORE;
        }
        int drop = s->swallow > 0 || !s->client;
        /* With nothing pending only CommandComplete and ErrorResponse concern it, and
           the ReadyForQuery that answers a counted plain Query. */
        if (prep &&
            (s->pending.count > 0 || type == 'C' || type == 'E' ||
             (type == 'Z' && s->plain_queries > 0)) &&
            prepared_server_message(s, type, p, len))
            drop = 1;
        if (s->swallow > 0 && type == 'C' && avail >= len)
            prepared_internal_command(s, p, len); /* a reset query may drop statements */
        if (!drop && type == 'E' && avail >= len && timeouts_server_error(s, p, len))
            drop = 1; /* the client got it worded for query_timeout */
        if (drop)
            relay_move_server_scanned(s);
        enum scan_result next = SCAN_MORE;
        if (!drop && s->client && type == 'E')
            stats_query_error(s->pool, &s->client->stats,
                              avail >= len ? proto_error_field(p + 5, len - 5, 'C') : NULL);
        if (!drop && s->client && type == 'Z')
            stats_query_end(s->pool, s->client, &s->client->stats, (char)p[5], stats_now_us());
        if (type == 'Z') {
            next = note_ready(s, p);
        } else {
            if (type != 'D')
                feed_answer(s, type);
            if (type == 'S' && avail >= len)
                note_param_status(s, p, len, !drop);
            else if (type == 'E' && s->swallow > 0)
                note_internal_error(s, p, avail, len);
        }
        take_bytes(s, len, avail, drop);
        if (prep && prepared_synthetic_due(s))
            prepared_emit_synthetic(s);
        if (next != SCAN_MORE)
            return next;
    }
}

int relay_flush_to_client(struct wp_client *c)
{
    struct wp_server *s = c->server;
    int done;
    if (buf_failed(&c->wbuf))
        return -1; /* part of what it was to be told is lost: it is closed */
    if (c->tls)
        done = tls_write(c->tls, &c->wbuf, s ? &s->rbuf : NULL, s ? &s->scan : NULL);
    else
        done = write_own_then_theirs(c->fd, &c->wbuf, s ? &s->rbuf : NULL, s ? &s->scan : NULL);
    if (done < 0)
        return -1;
    client_arm_write(c, c->tls ? tls_write_event(c->tls, done) : !done);
    if (s)
        server_pause_read(s, !done);
    if (done)
        buf_release_if_empty(&c->wbuf); /* rarely used: do not keep it */
    return done;
}

int relay_release_point(const struct wp_server *s)
{
    const struct wp_client *c = s->client;
    if (!c || s->pool->settings.pool_mode == WP_MODE_SESSION)
        return 0;
    return s->tx_status == 'I' && owed_settled(&s->owed) && s->swallow == 0 && !s->syncing_params &&
           s->cancel_pending == 0 && c->msg_left == 0 && c->scan == 0 &&
           /* a message still arriving will want this backend anyway */
           buf_unread(&c->rbuf) == 0 && buf_unread(&s->wbuf) == 0 && s->pending.count == 0 &&
           s->plain_queries == 0;
}

/* The client's input waited for its earlier statement names to settle; go on. */
static void resume_held_input(struct wp_server *s)
{
    struct wp_client *c = s->client;
    if (!c || !c->input_held || !prepared_may_resume(s))
        return;
    c->input_held = 0;
    relay_client_input(c);
}

static void release_server(struct wp_server *s)
{
    struct wp_client *c = s->client;
    s->release_pending = 0;
    c->input_held = 0; /* nothing is pending any more */
    c->server = NULL;
    s->client = NULL;
    client_set_state(c, CL_IDLE);
    s->pool->xact_count++;
    /* The release point requires an empty input buffer: nothing is left to relay. */
    buf_release_if_empty(&c->rbuf); /* a client between transactions holds no buffer */
    /* With TLS the client may still be sending bytes already copied out of the
       server's buffer; that must not keep the server's input paused. */
    server_pause_read(s, 0);
    pool_server_ready(s);
}

void relay_try_release(struct wp_server *s)
{
    struct wp_client *c = s->client;
    if (c && c->cancel_hold && s->cancel_pending == 0) {
        c->cancel_hold = 0;
        relay_client_input(c);
        return;
    }
    if (s->client && s->scan == 0 && buf_unread(&s->client->wbuf) == 0 && relay_release_point(s))
        release_server(s);
}

/* Returns 1 when everything scanned reached the client (or there is no client). */
static int flush_scanned(struct wp_server *s)
{
    struct wp_client *c = s->client;
    if (!c)
        return 1;
    int rc = relay_flush_to_client(c);
    if (rc < 0) {
        client_close(c, "write to client failed");
        return 0;
    }
    return rc;
}

void relay_server_input(struct wp_server *s)
{
    for (;;) {
        if (s->state == SV_CLOSED)
            return;
        enum scan_result r = scan_server(s);
        if (r == SCAN_ERROR) {
            s->out_of_memory = buf_failed(&s->rbuf) || buf_failed(&s->wbuf);
            server_close(s, s->out_of_memory ? "out of memory" : "invalid message from server");
            return;
        }
        int flushed = flush_scanned(s);
        if (s->state == SV_CLOSED)
            return;
        switch (r) {
        case SCAN_RELEASE:
            if (flushed && s->client)
                release_server(s);
            else
                s->release_pending = 1;
            return;
        case SCAN_QUIET:
            server_on_quiet(s);
            return;
        case SCAN_TX_FORBIDDEN:
            if (s->client) /* closing it rolls the backend back and returns it */
                client_send_error(s->client, "FATAL", "0A000",
                                  "transaction blocks are not allowed in statement pooling mode");
            return;
        default:
            /* A synthetic answer may have ended the transaction. */
            if (flushed)
                relay_try_release(s);
            resume_held_input(s);
            if (s->params_outcome)
                act_on_params_outcome(s);
            else if (flushed && s->client && s->client->bad_type)
                refuse_bad_type_when_answered(s, 0);
            return;
        }
    }
}

void relay_client_writable(struct wp_client *c)
{
    if (c->state == CL_CLOSING)
        return;
    int rc = relay_flush_to_client(c);
    if (rc < 0) {
        client_close(c, "write to client failed");
        return;
    }
    struct wp_server *s = c->server;
    if (rc == 0 || !s)
        return;
    if (c->bad_type) {
        refuse_bad_type_when_answered(s, 0);
        return;
    }
    if (s->release_pending) {
        relay_try_release(s);
        return;
    }
    if (buf_unread(&s->rbuf) > s->scan)
        relay_server_input(s);
}
