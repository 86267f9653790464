/*
 * main — command line, configuration load and reload, signals, startup and teardown.
 * The state all of it works on is the runtime's (runtime.c).
 */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "warmpool/admin.h"
#include "warmpool/authq.h"
#include "warmpool/client.h"
#include "warmpool/config.h"
#include "warmpool/config_keys.h"
#include "warmpool/conn_batch.h"
#include "warmpool/daemon.h"
#include "warmpool/db_state.h"
#include "warmpool/fleet.h"
#include "warmpool/from_pgbouncer.h"
#include "warmpool/io_threads.h"
#include "warmpool/listener.h"
#include "warmpool/log.h"
#include "warmpool/peer_resolve.h"
#include "warmpool/peering.h"
#include "warmpool/pool.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/stats_http.h"
#include "warmpool/timeouts.h"
#include "warmpool/tls.h"
#include "warmpool/workpool.h"

#define WARMPOOL_VERSION "0.1.0"

static void usage(FILE *out)
{
    fprintf(out, "usage: warmpool [-d] [-v] [--check] [--workers N] -c FILE\n"
                 "       warmpool --from-pgbouncer FILE\n"
                 "  -c, --config FILE  configuration file (ini)\n"
                 "      --check        validate the configuration and exit\n"
                 "      --from-pgbouncer FILE\n"
                 "                     print the PgBouncer FILE as a native warmpool.ini\n"
                 "  -d, --daemon       run in the background (needs logfile or syslog)\n"
                 "      --workers N    threads doing socket I/O, whatever the file says\n"
                 "  -v, --verbose      more logging (repeat for more)\n"
                 "  -V, --version      print the version\n"
                 "  -h, --help         this text\n");
}

/* A file that does not load. At start-up and under --check: its file:line errors on
   stderr, once, as they are (logging is not set up, the log would be stderr again). On
   reload (the event loop runs): in the log with its context, and on stderr too when
   the log is elsewhere, as systemd's journal reads stderr. */
static void report_load_error(const char *context, const char *err)
{
    int reloading = wp_rt.base != NULL;
    if (!reloading || !log_to_stderr())
        fprintf(stderr, "%s%s", err, err[0] && err[strlen(err) - 1] == '\n' ? "" : "\n");
    if (reloading)
        log_error("%s%s", context, err);
}

/* A start that cannot go on: the reason once on stderr (it is the log when no log file
   or syslog is set) and in the log. */
static void startup_failed(const char *err)
{
    if (!log_to_stderr())
        fprintf(stderr, "warmpool: %s\n", err);
    log_error("%s", err);
}

/* path with the SET values over it, in a new allocation; NULL with err filled. */
/* --workers N: run with N workers whatever the file says (kept across reloads). */
static int workers_from_command_line;
/* The workers started with; a reload cannot change them. 0 before start-up. */
static int workers_running;

static struct wp_config *load_config_with(const char *path, const struct wp_set_values *sets,
                                          char *err, size_t errlen)
{
    struct wp_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (config_load_with_overrides(path, (const char *const *)sets->keys,
                                   (const char *const *)sets->values, sets->n, cfg, err,
                                   errlen) < 0) {
        free(cfg);
        return NULL;
    }
    if (workers_from_command_line)
        cfg->workers = workers_from_command_line;
    if (workers_running && cfg->workers != workers_running) {
        log_warn("workers = %d takes effect at the next start; %d are running", cfg->workers,
                 workers_running);
        cfg->workers = workers_running;
    }
    return cfg;
}

static struct wp_config *load_config(const char *path)
{
    static const struct wp_set_values no_sets;
    char err[8192];
    struct wp_config *cfg = load_config_with(path, &no_sets, err, sizeof err);
    if (!cfg) {
        char context[512];
        snprintf(context, sizeof context, "configuration %s rejected:\n", path);
        report_load_error(context, err);
    }
    return cfg;
}

static void free_config(struct wp_config *cfg)
{
    config_free(cfg);
    free(cfg);
}

/* The PgBouncer keys the file sets that warmpool ignores, one warning each, at every
   load (startup and reload), so that the log of the running configuration says it. */
static void log_notices(const struct wp_config *cfg)
{
    for (char **n = cfg->notices; n && *n; n++)
        log_warn("%s", *n);
}

