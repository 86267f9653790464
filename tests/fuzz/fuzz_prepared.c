/*
 * fuzz_prepared — libFuzzer target for the relay's scanner (relay_scan.c) and the
 * prepared-statement rewriter it calls (relay_prepared.c over prepared.c), driven by
 * message sequences.
 *
 * The harness links the whole pooler and plays both ends in memory: two clients of
 * one transaction-mode pool, one or two backends, no sockets. Client messages are
 * appended to the client's rbuf and scanned by relay_scan_client, the function relay.c
 * calls; the harness then does what relay.c's I/O side does with the result (the
 * scanned bytes go to the backend's wbuf, a client is refused or closed), except that
 * what reaches a backend's wbuf is read by a small PostgreSQL model that answers like
 * PostgreSQL does (statements by name, "ignore until Sync" after an error, simple-query
 * PREPARE, EXECUTE, DEALLOCATE, DISCARD ALL). Its answers are handed to
 * relay_scan_server one message per read; what the scan marks for the client moves to
 * the client's wbuf, where the harness reads it as the client would. Backends are
 * SV_CLOSED (nothing writes a socket), the pool is a calloc'd one with its own stats.
 * Backend answers may also be made to fail, or replaced by raw bytes from the input
 * (ErrorResponse without SQLSTATE, without fields, unterminated, …).
 *
 * Input: byte 0 = setup (max_prepared_statements 1..4, or 0 when its four high bits are
 * all set: the prepared layer off, the release decision then owed.c's alone; one or two
 * backends; statement mode), then operations, one byte each plus operands (see step()).
 *
 * Checked after every operation, abort() on violation:
 *   - every statement's refs equals the holders found (client name maps, backend sets,
 *     pending queues, the pool's warm list), and each held statement is either in the
 *     registry or retired; the registry's count is what its buckets hold;
 *   - no backend set exceeds max_prepared_statements, and its LRU list and count agree;
 *   - a client only ever receives well-framed messages;
 *   - unless raw backend bytes were injected: a backend's `owed` is never lost; when a
 *     backend model has read and answered all it was sent, owed_settled() is true
 *     exactly when the model owes nothing (not skipping to a Sync, no extended message
 *     since its last Sync or Query); the scan finds a release point only when the
 *     model owes nothing, is idle and has nothing left to read or say; when a backend
 *     is quiet (model and pending queue empty), every statement warmpool believes it
 *     has prepared exists in the model; a client never sees an error naming one of
 *     warmpool's `wp_<n>` statements; each client has had one ReadyForQuery per
 *     Sync/Query it sent (a Query PostgreSQL skips after an error in its batch gets
 *     none) and holds the statement names its answers say it made;
 *   - a client that sent a message type PostgreSQL does not know is refused once every
 *     request before it is answered, never earlier, and never left waiting once its
 *     backend is quiet.
 * Everything is torn down per input, so LeakSanitizer sees leaked references.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "warmpool/client.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/prepared.h"
#include "warmpool/proto.h"
#include "warmpool/relay_prepared.h"
#include "warmpool/relay_scan.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/stats.h"

#define NCLIENTS 2
#define NSERVERS 2
#define MODEL_MAX_NAMES 64

/* FUZZ_TRACE=1 in the environment prints each message between warmpool and the
   backend model, to read a finding. */
static int tracing = -1;

static void trace(const char *dir, int i, const uint8_t *msg, uint32_t len)
{
    if (tracing < 0)
        tracing = getenv("FUZZ_TRACE") != NULL;
    if (!tracing)
        return;
    fprintf(stderr, "%s S%d %c len=%u:", dir, i, msg[0], len);
    for (uint32_t j = 5; j < len && j < 70; j++)
        fputc(msg[j] >= 0x20 && msg[j] < 0x7f ? msg[j] : '.', stderr);
    fputc('\n', stderr);
}

/* ---- input cursor ---- */

struct input {
    const uint8_t *p;
    size_t left;
};

static uint8_t take(struct input *in)
{
    if (!in->left)
        return 0;
    in->left--;
    return *in->p++;
}

/* ---- the backend model ---- */

struct model {
    char *names[MODEL_MAX_NAMES];
    int nnames;
    struct wp_buf inbound; /* frontend messages warmpool sent, not yet answered */
    struct wp_buf out;     /* answers warmpool has not read yet */
    int skipping;          /* an error in the extended protocol: ignore until Sync */
    int unsynced;          /* extended messages (Flush too) since the last Sync or Query */
    char tx;               /* 'I', 'T' or 'E' */
    struct model *self;    /* models[0], to name this one in traces */
};

/*
 * What the client can tell from its answers alone: the statement names it holds, as
 * PostgreSQL would hold them for it (a Parse answered ParseComplete, a PREPARE answered
 * CommandComplete… created a name; a refused one did not). Compared with warmpool's
 * map of the client's names whenever all its requests are answered.
 */
#define VIEW_NAMES 16
#define VIEW_REQS 1024

struct view_req {
    uint8_t type;
    uint8_t effect; /* Q: 1 adds name, 2 removes it, 3 clears all; C: 2 removes name */
    char name[16];
};

struct client_view {
    int off;             /* raw client messages: no longer checked */
    int failed;          /* an extended request failed: the rest up to Sync gets no answer */
    int skipped_queries; /* Queries skipped that way: they get no ReadyForQuery */
    char names[VIEW_NAMES][16];
    int nnames;
    struct view_req reqs[VIEW_REQS];
    int head, tail;
};

struct world {
    struct wp_config cfg;
    struct wp_pool *pool;
    struct wp_client *clients[NCLIENTS];
    struct wp_server *servers[NSERVERS];
    struct model models[NSERVERS];
    int nservers;
    int raw_injected; /* raw backend bytes: the semantic checks no longer apply */
    int sent_sync[NCLIENTS], got_ready[NCLIENTS];
    int ext_open[NCLIENTS];   /* extended messages sent since the client's last Sync */
    int discarding[NCLIENTS]; /* sent DISCARD ALL: waits for its answer (see op_send) */
    /* Sent a Query inside an extended batch: with the client view off (raw messages),
       the ReadyForQuery count no longer applies (the Query may be skipped). */
    int skipped_query[NCLIENTS];
    int refused[NCLIENTS]; /* sent a message type PostgreSQL does not know: sends no more */
    int devnull;
    struct client_view views[NCLIENTS];
};

static int model_find(const struct model *m, const char *name)
{
    for (int i = 0; i < m->nnames; i++)
        if (strcmp(m->names[i], name) == 0)
            return i;
    return -1;
}

static int model_add(struct model *m, const char *name)
{
    if (model_find(m, name) >= 0 || m->nnames == MODEL_MAX_NAMES)
        return -1;
    m->names[m->nnames] = strdup(name);
    if (!m->names[m->nnames])
        abort();
    m->nnames++;
    return 0;
}

static void model_remove(struct model *m, const char *name)
{
    int i = model_find(m, name);
    if (i < 0)
        return;
    free(m->names[i]);
    m->names[i] = m->names[--m->nnames];
}

static void model_clear(struct model *m)
{
    while (m->nnames > 0)
        free(m->names[--m->nnames]);
}

static void model_free(struct model *m)
{
    model_clear(m);
    buf_free(&m->inbound);
    buf_free(&m->out);
    m->tx = 'I';
    m->skipping = m->unsynced = 0;
}

