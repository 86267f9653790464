/*
 * relay_prepared — prepared statements across backends in transaction mode
 * (see include/warmpool/relay_prepared.h and docs/ARCHITECTURE.md).
 *
 * Client → backend: Parse/Bind/Describe/Close naming a statement are rewritten into
 * the backend's buffer (after moving the bytes scanned so far, to keep order), and
 * every request that the backend answers is queued. Backend → client: each answer
 * pops its request; answers to warmpool's own requests are dropped; synthetic
 * answers are emitted when their request reaches the head of the queue.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "warmpool/client.h"
#include "warmpool/fingerprint.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/prepared.h"
#include "warmpool/proto.h"
#include "warmpool/relay_scan.h"
#include "warmpool/relay_prepared.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/sqlprep.h"
#include "warmpool/sqlwords.h"
#include "warmpool/stats.h"

#define MAX_NAME 1024

/* ---- output helpers ---- */

/*
 * Will this request, once answered or dropped, change a client's names or what the
 * backend holds? Its own Parses and eviction Closes count too: if an earlier error
 * makes the backend skip them, requests pipelined behind the Sync would already have
 * been rewritten for a statement that is not there (or still is). A Sync after such a
 * request holds the client's input until it is settled.
 */
static int has_name_effect(const struct wp_pending *item)
{
    if (item->type == 'q')
        return 1; /* applied when answered */
    if (item->own_error)
        return 0;
    if (item->stmt && (item->type == 'P' || item->type == 'Q' ||
                       (item->type == 'C' && item->action == PENDING_SKIP)))
        return 1;
    return item->client_name && (item->type == 'P' || item->type == '1' || item->type == '3');
}

/*
 * Queue the answer a request expects; the item owns a reference to its stmt and its
 * client_name. Out of memory (a copy of a name, or queue room) the queue would no longer
 * match what the backend answers: the server is marked out_of_memory and relay.c closes
 * it (its client gets 53200) once the message at hand is handled.
 */
static void queue_item(struct wp_server *s, struct wp_pending *item, int copy_failed)
{
    item->name_effect = (uint8_t)has_name_effect(item);
    if (copy_failed || pending_push(&s->pending, item) < 0) {
        if (item->stmt)
            registry_unref(&wp_rt.registry, item->stmt);
        free(item->client_name);
        s->out_of_memory = 1;
        return;
    }
    s->name_effects += item->name_effect;
}

static void push(struct wp_server *s, uint8_t type, uint8_t action, struct wp_stmt *stmt,
                 const char *client_name)
{
    struct wp_pending item = {.type = type, .action = action, .stmt = stmt};
    if (stmt)
        registry_ref(stmt);
    if (client_name)
        item.client_name = strdup(client_name);
    queue_item(s, &item, client_name && !item.client_name);
}

/* Lets go of what the item holds; released once more (an eviction Close given up
   while still queued, see forget_later_evictions), it holds nothing. */
static void release_item(struct wp_server *s, struct wp_pending *item)
{
    if (item->name_effect) {
        s->name_effects--;
        item->name_effect = 0;
    }
    if (item->stmt)
        registry_unref(&wp_rt.registry, item->stmt);
    if (item->client_name) { /* rare: most items own no strings (hot path) */
        free(item->client_name);
        item->client_name = NULL;
    }
    if (item->error_reply) {
        free(item->error_reply);
        item->error_reply = NULL;
    }
    item->stmt = NULL;
}

/*
 * A Query the layer does not rewrite, with nothing pending: counted instead of queued
 * (the usual simple-protocol transaction then costs no queue traffic). Counted ones
 * precede everything queued later, so their answers come first.
 */
static void push_plain_query(struct wp_server *s)
{
    if (s->pending.count == 0)
        s->plain_queries++;
    else
        push(s, 'Q', PENDING_FORWARD, NULL, NULL);
}

/* ---- client → backend ---- */

static int put_close(struct wp_buf *out, const char *name)
{
    return proto_put_close(out, 'S', name);
}

/* Make room on the backend: Close its least recently used statements. */
static void evict_for_one_more(struct wp_server *s)
{
    int max = wp_rt.cfg->max_prepared_statements;
    while ((int)s->stmts.count >= max) {
        struct wp_stmt *victim = serverset_lru(&s->stmts);
        if (!victim)
            return;
        put_close(&s->conn.out, victim->name);
        owed_sent(&s->owed, 'C');
        push(s, 'C', PENDING_SKIP, victim, NULL); /* to put it back if skipped */
        serverset_remove(&s->stmts, &wp_rt.registry, victim);
        s->pool->prepared_evictions++;
    }
}

/* Send what creates stmt on the backend: a Parse, or for SQL-level statements a
   PREPARE query (whose whole answer, ReadyForQuery included, is then swallowed
   unless it answers the client's own PREPARE). */
static void put_prepare(struct wp_server *s, struct wp_stmt *stmt, uint8_t action,
                        const char *client_name)
{
    if (stmt->sql_level) {
        struct wp_buf sql = {0};
        buf_append(&sql, "PREPARE ", 8);
        buf_append(&sql, stmt->name, strlen(stmt->name));
        buf_append(&sql, " ", 1);
        buf_append(&sql, stmt->query, stmt->query_len);
        buf_append(&sql, "", 1);
        proto_put_query(&s->conn.out, (const char *)sql.data);
        buf_free(&sql);
        push(s, 'Q', action, stmt, client_name);
        owed_sent(&s->owed, 'Q');
    } else {
        proto_put_parse(&s->conn.out, stmt->name, stmt->query, stmt->nparams, stmt->param_types);
        push(s, 'P', action, stmt, client_name);
        owed_sent(&s->owed, 'P');
    }
    serverset_add(&s->stmts, stmt);
    s->pool->server_parses++;
}

/* Make sure the backend has stmt; inject a Parse (answer swallowed) when it lacks it. */
static void ensure_prepared(struct wp_server *s, struct wp_stmt *stmt)
{
    stmt->uses++;
    if (serverset_touch(&s->stmts, stmt)) {
        s->pool->prepared_hits++;
        return;
    }
    evict_for_one_more(s);
    put_prepare(s, stmt, PENDING_SKIP, NULL);
    s->pool->prepared_misses++;
}

/* Emit a synthetic answer ('1' or '3') now or, when answers are pending, in turn.
   stmt and name let the answer be undone if an earlier request fails. */
static void answer_in_order(struct wp_server *s, uint8_t type, struct wp_stmt *stmt,
                            const char *client_name)
{
    push(s, type, PENDING_SYNTH, stmt, client_name);
    prepared_emit_synthetic(s);
}

/*
 * Queue a request warmpool made to fail: the client gets an error in warmpool's
 * wording instead of the backend's, with this SQLSTATE and texts[k] when the backend's
 * error names stand-in k (see own_error_index), texts[0] for the others.
 */