/* [peers] host names to addresses, once per load: forwards run on the event loop and
   must not block in getaddrinfo (peer_resolve.h). A name that does not resolve is not
   an error: that peer may come back by the next reload. */
static void resolve_peers(struct wp_config *cfg)
{
    if (peer_resolve_all(&cfg->peers) == 0)
        return;
    for (int i = 0; i < cfg->peers.n; i++) {
        const struct wp_peer_config *p = &cfg->peers.v[i];
        if (!p->addrs)
            log_warn("[peers] peer %d: out of memory; forwards to it fail", p->id);
        else if (p->addrs->n == 0)
            log_warn("[peers] peer %d (%s:%d): %s; forwards to it fail until a reload "
                     "resolves it",
                     p->id, p->host, p->port, p->addrs->err);
    }
}

static int load_userlist(const struct wp_config *cfg, struct wp_userlist *out)
{
    char err[512];
    memset(out, 0, sizeof *out);
    if (!cfg->auth_file || !*cfg->auth_file)
        return 0;
    if (auth_userlist_load(cfg->auth_file, out, err, sizeof err) < 0) {
        report_load_error("", err);
        return -1;
    }
    return 0;
}

/* auth_hba_file into *out (an empty rule set without the key). At startup a broken
   file refuses to start; on reload the caller keeps the rules it has. */
static int load_hba(const struct wp_config *cfg, struct wp_hba *out)
{
    char err[4096];
    memset(out, 0, sizeof *out);
    if (!cfg->auth_hba_file)
        return 0;
    if (hba_load(cfg->auth_hba_file, out, err, sizeof err) < 0) {
        report_load_error("auth_hba_file rejected:\n", err);
        return -1;
    }
    /* A cert rule needs a certificate to have been asked for, and warmpool asks for
       one exactly when client_tls_ca_file is set (as PostgreSQL does with
       ssl_ca_file). Without it every cert login would be refused: say so now. */
    int line = hba_first_line_with(out, HBA_CERT);
    if (line > 0 && (cfg->client_tls_sslmode == WP_SSLMODE_DISABLE || !cfg->client_tls_ca_file)) {
        snprintf(err, sizeof err,
                 "%s:%d: cert needs client_tls_sslmode other than disable and "
                 "client_tls_ca_file (client certificates are only asked for when it is set)",
                 cfg->auth_hba_file, line);
        report_load_error("auth_hba_file rejected:\n", err);
        hba_free(out);
        return -1;
    }
    return 0;
}

/* Reload: new rules for new logins, or the previous ones when the file is broken. */
static void reload_hba(const struct wp_config *cfg)
{
    struct wp_hba hba;
    if (load_hba(cfg, &hba) < 0) {
        log_error("auth_hba_file %s: keeping the previous rules", cfg->auth_hba_file);
        return;
    }
    hba_free(&wp_rt.hba);
    wp_rt.hba = hba;
}

/* Pools whose database forces a user can be opened and warmed before any client. */
static void prefill_pools(void)
{
    for (int i = 0; i < wp_rt.cfg->ndbs; i++) {
        const struct wp_db_config *db = &wp_rt.cfg->dbs[i];
        if (db->forced_user && strcmp(db->name, "*") != 0)
            pool_get(db, db->name, db->forced_user);
    }
}

/* log_format and syslog from the config; the values were validated by config_load. */
static void configure_logging(const struct wp_config *cfg)
{
    log_set_format((enum wp_log_format)log_format_from_name(cfg->log_format));
    log_set_syslog(cfg->syslog, cfg->syslog_ident, log_facility_from_name(cfg->syslog_facility));
}

/* cfg, just loaded, becomes the configuration in force with the auth file, TLS
   certificates and hba rules it names, and the pools take its settings. When the auth
   file or the certificates fail, the running configuration stays, cfg is freed and err
   says why (RELOAD and SET share this). */
