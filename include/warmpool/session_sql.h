/*
 * session_sql — what a SQL text does to session state, for transaction pooling
 * (issue #15): session-level settings a client makes must follow it to whichever
 * backend serves its next transaction, and state that cannot be carried must pin the
 * client to its backend until released.
 *
 * session_sql_scan splits a simple Query's (or a Parse's) text into statements at ';'
 * with sqllex, so quotes, dollar quotes and comments hide what they hide from
 * PostgreSQL, and reports every session effect it sees, in text order:
 *
 *   SSQL_SET        SET [SESSION] name {TO|=} value[, …]; SET TIME ZONE v (timezone);
 *                   SET SCHEMA 'v' (search_path); SET NAMES 'v' (client_encoding);
 *                   SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL … |
 *                   READ ONLY | READ WRITE | [NOT] DEFERRABLE (one effect per mode:
 *                   default_transaction_isolation "read committed"…,
 *                   default_transaction_read_only and _deferrable "1" or "0", as
 *                   PostgreSQL's grammar builds them).
 *   SSQL_SET_LOCAL  SET LOCAL …: lasts until its transaction ends. value is NULL for
 *                   TO DEFAULT and for forms whose value is not recorded (ROLE, …).
 *   SSQL_RESET      RESET name; SET name {TO|=} DEFAULT; SET TIME ZONE DEFAULT|LOCAL;
 *                   SET NAMES [DEFAULT]; RESET TIME ZONE (timezone), RESET TRANSACTION
 *                   ISOLATION LEVEL (transaction_isolation), RESET SESSION
 *                   AUTHORIZATION (session_authorization), RESET ROLE (role): the
 *                   caller may take the last two as releasing an SSQL_CAUSE_SET pin.
 *   SSQL_RESET_ALL  RESET ALL.
 *   SSQL_DISCARD_ALL DISCARD ALL, reported once and only so: it means RESET ALL plus
 *                   the release of every pin cause below (LISTEN, advisory locks, temp
 *                   objects, cursors), and DEALLOCATE ALL.
 *   SSQL_PIN        state that cannot be carried, with its cause:
 *                   LISTEN ch (name = channel); a call of pg_advisory_lock,
 *                   pg_advisory_lock_shared, pg_try_advisory_lock or
 *                   pg_try_advisory_lock_shared anywhere in a statement (not the _xact_
 *                   ones); CREATE [GLOBAL|LOCAL] TEMP|TEMPORARY TABLE|VIEW|SEQUENCE
 *                   unless ON COMMIT DROP, CREATE TABLE pg_temp.x, SELECT … INTO TEMP x
 *                   (name = the object as written, decoded, schema-qualified when it is);
 *                   DECLARE c … WITH HOLD (name = cursor); a set_config( call whose third
 *                   argument is not literally TRUE; SET forms whose value cannot be
 *                   recorded — SET ROLE, SET SESSION AUTHORIZATION, SET name FROM
 *                   CURRENT, SET TIME ZONE INTERVAL …, SET XML OPTION, a value that is
 *                   not a plain constant (U&'…', strings continued over a newline) or
 *                   is longer than SESSION_SQL_VALUE_MAX, a name longer than
 *                   SESSION_SQL_NAME_MAX, several values for a setting that takes one,
 *                   anything malformed that starts like SET or RESET (name = the
 *                   setting when known); a call of a function whose name is written
 *                   U&"…" (this scanner cannot read that name).
 *   SSQL_UNPIN      UNLISTEN ch | * (all); pg_advisory_unlock_all() (all); DISCARD
 *                   TEMP (all); CLOSE c | ALL (all); DROP TABLE|VIEW|SEQUENCE [IF
 *                   EXISTS] a[, b…]: one effect per name, for the caller to match
 *                   against the temp objects it saw created.
 *
 *   SSQL_SAVEPOINT, SSQL_RELEASE, SSQL_ROLLBACK_TO: the savepoint statements, with
 *                   the savepoint's name, so that the caller can tell which settings
 *                   a ROLLBACK TO undoes. They are no session effect of their own:
 *                   session_sql_mentions does not look for them (the caller scans
 *                   every text while it has effects waiting for their commit).
 *
 * Statements with none of these (SSQL_NONE) are counted but not listed. A statement
 * can have several effects (a SELECT calling pg_advisory_lock and set_config, SET
 * SESSION CHARACTERISTICS with two modes); calls are reported once per statement and
 * cause, and a statement that both takes advisory locks and calls
 * pg_advisory_unlock_all() pins (its calls need not run in text order).
 *
 * The value of a SET is the string PostgreSQL 15 stores (flatten_set_variable_args):
 * each argument as text — unquoted identifiers and keywords folded to lower case and
 * cut to 63 bytes like every identifier, TRUE/FALSE/ON as true/false/on, integers that
 * fit 32 bits printed as integers (007 is 7, -0 is 0, a '+' dropped), other numbers
 * as written with their '-', string constants decoded (E'…' escapes, '' and, with
 * backslash_strings, '…' escapes too) — joined with ", ". For the settings PostgreSQL
 * flags GUC_LIST_QUOTE (search_path, temp_tablespaces, local_preload_libraries,
 * session_preload_libraries, shared_preload_libraries, unix_socket_directories) each
 * string element is quoted like quote_identifier() does: unless it is lower-case
 * letters, digits and '_' not starting with a digit and not a keyword other than an
 * unreserved one (PostgreSQL 15's keyword list; quote_all_identifiers is taken as off).
 * Replaying it means set_config(name, value, false), never SET name TO 'value' (which
 * would quote a list a second time). GUC names are lower-cased; PostgreSQL's old
 * aliases (sort_mem …) are not mapped.
 *
 * What the scan cannot see, by design: statements inside DO bodies, function bodies
 * and dynamic SQL (EXECUTE in PL/pgSQL), functions that take locks or set settings
 * themselves, objects made temporary implicitly (a view over a temp table, CREATE
 * TABLE with pg_temp first in search_path), prepared statements run by EXECUTE (their
 * PREPARE is where the calls are seen). A statement PostgreSQL rejects has no effect
 * at all; what is reported for it does not matter as long as the caller applies the
 * effects only once their statements have succeeded and their transaction committed
 * (a SET or LISTEN in a rolled-back transaction is undone).
 *
 * Pure text processing; names and values live in one buffer inside struct
 * session_sql, reused from scan to scan.
 */
