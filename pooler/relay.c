/*
 * relay — the I/O side of the hot path between a linked client and backend.
 *
 * Each side reads into its own buffer; relay_scan.c walks the message headers, keeps
 * the protocol accounting and marks how far the buffer is ready to go. Here the bytes
 * leave with one writev per direction, warmpool's own bytes first (bodies of other
 * messages are never copied, and may stream through in pieces), and what the scan
 * decided is carried out: a partial write pauses the other side, a release point gives
 * the backend back to the pool, a refused client is told and closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/client.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/proto.h"
#include "warmpool/relay.h"
#include "warmpool/relay_prepared.h"
#include "warmpool/relay_scan.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"

/* ---- writing ---- */

/*
 * Each direction is one conn_flush: warmpool's own bytes for the peer first, then the
 * scanned bytes of the other side's input. What could not be written holds the other
 * side: a backend's output waits for a slow client (its reading pauses); a client's
 * input waits once it fills the input cap (conn_read pauses it, this resumes it).
 */
int relay_flush_to_server(struct wp_server *s)
{
    struct wp_client *c = s->client;
    int done = conn_flush(&s->conn, c ? &c->conn : NULL);
    if (done == CONN_NO_MEMORY)
        s->out_of_memory = 1; /* server_close tells the client 53200 */
    if (done < 0)
        return -1;
    /* Input was consumed: a client whose reading paused at the input cap (conn_read)
       reads on, also when what waits is a message wanted whole beyond the cap. */
    if (c && (done || conn_unread(&c->conn) < runtime_client_input_cap()))
        conn_pause_read(&c->conn, 0);
    return done;
}

int relay_flush_to_client(struct wp_client *c)
{
    struct wp_server *s = c->server;
    /* Out of memory: part of what it was to be told is lost, and it is closed. */
    int done = conn_flush(&c->conn, s ? &s->conn : NULL);
    if (done < 0)
        return -1;
    if (s)
        conn_pause_read(&s->conn, !done);
    if (done)
        buf_release_if_empty(&c->conn.out); /* rarely used: do not keep it */
    return done;
}

/* ---- client → server ---- */

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
 * what came before is written first (answers held back for want of a Flush are asked
 * for with one, harmless), and the refusal waits until the backend owes nothing and
 * its answers reached the client. It must not wait for the last bytes written to be
 * answered: they may get no answer at all (a Flush, requests skipped after an error),
 * and then nothing would call here again. (If they are not all written yet, closing
 * the client closes the backend once quiet, see client_close.)
 */
static void refuse_bad_type_when_answered(struct wp_server *s, int may_flush)
{
    struct wp_client *c = s->client;
    if (!c || !c->bad_type_next)
        return;
    if (may_flush)
        relay_scan_flush_before_refusal(c, s);
    if (relay_flush_to_server(s) < 0) {
        server_close(s, "write to server failed");
        return;
    }
    if (relay_scan_refusal_due(s))
        refuse_message_type(c, c->bad_type);
}

