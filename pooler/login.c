/*
 * login — the startup phase of a client: SSL/GSSENC refusal, CancelRequest, the v3
 * startup packet, and the password exchange (trust, cleartext, md5, SCRAM-SHA-256)
 * against the auth file. Ends by handing the client to its pool.
 *
 * Nothing before authentication depends on whether the user or the database exists:
 * unknown users get a full exchange that fails like a wrong password, and the database
 * is looked up only once the client has proved who it is (PostgreSQL's order).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/admin.h"
#include "warmpool/auth.h"
#include "warmpool/authq.h"
#include "warmpool/cancel.h"
#include "warmpool/client.h"
#include "warmpool/client_limits.h"
#include "warmpool/db_state.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/proto.h"
#include "warmpool/runtime.h"
#include "warmpool/scram.h"
#include "warmpool/tls.h"

/* Before authentication nobody gets to send big messages. */
#define LOGIN_MAX_MESSAGE 8192

enum login_method { METHOD_TRUST, METHOD_PLAIN, METHOD_MD5, METHOD_SCRAM };

/* SCRAM keys derived from plaintext passwords, so PBKDF2 runs once per user. */
struct cached_keys {
    struct cached_keys *next;
    char *user;
    char *password;
    struct scram_keys keys;
};
static struct cached_keys *key_cache;

void login_forget_cached_keys(void)
{
    while (key_cache) {
        struct cached_keys *k = key_cache;
        key_cache = k->next;
        free(k->user);
        free(k->password);
        free(k);
    }
}

static const struct scram_keys *keys_for_plain(const char *user, const char *password)
{
    for (struct cached_keys *k = key_cache; k; k = k->next)
        if (strcmp(k->user, user) == 0 && strcmp(k->password, password) == 0)
            return &k->keys;
    struct cached_keys *k = calloc(1, sizeof *k);
    uint8_t salt[16];
    if (!k || auth_random(salt, sizeof salt) < 0 ||
        scram_keys_from_password(password, salt, sizeof salt, wp_rt.cfg->scram_iterations,
                                 &k->keys) < 0) {
        free(k);
        return NULL;
    }
    k->user = strdup(user);
    k->password = strdup(password);
    k->next = key_cache;
    key_cache = k;
    return &k->keys;
}

/* auth_file first (as in PgBouncer), then what auth_query found for this client. */
static const struct wp_user_secret *find_secret(const struct wp_client *c)
{
    const struct wp_user_secret *secret = auth_userlist_find(&wp_rt.users, c->user);
    return secret ? secret : c->looked_up;
}

/* The client always gets PostgreSQL's one message; only the log says why. */
static void fail_auth(struct wp_client *c)
{
    const struct wp_user_secret *secret = find_secret(c);
    char authq_why[96];
    snprintf(authq_why, sizeof authq_why, " (%s)", authq_outcome_text(c->lookup_outcome));
    const char *why = !secret && c->asked_authq     ? authq_why
                      : !secret                     ? " (user not in auth_file)"
                      : !auth_secret_usable(secret) ? " (empty secret in auth_file)"
                      : secret == c->looked_up      ? " (secret from auth_query)"
                                                    : "";
    char msg[256];
    snprintf(msg, sizeof msg, "password authentication failed for user \"%s\"", c->user);
    log_warn("C-%llu %s/%s@%s: password authentication failed%s", (unsigned long long)c->id,
             c->dbname, c->user, c->addr, why);
    client_send_error(c, "FATAL", "28P01", msg);
}

static void protocol_violation(struct wp_client *c, const char *message)
{
    log_warn("C-%llu %s: protocol violation: %s", (unsigned long long)c->id, c->addr, message);
    client_send_error(c, "FATAL", "08P01", message);
}

/* A startup packet over a bound (54000) or malformed (08P01): FATAL, then close. */
static void bad_startup(struct wp_client *c, const char *sqlstate, const char *message)
{
    log_warn("C-%llu %s: bad startup packet (%s): %s", (unsigned long long)c->id, c->addr, sqlstate,
             message);
    client_send_error(c, "FATAL", sqlstate, message);
}

