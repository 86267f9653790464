/*
 * server_login — warmpool's own backend login on the event loop. See server_login.h.
 *
 * Phases: the non-blocking connect, then (sslmode prefer/require) the SSLRequest and
 * its one-byte answer, then the TLS handshake, then the login messages. Every wait is
 * one conn_watch_connect on the socket (the same one-shot watch libpq's connect uses),
 * so server_connect_timeout bounds the whole login through the janitor.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "warmpool/backend_login.h"
#include "warmpool/config.h"
#include "warmpool/fleet.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/proto.h"
#include "warmpool/server.h"
#include "warmpool/server_login.h"
#include "warmpool/server_setup.h"

enum phase { PH_CONNECT, PH_SSL_ANSWER, PH_TLS, PH_LOGIN, PH_DONE };
enum tls_want { TLS_NO, TLS_PREFER, TLS_REQUIRE };

struct server_login {
    int fd;
    SSL *ssl;
    enum phase phase;
    enum tls_want tls;
    int tls_min, tls_max; /* protocol versions from server_tls_protocols; 0: OpenSSL's */
    struct server_cancel_target cancel;
    struct wp_buf in, out;
    struct backend_login bl;
    char *user, *password, *md5_secret; /* copies: a reload may free the pool's */
    struct scram_client_keys keys;
    char where[160]; /* "connection to server at …", as libpq names it */
};

/* The connection keys this login understands; any other sends the entry to libpq. */
static const char *const supported_keys[] = {
    "host",     "port",    "dbname",           "user",
    "password", "sslmode", "application_name", "fallback_application_name",
    "options",  NULL};

static const char *conn_value(const struct wp_db_config *db, const char *key)
{
    const char *value = NULL;
    for (int i = 0; i < db->nconn; i++)
        if (strcmp(db->conn_keys[i], key) == 0)
            value = db->conn_values[i]; /* libpq: the last one counts */
    return value && *value ? value : NULL;
}

static int is_supported_key(const char *key)
{
    for (int i = 0; supported_keys[i]; i++)
        if (strcmp(supported_keys[i], key) == 0)
            return 1;
    return 0;
}

static int numeric_host(const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;
    return inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
}

static const char *env_or(const char *value, const char *env)
{
    const char *e = value ? NULL : getenv(env);
    return value ? value : (e && *e ? e : NULL);
}

static int parse_tls_want(const char *mode, enum tls_want *out)
{
    if (!mode || strcmp(mode, "prefer") == 0)
        *out = TLS_PREFER;
    else if (strcmp(mode, "disable") == 0)
        *out = TLS_NO;
    else if (strcmp(mode, "require") == 0)
        *out = TLS_REQUIRE;
    else
        return -1;
    return 0;
}

/* What TLS a backend of this entry asks for, in libpq's order: the entry's own sslmode,
   else server_tls_sslmode (server_setup.c adds it), else PGSSLMODE; protocol bounds
   from server_tls_protocols (*tls_min, *tls_max: OpenSSL's version numbers, 0 for no
   bound). *more_tls: server_tls_* also asks for a CA or a certificate, which only libpq
   applies. */
struct tls_wanted {
    const char *sslmode;
    int tls_min, tls_max;
    int more_tls;
};

static int tls_version_number(const char *name)
{
    static const struct {
        const char *name;
        int version;
    } versions[] = {{"TLSv1", TLS1_VERSION},
                    {"TLSv1.1", TLS1_1_VERSION},
                    {"TLSv1.2", TLS1_2_VERSION},
                    {"TLSv1.3", TLS1_3_VERSION}};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
        if (strcmp(versions[i].name, name) == 0)
            return versions[i].version;
    return -1;
}

static struct tls_wanted wanted_tls(const struct wp_config *cfg, const struct wp_db_config *db)
{
    const char *keys[SERVER_SETUP_TLS_KEYS + 1], *values[SERVER_SETUP_TLS_KEYS + 1];
    int n = server_setup_tls_keys(cfg, db, keys, values, 0);
    struct tls_wanted w = {conn_value(db, "sslmode"), 0, 0, 0};
    for (int i = 0; i < n; i++) {
        if (strcmp(keys[i], "sslmode") == 0)
            w.sslmode = values[i];
        else if (strcmp(keys[i], "ssl_min_protocol_version") == 0)
            w.tls_min = tls_version_number(values[i]);
        else if (strcmp(keys[i], "ssl_max_protocol_version") == 0)
            w.tls_max = tls_version_number(values[i]);
        else
            w.more_tls = 1;
    }
    if (w.tls_min < 0 || w.tls_max < 0)
        w.more_tls = 1;
    w.sslmode = env_or(w.sslmode, "PGSSLMODE");
    return w;
}