static int install_config(struct wp_config *cfg, char *err, size_t errlen)
{
    struct wp_userlist users;
    if (load_userlist(cfg, &users) < 0) {
        snprintf(err, errlen, "auth_file %s cannot be loaded (the log says why)", cfg->auth_file);
        free_config(cfg);
        return -1;
    }
    if (tls_client_setup(cfg, err, errlen) < 0) {
        auth_userlist_free(&users);
        free_config(cfg);
        return -1;
    }
    /* The old configuration stays while pools point into it (runtime.c). */
    runtime_install_config(cfg);
    auth_userlist_free(&wp_rt.users);
    wp_rt.users = users;
    login_forget_cached_keys();
    authq_forget_cache();
    reload_hba(cfg);
    log_set_verbose(cfg->verbose);
    configure_logging(cfg);
    if (log_open(cfg->logfile) < 0)
        log_error("cannot open logfile %s: %s", cfg->logfile, strerror(errno));
    resolve_peers(cfg);
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        pool_refresh_settings(list_entry(pos, struct wp_pool, node));
    }
    fleet_config_changed();
    prefill_pools();
    stats_http_reload();
    return 0;
}

/* The file alone: the console's SET values go once it is in force. */
static void reload(void)
{
    struct wp_config *cfg = load_config(wp_rt.cfg->path);
    char err[512];
    if (!cfg)
        return;
    if (install_config(cfg, err, sizeof err) < 0) {
        log_error("configuration %s rejected, keeping the running one and its TLS "
                  "certificates: %s",
                  wp_rt.cfg->path, err);
        return;
    }
    log_info("configuration reloaded from %s", cfg->path);
    if (wp_rt.sets.n > 0)
        log_info("reload: %d SET value%s dropped, the file's values are in force", wp_rt.sets.n,
                 wp_rt.sets.n == 1 ? "" : "s");
    runtime_sets_free(&wp_rt.sets);
    log_notices(cfg);
}

void runtime_reload(void)
{
    reload();
}

/* Like a reload of the file with the SET values over it, this one last. */
int runtime_set_setting(const char *key, const char *value, char *err, size_t errlen)
{
    struct wp_set_values sets;
    int row;
    if (config_key_settable(key, &row, err, errlen) != WP_KEY_SETTABLE)
        return -1;
    if (runtime_sets_with(&wp_rt.sets, wp_keys[config_key_canonical(row)].name, value, &sets) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct wp_config *cfg = load_config_with(wp_rt.cfg->path, &sets, err, errlen);
    if (!cfg || install_config(cfg, err, errlen) < 0) {
        runtime_sets_free(&sets);
        return -1;
    }
    runtime_sets_free(&wp_rt.sets);
    wp_rt.sets = sets;
    log_info("configuration from %s with %d SET value%s over it", cfg->path, sets.n,
             sets.n == 1 ? "" : "s");
    log_notices(cfg);
    return 0;
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGINT:
        return "SIGINT";
    case SIGQUIT:
        return "SIGQUIT";
    case SIGUSR1:
        return "SIGUSR1";
    case SIGUSR2:
        return "SIGUSR2";
    default:
        return "SIGTERM";
    }
}

static const char *shutdown_name(enum wp_shutdown_mode mode)
{
    switch (mode) {
    case WP_SHUTDOWN_WAIT_FOR_SERVERS:
        return "safe shutdown (WAIT_FOR_SERVERS): open transactions finish";
    case WP_SHUTDOWN_WAIT_FOR_CLIENTS:
        return "super safe shutdown (WAIT_FOR_CLIENTS): waiting for clients to leave";
    default:
        return "immediate shutdown";
    }
}

void runtime_shutdown(enum wp_shutdown_mode mode)
{
    /* A second request, whatever its kind, does not wait any longer (PgBouncer 1.23+). */
    if (wp_rt.shutting_down)
        mode = WP_SHUTDOWN_IMMEDIATE;
    log_info("%s", shutdown_name(mode));
    daemon_notify(mode == WP_SHUTDOWN_IMMEDIATE ? "STOPPING=1\nSTATUS=immediate shutdown"
                                                : "STOPPING=1\nSTATUS=waiting to shut down");
    wp_rt.shutting_down = mode;
    if (mode == WP_SHUTDOWN_IMMEDIATE) {
        event_base_loopbreak(wp_rt.base);
        return;
    }
    log_info("shutdown: waiting at most shutdown_wait_timeout (%lld ms)",
             (long long)wp_rt.cfg->shutdown_wait_timeout);
    wp_rt.shutdown_deadline_ms = wp_now_ms() + wp_rt.cfg->shutdown_wait_timeout;
    listener_stop();
}

