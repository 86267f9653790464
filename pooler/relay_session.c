/*
 * relay_session — session_state fed from the relay (see include/warmpool/relay_session.h).
 */
#include <stdlib.h>
#include <string.h>

#include "warmpool/client.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/proto.h"
#include "warmpool/relay_scan.h"
#include "warmpool/relay_session.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/session_sql.h"
#include "warmpool/session_state.h"
#include "warmpool/sqlprep.h"

/* In session mode a longer Query or Parse streams through unscanned: only RESET's
   return to the client's own startup values depends on it there. */
#define SESSION_MODE_SCAN_MAX (1u << 20)
#define PORTAL_NAME_MAX 256

static struct session_sql scratch;            /* reused from scan to scan */
static struct session_text *query_in_passage; /* the Query being passed on */
static char portal_in_passage[PORTAL_NAME_MAX];
static int execute_in_passage;
static int prepare_in_passage;    /* a statement the prepared layer does not carry */
static uint64_t exec_sent_before; /* owed.exec_sent before the message went */

/* ---- the client's texts ---- */

/* The text's effects. Savepoint statements count only while effects wait for their
   transaction (session.watching): other texts need a scan only when they mention
   a session effect. */
static struct session_text *scan_text(const struct wp_client *c, uint8_t type, const char *sql,
                                      size_t len, int *failed)
{
    *failed = 0;
    if (!session_sql_mentions(sql, len) && !c->session.watching &&
        !(type == 'P' && session_sql_may_be_savepoint(sql, len)))
        return NULL;
    const char *strings = params_get(&c->params, "standard_conforming_strings");
    session_sql_scan(sql, len, strings && strcmp(strings, "off") == 0, &scratch);
    return session_text_from_scan(&scratch, failed);
}

/* A NUL-terminated string at body[*at] within len bytes, or NULL. */
static const char *take_cstring(const uint8_t *body, size_t len, size_t *at)
{
    if (*at >= len)
        return NULL;
    const uint8_t *end = memchr(body + *at, '\0', len - *at);
    if (!end)
        return NULL;
    const char *s = (const char *)body + *at;
    *at = (size_t)(end - body) + 1;
    return s;
}

static void forget_passage(void)
{
    session_text_unref(query_in_passage);
    query_in_passage = NULL;
    execute_in_passage = 0;
    prepare_in_passage = 0;
}

/* Without the prepared layer (max_prepared_statements = 0) a named statement stays on
   the backend it was prepared on: in transaction mode it pins. */
static int prepares_uncarried(const struct wp_client *c, uint8_t type, const char *first,
                              size_t first_len)
{
    if (c->pool->settings.pool_mode == WP_MODE_SESSION || wp_rt.cfg->max_prepared_statements > 0)
        return 0;
    if (type == 'P')
        return *first != '\0';
    if (type != 'Q' || !sqlprep_mentions(first, first_len))
        return 0;
    struct sqlprep_scan scan;
    sqlprep_scan(first, first_len, SQLPREP_STRINGS_EITHER, &scan);
    return scan.defines > 0 || scan.unreadable;
}

static int must_be_whole(const struct wp_client *c, uint32_t len)
{
    return c->pool->settings.pool_mode != WP_MODE_SESSION || len <= SESSION_MODE_SCAN_MAX;
}

/* The message is all in the buffer: note what it does. -1 when out of memory. */
static int note_message(struct wp_client *c, uint8_t type, const uint8_t *msg, uint32_t len)
{
    const uint8_t *body = msg + 5;
    size_t body_len = len - 5, at = 0;
    int failed = 0;
    if (type == 'Q') {
        if (msg[len - 1] != '\0')
            return 0; /* malformed: PostgreSQL refuses it */
        /* The text up to the final NUL: one with a NUL inside is refused by PostgreSQL,
           and session_sql reports nothing for it. */
        const char *sql = (const char *)body;
        prepare_in_passage = prepares_uncarried(c, type, sql, body_len - 1);
        query_in_passage = scan_text(c, type, sql, body_len - 1, &failed);
        return failed ? -1 : 0;
    }
    const char *first = take_cstring(body, body_len, &at);
    if (!first)
        return 0; /* malformed: PostgreSQL refuses it */
    prepare_in_passage = prepares_uncarried(c, type, first, at - 1);
    if (type == 'P') {
        size_t from = at;
        const char *sql = take_cstring(body, body_len, &at);
        struct session_text *text = sql ? scan_text(c, type, sql, at - 1 - from, &failed) : NULL;
        failed |= session_parse_sent(&c->session, first, text) < 0;
        session_text_unref(text);
    } else if (type == 'B') {
        const char *stmt = take_cstring(body, body_len, &at);
        if (stmt)
            failed |= session_bind_sent(&c->session, first, stmt) < 0;
    } else if (strlen(first) < PORTAL_NAME_MAX) {
        strcpy(portal_in_passage, first);
        execute_in_passage = 1;
    }
    return failed ? -1 : 0;
}

