/*
 * admin — the admin console: a client logged in to database `warmpool` (or
 * `pgbouncer`) speaks the simple Query protocol to warmpool itself.
 *
 *   SHOW POOLS|SERVERS|CLIENTS|DATABASES|CONFIG|PREPARED|STATEMENTS|VERSION|HELP
 *        (admin_show.c), STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS (admin_show_stats.c),
 *        LISTS|USERS|MEM|STATE|FDS|PEERS|PEER_POOLS|DNS_HOSTS|DNS_ZONES|SOCKETS|
 *        ACTIVE_SOCKETS (admin_show_lists.c)
 *   SET key = value (admin_set.c); RELOAD, PAUSE, RESUME, KILL, KILL_CLIENT, DISABLE,
 *        ENABLE, RECONNECT, WAIT_CLOSE, SUSPEND, SHUTDOWN (admin_commands.c; answers that
 *        come later: admin_wait.c)                                  (admin_users only)
 *
 * stats_users may only SHOW. Commands are case-insensitive, one per Query, with an
 * optional trailing semicolon. The extended protocol is refused with 0A000 (once per
 * Sync, as PostgreSQL reports an error in a pipeline).
 */
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "warmpool/admin.h"
#include "warmpool/admin_control.h"
#include "warmpool/admin_set.h"
#include "warmpool/auth.h"
#include "warmpool/client.h"
#include "warmpool/config.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/proto.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/timeouts.h"

/* Console queries are short; anything larger is not a console command. */
#define ADMIN_MAX_MESSAGE 65536
/* Extended-protocol input kept while waiting for its Sync. */
#define ADMIN_INPUT_LIMIT (1u << 20)
/* Results a console client has not read yet: beyond this it is not reading. */
#define ADMIN_OUTPUT_LIMIT (64u << 20)
#define ADMIN_MAX_WORDS 4

int admin_is_console_db(const char *dbname)
{
    return strcmp(dbname, "warmpool") == 0 || strcmp(dbname, "pgbouncer") == 0;
}

int admin_may_connect(const char *user)
{
    return config_user_in_list(wp_rt.cfg->admin_users, user) ||
           config_user_in_list(wp_rt.cfg->stats_users, user);
}

/*
 * Until main.c provides a synchronous reload, RELOAD asks for one the way an
 * operator would: SIGHUP, handled by the event loop right after this command.
 */
__attribute__((weak)) void runtime_reload(void)
{
    raise(SIGHUP);
}

/* Until main.c provides it: the signal that asks for that shutdown. */
__attribute__((weak)) void runtime_shutdown(enum wp_shutdown_mode mode)
{
    raise(mode == WP_SHUTDOWN_WAIT_FOR_SERVERS   ? SIGINT
          : mode == WP_SHUTDOWN_WAIT_FOR_CLIENTS ? SIGTERM
                                                 : SIGQUIT);
}

/* ---------------------------------------------------------------- answers */

static void show_help(struct wp_buf *out)
{
    static const char help[] =
        "Console usage\n"
        "\tSHOW HELP|POOLS|STATS|SERVERS|CLIENTS|DATABASES|CONFIG|PREPARED|STATEMENTS|VERSION\n"
        "\tSHOW LISTS|USERS|STATS_TOTALS|STATS_AVERAGES|TOTALS|MEM|STATE|FDS|PEERS|PEER_POOLS\n"
        "\tSHOW SOCKETS|ACTIVE_SOCKETS|DNS_HOSTS|DNS_ZONES|FLEET\n"
        "\tSET key = arg\n"
        "\tRELOAD\n"
        "\tPAUSE [<db>]\n"
        "\tRESUME [<db>]\n"
        "\tDISABLE <db>\n"
        "\tENABLE <db>\n"
        "\tRECONNECT [<db>]\n"
        "\tKILL [<db>]\n"
        "\tKILL_CLIENT <client_id>\n"
        "\tSUSPEND\n"
        "\tSHUTDOWN\n"
        "\tSHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS\n"
        "\tWAIT_CLOSE [<db>]";
    proto_put_notice(out, "00000", help);
    proto_put_command_complete(out, "SHOW");
}

/* ---------------------------------------------------------------- parsing */