static void queue_own_error(struct wp_server *s, uint8_t type, const char *sqlstate,
                            const char *const texts[], int n)
{
    size_t size = 1;
    for (int i = 0; i < n; i++)
        size += strlen(texts[i]) + 1;
    char *list = malloc(size), *end = list;
    for (int i = 0; list && i < n; i++) {
        size_t len = strlen(texts[i]) + 1;
        memcpy(end, texts[i], len);
        end += len;
    }
    if (list)
        *end = '\0'; /* an empty text ends the list */
    struct wp_pending item = {
        .type = type, .action = PENDING_FORWARD, .client_name = list, .own_error = sqlstate};
    queue_item(s, &item, !list);
}

/*
 * A request the backend must fail itself (a name the client already uses, one
 * warmpool refuses), so that it aborts the transaction and skips to Sync exactly as
 * PostgreSQL would for the client's own; the client gets warmpool's error (sqlstate,
 * text) instead. The query parses but names a column that cannot exist (no FROM): it
 * fails in parse analysis, after PostgreSQL's aborted-transaction check, so in a
 * failed transaction the backend answers 25P02 as it would to the client's request.
 */
#define FAILING_COLUMN "warmpool_duplicate_name"
#define FAILING_QUERY "SELECT " FAILING_COLUMN

static void put_failing_request(struct wp_server *s, int sql_level, const char *sqlstate,
                                const char *text)
{
    if (sql_level)
        proto_put_query(&s->conn.out, "PREPARE wp_duplicate AS " FAILING_QUERY);
    else
        proto_put_parse(&s->conn.out, "wp_duplicate", FAILING_QUERY, 0, NULL);
    owed_sent(&s->owed, sql_level ? 'Q' : 'P');
    queue_own_error(s, sql_level ? 'Q' : 'P', sqlstate, &text, 1);
}

static void put_duplicate_error(struct wp_server *s, int sql_level, const char *client_name)
{
    char text[MAX_NAME + 64];
    snprintf(text, sizeof text, "prepared statement \"%.*s\" already exists", MAX_NAME,
             client_name);
    put_failing_request(s, sql_level, "42P05", text);
}

/* The linked backend's transaction has failed, and nothing in flight can change that:
   PostgreSQL now refuses every statement but COMMIT/ROLLBACK with 25P02. */
static int tx_failed(const struct wp_server *s)
{
    return s->tx_status == 'E' && s->pending.count == 0 && s->plain_queries == 0 && s->swallow == 0;
}

/* Might this query be COMMIT/ROLLBACK, which PostgreSQL still parses in a failed
   transaction? A leading comment counts as maybe. */
static int may_end_transaction(const char *query, size_t len)
{
    static const char *const words[] = {"commit", "end", "rollback", "abort"};
    size_t i = 0;
    while (i < len && strchr(" \t\r\n", query[i]))
        i++;
    if (i < len && (query[i] == '-' || query[i] == '/'))
        return 1;
    for (int w = 0; w < 4; w++) {
        size_t wl = strlen(words[w]);
        if (len - i >= wl && strncasecmp(query + i, words[w], wl) == 0 &&
            (len - i == wl || !(isalnum((unsigned char)query[i + wl]) || query[i + wl] == '_')))
            return 1;
    }
    return 0;
}

/*
 * A Parse warmpool would answer itself (the backend has the statement) in a failed
 * transaction: PostgreSQL refuses it with 25P02 and skips to Sync. The backend is
 * given a Parse that it refuses the same way; its error goes to the client as is.
 */
static void put_refused_parse(struct wp_server *s)
{
    proto_put_parse(&s->conn.out, "wp_duplicate", FAILING_QUERY, 0, NULL);
    owed_sent(&s->owed, 'P');
    push(s, 'P', PENDING_FORWARD, NULL, NULL);
}

/* ---- SQL text that names prepared statements ---- */

/* How the backend will read '…' strings in the client's next text: as its
   standard_conforming_strings says, unless an answer still on its way may change it. */
static enum sqlprep_strings strings_mode(const struct wp_client *c, const struct wp_server *s)
{
    const char *setting = params_get(&c->params, "standard_conforming_strings");
    if (!setting || s->owed.count > 0 || s->pending.count > 0 || s->plain_queries > 0)
        return SQLPREP_STRINGS_EITHER;
    return strcmp(setting, "off") == 0 ? SQLPREP_STRINGS_BACKSLASH : SQLPREP_STRINGS_STANDARD;
}

static const char *command_word(enum sqlprep_kind kind)
{
    return kind == SQLPREP_PREPARE ? "PREPARE" : kind == SQLPREP_EXECUTE ? "EXECUTE" : "DEALLOCATE";
}

/*
 * Why warmpool will not run this text (a simple Query's; a Parse's when in_parse), or
 * NULL. What it cannot map could reach, or leave behind, a statement of another client
 * of the backend: so it never goes there.
 */
static const char *refusal(const struct wp_server *s, const struct sqlprep_scan *scan, int in_parse,
                           char *why, size_t size)
{
    char what[128];
    if (scan->malformed)
        return NULL; /* PostgreSQL refuses all of it itself */
    if (scan->ambiguous)
        snprintf(what, sizeof what,
                 "naming prepared statements in text that "
                 "standard_conforming_strings on and off read differently");
    else if (scan->unreadable)
        snprintf(what, sizeof what, "a prepared statement name written as U&\"...\"");
    else if (in_parse && scan->first != SQLPREP_NONE)
        snprintf(what, sizeof what, "%s in the extended query protocol", command_word(scan->first));
    else if (!in_parse && scan->defines > 0 && scan->statements > 1)
        snprintf(what, sizeof what, "%s inside a multi-statement query",
                 command_word(scan->first_define));
    else if (scan->uses_overflow)
        snprintf(what, sizeof what, "more than %d EXECUTEs in one query", SQLPREP_USES_MAX);
    else
        return NULL;
    snprintf(why, size, "%s is not supported in %s pooling mode", what,
             s->pool->settings.pool_mode == WP_MODE_STATEMENT ? "statement" : "transaction");
    return why;
}

/* A Parse whose text is PREPARE, EXECUTE or DEALLOCATE: the backend would run it under
   the client's names, which are not the backend's. Refused (1) with 0A000. */
static int refuse_parse_text(struct wp_client *c, struct wp_server *s,
                             const struct wp_parse_msg *parse, unsigned text_words)
{
    if (!(text_words & SQLWORDS_PREPARED))
        return 0;
    struct sqlprep_scan scan;
    char why[256];
    sqlprep_scan(parse->query, parse->query_len, strings_mode(c, s), &scan);
    if (!refusal(s, &scan, 1, why, sizeof why))
        return 0;
    relay_move_client_scanned(c, s);
    put_failing_request(s, 0, "0A000", why);
    return 1;
}