enum relay_session_input relay_session_before(struct wp_client *c, const struct wp_server *s,
                                              uint8_t type, const uint8_t *msg, size_t avail,
                                              uint32_t len)
{
    forget_passage();
    exec_sent_before = s->owed.exec_sent;
    if (len < 5)
        return SESSION_INPUT_GO;
    if (avail < len) {
        if (!must_be_whole(c, len))
            return SESSION_INPUT_GO;
        if (buf_reserve(&c->conn.in, len - avail) < 0)
            return SESSION_INPUT_NO_MEMORY;
        return SESSION_INPUT_WAIT;
    }
    return note_message(c, type, msg, len) < 0 ? SESSION_INPUT_NO_MEMORY : SESSION_INPUT_GO;
}

/* ---- pins ---- */

static const char *held_detail(const struct wp_session *ss, int cause)
{
    int h = cause == PIN_LISTEN        ? 0
            : cause == PIN_TEMP_OBJECT ? 1
            : cause == PIN_HOLD_CURSOR ? 2
                                       : -1;
    if (h < 0 || ss->held[h].n == 0)
        return "";
    return ss->held[h].names[ss->held[h].n - 1];
}

/* Causes taken since `before`: counted, and logged once per client and cause. */
static void note_new_causes(struct wp_client *c, const struct wp_server *s, uint16_t added)
{
    int mode = wp_rt.cfg->pin_session_state;
    for (int cause = 0; cause < PIN_CAUSES; cause++) {
        if (!(added & (1u << cause)))
            continue;
        c->pool->pins_total[cause]++;
        if (c->pins_logged & (1u << cause))
            continue;
        c->pins_logged |= (uint16_t)(1u << cause);
        const char *detail = held_detail(&c->session, cause);
        if (mode == WP_PIN_ON)
            log_info("C-%llu %s/%s@%s: session state (%s%s%s%s) pins it to S-%llu pid=%u",
                     (unsigned long long)c->id, c->dbname, c->user, c->addr,
                     session_pin_cause_names[cause], *detail ? " \"" : "", detail,
                     *detail ? "\"" : "", (unsigned long long)s->id, s->backend_pid);
        else
            log_warn("C-%llu %s/%s@%s: session state (%s%s%s%s) left on S-%llu pid=%u for the "
                     "next client: pin_session_state = log",
                     (unsigned long long)c->id, c->dbname, c->user, c->addr,
                     session_pin_cause_names[cause], *detail ? " \"" : "", detail,
                     *detail ? "\"" : "", (unsigned long long)s->id, s->backend_pid);
    }
}

static void set_pinned(struct wp_client *c, int pinned)
{
    if (pinned == (int)c->pinned)
        return;
    c->pinned = (unsigned)pinned;
    c->pool->pinned_clients += pinned ? 1 : -1;
    if (!pinned)
        log_info("C-%llu %s/%s@%s: session state released: unpinned", (unsigned long long)c->id,
                 c->dbname, c->user, c->addr);
}

/* The client's causes may have changed from `before`. Session mode has nothing to pin
   (the backend is the client's anyway); a reload may have changed the modes. */
static void note_pins(struct wp_client *c, const struct wp_server *s, uint16_t before)
{
    uint16_t now = c->session.causes;
    int mode = wp_rt.cfg->pin_session_state;
    int pooled = c->pool->settings.pool_mode != WP_MODE_SESSION;
    if (now != before && pooled && mode != WP_PIN_OFF)
        note_new_causes(c, s, (uint16_t)(now & ~before));
    set_pinned(c, now != 0 && pooled && mode == WP_PIN_ON);
}

void relay_session_after(struct wp_client *c, struct wp_server *s)
{
    if (!query_in_passage && !execute_in_passage && !prepare_in_passage)
        return; /* most messages: nothing to note */
    uint16_t before = c->session.causes;
    int sent = s->owed.exec_sent > exec_sent_before;
    if (query_in_passage && sent)
        session_query_sent(&c->session, query_in_passage, s->owed.exec_sent - 1);
    else if (execute_in_passage && sent)
        session_execute_sent(&c->session, portal_in_passage, s->owed.exec_sent - 1);
    if (prepare_in_passage)
        c->session.causes |= (uint16_t)(1u << PIN_PREPARE);
    forget_passage();
    note_pins(c, s, before);
}

