/*
 * admin_set — the console's SET (include/warmpool/admin_set.h).
 *
 * The command is read with the SQL lexer (sqllex.c), so quotes, comments and ';' are
 * PostgreSQL's; the change itself is runtime_set_setting's (main.c):
 * the file is loaded again with every SET value over it and installed as a reload
 * does, so a SET value is checked exactly as the same line in the file would be.
 * The SQLSTATEs are PostgreSQL's for its own SET: 42704 undefined_object for an
 * unknown parameter, 55P02 cant_change_runtime_param, 22023 invalid_parameter_value.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "warmpool/admin_set.h"
#include "warmpool/config.h"
#include "warmpool/config_keys.h"
#include "warmpool/log.h"
#include "warmpool/proto.h"
#include "warmpool/runtime.h"
#include "warmpool/sqllex.h"

/* Longest value taken: a server_check_query or an auth_query fits easily. */
#define SET_VALUE_MAX 4096
#define SET_KEY_MAX 64

/* Without main.c (unit tests, fuzzing) there is no configuration file to reload. */
__attribute__((weak)) int runtime_set_setting(const char *key, const char *value, char *err,
                                              size_t errlen)
{
    (void)key;
    (void)value;
    snprintf(err, errlen, "SET needs a running warmpool");
    return -1;
}

/* The command's first token, after sqllex_init. */
static void first_token(struct sqllex *lx, struct sqllex_token *t, const char *sql)
{
    sqllex_init(lx, sql, strlen(sql), 0);
    sqllex_next(lx, t);
}

int admin_is_set(const char *sql)
{
    struct sqllex lx;
    struct sqllex_token t;
    first_token(&lx, &t, sql);
    return sqllex_is_word(&lx, &t, "set");
}

/* A '…' constant's text, '' read as one quote; false for the other kinds of string
   (E'…', $$…$$) and for a value too long. */
static bool quoted_value(const struct sqllex *lx, const struct sqllex_token *t, char *value)
{
    size_t n = 0;
    if (lx->text[t->start] != '\'')
        return false;
    for (size_t i = t->start + 1; i + 1 < t->end; i++) {
        if (n + 1 >= SET_VALUE_MAX)
            return false;
        value[n++] = lx->text[i];
        i += lx->text[i] == '\''; /* the second quote of '' */
    }
    value[n] = '\0';
    return true;
}

/* A bare value: the text from t to the command's end or ';', as written (PgBouncer's
   own SET takes `SET log_connections = 1`). Leaves t on the token after it. */
static bool bare_value(struct sqllex *lx, struct sqllex_token *t, char *value)
{
    size_t start = t->start, end = t->start;
    for (; t->kind != SQLLEX_END && t->kind != SQLLEX_SEMI; sqllex_next(lx, t)) {
        if (t->kind != SQLLEX_WORD && t->kind != SQLLEX_OTHER)
            return false;
        end = t->end;
    }
    if (end == start || end - start >= SET_VALUE_MAX)
        return false;
    memcpy(value, lx->text + start, end - start);
    value[end - start] = '\0';
    return true;
}

/* SET key = value | SET key TO value, then nothing but ';'. */
static bool parse_set(const char *sql, char *key, char *value)
{
    struct sqllex lx;
    struct sqllex_token t;
    first_token(&lx, &t, sql);
    sqllex_next(&lx, &t);
    if (t.kind != SQLLEX_WORD || t.end - t.start >= SET_KEY_MAX)
        return false;
    memcpy(key, sql + t.start, t.end - t.start);
    key[t.end - t.start] = '\0';
    sqllex_next(&lx, &t);
    if (!sqllex_is_word(&lx, &t, "to") && !(t.kind == SQLLEX_OTHER && sql[t.start] == '='))
        return false;
    sqllex_next(&lx, &t);
    if (t.kind == SQLLEX_STRING) {
        if (!quoted_value(&lx, &t, value))
            return false;
        sqllex_next(&lx, &t);
    } else if (!bare_value(&lx, &t, value)) {
        return false;
    }
    while (t.kind == SQLLEX_SEMI)
        sqllex_next(&lx, &t);
    return t.kind == SQLLEX_END && !lx.broken;
}

/* runtime_set_setting's message on one line: the loader's are one per line. */
static void one_line(char *msg)
{
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    for (char *nl = strchr(msg, '\n'); nl; nl = strchr(nl, '\n'))
        *nl = ';';
}

void admin_run_set(struct wp_buf *out, const char *user, const char *sql)
{
    char key[SET_KEY_MAX], value[SET_VALUE_MAX], err[1024];
    int row;

    if (!config_user_in_list(wp_rt.cfg->admin_users, user)) {
        proto_put_error(out, "ERROR", "42501", "permission denied: only admin_users may run SET");
        return;
    }
    if (!parse_set(sql, key, value)) {
        proto_put_error(out, "ERROR", "42601",
                        "syntax error in SET command: use SET key = value or SET key TO value, "
                        "the value bare or in single quotes");
        return;
    }
    switch (config_key_settable(key, &row, err, sizeof err)) {
    case WP_KEY_UNKNOWN:
        proto_put_error(out, "ERROR", "42704", err);
        return;
    case WP_KEY_NEEDS_RESTART:
        proto_put_error(out, "ERROR", "55P02", err);
        return;
    case WP_KEY_SETTABLE:
        break;
    }
    if (runtime_set_setting(key, value, err, sizeof err) < 0) {
        one_line(err);
        proto_put_error(out, "ERROR", "22023", err);
        return;
    }
    log_info("admin console: SET %s = %s by %s", wp_keys[row].name, value, user);
    /* PgBouncer's tag names what was set, as the client spelled the key. */
    char tag[SET_KEY_MAX + SET_VALUE_MAX + 8];
    snprintf(tag, sizeof tag, "SET %s=%s", key, value);
    proto_put_command_complete(out, tag);
}