static enum prep_input on_parse(struct wp_client *c, struct wp_server *s, const uint8_t *msg,
                                uint32_t len, unsigned text_words)
{
    struct wp_parse_msg parse;
    if (prepared_parse_parse(msg + 5, len - 5, &parse) < 0)
        return PREP_ERROR;
    parse.scope = s->pool;
    if (refuse_parse_text(c, s, &parse, text_words)) {
        buf_consume(&c->conn.in, len);
        return PREP_DONE;
    }
    if (parse.name[0] == '\0') {
        push(s, 'P', PENDING_FORWARD, NULL, NULL);
        return PREP_PASS;
    }
    relay_move_client_scanned(c, s);
    if (namemap_get(&c->stmts, parse.name)) {
        put_duplicate_error(s, 0, parse.name);
        buf_consume(&c->conn.in, len);
        return PREP_DONE;
    }
    struct wp_stmt *stmt = registry_intern(&wp_rt.registry, &parse);
    if (!stmt)
        return PREP_NO_MEMORY;
    if (tx_failed(s) && serverset_touch(&s->stmts, stmt) &&
        !may_end_transaction(parse.query, parse.query_len)) {
        put_refused_parse(s);
        registry_unref(&wp_rt.registry, stmt);
        buf_consume(&c->conn.in, len);
        return PREP_DONE;
    }
    namemap_put(&c->stmts, &wp_rt.registry, parse.name, stmt);
    s->pool->client_parses++;
    if (serverset_touch(&s->stmts, stmt)) {
        s->pool->prepared_hits++;
        answer_in_order(s, '1', stmt, parse.name);
    } else {
        evict_for_one_more(s);
        put_prepare(s, stmt, PENDING_FORWARD, parse.name);
        s->pool->prepared_misses++;
    }
    registry_unref(&wp_rt.registry, stmt);
    buf_consume(&c->conn.in, len);
    return PREP_DONE;
}

/* A statement name no backend ever has. */
#define MISSING_NAME "wp_missing"

static void push_missing(struct wp_server *s, uint8_t type, const char *client_name)
{
    char text[MAX_NAME + 64];
    const char *texts[] = {text};
    snprintf(text, sizeof text, "prepared statement \"%.*s\" does not exist", MAX_NAME,
             client_name);
    queue_own_error(s, type, "26000", texts, 1);
}

/* Append msg with the NUL-terminated name at name_off replaced by new_name: one
   reservation, then the pieces copied in place (every Bind of a named statement). */
static void put_renamed(struct wp_buf *out, const uint8_t *msg, uint32_t len, size_t name_off,
                        size_t old_len, const char *new_name)
{
    size_t new_len = strlen(new_name);
    size_t tail_len = len - name_off - old_len;
    uint32_t total = (uint32_t)(len - old_len + new_len);
    uint8_t *dst = buf_append_space(out, total);
    if (!dst)
        return; /* out is failed: never sent */
    dst[0] = msg[0];
    proto_put_u32(dst + 1, total - 1);
    memcpy(dst + 5, msg + 5, name_off - 5);
    memcpy(dst + name_off, new_name, new_len);
    memcpy(dst + name_off + new_len, msg + name_off + old_len, tail_len);
}

/* Bind (portal\0 statement\0 …) or Describe/Close ('S' statement\0). known: what the
   name maps to, if looked up already (see prepared_client_message). */
static enum prep_input on_named_use(struct wp_client *c, struct wp_server *s, uint8_t type,
                                    const uint8_t *msg, uint32_t len, size_t name_off,
                                    struct wp_stmt *known)
{
    const char *name = (const char *)msg + name_off;
    size_t name_len = strnlen(name, len - name_off);
    if (name_len == len - name_off)
        return PREP_ERROR;
    struct wp_stmt *stmt = !name_len ? NULL : known ? known : namemap_get(&c->stmts, name);
    if (!name_len) {
        push(s, type, PENDING_FORWARD, NULL, NULL);
        return PREP_PASS;
    }
    relay_move_client_scanned(c, s);
    if (!stmt) {
        /* Unknown to this client. Passed on as is, it could name another client's
           statement on this backend (wp_<id>): ask for one that cannot exist, and
           give the client PostgreSQL's error under its own name. */
        put_renamed(&s->conn.out, msg, len, name_off, name_len, MISSING_NAME);
        owed_sent(&s->owed, type);
        push_missing(s, type, name);
        buf_consume(&c->conn.in, len);
        return PREP_DONE;
    }
    ensure_prepared(s, stmt);
    s->pool->binds += type == 'B';
    put_renamed(&s->conn.out, msg, len, name_off, name_len, stmt->name);
    owed_sent(&s->owed, type);
    /* Held so that a 0A000 (result shape changed) can retire it. */
    push(s, type, PENDING_FORWARD, stmt, NULL);
    buf_consume(&c->conn.in, len);
    return PREP_DONE;
}

static enum prep_input on_close(struct wp_client *c, struct wp_server *s, const uint8_t *msg,
                                uint32_t len)
{
    if (len < 7 || msg[5] != 'S' || msg[len - 1] != '\0' || msg[6] == '\0') {
        push(s, 'C', PENDING_FORWARD, NULL, NULL);
        return PREP_PASS;
    }
    /* The client's name goes; the backend keeps the statement for others. */
    const char *name = (const char *)msg + 6;
    relay_move_client_scanned(c, s);
    struct wp_stmt *stmt = namemap_get(&c->stmts, name);
    answer_in_order(s, '3', stmt, name); /* holds stmt, to restore the name on undo */
    namemap_remove(&c->stmts, &wp_rt.registry, name);
    buf_consume(&c->conn.in, len);
    return PREP_DONE;
}

/* ---- SQL-level PREPARE / EXECUTE / DEALLOCATE ---- */

/*
 * Answer a simple query in order: CommandComplete(tag), then ReadyForQuery. What it
 * does to the client's names (PREPARE: client_name → stmt; DEALLOCATE: client_name
 * goes; DEALLOCATE ALL: all go) happens only then, and not in a failed transaction,
 * where PostgreSQL refuses it with 25P02 (nor when an earlier error in an unsynced
 * batch makes the backend skip it). Input waits for the answer (see on_query).
 */
static void answer_query_in_order(struct wp_server *s, const char *tag, struct wp_stmt *stmt,
                                  const char *client_name)
{
    struct wp_pending item = {.type = 'q', .action = PENDING_SYNTH, .stmt = stmt, .tag = tag};
    if (stmt)
        registry_ref(stmt);
    if (client_name)
        item.client_name = strdup(client_name);
    queue_item(s, &item, client_name && !item.client_name);
    prepared_emit_synthetic(s);
}

static enum prep_input on_sql_prepare(struct wp_client *c, struct wp_server *s,
                                      const struct sqlprep *sp)
{
    if (namemap_get(&c->stmts, sp->name)) {
        put_duplicate_error(s, 1, sp->name);
        return PREP_DONE;
    }
    struct wp_parse_msg key = {sp->name, sp->rest, sp->rest_len, 0, NULL, 1, s->pool};
    struct wp_stmt *stmt = registry_intern(&wp_rt.registry, &key);
    if (!stmt)
        return PREP_NO_MEMORY;
    enum prep_input result = PREP_LOCAL;
    s->pool->client_parses++;
    if (serverset_touch(&s->stmts, stmt)) {
        s->pool->prepared_hits++;
        answer_query_in_order(s, "PREPARE", stmt, sp->name);
    } else {
        namemap_put(&c->stmts, &wp_rt.registry, sp->name, stmt);
        evict_for_one_more(s);
        put_prepare(s, stmt, PENDING_FORWARD, sp->name);
        s->pool->prepared_misses++;
        result = PREP_DONE;
    }
    registry_unref(&wp_rt.registry, stmt);
    return result;
}