/* No backend yet: decide whether the input needs one, and ask the pool. */
static int acquire_server(struct wp_client *c)
{
    uint8_t type;
    uint32_t len;
    enum proto_scan r = proto_scan_header(buf_head(&c->conn.in), buf_unread(&c->conn.in),
                                          (uint32_t)wp_rt.cfg->max_packet_size, &type, &len);
    if (r == PROTO_NEED_MORE)
        return 0;
    if (r == PROTO_BAD_LENGTH) {
        protocol_violation(c, proto_length_too_large(buf_head(&c->conn.in))
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
    if (!pool_request_server(c->pool, c))
        return 0; /* input waits (conn_read bounds it) */
    client_sync_params(c);
    return 1;
}

/* Transaction mode without a backend: answer what the registry can. 1 = wait. */
static int answer_without_server(struct wp_client *c)
{
    if (c->pool->settings.pool_mode == WP_MODE_SESSION || wp_rt.cfg->max_prepared_statements <= 0)
        return 0;
    uint8_t first = buf_unread(&c->conn.in) ? buf_head(&c->conn.in)[0] : 0;
    if (first != 'P' && first != 'D' && first != 'C')
        return 0; /* only batches that start with these can be answered here */
    int rc;
    while ((rc = prepared_answer_locally(c)) == 1)
        ;
    if (buf_unread(&c->conn.out) > 0)
        client_kick_write(c);
    return rc < 0 || c->state == CL_CLOSING || buf_unread(&c->conn.in) == 0;
}

/* Nothing of the client's is in flight and no transaction is open: a parameter sync
   may go before its next message. */
static int between_requests(const struct wp_client *c, const struct wp_server *s)
{
    return s->tx_status == 'I' && owed_settled(&s->owed) && s->swallow == 0 && !s->syncing_params &&
           c->conn.ready == 0 && c->conn.msg_left == 0;
}

/* The backend is not ready for the client's input yet: 1 = the input waits. */
static int input_waits(struct wp_client *c, struct wp_server *s)
{
    if (s->syncing_params) {
        /* The sync goes now; the client's input once it is answered. */
        if (relay_flush_to_server(s) < 0)
            server_close(s, "write to server failed");
        return 1;
    }
    if (s->cancel_pending > 0 && c->conn.msg_left == 0) {
        /* PostgreSQL may deliver a cancel's signal late (it signals the backend and
           its process group): the next request waits until the cancel is done, so
           it cannot be the one cancelled. relay_try_release resumes it. */
        c->cancel_hold = 1;
        return 1;
    }
    return 0;
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
    if (c->session.resync && between_requests(c, s))
        client_sync_params(c); /* a RESET gave the client its startup values back */
    if (input_waits(c, s))
        return;
    enum relay_scan r = relay_scan_client(c, s);
    if (s->out_of_memory) {
        server_close(s, "out of memory");
        return;
    }
    if (r == RELAY_SCAN_BAD_TYPE) {
        refuse_bad_type_when_answered(s, 1);
        return;
    }
    if (r == RELAY_SCAN_ERROR || r == RELAY_SCAN_TOO_LARGE) {
        protocol_violation(c,
                           r == RELAY_SCAN_ERROR ? "invalid message length" : "message too large");
        return;
    }
    if (r == RELAY_SCAN_NO_MEMORY || buf_failed(&c->conn.in)) {
        log_warn("C-%llu %s/%s@%s: out of memory", (unsigned long long)c->id, c->dbname, c->user,
                 c->addr);
        client_send_error(c, "FATAL", "53200", "out of memory");
        return;
    }
    if (relay_flush_to_server(s) < 0) {
        server_close(s, "write to server failed");
        return;
    }
    if (buf_unread(&c->conn.out) > 0)
        client_kick_write(c); /* synthetic answers */
    if (c->state == CL_CLOSING)
        return;
    if (r == RELAY_SCAN_MORE && c->server) {
        relay_try_release(c->server);
        return;
    }
    if (r == RELAY_SCAN_TERMINATE)
        client_close(c, "client sent Terminate");
}

/* ---- server → client ---- */

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

/* The parameter sync was answered (relay_scan.c noted how): go on, or refuse the client. */
static void act_on_params_outcome(struct wp_server *s)
{
    int outcome = s->params_outcome;
    s->params_outcome = 0;
    if (outcome == PARAMS_REFUSE)
        refuse_client_params(s);
    else if (s->client)
        relay_client_input(s->client);
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
    /* The release point requires an empty input buffer: nothing is left to relay. The
       buffer itself is given back by the janitor if the client stays idle. */
    /* With TLS the client may still be sending bytes already copied out of the
       server's buffer; that must not keep the server's input paused. */
    conn_pause_read(&s->conn, 0);
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
    if (s->client && s->conn.ready == 0 && buf_unread(&s->client->conn.out) == 0 &&
        relay_release_point(s))
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
        enum relay_scan r = relay_scan_server(s);
        if (r == RELAY_SCAN_ERROR) {
            s->out_of_memory = buf_failed(&s->conn.in) || buf_failed(&s->conn.out);
            server_close(s, s->out_of_memory ? "out of memory" : "invalid message from server");
            return;
        }
        int flushed = flush_scanned(s);
        if (s->state == SV_CLOSED)
            return;
        if (s->state == SV_IDLE && (s->close_when_quiet || s->owed.lost)) {
            /* An idle backend spoke out of turn (a FATAL before it exits, say): it must
               not be lent before its EOF arrives. */
            pool_server_lost(s->pool);
            server_close(s, "unexpected message while idle");
            return;
        }
        switch (r) {
        case RELAY_SCAN_RELEASE:
            if (flushed && s->client)
                release_server(s);
            else
                s->release_pending = 1;
            return;
        case RELAY_SCAN_QUIET:
            server_on_quiet(s);
            return;
        case RELAY_SCAN_TX_FORBIDDEN:
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
            else if (flushed && s->client && s->client->bad_type_next)
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
    if (c->bad_type_next) {
        refuse_bad_type_when_answered(s, 0);
        return;
    }
    if (s->release_pending) {
        relay_try_release(s);
        return;
    }
    if (buf_unread(&s->conn.in) > s->conn.ready) {
        relay_server_input(s);
        return;
    }
    /* An answer of warmpool's own may have ended the transaction while this client's
       socket was full (relay_server_input's default case releases only what was
       flushed): the release is due now. */
    relay_try_release(s);
}