/* ---- the backend's answers ---- */

static struct session_views views_of(struct wp_server *s)
{
    struct wp_client *c = s->client;
    return (struct session_views){&c->params, &s->params, &c->startup};
}

void relay_session_command(struct wp_server *s, const uint8_t *msg, uint32_t len)
{
    struct wp_client *c = s->client;
    if (len < 6 || msg[len - 1] != '\0')
        return; /* owed calls it lost */
    uint16_t before = c->session.causes;
    struct session_views views = views_of(s);
    session_command_complete(&c->session, &s->owed, (const char *)msg + 5, &views);
    note_pins(c, s, before);
}

void relay_session_error(struct wp_server *s)
{
    session_error(&s->client->session);
}

/* A RESET gave the client its own startup values of reported settings where the
   backend reported its defaults: the client is told, before the ReadyForQuery, what
   PostgreSQL would have told it (the sync that follows is silent). */
static void report_startup_values(struct wp_client *c, struct wp_server *s)
{
    c->session.report_startup = 0;
    relay_move_server_scanned(s); /* the backend's ParameterStatus first */
    for (int i = 0; i < c->startup.n; i++) {
        const struct wp_param *own = &c->startup.items[i];
        const char *told = params_get(&s->params, own->name);
        if (own->reported && (!told || strcmp(told, own->value) != 0))
            proto_put_param_status(&c->conn.out, own->name, own->value);
    }
}

void relay_session_ready(struct wp_server *s)
{
    struct wp_client *c = s->client;
    uint16_t before = c->session.causes;
    struct session_views views = views_of(s);
    session_ready(&c->session, &s->owed, s->tx_status, &views);
    if (c->session.report_startup)
        report_startup_values(c, s);
    note_pins(c, s, before);
}

enum { RESETS_SETTINGS = 1, DISCARDS_ALL = 2 };

/* What server_reset_query does to a session: RESETS_SETTINGS when it ends with every
   setting at its default (RESET ALL, DISCARD ALL), DISCARDS_ALL when it also releases
   what pins a client (DISCARD ALL). */
static int reset_query_effects(void)
{
    static char *scanned; /* a copy: a reload may free the old text */
    static int effects;
    const char *sql = wp_rt.cfg->server_reset_query;
    if (!sql || !*sql)
        return 0;
    if (!scanned || strcmp(sql, scanned) != 0) {
        struct session_sql scan = {0};
        session_sql_scan(sql, strlen(sql), 0, &scan);
        effects = 0;
        for (int i = 0; i < scan.neffects; i++) {
            if (scan.effects[i].kind == SSQL_RESET_ALL)
                effects |= RESETS_SETTINGS;
            if (scan.effects[i].kind == SSQL_DISCARD_ALL)
                effects |= RESETS_SETTINGS | DISCARDS_ALL;
        }
        session_sql_free(&scan);
        free(scanned);
        scanned = strdup(sql);
    }
    return effects;
}

void relay_session_internal_command(struct wp_server *s, const uint8_t *msg, uint32_t len)
{
    if (s->client || len < 6 || msg[len - 1] != '\0')
        return; /* the parameter sync runs for a client: params_apply_sync did its part */
    const char *tag = (const char *)msg + 5;
    if ((strcmp(tag, "DISCARD ALL") == 0 || strcmp(tag, "RESET") == 0) &&
        (reset_query_effects() & RESETS_SETTINGS))
        params_remove_unreported(&s->params);
}

/* ---- linking and leaving ---- */

void relay_session_linked(struct wp_client *c)
{
    session_unlink(&c->session);
}

/*
 * The client leaves its backend. What pinned it is still there; and effects it sent
 * whose outcome the backend has not told yet (a SET answered after the client left
 * commits unseen) leave the backend's settings unknown. Either way the backend is
 * reset before anyone else gets it, or closed when server_reset_query cannot undo it.
 */
void relay_session_client_closing(struct wp_client *c)
{
    set_pinned(c, 0);
    struct wp_server *s = c->server;
    if (!s || c->pool->settings.pool_mode == WP_MODE_SESSION)
        return; /* session mode resets every backend a client leaves */
    int needed = session_pinned(&c->session) ? DISCARDS_ALL
                 : c->session.watching       ? RESETS_SETTINGS
                                             : 0;
    if (!needed)
        return;
    if (reset_query_effects() & needed)
        s->needs_reset = 1;
    else
        s->close_when_quiet = 1;
}
