/*
 * admin_set — the console's SET (include/warmpool/admin_set.h).
 *
 * The command is parsed here; the change itself is runtime_set_setting's (main.c):
 * the file is loaded again with every SET value over it and installed as a reload
 * does, so a SET value is checked exactly as the same line in the file would be.
 * The SQLSTATEs are PostgreSQL's for its own SET: 42704 undefined_object for an
 * unknown parameter, 55P02 cant_change_runtime_param, 22023 invalid_parameter_value.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "warmpool/admin_set.h"
#include "warmpool/config.h"
#include "warmpool/config_keys.h"
#include "warmpool/log.h"
#include "warmpool/proto.h"
#include "warmpool/runtime.h"

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

static const char *skip_blanks(const char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

/* The word at p (letters, digits, '_'), case-insensitively equal to `word`: the text
   after it, else NULL. */
static const char *after_word(const char *p, const char *word)
{
    size_t n = strlen(word);
    if (strncasecmp(p, word, n) != 0 || isalnum((unsigned char)p[n]) || p[n] == '_')
        return NULL;
    return p + n;
}

int admin_is_set(const char *sql)
{
    return after_word(skip_blanks(sql), "set") != NULL;
}

/* A key name into key; the text after it, or NULL when there is none or it is long. */
static const char *parse_key(const char *p, char *key)
{
    size_t n = 0;
    while (isalnum((unsigned char)p[n]) || p[n] == '_')
        n++;
    if (n == 0 || n >= SET_KEY_MAX)
        return NULL;
    memcpy(key, p, n);
    key[n] = '\0';
    return p + n;
}

/* 'text' with '' for a quote; the text after the closing quote, or NULL. */
static const char *parse_quoted(const char *p, char *value)
{
    size_t n = 0;
    for (p++; *p; p++) {
        if (*p == '\'' && p[1] != '\'')
            break;
        p += *p == '\'';
        if (n + 1 >= SET_VALUE_MAX)
            return NULL;
        value[n++] = *p;
    }
    value[n] = '\0';
    return *p == '\'' ? p + 1 : NULL;
}

/* The value, bare up to the end of the command or quoted; trailing blanks and ';' end
   the command. false when malformed. */
static bool parse_value(const char *p, char *value)
{
    if (*p == '\'') {
        p = parse_quoted(p, value);
    } else {
        size_t n = strlen(p);
        while (n > 0 && (isspace((unsigned char)p[n - 1]) || p[n - 1] == ';'))
            n--;
        if (n == 0 || n >= SET_VALUE_MAX || memchr(p, '\'', n) || memchr(p, ';', n))
            return false;
        memcpy(value, p, n);
        value[n] = '\0';
        p += n;
    }
    if (!p)
        return false;
    p = skip_blanks(p);
    while (*p == ';' || isspace((unsigned char)*p))
        p++;
    return *p == '\0';
}

/* SET key = value | SET key TO value. */
static bool parse_set(const char *sql, char *key, char *value)
{
    const char *p = after_word(skip_blanks(sql), "set");
    if (!p || !isspace((unsigned char)*p) || !(p = parse_key(skip_blanks(p), key)))
        return false;
    p = skip_blanks(p);
    if (*p == '=')
        p++;
    else if (!(p = after_word(p, "to")))
        return false;
    return parse_value(skip_blanks(p), value);
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
    proto_put_command_complete(out, "SET");
}