/* After AuthenticationOk, as PostgreSQL answers an authenticated client. */
static void refuse_unknown_database(struct wp_client *c)
{
    char msg[256];
    snprintf(msg, sizeof msg, "database \"%s\" does not exist", c->dbname);
    log_warn("C-%llu %s/%s@%s: unknown database", (unsigned long long)c->id, c->dbname, c->user,
             c->addr);
    client_send_error(c, "FATAL", "3D000", msg);
}

/* DISABLE on the console: new logins are refused as PostgreSQL refuses them for a
   database with datallowconn off; clients already in keep working. */
static void refuse_disabled_database(struct wp_client *c)
{
    char msg[256];
    snprintf(msg, sizeof msg, "database \"%s\" is disabled (DISABLE on the admin console)",
             c->dbname);
    log_info("C-%llu %s/%s@%s: refused: database disabled", (unsigned long long)c->id, c->dbname,
             c->user, c->addr);
    client_send_error(c, "FATAL", "55000", msg);
}

/* The exchange's state holds key material: wiped as soon as it has served. */
static void drop_scram(struct wp_client *c)
{
    if (c->scram)
        scram_state_clear(c->scram);
    free(c->scram);
    c->scram = NULL;
}

/* Authenticated: pick the pool, then welcome now or when its first backend is up. */
static void finish_login(struct wp_client *c)
{
    if (c->is_admin && !admin_may_connect(c->user)) {
        log_warn("C-%llu %s/%s@%s: not an admin or stats user", (unsigned long long)c->id,
                 c->dbname, c->user, c->addr);
        client_send_error(c, "FATAL", "42501", "not allowed to use the admin console");
        return;
    }
    proto_put_auth(&c->conn.out, 0, NULL, 0);
    if (c->is_admin) {
        drop_scram(c);
        admin_welcome(c);
        return;
    }
    /* Looked up now, in the configuration of this moment (a reload may have come
       during the password exchange, and freed the configuration it began in). */
    const struct wp_db_config *db = config_find_db(wp_rt.cfg, c->dbname);
    if (!db) {
        refuse_unknown_database(c);
        return;
    }
    if (db_state_disabled(c->dbname)) {
        refuse_disabled_database(c);
        return;
    }
    if (client_limits_refuse(c, db))
        return;
    struct wp_pool *pool = pool_get(db, c->dbname, c->user);
    if (!pool) {
        client_send_error(c, "FATAL", "53200", "out of memory");
        return;
    }
    c->pool = pool;
    pool_hold(pool);
    pool_learn_login(pool, find_secret(c), c->scram);
    drop_scram(c);
    /* The pool, which the client holds, outlives it: its two names replace the
       client's own copy. */
    free(c->user);
    c->user = pool->user;
    c->dbname = pool->dbname;
    if (pool->params_known) {
        client_welcome(c);
        return;
    }
    client_set_state(c, CL_WELCOME);
    list_push_tail(&pool->welcoming, &c->node);
    client_kick_write(c);
    pool_launch_if_needed(pool);
}

static int start_scram(struct wp_client *c, const struct wp_user_secret *secret)
{
    c->scram = calloc(1, sizeof *c->scram);
    if (!c->scram)
        return -1;
    const struct scram_keys *cached = NULL;
    /* An empty secret must not become keys: they would prove the empty password. */
    if (auth_secret_usable(secret) && secret->kind == WP_SECRET_PLAIN)
        cached = keys_for_plain(secret->user, secret->secret);
    if (cached) {
        c->scram->keys = *cached;
    } else if (!auth_secret_usable(secret) || secret->kind != WP_SECRET_SCRAM ||
               auth_scram_keys(secret, &c->scram->keys) < 0) {
        /* Unknown user or unusable secret: run the exchange with keys derived from
           the name, stable across tries, so the answer does not reveal which users
           exist or which have no password; it fails at the proof. */
        scram_mock_keys(c->user, &c->scram->keys);
        /* As many iterations as a real user's keys: the count must not tell them apart. */
        c->scram->keys.iterations = wp_rt.cfg->scram_iterations;
    }
    static const char mechanisms[] = "SCRAM-SHA-256\0";
    return proto_put_auth(&c->conn.out, 10, mechanisms, sizeof mechanisms);
}

