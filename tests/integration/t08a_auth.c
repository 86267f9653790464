/*
 * t08a_auth — issue 2, acceptance 8 (authentication half; t08b_malformed is the rest).
 *
 * WP_AUTH_TARGETS lists "label:auth_type:port" targets (run.sh starts one warmpool per
 * client auth setup: md5 with a plaintext userlist, scram-sha-256 with a plaintext
 * userlist, scram-sha-256 with a SCRAM secret from pg_authid, md5 with an md5 hash,
 * trust). For each target:
 *   - the first message after a raw startup packet is the expected authentication
 *     request (md5 → AuthenticationMD5Password, scram-sha-256 → AuthenticationSASL
 *     offering SCRAM-SHA-256, trust → AuthenticationOk), so the method is really used;
 *   - libpq logs in with the right password and reaches the real database as the user;
 *   - a wrong password fails with SQLSTATE 28P01 and "password authentication failed"
 *     (trust: logs in regardless);
 *   - an unknown database gets the same first authentication request as a known one;
 *     with a wrong password, or as an unknown user, it fails with 28P01 as for a known
 *     database; only with the right password (or trust) does it fail with 3D000 and a
 *     message naming it, as PostgreSQL answers (it authenticates first);
 *   - an unknown user fails with 28P01 or 28000 (not trust);
 *   - a client that logged in first keeps working after each failure.
 * Also: a login over the unix socket in WP_SOCKET_DIR works (main target).
 */
#include "itest.h"

static PGconn *keeper; /* a logged-in client that must keep working throughout */

static void keeper_alive(const char *after)
{
    PGresult *r = PQexec(keeper, "SELECT 42");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || strcmp(PQgetvalue(r, 0, 0), "42") != 0)
        FAIL_CONN(keeper, "the already connected client stopped working after %s: %s", after,
                  PQresultErrorMessage(r));
    PQclear(r);
}

static void conninfo(char *buf, size_t cap, const char *port, const char *user,
                     const char *password, const char *db)
{
    buf[0] = '\0';
    itest_kv(buf, cap, "host", WP_HOST());
    itest_kv(buf, cap, "port", port);
    itest_kv(buf, cap, "user", user);
    itest_kv(buf, cap, "password", password);
    itest_kv(buf, cap, "dbname", db);
    itest_kv(buf, cap, "connect_timeout", "10");
}

/* The first authentication request code after a raw startup (-1: none/error). */
static int first_auth_request(const char *port, const char *db, char *mechs, size_t cap)
{
    char pkt[256], type, body[512];
    size_t n =
        itest_startup(pkt, sizeof pkt, 196608, "user", WP_USER(), "database", db, (char *)NULL);
    size_t len;
    int fd = itest_tcp_connect(__FILE__, __LINE__, WP_HOST(), port);
    CHECK(itest_send(fd, pkt, n) == 0, "send startup: %s", strerror(errno));
    int r = itest_read_msg(fd, 10000, &type, body, sizeof body, &len);
    close(fd);
    CHECK(r == ITEST_RAW_MSG, "no reply to a startup packet on port %s (%s)", port,
          r == ITEST_RAW_TIMEOUT ? "timeout" : "closed");
    if (type == 'E')
        FAIL("startup for database %s on port %s answered with error %s: %s", db, port,
             itest_error_field(body, len, 'C'), itest_error_field(body, len, 'M'));
    CHECK(type == 'R' && len >= 4, "startup on port %s answered with message '%c'", port, type);
    int code = (int)itest_get32(body);
    mechs[0] = '\0';
    if (code == 10) /* AuthenticationSASL: NUL-separated mechanism names */
        for (size_t i = 4; i < len && i < sizeof body && body[i]; i += strlen(body + i) + 1)
            snprintf(mechs + strlen(mechs), cap - strlen(mechs), "%s ", body + i);
    return code;
}

static void expect_login_error(const char *label, const char *ci, const char *states,
                               const char *needle, const char *what)
{
    char state[6], msg[1024];
    CHECK(itest_connect_error(__FILE__, __LINE__, ci, state, msg, sizeof msg),
          "%s: %s was accepted", label, what);
    CHECK(state[0] && strstr(states, state) != NULL,
          "%s: %s failed with SQLSTATE '%s', want %s: %s", label, what, state, states, msg);
    CHECK(!needle || strstr(msg, needle), "%s: %s: message lacks \"%s\": %s", label, what, needle,
          msg);
    keeper_alive(what);
    itest_ok("%s: %s -> %s", label, what, state);
}

/* As PostgreSQL: whether a database exists is told only to a client that authenticated.
   Before that, an unknown database gets the same request and the same refusal. */