#ifndef WARMPOOL_SESSION_SQL_H
#define WARMPOOL_SESSION_SQL_H

#include <stddef.h>

#include "warmpool/buf.h"

#define SESSION_SQL_EFFECTS_MAX 16 /* effects recorded per text; more: overflow */
#define SESSION_SQL_NAME_MAX 63    /* bytes of a setting's name (NAMEDATALEN - 1) */
#define SESSION_SQL_VALUE_MAX 4096 /* bytes of a recorded value */
#define SESSION_SQL_NO_TEXT ((size_t)-1)

enum session_sql_kind {
    SSQL_NONE,
    SSQL_SET,
    SSQL_SET_LOCAL,
    SSQL_RESET,
    SSQL_RESET_ALL,
    SSQL_DISCARD_ALL,
    SSQL_PIN,
    SSQL_UNPIN,
    SSQL_SAVEPOINT,   /* SAVEPOINT name */
    SSQL_RELEASE,     /* RELEASE [SAVEPOINT] name */
    SSQL_ROLLBACK_TO, /* ROLLBACK [WORK|TRANSACTION] TO [SAVEPOINT] name */
};

/* What a PIN holds or an UNPIN releases. */
enum session_sql_cause {
    SSQL_CAUSE_NONE,          /* SET, RESET, … */
    SSQL_CAUSE_LISTEN,        /* a channel listened to */
    SSQL_CAUSE_ADVISORY_LOCK, /* a session-level advisory lock */
    SSQL_CAUSE_TEMP_OBJECT,   /* a temporary table, view or sequence */
    SSQL_CAUSE_HOLD_CURSOR,   /* a cursor WITH HOLD */
    SSQL_CAUSE_SET_CONFIG,    /* set_config(…, …, not literally true) */
    SSQL_CAUSE_SET,           /* a SET (or RESET) whose effect cannot be recorded */
    SSQL_CAUSE_HIDDEN_CALL,   /* a call of a function named U&"…" */
};

struct session_sql_effect {
    enum session_sql_kind kind;
    enum session_sql_cause cause;
    int statement; /* index of its statement among the non-empty ones, from 0 */
    int all;       /* UNPIN: every one of its cause (UNLISTEN *, CLOSE ALL, …) */
    size_t name;   /* offset in strings, or SESSION_SQL_NO_TEXT: use session_sql_name */
    size_t value;  /* likewise: use session_sql_value */
};

struct session_sql {
    int statements; /* non-empty statements */
    int neffects;   /* effects[] filled, in text order */
    int overflow;   /* more effects than SESSION_SQL_EFFECTS_MAX: the rest were dropped */
    int malformed;  /* PostgreSQL refuses the whole text (a quote or comment that does not
                       end, a NUL byte): nothing is reported; the text is unseeable */
    struct session_sql_effect effects[SESSION_SQL_EFFECTS_MAX];
    struct wp_buf strings; /* the NUL-terminated names and values */
};

/* Can the text have a session effect at all? 0 when it contains none of SET (RESET,
   set_config), DISCARD, LISTEN, ADVISORY, TEMP, HOLD, CLOSE, DROP and U&" in any
   case, anywhere: session_sql_scan would then report nothing. */
int session_sql_mentions(const char *sql, size_t len);

/* Is the text's first word SAVEPOINT, RELEASE or ROLLBACK? (A Parse may be run long
   after it was sent, when effects wait for their commit; one behind a leading comment
   is not recognised.) */
int session_sql_may_be_savepoint(const char *sql, size_t len);

/* Every session effect of sql[0..len) (no NUL needed). backslash_strings:
   standard_conforming_strings is off. out is zeroed once by the caller ({0}) and may
   be reused: each scan replaces what the previous one reported. */
void session_sql_scan(const char *sql, size_t len, int backslash_strings, struct session_sql *out);

/* The effect's name ("" when it has none) and value (NULL when it has none), valid
   until the next scan or session_sql_free. */
const char *session_sql_name(const struct session_sql *s, const struct session_sql_effect *e);
const char *session_sql_value(const struct session_sql *s, const struct session_sql_effect *e);

/* Give back the buffer; the struct can be scanned into again. */
void session_sql_free(struct session_sql *s);

#endif