/* The model has read everything it was sent, and warmpool everything it answered. */
static int model_quiet(const struct model *m, const struct wp_server *s)
{
    return buf_unread(&m->inbound) == 0 && buf_unread(&m->out) == 0 &&
           buf_unread(&s->conn.out) == 0 && buf_unread(&s->conn.in) == 0;
}

static void model_error(struct model *m, struct wp_buf *out, const char *code, const char *what,
                        const char *name)
{
    char text[1200];
    /* Marked, so that the client-side check tells it from warmpool's own wording. */
    if (*name)
        snprintf(text, sizeof text, "prepared statement \"%.1000s\" %s (backend)", name, what);
    else
        snprintf(text, sizeof text, "%s (backend)", what);
    proto_put_error(out, "ERROR", code, text);
    m->skipping = 1;
    if (m->tx == 'T')
        m->tx = 'E';
}

static const char *word_after(const char *sql, const char *verb, char *name, size_t len)
{
    size_t vl = strlen(verb);
    if (strncmp(sql, verb, vl) != 0)
        return NULL;
    const char *p = sql + vl;
    size_t n = 0;
    while (*p == ' ') /* warmpool spaces the names it writes into an EXECUTE */
        p++;
    while (*p && *p != ' ' && *p != '(' && n + 1 < len)
        name[n++] = *p++;
    name[n] = '\0';
    return p;
}

/* PostgreSQL's error for warmpool's query that must fail: warmpool rewords it only
   when it names that column. */
#define DUPLICATE_COLUMN_ERROR "column \"warmpool_duplicate_name\" does not exist"

/* A simple Query: the whole answer through ReadyForQuery. */
static void model_query(struct model *m, struct wp_buf *out, const char *sql, int fail)
{
    char name[256];
    m->skipping = 0;
    /* PostgreSQL's order: syntax, then the failed transaction, then the rest. */
    int exits = strcmp(sql, "ROLLBACK") == 0 || strcmp(sql, "COMMIT") == 0;
    if (strstr(sql, "\n)") || (fail && (m->tx != 'E' || exits))) {
        proto_put_error(out, "ERROR", fail ? "0A000" : "42601", "syntax error (model)");
        if (m->tx == 'T')
            m->tx = 'E';
    } else if (m->tx == 'E' && !exits) {
        proto_put_error(out, "ERROR", "25P02", "current transaction is aborted");
    } else if (m->tx == 'E') {
        m->tx = 'I'; /* COMMIT of a failed transaction rolls it back */
        proto_put_command_complete(out, "ROLLBACK");
    } else if (word_after(sql, "PREPARE ", name, sizeof name)) {
        if (strstr(sql, "warmpool_duplicate_name"))
            model_error(m, out, "42703", DUPLICATE_COLUMN_ERROR, "");
        else if (model_add(m, name) < 0)
            model_error(m, out, "42P05", "already exists", name);
        else
            proto_put_command_complete(out, "PREPARE");
    } else if (word_after(sql, "EXECUTE ", name, sizeof name)) {
        if (model_find(m, name) < 0)
            model_error(m, out, "26000", "does not exist", name);
        else
            proto_put_command_complete(out, "SELECT 1");
    } else if (strcmp(sql, "DEALLOCATE ALL") == 0 || strcmp(sql, "DISCARD ALL") == 0) {
        model_clear(m);
        proto_put_command_complete(out, sql);
    } else if (word_after(sql, "DEALLOCATE ", name, sizeof name)) {
        if (model_find(m, name) < 0)
            model_error(m, out, "26000", "does not exist", name);
        else {
            model_remove(m, name);
            proto_put_command_complete(out, "DEALLOCATE");
        }
    } else if (strcmp(sql, "BEGIN") == 0) {
        m->tx = 'T';
        proto_put_command_complete(out, "BEGIN");
    } else if (strcmp(sql, "COMMIT") == 0 || strcmp(sql, "ROLLBACK") == 0) {
        m->tx = 'I';
        proto_put_command_complete(out, sql);
    } else if (strncmp(sql, "CREATE", 6) == 0) {
        proto_put_command_complete(out, "CREATE TABLE");
    } else if (*sql == '\0') {
        proto_put_simple(out, 'I');
    } else {
        static const char *const col[] = {"c"}, *const val[] = {"1"};
        proto_put_row_description(out, 1, col);
        proto_put_data_row(out, 1, val);
        proto_put_command_complete(out, "SELECT 1");
    }
    m->skipping = 0;
    proto_put_ready(out, m->tx);
}

/* Statement name of a Bind (after the portal) or Describe/Close ('S' name). */
static const char *stmt_name(uint8_t type, const uint8_t *body, size_t n)
{
    if (type == 'B') {
        const uint8_t *end = memchr(body, 0, n);
        return end ? (const char *)end + 1 : "";
    }
    return n > 1 && body[0] == 'S' ? (const char *)body + 1 : NULL;
}

/* Answer the first inbound message as PostgreSQL would; `fail` makes it fail. */
static void model_answer_one(struct model *m, struct wp_buf *out, int fail)
{
    uint8_t type;
    uint32_t len;
    if (proto_scan_header(buf_head(&m->inbound), buf_unread(&m->inbound), UINT32_MAX, &type,
                          &len) != PROTO_HEADER ||
        buf_unread(&m->inbound) < len)
        return;
    trace("->", (int)(m - m->self), buf_head(&m->inbound), len);
    /* Copy out: the message is a NUL-terminated C string world from here on. */
    size_t n = len - 5;
    char *body = malloc(n + 1);
    if (!body)
        abort();
    memcpy(body, buf_head(&m->inbound) + 5, n);
    body[n] = '\0';
    buf_consume(&m->inbound, len);
    const uint8_t *b = (const uint8_t *)body;
    /* A Sync, or a Query that is not skipped, ends the implicit transaction of the
       extended messages before it (what owed.c calls unsynced). */
    if (type == 'S' || (type == 'Q' && !m->skipping))
        m->unsynced = 0;
    else if (!m->skipping && memchr("PBDECH", type, 6))
        m->unsynced = 1;

    if (type == 'S') {
        m->skipping = 0;
        proto_put_ready(out, m->tx);
    } else if (m->skipping || type == 'H') {
        /* Ignored until Sync, a Query too (then it gets no ReadyForQuery: the harness
           expects that only for a client's Query inside its own unsynced batch, see
           count_requests); Flush has no answer. */
    } else if (type == 'Q' && (n == 0 || strlen(body) + 1 != n)) {
        /* bytes after the string's NUL (or none): PostgreSQL's pq_getmsgend refuses it */
        proto_put_error(out, "ERROR", "08P01", "invalid message format (model)");
        if (m->tx == 'T')
            m->tx = 'E';
        proto_put_ready(out, m->tx);
    } else if (type == 'Q') {
        model_query(m, out, body, fail);
    } else if (fail && type != 'C' && m->tx != 'E') {
        /* A Close never fails; in a failed transaction the 25P02 below comes first. */
        proto_put_error(out, "ERROR", "0A000", "cached plan must not change result type (model)");
        m->skipping = 1;
    } else if (type == 'P') {
        const char *query = body + strlen(body) + 1;
        if ((size_t)(query - body) <= n && strstr(query, "\n)"))
            model_error(m, out, "42601", "syntax error at or near \")\"", "");
        else if (m->tx == 'E')
            model_error(m, out, "25P02", "current transaction is aborted", "");
        else if ((size_t)(query - body) <= n && strstr(query, "warmpool_duplicate_name"))
            model_error(m, out, "42703", DUPLICATE_COLUMN_ERROR, ""); /* parse analysis */
        else if (body[0] && model_find(m, body) >= 0)
            model_error(m, out, "42P05", "already exists", body);
        else {
            if (body[0])
                model_add(m, body);
            proto_put_simple(out, '1');
        }
    } else if (type == 'B' || type == 'D') {
        const char *name = stmt_name(type, b, n);
        if (name && *name && model_find(m, name) < 0) {
            model_error(m, out, "26000", "does not exist", name);
        } else if (m->tx == 'E' && !name) {
            model_error(m, out, "34000", "portal does not exist", "");
        } else if (m->tx == 'E' && (type == 'B' || !strstr(name, "1"))) {
            /* Bind, or Describe of a statement that returns rows (see below) */
            model_error(m, out, "25P02", "current transaction is aborted", "");
        } else if (type == 'B') {
            proto_put_simple(out, '2');
        } else {
            static const uint8_t param_desc[] = {'t', 0, 0, 0, 6, 0, 0};
            static const char *const col[] = {"c"};
            if (name)
                buf_append(out, param_desc, sizeof param_desc);
            if (strstr(name ? name : "", "1"))
                proto_put_simple(out, 'n');
            else
                proto_put_row_description(out, 1, col);
        }
    } else if (type == 'E' && m->tx == 'E') {
        model_error(m, out, "34000", "portal does not exist", ""); /* gone with the abort */
    } else if (type == 'E') {
        static const char *const val[] = {"1"};
        proto_put_data_row(out, 1, val);
        proto_put_command_complete(out, "SELECT 1");
    } else if (type == 'C') {
        const char *name = stmt_name(type, b, n);
        if (name)
            model_remove(m, name);
        proto_put_simple(out, '3');
    } else {
        proto_put_error(out, "ERROR", "08P01", "unexpected message (model)");
        m->skipping = 1;
    }
    free(body);
}