const char *server_login_unsupported(const struct wp_config *cfg, const struct wp_db_config *db)
{
    for (int i = 0; i < db->nconn; i++)
        if (!is_supported_key(db->conn_keys[i]))
            return "a connection key only libpq handles";
    const char *host = conn_value(db, "host"), *port = env_or(conn_value(db, "port"), "PGPORT");
    if (!host)
        return "no host= (libpq's default socket directory)";
    if (host[0] != '/' && !numeric_host(host))
        return "host= is not a numeric address or a socket directory (several hosts, a name)";
    if (port && (strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 ||
                 atoi(port) == 0 || atoi(port) > 65535))
        return "port= is not one port number";
    enum tls_want want;
    struct tls_wanted w = wanted_tls(cfg, db);
    if (parse_tls_want(w.sslmode, &want) < 0)
        return "sslmode= (or server_tls_sslmode) other than disable, prefer or require";
    if (w.more_tls)
        return "server_tls_ca_file, server_tls_cert_file or server_tls_key_file set (libpq "
               "applies them)";
    return NULL;
}

/* As build_conninfo hands them to libpq: the pool's password, added after the entry's
   keys, wins over the entry's password=. */
static const char *login_password(const struct wp_pool *pool)
{
    if (!pool->db->forced_user && pool->backend_password)
        return pool->backend_password;
    return conn_value(pool->db, "password");
}

int server_login_has_secret(const struct wp_pool *pool)
{
    return login_password(pool) ||
           (!pool->db->forced_user && (pool->backend_keys || pool->backend_md5));
}

static char *dup_secret(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void login_free(struct server_login *sl)
{
    backend_login_wipe(&sl->bl);
    scram_client_keys_wipe(&sl->keys);
    free(sl->user);
    free_secret(sl->password);
    free_secret(sl->md5_secret);
    buf_free(&sl->in);
    buf_free(&sl->out);
    if (sl->ssl)
        SSL_free(sl->ssl);
    if (sl->fd >= 0)
        close(sl->fd);
    free(sl);
}

static struct server_login *login_new(const struct wp_pool *pool)
{
    struct server_login *sl = calloc(1, sizeof *sl);
    if (!sl)
        return NULL;
    sl->fd = -1;
    sl->user = strdup(pool->backend_user);
    sl->password = dup_secret(login_password(pool));
    /* Passed-through keys are the client user's, so never there with a forced user. */
    if (pool->backend_keys) {
        sl->keys = *pool->backend_keys;
        sl->bl.keys = &sl->keys;
        sl->bl.keys_passed = pool->backend_keys_passed;
    }
    if (!pool->db->forced_user)
        sl->md5_secret = dup_secret(pool->backend_md5);
    if (!sl->user || (login_password(pool) && !sl->password) ||
        (!pool->db->forced_user && pool->backend_md5 && !sl->md5_secret)) {
        login_free(sl);
        return NULL;
    }
    sl->bl.user = sl->user;
    sl->bl.password = sl->password;
    sl->bl.md5_secret = sl->md5_secret;
    return sl;
}

/* The entry's address as libpq reads host= and port= (validated before), and its
   description for error texts. */
static int fill_address(const struct wp_db_config *db, struct server_login *sl)
{
    const char *host = conn_value(db, "host"), *port = env_or(conn_value(db, "port"), "PGPORT");
    int portnum = port ? atoi(port) : 5432;
    struct server_cancel_target *t = &sl->cancel;
    memset(&t->addr, 0, sizeof t->addr);
    if (host[0] == '/') {
        struct sockaddr_un *un = (struct sockaddr_un *)&t->addr;
        un->sun_family = AF_UNIX;
        int n = snprintf(un->sun_path, sizeof un->sun_path, "%s/.s.PGSQL.%d", host, portnum);
        t->addrlen = sizeof *un;
        snprintf(sl->where, sizeof sl->where, "connection to server on socket \"%s\"",
                 un->sun_path);
        return n < 0 || (size_t)n >= sizeof un->sun_path ? -1 : 0;
    }
    snprintf(sl->where, sizeof sl->where, "connection to server at \"%s\", port %d", host, portnum);
    if (strchr(host, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&t->addr;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)portnum);
        inet_pton(AF_INET6, host, &in6->sin6_addr);
        t->addrlen = sizeof *in6;
    } else {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&t->addr;
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)portnum);
        inet_pton(AF_INET, host, &in4->sin_addr);
        t->addrlen = sizeof *in4;
    }
    return 0;
}