/* SIGUSR1/SIGUSR2: PgBouncer's PAUSE/RESUME of every database, as the console's. */
static void on_pause_signal(int sig)
{
    int paused = sig == SIGUSR1;
    int pools = admin_set_paused(NULL, paused);
    log_info("got %s: %s (%d pools)", signal_name(sig), paused ? "PAUSE all" : "RESUME all", pools);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    if (sig == SIGUSR1 || sig == SIGUSR2) {
        on_pause_signal(sig);
        return;
    }
    if (sig == SIGHUP) {
        daemon_notify("RELOADING=1\nSTATUS=reloading configuration");
        /* Reopen the log even if the new file turns out invalid: logrotate relies
           on SIGHUP to stop writing to the rotated file. */
        if (log_open(wp_rt.cfg->logfile) < 0)
            log_error("cannot reopen logfile %s: %s", wp_rt.cfg->logfile, strerror(errno));
        reload();
        daemon_notify("READY=1\nSTATUS=accepting connections");
        return;
    }
    log_info("got %s", signal_name(sig));
    /* PgBouncer 1.25's meanings: SIGINT safe, SIGTERM super safe, SIGQUIT immediate. */
    runtime_shutdown(sig == SIGINT    ? WP_SHUTDOWN_WAIT_FOR_SERVERS
                     : sig == SIGTERM ? WP_SHUTDOWN_WAIT_FOR_CLIENTS
                                      : WP_SHUTDOWN_IMMEDIATE);
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void close_everything(void)
{
    wp_rt.shutting_down = WP_SHUTDOWN_IMMEDIATE;
    struct wp_list *pos, *tmp;
    list_for_each_safe(pos, tmp, &wp_rt.clients)
    {
        client_close(list_entry(pos, struct wp_client, all), "shutting down");
    }
    list_for_each_safe(pos, tmp, &wp_rt.pools)
    {
        pool_close_servers(list_entry(pos, struct wp_pool, node), "shutting down");
    }
}

static void free_everything(void)
{
    client_reap();
    server_reap();
    while (!list_empty(&wp_rt.pools))
        pool_free(list_entry(wp_rt.pools.next, struct wp_pool, node));
    authq_shutdown();
    fleet_shutdown();
    login_forget_cached_keys();
    auth_userlist_free(&wp_rt.users);
    hba_free(&wp_rt.hba);
    db_state_clear();
    runtime_sets_free(&wp_rt.sets);
    /* Every pool is gone, and with them their holds on configurations. */
    if (wp_rt.cfg)
        runtime_config_drop(wp_rt.cfg);
    wp_rt.cfg = NULL;
    if (wp_rt.nconfigs != 0)
        log_error("%d configurations still held at exit", wp_rt.nconfigs);
    registry_free(&wp_rt.registry);
    tls_client_shutdown();
    buf_cache_clear();
}

/* One event base; with several workers, epoll's change list lets a pause and a resume
   of the same socket within a turn (a batched write, conn_batch.h) cost nothing. */
static struct event_base *make_base(int workers)
{
    struct event_config *conf = event_config_new();
    if (!conf)
        return NULL;
    if (workers > 1)
        event_config_set_flag(conf, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = event_base_new_with_config(conf);
    event_config_free(conf);
    return base;
}

/* The loop: one turn at a time, each followed by its batched socket I/O when several
   workers share it (io_threads.h); with one, libevent's own loop. */
static void run_loop(int workers)
{
    if (workers <= 1) {
        event_base_dispatch(wp_rt.base);
        return;
    }
    conn_batch_enable(1);
    for (;;) {
        int rc = event_base_loop(wp_rt.base, EVLOOP_ONCE);
        conn_batch_run();
        if (rc != 0 || event_base_got_break(wp_rt.base) || event_base_got_exit(wp_rt.base))
            break;
    }
    conn_batch_enable(0);
}

static int run(void)
{
    char err[512];
    struct event *signals[7];
    const int signos[7] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT, 0};
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    const int workers = wp_rt.cfg->workers;
    workers_running = workers;
    wp_rt.base = make_base(workers);
    if (!wp_rt.base)
        return 1;
    for (int i = 0; signos[i]; i++) {
        signals[i] = evsignal_new(wp_rt.base, signos[i], on_signal, NULL);
        event_add(signals[i], NULL);
    }
    if (runtime_start_reaper() < 0) {
        log_error("cannot start: out of memory");
        return 1;
    }
    if (listener_start(err, sizeof err) < 0) {
        startup_failed(err);
        return 1;
    }
    if (stats_http_start(err, sizeof err) < 0) {
        startup_failed(err);
        return 1;
    }
    if (workpool_start(2) < 0 || timeouts_start() < 0 || io_threads_start(workers) < 0) {
        log_error("cannot start: %s", strerror(errno));
        return 1;
    }
    log_info("warmpool %s listening on %s port %d (%d worker%s)", WARMPOOL_VERSION,
             wp_rt.cfg->listen_addr ? wp_rt.cfg->listen_addr : "", wp_rt.cfg->listen_port, workers,
             workers == 1 ? "" : "s");
    prefill_pools();
    daemon_ready();
    run_loop(workers);
    close_everything();
    conn_batch_free();
    io_threads_stop();
    timeouts_stop();
    peering_shutdown(); /* a peer that does not answer must not hold up the exit */
    workpool_stop();
    listener_stop();
    stats_http_stop();
    for (int i = 0; signos[i]; i++)
        event_free(signals[i]);
    runtime_stop_reaper();
    free_everything();
    event_base_free(wp_rt.base);
    log_info("warmpool stopped");
    return 0;
}

static int convert_pgbouncer(const char *path)
{
    char err[8192];
    if (from_pgbouncer(path, stdout, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'C'},
        {"from-pgbouncer", required_argument, NULL, 'P'},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {"daemon", no_argument, NULL, 'd'},
        {"workers", required_argument, NULL, 'W'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int check_only = 0, verbose = 0, daemonize = 0, opt;
    while ((opt = getopt_long(argc, argv, "c:dvVh", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'C':
            check_only = 1;
            break;
        case 'P':
            return convert_pgbouncer(optarg);
        case 'd':
            daemonize = 1;
            break;
        case 'W':
            workers_from_command_line = atoi(optarg);
            if (workers_from_command_line < 1 || workers_from_command_line > 64) {
                fprintf(stderr, "warmpool: --workers takes 1 to 64\n");
                return 2;
            }
            break;
        case 'v':
            verbose++;
            break;
        case 'V':
            printf("warmpool %s\n", WARMPOOL_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!path && optind < argc)
        path = argv[optind];
    if (!path) {
        usage(stderr);
        return 2;
    }
    struct wp_config *cfg = load_config(path);
    if (!cfg)
        return 1;
    if (runtime_init(cfg) < 0)
        return 1;
    if (load_userlist(cfg, &wp_rt.users) < 0 || load_hba(cfg, &wp_rt.hba) < 0) {
        free_everything();
        return 1;
    }
    char err[512];
    if (tls_client_setup(cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", path, err); /* logging is not set up yet: no log_error */
        free_everything();
        return 1;
    }
    if (check_only) {
        for (char **n = cfg->notices; n && *n; n++)
            fprintf(stderr, "%s\n", *n);
        printf("%s: configuration is valid\n", path);
        free_everything();
        return 0;
    }
    log_set_verbose(verbose > cfg->verbose ? verbose : cfg->verbose);
    configure_logging(cfg);
    if (log_open(cfg->logfile) < 0) {
        fprintf(stderr, "warmpool: cannot open logfile %s: %s\n", cfg->logfile, strerror(errno));
        return 1;
    }
    log_notices(cfg);
    resolve_peers(cfg);
    if (daemonize && !cfg->logfile && !cfg->syslog) {
        fprintf(stderr, "warmpool: -d needs logfile or syslog = 1 (stderr is closed)\n");
        return 1;
    }
    if ((daemonize && daemon_detach(err, sizeof err) < 0) ||
        daemon_pidfile_acquire(cfg->pidfile, err, sizeof err) < 0) {
        startup_failed(err);
        return 1;
    }
    int rc = run();
    daemon_pidfile_release();
    log_close();
    return rc;
}