/* ---- warmpool's side, as relay.c drives it ---- */

static void world_flush_to_backend(struct world *w, int i)
{
    struct wp_server *s = w->servers[i];
    if (tracing > 0 && buf_unread(&s->conn.out))
        fprintf(stderr, "   %zu bytes written to S%d\n", buf_unread(&s->conn.out), i);
    buf_append(&w->models[i].inbound, buf_head(&s->conn.out), buf_unread(&s->conn.out));
    buf_consume(&s->conn.out, buf_unread(&s->conn.out));
}

static int client_index(const struct world *w, const struct wp_client *c)
{
    for (int i = 0; i < NCLIENTS; i++)
        if (w->clients[i] == c)
            return i;
    abort();
}

static int view_find(const struct client_view *v, const char *name)
{
    for (int i = 0; i < v->nnames; i++)
        if (strcmp(v->names[i], name) == 0)
            return i;
    return -1;
}

static void view_apply(struct client_view *v, int effect, const char *name)
{
    int i = view_find(v, name);
    if (effect == 1 && i < 0 && v->nnames < VIEW_NAMES)
        snprintf(v->names[v->nnames++], sizeof v->names[0], "%s", name);
    else if (effect == 2 && i >= 0)
        memcpy(v->names[i], v->names[--v->nnames], sizeof v->names[0]);
    else if (effect == 3)
        v->nnames = 0;
}

/* A client request, from the bytes it sent. */
static void view_request(struct client_view *v, uint8_t type, const uint8_t *msg, uint32_t len)
{
    if (v->off)
        return;
    if (v->tail == VIEW_REQS) {
        v->off = 1;
        return;
    }
    struct view_req *r = &v->reqs[v->tail++];
    memset(r, 0, sizeof *r);
    r->type = type;
    const char *body = (const char *)msg + 5;
    size_t n = len - 5;
    char text[64] = "";
    if (n > 0 && memchr(body, 0, n))
        snprintf(text, sizeof text, "%s", body);
    if (type == 'P' && text[0]) {
        r->effect = 1;
        snprintf(r->name, sizeof r->name, "%s", text);
    } else if (type == 'C' && text[0] == 'S' && text[1]) {
        r->effect = 2;
        snprintf(r->name, sizeof r->name, "%s", text + 1);
    } else if (type == 'Q') {
        char word[16] = "";
        sscanf(text, "%*s %15[^ (]", word);
        if (strcmp(text, "DEALLOCATE ALL") == 0 || strcmp(text, "DISCARD ALL") == 0)
            r->effect = 3;
        else if (strncmp(text, "PREPARE ", 8) == 0)
            r->effect = 1;
        else if (strncmp(text, "DEALLOCATE ", 11) == 0)
            r->effect = 2;
        snprintf(r->name, sizeof r->name, "%s", word);
    }
}

/* Requests that get no answer leave the head: a Flush, and after an error every request
   up to the Sync (simple Queries too: PostgreSQL skips them). */
static void view_settle(struct client_view *v)
{
    while (v->head < v->tail &&
           (v->reqs[v->head].type == 'H' || (v->failed && v->reqs[v->head].type != 'S'))) {
        v->skipped_queries += v->failed && v->reqs[v->head].type == 'Q';
        v->head++;
    }
}

/* One message the client received: which request it answers, and what it did. */
static void view_answer(struct client_view *v, uint8_t t)
{
    if (v->off)
        return;
    view_settle(v);
    if (v->head == v->tail) {
        fprintf(stderr, "client got '%c' with nothing asked\n", t);
        abort();
    }
    struct view_req *r = &v->reqs[v->head];
    int done = 1;
    if (r->type == 'P' || r->type == 'C')
        view_apply(v, t == '1' || t == '3' ? r->effect : 0, r->name);
    else if (r->type == 'D')
        done = t != 't';
    else if (r->type == 'E')
        done = t != 'D';
    else if (r->type == 'S' || r->type == 'Q')
        done = t == 'Z';
    if (r->type == 'Q' && t == 'C')
        view_apply(v, r->effect, r->name);
    if (t == 'E' && r->type != 'Q' && r->type != 'S')
        v->failed = 1;
    if (t == 'Z')
        v->failed = 0;
    if (done)
        v->head++;
}

/* Client k's requests are all answered: one ReadyForQuery per Sync and per Query not
   skipped after an error (counted by the view, or, with the view off, by the rule that
   a Query sent inside an extended batch may have been skipped). */
static int ready_count_ok(const struct world *w, int k)
{
    const struct client_view *v = &w->views[k];
    if (!v->off)
        return w->got_ready[k] == w->sent_sync[k] - v->skipped_queries;
    return w->skipped_query[k] || w->got_ready[k] == w->sent_sync[k];
}

/* All the client's requests answered: warmpool's names for it are the ones it made. */
static void check_client_view(struct world *w, int k)
{
    struct client_view *v = &w->views[k];
    const struct wp_name_map *map = &w->clients[k]->stmts;
    view_settle(v);
    /* (Without the prepared layer, statement names are the backend's, not warmpool's.) */
    if (v->off || w->raw_injected || v->head != v->tail || !w->cfg.max_prepared_statements)
        return;
    int same = (int)map->count == v->nnames;
    for (int i = 0; same && i < v->nnames; i++)
        same = namemap_get(map, v->names[i]) != NULL;
    if (!same) {
        fprintf(stderr, "client %d holds %d names by its answers, warmpool %zu:", k, v->nnames,
                (size_t)map->count);
        for (int i = 0; i < v->nnames; i++)
            fprintf(stderr, " %s", v->names[i]);
        fputc('\n', stderr);
        abort();
    }
}

