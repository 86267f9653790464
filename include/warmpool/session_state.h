/*
 * session_state — what a client's session holds beyond its startup: the settings it
 * made and the state that ties it to one backend (issue #15). Pure code: no sockets,
 * no pools; relay_session.c feeds it from the relay.
 *
 * Settings follow the client from the backend's own answers:
 * 1. A Query's or Parse's text is scanned as the client sends it (session_sql). Its
 *    effects become a ticket of the request that runs them: the Query itself, or an
 *    Execute of a portal bound to that Parse's statement. A ticket holds owed's
 *    number for its request (exec_sent at the time it was pushed).
 * 2. Each CommandComplete of that request confirms one statement (a Query's in text
 *    order, an Execute's its one); the confirmed effects wait in `pending`.
 * 3. The end of the transaction settles them, as PostgreSQL does: a COMMIT (or
 *    PREPARE TRANSACTION) tag, or a ReadyForQuery 'I' with no error since the last
 *    one, applies them to the client's parameter view and the backend's; a ROLLBACK
 *    tag, or an error in the implicit transaction, drops them. Savepoints taken while
 *    effects wait are kept among them by name: ROLLBACK TO drops what came after its
 *    savepoint, RELEASE only the savepoints (texts are scanned for them while the
 *    client has effects waiting).
 * SET changes both views alike (the backend now has the value; the client wants it on
 * every backend); RESET, RESET ALL and DISCARD ALL leave the backend at its own
 * defaults and the client at its own startup values (its startup packet and
 * `options`), so the next parameter sync gives them back (`resync`).
 *
 * Pins: state that lives in the backend's session and cannot be carried ties the
 * client to its backend while any cause is held. Causes are taken when their
 * statement commits, like settings (a LISTEN or temp table rolled back never
 * existed); session advisory locks already when the statement is sent, since a lock
 * survives its transaction's rollback and even its statement's failure. Named state
 * (channels, temp objects, cursors) is released name by name or all at once; DISCARD
 * ALL releases everything.
 */
#ifndef WARMPOOL_SESSION_STATE_H
#define WARMPOOL_SESSION_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "warmpool/owed.h"
#include "warmpool/params.h"
#include "warmpool/session_sql.h"

/* Why a client is pinned (the order of session_sql's causes, then warmpool's own). */
enum wp_pin_cause {
    PIN_LISTEN,        /* LISTEN channel */
    PIN_ADVISORY_LOCK, /* a session-level advisory lock */
    PIN_TEMP_OBJECT,   /* a temporary table, view or sequence */
    PIN_HOLD_CURSOR,   /* DECLARE … WITH HOLD */
    PIN_SET_CONFIG,    /* set_config(…, …, false) */
    PIN_SET,           /* a SET warmpool cannot record (ROLE, SESSION AUTHORIZATION, …) */
    PIN_HIDDEN_CALL,   /* a function called by a name the scan cannot read (U&"…") */
    PIN_UNKNOWN,       /* the effects of a text are not all known (too many of them) */
    PIN_PREPARE,       /* a prepared statement the prepared layer does not carry */
    PIN_CAUSES,
};

/* "listen", "advisory_lock", … (metric labels and log lines). */
extern const char *const session_pin_cause_names[PIN_CAUSES];

/* One effect of a text, owned. */
struct session_change {
    uint8_t kind;  /* enum session_sql_kind (never NONE or SET_LOCAL) */
    uint8_t cause; /* PIN, UNPIN: enum wp_pin_cause */
    uint8_t all;   /* UNPIN: every one of its cause */
    int statement; /* index among the text's statements */
    char *name;    /* NULL when it has none */
    char *value;   /* SET only */
};

/* The effects of one text, shared by the tickets of every Execute of its statement. */
struct session_text {
    int refs;
    int n;
    struct session_change changes[];
};

struct session_ticket {
    uint64_t request;          /* owed's number of its Query or Execute */
    struct session_text *text; /* a reference */
    int done;                  /* statements confirmed so far */
};

/* A statement or portal name of the client with the effects of its text. */
struct session_named {
    char *name;
    struct session_text *text; /* a reference */
};

struct session_names {
    char **names;
    int n;
};

/* The views session_ready changes. */
struct session_views {
    struct wp_params *client;        /* what the client wants */
    struct wp_params *server;        /* what its backend has */
    const struct wp_params *startup; /* the client's startup values */
};

struct wp_session {
    struct session_ticket *tickets; /* oldest first */
    int ntickets, tickets_cap;
    struct session_change *pending; /* confirmed in the open transaction, in order, with
                                       the savepoints taken among them */
    int npending, pending_cap;
    struct session_named *stmts; /* extended protocol: statements with effects */
    int nstmts;
    struct session_named *portals; /* and the portals bound to them */
    int nportals;
    struct session_names held[3]; /* channels, temp objects, cursors WITH HOLD */
    uint16_t causes;              /* bit per enum wp_pin_cause held */
    uint8_t watching;             /* tickets or pending: the backend's answers matter */
    uint8_t tx_error;             /* an error since the last ReadyForQuery 'I' */
    uint8_t resync;               /* the client's view changed apart from its backend's */
    uint8_t report_startup;       /* a RESET put reported settings back to startup values:
                                     the client is to be told before its ReadyForQuery */
    uint8_t no_memory;            /* a change could not be recorded: settings unknown */
};

static inline int session_pinned(const struct wp_session *ss)
{
    return ss->causes != 0;
}

/* ---- the client's side ---- */

/* The effects of a Query or Parse text from a scan (NULL when it has none, or out of
   memory: then *failed is set). The caller holds the one reference. */
struct session_text *session_text_from_scan(const struct session_sql *scan, int *failed);
void session_text_unref(struct session_text *text);

/* A Query with effects went to the backend as owed's request `request`. */
void session_query_sent(struct wp_session *ss, struct session_text *text, uint64_t request);
/* A Parse of statement `name`: its effects (NULL: none) are what Executes of portals
   bound to it will run. Returns -1 when out of memory. */
int session_parse_sent(struct wp_session *ss, const char *name, struct session_text *text);
/* A Bind of portal to statement (only needed while the client has statements with
   effects: ss->nstmts > 0 or ss->nportals > 0). */
int session_bind_sent(struct wp_session *ss, const char *portal, const char *stmt);
/* An Execute of portal went to the backend as request `request`. */
void session_execute_sent(struct wp_session *ss, const char *portal, uint64_t request);

/* ---- the backend's answers (called only while ss->watching) ---- */

/* A CommandComplete (tag NUL-terminated), before owed is fed with it. */
void session_command_complete(struct wp_session *ss, const struct wp_owed *owed, const char *tag,
                              const struct session_views *views);
/* An ErrorResponse for the client. */
void session_error(struct wp_session *ss);
/* After owed was fed with a ReadyForQuery of transaction status `status`. */
void session_ready(struct wp_session *ss, const struct wp_owed *owed, char status,
                   const struct session_views *views);

/* The backend is no longer this client's: requests in flight are forgotten. */
void session_unlink(struct wp_session *ss);
void session_free(struct wp_session *ss);

#endif
