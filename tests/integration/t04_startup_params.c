/*
 * t04_startup_params — issue 2, acceptance 4.
 *
 * Three clients share WP_DB_ONE, a transaction-mode pool of ONE backend, and take turns:
 *   A: application_name=t04_alpha, TimeZone Asia/Tokyo (PGTZ), DateStyle 'SQL, DMY'
 *      (PGDATESTYLE)
 *   B: application_name=t04_beta, TimeZone America/Sao_Paulo (PGTZ), client_encoding
 *      LATIN1
 *   C: sends none of these, so it must see the server's defaults (application_name:
 *      the one it was told at login), never A's or B's (checked after A and B have taken
 *      their turns alone).
 * (libpq sends PGTZ and PGDATESTYLE as the startup parameters "timezone" and "datestyle".)
 * In every transaction (explicit BEGIN/COMMIT with two statements, autocommit simple
 * query, extended-protocol query) each client must see its own settings in effect —
 * current_setting() and their effect on output (hour of a timestamptz, date format,
 * bytes of a non-ASCII character) — and libpq's view of the ParameterStatus values
 * must stay its own. Through the pooler it also asserts A and B really shared a backend.
 */
#include "itest.h"

struct client {
    const char *name;
    PGconn *conn;
    const char *app, *tz, *datestyle, *encoding; /* expected values */
    const char *hour;                            /* of 2020-01-01 00:00 UTC in tz */
    const char *date;                            /* date '2020-01-31' as text */
    int char_bytes;                              /* bytes of chr(233) in the encoding */
    long long pids[64];
    int npids;
};

static const char *const SQL_SETTINGS =
    "SELECT current_setting('application_name'), current_setting('TimeZone'),"
    " current_setting('DateStyle'), current_setting('client_encoding'),"
    " to_char(timestamptz '2020-01-01 00:00:00+00', 'HH24'), date '2020-01-31'::text,"
    " chr(233), pg_backend_pid()";

static void check_row(struct client *c, PGresult *r, const char *how)
{
    char what[128];
    const char *want[6] = {c->app, c->tz, c->datestyle, c->encoding, c->hour, c->date};
    const char *names[6] = {"application_name",
                            "TimeZone",
                            "DateStyle",
                            "client_encoding",
                            "hour of 2020-01-01 00:00 UTC",
                            "date '2020-01-31'"};
    for (int i = 0; i < 6; i++) {
        snprintf(what, sizeof what, "client %s (%s): %s", c->name, how, names[i]);
        CHECK_STR(PQgetvalue(r, 0, i), want[i], what);
    }
    CHECK(PQgetlength(r, 0, 6) == c->char_bytes,
          "client %s (%s): chr(233) arrived as %d bytes, want %d for client_encoding %s", c->name,
          how, PQgetlength(r, 0, 6), c->char_bytes, c->encoding);
    if (c->npids < 64)
        c->pids[c->npids++] = atoll(PQgetvalue(r, 0, 7));
}

/* libpq's copy of the ParameterStatus values must stay the client's own. */
static void check_reported(struct client *c)
{
    char what[128];
    const char *keys[4] = {"application_name", "TimeZone", "DateStyle", "client_encoding"};
    const char *want[4] = {c->app, c->tz, c->datestyle, c->encoding};
    for (int i = 0; i < 4; i++) {
        snprintf(what, sizeof what, "client %s: ParameterStatus %s as seen by libpq", c->name,
                 keys[i]);
        CHECK_STR(PQparameterStatus(c->conn, keys[i]), want[i], what);
    }
}

static void one_turn(struct client *c, int turn)
{
    PGresult *r;
    switch (turn % 3) {
    case 0: /* explicit transaction, two statements */
        EXEC(c->conn, "BEGIN");
        r = QUERY(c->conn, "SELECT 1");
        PQclear(r);
        r = QUERY(c->conn, SQL_SETTINGS);
        check_row(c, r, "inside BEGIN/COMMIT");
        PQclear(r);
        EXEC(c->conn, "COMMIT");
        break;
    case 1: /* autocommit, simple protocol */
        r = QUERY(c->conn, SQL_SETTINGS);
        check_row(c, r, "simple query");
        PQclear(r);
        break;
    default: /* autocommit, extended protocol */
        r = QUERYP(c->conn, SQL_SETTINGS, 0, NULL);
        check_row(c, r, "extended query");
        PQclear(r);
        break;
    }
    check_reported(c);
}