/* What the client received: well-framed messages; count ReadyForQuery and look at errors. */
static void client_reads(struct world *w, struct wp_client *c)
{
    int k = client_index(w, c);
    for (;;) {
        uint8_t type;
        uint32_t len;
        size_t avail = buf_unread(&c->conn.out);
        if (avail == 0)
            break;
        if (proto_scan_header(buf_head(&c->conn.out), avail, UINT32_MAX, &type, &len) != PROTO_HEADER ||
            avail < len)
            abort(); /* warmpool handed the client a broken message */
        const uint8_t *msg = buf_head(&c->conn.out);
        trace("=> client", k, msg, len);
        if (!w->raw_injected) /* raw backend bytes answer nothing in particular */
            view_answer(&w->views[k], type);
        if (type == 'Z') {
            if (len != 6)
                abort();
            w->got_ready[k]++;
        }
        if (type == 'E' && !w->raw_injected && w->cfg.max_prepared_statements > 0) {
            const char *text = proto_error_field(msg + 5, len - 5, 'M');
            const char *wp = text && strstr(text, "(backend)") ? strstr(text, "\"wp_") : NULL;
            size_t digits = wp ? strspn(wp + 4, "0123456789") : 0;
            if (digits > 0 && wp[4 + digits] == '"') { /* "wp_<n>", not a client's own */
                /* a statement warmpool believed prepared was not there */
                fprintf(stderr, "client %d got: %s\n", k, text);
                abort();
            }
        }
        buf_consume(&c->conn.out, len);
    }
}

static const char *error_code(const uint8_t *msg, uint32_t len)
{
    const char *code = proto_error_field(msg + 5, len - 5, 'C');
    return code ? code : "";
}

/*
 * warmpool replaced a backend error by its own wording (a name the client already
 * uses, or one it does not have). PostgreSQL refuses requests in a failed transaction
 * (25P02) before it looks at their names: then the client must get 25P02 too.
 */
static void check_replaced_error(struct world *w, struct wp_client *c, size_t from,
                                 const uint8_t *backend_error, uint32_t len)
{
    if (w->raw_injected || strcmp(error_code(backend_error, len), "25P02") != 0)
        return;
    const uint8_t *last = NULL;
    uint32_t last_len = 0;
    for (size_t off = from; off < buf_unread(&c->conn.out);) {
        uint8_t type;
        uint32_t n;
        if (proto_scan_header(buf_head(&c->conn.out) + off, buf_unread(&c->conn.out) - off, UINT32_MAX,
                              &type, &n) != PROTO_HEADER)
            abort();
        if (type == 'E') {
            last = buf_head(&c->conn.out) + off;
            last_len = n;
        }
        off += n;
    }
    /* A backend error passed on in its place (an injected PREPARE's, which is what
       aborted the transaction) is fine; warmpool's own wording is not. */
    const char *text = last ? proto_error_field(last + 5, last_len - 5, 'M') : NULL;
    if (text && (strstr(text, "(backend)") || strstr(text, "(model)")))
        return;
    if (last && strcmp(error_code(last, last_len), "25P02") != 0) {
        fprintf(stderr, "backend said 25P02, client got %s\n", error_code(last, last_len));
        abort();
    }
}

/* ---- warmpool's side: the real scanner, and what relay.c does around it ---- */

static void close_client(struct world *w, struct wp_client *c, int close_server);
static void replace_server(struct world *w, int i);
static int at_release_point(const struct world *w, int i);

static int server_index(const struct world *w, const struct wp_server *s)
{
    for (int i = 0; i < w->nservers; i++)
        if (w->servers[i] == s)
            return i;
    abort();
}

/* relay.c's writev toward the backend: warmpool's own bytes, then the scanned ones. */
static void write_to_backend(struct world *w, struct wp_server *s)
{
    if (s->client)
        relay_move_client_scanned(s->client, s);
    world_flush_to_backend(w, server_index(w, s));
}

/*
 * relay.c refuses a client whose next message has a type PostgreSQL does not know
 * (FATAL 08P01, then client_close). By then the client must have had every answer
 * PostgreSQL would have sent it before reading that message.
 */
static void refuse_client(struct world *w, struct wp_client *c)
{
    int k = client_index(w, c);
    struct client_view *v = &w->views[k];
    if (tracing > 0)
        fprintf(stderr, "-- client %d refused for message type %d\n", k, c->bad_type);
    client_reads(w, c);
    view_settle(v);
    if (!w->raw_injected && ((!v->off && v->head != v->tail) || !ready_count_ok(w, k))) {
        fprintf(stderr, "client %d refused before its answers: %d Sync/Query, %d ReadyForQuery\n",
                k, w->sent_sync[k], w->got_ready[k]);
        abort();
    }
    close_client(w, c, 0);
}

/* relay.c's refuse_bad_type_when_answered. */
static void refuse_when_answered(struct world *w, struct wp_server *s, int may_flush)
{
    struct wp_client *c = s->client;
    if (!c || !c->bad_type_next)
        return;
    if (may_flush)
        relay_scan_flush_before_refusal(c, s);
    write_to_backend(w, s);
    client_reads(w, c);
    if (relay_scan_refusal_due(s))
        refuse_client(w, c);
}

/* No backend: relay.c answers what the registry can (answer_without_server), refuses
   an unknown message type at the head (acquire_server), or waits for the pool (here
   op_link). */
static void relay_without_server(struct world *w, struct wp_client *c)
{
    uint8_t first = buf_unread(&c->conn.in) ? buf_head(&c->conn.in)[0] : 0;
    if (w->cfg.max_prepared_statements > 0 && (first == 'P' || first == 'D' || first == 'C')) {
        int rc;
        while ((rc = prepared_answer_locally(c)) == 1)
            ;
        client_reads(w, c);
        if (rc < 0)
            return; /* the rest of the batch is awaited */
    }
    if (buf_unread(&c->conn.in) > 0 && !owed_frontend_type_valid(buf_head(&c->conn.in)[0]))
        refuse_client(w, c);
}

/* relay.c's relay_client_input: the real scan, then what relay.c does with its result. */
static void relay_client(struct world *w, struct wp_client *c)
{
    struct wp_server *s = c->server;
    if (!s) {
        relay_without_server(w, c);
        return;
    }
    enum relay_scan r = relay_scan_client(c, s);
    if (tracing > 0)
        fprintf(stderr, "   client %d scanned: %d%s, %zu bytes left\n", client_index(w, c), r,
                c->input_held ? " held" : "", buf_unread(&c->conn.in) - c->conn.ready);
    if (s->out_of_memory || r == RELAY_SCAN_ERROR || r == RELAY_SCAN_TOO_LARGE ||
        r == RELAY_SCAN_NO_MEMORY || r == RELAY_SCAN_TERMINATE) {
        close_client(w, c, s->out_of_memory); /* FATAL: a protocol violation, or 53200 */
        return;
    }
    if (r == RELAY_SCAN_BAD_TYPE) {
        refuse_when_answered(w, s, 1);
        return;
    }
    write_to_backend(w, s);
    client_reads(w, c);
}

/* relay.c's resume_held_input. */
static void resume_held_input(struct world *w, struct wp_server *s)
{
    struct wp_client *c = s->client;
    if (!c || !c->input_held || !prepared_may_resume(s))
        return;
    c->input_held = 0;
    relay_client(w, c);
}