/* Split a command into words: blanks separate, "double quotes" keep a name whole. */
static int split_words(char *s, char **words, int max)
{
    int n = 0;
    while (*s) {
        while (isspace((unsigned char)*s))
            s++;
        if (!*s)
            break;
        if (n == max)
            return -1;
        if (*s == '"') {
            char *end = strchr(s + 1, '"');
            if (!end)
                return -1;
            *end = '\0';
            words[n++] = s + 1;
            s = end + 1;
            if (*s && !isspace((unsigned char)*s))
                return -1;
            continue;
        }
        words[n++] = s;
        while (*s && !isspace((unsigned char)*s))
            s++;
        if (*s)
            *s++ = '\0';
    }
    return n;
}

/* Trailing blanks and semicolons go; a semicolon left inside is a second command. */
static int trim_command(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (isspace((unsigned char)s[n - 1]) || s[n - 1] == ';'))
        s[--n] = '\0';
    return strchr(s, ';') ? -1 : 0;
}

static int is_admin_user(const char *user)
{
    return config_user_in_list(wp_rt.cfg->admin_users, user);
}

static void run_show(struct wp_buf *out, const char *user, char **words, int n)
{
    if (n != 2) {
        admin_answer_error(out, "42601", "syntax error: expected SHOW <what>, see SHOW HELP");
        return;
    }
    if (strcasecmp(words[1], "help") == 0) {
        show_help(out);
        return;
    }
    int rc = admin_show(out, words[1], wp_now_ms());
    if (rc == -1)
        rc = admin_show_more(out, words[1], is_admin_user(user));
    if (rc == -3)
        admin_answer_error(out, "42501", "permission denied: SHOW %.32s needs admin_users",
                           words[1]);
    else if (rc == -1)
        admin_answer_error(out, "42601", "unknown SHOW command \"%.64s\", see SHOW HELP", words[1]);
    else if (rc < 0)
        admin_answer_error(out, "53200", "out of memory");
}

static void run_control(struct wp_buf *out, const char *user, char **words, int n,
                        struct admin_wait *wait)
{
    if (!is_admin_user(user)) {
        admin_answer_error(out, "42501", "permission denied: only admin_users may run %.32s",
                           words[0]);
        return;
    }
    admin_run_control(out, user, words, n, wait);
}

/* One command; when it must wait, nothing is appended and *wait says for what. */
static void command_or_wait(struct wp_buf *out, const char *user, const char *sql,
                            struct admin_wait *wait)
{
    char text[1024];
    char *words[ADMIN_MAX_WORDS];
    int n = -1;
    wait->kind = ADMIN_WAIT_NONE;
    if (strlen(sql) < sizeof text) {
        strcpy(text, sql);
        if (trim_command(text) == 0)
            n = split_words(text, words, ADMIN_MAX_WORDS);
    }
    if (!admin_may_connect(user)) {
        /* Checked on every command, not only at login: a RELOAD that took the user out
           of admin_users/stats_users ends its rights in sessions already open. */
        admin_answer_error(out, "42501", "permission denied: not an admin or stats user");
    } else if (admin_is_set(sql)) {
        admin_run_set(out, user, sql);
    } else if (n == 0) {
        proto_put_simple(out, 'I'); /* EmptyQueryResponse */
    } else if (n < 0) {
        admin_answer_error(out, "42601",
                           "syntax error: one console command per query, see SHOW HELP");
    } else if (strcasecmp(words[0], "show") == 0) {
        run_show(out, user, words, n);
    } else if (admin_is_control_verb(words[0])) {
        run_control(out, user, words, n, wait);
    } else {
        admin_answer_error(out, "42601", "syntax error: unknown command \"%.32s\", see SHOW HELP",
                           words[0]);
    }
}

void admin_command(struct wp_buf *out, const char *user, const char *sql)
{
    struct admin_wait wait;
    command_or_wait(out, user, sql, &wait);
    /* Without a client to hold, a wait is answered as it stands (tests, fuzzing). */
    if (wait.kind != ADMIN_WAIT_NONE && !admin_wait_done(&wait, out, wp_now_ms()))
        proto_put_command_complete(out, "WAITING");
    proto_put_ready(out, 'I');
}

/* ---------------------------------------------------------------- protocol */