/* A query that is one DEALLOCATE [ALL] or PREPARE. */
static enum prep_input on_sql_command(struct wp_client *c, struct wp_server *s,
                                      const struct sqlprep *sp)
{
    switch (sp->kind) {
    case SQLPREP_PREPARE:
        return on_sql_prepare(c, s, sp);
    case SQLPREP_DEALLOCATE:
        if (!namemap_get(&c->stmts, sp->name)) {
            /* Not the client's: never a statement of another client or warmpool's. */
            proto_put_query(&s->conn.out, "DEALLOCATE " MISSING_NAME);
            owed_sent(&s->owed, 'Q');
            push_missing(s, 'Q', sp->name);
            return PREP_DONE;
        }
        answer_query_in_order(s, "DEALLOCATE", NULL, sp->name);
        return PREP_LOCAL;
    default:
        answer_query_in_order(s, "DEALLOCATE ALL", NULL, NULL);
        return PREP_LOCAL;
    }
}

/* Make sure the backend has the client's statements the query uses. SQL-level ones
   first: a Parse injected for another that fails makes the backend skip everything up
   to a Sync, and the Parses must come last for that (see end_skip_before_query). */
static void prepare_uses(struct wp_client *c, struct wp_server *s, const struct sqlprep_scan *scan)
{
    for (int sql_level = 1; sql_level >= 0; sql_level--)
        for (int i = 0; i < scan->nuses; i++) {
            const struct sqlprep_use *use = &scan->uses[i];
            struct wp_stmt *stmt = use->after_clear ? NULL : namemap_get(&c->stmts, use->name);
            int again = 0;
            for (int j = 0; j < i && !again; j++)
                again = strcmp(scan->uses[j].name, scan->uses[i].name) == 0;
            if (stmt && stmt->sql_level == sql_level && !again)
                ensure_prepared(s, stmt);
        }
}

/* Position of name among the missing names so far; added when new. */
static int missing_index(const char **missing, int *n, const char *name)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(missing[i], name) == 0)
            return i;
    missing[*n] = name;
    return (*n)++;
}

/*
 * The query with every name it EXECUTEs replaced: by the backend's name of the
 * client's statement, or, for a name the client does not hold, by MISSING_NAME_<k>, a
 * name no backend has (k tells the client's name in its error). Spaces around it keep
 * it from running into the bytes next to it: EXECUTE"y"1 must not become wp_51.
 * Returns how many missing names (listed in missing), -1 when out of memory.
 */
static int rewrite_uses(struct wp_client *c, const char *text, size_t text_len,
                        const struct sqlprep_scan *scan, struct wp_buf *sql, const char **missing)
{
    int nmissing = 0, failed = 0;
    size_t done = 0;
    for (int i = 0; i < scan->nuses; i++) {
        const struct sqlprep_use *use = &scan->uses[i];
        /* after a DEALLOCATE ALL of the same query the client holds no name */
        struct wp_stmt *stmt = use->after_clear ? NULL : namemap_get(&c->stmts, use->name);
        char stand_in[32];
        if (!stmt)
            snprintf(stand_in, sizeof stand_in, MISSING_NAME "_%d",
                     missing_index(missing, &nmissing, use->name));
        const char *name = stmt ? stmt->name : stand_in;
        failed |= buf_append(sql, text + done, use->offset - done) < 0;
        failed |= buf_append(sql, " ", 1) < 0 || buf_append(sql, name, strlen(name)) < 0 ||
                  buf_append(sql, " ", 1) < 0;
        done = use->offset + use->len;
    }
    failed |= buf_append(sql, text + done, text_len - done) < 0;
    failed |= buf_append(sql, "", 1) < 0;
    return failed ? -1 : nmissing;
}

/* EXECUTE name anywhere in the query (also in EXPLAIN, CREATE TABLE AS): the name is
   always the client's, never a statement another client left on this backend. */
static enum prep_input on_sql_uses(struct wp_client *c, struct wp_server *s, const char *text,
                                   size_t text_len, const struct sqlprep_scan *scan)
{
    prepare_uses(c, s, scan);
    struct wp_buf sql = {0};
    const char *missing[SQLPREP_USES_MAX];
    int nmissing = rewrite_uses(c, text, text_len, scan, &sql, missing);
    if (nmissing >= 0) {
        proto_put_query(&s->conn.out, (const char *)sql.data);
        owed_sent(&s->owed, 'Q');
    }
    buf_free(&sql);
    if (nmissing < 0) {
        s->out_of_memory = 1; /* relay.c closes the backend */
        return PREP_DONE;
    }
    if (nmissing == 0) {
        push(s, 'Q', PENDING_FORWARD, NULL, NULL);
        return PREP_DONE;
    }
    char texts[SQLPREP_USES_MAX][SQLPREP_NAME_MAX + 40];
    const char *list[SQLPREP_USES_MAX];
    for (int i = 0; i < nmissing; i++) {
        snprintf(texts[i], sizeof texts[i], "prepared statement \"%s\" does not exist", missing[i]);
        list[i] = texts[i];
    }
    queue_own_error(s, 'Q', "26000", list, nmissing);
    return PREP_DONE;
}

enum query_plan {
    QUERY_PASS,    /* nothing to map: forwarded as it is */
    QUERY_REFUSE,  /* 0A000 (see refusal) */
    QUERY_COMMAND, /* one PREPARE or DEALLOCATE [ALL] */
    QUERY_USES,    /* EXECUTEs to rewrite */
};

/* What to do with a query that may name prepared statements. A DEALLOCATE ALL among
   other statements goes to the backend: its answer clears the backend's set and the
   client's names (note_statement_effects). A malformed text, or one PREPARE or
   DEALLOCATE that PostgreSQL reports as a syntax error, goes as it is. */
static enum query_plan plan_query(const struct wp_server *s, const struct sqlprep_scan *scan,
                                  char *why, size_t size)
{
    if (refusal(s, scan, 0, why, size))
        return QUERY_REFUSE;
    if (scan->malformed)
        return QUERY_PASS;
    enum sqlprep_kind kind = scan->statements == 1 ? scan->command.kind : SQLPREP_NONE;
    if (kind == SQLPREP_PREPARE || kind == SQLPREP_DEALLOCATE || kind == SQLPREP_DEALLOCATE_ALL)
        return QUERY_COMMAND;
    return scan->nuses > 0 ? QUERY_USES : QUERY_PASS;
}