/* auth_type = cert: a verified client certificate whose CommonName is the user. */
static void cert_login(struct wp_client *c)
{
    const char *cn = client_tls_peer_cn(c);
    char msg[256];
    if (!client_tls_in_use(c) || !cn) {
        log_warn("C-%llu %s/%s@%s: certificate authentication: no verified client certificate",
                 (unsigned long long)c->id, c->dbname, c->user, c->addr);
        client_send_error(c, "FATAL", "28000", "connection requires a valid client certificate");
        return;
    }
    if (strcmp(cn, c->user) != 0) {
        log_warn("C-%llu %s/%s@%s: certificate authentication failed: certificate is for \"%s\"",
                 (unsigned long long)c->id, c->dbname, c->user, c->addr, cn);
        snprintf(msg, sizeof msg, "certificate authentication failed for user \"%s\"", c->user);
        client_send_error(c, "FATAL", "28000", msg);
        return;
    }
    finish_login(c);
}

/* The exchange of the method chosen, against the secret known now. */
static void start_method(struct wp_client *c, int auth_type)
{
    const struct wp_user_secret *secret = find_secret(c);
    switch (auth_type) {
    case WP_AUTH_TRUST:
        finish_login(c);
        return;
    case WP_AUTH_CERT:
        cert_login(c);
        return;
    case WP_AUTH_PLAIN:
        c->auth_method = METHOD_PLAIN;
        proto_put_auth(&c->conn.out, 3, NULL, 0);
        break;
    case WP_AUTH_MD5:
        /* As PostgreSQL does: md5 accepts users whose secret is SCRAM by using SCRAM. */
        if (!secret || secret->kind != WP_SECRET_SCRAM) {
            c->auth_method = METHOD_MD5;
            auth_random(c->md5_salt, sizeof c->md5_salt);
            proto_put_auth(&c->conn.out, 5, c->md5_salt, sizeof c->md5_salt);
            break;
        }
        /* fall through */
    case WP_AUTH_SCRAM:
        c->auth_method = METHOD_SCRAM;
        if (start_scram(c, secret) < 0) {
            client_send_error(c, "FATAL", "53200", "out of memory");
            return;
        }
        break;
    }
    client_set_state(c, CL_AUTH);
    client_kick_write(c);
}

static int needs_secret(int auth_type)
{
    return auth_type == WP_AUTH_MD5 || auth_type == WP_AUTH_SCRAM || auth_type == WP_AUTH_PLAIN;
}

static void start_auth(struct wp_client *c, int auth_type)
{
    /* A user missing from auth_file may be known to PostgreSQL: ask it first
       (authq.c), when auth_user is set for this database. The admin console's users
       are warmpool's own. */
    if (needs_secret(auth_type) && !c->is_admin && !auth_userlist_find(&wp_rt.users, c->user)) {
        c->auth_type = (uint8_t)auth_type;
        c->looking_up = 1;
        c->asked_authq = 1;
        client_set_state(c, CL_AUTH);
        if (authq_request(c))
            return; /* login_secret_ready goes on (it may have already) */
        c->looking_up = 0;
        c->asked_authq = 0;
    }
    start_method(c, auth_type);
}

