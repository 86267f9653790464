/*
 * session_state — a client's settings and pins, from its texts and the backend's
 * answers (see include/warmpool/session_state.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "warmpool/session_state.h"

const char *const session_pin_cause_names[PIN_CAUSES] = {
    [PIN_LISTEN] = "listen",           [PIN_ADVISORY_LOCK] = "advisory_lock",
    [PIN_TEMP_OBJECT] = "temp_object", [PIN_HOLD_CURSOR] = "hold_cursor",
    [PIN_SET_CONFIG] = "set_config",   [PIN_SET] = "set",
    [PIN_HIDDEN_CALL] = "hidden_call", [PIN_UNKNOWN] = "unknown",
    [PIN_PREPARE] = "prepare",
};

#define CAUSE_BIT(cause) ((uint16_t)(1u << (cause)))

/* Causes held by name, and where their names are kept. */
static int held_index(int cause)
{
    switch (cause) {
    case PIN_LISTEN:
        return 0;
    case PIN_TEMP_OBJECT:
        return 1;
    case PIN_HOLD_CURSOR:
        return 2;
    default:
        return -1;
    }
}

/* ---- texts ---- */

static void change_free(struct session_change *ch)
{
    free(ch->name);
    free(ch->value);
}

void session_text_unref(struct session_text *text)
{
    if (!text || --text->refs > 0)
        return;
    for (int i = 0; i < text->n; i++)
        change_free(&text->changes[i]);
    free(text);
}

static char *dup_or_null(const char *s, int *failed)
{
    if (!s)
        return NULL;
    char *copy = strdup(s);
    *failed |= !copy;
    return copy;
}

/* One effect as a change; 0 when it is none to keep (SET LOCAL). */
static int take_effect(const struct session_sql *scan, const struct session_sql_effect *e,
                       struct session_change *ch, int *failed)
{
    if (e->kind == SSQL_NONE || e->kind == SSQL_SET_LOCAL)
        return 0;
    ch->kind = (uint8_t)e->kind;
    ch->cause = e->cause == SSQL_CAUSE_NONE ? 0 : (uint8_t)(e->cause - 1);
    ch->all = (uint8_t)e->all;
    ch->statement = e->statement;
    const char *name = session_sql_name(scan, e);
    ch->name = dup_or_null(name && *name ? name : NULL, failed);
    ch->value = e->kind == SSQL_SET ? dup_or_null(session_sql_value(scan, e), failed) : NULL;
    return 1;
}

struct session_text *session_text_from_scan(const struct session_sql *scan, int *failed)
{
    *failed = 0;
    if (scan->malformed || (scan->neffects == 0 && !scan->overflow))
        return NULL;
    struct session_text *text =
        calloc(1, sizeof *text + (size_t)(scan->neffects + 1) * sizeof text->changes[0]);
    if (!text) {
        *failed = 1;
        return NULL;
    }
    text->refs = 1;
    for (int i = 0; i < scan->neffects; i++)
        text->n += take_effect(scan, &scan->effects[i], &text->changes[text->n], failed);
    if (scan->overflow) {
        /* Effects past the last recorded one were dropped: from its statement on,
           nothing about this session is known for sure. */
        struct session_change *ch = &text->changes[text->n++];
        ch->kind = SSQL_PIN;
        ch->cause = PIN_UNKNOWN;
        ch->statement = scan->neffects ? scan->effects[scan->neffects - 1].statement : 0;
    }
    if (*failed || text->n == 0) {
        session_text_unref(text);
        return NULL;
    }
    return text;
}

/* ---- the client's side ---- */

/* Session advisory locks are held from the moment their statement runs, whatever
   becomes of it: the pin is taken as it is sent. */
static void pin_on_send(struct wp_session *ss, const struct session_text *text)
{
    for (int i = 0; i < text->n; i++)
        if (text->changes[i].kind == SSQL_PIN && text->changes[i].cause == PIN_ADVISORY_LOCK)
            ss->causes |= CAUSE_BIT(PIN_ADVISORY_LOCK);
}

static void push_ticket(struct wp_session *ss, struct session_text *text, uint64_t request)
{
    pin_on_send(ss, text);
    if (ss->ntickets == ss->tickets_cap) {
        int cap = ss->tickets_cap ? ss->tickets_cap * 2 : 4;
        struct session_ticket *grown = realloc(ss->tickets, (size_t)cap * sizeof *grown);
        if (!grown) {
            ss->no_memory = 1; /* its effects go unrecorded */
            return;
        }
        ss->tickets = grown;
        ss->tickets_cap = cap;
    }
    text->refs++;
    ss->tickets[ss->ntickets++] = (struct session_ticket){.request = request, .text = text};
    ss->watching = 1;
}