static enum prep_input on_query(struct wp_client *c, struct wp_server *s, const uint8_t *msg,
                                uint32_t len, unsigned query_words)
{
    const char *text = (const char *)msg + 5;
    size_t text_len = len > 5 ? len - 6 : 0;
    struct sqlprep_scan scan;
    char why[256];
    enum query_plan plan = QUERY_PASS;
    /* Most queries mention no PREPARE/EXECUTE/DEALLOCATE: the relay looked (query_words). */
    if (len > 5 && msg[len - 1] == '\0' && (query_words & SQLWORDS_PREPARED) &&
        sqlprep_mentions(text, text_len)) {
        sqlprep_scan(text, text_len, strings_mode(c, s), &scan);
        plan = plan_query(s, &scan, why, sizeof why);
    }
    if (plan == QUERY_PASS) {
        push_plain_query(s);
        return PREP_PASS;
    }
    relay_move_client_scanned(c, s);
    enum prep_input result = PREP_DONE;
    if (plan == QUERY_REFUSE)
        put_failing_request(s, 1, "0A000", why);
    else if (plan == QUERY_COMMAND)
        result = on_sql_command(c, s, &scan.command);
    else
        result = on_sql_uses(c, s, text, text_len, &scan);
    /* Like a Sync after a Parse: until the backend answers, what follows would see
       names (or be rewritten for statements) that a failure may yet undo — a PREPARE
       that fails, one injected for an EXECUTE, a DEALLOCATE refused in a failed
       transaction. */
    if (s->name_effects > 0)
        c->input_held = 1;
    buf_consume(&c->conn.in, len);
    return result;
}

/* A Query is read whole too: a PREPARE or EXECUTE may come after any ';'. */
static int needs_whole(uint8_t type)
{
    return type == 'P' || type == 'B' || type == 'D' || type == 'C' || type == 'Q';
}

enum prep_input prepared_client_message(struct wp_client *c, struct wp_server *s, uint8_t type,
                                        uint32_t len, struct wp_stmt *bound, unsigned text_words)
{
    size_t avail = buf_unread(&c->conn.in) - c->conn.ready;
    if (s->ext_skipping && type != 'S') {
        /* The backend ignores it after its error; so must the bookkeeping. */
        return PREP_PASS;
    }
    const uint8_t *msg = buf_head(&c->conn.in) + c->conn.ready;
    if (needs_whole(type) && avail < len) {
        if (buf_reserve(&c->conn.in, len - avail) < 0)
            return PREP_NO_MEMORY;
        return PREP_WAIT;
    }
    switch (type) {
    case 'P':
        return on_parse(c, s, msg, len, text_words);
    case 'B': {
        const uint8_t *portal_end = memchr(msg + 5, '\0', len - 5);
        if (!portal_end)
            return PREP_ERROR;
        return on_named_use(c, s, 'B', msg, len, (size_t)(portal_end - msg) + 1, bound);
    }
    case 'D':
        if (len < 7)
            return PREP_ERROR;
        if (msg[5] != 'S') {
            push(s, 'D', PENDING_FORWARD, NULL, NULL);
            return PREP_PASS;
        }
        return on_named_use(c, s, 'D', msg, len, 6, NULL);
    case 'C':
        return on_close(c, s, msg, len);
    case 'Q':
        return on_query(c, s, msg, len, text_words);
    case 'S':
        s->ext_skipping = 0;
        push(s, type, PENDING_FORWARD, NULL, NULL);
        /* Names created or closed before this Sync are not settled until the backend
           answers: a failure would undo them, and what follows may depend on them. */
        return s->name_effects > 0 ? PREP_HOLD : PREP_PASS;
    case 'E':
    case 'F':
        push(s, type, PENDING_FORWARD, NULL, NULL);
        return PREP_PASS;
    default:
        return PREP_PASS;
    }
}

/* ---- backend → client ---- */

/* A SQL PREPARE (of a statement the backend has) or DEALLOCATE [ALL] succeeded. */
static void apply_to_names(struct wp_client *c, const struct wp_pending *item)
{
    if (strcmp(item->tag, "PREPARE") == 0)
        namemap_put(&c->stmts, &wp_rt.registry, item->client_name, item->stmt);
    else if (strcmp(item->tag, "DEALLOCATE") == 0)
        namemap_remove(&c->stmts, &wp_rt.registry, item->client_name);
    else
        namemap_clear(&c->stmts, &wp_rt.registry);
}

static void emit(struct wp_server *s, const struct wp_pending *item)
{
    struct wp_client *c = s->client;
    if (!c)
        return;
    relay_move_server_scanned(s);
    switch (item->type) {
    case 'q':
        if (s->tx_status == 'E') {
            proto_put_error(&c->conn.out, "ERROR", "25P02",
                            "current transaction is aborted, commands ignored until end of "
                            "transaction block");
            stats_query_error(s->pool, &c->stats, "25P02");
        } else {
            apply_to_names(c, item);
            proto_put_command_complete(&c->conn.out, item->tag);
        }
        proto_put_ready(&c->conn.out, s->tx_status);
        /* relay.c ends a request's timing at the backend's ReadyForQuery; this one is
           warmpool's, and the backend sends none for the query */
        stats_query_end(s->pool, c, &c->stats, s->tx_status, stats_now_us());
        break;
    default:
        proto_put_simple(&c->conn.out, (char)item->type);
        break;
    }
}

void prepared_emit_synthetic(struct wp_server *s)
{
    struct wp_pending *head;
    if (s->plain_queries > 0)
        return; /* their answers come first */
    while ((head = pending_head(&s->pending)) && head->action == PENDING_SYNTH) {
        emit(s, head);
        release_item(s, head);
        pending_pop(&s->pending);
    }
}

/* A request the backend skipped or refused: undo what warmpool assumed of it. */
static void undo_request(struct wp_server *s, struct wp_pending *item)
{
    struct wp_client *c = s->client;
    int creates = item->type == 'P' || item->type == '1' || (item->type == 'Q' && item->stmt);
    if (creates && item->action != PENDING_SYNTH && item->stmt)
        serverset_remove(&s->stmts, &wp_rt.registry, item->stmt);
    /* An eviction the backend skipped: the statement is still there. */
    if (item->type == 'C' && item->action == PENDING_SKIP && item->stmt)
        serverset_add(&s->stmts, item->stmt);
    if (!c || !item->client_name || item->own_error || !item->stmt)
        return;
    struct wp_stmt *now = namemap_get(&c->stmts, item->client_name);
    /* A Parse that never ran leaves no name; a Close that never ran removes none. */
    if (creates && now == item->stmt)
        namemap_remove(&c->stmts, &wp_rt.registry, item->client_name);
    else if (item->type == '3' && !now)
        namemap_put(&c->stmts, &wp_rt.registry, item->client_name, item->stmt);
}

/*
 * A PREPARE query that created stmt failed (its own unit, not undone with an extended
 * batch). Eviction Closes of stmt queued behind it were made while warmpool thought
 * the backend had it: if the backend skips one, there is nothing to put back.
 */
static void forget_later_evictions(struct wp_server *s, const struct wp_stmt *stmt)
{
    for (uint32_t i = 1; i < s->pending.count; i++) {
        struct wp_pending *item = pending_at(&s->pending, i);
        if (item->stmt != stmt)
            continue;
        if (item->type == 'C' && item->action == PENDING_SKIP)
            release_item(s, item); /* its answer is still swallowed */
        else if (item->type == 'P' || (item->type == 'Q' && item->action == PENDING_SKIP))
            break; /* prepared again: later Closes are about that copy */
    }
}

