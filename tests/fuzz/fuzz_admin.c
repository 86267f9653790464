/*
 * fuzz_admin — libFuzzer target for the admin console command parser (admin_command
 * in admin.c, with the SHOW renderers of admin_show.c over an empty pooler).
 *
 * Input: one selector byte choosing who runs the command (0 = an admin_users member,
 * 1 = a stats_users member, 2 = a user in neither list), then the command text (NUL
 * bytes end it, as in a Query message).
 *
 * Checked, abort() on violation:
 *   - the answer is a well-framed message stream ending in exactly one
 *     ReadyForQuery('I'), with one result before it (rows and CommandComplete,
 *     EmptyQueryResponse, or one ErrorResponse carrying a SQLSTATE);
 *   - authorization: a user who is not in admin_users never gets RELOAD, PAUSE,
 *     RESUME, KILL, SHUTDOWN or another control command through: no reload or
 *     shutdown is requested,
 *     no pool changes its pause state, and the answer is an error (42501 when the
 *     command word is an admin verb);
 *   - an admin command that succeeded says so with its own CommandComplete tag.
 */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "warmpool/admin.h"
#include "warmpool/admin_control.h"
#include "warmpool/db_state.h"
#include "warmpool/pool.h"
#include "warmpool/proto.h"
#include "warmpool/runtime.h"

static int reloads;
void runtime_reload(void)
{
    reloads++;
}

static int terms;
void runtime_shutdown(enum wp_shutdown_mode mode)
{
    (void)mode;
    terms++;
}

static struct wp_config cfg;
static char *admins[] = {"boss", NULL}, *stats[] = {"viewer", NULL}, *none[] = {NULL};
static struct wp_db_config dbs[1];
static struct wp_pool pool;

static void init_world(void)
{
    if (wp_rt.cfg)
        return;
    cfg.admin_users = admins;
    cfg.stats_users = stats;
    cfg.ignore_startup_parameters = none;
    cfg.max_client_conn = 100;
    cfg.stats_top_statements = 10;
    cfg.max_prepared_statements = 10;
    cfg.listen_addr = "127.0.0.1";
    cfg.unix_socket_dir = "/tmp";
    dbs[0].name = "app";
    dbs[0].conn_keys = (char *[]){NULL};
    dbs[0].conn_values = (char *[]){NULL};
    cfg.dbs = dbs;
    cfg.ndbs = 1;
    wp_rt.cfg = &cfg;
    list_init(&wp_rt.pools);
    list_init(&wp_rt.clients);
    registry_init(&wp_rt.registry);
    /* One pool of "app", with no servers, so PAUSE/RESUME have something to change
       and RESUME finds nobody waiting and nothing to launch. */
    pool.dbname = "app";
    pool.user = "u";
    pool.db = &dbs[0];
    pool.settings.max_pool_size = 0;
    pool.retry_after_ms = INT64_MAX; /* never connects */
    list_init(&pool.idle);
    list_init(&pool.active);
    list_init(&pool.busy);
    list_init(&pool.waiting);
    list_init(&pool.welcoming);
    list_push_tail(&wp_rt.pools, &pool.node);
}

/* Walk the answer; returns the type of the one result before ReadyForQuery. */
static uint8_t check_answer(const struct wp_buf *out, const char **sqlstate, char *tag,
                            size_t taglen)
{
    const uint8_t *p = buf_head(out);
    size_t left = buf_unread(out);
    uint8_t result = 0;
    int ready = 0;
    *sqlstate = NULL;
    tag[0] = '\0';
    while (left > 0) {
        uint8_t type;
        uint32_t len;
        if (proto_scan_header(p, left, UINT32_MAX, &type, &len) != PROTO_HEADER || len > left ||
            ready)
            abort(); /* broken framing, or bytes after ReadyForQuery */
        if (type == 'Z') {
            if (len != 6 || p[5] != 'I')
                abort();
            ready = 1;
        } else if (type == 'E') {
            if (result == 'E')
                abort();
            result = 'E';
            *sqlstate = proto_error_field(p + 5, len - 5, 'C');
            if (!*sqlstate || strlen(*sqlstate) != 5)
                abort();
        } else if (type == 'C') {
            result = 'C';
            size_t n = strnlen((const char *)p + 5, len - 5);
            if (n == len - 5 || n >= taglen)
                abort();
            memcpy(tag, p + 5, n + 1);
        } else if (type == 'I') {
            result = 'I';
        } else if (type != 'T' && type != 'D' && type != 'N') {
            abort();
        }
        p += len;
        left -= len;
    }
    if (!ready || !result)
        abort();
    return result;
}

/* The first word, as the console splits it. */
static void first_word(const char *sql, char *word, size_t len)
{
    while (*sql == ' ' || (*sql >= '\t' && *sql <= '\r'))
        sql++;
    if (*sql == '"')
        sql++;
    size_t n = 0;
    while (sql[n] && sql[n] != ' ' && !(sql[n] >= '\t' && sql[n] <= '\r') && sql[n] != '"' &&
           sql[n] != ';' && n + 1 < len) {
        word[n] = sql[n];
        n++;
    }
    word[n] = '\0';
}

static int is_admin_verb(const char *w)
{
    static const char *const verbs[] = {"reload",  "pause",     "resume",     "kill",
                                        "shutdown", "kill_client", "disable",  "enable",
                                        "reconnect", "wait_close", "suspend"};
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strcasecmp(w, verbs[i]) == 0)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const users[] = {"boss", "viewer", "stranger"};
    init_world();
    if (size < 1 || size > 4096)
        return 0;
    const char *user = users[data[0] % 3];
    char *sql = malloc(size);
    if (!sql)
        abort();
    memcpy(sql, data + 1, size - 1);
    sql[size - 1] = '\0';

    int reloads_before = reloads, terms_before = terms, paused_before = pool.paused;
    struct wp_buf out = {0};
    admin_command(&out, user, sql);
    const char *sqlstate;
    char tag[64], word[64];
    uint8_t result = check_answer(&out, &sqlstate, tag, sizeof tag);

    first_word(sql, word, sizeof word);
    int privileged = strcmp(user, "boss") == 0;
    int changed =
        reloads != reloads_before || terms != terms_before || pool.paused != paused_before;
    if (!privileged) {
        if (changed)
            abort(); /* an admin command ran without its authorization */
        if (is_admin_verb(word) && result == 'C')
            abort();
        if (is_admin_verb(word) && result == 'E' && strcmp(sqlstate, "42501") != 0 &&
            strcmp(sqlstate, "42601") != 0)
            abort();
    }
    if (changed && (result != 'C' || !is_admin_verb(tag)))
        abort(); /* something happened but the answer does not say it did */
    if (reloads != reloads_before && strcmp(tag, "RELOAD") != 0)
        abort();
    if (terms != terms_before && strcmp(tag, "SHUTDOWN") != 0)
        abort();
    /* Every input starts from a pooler nothing was done to. */
    if (admin_suspended())
        admin_command(&out, "boss", "RESUME");
    db_state_clear();
    pool.paused = 0;
    buf_free(&out);
    free(sql);
    buf_cache_clear();
    return 0;
}
