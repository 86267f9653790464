/*
 * relay_scan — the scanning half of the relay, with no socket in it (see
 * include/warmpool/relay_scan.h): message headers, the protocol accounting and the
 * marks of what is ready for the peer. relay.c does the reading, writing, pausing and
 * releasing around it; tests/fuzz/fuzz_prepared.c calls it on in-memory buffers.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "warmpool/client.h"
#include "warmpool/config.h"
#include "warmpool/fingerprint.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/proto.h"
#include "warmpool/relay_prepared.h"
#include "warmpool/relay_scan.h"
#include "warmpool/relay_session.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/server_role.h"
#include "warmpool/session_sql.h"
#include "warmpool/sqlwords.h"
#include "warmpool/stats.h"
#include "warmpool/timeouts.h"

#define SERVER_MAX_MESSAGE 0x7fffffffu
/* ParameterStatus bodies larger than this are passed through unread. */
#define PARAM_STATUS_MAX 65536u

/* ---- scanned bytes ---- */

void relay_move_client_scanned(struct wp_client *c, struct wp_server *s)
{
    if (c->conn.ready == 0)
        return;
    buf_append(&s->conn.out, buf_head(&c->conn.in), c->conn.ready);
    buf_consume(&c->conn.in, c->conn.ready);
    c->conn.ready = 0;
}