/* A PREPARE query that created stmt failed: the backend does not have it. */
static void undo_prepare_query(struct wp_server *s, struct wp_pending *head)
{
    undo_request(s, head);
    if (head->stmt)
        forget_later_evictions(s, head->stmt);
}

static void pop_and_release(struct wp_server *s)
{
    struct wp_pending *head = pending_head(&s->pending);
    if (!head)
        return;
    release_item(s, head);
    pending_pop(&s->pending);
}

/*
 * Error in the extended protocol: the failed request and the rest up to Sync are gone.
 * They are undone newest first, like an undo log, so that a statement evicted and
 * prepared again within the batch (or prepared and then evicted, or a name parsed and
 * then closed) ends up exactly as it was before the batch.
 */
static void on_extended_error(struct wp_server *s)
{
    struct wp_pending_queue *q = &s->pending;
    uint32_t n = 0;
    while (n < q->count && pending_at(q, n)->type != 'S')
        n++;
    int sync_sent = n < q->count;
    for (uint32_t i = n; i-- > 0;)
        undo_request(s, pending_at(q, i));
    for (uint32_t i = 0; i < n; i++)
        pop_and_release(s);
    /* No Sync sent yet: what the client sends until then is ignored by the backend. */
    if (!sync_sent)
        s->ext_skipping = 1;
}

/*
 * warmpool's own PREPARE before a Bind, Describe or EXECUTE failed (in a transaction
 * that had already failed: 25P02). Its answer is swallowed, so the request behind it
 * fails on the missing `wp_<n>`; that request gets this error instead, which is what
 * PostgreSQL sends for the client's own statement.
 */
static void keep_error_for_next(struct wp_server *s, const uint8_t *msg, uint32_t len)
{
    if (s->pending.count < 2)
        return;
    struct wp_pending *next = pending_at(&s->pending, 1);
    free(next->error_reply);
    next->error_reply = malloc(len);
    if (next->error_reply)
        memcpy(next->error_reply, msg, len);
}

static void emit_kept_error(struct wp_server *s, const struct wp_pending *head)
{
    struct wp_client *c = s->client;
    if (!c)
        return;
    relay_move_server_scanned(s);
    uint32_t len = proto_get_u32(head->error_reply + 1) + 1;
    buf_append(&c->conn.out, head->error_reply, len);
    /* in place of the backend's error for this request, which relay.c does not see */
    stats_query_error(s->pool, &c->stats, proto_error_field(head->error_reply + 5, len - 5, 'C'));
}

/*
 * The Parse warmpool injected before a SQL EXECUTE of a protocol-level statement
 * failed: the client gets its error for the EXECUTE, but the backend now ignores
 * everything up to a Sync: the other Parses and Closes injected for that query, and
 * the query. A Sync ends that; its ReadyForQuery answers the query. Returns 0 when the
 * failed Parse was not for a query. (Input after the query is held until then.)
 */
static int end_skip_before_query(struct wp_server *s)
{
    struct wp_pending_queue *q = &s->pending;
    uint32_t n = 1;
    while (n < q->count && pending_at(q, n)->action == PENDING_SKIP &&
           (pending_at(q, n)->type == 'P' || pending_at(q, n)->type == 'C'))
        n++;
    if (n == q->count || pending_at(q, n)->type != 'Q')
        return 0;
    for (uint32_t i = n; i-- > 0;)
        undo_request(s, pending_at(q, i)); /* newest first, as on_extended_error does */
    for (uint32_t i = 0; i < n; i++)
        pop_and_release(s);
    proto_put_simple(&s->conn.out, 'S');
    owed_sent(&s->owed, 'S');
    server_kick_write(s);
    return 1;
}

/*
 * Is the backend's error the one warmpool made happen: the failing query (column
 * FAILING_COLUMN), or a name no backend has (MISSING_NAME, MISSING_NAME_<k>)? Then
 * which of the item's texts replaces it. -1 for any other error, which the client gets
 * as it is: 25P02 (PostgreSQL refuses requests in a failed transaction before it looks
 * at names), or the error of another statement of the same query.
 */
static int own_error_index(const struct wp_pending *item, const uint8_t *msg, uint32_t len)
{
    if (!item->own_error)
        return -1;
    const char *code = proto_error_field(msg + 5, len - 5, 'C');
    const char *text = proto_error_field(msg + 5, len - 5, 'M');
    if (!code || !text)
        return -1;
    if (strcmp(code, "42703") == 0 && strstr(text, FAILING_COLUMN))
        return 0;
    const char *stand_in = strcmp(code, "26000") == 0 ? strstr(text, MISSING_NAME) : NULL;
    if (!stand_in)
        return -1;
    stand_in += strlen(MISSING_NAME);
    long k = *stand_in == '_' ? strtol(stand_in + 1, NULL, 10) : 0;
    return k > 0 && k < SQLPREP_USES_MAX ? (int)k : 0;
}

/* Replace the backend's error for a request warmpool made fail on purpose. */
static void emit_own_error(struct wp_server *s, const struct wp_pending *head, int index)
{
    struct wp_client *c = s->client;
    if (!c)
        return;
    relay_move_server_scanned(s);
    const char *text = head->client_name;
    for (int i = 0; i < index && text[strlen(text) + 1] != '\0'; i++)
        text += strlen(text) + 1;
    proto_put_error(&c->conn.out, "ERROR", head->own_error, text);
    stats_query_error(s->pool, &c->stats, head->own_error);
}

static int command_clears_statements(const uint8_t *msg, uint32_t len)
{
    const char *tag = (const char *)msg + 5;
    size_t tag_len = strnlen(tag, len - 5);
    return (tag_len == 11 && memcmp(tag, "DISCARD ALL", 11) == 0) ||
           (tag_len == 14 && memcmp(tag, "DEALLOCATE ALL", 14) == 0);
}

/* Keep a Describe answer for statements, to answer later ones without a backend. */
static void collect_describe(struct wp_server *s, struct wp_pending *head, uint8_t type,
                             const uint8_t *msg, uint32_t len)
{
    if (!head->stmt)
        return;
    if (type == 't')
        buf_reset(&s->describe);
    buf_append(&s->describe, msg, len);
    if (type != 't' && buf_unread(&s->describe) > 0)
        registry_set_describe(head->stmt, buf_head(&s->describe), buf_unread(&s->describe));
}

/* Result shapes may change after DDL, or when the backend says so (0A000). */
static int invalidates_descriptions(uint8_t type, const uint8_t *msg, uint32_t len)
{
    if (type == 'C') {
        /* Bounded by the message: a tag without its NUL must not be read past. */
        const char *tag = (const char *)msg + 5;
        size_t tag_len = strnlen(tag, len - 5);
        return (tag_len >= 6 && memcmp(tag, "CREATE", 6) == 0) ||
               (tag_len >= 5 && memcmp(tag, "ALTER", 5) == 0) ||
               (tag_len >= 4 && memcmp(tag, "DROP", 4) == 0);
    }
    const char *code = proto_error_field(msg + 5, len - 5, 'C');
    return code && strcmp(code, "0A000") == 0;
}

