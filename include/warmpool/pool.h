/*
 * pool — per (database, user) lists of backends and waiting clients, sizing, and
 * lending. The pool decides who gets which backend; it never reads or writes sockets.
 */
#ifndef WARMPOOL_POOL_H
#define WARMPOOL_POOL_H

#include <stdint.h>

#include "warmpool/config.h"
#include "warmpool/list.h"
#include "warmpool/params.h"
#include "warmpool/session_state.h"

struct wp_client;
struct wp_server;
struct wp_pool_stats;
struct wp_user_secret;
struct scram_state;
struct scram_client_keys;
struct wp_hosts;

struct wp_pool {
    struct wp_list node; /* wp_rt.pools */
    char *dbname;        /* database name clients ask for */
    char *user;          /* client user name */
    const struct wp_db_config *db;
    struct wp_config *db_cfg; /* the configuration db points into, held (runtime.h) */
    struct wp_pool_settings settings;
    /* backend login */
    char *backend_user;
    char *backend_password; /* NULL: libpq finds one (connstring, passfile) or none needed */
    /* SCRAM keys for backend logins (backend_login.c), wiped when dropped: captured from
       a client's SCRAM login against the user's stored secret (pass-through), or derived
       once from backend_password for the server's salt and iteration count. */
    struct scram_client_keys *backend_keys;
    int backend_keys_passed; /* 1: captured from a client's login; 0: from the password */
    char *backend_md5;       /* the user's md5 secret ("md5…"), for md5 backend logins */

    struct wp_list idle;      /* servers ready to lend from the head: the most recently used
                                 first, or with server_round_robin the least (pool_file_server) */
    struct wp_list active;    /* servers linked to a client */
    struct wp_list busy;      /* connecting, resetting, draining */
    struct wp_list waiting;   /* clients waiting for a server, FIFO */
    struct wp_list welcoming; /* logged-in clients waiting for the first server params */
    int nservers;             /* every server of the pool, any state */
    int nconnecting;
    int nwaiting;
    int nchecking; /* servers running server_check_query for a waiting client */
    /* Clients in the pool and servers of it not yet freed (closed ones included, for
       they still point here): while any, the pool stays. */
    int holders;
    int64_t unused_since_ms; /* when holders last fell to 0 */

    struct wp_params params; /* ParameterStatus set of a real backend */
    int params_known;
    char last_error[256]; /* last connect failure (libpq's text), for operators only */
    char last_sqlstate[6];
    int64_t retry_after_ms;  /* no new connects before this (server_login_retry) */
    int login_failures;      /* backend logins failed in a row */
    int login_worked;        /* a backend login of the pool has worked */
    int launching;           /* in pool_launch_if_needed: a failed connect's close waits */
    int64_t last_recycle_ms; /* last server_lifetime close: at most one per tick */
    int paused;

    /* counters */
    uint64_t xact_count, query_count, wait_count;
    uint64_t bytes_in, bytes_out;
    int64_t total_wait_us, max_wait_us;
    uint64_t prepared_hits, prepared_misses, prepared_evictions;
    /* PgBouncer's SHOW STATS counts (relay_prepared.c): named statements clients
       prepared (Parse, SQL PREPARE), statements prepared on backends, Binds of named
       statements relayed. */
    uint64_t client_parses, server_parses, binds;
    int pinned_clients;              /* clients that keep their backend (session state) */
    uint64_t pins_total[PIN_CAUSES]; /* pin causes taken, by enum wp_pin_cause */
    /* Statements to prepare on new backends when no sibling can show them. */
    struct wp_stmt **warm;
    int nwarm;
    struct wp_pool_stats *stats; /* stats.c: allocated on first use, freed by stats_pool_free() */
    struct wp_hosts *hosts;      /* the entry's host list when it has several (server_hosts.c) */
};

struct wp_pool *pool_find(const char *dbname, const char *user);
/* db must be an entry of the configuration in force (wp_rt.cfg). */
struct wp_pool *pool_get(const struct wp_db_config *db, const char *dbname, const char *user);
void pool_free(struct wp_pool *pool);
/* A client logged in to the pool, or a server of it was made (pool_hold); that client
   or server is freed (pool_drop). A pool nobody holds is freed by pool_maintain once
   it has been unused for its server_idle_timeout. */
