/*
 * t08b_malformed — issue 2, acceptance 8 (startup packets; t08a_auth is the rest).
 *
 * Opens raw sockets to the target and sends: a length of 0, a length of 0x7fffffff,
 * 5 random bytes (random, but with a length no server accepts), a valid-length v3
 * startup without `user`, a startup for protocol 2.0, a startup whose last string is
 * not terminated (may also be tolerated: any reply but a hang), plus an SSLRequest and a
 * GSSENCRequest (both must be answered 'N'), a socket that sends half a startup packet and stalls,
 * and 50 sockets that connect and close at once. Asserts:
 *   - every malformed packet gets an ErrorResponse or a clean close (EOF or reset)
 *     within 10 s — never a hang, never another message;
 *   - a normal client works before, while all these sockets are held open (both an
 *     existing connection and a new one), and after they are closed.
 */
#include "itest.h"

enum expect { ERROR_OR_CLOSE, ANY_REPLY, ANSWER_N, NO_ANSWER };

struct probe {
    const char *name;
    char pkt[128];
    size_t len;
    enum expect expect;
    int fd;
};

static void normal_client_works(PGconn *existing, const char *when)
{
    CHECK(QUERY_INT(existing, "SELECT 1 + 1") == 2, "existing client %s", when);
    PGconn *fresh = CONNECT(WP_DB());
    CHECK(QUERY_INT(fresh, "SELECT 2 + 2") == 4, "new client %s", when);
    PQfinish(fresh);
    itest_ok("a normal client works %s (existing connection and a new one)", when);
}

static size_t bytes(struct probe *p, const void *src, size_t n)
{
    memcpy(p->pkt, src, n);
    return n;
}

int main(void)
{
    struct probe probes[9];
    int np = 0;
    struct probe *p;

    PGconn *existing = CONNECT(WP_DB());
    normal_client_works(existing, "before");

    p = &probes[np++];
    *p = (struct probe){"length 0", {0}, 0, ERROR_OR_CLOSE, -1};
    p->len = bytes(p, "\0\0\0\0\0\3\0\0", 8); /* length 0, protocol 3.0 */

    p = &probes[np++];
    *p = (struct probe){"length 0x7fffffff", {0}, 0, ERROR_OR_CLOSE, -1};
    itest_put32(p->pkt, 0x7fffffffu);
    itest_put32(p->pkt + 4, 196608);
    p->len = 8;

    p = &probes[np++];
    *p = (struct probe){"5 random bytes", {0}, 0, ERROR_OR_CLOSE, -1};
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    for (int i = 0; i < 5; i++)
        p->pkt[i] = (char)(rand() & 0xff);
    p->pkt[0] |= 0x40; /* length >= 1 GiB: no server may wait for the rest */
    p->len = 5;
    itest_note("random bytes: %02x %02x %02x %02x %02x", (unsigned char)p->pkt[0],
               (unsigned char)p->pkt[1], (unsigned char)p->pkt[2], (unsigned char)p->pkt[3],
               (unsigned char)p->pkt[4]);

    p = &probes[np++];
    *p = (struct probe){"v3 startup without user", {0}, 0, ERROR_OR_CLOSE, -1};
    p->len = itest_startup(p->pkt, sizeof p->pkt, 196608, "database", WP_DB(), "application_name",
                           "t08b", (char *)NULL);

    p = &probes[np++];
    *p = (struct probe){"protocol 2.0 startup", {0}, 0, ERROR_OR_CLOSE, -1};
    p->len = itest_startup(p->pkt, sizeof p->pkt, 131072, "user", WP_USER(), "database", WP_DB(),
                           (char *)NULL);

    p = &probes[np++];
    *p = (struct probe){"startup with an unterminated string", {0}, 0, ANY_REPLY, -1};
    p->len = itest_startup(p->pkt, sizeof p->pkt, 196608, "user", WP_USER(), "database", WP_DB(),
                           (char *)NULL);
    memset(p->pkt + p->len - 8, 'x', 8); /* overwrite "wptest\0\0"-ish tail: no terminators */

    p = &probes[np++];
    *p = (struct probe){"SSLRequest", {0}, 8, ANSWER_N, -1};
    itest_put32(p->pkt, 8);
    itest_put32(p->pkt + 4, 80877103);

    p = &probes[np++];
    *p = (struct probe){"GSSENCRequest", {0}, 8, ANSWER_N, -1};
    itest_put32(p->pkt, 8);
    itest_put32(p->pkt + 4, 80877104);

    p = &probes[np++];
    *p = (struct probe){"half a startup packet, then silence", {0}, 0, NO_ANSWER, -1};
    itest_put32(p->pkt, 64);
    itest_put32(p->pkt + 4, 196608);
    p->len = 10;
    memcpy(p->pkt + 8, "us", 2);

    for (int i = 0; i < np; i++) {
        probes[i].fd = RAW_CONNECT();
        /* The server may close before reading everything; a failed send is fine then. */
        (void)itest_send(probes[i].fd, probes[i].pkt, probes[i].len);
    }
    for (int i = 0; i < 50; i++)
        close(RAW_CONNECT());

    normal_client_works(existing, "while the bad sockets are open");

    for (int i = 0; i < np; i++) {
        p = &probes[i];
        char type = 0, body[512];
        size_t len = 0;
        if (p->expect == ANSWER_N) {
            char c = 0;
            int r = itest_read_exact(p->fd, &c, 1, itest_now() + 10);
            CHECK(r != ITEST_RAW_TIMEOUT, "%s: no answer within 10 s", p->name);
            CHECK(r == ITEST_RAW_MSG, "%s: connection closed, want the single byte 'N'", p->name);
            /* PostgreSQL built with GSSAPI says 'G' (then would start GSS); a pooler says 'N'. */
            CHECK(c == 'N' || (itest_direct() && c == 'G'), "%s: answered '%c', want 'N'", p->name,
                  c);
            itest_ok("%s answered '%c'", p->name, c);
            continue;
        }
        if (p->expect == NO_ANSWER) {
            int r = itest_read_msg(p->fd, 200, &type, body, sizeof body, &len);
            CHECK(r != ITEST_RAW_MSG || type == 'E', "%s: got message '%c'", p->name, type);
            itest_ok("%s: held open while the normal client worked (%s)", p->name,
                     r == ITEST_RAW_TIMEOUT  ? "no answer yet"
                     : r == ITEST_RAW_CLOSED ? "closed"
                                             : "error");
            continue;
        }
        int r = itest_read_msg(p->fd, 10000, &type, body, sizeof body, &len);
        CHECK(r != ITEST_RAW_TIMEOUT, "%s: no error and no close within 10 s (hang)", p->name);
        if (r == ITEST_RAW_MSG && p->expect == ANY_REPLY && type != 'E') {
            itest_ok("%s: tolerated (answered '%c')", p->name, type);
        } else if (r == ITEST_RAW_MSG) {
            CHECK(type == 'E', "%s: answered with message '%c', want ErrorResponse or close",
                  p->name, type);
            itest_ok("%s: ErrorResponse %s \"%s\"", p->name, itest_error_field(body, len, 'C'),
                     itest_error_field(body, len, 'M'));
        } else {
            itest_ok("%s: connection closed", p->name);
        }
    }
    for (int i = 0; i < np; i++)
        close(probes[i].fd);

    normal_client_works(existing, "after the bad sockets closed");
    PQfinish(existing);
    return 0;
}
