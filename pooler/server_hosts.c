/*
 * server_hosts — a backend connect and its entry's host list (include/warmpool/
 * server_hosts.h). The decisions are hosts.c's; this file finds the pool's list (made
 * again when a reload changes the entry's lists), hands libpq the order, and reads the
 * outcome back.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "warmpool/config.h"
#include "warmpool/hosts.h"
#include "warmpool/log.h"
#include "warmpool/pool.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/server_hosts.h"
#include "warmpool/timeouts.h"

static const char *const list_keys[] = {"host", "hostaddr", "port"};

/* One state for every random order, seeded once from the kernel. */
static uint64_t *rng_state(void)
{
    static uint64_t state;
    if (!state && getrandom(&state, sizeof state, GRND_NONBLOCK) != sizeof state)
        state = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)wp_now_ms();
    if (!state)
        state = 1;
    return &state;
}

/* The pool's host list for its entry as it is now; NULL for a single host. */
static struct wp_hosts *pool_hosts(struct wp_pool *pool)
{
    const char *host = config_db_conn_value(pool->db, "host");
    const char *addr = config_db_conn_value(pool->db, "hostaddr");
    const char *port = config_db_conn_value(pool->db, "port");
    struct wp_hosts *h = pool->hosts;
    if (h && hosts_same_lists(h, host, addr, port))
        return h;
    int several = (host && strchr(host, ',')) || (addr && strchr(addr, ','));
    const char *err;
    static uint64_t serial;
    pool->hosts = several ? hosts_parse(host, addr, port, &err) : NULL;
    if (pool->hosts) {
        pool->hosts->serial = ++serial; /* orders made for the list before do not apply */
        pool->hosts->failovers = h ? h->failovers : 0; /* a counter: it survives a reload */
    }
    hosts_free(h);
    return pool->hosts;
}

static void forget_order(struct wp_server *s)
{
    free(s->tried);
    s->tried = NULL;
}

void server_hosts_order(struct wp_server *s, const char **keys, const char **values, int n,
                        struct server_host_lists *lists)
{
    struct wp_hosts *h = pool_hosts(s->pool);
    if (!h || !(s->tried = malloc(sizeof *s->tried)))
        return; /* libpq gets the entry's order */
    hosts_order(h, s->pool->settings.load_balance_hosts, wp_now_ms(), rng_state(), s->tried);
    for (int f = 0; f < 3; f++)
        if (hosts_join(h, s->tried, (enum wp_host_field)f, lists->v[f], sizeof lists->v[f]) < 0)
            goto too_long;
    for (int i = 0; i < n; i++)
        for (int f = 0; f < 3; f++)
            if (strcmp(keys[i], list_keys[f]) == 0)
                values[i] = lists->v[f];
    return;
too_long:
    forget_order(s);
}

static void note_failover(struct wp_server *s, struct wp_hosts *h, int i)
{
    struct wp_pool *pool = s->pool;
    int count = pool->settings.load_balance_hosts == WP_LB_DISABLE;
    int before = hosts_note_backend(h, i, count);
    if (before < 0)
        return;
    char was[300];
    hosts_describe(h, before, was, sizeof was);
    log_info("pool %s/%s: backends now on %s (were on %s)", pool->dbname, pool->user,
             s->host_port ? s->host_port : "?", was);
}

void server_hosts_logged_in(struct wp_server *s, const char *pq_host, const char *pq_port)
{
    if (!pq_host) { /* warmpool's own login: the entry's host, as server_login reads it */
        pq_host = config_db_conn_value(s->pool->db, "host");
        pq_port = config_db_conn_value(s->pool->db, "port");
        pq_port = pq_port ? pq_port : getenv("PGPORT") ? getenv("PGPORT") : "5432";
    }
    char text[600];
    snprintf(text, sizeof text, "%s:%s", pq_host ? pq_host : "", pq_port ? pq_port : "");
    free(s->host_port);
    s->host_port = strdup(text);
    struct wp_hosts *h = s->pool->hosts;
    if (s->tried && h && s->tried->serial == h->serial) {
        s->host_index = hosts_logged_in(h, s->tried, pq_host, pq_port, wp_now_ms(),
                                        wp_rt.cfg->server_login_retry);
        if (s->host_index >= 0)
            note_failover(s, h, s->host_index);
    }
    forget_order(s);
}

void server_hosts_failed(struct wp_server *s)
{
    struct wp_hosts *h = s->pool->hosts;
    if (s->tried && h && s->tried->serial == h->serial)
        hosts_all_failed(h, s->tried, wp_now_ms(), wp_rt.cfg->server_login_retry);
    forget_order(s);
}

void server_hosts_closing(struct wp_server *s)
{
    struct wp_hosts *h = s->pool->hosts;
    int64_t limit = wp_rt.cfg->server_connect_timeout, now = wp_now_ms();
    if (s->tried && s->pq && h && s->tried->serial == h->serial && limit > 0 &&
        now - s->connect_started_ms >= limit)
        hosts_timed_out(h, s->tried, PQhost(s->pq), PQport(s->pq), now,
                        wp_rt.cfg->server_login_retry);
    forget_order(s);
}

void server_hosts_forget(struct wp_server *s)
{
    forget_order(s);
    free(s->host_port);
    s->host_port = NULL;
}

/* ---------------------------------------------------------------- reading */

int server_hosts_count(const struct wp_pool *pool, struct server_host_count *out, int max)
{
    int n = 0;
    const struct wp_list *lists[] = {&pool->active, &pool->idle, &pool->busy};
    for (int l = 0; l < 3; l++)
        for (const struct wp_list *p = lists[l]->next; p != lists[l]; p = p->next) {
            const char *at = list_entry(p, struct wp_server, node)->host_port;
            int i = 0;
            while (at && i < n && strcmp(out[i].host_port, at) != 0)
                i++;
            if (!at || (i == n && n == max))
                continue;
            if (i == n)
                out[n++] = (struct server_host_count){at, 0};
            out[i].servers++;
        }
    return n;
}

const char *server_hosts_where(const struct wp_pool *pool)
{
    struct server_host_count at[2];
    int n = server_hosts_count(pool, at, 2);
    return n == 0 ? NULL : n == 1 ? at[0].host_port : "several";
}

unsigned long long server_hosts_failovers(const struct wp_pool *pool)
{
    return pool->hosts ? (unsigned long long)pool->hosts->failovers : 0;
}
