/*
 * fuzz_config — libFuzzer target for the configuration readers: warmpool.ini through
 * inih and config.c's callbacks (config_load_string), the auth file
 * (auth_userlist_load_string), and the [databases] connection string splitter.
 *
 * Input: one selector byte, then text.
 *   selector % 3 == 0   the text is a whole ini file
 *   selector % 3 == 1   the text is an auth file (userlist.txt)
 *   selector % 3 == 2   the text is the value of one [databases] entry `db = <text>`
 *
 * Checked, abort() on violation:
 *   - failure: err is non-empty and every line reads "<name>:<line>: ..." or
 *     "<name>: ...", with a line number that exists in the input;
 *   - ini success: err is empty, every database and user is found by name, connection
 *     keys/values are non-empty NUL-terminated arrays of nconn entries, forced_user
 *     is one of the values, settings are inside their documented ranges, and the
 *     effective settings of every (db, user) are fully set;
 *   - connection strings that load re-load to the same keys and values when rebuilt
 *     with every value quoted (the splitter and its quoting agree);
 *   - auth file success: user names are non-empty and unique, each is found, and its
 *     kind is what auth_secret_kind says; md5 checks run on every entry.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/auth.h"
#include "warmpool/config.h"

#define NAME "fuzz.ini"

static size_t count_lines(const char *text, size_t n)
{
    size_t lines = 1;
    for (size_t i = 0; i < n; i++)
        lines += text[i] == '\n';
    return lines;
}

/* Every line: "NAME:<n>: msg" with 1 <= n <= max_line, or "NAME: msg", or the note on
   dropped errors. */
static void check_errors(const char *err, size_t errlen, size_t max_line)
{
    if (!memchr(err, '\0', errlen) || err[0] == '\0')
        abort();
    size_t nl = strlen(NAME);
    for (const char *line = err; *line;) {
        const char *end = strchr(line, '\n');
        if (!end)
            end = line + strlen(line); /* a first message may be truncated */
        if (strncmp(line, "(", 1) == 0) {
            line = *end ? end + 1 : end;
            continue;
        }
        if (strncmp(line, NAME, nl) != 0 || line[nl] != ':')
            abort();
        const char *p = line + nl + 1;
        if (*p >= '0' && *p <= '9') {
            unsigned long n = strtoul(p, NULL, 10);
            if (n == 0 || n > max_line)
                abort();
        }
        line = *end ? end + 1 : end;
    }
}

static void check_settings(const struct wp_pool_settings *s)
{
    if (s->pool_mode < WP_MODE_SESSION || s->pool_mode > WP_MODE_STATEMENT ||
        s->min_pool_size < 0 || s->max_pool_size < 1 || s->reserve_pool_size < 0 ||
        s->max_db_connections < 0 || s->query_timeout < 0 || s->query_wait_timeout < 0 ||
        s->client_idle_timeout < 0 || s->idle_transaction_timeout < 0 || s->server_lifetime < 0 ||
        s->server_idle_timeout < 0)
        abort();
}

static void check_db(const struct wp_config *cfg, const struct wp_db_config *db)
{
    if (!db->name || config_find_db(cfg, db->name) != db || db->nconn < 0)
        abort();
    int forced_seen = db->forced_user == NULL;
    for (int i = 0; i < db->nconn; i++) {
        if (!db->conn_keys[i] || !db->conn_values[i] || db->conn_keys[i][0] == '\0')
            abort();
        forced_seen |= db->forced_user == db->conn_values[i];
    }
    if (db->nconn > 0 && (db->conn_keys[db->nconn] || db->conn_values[db->nconn]))
        abort();
    if (!forced_seen)
        abort();
}

static void check_config(const struct wp_config *cfg)
{
    check_settings(&cfg->pool);
    if (cfg->listen_port < 1 || cfg->listen_port > 65535 || cfg->max_client_conn < 1 ||
        cfg->max_prepared_statements < 0 || cfg->pkt_buf < 4096 || !cfg->admin_users ||
        !cfg->stats_users || !cfg->ignore_startup_parameters)
        abort();
    for (int i = 0; i < cfg->ndbs; i++)
        check_db(cfg, &cfg->dbs[i]);
    for (int u = -1; u < cfg->nusers; u++) {
        const struct wp_user_config *user = u < 0 ? NULL : &cfg->users[u];
        if (user && (!user->name || config_find_user(cfg, user->name) != user))
            abort();
        for (int i = -1; i < cfg->ndbs; i++) {
            struct wp_pool_settings eff;
            config_effective(cfg, i < 0 ? NULL : &cfg->dbs[i], user, &eff);
            check_settings(&eff);
        }
    }
}