void admin_welcome(struct wp_client *c)
{
    static const char *const fixed[][2] = {
        {"server_version", "15.0 (warmpool " WARMPOOL_VERSION ")"},
        {"server_encoding", "UTF8"},
        {"client_encoding", "UTF8"},
        {"DateStyle", "ISO, MDY"},
        {"integer_datetimes", "on"},
        {"standard_conforming_strings", "on"},
        {"is_superuser", "off"},
    };
    params_copy(&c->params, &c->startup);
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        proto_put_param_status(&c->conn.out, fixed[i][0], fixed[i][1]);
    const char *app = params_get(&c->params, "application_name");
    proto_put_param_status(&c->conn.out, "application_name", app ? app : "");
    client_issue_cancel_key(c);
    proto_put_ready(&c->conn.out, 'I');
    client_set_state(c, CL_IDLE);
    char tls[96];
    log_info("C-%llu %s/%s@%s: admin console login, %s%s", (unsigned long long)c->id, c->dbname,
             c->user, c->addr, c->conn.tls ? "TLS " : "no TLS",
             tls_describe(c->conn.tls, tls, sizeof tls));
    client_kick_write(c);
    if (c->state != CL_CLOSING && buf_unread(&c->conn.in) > 0)
        admin_input(c);
}

static void protocol_violation(struct wp_client *c, const char *what)
{
    log_warn("C-%llu %s/%s@%s: admin console: %s", (unsigned long long)c->id, c->dbname, c->user,
             c->addr, what);
    client_send_error(c, "FATAL", "08P01", what);
}

static int is_extended(uint8_t type)
{
    return type == 'P' || type == 'B' || type == 'D' || type == 'E' || type == 'C' || type == 'H';
}

/* Bytes up to and including the next Sync, or 0 when it has not arrived. */
static size_t through_sync(const struct wp_client *c)
{
    const uint8_t *p = buf_head(&c->conn.in);
    size_t avail = buf_unread(&c->conn.in), off = 0;
    for (;;) {
        uint8_t type;
        uint32_t len;
        if (proto_scan_header(p + off, avail - off, ADMIN_MAX_MESSAGE, &type, &len) !=
                PROTO_HEADER ||
            avail - off < len)
            return 0;
        off += len;
        if (type == 'S')
            return off;
    }
}

/* One whole message at the head of rbuf; returns 0 to stop reading. */
static int admin_message(struct wp_client *c, uint8_t type, uint32_t len)
{
    const uint8_t *msg = buf_head(&c->conn.in);
    switch (type) {
    case 'Q': {
        if (len < 6 || msg[len - 1] != '\0' || memchr(msg + 5, '\0', len - 6)) {
            protocol_violation(c, "malformed Query message");
            return 0;
        }
        log_debug("C-%llu admin console: %s", (unsigned long long)c->id, (const char *)msg + 5);
        struct admin_wait wait;
        command_or_wait(&c->conn.out, c->user, (const char *)msg + 5, &wait);
        buf_consume(&c->conn.in, len);
        if (c->state == CL_CLOSING)
            return 0;
        if (wait.kind != ADMIN_WAIT_NONE) {
            wait.started_ms = wp_now_ms();
            if (!admin_wait_done(&wait, &c->conn.out, wait.started_ms)) {
                if (admin_wait_start(c, &wait) == 0)
                    return 0; /* answered from admin_waits_check */
                admin_answer_error(&c->conn.out, "53200", "out of memory");
            }
        }
        proto_put_ready(&c->conn.out, 'I');
        return 1;
    }
    case 'X':
        client_close(c, "client sent Terminate");
        return 0;
    case 'S':
        buf_consume(&c->conn.in, len);
        proto_put_ready(&c->conn.out, 'I');
        return 1;
    default:
        break;
    }
    size_t skip = len;
    if (is_extended(type)) {
        skip = through_sync(c);
        if (skip == 0) {
            if (buf_unread(&c->conn.in) > ADMIN_INPUT_LIMIT)
                protocol_violation(c, "extended-protocol batch without Sync");
            return 0;
        }
    }
    buf_consume(&c->conn.in, skip);
    proto_put_error(&c->conn.out, "ERROR", "0A000",
                    "the admin console accepts only the simple query protocol");
    proto_put_ready(&c->conn.out, 'I');
    return 1;
}

void admin_input(struct wp_client *c)
{
    while (c->state != CL_CLOSING && !c->admin_waiting) {
        uint8_t type;
        uint32_t len;
        enum proto_scan r = proto_scan_header(buf_head(&c->conn.in), buf_unread(&c->conn.in),
                                              ADMIN_MAX_MESSAGE, &type, &len);
        if (r == PROTO_BAD_LENGTH) {
            protocol_violation(c, "invalid message length");
            return;
        }
        if (r == PROTO_NEED_MORE || buf_unread(&c->conn.in) < len)
            break;
        if (buf_unread(&c->conn.out) > ADMIN_OUTPUT_LIMIT) {
            client_close(c, "admin console client does not read its results");
            return;
        }
        if (!admin_message(c, type, len))
            break;
    }
    client_kick_write(c);
}