/* DISCARD/DEALLOCATE ALL, DDL and 0A000 errors change what statements mean, whoever
   sent them. */
static void note_statement_effects(struct wp_server *s, uint8_t type, const uint8_t *msg,
                                   uint32_t len)
{
    /* Only tags that prepared_tag_may_matter; SELECT/INSERT/UPDATE/BEGIN… cost one test. */
    uint8_t tag0 = type == 'C' && len > 5 ? msg[5] : 0;
    if (tag0 == 'D' && command_clears_statements(msg, len)) {
        serverset_clear(&s->stmts, &wp_rt.registry);
        if (s->client)
            namemap_clear(&s->client->stmts, &wp_rt.registry);
    }
    /* After DDL the pool's statements may mean something else: later Parses get fresh
       entries (names clients already hold keep theirs, as PostgreSQL keeps them). */
    if (prepared_tag_may_matter(tag0) && invalidates_descriptions(type, msg, len))
        registry_retire_scope(&wp_rt.registry, s->pool);
    else if (type == 'E' && invalidates_descriptions(type, msg, len))
        registry_drop_all_describes(&wp_rt.registry);
}

/* ErrorResponse for the request at the head: 1 when the client must not see it. */
static int on_request_error(struct wp_server *s, struct wp_pending *head, const uint8_t *msg,
                            uint32_t len)
{
    if (head->stmt && (head->type == 'B' || head->type == 'D') &&
        invalidates_descriptions('E', msg, len))
        registry_retire(&wp_rt.registry, head->stmt); /* next Parse gets a fresh one */
    int own = own_error_index(head, msg, len);
    int drop = own >= 0 || head->error_reply;
    if (own >= 0)
        emit_own_error(s, head, own);
    else if (head->error_reply)
        emit_kept_error(s, head);
    if (head->type == 'Q' && head->client_name)
        undo_prepare_query(s, head); /* the client's PREPARE failed */
    if (head->type == 'Q' || head->type == 'F')
        return drop;
    if (head->action == PENDING_SKIP && head->type == 'P' && end_skip_before_query(s))
        return drop;
    on_extended_error(s);
    return drop;
}

/* ReadyForQuery: everything up to its Sync/Query/FunctionCall is answered. */
static int on_ready(struct wp_server *s)
{
    struct wp_pending *head;
    s->ext_skipping = 0;
    while ((head = pending_head(&s->pending)) && head->type != 'S' && head->type != 'Q' &&
           head->type != 'F')
        pop_and_release(s);
    int drop = head && head->action == PENDING_SKIP;
    pop_and_release(s);
    return drop;
}

int prepared_server_message(struct wp_server *s, uint8_t type, const uint8_t *msg, uint32_t len)
{
    struct wp_pending *head = pending_head(&s->pending);
    note_statement_effects(s, type, msg, len);
    if (s->plain_queries > 0) { /* an answer to a counted plain Query */
        prepared_plain_query_ready(s, type);
        return 0;
    }
    if (!head)
        return 0;
    int drop = head->action == PENDING_SKIP;
    if (head->type == 'Q' && drop && type != 'Z') {
        if (type == 'E') {
            undo_prepare_query(s, head); /* the backend does not have it after all */
            keep_error_for_next(s, msg, len);
        }
        return 1; /* warmpool's own PREPARE: its whole answer goes */
    }
    switch (type) {
    case '1':
        if (head->stmt)
            head->stmt->validated = 1;
        /* fall through */
    case '2':
    case '3':
    case 'n':
    case 's':
        if (type == 'n' && head->type == 'D')
            collect_describe(s, head, type, msg, len);
        pop_and_release(s);
        return drop;
    case 't':
        collect_describe(s, head, type, msg, len);
        return 0;
    case 'T':
        if (head->type != 'D')
            return 0;
        collect_describe(s, head, type, msg, len);
        pop_and_release(s);
        return 0;
    case 'C':
    case 'I':
        if (head->type == 'E')
            pop_and_release(s);
        return 0;
    case 'E':
        return on_request_error(s, head, msg, len);
    case 'Z':
        return on_ready(s);
    default:
        return 0;
    }
}

void prepared_server_forget(struct wp_server *s)
{
    struct wp_pending *head;
    while ((head = pending_head(&s->pending)))
        pop_and_release(s);
    pending_free(&s->pending);
    s->plain_queries = 0;
    serverset_clear(&s->stmts, &wp_rt.registry);
    buf_free(&s->describe);
}

void prepared_client_forget(struct wp_client *c)
{
    namemap_clear(&c->stmts, &wp_rt.registry);
}

/* ---- answers without a backend ---- */

#define LOCAL_BATCH_MAX 32

struct local_item {
    uint8_t type;
    const char *name;
    struct wp_stmt *stmt;
};

struct local_batch {
    int n;
    struct local_item items[LOCAL_BATCH_MAX];
};

/* A statement name defined earlier in this batch, or by the client before. */
static struct wp_stmt *batch_lookup(const struct wp_client *c, const struct local_batch *b,
                                    const char *name)
{
    for (int i = b->n - 1; i >= 0; i--)
        if (b->items[i].type == 'P' && strcmp(b->items[i].name, name) == 0)
            return b->items[i].stmt;
    return namemap_get(&c->stmts, name);
}

/* Can this message be answered from the registry? Fills item; 0 = no. */
static int plan_local(const struct wp_client *c, const struct local_batch *b, uint8_t type,
                      const uint8_t *msg, uint32_t len, struct local_item *item)
{
    *item = (struct local_item){.type = type};
    if (type == 'S' || type == 'H')
        return 1;
    if (type == 'P') {
        if (len <= 5 || msg[5] == '\0')
            return 0; /* the unnamed statement is always the backend's */
        struct wp_parse_msg parse;
        if (prepared_parse_parse(msg + 5, len - 5, &parse) < 0 || !parse.name[0])
            return 0;
        parse.scope = c->pool;
        item->stmt = registry_find(&wp_rt.registry, &parse);
        item->name = parse.name;
        /* Only statements a backend accepted; a duplicate name gets the real error. */
        return item->stmt && item->stmt->validated && !batch_lookup(c, b, parse.name);
    }
    if ((type == 'D' || type == 'C') && len >= 7 && msg[5] == 'S' && msg[len - 1] == '\0' &&
        msg[6] != '\0') {
        item->name = (const char *)msg + 6;
        item->stmt = batch_lookup(c, b, item->name);
        return type == 'C' || (item->stmt && item->stmt->describe);
    }
    return 0;
}

/* stats: a batch answered here is a request like one a backend answers (relay.c times
   those from their first message to the ReadyForQuery); a Parse first names it. */
static void start_local_request(struct wp_client *c, const struct local_batch *b)
{
    struct wp_stmt *stmt = b->items[0].type == 'P' ? b->items[0].stmt : NULL;
    if (stmt && !stmt->fingerprint)
        stmt->fingerprint = fingerprint_hash(stmt->query, stmt->query_len);
    stats_query_start(c->pool, &c->stats, stmt ? stmt->query : NULL, stmt ? stmt->query_len : 0,
                      stmt ? stmt->fingerprint : 0, stats_now_us());
}