static int load_ini(const char *text, size_t n, struct wp_config *cfg)
{
    char err[4096];
    memset(err, 'x', sizeof err);
    int rc = config_load_string(NAME, text, n, cfg, err, sizeof err);
    if (rc == 0) {
        if (err[0] != '\0')
            abort();
        check_config(cfg);
    } else {
        check_errors(err, sizeof err, count_lines(text, n));
    }
    return rc;
}

static char *text_of(const uint8_t *data, size_t n)
{
    char *copy = malloc(n ? n : 1);
    if (!copy)
        abort();
    memcpy(copy, data, n);
    return copy;
}

static void append(char **buf, size_t *len, const char *s, size_t n)
{
    char *grown = realloc(*buf, *len + n + 1);
    if (!grown)
        abort();
    memcpy(grown + *len, s, n);
    *len += n;
    grown[*len] = '\0';
    *buf = grown;
}

/* "[databases]\n<name> = " + value, as one file. */
static char *db_file(const char *value, size_t n, size_t *len)
{
    static const char head[] = "[databases]\nfuzzdb = ";
    char *buf = NULL;
    *len = 0;
    append(&buf, len, head, sizeof head - 1);
    append(&buf, len, value, n);
    return buf;
}

/* Rebuild the entry with every value quoted; it must load to the same pairs. */
static void check_conn_round_trip(const struct wp_db_config *db)
{
    char *value = NULL;
    size_t len = 0;
    for (int i = 0; i < db->nconn; i++) {
        if (strcmp(db->conn_keys[i], "dbname") == 0 && i == db->nconn - 1 &&
            strcmp(db->conn_values[i], db->name) == 0)
            continue; /* added by the loader; added again on reload */
        append(&value, &len, db->conn_keys[i], strlen(db->conn_keys[i]));
        append(&value, &len, "='", 2);
        for (const char *v = db->conn_values[i]; *v; v++) {
            if (*v == '\'' || *v == '\\')
                append(&value, &len, "\\", 1);
            append(&value, &len, v, 1);
        }
        append(&value, &len, "' ", 2);
    }
    size_t flen;
    char *file = db_file(value ? value : "", len, &flen);
    struct wp_config again;
    if (load_ini(file, flen, &again) != 0 || again.ndbs != 1 || again.dbs[0].nconn != db->nconn)
        abort();
    for (int i = 0; i < db->nconn; i++)
        if (strcmp(again.dbs[0].conn_keys[i], db->conn_keys[i]) != 0 ||
            strcmp(again.dbs[0].conn_values[i], db->conn_values[i]) != 0)
            abort();
    config_free(&again);
    free(file);
    free(value);
}

static void fuzz_userlist(const char *text, size_t n)
{
    struct wp_userlist list = {NULL, 0};
    char err[512];
    memset(err, 'x', sizeof err);
    if (auth_userlist_load_string(NAME, text, n, &list, err, sizeof err) < 0) {
        check_errors(err, sizeof err, count_lines(text, n));
        if (list.entries || list.n)
            abort();
        return;
    }
    static const uint8_t salt[4] = {1, 2, 3, 4};
    for (int i = 0; i < list.n; i++) {
        const struct wp_user_secret *e = &list.entries[i];
        if (!e->user || !e->secret || e->user[0] == '\0' ||
            auth_userlist_find(&list, e->user) != e || e->kind != auth_secret_kind(e->secret))
            abort();
        char md5[36];
        auth_md5_secret("password", e->user, md5);
        auth_md5_check(e, salt, md5);
    }
    auth_userlist_free(&list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    int mode = data[0] % 3;
    char *text = text_of(data + 1, size - 1);
    size_t n = size - 1;
    struct wp_config cfg;
    if (mode == 0) {
        if (load_ini(text, n, &cfg) == 0)
            config_free(&cfg);
    } else if (mode == 1) {
        fuzz_userlist(text, n);
    } else if (!memchr(text, '\n', n)) {
        size_t flen;
        char *file = db_file(text, n, &flen);
        if (load_ini(file, flen, &cfg) == 0) {
            if (cfg.ndbs != 1)
                abort();
            check_conn_round_trip(&cfg.dbs[0]);
            config_free(&cfg);
        }
        free(file);
    }
    free(text);
    return 0;
}