void relay_move_server_scanned(struct wp_server *s)
{
    struct wp_client *c = s->client;
    if (s->conn.ready == 0 || !c)
        return;
    buf_append(&c->conn.out, buf_head(&s->conn.in), s->conn.ready);
    buf_consume(&s->conn.in, s->conn.ready);
    s->conn.ready = 0;
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

/* The SQL text of a whole Query or Parse (sql NULL for other messages and for a Parse
   whose name does not end inside it). */
struct client_text {
    const char *sql;
    size_t len;
};

/* The text of the whole Query or Parse at p, found once for everyone who reads it, and
   its words (sqlwords): for a Parse, SQLWORDS_SESSION also when it starts with a
   savepoint statement (relay_session_plain_parse). SQLWORDS_ALL when there is none. */
static unsigned client_text_words(uint8_t type, const uint8_t *p, uint32_t len,
                                  struct client_text *text)
{
    if (type == 'Q') {
        text->sql = (const char *)p + 5;
        text->len = len - 6;
        return sqlwords_mentions(text->sql, text->len, SQLWORDS_ALL);
    }
    const char *name = (const char *)p + 5;
    size_t name_len = strnlen(name, len - 5);
    if (name_len + 1 >= len - 5)
        return SQLWORDS_ALL;
    text->sql = name + name_len + 1;
    text->len = strnlen(text->sql, len - 5 - name_len - 1);
    unsigned words = sqlwords_mentions(text->sql, text->len, SQLWORDS_ALL);
    if (session_sql_may_be_savepoint(text->sql, text->len))
        words |= SQLWORDS_SESSION;
    return words;
}

/* stats: a request starts with its first message; Query and Parse carry the text.
   Returns the statement a whole Bind names when it looked that up and found it (the
   prepared layer needs it too), else NULL. */
static struct wp_stmt *note_request_start(struct wp_client *c, uint8_t type, const uint8_t *p,
                                          size_t avail, uint32_t len,
                                          const struct client_text *text)
{
    if (c->stats.query_started_us)
        return NULL;
    if (avail >= len && type == 'B') {
        /* A Bind of a named statement: its text and fingerprint are in the registry. The
           name is looked up only if it ends inside the message (a client's bytes). */
        const char *portal = (const char *)p + 5;
        size_t portal_len = strnlen(portal, len - 5);
        size_t room = portal_len + 1 < len - 5 ? len - 5 - portal_len - 1 : 0;
        const char *name = room ? portal + portal_len + 1 : NULL;
        struct wp_stmt *stmt =
            name && memchr(name, '\0', room) ? namemap_get(&c->stmts, name) : NULL;
        if (stmt) {
            if (!stmt->fingerprint)
                stmt->fingerprint = fingerprint_hash(stmt->query, stmt->query_len);
            stats_query_start(c->pool, &c->stats, stmt->query, stmt->query_len, stmt->fingerprint,
                              stats_now_us());
            return stmt;
        }
    } else if (type == 'Q' || type == 'P') {
        if (avail < len)
            return NULL; /* session mode streams a long text: no statistics for it */
    } else if (type != 'B' && type != 'E' && type != 'F' && type != 'D' && type != 'S') {
        return NULL;
    }
    uint64_t fp = type == 'P' ? stats_parse_fingerprint(&c->stats, text->sql, text->len) : 0;
    stats_query_start(c->pool, &c->stats, text->sql, text->len, fp, stats_now_us());
    return NULL;
}

/* What is in the buffer of the message being forwarded is ready to go. */
static void take_client_bytes(struct wp_client *c)
{
    size_t avail = buf_unread(&c->conn.in) - c->conn.ready;
    size_t take = avail < c->conn.msg_left ? avail : c->conn.msg_left;
    c->conn.ready += take;
    c->conn.msg_left -= (uint32_t)take;
}

enum relay_scan relay_scan_client(struct wp_client *c, struct wp_server *s)
{
    uint32_t max_len = (uint32_t)wp_rt.cfg->max_packet_size;
    int prep = prepared_active(s);
    for (;;) {
        size_t avail = buf_unread(&c->conn.in) - c->conn.ready;
        if (avail == 0)
            return RELAY_SCAN_MORE;
        const uint8_t *p = buf_head(&c->conn.in) + c->conn.ready;
        if (c->conn.msg_left > 0) {
            take_client_bytes(c);
            continue;
        }
        if (c->input_held || c->bad_type_next)
            return RELAY_SCAN_MORE;
        uint8_t type;
        uint32_t len;
        enum proto_scan r = proto_scan_header(p, avail, max_len, &type, &len);
        if (r == PROTO_NEED_MORE)
            return RELAY_SCAN_MORE;
        if (r == PROTO_BAD_LENGTH)
            return proto_length_too_large(p) ? RELAY_SCAN_TOO_LARGE : RELAY_SCAN_ERROR;
        if (type == 'X')
            return RELAY_SCAN_TERMINATE;
        if (!owed_frontend_type_valid(type)) {
            c->bad_type = type; /* never forwarded: the backend would die of it */
            c->bad_type_next = 1;
            return RELAY_SCAN_BAD_TYPE;
        }
        /* One pass over a whole Query's or Parse's text for both scanners' words. */
        struct client_text text = {NULL, 0};
        unsigned words = SQLWORDS_ALL;
        if ((type == 'Q' || type == 'P') && avail >= len && len > 5)
            words = client_text_words(type, p, len, &text);
        int session = relay_session_wants(c, type, p, avail, len, words);
        if (__builtin_expect(session, 0)) {
            enum relay_session_input in = relay_session_before(c, s, type, p, avail, len);
            if (in != SESSION_INPUT_GO)
                return in == SESSION_INPUT_WAIT ? RELAY_SCAN_MORE : RELAY_SCAN_NO_MEMORY;
        }
        struct wp_stmt *bound = note_request_start(c, type, p, avail, len, &text);
        int forwarded = 1;
        if (prep) {
            enum prep_input in = prepared_client_message(c, s, type, len, bound, words);
            if (in == PREP_WAIT)
                return RELAY_SCAN_MORE;
            if (in == PREP_ERROR)
                return RELAY_SCAN_ERROR;
            if (in == PREP_NO_MEMORY)
                return RELAY_SCAN_NO_MEMORY;
            if (in == PREP_LOCAL) {
                if (session)
                    relay_session_after(c, s);
                continue; /* nothing reached the backend */
            }
            if (in == PREP_HOLD)
                c->input_held = 1;
            forwarded = in != PREP_DONE; /* DONE: consumed, something else went */
        }
        note_client_message(s, type, forwarded); /* one call site: inlined */
        if (__builtin_expect(session, 0))
            relay_session_after(c, s);
        if (forwarded) {
            c->conn.msg_left = len;
            take_client_bytes(c); /* at once: one turn of the loop less */
        }
    }
}

/* ---- server → client ---- */

static int needs_whole_body(const struct wp_server *s, uint8_t type, uint32_t len)
{
    /* An error after a query_timeout cancel is re-worded whole (timeouts.c). */
    return type == 'Z' || (type == 'S' && len <= PARAM_STATUS_MAX) ||
           (type == 'E' && s->timeout_cancel) ||
           (type == 'C' && s->swallow > 0) || /* a reset's tag says what it dropped */
           (type == 'C' && s->client && s->client->session.watching); /* COMMIT, SET… */
}

/*
 * in_hot_standby or default_transaction_read_only changed: a standby promoted, a primary
 * fenced read-only by a reload. A backend that no longer fits its entry's
 * target_session_attrs is closed once its client is done (vouch or close), and the
 * pool's next connect looks for a server that fits. warmpool's own parameter sync
 * setting default_transaction_read_only is the client's wish, not the server's.
 */
static void note_role_param(struct wp_server *s, const char *name)
{
    if (s->syncing_params && strcasecmp(name, "in_hot_standby") != 0)
        return;
    const char *wanted = config_db_conn_value(s->pool->db, "target_session_attrs");
    if (s->close_when_quiet || server_role_fits(server_role_wanted(wanted), &s->params))
        return;
    s->close_when_quiet = 1;
    log_warn("S-%llu %s/%s pid=%u: the server now reports %s = %s, which does not fit "
             "target_session_attrs=%s: closing this backend once its client is done",
             (unsigned long long)s->id, s->pool->dbname, s->pool->user, s->backend_pid, name,
             params_get(&s->params, name), wanted);
    /* A promotion or demotion is the server's, for every backend on it; a client can
       SET default_transaction_read_only for its own session only. */
    if (strcasecmp(name, "in_hot_standby") == 0)
        pool_retire_host(s->pool, s->host_port, "the server's role changed");
}

static void note_param_status(struct wp_server *s, const uint8_t *p, uint32_t len, int to_client)
{
    const char *name, *value;
    if (proto_parse_param_status(p + 5, len - 5, &name, &value) < 0)
        return;
    params_set(&s->params, name, value);
    if (to_client && s->client)
        params_set(&s->client->params, name, value);
    if (server_role_param(name))
        note_role_param(s, name);
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

/* The parameter sync is answered: the client's input goes on, or the client is refused
   (both once the scan is over: refusing closes the client and then the server). */
static void note_params_synced(struct wp_server *s)
{
    s->syncing_params = 0;
    s->params_outcome = s->internal_failed ? PARAMS_REFUSE : PARAMS_RESUME;
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
static enum relay_scan note_ready(struct wp_server *s, const uint8_t *p)
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
        if (s->client && s->client->session.watching)
            relay_session_ready(s); /* settings and pins, before the release decision */
    }
    /* Statement mode lends a backend for one statement: a transaction block cannot
       span statements, so it ends the session (as in PgBouncer). */
    if (s->client && s->swallow == 0 && s->tx_status != 'I' &&
        s->pool->settings.pool_mode == WP_MODE_STATEMENT)
        return RELAY_SCAN_TX_FORBIDDEN;
    if (s->client)
        return relay_release_point(s) ? RELAY_SCAN_RELEASE : RELAY_SCAN_MORE;
    return (owed_settled(&s->owed) && s->swallow == 0) || s->owed.lost ? RELAY_SCAN_QUIET
                                                                       : RELAY_SCAN_MORE;
}

static void take_bytes(struct wp_server *s, uint32_t len, size_t avail, int drop)
{
    size_t take = avail < len ? avail : len;
    if (drop)
        buf_consume(&s->conn.in, take);
    else
        s->conn.ready += take;
    s->conn.msg_left = len - (uint32_t)take;
    s->msg_discard = drop;
}

/* A whole CommandComplete for a client, with no request of the prepared-statement layer
   pending, whose tag cannot change what statements mean: server_message would only
   feed it to owed (prepared_server_message does nothing with it, no stats or timeout
   reads it). */
static int command_passes_untouched(const struct wp_server *s, const uint8_t *p, size_t avail,
                                    uint32_t len)
{
    return s->pending.count == 0 && avail >= len && len > 5 && !prepared_tag_may_matter(p[5]);
}

/* Rows for a client (unless the prepared-statement layer is dropping a whole answer of
   its own), row descriptions with no request of that layer pending (it reads them to
   answer Describe later), and plain CommandCompletes: nothing to look at. */
static int passes_untouched(struct wp_server *s, const uint8_t *p, size_t avail, uint8_t type,
                            uint32_t len)
{
    if (!s->client || s->swallow > 0)
        return 0;
    if (type == 'C' && command_passes_untouched(s, p, avail, len) && !s->client->session.watching) {
        feed_answer(s, type);
        return 1;
    }
    if (type != 'D' && type != 'T')
        return 0;
    if (s->pending.count == 0) {
        if (type == 'T')
            feed_answer(s, type); /* it may answer a Describe */
        return 1;
    }
    return type == 'D' && pending_head(&s->pending)->action != PENDING_SKIP;
}

/* One backend message, whole if it is of a type anyone reads: who gets it, what it
   settles, then its bytes are passed or dropped. */
static enum relay_scan server_message(struct wp_server *s, const uint8_t *p, size_t avail,
                                      uint8_t type, uint32_t len, int prep)
{
    int drop = s->swallow > 0 || !s->client;
    /* With nothing pending only CommandComplete and ErrorResponse concern it, and
       the ReadyForQuery that answers a counted plain Query (counted off inline). */
    if (prep && !prepared_plain_query_ready(s, type) &&
        (s->pending.count > 0 || type == 'C' || type == 'E') &&
        prepared_server_message(s, type, p, len))
        drop = 1;
    /* The type first in each test below: most messages fail it at once. */
    if (type == 'C' && s->swallow > 0 && avail >= len) {
        prepared_internal_command(s, p, len);      /* a reset query may drop statements */
        relay_session_internal_command(s, p, len); /* and settings */
    }
    if (type == 'E' && !drop && avail >= len && timeouts_server_error(s, p, len))
        drop = 1; /* the client got it worded for query_timeout */
    if (drop)
        relay_move_server_scanned(s);
    enum relay_scan next = RELAY_SCAN_MORE;
    if (type == 'E' && !drop && s->client)
        stats_query_error(s->pool, &s->client->stats,
                          avail >= len ? proto_error_field(p + 5, len - 5, 'C') : NULL);
    if ((type == 'C' || type == 'E') && s->swallow == 0 && s->client &&
        s->client->session.watching && avail >= len) {
        if (type == 'C')
            relay_session_command(s, p, len); /* before owed settles its request */
        else
            relay_session_error(s);
    }
    if (type == 'Z') {
        if (!drop && s->client)
            stats_query_end(s->pool, s->client, &s->client->stats, (char)p[5], stats_now_us());
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
    return next;
}

enum relay_scan relay_scan_server(struct wp_server *s)
{
    for (;;) {
        size_t avail = buf_unread(&s->conn.in) - s->conn.ready;
        if (avail == 0)
            return RELAY_SCAN_MORE;
        const uint8_t *p = buf_head(&s->conn.in) + s->conn.ready;
        if (s->conn.msg_left > 0) {
            if (s->msg_discard)
                relay_move_server_scanned(s);
            size_t take = avail < s->conn.msg_left ? avail : s->conn.msg_left;
            take_bytes(s, s->conn.msg_left, take, s->msg_discard);
            continue;
        }
        uint8_t type;
        uint32_t len;
        enum proto_scan r = proto_scan_header(p, avail, SERVER_MAX_MESSAGE, &type, &len);
        if (r == PROTO_NEED_MORE)
            return RELAY_SCAN_MORE;
        if (r == PROTO_BAD_LENGTH || (type == 'Z' && len != 6))
            return RELAY_SCAN_ERROR;
        if (passes_untouched(s, p, avail, type, len)) {
            take_bytes(s, len, avail, 0);
            continue;
        }
        int prep = s->swallow == 0 && prepared_active(s);
        if ((needs_whole_body(s, type, len) || (prep && prepared_needs_body(type))) &&
            avail < len) {
            if (buf_reserve(&s->conn.in, len) < 0)
                return RELAY_SCAN_ERROR;
            return RELAY_SCAN_MORE;
        }
        enum relay_scan next = server_message(s, p, avail, type, len, prep);
        if (next != RELAY_SCAN_MORE)
            return next;
    }
}

void relay_scan_flush_before_refusal(struct wp_client *c, struct wp_server *s)
{
    if (s->owed.count == 0 || !s->owed.unsynced)
        return;
    relay_move_client_scanned(c, s);
    proto_put_simple(&s->conn.out, 'H');
    owed_sent(&s->owed, 'H');
}