void login_secret_ready(struct wp_client *c, int outcome, const char *secret)
{
    if (c->state != CL_AUTH || !c->looking_up)
        return;
    c->looking_up = 0;
    c->lookup_outcome = (uint8_t)outcome;
    if (outcome == AUTHQ_CONNECT_FAILED || outcome == AUTHQ_QUERY_FAILED) {
        /* The lookup itself failed (authq.c logged why): nothing about the user. */
        log_warn("C-%llu %s/%s@%s: refused: the password lookup (auth_query) failed",
                 (unsigned long long)c->id, c->dbname, c->user, c->addr);
        if (outcome == AUTHQ_CONNECT_FAILED)
            client_send_error(c, "FATAL", "08006",
                              "could not look up the password: auth_user cannot connect");
        else
            client_send_error(c, "FATAL", "08P01",
                              "could not look up the password: auth_query failed");
        return;
    }
    if (outcome == AUTHQ_FOUND && secret) {
        c->looked_up = authq_secret_new(c->user, secret);
        if (!c->looked_up) {
            client_send_error(c, "FATAL", "53200", "out of memory");
            return;
        }
    }
    /* Not found or no password: the full exchange all the same, failing at the end
       (start_scram's mock keys), so the answer does not tell which users exist. */
    start_method(c, c->auth_type);
}

static int take_startup_params(struct wp_client *c, const struct proto_startup *st)
{
    char *const *ignored = wp_rt.cfg->ignore_startup_parameters;
    for (int i = 0; i < st->nparams; i++) {
        const char *name = st->names[i], *value = st->values[i];
        if (strcmp(name, "user") == 0 || strcmp(name, "database") == 0)
            continue;
        if (config_user_in_list(ignored, name))
            continue;
        if (strcmp(name, "replication") == 0 && strcmp(value, "false") != 0 &&
            strcmp(value, "0") != 0) {
            protocol_violation(c, "replication connections are not supported by warmpool");
            return -1;
        }
        if (strcmp(name, "options") == 0) {
            if (params_parse_options(&c->startup, value) < 0) {
                protocol_violation(c, "unsupported startup parameter \"options\" value");
                return -1;
            }
            continue;
        }
        if (params_is_reserved_startup(name))
            continue;
        if (params_set(&c->startup, name, value) < 0) {
            protocol_violation(c, "too many startup parameters");
            return -1;
        }
    }
    return 0;
}

static void refuse_by_hba(struct wp_client *c, const char *what, int line)
{
    char host[64], msg[512];
    snprintf(host, sizeof host, "%s", c->addr);
    char *colon = strcmp(host, "unix") == 0 ? NULL : strrchr(host, ':');
    if (colon)
        *colon = '\0'; /* the address without the client's port, as PostgreSQL shows it */
    snprintf(msg, sizeof msg, "%s for host \"%s\", user \"%s\", database \"%s\"", what, host,
             c->user, c->dbname);
    if (line > 0)
        log_warn("C-%llu %s/%s@%s: %s (auth_hba_file line %d)", (unsigned long long)c->id,
                 c->dbname, c->user, c->addr, what, line);
    else
        log_warn("C-%llu %s/%s@%s: %s", (unsigned long long)c->id, c->dbname, c->user, c->addr,
                 what);
    client_send_error(c, "FATAL", "28000", msg);
}

/* The auth type for this client: auth_type, or the method of its first auth_hba_file
   rule. -1 when the client was refused (error sent). */
static int choose_auth_type(struct wp_client *c)
{
    /* auth_type hba without rules in force (its file failed to load on a reload that
       turned hba on): no client has a method, as with an empty pg_hba.conf. */
    if (!wp_rt.hba.loaded && wp_rt.cfg->auth_type == WP_AUTH_HBA) {
        refuse_by_hba(c, "no hba entry", 0);
        return -1;
    }
    if (!wp_rt.hba.loaded)
        return wp_rt.cfg->auth_type;
    struct hba_peer peer;
    int is_tls = client_tls_in_use(c);
    const struct hba_rule *rule = NULL;
    if (hba_peer_from_addr(c->addr, is_tls, &peer) == 0)
        rule = hba_match(&wp_rt.hba, &peer, c->dbname, c->user);
    if (!rule) {
        refuse_by_hba(c, "no hba entry", 0);
        return -1;
    }
    switch (rule->method) {
    case HBA_TRUST:
        return WP_AUTH_TRUST;
    case HBA_MD5:
        return WP_AUTH_MD5;
    case HBA_SCRAM:
        return WP_AUTH_SCRAM;
    case HBA_PASSWORD:
        return WP_AUTH_PLAIN;
    case HBA_REJECT:
        refuse_by_hba(c, "hba rejects connection", rule->line);
        return -1;
    case HBA_CERT:
        return WP_AUTH_CERT;
    }
    return -1;
}