static PGconn *connect_with_env(const char *tz, const char *datestyle, const char *extra)
{
    if (tz)
        setenv("PGTZ", tz, 1);
    if (datestyle)
        setenv("PGDATESTYLE", datestyle, 1);
    PGconn *conn = CONNECT_X(itest_env("WP_DB_ONE", "one"), extra);
    unsetenv("PGTZ");
    unsetenv("PGDATESTYLE");
    return conn;
}

int main(void)
{
    /* The server's defaults, as a client that sets nothing sees them directly. */
    PGconn *direct = CONNECT_DIRECT();
    PGresult *d = QUERY(direct, "SELECT current_setting('TimeZone'), current_setting('DateStyle'),"
                                " to_char(timestamptz '2020-01-01 00:00:00+00', 'HH24'),"
                                " date '2020-01-31'::text, current_setting('server_encoding')");
    static char dtz[64], dds[64], dhour[8], ddate[32], denc[32];
    snprintf(dtz, sizeof dtz, "%s", PQgetvalue(d, 0, 0));
    snprintf(dds, sizeof dds, "%s", PQgetvalue(d, 0, 1));
    snprintf(dhour, sizeof dhour, "%s", PQgetvalue(d, 0, 2));
    snprintf(ddate, sizeof ddate, "%s", PQgetvalue(d, 0, 3));
    snprintf(denc, sizeof denc, "%s", PQgetvalue(d, 0, 4));
    PQclear(d);
    PQfinish(direct);
    CHECK(strcmp(dtz, "Asia/Tokyo") != 0 && strcmp(dtz, "America/Sao_Paulo") != 0,
          "server default TimeZone %s collides with a test value", dtz);
    CHECK(strcmp(denc, "UTF8") == 0, "server_encoding is %s, the test expects UTF8", denc);

    struct client a = {"A",  NULL,         "t04_alpha", "Asia/Tokyo", "SQL, DMY", "UTF8",
                       "09", "31/01/2020", 2,           {0},          0};
    struct client b = {"B", NULL, "t04_beta", "America/Sao_Paulo", dds, "LATIN1", "21", ddate,
                       1,   {0},  0};
    struct client c = {"C (sent no settings)", NULL, "", dtz, dds, "UTF8", dhour, ddate, 2, {0}, 0};

    a.conn = connect_with_env(a.tz, a.datestyle, "application_name=t04_alpha");
    b.conn = connect_with_env(b.tz, NULL, "application_name=t04_beta client_encoding=LATIN1");
    c.conn = connect_with_env(NULL, NULL, NULL);
    /*
     * C's application_name is whatever it was told at login: "" from PostgreSQL, or the
     * pooler's own name for its backends (fallback_application_name) — never A's or B's.
     */
    static char capp[64];
    const char *reported = PQparameterStatus(c.conn, "application_name");
    CHECK(reported && strcmp(reported, a.app) != 0 && strcmp(reported, b.app) != 0,
          "client C was told application_name %s at login", reported ? reported : "NULL");
    snprintf(capp, sizeof capp, "%s", reported);
    c.app = capp;
    struct client *all[3] = {&a, &b, &c};
    for (int i = 0; i < 3; i++)
        check_reported(all[i]);
    itest_ok("after login each client's ParameterStatus shows its own settings");

    for (int turn = 0; turn < 9; turn++)
        for (int i = 0; i < 2; i++)
            one_turn(all[(i + turn) % 2], turn);
    itest_ok("A and B took 18 alternating turns (BEGIN/COMMIT, simple, extended): each saw its "
             "own application_name, TimeZone, DateStyle, client_encoding in effect");

    /* Then C, which set nothing, joins: it must not inherit A's or B's settings. */
    for (int turn = 0; turn < 9; turn++)
        for (int i = 0; i < 3; i++)
            one_turn(all[(i + turn) % 3], turn);
    itest_ok("with C joining, 27 more turns: C always saw the server defaults, A and B their own");

    int shared = 0;
    for (int i = 0; i < a.npids; i++)
        for (int j = 0; j < b.npids; j++)
            shared += a.pids[i] == b.pids[j];
    if (itest_direct()) {
        itest_note("direct mode: every client has its own backend");
    } else {
        CHECK(shared > 0, "clients A and B never ran on the same backend through a pool of one");
        itest_ok("A and B ran on the same backend (pid %lld)", a.pids[0]);
    }
    for (int i = 0; i < 3; i++)
        PQfinish(all[i]->conn);
    return 0;
}