void session_query_sent(struct wp_session *ss, struct session_text *text, uint64_t request)
{
    push_ticket(ss, text, request);
}

static int find_named(const struct session_named *list, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i].name, name) == 0)
            return i;
    return -1;
}

static void drop_named(struct session_named *list, int *n, int i)
{
    free(list[i].name);
    session_text_unref(list[i].text);
    list[i] = list[--*n];
}

/* name → text (text NULL: forget name). -1 when out of memory. */
static int put_named(struct session_named **list, int *n, const char *name,
                     struct session_text *text)
{
    int i = find_named(*list, *n, name);
    if (i >= 0)
        drop_named(*list, n, i);
    if (!text)
        return 0;
    struct session_named *grown = realloc(*list, (size_t)(*n + 1) * sizeof *grown);
    if (!grown)
        return -1;
    *list = grown;
    char *copy = strdup(name);
    if (!copy)
        return -1;
    text->refs++;
    grown[(*n)++] = (struct session_named){copy, text};
    return 0;
}

int session_parse_sent(struct wp_session *ss, const char *name, struct session_text *text)
{
    if (!text && ss->nstmts == 0)
        return 0;
    return put_named(&ss->stmts, &ss->nstmts, name, text);
}

int session_bind_sent(struct wp_session *ss, const char *portal, const char *stmt)
{
    int i = find_named(ss->stmts, ss->nstmts, stmt);
    return put_named(&ss->portals, &ss->nportals, portal, i >= 0 ? ss->stmts[i].text : NULL);
}

void session_execute_sent(struct wp_session *ss, const char *portal, uint64_t request)
{
    int i = find_named(ss->portals, ss->nportals, portal);
    if (i >= 0)
        push_ticket(ss, ss->portals[i].text, request);
}

/* ---- held names ---- */

static const char *temp_name(const char *name)
{
    return strncasecmp(name, "pg_temp.", 8) == 0 ? name + 8 : name;
}

static int names_find(const struct session_names *set, const char *name)
{
    for (int i = 0; i < set->n; i++)
        if (strcmp(set->names[i], name) == 0)
            return i;
    return -1;
}

static void names_clear(struct session_names *set)
{
    for (int i = 0; i < set->n; i++)
        free(set->names[i]);
    free(set->names);
    set->names = NULL;
    set->n = 0;
}

/* -1 when out of memory. */
static int names_add(struct session_names *set, const char *name)
{
    if (names_find(set, name) >= 0)
        return 0;
    char **grown = realloc(set->names, (size_t)(set->n + 1) * sizeof *grown);
    if (!grown)
        return -1;
    set->names = grown;
    if (!(grown[set->n] = strdup(name)))
        return -1;
    set->n++;
    return 0;
}

static void names_remove(struct session_names *set, const char *name)
{
    int i = names_find(set, name);
    if (i < 0)
        return;
    free(set->names[i]);
    set->names[i] = set->names[--set->n];
}

/* ---- pins ---- */

static void pin(struct wp_session *ss, const struct session_change *ch)
{
    int h = held_index(ch->cause);
    const char *name = ch->name ? ch->name : "";
    if (h >= 0 && names_add(&ss->held[h], h == 1 ? temp_name(name) : name) < 0)
        ss->no_memory = 1; /* pinned all the same: released only by DISCARD ALL then */
    ss->causes |= CAUSE_BIT(ch->cause);
}

static void unpin_all(struct wp_session *ss, int cause)
{
    int h = held_index(cause);
    if (h >= 0)
        names_clear(&ss->held[h]);
    ss->causes &= (uint16_t)~CAUSE_BIT(cause);
}

static void unpin(struct wp_session *ss, const struct session_change *ch)
{
    int h = held_index(ch->cause);
    if (ch->all || h < 0) {
        /* Only pg_advisory_unlock_all() releases locks as a whole: one unlock of
           several locks held is not seen (session_sql reports no other). */
        unpin_all(ss, ch->cause);
        return;
    }
    if (!ch->name)
        return;
    names_remove(&ss->held[h], h == 1 ? temp_name(ch->name) : ch->name);
    if (ss->held[h].n == 0 && !ss->no_memory)
        ss->causes &= (uint16_t)~CAUSE_BIT(ch->cause);
}

/* ---- settings ---- */

/* Settings that last one transaction whatever SET says, or that a set_config in the
   parameter sync could not give back: never carried. */
static int is_transaction_scoped(const char *name)
{
    return strcasecmp(name, "transaction_isolation") == 0 ||
           strcasecmp(name, "transaction_read_only") == 0 ||
           strcasecmp(name, "transaction_deferrable") == 0;
}

/* SET role / session_authorization by their generic names: who runs the next
   statement, which no parameter sync may change. */