static void handle_startup(struct wp_client *c, const struct proto_startup *st)
{
    /* One allocation holds both names (freed as c->user). */
    size_t user_len = strlen(st->user), db_len = strlen(st->database);
    c->user = malloc(user_len + db_len + 2);
    if (!c->user) {
        client_send_error(c, "FATAL", "53200", "out of memory");
        return;
    }
    memcpy(c->user, st->user, user_len + 1);
    c->dbname = c->user + user_len + 1;
    memcpy(c->dbname, st->database, db_len + 1);
    if (wp_rt.cfg->client_tls_sslmode >= WP_SSLMODE_REQUIRE && !c->conn.tls && !client_is_unix(c)) {
        log_warn("C-%llu %s/%s@%s: refused: client_tls_sslmode requires TLS",
                 (unsigned long long)c->id, c->dbname, c->user, c->addr);
        client_send_error(c, "FATAL", "28000", "SSL required");
        return;
    }
    if (take_startup_params(c, st) < 0)
        return;
    /* A client asking for 3.x (x > 0) or protocol options learns we speak 3.0. */
    proto_put_negotiate_version(&c->conn.out, st);
    c->is_admin = admin_is_console_db(c->dbname) != 0;
    /* Whether the database exists is told only after authentication (finish_login),
       as PostgreSQL does: before it, nobody learns which databases exist. */
    int auth_type = choose_auth_type(c);
    if (auth_type < 0)
        return;
    start_auth(c, auth_type);
}

/* SSLRequest with TLS on: answer 'S' in the clear, then hand the socket to OpenSSL.
   The handshake runs from the client's events (client.c); returns 0 (stop here). */
static int accept_tls(struct wp_client *c)
{
    if (buf_unread(&c->conn.in) > 0) {
        /* Bytes sent before the handshake would be taken as if they were protected. */
        protocol_violation(c, "received unencrypted data after SSL request");
        return 0;
    }
    buf_append(&c->conn.out, "S", 1);
    if (conn_flush_now(&c->conn) < 0) { /* in clear: before TLS takes the socket */
        client_close(c, "write to client failed");
        return 0;
    }
    if (buf_unread(&c->conn.out) > 0 || conn_start_tls(&c->conn) < 0) {
        client_close(c, "cannot start TLS");
        return 0;
    }
    return 0;
}

/* One startup-phase packet; returns 1 to go on reading packets, 0 to stop. */
static int startup_packet(struct wp_client *c)
{
    int64_t len = proto_startup_length(buf_head(&c->conn.in), buf_unread(&c->conn.in));
    if (len < 0) {
        protocol_violation(c, "invalid length of startup packet");
        return 0;
    }
    if (len == 0 || buf_unread(&c->conn.in) < (size_t)len)
        return 0;
    struct proto_startup st;
    char err[256];
    /* The parser wants NUL-terminated strings inside the packet; it checks that. */
    if (proto_parse_startup(buf_head(&c->conn.in), (uint32_t)len, &st, err, sizeof err) < 0) {
        bad_startup(c, st.sqlstate, err);
        return 0;
    }
    switch (st.kind) {
    case PROTO_STARTUP_SSL:
    case PROTO_STARTUP_GSSENC:
        buf_consume(&c->conn.in, (size_t)len);
        if (c->conn.tls) {
            protocol_violation(c, "unexpected encryption request inside TLS");
            return 0;
        }
        if (st.kind == PROTO_STARTUP_SSL && tls_client_available() && !client_is_unix(c))
            return accept_tls(c);
        buf_append(&c->conn.out, "N", 1);
        client_kick_write(c);
        return c->state != CL_CLOSING;
    case PROTO_STARTUP_CANCEL:
        cancel_request(st.cancel_pid, st.cancel_key);
        client_close(c, "cancel request handled");
        return 0;
    case PROTO_STARTUP_V3:
        /* Consume first: login may finish right here and relay what follows. The
           parsed pointers stay valid, since consuming moves no bytes. */
        buf_consume(&c->conn.in, (size_t)len);
        handle_startup(c, &st);
        return 0;
    }
    return 0;
}