/* The scan stopped at a release point: the model must owe nothing, sit idle and have
   nothing left to read or say. */
static void check_release(const struct world *w, int i)
{
    const struct model *m = &w->models[i];
    if (w->raw_injected)
        return;
    if (buf_unread(&m->inbound) || buf_unread(&m->out) || m->skipping || m->unsynced ||
        m->tx != 'I') {
        fprintf(stderr, "S%d at a release point: model has %zu bytes to read, %zu to say, "
                "skipping %d, unsynced %d, status %c\n", i, buf_unread(&m->inbound),
                buf_unread(&m->out), m->skipping, m->unsynced, m->tx);
        abort();
    }
}

/* relay.c's relay_server_input after one scan. 0 when the client or the backend was
   closed, which ends the read. */
static int after_server_scan(struct world *w, int i, enum relay_scan r)
{
    struct wp_server *s = w->servers[i];
    struct wp_client *c = s->client;
    if (r == RELAY_SCAN_ERROR) {
        if (!w->raw_injected)
            abort(); /* the model writes well-formed messages only */
        if (c)
            close_client(w, c, 1); /* server_close: the client gets FATAL 08006 */
        else
            replace_server(w, i);
        return 0;
    }
    if (c) {
        relay_move_server_scanned(s); /* the client takes all (flush_scanned) */
        client_reads(w, c);
    }
    switch (r) {
    case RELAY_SCAN_RELEASE:
        /* Lending is op_link's: the pair stays linked, as if the pool lent the same
           backend again for the client's next input (release_server clears what
           was held for it). */
        check_release(w, i);
        if (c)
            c->input_held = 0;
        return 1;
    case RELAY_SCAN_TX_FORBIDDEN:
        if (!c)
            return 1;
        close_client(w, c, 0); /* FATAL 0A000 */
        return 0;
    case RELAY_SCAN_QUIET:
        return 1;
    default:
        resume_held_input(w, s);
        if (w->servers[i] != s)
            return 0;
        if (s->client && s->client->bad_type_next)
            refuse_when_answered(w, s, 0);
        return w->servers[i] == s;
    }
}

/* The next whole message the model wrote (its length), or 0. */
static uint32_t model_next(const struct model *m, uint8_t *type)
{
    uint32_t len;
    if (proto_scan_header(buf_head(&m->out), buf_unread(&m->out), UINT32_MAX, type, &len) !=
            PROTO_HEADER ||
        buf_unread(&m->out) < len)
        return 0;
    return len;
}

/* relay.c's relay_server_input, one read per message the model wrote (raw bytes put
   in rbuf are read first). No bytes, no read: then relay.c is not called at all. */
static void relay_server(struct world *w, int i)
{
    int raw = buf_unread(&w->servers[i]->conn.in) > w->servers[i]->conn.ready;
    for (;;) {
        struct wp_server *s = w->servers[i];
        struct model *m = &w->models[i];
        uint8_t type = 0;
        uint32_t len = model_next(m, &type);
        if (len == 0 && !raw)
            return;
        raw = 0;
        if (len) {
            trace("<-", i, buf_head(&m->out), len);
            buf_append(&s->conn.in, buf_head(&m->out), len);
        }
        struct wp_client *c = s->client;
        size_t client_had = c ? buf_unread(&c->conn.out) : 0;
        enum relay_scan r = relay_scan_server(s);
        if (tracing > 0 && r != RELAY_SCAN_MORE)
            fprintf(stderr, "   S%d scanned: %d\n", i, r);
        if (type == 'E' && c && s->client == c)
            check_replaced_error(w, c, client_had, buf_head(&m->out), len);
        buf_consume(&m->out, len);
        if (!after_server_scan(w, i, r))
            return;
    }
}

static void backend_answers(struct world *w, int i, int count, int fail)
{
    struct model *m = &w->models[i];
    for (int n = 0; n < count && buf_unread(&m->inbound) > 0; n++)
        model_answer_one(m, &m->out, fail && n == 0);
    relay_server(w, i);
    /* What warmpool queued itself (e.g. DEALLOCATE ALL after a failed warm-up) goes
       out as server_kick_write would send it. */
    if (buf_unread(&w->servers[i]->conn.out))
        world_flush_to_backend(w, i);
}

/* ---- world setup and teardown ---- */

static struct wp_server *new_server(struct world *w, int i)
{
    struct wp_server *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->pool = w->pool;
    s->id = (uint64_t)i; /* names it in traces */
    s->conn.fd = w->devnull;
    s->tx_status = 'I';
    /* SV_CLOSED keeps server_kick_write from writing wbuf anywhere: the model reads it. */
    s->state = SV_CLOSED;
    serverset_init(&s->stmts);
    list_init(&s->node);
    list_push_tail(&w->pool->idle, &s->node);
    return s;
}

static void free_server(struct world *w, int i)
{
    struct wp_server *s = w->servers[i];
    prepared_save_warm(s);
    prepared_server_forget(s);
    buf_free(&s->conn.in);
    buf_free(&s->conn.out);
    owed_free(&s->owed);
    params_clear(&s->params);
    list_remove(&s->node);
    free(s);
    model_free(&w->models[i]);
    w->servers[i] = NULL;
}

/* The backend in slot i is closed; the pool connects a new one there. */
static void replace_server(struct world *w, int i)
{
    free_server(w, i);
    w->servers[i] = new_server(w, i);
    w->models[i].tx = 'I';
}

static struct wp_client *new_client(struct world *w)
{
    static const char addr[] = "fuzz";
    struct wp_client *c = calloc(1, sizeof *c + sizeof addr);
    if (!c)
        abort();
    memcpy(c->addr, addr, sizeof addr); /* the log lines name the client */
    c->dbname = w->pool->dbname;
    c->user = w->pool->user;
    c->pool = w->pool;
    c->state = CL_IDLE;
    c->conn.fd = -1;
    return c;
}

static void free_client(struct wp_client *c)
{
    stats_client_closed(c->pool, c, &c->stats); /* synthetic answers count queries */
    prepared_client_forget(c);
    params_clear(&c->params);
    params_clear(&c->startup);
    session_free(&c->session);
    buf_free(&c->conn.in);
    buf_free(&c->conn.out);
    free(c);
}

static void unlink_pair(struct wp_client *c)
{
    if (c->server)
        c->server->client = NULL;
    c->server = NULL;
    c->conn.ready = 0;
    c->input_held = 0;
}

/* Client k is a new connection. */
static void new_client_at(struct world *w, int k)
{
    w->clients[k] = new_client(w);
    w->sent_sync[k] = w->got_ready[k] = w->discarding[k] = w->ext_open[k] = 0;
    w->skipped_query[k] = w->refused[k] = 0;
    memset(&w->views[k], 0, sizeof w->views[k]);
}

/*
 * The client is closed (a protocol violation, an unknown message type, a transaction
 * block in statement mode…). server_abandon gives its backend back to the pool when it
 * owes nothing, is idle and got every byte of what the client sent; otherwise (or with
 * close_server: server_close) the backend is closed here: rolling back and draining
 * are not modelled.
 */