static void check_unknown_database(const char *label, const char *port, int code, int trust)
{
    char ci[1024], mechs[256];
    int unknown_code = first_auth_request(port, "t08_nosuchdb", mechs, sizeof mechs);
    CHECK(unknown_code == code, "%s: unknown database: first auth request %d, want %d as for %s",
          label, unknown_code, code, WP_DB());
    itest_ok("%s: unknown database: auth request %d, as for a known one", label, code);
    if (!trust) {
        conninfo(ci, sizeof ci, port, WP_USER(), "not-the-password", "t08_nosuchdb");
        expect_login_error(label, ci, "28P01", "password authentication failed",
                           "unknown database, wrong password");
        conninfo(ci, sizeof ci, port, "t08_nosuchuser", "whatever", "t08_nosuchdb");
        expect_login_error(label, ci, "28P01", "password authentication failed",
                           "unknown database, unknown user");
    }
    conninfo(ci, sizeof ci, port, WP_USER(), WP_PASSWORD(), "t08_nosuchdb");
    expect_login_error(label, ci, "3D000", "database \"t08_nosuchdb\" does not exist",
                       "unknown database, right password");
}

static void check_target(const char *label, const char *method, const char *port)
{
    char ci[1024], mechs[256];
    int trust = strcmp(method, "trust") == 0;

    int code = first_auth_request(port, WP_DB(), mechs, sizeof mechs);
    if (strcmp(method, "md5") == 0)
        CHECK(code == 5, "%s: first auth request is %d, want 5 (MD5Password)", label, code);
    else if (strcmp(method, "scram-sha-256") == 0)
        CHECK(code == 10 && strstr(mechs, "SCRAM-SHA-256 "),
              "%s: first auth request is %d (%s), want 10 (SASL) offering SCRAM-SHA-256", label,
              code, mechs);
    else if (trust)
        CHECK(code == 0, "%s: first auth request is %d, want 0 (AuthenticationOk)", label, code);
    else
        FAIL("%s: unknown auth type %s in WP_AUTH_TARGETS", label, method);
    itest_ok("%s: server asks for %s (auth request %d%s%s)", label, method, code,
             mechs[0] ? ": " : "", mechs);

    conninfo(ci, sizeof ci, port, WP_USER(), WP_PASSWORD(), WP_DB());
    PGconn *c = itest_connect_conninfo(__FILE__, __LINE__, ci);
    PGresult *r = QUERY(c, "SELECT current_user, current_database(), 6 * 7");
    CHECK_STR(PQgetvalue(r, 0, 0), WP_USER(), "current_user");
    CHECK_STR(PQgetvalue(r, 0, 1), PG_DB(), "current_database()");
    CHECK_STR(PQgetvalue(r, 0, 2), "42", "6 * 7");
    PQclear(r);
    PQfinish(c);
    itest_ok("%s: right password logs in as %s to %s", label, WP_USER(), PG_DB());

    conninfo(ci, sizeof ci, port, WP_USER(), "not-the-password", WP_DB());
    if (trust) {
        c = itest_connect_conninfo(__FILE__, __LINE__, ci);
        CHECK(QUERY_INT(c, "SELECT 1") == 1, "trust login");
        PQfinish(c);
        itest_ok("%s: trust ignores the password", label);
    } else {
        expect_login_error(label, ci, "28P01", "password authentication failed", "wrong password");
        conninfo(ci, sizeof ci, port, "t08_nosuchuser", "whatever", WP_DB());
        expect_login_error(label, ci, "28P01 28000", NULL, "unknown user");
    }
    check_unknown_database(label, port, code, trust);
}

int main(void)
{
    char targets[1024];
    keeper = CONNECT(WP_DB());
    keeper_alive("connecting");

    snprintf(targets, sizeof targets, "%s", itest_env("WP_AUTH_TARGETS", "main:md5:6432"));
    int n = 0;
    for (char *save = NULL, *t = strtok_r(targets, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        char *label = t, *method = strchr(t, ':'), *port = method ? strchr(method + 1, ':') : NULL;
        CHECK(method && port, "bad WP_AUTH_TARGETS entry '%s' (want label:auth_type:port)", t);
        *method++ = '\0';
        *port++ = '\0';
        check_target(label, method, port);
        n++;
    }
    CHECK(n > 0, "WP_AUTH_TARGETS is empty");

    const char *dir = getenv("WP_SOCKET_DIR");
    if (dir && dir[0]) {
        char ci[1024] = "";
        itest_kv(ci, sizeof ci, "host", dir);
        itest_kv(ci, sizeof ci, "port", WP_PORT());
        itest_kv(ci, sizeof ci, "user", WP_USER());
        itest_kv(ci, sizeof ci, "password", WP_PASSWORD());
        itest_kv(ci, sizeof ci, "dbname", WP_DB());
        itest_kv(ci, sizeof ci, "connect_timeout", "10");
        PGconn *c = itest_connect_conninfo(__FILE__, __LINE__, ci);
        CHECK(QUERY_INT(c, "SELECT 7") == 7, "query over the unix socket");
        PQfinish(c);
        itest_ok("login and query over the unix socket in %s", dir);
    }
    keeper_alive("all login attempts");
    PQfinish(keeper);
    return 0;
}