static void check_password(struct wp_client *c, const uint8_t *body, size_t body_len)
{
    const struct wp_user_secret *secret = find_secret(c);
    if (body_len == 0 || body[body_len - 1] != '\0') {
        protocol_violation(c, "malformed password packet");
        return;
    }
    int ok = secret &&
             (c->auth_method == METHOD_MD5 ? auth_md5_check(secret, c->md5_salt, (const char *)body)
                                           : auth_plain_check(secret, (const char *)body));
    if (ok)
        finish_login(c);
    else
        fail_auth(c);
}

static void scram_first(struct wp_client *c, const uint8_t *body, size_t body_len)
{
    const char *mech = (const char *)body;
    size_t mech_len = strnlen(mech, body_len);
    if (mech_len == body_len || body_len - mech_len - 1 < 4) {
        protocol_violation(c, "malformed SASLInitialResponse");
        return;
    }
    if (strcmp(mech, "SCRAM-SHA-256") != 0) {
        protocol_violation(c, "client selected an invalid SASL authentication mechanism");
        return;
    }
    const uint8_t *p = body + mech_len + 1;
    uint32_t data_len = proto_get_u32(p);
    if (data_len != body_len - mech_len - 1 - 4) {
        protocol_violation(c, "malformed SASLInitialResponse");
        return;
    }
    char out[1024], err[256];
    if (scram_handle_client_first(c->scram, &c->scram->keys, (const char *)p + 4, data_len, out,
                                  sizeof out, err, sizeof err) < 0) {
        protocol_violation(c, err);
        return;
    }
    proto_put_auth(&c->conn.out, 11, out, strlen(out));
    client_kick_write(c);
}

static void scram_final(struct wp_client *c, const uint8_t *body, size_t body_len)
{
    char out[1024], err[256];
    int rc = scram_handle_client_final(c->scram, (const char *)body, body_len, out, sizeof out, err,
                                       sizeof err);
    if (rc < 0) {
        protocol_violation(c, err);
        return;
    }
    /* Checked again here: a reload may have emptied or removed the secret since. */
    if (rc == 0 || !auth_secret_usable(find_secret(c))) {
        fail_auth(c);
        return;
    }
    proto_put_auth(&c->conn.out, 12, out, strlen(out));
    finish_login(c);
}

/* One password-phase message; returns 1 to go on, 0 to stop. */
static int auth_message(struct wp_client *c)
{
    uint8_t type;
    uint32_t len;
    enum proto_scan r = proto_scan_header(buf_head(&c->conn.in), buf_unread(&c->conn.in),
                                          LOGIN_MAX_MESSAGE, &type, &len);
    if (r == PROTO_BAD_LENGTH) {
        protocol_violation(c, "invalid message length during authentication");
        return 0;
    }
    if (r == PROTO_NEED_MORE || buf_unread(&c->conn.in) < len)
        return 0;
    if (type != 'p') {
        protocol_violation(c, "expected password response");
        return 0;
    }
    const uint8_t *body = buf_head(&c->conn.in) + 5;
    size_t body_len = len - 5;
    /* Consumed before acting, as for the startup packet: the bytes stay in place. */
    buf_consume(&c->conn.in, len);
    if (c->auth_method == METHOD_SCRAM) {
        if (c->scram->step == 0)
            scram_first(c, body, body_len);
        else
            scram_final(c, body, body_len);
    } else {
        check_password(c, body, body_len);
    }
    return c->state == CL_AUTH;
}

void login_input(struct wp_client *c)
{
    while (c->state == CL_STARTUP && startup_packet(c))
        ;
    while (c->state == CL_AUTH && !c->looking_up && auth_message(c))
        ;
}