static void close_client(struct world *w, struct wp_client *c, int close_server)
{
    struct wp_server *s = c->server;
    int k = client_index(w, c);
    int partial = c->conn.ready > 0 || c->conn.msg_left > 0;
    unlink_pair(c);
    free_client(c);
    new_client_at(w, k);
    if (!s)
        return;
    int i = server_index(w, s);
    if (close_server || partial || s->close_when_quiet || !at_release_point(w, i))
        replace_server(w, i);
}

static void world_init(struct world *w, uint8_t setup)
{
    memset(w, 0, sizeof *w);
    w->cfg.max_prepared_statements = (setup & 0xf0) == 0xf0 ? 0 : 1 + (setup & 3);
    w->cfg.warm_prepared_statements = 2;
    w->cfg.max_packet_size = 1 << 20;
    w->cfg.pkt_buf = 4096;
    wp_rt.cfg = &w->cfg;
    list_init(&wp_rt.pools);
    list_init(&wp_rt.clients);
    if (registry_init(&wp_rt.registry) < 0)
        abort();
    w->devnull = open("/dev/null", O_WRONLY);
    w->pool = calloc(1, sizeof *w->pool);
    if (!w->pool || w->devnull < 0)
        abort();
    static char dbname[] = "db", user[] = "user";
    w->pool->dbname = dbname; /* for log lines */
    w->pool->user = user;
    /* The stats hooks the scan calls run as configured by default (top statements,
       N+1 detector); pool->stats is allocated at first use and freed in world_free. */
    w->cfg.stats_top_statements = 1000;
    w->cfg.nplus1_threshold = 10;
    w->cfg.nplus1_window_ms = 1000;
    w->cfg.nplus1_log_interval_ms = 60000;
    /* Log lines (a lost backend, a failed internal query) go nowhere unless tracing. */
    if (tracing < 0)
        tracing = getenv("FUZZ_TRACE") != NULL;
    static int log_opened;
    if (!tracing && !log_opened++)
        log_open("/dev/null");
    w->pool->settings.pool_mode = (setup & 8) ? WP_MODE_STATEMENT : WP_MODE_TRANSACTION;
    list_init(&w->pool->idle);
    list_init(&w->pool->active);
    list_init(&w->pool->busy);
    list_init(&w->pool->waiting);
    list_init(&w->pool->welcoming);
    w->nservers = 1 + ((setup >> 2) & 1);
    for (int i = 0; i < w->nservers; i++) {
        w->servers[i] = new_server(w, i);
        w->models[i].tx = 'I';
        w->models[i].self = w->models;
    }
    for (int k = 0; k < NCLIENTS; k++)
        w->clients[k] = new_client(w);
}

static void world_free(struct world *w)
{
    for (int k = 0; k < NCLIENTS; k++) {
        unlink_pair(w->clients[k]);
        free_client(w->clients[k]);
    }
    for (int i = 0; i < w->nservers; i++)
        free_server(w, i);
    prepared_pool_forget(w->pool);
    stats_pool_free(w->pool);
    free(w->pool);
    if (wp_rt.registry.count != 0)
        abort(); /* a reference nobody holds any more kept an entry alive */
    registry_free(&wp_rt.registry);
    close(w->devnull);
    buf_cache_clear();
}

/* ---- invariants ---- */

struct holder_count {
    struct wp_stmt *stmt;
    int n;
};

struct census {
    struct holder_count *v;
    int n, cap;
};

static void count_holder(struct census *cs, struct wp_stmt *stmt)
{
    for (int i = 0; i < cs->n; i++)
        if (cs->v[i].stmt == stmt) {
            cs->v[i].n++;
            return;
        }
    if (cs->n == cs->cap) {
        cs->cap = cs->cap ? cs->cap * 2 : 32;
        cs->v = realloc(cs->v, (size_t)cs->cap * sizeof *cs->v);
        if (!cs->v)
            abort();
    }
    cs->v[cs->n++] = (struct holder_count){stmt, 1};
}

static int in_registry(const struct wp_stmt *stmt)
{
    const struct wp_registry *reg = &wp_rt.registry;
    for (struct wp_stmt *e = reg->buckets[stmt->hash & (reg->nbuckets - 1)]; e; e = e->hash_next)
        if (e == stmt)
            return 1;
    return 0;
}

static int set_has(const struct wp_server_set *set, const struct wp_stmt *stmt)
{
    for (size_t b = 0; b < set->nbuckets; b++)
        for (const struct wp_set_node *n = set->buckets[b]; n; n = n->hash_next)
            if (n->stmt == stmt)
                return 1;
    return 0;
}

/* The LRU list and the hash hold the same nodes, and no more than the limit. */
static void check_server_set(const struct wp_server_set *set, struct census *cs)
{
    size_t n = 0;
    for (const struct wp_set_node *node = set->lru.lru_next; node != &set->lru;
         node = node->lru_next) {
        if (node->lru_next->lru_prev != node || !set_has(set, node->stmt) || ++n > set->count)
            abort();
        count_holder(cs, node->stmt);
    }
    if (n != set->count || set->count > (size_t)wp_rt.cfg->max_prepared_statements)
        abort();
}

static void check_references(struct world *w)
{
    struct census cs = {0};
    for (int k = 0; k < NCLIENTS; k++) {
        const struct wp_name_map *map = &w->clients[k]->stmts;
        size_t n = 0;
        for (size_t b = 0; b < map->nbuckets; b++)
            for (const struct wp_name_entry *e = map->buckets[b]; e; e = e->next, n++) {
                if (namemap_get(map, e->name) != e->stmt)
                    abort();
                count_holder(&cs, e->stmt);
            }
        if (n != map->count)
            abort();
    }
    for (int i = 0; i < w->nservers; i++) {
        struct wp_server *s = w->servers[i];
        check_server_set(&s->stmts, &cs);
        for (uint32_t j = 0; j < s->pending.count; j++) {
            struct wp_pending *item =
                &s->pending.items[(s->pending.head + j) & (s->pending.cap - 1)];
            if (item->stmt)
                count_holder(&cs, item->stmt);
        }
    }
    for (int j = 0; j < w->pool->nwarm; j++)
        count_holder(&cs, w->pool->warm[j]);
    for (int j = 0; j < cs.n; j++) {
        struct wp_stmt *stmt = cs.v[j].stmt;
        if (stmt->refs != cs.v[j].n || (!stmt->retired && !in_registry(stmt)) ||
            (stmt->retired && in_registry(stmt)))
            abort();
    }
    /* Every registry entry is held by someone, and the count is right. */
    size_t in_buckets = 0;
    for (size_t b = 0; b < wp_rt.registry.nbuckets; b++)
        for (struct wp_stmt *e = wp_rt.registry.buckets[b]; e; e = e->hash_next) {
            in_buckets++;
            int held = 0;
            for (int j = 0; j < cs.n; j++)
                held |= cs.v[j].stmt == e;
            if (!held || e->refs <= 0)
                abort();
        }
    if (in_buckets != wp_rt.registry.count)
        abort();
    free(cs.v);
}

/* What owed.c says the backend owes, against the model (see the top comment). */
static void check_owed(const struct world *w, int i)
{
    const struct wp_server *s = w->servers[i];
    const struct model *m = &w->models[i];
    if (s->owed.lost) {
        fprintf(stderr, "S%d: owed lost track of the backend\n", i);
        abort();
    }
    if (!model_quiet(m, s))
        return;
    int owes = m->skipping || m->unsynced;
    if (owed_settled(&s->owed) == owes) {
        fprintf(stderr,
                "S%d answered all: owed settled %d (count %u, unsynced %d, skipping %d), "
                "model skipping %d, unsynced %d\n",
                i, owed_settled(&s->owed), s->owed.count, s->owed.unsynced, s->owed.skipping,
                m->skipping, m->unsynced);
        abort();
    }
    const struct wp_client *c = s->client;
    if (c && c->bad_type_next) {
        fprintf(stderr, "client %d: type %d never refused, its backend is quiet\n",
                client_index(w, c), c->bad_type);
        abort();
    }
}