static int is_identity(const char *name)
{
    return strcasecmp(name, "role") == 0 || strcasecmp(name, "session_authorization") == 0;
}

static void view_set(struct wp_session *ss, struct wp_params *view, const char *name,
                     const char *value)
{
    if (params_set(view, name, value) < 0)
        ss->no_memory = 1;
}

/* RESET name: the backend is at its own default, the client wants its startup value. */
static void reset_one(struct wp_session *ss, const struct session_views *v, const char *name)
{
    const char *own = params_get(v->startup, name);
    if (!params_is_reported(name))
        params_remove(v->server, name);
    if (own) {
        view_set(ss, v->client, name, own);
        ss->resync = 1;
        ss->report_startup |= params_is_reported(name);
    } else if (!params_is_reported(name)) {
        params_remove(v->client, name);
    }
}

static void reset_all(struct wp_session *ss, const struct session_views *v)
{
    params_remove_unreported(v->server);
    params_remove_unreported(v->client);
    for (int i = 0; i < v->startup->n; i++)
        view_set(ss, v->client, v->startup->items[i].name, v->startup->items[i].value);
    if (v->startup->n > 0)
        ss->resync = ss->report_startup = 1;
}

static void discard_all(struct wp_session *ss, const struct session_views *v)
{
    reset_all(ss, v);
    for (int cause = 0; cause < PIN_CAUSES; cause++)
        unpin_all(ss, cause);
    ss->no_memory = 0;
}

static void apply_set(struct wp_session *ss, const struct session_views *v,
                      const struct session_change *ch)
{
    if (!ch->name || is_transaction_scoped(ch->name))
        return;
    if (is_identity(ch->name) || !ch->value) {
        ss->causes |= CAUSE_BIT(PIN_SET);
        return;
    }
    if (params_is_reported(ch->name))
        return; /* ParameterStatus told both views already */
    view_set(ss, v->client, ch->name, ch->value);
    view_set(ss, v->server, ch->name, ch->value);
}

static void apply(struct wp_session *ss, const struct session_views *v,
                  const struct session_change *ch)
{
    switch (ch->kind) {
    case SSQL_SET:
        apply_set(ss, v, ch);
        break;
    case SSQL_RESET:
        if (ch->name && !is_transaction_scoped(ch->name) && !is_identity(ch->name))
            reset_one(ss, v, ch->name);
        break;
    case SSQL_RESET_ALL:
        reset_all(ss, v);
        unpin_all(ss, PIN_SET_CONFIG);
        break;
    case SSQL_DISCARD_ALL:
        discard_all(ss, v);
        break;
    case SSQL_PIN:
        pin(ss, ch);
        break;
    case SSQL_UNPIN:
        unpin(ss, ch);
        break;
    default:
        break;
    }
}

/* ---- the transaction ---- */

static void drop_pending(struct wp_session *ss)
{
    for (int i = 0; i < ss->npending; i++)
        change_free(&ss->pending[i]);
    ss->npending = 0;
}

static void commit_pending(struct wp_session *ss, const struct session_views *v)
{
    for (int i = 0; i < ss->npending; i++)
        apply(ss, v, &ss->pending[i]);
    drop_pending(ss);
}

/* A change confirmed by its statement's CommandComplete waits for the commit. */
static void add_pending(struct wp_session *ss, const struct session_change *ch)
{
    if (ss->npending == ss->pending_cap) {
        int cap = ss->pending_cap ? ss->pending_cap * 2 : 4;
        struct session_change *grown = realloc(ss->pending, (size_t)cap * sizeof *grown);
        if (!grown) {
            ss->no_memory = 1;
            return;
        }
        ss->pending = grown;
        ss->pending_cap = cap;
    }
    int failed = 0;
    struct session_change copy = *ch;
    copy.name = dup_or_null(ch->name, &failed);
    copy.value = dup_or_null(ch->value, &failed);
    if (failed) {
        change_free(&copy);
        ss->no_memory = 1;
        return;
    }
    ss->pending[ss->npending++] = copy;
}

/* The newest savepoint of that name among the pending changes, or -1: taken before
   them all (or never seen, which comes to the same for what they undo). */
static int find_savepoint(const struct wp_session *ss, const char *name)
{
    for (int i = ss->npending - 1; i >= 0; i--)
        if (ss->pending[i].kind == SSQL_SAVEPOINT && strcmp(ss->pending[i].name, name) == 0)
            return i;
    return -1;
}

/* Drop the pending changes (and savepoints) from index `from` on. */
static void truncate_pending(struct wp_session *ss, int from)
{
    for (int i = from; i < ss->npending; i++)
        change_free(&ss->pending[i]);
    ss->npending = from;
}