void pool_hold(struct wp_pool *pool);
void pool_drop(struct wp_pool *pool);
void pool_refresh_settings(struct wp_pool *pool);
/* Every server of the pool closes now, in use or not (KILL, shutdown); returns how many. */
int pool_close_servers(struct wp_pool *pool, const char *reason);
/* Servers made so far close once not in use (idle ones now); new ones as needed. */
void pool_retire_servers(struct wp_pool *pool, const char *reason);
/* PAUSE: clients queue, idle servers close now and busy ones when released, nothing
   new is opened. RESUME: waiting clients are served, servers opened as needed. */
void pool_set_paused(struct wp_pool *pool, int paused);
/* A client logged in to the pool with `secret` (and SCRAM state `st`, or NULL): keep
   what its backend logins can use without a plaintext password (pass-through). */
void pool_learn_login(struct wp_pool *pool, const struct wp_user_secret *secret,
                      const struct scram_state *st);
/* Replace the pool's backend SCRAM keys (copied) and whether they were passed through. */
int pool_set_backend_keys(struct wp_pool *pool, const struct scram_client_keys *keys, int passed);

/* A client needs a backend: link one now (returns 1) or queue the client (0). */
int pool_request_server(struct wp_pool *pool, struct wp_client *client);
void pool_cancel_wait(struct wp_client *client);
/* A waiting client's request gets ERROR sqlstate instead of a server (FATAL when the
   request is not all buffered); what it sent after that request is served as usual. */
void pool_refuse_waiter(struct wp_client *client, const char *sqlstate, const char *text);
/* A server finished with its client, or finished connecting/resetting: lend or park it. */
void pool_server_ready(struct wp_server *server);
/* A server is gone (closed); adjust counts and maybe open another. */
void pool_server_closed(struct wp_pool *pool, struct wp_server *server);
/* The pool's counters and lists change here only: a server is being opened, has
   connected, or changed state (server_set_state). */
void pool_server_opening(struct wp_pool *pool);
void pool_server_connected(struct wp_pool *pool);
void pool_file_server(struct wp_server *server);
/* A connect failed: record the error (message: for the operator, never sent to
   clients), fail welcome waiters with a fixed text for sqlstate, and hold new connects
   for server_login_retry. Call it before closing the server, whose close may launch. */
void pool_connect_failed(struct wp_pool *pool, const char *sqlstate, const char *message);
/* A backend logged in and its connect_query (if any) succeeded: failures from now on
   are retried soon at first (pool_connect_failed). */
void pool_login_worked(struct wp_pool *pool);
/* The server on host_port ("host:port"; NULL: every server) no longer fits the entry
   (in_hot_standby changed): the pool's backends there are closed, the idle ones now,
   the others once their clients are done. pool_retire_servers is this for all. */
void pool_retire_host(struct wp_pool *pool, const char *host_port, const char *reason);
/* A logged-in backend went away (shutdown, crash, terminated): the pool's other idle
   backends may be gone too, so each runs server_check_query before it is lent next. */
void pool_server_lost(struct wp_pool *pool);
/* First server params arrive: welcome every waiting client. */
void pool_set_params(struct wp_pool *pool, const struct wp_params *params);
/* Periodic: keep min_pool_size, reserve, idle and lifetime limits, wait timeouts.
   Frees the pool when it has been unused long enough (see pool_hold): callers walk
   wp_rt.pools with list_for_each_safe and do not touch the pool afterwards. */
void pool_maintain(struct wp_pool *pool, int64_t now_ms);
/* Open more servers if clients wait and the limits allow. */
void pool_launch_if_needed(struct wp_pool *pool);

/* The idle server used longest ago (NULL when none): the one to close first. */
struct wp_server *pool_oldest_idle(struct wp_pool *pool);
/* The idle server used after s, towards the most recent (NULL after the last). */
struct wp_server *pool_newer_idle(struct wp_pool *pool, struct wp_server *s);

#endif