/* A quiet backend has every statement warmpool believes it has, its client every
   ReadyForQuery it is owed. */
static void check_quiet_backends(struct world *w)
{
    if (w->raw_injected)
        return;
    for (int i = 0; i < w->nservers; i++) {
        struct wp_server *s = w->servers[i];
        check_owed(w, i);
        if (s->pending.count || s->plain_queries || s->swallow || buf_unread(&w->models[i].inbound) ||
            buf_unread(&s->conn.out))
            continue;
        for (const struct wp_set_node *node = s->stmts.lru.lru_next; node != &s->stmts.lru;
             node = node->lru_next)
            if (model_find(&w->models[i], node->stmt->name) < 0) {
                fprintf(stderr, "S%d is quiet without %s\n", i, node->stmt->name);
                abort();
            }
        struct wp_client *c = s->client;
        if (c && !c->input_held && buf_unread(&c->conn.in) == 0) {
            int k = client_index(w, c);
            view_settle(&w->views[k]);
            if (!ready_count_ok(w, k)) {
                fprintf(stderr, "client %d: %d Sync/Query (%d skipped), %d ReadyForQuery\n", k,
                        w->sent_sync[k], w->views[k].skipped_queries, w->got_ready[k]);
                abort();
            }
        }
    }
}

/* ---- operations ---- */

static const char *const names[] = {"", "s1", "s2", "s3", "wp_1", "wp_missing"};
static const char *const queries[] = {"SELECT 1", "SELECT $1", "SELECT 2", "SELECT 1",
                                      "SELECT warmpool_duplicate_name"};
static const char *const simple[] = {
    "SELECT 1",
    "PREPARE s1 AS SELECT 1",
    "EXECUTE s1",
    "DEALLOCATE s1",
    "DEALLOCATE ALL",
    "DISCARD ALL",
    "PREPARE wp_1 AS SELECT 2",
    "EXECUTE wp_1",
    "BEGIN",
    "COMMIT",
    "CREATE TABLE t()",
    "PREPARE s2(int) AS SELECT $1",
    "EXECUTE s2(1)",
    "DEALLOCATE wp_2",
    "",
    "ROLLBACK",
};

#define PICK(list, b) list[(b) % (sizeof list / sizeof list[0])]

static void put_named(struct wp_buf *out, char type, char kind, const char *name)
{
    uint8_t h[6] = {(uint8_t)type, 0, 0, 0, 0, (uint8_t)kind};
    proto_put_u32(h + 1, (uint32_t)(4 + 1 + strlen(name) + 1));
    buf_append(out, h, 6);
    buf_append(out, name, strlen(name) + 1);
}

static void put_bind(struct wp_buf *out, const char *name)
{
    static const uint8_t tail[6] = {0, 0, 0, 0, 0, 0}; /* no formats, params, results */
    uint8_t h[5] = {'B'};
    proto_put_u32(h + 1, (uint32_t)(4 + 1 + strlen(name) + 1 + sizeof tail));
    buf_append(out, h, 5);
    buf_append(out, "", 1);
    buf_append(out, name, strlen(name) + 1);
    buf_append(out, tail, sizeof tail);
}

static void put_raw(struct wp_buf *out, struct input *in, uint8_t type)
{
    uint8_t n = take(in) & 63;
    uint8_t h[5] = {type};
    proto_put_u32(h + 1, 4u + n);
    buf_append(out, h, 5);
    for (uint8_t i = 0; i < n; i++) {
        uint8_t b = take(in);
        buf_append(out, &b, 1);
    }
}

static int sent_raw; /* client_message made a raw (possibly malformed) message */

/* A message of a type PostgreSQL does not know ('z' as in tests/faults/f09): the
   relay never forwards it and refuses the client once what came before is answered. */
static uint8_t put_unknown_type(struct wp_buf *out, uint8_t arg)
{
    static const uint8_t types[] = {'z', 'a', 'W', 0};
    uint8_t h[5] = {types[arg & 3]};
    proto_put_u32(h + 1, 4 + 4);
    buf_append(out, h, 5);
    buf_append(out, "junk", 4);
    return h[0];
}

/* A Parse that fails (a syntax error), a simple Query that PostgreSQL then skips (no
   ReadyForQuery for it), and maybe the Sync that ends the skip. */
static uint8_t put_query_in_failed_batch(struct wp_buf *out, struct input *in, uint8_t arg)
{
    uint8_t q = take(in);
    proto_put_parse(out, PICK(names, arg), "SELECT (\n)", 0, NULL);
    proto_put_query(out, PICK(simple, q));
    if (q & 0x80)
        proto_put_simple(out, 'S');
    return 'P';
}

/* One client message from the input; returns its type. */
static uint8_t client_message(struct wp_buf *out, struct input *in)
{
    uint8_t op = take(in), arg = take(in);
    switch (op % 9) {
    case 0: {
        static const uint32_t oid = 23;
        const char *q = PICK(queries, arg >> 3);
        proto_put_parse(out, PICK(names, arg), q, strchr(q, '$') ? 1 : 0, &oid);
        return 'P';
    }
    case 1:
        put_bind(out, PICK(names, arg));
        return 'B';
    case 2:
        put_named(out, 'D', (arg & 8) ? 'P' : 'S', PICK(names, arg));
        return 'D';
    case 3: {
        static const uint8_t exec[] = {'E', 0, 0, 0, 9, 0, 0, 0, 0, 0};
        buf_append(out, exec, sizeof exec);
        return 'E';
    }
    case 4:
        put_named(out, 'C', (arg & 8) ? 'P' : 'S', PICK(names, arg));
        return 'C';
    case 5:
        proto_put_simple(out, 'S');
        return 'S';
    case 6:
        /* (args from 0xf0 up were a Flush like the others before these two came) */
        if (arg >= 0xf8)
            return put_query_in_failed_batch(out, in, arg);
        if (arg >= 0xf0)
            return put_unknown_type(out, arg);
        proto_put_simple(out, 'H');
        return 'H';
    case 7:
        proto_put_query(out, PICK(simple, arg));
        return 'Q';
    default: {
        static const uint8_t types[] = {'P', 'B', 'D', 'C', 'Q', 'E'};
        uint8_t type = PICK(types, arg);
        put_raw(out, in, type);
        sent_raw = 1;
        return type;
    }
    }
}

/*
 * Count Sync/Query messages the client wrote, from its rbuf before relaying. A Query
 * inside an extended-protocol batch (no Sync since its last Parse/Bind/…) is skipped
 * by PostgreSQL after an error in that batch and then gets no ReadyForQuery (warmpool
 * drops its synthetic answer the same way): the client view counts those, and with
 * the view off the count stops applying. PostgreSQL reads nothing after a message
 * type it does not know: counting stops there, and the client sends no more.
 */