static int open_socket(const struct server_cancel_target *t, int nonblocking)
{
    int fd = socket(t->addr.ss_family,
                    SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) < 0 && errno != EINPROGRESS) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static void login_step(void *arg);

/* Failures name the server as libpq's do (for the log and the pool's last_error). */
static void fail_login(struct wp_server *s, const char *sqlstate, const char *text)
{
    char full[768];
    snprintf(full, sizeof full, "%s failed: %s", s->login->where, text);
    server_connect_error(s, sqlstate, full);
}

static void login_fail(struct wp_server *s, const char *sqlstate, const char *fmt,
                       const char *detail)
{
    char text[512];
    snprintf(text, sizeof text, fmt, detail);
    fail_login(s, sqlstate, text);
}

static void watch(struct wp_server *s, int for_write)
{
    if (conn_watch_connect(&s->conn, s->login->fd, for_write, login_step, s) < 0)
        fail_login(s, "53200", "out of memory");
}

/* The SSL context for backends: no verification (sslmode prefer and require do none). */
static SSL_CTX *backend_ssl_ctx(void)
{
    static SSL_CTX *ctx;
    if (!ctx) {
        ctx = SSL_CTX_new(TLS_client_method());
        if (ctx) {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
            SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        }
    }
    return ctx;
}

/* Plain or TLS I/O on the login's socket: > 0 bytes, 0 would block (*want_write set when
   TLS waits for writability), -1 error or EOF. */