static void run_local(struct wp_client *c, const struct local_batch *b)
{
    start_local_request(c, b);
    for (int i = 0; i < b->n; i++) {
        const struct local_item *item = &b->items[i];
        switch (item->type) {
        case 'P':
            namemap_put(&c->stmts, &wp_rt.registry, item->name, item->stmt);
            proto_put_simple(&c->conn.out, '1');
            c->pool->prepared_hits++;
            c->pool->client_parses++;
            break;
        case 'D':
            buf_append(&c->conn.out, item->stmt->describe, item->stmt->describe_len);
            break;
        case 'C':
            namemap_remove(&c->stmts, &wp_rt.registry, item->name);
            proto_put_simple(&c->conn.out, '3');
            break;
        case 'S':
            proto_put_ready(&c->conn.out, 'I');
            stats_query_end(c->pool, c, &c->stats, 'I', stats_now_us());
            break;
        default:
            break;
        }
    }
}

int prepared_answer_locally(struct wp_client *c)
{
    const uint8_t *p = buf_head(&c->conn.in);
    size_t avail = buf_unread(&c->conn.in), off = 0;
    struct local_batch batch;
    batch.n = 0; /* items are filled as they are planned (not zeroed: this runs per batch) */
    uint32_t max_len = (uint32_t)wp_rt.cfg->max_packet_size;
    while (batch.n < LOCAL_BATCH_MAX) {
        uint8_t type;
        uint32_t len;
        enum proto_scan r = proto_scan_header(p + off, avail - off, max_len, &type, &len);
        if (r == PROTO_BAD_LENGTH)
            return 0; /* the relay refuses it */
        if (r == PROTO_NEED_MORE)
            return off > 0 ? -1 : 0;
        if (type != 'P' && type != 'D' && type != 'C' && type != 'S' && type != 'H')
            return 0;
        if (avail - off < len) {
            /* Waiting is bounded by the client's input cap; past it, a backend takes
               the messages one by one. */
            if (off + len > runtime_client_input_cap() ||
                buf_reserve(&c->conn.in, len - (avail - off)) < 0)
                return 0;
            return -1; /* wait for the rest of the batch */
        }
        struct local_item *item = &batch.items[batch.n];
        if (!plan_local(c, &batch, type, p + off, len, item))
            return 0;
        batch.n++;
        off += len;
        if (type == 'S' || type == 'H') {
            /* The names point into the buffer: run before consuming it. */
            run_local(c, &batch);
            buf_consume(&c->conn.in, off);
            return 1;
        }
    }
    return 0;
}

/* ---- warm statements ---- */

static int warm_limit(void)
{
    return wp_rt.cfg->max_prepared_statements < wp_rt.cfg->warm_prepared_statements
               ? wp_rt.cfg->max_prepared_statements
               : wp_rt.cfg->warm_prepared_statements;
}

void prepared_pool_forget(struct wp_pool *pool)
{
    for (int i = 0; i < pool->nwarm; i++)
        registry_unref(&wp_rt.registry, pool->warm[i]);
    free(pool->warm);
    pool->warm = NULL;
    pool->nwarm = 0;
}

void prepared_save_warm(struct wp_server *s)
{
    int limit = warm_limit();
    if (s->stmts.count == 0 || limit <= 0)
        return;
    struct wp_stmt **list = calloc((size_t)limit, sizeof *list);
    if (!list)
        return;
    int n = 0;
    for (struct wp_set_node *node = s->stmts.lru.lru_next; node != &s->stmts.lru && n < limit;
         node = node->lru_next) {
        if (!node->stmt->validated || node->stmt->sql_level)
            continue;
        list[n++] = node->stmt;
        registry_ref(node->stmt);
    }
    if (n == 0) {
        free(list);
        return;
    }
    prepared_pool_forget(s->pool);
    s->pool->warm = list;
    s->pool->nwarm = n;
}

/* The sibling backend with the most statements shows what the pool uses. */
static struct wp_server *richest_sibling(struct wp_server *s)
{
    struct wp_server *best = NULL;
    struct wp_list *lists[] = {&s->pool->idle, &s->pool->active};
    for (int i = 0; i < 2; i++) {
        struct wp_list *pos, *tmp;
        list_for_each_safe(pos, tmp, lists[i])
        {
            struct wp_server *other = list_entry(pos, struct wp_server, node);
            if (other != s && (!best || other->stmts.count > best->stmts.count))
                best = other;
        }
    }
    return best && best->stmts.count > 0 ? best : NULL;
}

static int warm_one(struct wp_server *s, struct wp_stmt *stmt)
{
    if (!stmt->validated || stmt->sql_level || serverset_touch(&s->stmts, stmt))
        return 0;
    proto_put_parse(&s->conn.out, stmt->name, stmt->query, stmt->nparams, stmt->param_types);
    owed_sent(&s->owed, 'P');
    serverset_add(&s->stmts, stmt);
    return 1;
}

int prepared_warm_server(struct wp_server *s)
{
    int limit = warm_limit();
    if (!prepared_active(s) || limit <= 0)
        return 0;
    int sent = 0;
    struct wp_server *sibling = richest_sibling(s);
    if (sibling) {
        /* Only the `limit` most recent, least recent first, so that the new set's
           LRU order ends up like the sibling's. */
        int skip = (int)sibling->stmts.count - limit;
        for (struct wp_set_node *node = sibling->stmts.lru.lru_prev; node != &sibling->stmts.lru;
             node = node->lru_prev)
            if (skip-- <= 0)
                sent += warm_one(s, node->stmt);
    } else {
        for (int i = s->pool->nwarm - 1; i >= 0; i--)
            sent += warm_one(s, s->pool->warm[i]);
    }
    if (!sent)
        return 0;
    /* One Sync closes the batch: its ReadyForQuery ends the swallowed answer. */
    proto_put_simple(&s->conn.out, 'S');
    owed_sent(&s->owed, 'S');
    s->swallow++;
    s->warming = 1;
    return 1;
}

void prepared_warm_failed(struct wp_server *s)
{
    /* Some Parses may have run before the error: drop them all on both sides. */
    serverset_clear(&s->stmts, &wp_rt.registry);
    server_queue_internal(s, "DEALLOCATE ALL");
    server_kick_write(s);
}

void prepared_abandon_batch(struct wp_server *s)
{
    /* A backend skipping to the Sync ignores the Parse: then it gets no answer. */
    if (!s->ext_skipping)
        push(s, 'P', PENDING_SKIP, NULL, NULL);
    s->ext_skipping = 0;
    push(s, 'S', PENDING_FORWARD, NULL, NULL);
}

int prepared_may_resume(const struct wp_server *s)
{
    return s->name_effects == 0;
}

void prepared_internal_command(struct wp_server *s, const uint8_t *msg, uint32_t len)
{
    if (command_clears_statements(msg, len))
        serverset_clear(&s->stmts, &wp_rt.registry);
}