static void count_requests(struct world *w, int k, const struct wp_buf *b, size_t from)
{
    size_t off = from;
    for (;;) {
        uint8_t type;
        uint32_t len;
        if (proto_scan_header(buf_head(b) + off, buf_unread(b) - off, UINT32_MAX, &type, &len) !=
                PROTO_HEADER ||
            buf_unread(b) - off < len)
            return;
        if (!owed_frontend_type_valid(type)) {
            w->refused[k] = 1;
            return;
        }
        view_request(&w->views[k], type, buf_head(b) + off, len);
        if (type == 'S' || type == 'Q')
            w->sent_sync[k]++;
        if (type == 'Q' && w->ext_open[k])
            w->skipped_query[k] = 1;
        if (strchr("PBDECH", type))
            w->ext_open[k] = 1;
        else if (type == 'S')
            w->ext_open[k] = 0;
        off += len;
    }
}

/*
 * A client pipelining past its own DISCARD ALL is left out: warmpool learns that the
 * backend dropped its statements only from the CommandComplete, so a Bind of a name
 * sent before that answer names a statement the backend no longer has (a known
 * limitation, see README.md). Clients here wait for that answer.
 */
static void op_send(struct world *w, struct input *in, int k)
{
    struct wp_client *c = w->clients[k];
    if (w->refused[k] || (w->discarding[k] && w->got_ready[k] < w->sent_sync[k]))
        return;
    w->discarding[k] = 0;
    /* Offsets from the first unread byte: appending may move the bytes. */
    size_t from = buf_unread(&c->conn.in);
    int count = 1 + (take(in) & 7);
    for (int i = 0; i < count && !w->discarding[k]; i++) {
        size_t at = buf_unread(&c->conn.in);
        if (client_message(&c->conn.in, in) == 'Q' && buf_unread(&c->conn.in) - at == 17 &&
            memcmp(buf_head(&c->conn.in) + at + 5, "DISCARD ALL", 11) == 0)
            w->discarding[k] = 1;
    }
    if (sent_raw)
        w->views[k].off = 1;
    sent_raw = 0;
    count_requests(w, k, &c->conn.in, from);
    relay_client(w, c);
}

static int at_release_point(const struct world *w, int i)
{
    const struct wp_server *s = w->servers[i];
    const struct model *m = &w->models[i];
    /* relay.c's in_extended: not inside a client's unsynced extended batch either */
    return s->pending.count == 0 && s->plain_queries == 0 && owed_settled(&s->owed) &&
           s->swallow == 0 && s->tx_status == 'I' && !s->close_when_quiet &&
           buf_unread(&m->inbound) == 0 && buf_unread(&m->out) == 0 && !m->skipping &&
           (!s->client || (buf_unread(&s->client->conn.in) == 0 && !s->client->input_held &&
                           !w->ext_open[client_index(w, s->client)]));
}

/* Link client k to backend i, releasing what each held when both are at rest. */
static void op_link(struct world *w, int k, int i)
{
    struct wp_client *c = w->clients[k];
    struct wp_server *s = w->servers[i];
    if (c->server == s)
        return;
    if (c->server) {
        int j = 0;
        while (w->servers[j] != c->server)
            j++;
        if (!at_release_point(w, j))
            return;
    }
    if (!at_release_point(w, i))
        return; /* busy, or still warming up: the pool would not lend it */
    if (s->client)
        unlink_pair(s->client);
    unlink_pair(c);
    c->server = s;
    s->client = c;
    relay_client(w, c);
}

static void op_raw_backend(struct world *w, struct input *in, int i)
{
    static const uint8_t types[] = {'1', '2', '3', 'E', 'Z', 'T', 'n', 't', 'D', 'C', 's', 'I'};
    uint8_t pick = take(in);
    uint8_t type = PICK(types, pick);
    struct wp_buf *out = &w->servers[i]->conn.in;
    w->raw_injected = 1;
    switch (pick >> 4) {
    case 0: /* ErrorResponse without a SQLSTATE */
        buf_append(out, "E\0\0\0\x1eSERROR\0Mno sqlstate here\0\0", 31);
        break;
    case 1: /* ErrorResponse without any field */
        buf_append(out, "E\0\0\0\x05\0", 6);
        break;
    case 2: /* ErrorResponse with an unterminated field */
        buf_append(out,
                   "E\0\0\0\x0a"
                   "C0A000",
                   11);
        break;
    case 3:
        buf_append(out, "Z\0\0\0\x05", 5);
        buf_append(out, (const char *)&"ITE"[take(in) % 3], 1);
        break;
    case 4: /* CommandComplete without its terminator */
        buf_append(out,
                   "C\0\0\0\x0b"
                   "DISCARD",
                   12);
        break;
    default:
        if (type == 'Z') {
            buf_append(out, "Z\0\0\0\x05I", 6);
        } else {
            put_raw(out, in, type);
        }
        break;
    }
    relay_server(w, i);
}

static void op_close_server(struct world *w, int i)
{
    struct wp_server *s = w->servers[i];
    if (s->client)
        return; /* only idle backends are closed here */
    replace_server(w, i);
    if (prepared_warm_server(w->servers[i]))
        world_flush_to_backend(w, i);
}

static void op_client_leaves(struct world *w, int k)
{
    struct wp_client *c = w->clients[k];
    if (c->server)
        return;
    free_client(c);
    new_client_at(w, k);
}

/* With FUZZ_TRACE: what each backend owes after the operation, oldest first. */
static void trace_owed(const struct world *w)
{
    if (tracing <= 0)
        return;
    for (int i = 0; i < w->nservers; i++) {
        const struct wp_owed *o = &w->servers[i]->owed;
        fprintf(stderr, "   S%d owes [", i);
        for (uint32_t j = 0; j < o->count; j++)
            fputc(o->ring[(o->head + j) & (o->cap - 1)], stderr);
        fprintf(stderr, "]%s%s%s%s, model%s%s\n", o->unsynced ? " unsynced" : "",
                o->skipping ? " skipping" : "", o->copy_in ? " copy-in" : "",
                o->lost ? " LOST" : "", w->models[i].skipping ? " skipping" : "",
                w->models[i].unsynced ? " unsynced" : "");
    }
}

static void step(struct world *w, struct input *in)
{
    uint8_t op = take(in);
    int k = (op >> 4) & 1, i = ((op >> 5) & 1) % w->nservers;
    if (tracing > 0)
        fprintf(stderr, "-- op %d client %d backend %d\n", op & 15, k, i);
    switch (op & 15) {
    case 0:
    case 1:
    case 2:
        op_send(w, in, k);
        break;
    case 3:
    case 4:
        backend_answers(w, i, 1, 0);
        break;
    case 5:
        backend_answers(w, i, 64, 0);
        break;
    case 6:
        backend_answers(w, i, 1, 1);
        break;
    case 7:
    case 8:
        op_link(w, k, i);
        break;
    case 9:
        op_raw_backend(w, in, i);
        break;
    case 10:
        op_close_server(w, i);
        break;
    case 11:
        op_client_leaves(w, k);
        break;
    default:
        /* Answer everything on every backend (a quiet point). */
        for (int j = 0; j < w->nservers; j++)
            backend_answers(w, j, 256, 0);
        break;
    }
    trace_owed(w);
    check_references(w);
    check_quiet_backends(w);
    for (int c = 0; c < NCLIENTS; c++)
        check_client_view(w, c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    struct world w;
    struct input in = {data + 1, size - 1};
    world_init(&w, data[0]);
    while (in.left > 0)
        step(&w, &in);
    world_free(&w);
    return 0;
}