static long io_read(struct server_login *sl, void *p, size_t n, int *want_write)
{
    *want_write = 0;
    if (!sl->ssl) {
        ssize_t r = read(sl->fd, p, n);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        return r > 0 ? r : -1;
    }
    int r = SSL_read(sl->ssl, p, (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(sl->ssl, r);
    *want_write = e == SSL_ERROR_WANT_WRITE;
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

static long io_write(struct server_login *sl, const void *p, size_t n, int *want_read)
{
    *want_read = 0;
    if (!sl->ssl) {
        ssize_t r = write(sl->fd, p, n);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        return r;
    }
    int r = SSL_write(sl->ssl, p, (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(sl->ssl, r);
    *want_read = e == SSL_ERROR_WANT_READ;
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* Send what `out` holds: 1 all sent, 0 waiting (watch armed), -1 failed (reported). */
static int flush_out(struct wp_server *s)
{
    struct server_login *sl = s->login;
    while (buf_unread(&sl->out) > 0) {
        int want_read;
        long n = io_write(sl, buf_head(&sl->out), buf_unread(&sl->out), &want_read);
        if (n < 0) {
            login_fail(s, "08006", "could not send data to the server: %s", strerror(errno));
            return -1;
        }
        if (n == 0) {
            watch(s, !want_read);
            return 0;
        }
        buf_consume(&sl->out, (size_t)n);
    }
    return 1;
}

/* The StartupMessage as libpq would send it for the entry (see build_conninfo). */
static int queue_startup(struct wp_server *s)
{
    const struct wp_db_config *db = s->pool->db;
    const char *names[5], *values[5];
    int n = 0;
    const char *dbname = conn_value(db, "dbname");
    const char *app = fleet_stamp(); /* in a fleet, the stamp wins (server_conninfo) */
    if (!app)
        app = env_or(conn_value(db, "application_name"), "PGAPPNAME");
    const char *options = env_or(conn_value(db, "options"), "PGOPTIONS");
    names[n] = "user", values[n++] = s->login->user;
    names[n] = "database", values[n++] = dbname ? dbname : s->pool->dbname;
    names[n] = "application_name", values[n++] = app ? app : "warmpool";
    if (options)
        names[n] = "options", values[n++] = options;
    names[n] = values[n] = NULL;
    return backend_login_startup(&s->login->out, names, values);
}

static void begin_login(struct wp_server *s)
{
    s->login->phase = PH_LOGIN;
    s->login->bl.params = &s->params;
    if (queue_startup(s) < 0) {
        fail_login(s, "53200", "out of memory");
        return;
    }
    if (flush_out(s) == 1)
        watch(s, 0);
}

/* Keys derived from the pool's password are cached there for the next logins. */
/* Keys derived from the pool's password go to the pool as soon as they exist, and a
   login that has not reached the server's salt yet takes the pool's latest keys: logins
   started together (min_pool_size) derive once, not once each. */
static void share_keys(struct wp_server *s)
{
    struct server_login *sl = s->login;
    struct wp_pool *pool = s->pool;
    const char *password = login_password(pool);
    if (sl->bl.derived_new && password && sl->password && strcmp(password, sl->password) == 0)
        pool_set_backend_keys(pool, &sl->bl.derived, 0);
    sl->bl.derived_new = 0;
    if (sl->bl.scram_step <= 1 && pool->backend_keys) {
        sl->keys = *pool->backend_keys;
        sl->bl.keys = &sl->keys;
        sl->bl.keys_passed = pool->backend_keys_passed;
    }
}

static void log_keys_reused(struct wp_server *s)
{
    struct server_login *sl = s->login;
    if (sl->bl.keys_reused)
        log_debug("S-%llu %s/%s: SCRAM keys reused (%s)", (unsigned long long)s->id,
                  s->pool->dbname, s->pool->user,
                  sl->bl.keys_passed ? "passed through from a client's login"
                                     : "derived from the password before");
}

static void login_ready(struct wp_server *s)
{
    struct server_login *sl = s->login;
    log_keys_reused(s);
    sl->cancel.pid = sl->bl.backend_pid;
    sl->cancel.key = sl->bl.cancel_key;
    s->backend_pid = sl->bl.backend_pid;
    backend_login_wipe(&sl->bl);
    scram_client_keys_wipe(&sl->keys);
    free_secret(sl->password);
    free_secret(sl->md5_secret);
    sl->password = sl->md5_secret = NULL;
    buf_free(&sl->in);
    buf_free(&sl->out);
    sl->phase = PH_DONE;
    server_connect_finished(s, sl->fd, sl->ssl);
}

/* Whole messages in `in`, one at a time: 1 ready, 0 more needed, -1 failed (reported). */
static int take_messages(struct wp_server *s)
{
    struct server_login *sl = s->login;
    for (;;) {
        uint8_t type;
        uint32_t len;
        enum proto_scan r = proto_scan_header(buf_head(&sl->in), buf_unread(&sl->in),
                                              BACKEND_LOGIN_MAX_MESSAGE, &type, &len);
        if (r == PROTO_BAD_LENGTH) {
            fail_login(s, "08P01", "invalid message length from the server during login");
            return -1;
        }
        if (r == PROTO_NEED_MORE || buf_unread(&sl->in) < len)
            return 0;
        share_keys(s);
        enum backend_login_result res =
            backend_login_message(&sl->bl, type, buf_head(&sl->in) + 5, len - 5, &sl->out);
        share_keys(s);
        buf_consume(&sl->in, len);
        if (res == BLOGIN_FAILED) {
            fail_login(s, sl->bl.sqlstate, sl->bl.error);
            return -1;
        }
        if (res == BLOGIN_READY)
            return 1;
    }
}

static void login_input(struct wp_server *s)
{
    struct server_login *sl = s->login;
    int want_write = 0;
    for (;;) {
        uint8_t *p = buf_append_space(&sl->in, 8192);
        if (!p) {
            fail_login(s, "53200", "out of memory");
            return;
        }
        long n = io_read(sl, p, 8192, &want_write);
        sl->in.len -= 8192 - (size_t)(n > 0 ? n : 0);
        if (n < 0) {
            login_fail(s, "08006", "%s", "the server closed the connection during login");
            return;
        }
        if (n == 0)
            break;
        int rc = take_messages(s);
        if (rc < 0)
            return;
        if (rc > 0) {
            login_ready(s);
            return;
        }
    }
    int flushed = flush_out(s);
    if (flushed == 1)
        watch(s, want_write);
}

static void connected(struct wp_server *s)
{
    struct server_login *sl = s->login;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(sl->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        login_fail(s, "08006", "could not connect to server: %s", strerror(err));
        return;
    }
    if (sl->tls == TLS_NO) {
        begin_login(s);
        return;
    }
    static const uint8_t ssl_request[8] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
    if (buf_append(&sl->out, ssl_request, sizeof ssl_request) < 0) {
        fail_login(s, "53200", "out of memory");
        return;
    }
    sl->phase = PH_SSL_ANSWER;
    if (flush_out(s) == 1)
        watch(s, 0);
}

static void tls_step(struct wp_server *s)
{
    struct server_login *sl = s->login;
    ERR_clear_error();
    int r = SSL_connect(sl->ssl);
    if (r == 1) {
        begin_login(s);
        return;
    }
    int e = SSL_get_error(sl->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        watch(s, e == SSL_ERROR_WANT_WRITE);
        return;
    }
    char reason[256] = "the connection was closed";
    unsigned long code = ERR_get_error();
    if (code)
        ERR_error_string_n(code, reason, sizeof reason);
    login_fail(s, "08006", "SSL handshake with the server failed: %s", reason);
}

static void ssl_answer(struct wp_server *s)
{
    struct server_login *sl = s->login;
    uint8_t answer;
    ssize_t n = read(sl->fd, &answer, 1);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        watch(s, 0);
        return;
    }
    if (n == 1 && answer == 'S') {
        SSL_CTX *ctx = backend_ssl_ctx();
        sl->ssl = ctx ? SSL_new(ctx) : NULL;
        if (!sl->ssl || !SSL_set_fd(sl->ssl, sl->fd) ||
            (sl->tls_min && !SSL_set_min_proto_version(sl->ssl, sl->tls_min)) ||
            (sl->tls_max && !SSL_set_max_proto_version(sl->ssl, sl->tls_max))) {
            fail_login(s, "53200", "cannot set up TLS for the server connection");
            return;
        }
        sl->phase = PH_TLS;
        tls_step(s);
    } else if (n == 1 && answer == 'N' && sl->tls == TLS_PREFER) {
        begin_login(s);
    } else if (n == 1 && answer == 'N') {
        login_fail(s, "08006", "%s", "server does not support SSL, but SSL was required");
    } else {
        login_fail(s, "08006", "%s", "the server did not answer the SSLRequest");
    }
}

static void login_step(void *arg)
{
    struct wp_server *s = arg;
    switch (s->login->phase) {
    case PH_CONNECT:
        connected(s);
        return;
    case PH_SSL_ANSWER:
        if (flush_out(s) == 1)
            ssl_answer(s);
        return;
    case PH_TLS:
        tls_step(s);
        return;
    case PH_LOGIN:
        login_input(s);
        return;
    case PH_DONE:
        return;
    }
}

int server_login_start(struct wp_server *s)
{
    const struct wp_db_config *db = s->pool->db;
    struct server_login *sl = login_new(s->pool);
    if (!sl) {
        server_connect_error(s, "53200", "out of memory");
        return -1;
    }
    s->login = sl;
    struct tls_wanted w = wanted_tls(s->pool->db_cfg, db);
    parse_tls_want(w.sslmode, &sl->tls);
    sl->tls_min = w.tls_min;
    sl->tls_max = w.tls_max;
    if (fill_address(db, sl) < 0) {
        login_fail(s, "08006", "%s", "the socket path is too long");
        return -1;
    }
    sl->fd = open_socket(&sl->cancel, 1);
    if (sl->fd < 0) {
        login_fail(s, "08006", "could not connect to server: %s", strerror(errno));
        return -1;
    }
    sl->phase = PH_CONNECT;
    watch(s, 1);
    return s->state == SV_CLOSED ? -1 : 0;
}

void server_login_close(struct wp_server *s)
{
    struct server_login *sl = s->login;
    if (!sl)
        return;
    if (sl->phase == PH_DONE) {
        /* Terminate, best effort, as PQfinish does: the backend ends quietly. */
        static const uint8_t terminate[5] = {'X', 0, 0, 0, 4};
        int ignored;
        (void)io_write(sl, terminate, sizeof terminate, &ignored);
    }
    s->login = NULL;
    login_free(sl);
}

int server_login_cancel_target(const struct wp_server *s, struct server_cancel_target *out)
{
    if (!s->login || s->login->phase != PH_DONE || !s->login->bl.have_cancel_key)
        return -1;
    *out = s->login->cancel;
    return 0;
}

int server_login_send_cancel(const struct server_cancel_target *t, char *err, size_t errlen)
{
    uint8_t msg[16];
    proto_put_u32(msg, 16);
    proto_put_u32(msg + 4, 80877102);
    proto_put_u32(msg + 8, t->pid);
    proto_put_u32(msg + 12, t->key);
    int fd = open_socket(t, 0);
    if (fd < 0 || write(fd, msg, sizeof msg) != (ssize_t)sizeof msg) {
        snprintf(err, errlen, "could not send the cancel request: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* The server closes the connection once it has the request; wait for that, as
       libpq does, so the cancel has arrived before the caller goes on. */
    char ignored;
    while (read(fd, &ignored, 1) > 0)
        ;
    close(fd);
    return 0;
}