/* RELEASE keeps the changes and forgets the savepoint and those taken after it;
   ROLLBACK TO undoes the changes made since it and keeps it. */
static void savepoint_statement(struct wp_session *ss, const struct session_change *ch)
{
    if (!ch->name)
        return;
    int at = find_savepoint(ss, ch->name);
    if (ch->kind == SSQL_SAVEPOINT) {
        add_pending(ss, ch);
    } else if (ch->kind == SSQL_ROLLBACK_TO) {
        truncate_pending(ss, at + 1);
    } else {
        int kept = at < 0 ? 0 : at;
        for (int i = kept; i < ss->npending; i++) {
            if (ss->pending[i].kind == SSQL_SAVEPOINT)
                change_free(&ss->pending[i]);
            else
                ss->pending[kept++] = ss->pending[i];
        }
        ss->npending = kept;
    }
}

static int is_savepoint_kind(uint8_t kind)
{
    return kind == SSQL_SAVEPOINT || kind == SSQL_RELEASE || kind == SSQL_ROLLBACK_TO;
}

/* The head ticket's request is at owed's head: its next statement (a Query's) or its
   one statement (an Execute's) completed. Returns 1 when it was a ROLLBACK TO. */
static int confirm_statement(struct wp_session *ss, const struct wp_owed *owed, uint8_t head)
{
    if (ss->ntickets == 0 || ss->tickets[0].request != owed->exec_done)
        return 0;
    struct session_ticket *t = &ss->tickets[0];
    int statement = head == 'Q' ? t->done++ : 0, rolled_back_to = 0;
    for (int i = 0; i < t->text->n; i++) {
        const struct session_change *ch = &t->text->changes[i];
        if (head == 'Q' && ch->statement != statement)
            continue;
        if (is_savepoint_kind(ch->kind))
            savepoint_statement(ss, ch);
        else
            add_pending(ss, ch);
        rolled_back_to |= ch->kind == SSQL_ROLLBACK_TO;
    }
    return rolled_back_to;
}

/* Tickets whose requests owed has settled or dropped are done with. */
static void settle_tickets(struct wp_session *ss, const struct wp_owed *owed)
{
    int done = 0;
    while (done < ss->ntickets && ss->tickets[done].request < owed->exec_done)
        session_text_unref(ss->tickets[done++].text);
    if (done == 0)
        return;
    ss->ntickets -= done;
    memmove(ss->tickets, ss->tickets + done, (size_t)ss->ntickets * sizeof *ss->tickets);
}

void session_command_complete(struct wp_session *ss, const struct wp_owed *owed, const char *tag,
                              const struct session_views *views)
{
    uint8_t head = owed->count ? owed->ring[owed->head] : 0;
    settle_tickets(ss, owed); /* requests owed dropped after an error */
    int rolled_back_to = (head == 'Q' || head == 'E') && confirm_statement(ss, owed, head);
    if (ss->npending == 0)
        return;
    if (strcmp(tag, "COMMIT") == 0 || strcmp(tag, "PREPARE TRANSACTION") == 0)
        commit_pending(ss, views);
    else if (strcmp(tag, "ROLLBACK") == 0 && !rolled_back_to)
        drop_pending(ss); /* (a ROLLBACK TO has this tag too: it did its part above) */
}

void session_error(struct wp_session *ss)
{
    ss->tx_error = 1;
}

void session_ready(struct wp_session *ss, const struct wp_owed *owed, char status,
                   const struct session_views *views)
{
    settle_tickets(ss, owed);
    if (status != 'I')
        return;
    /* The implicit transaction (or a block without a COMMIT tag) is over: committed
       unless something failed in it. */
    if (ss->tx_error)
        drop_pending(ss);
    else
        commit_pending(ss, views);
    if (ss->no_memory)
        ss->causes |= CAUSE_BIT(PIN_UNKNOWN);
    ss->tx_error = 0;
    ss->watching = ss->ntickets > 0;
}

void session_unlink(struct wp_session *ss)
{
    for (int i = 0; i < ss->ntickets; i++)
        session_text_unref(ss->tickets[i].text);
    ss->ntickets = 0;
    drop_pending(ss);
    ss->tx_error = 0;
    ss->watching = 0;
}

void session_free(struct wp_session *ss)
{
    session_unlink(ss);
    free(ss->tickets);
    free(ss->pending);
    while (ss->nstmts > 0)
        drop_named(ss->stmts, &ss->nstmts, 0);
    while (ss->nportals > 0)
        drop_named(ss->portals, &ss->nportals, 0);
    free(ss->stmts);
    free(ss->portals);
    for (int h = 0; h < 3; h++)
        names_clear(&ss->held[h]);
    memset(ss, 0, sizeof *ss);
}
