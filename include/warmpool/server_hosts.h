/*
 * server_hosts — a backend connect and the pool's host list (pooler/server_hosts.c):
 * the order hosts.c chooses handed to libpq, what the login's outcome says about each
 * host, the host each backend is on, and failovers. Entries with one host skip all of
 * it; none of it runs outside connects and the console's and metrics' reads.
 */
#ifndef WARMPOOL_SERVER_HOSTS_H
#define WARMPOOL_SERVER_HOSTS_H

struct wp_pool;
struct wp_server;

/* Room for one reordered list (host, hostaddr or port). */
#define SERVER_HOSTS_LIST_MAX 4096

struct server_host_lists {
    char v[3][SERVER_HOSTS_LIST_MAX];
};

/* Before a connect of s: for an entry with several hosts, the order this connect tries
   them in (load_balance_hosts, failed hosts last), written over the host, hostaddr and
   port values of the keys[0..n) libpq gets (lists keeps the texts). */
void server_hosts_order(struct wp_server *s, const char **keys, const char **values, int n,
                        struct server_host_lists *lists);
/* libpq logged s in to pq_host:pq_port (PQhost, PQport): the host s is on; with several
   hosts, those tried before it failed, it works, and a `disable` pool whose backends
   move to it has failed over (counted, logged once). NULL, NULL: warmpool's own login,
   on the entry's one host. */
void server_hosts_logged_in(struct wp_server *s, const char *pq_host, const char *pq_port);
/* The connect of s failed on every host it tried. */
void server_hosts_failed(struct wp_server *s);
/* s closes while it connects: past server_connect_timeout, the host libpq waited on
   and those before it failed (a close for another reason, KILL say, says nothing). */
void server_hosts_closing(struct wp_server *s);
/* What the connect kept: freed with the server. */
void server_hosts_forget(struct wp_server *s);

/* The hosts the pool's backends are on now, with how many on each. */
struct server_host_count {
    const char *host_port; /* a backend's server->host_port */
    int servers;
};
/* Up to max distinct hosts into out; returns how many. */
int server_hosts_count(const struct wp_pool *pool, struct server_host_count *out, int max);
/* The host of every backend of the pool, "several" when they are on more than one, NULL
   when it has none. */
const char *server_hosts_where(const struct wp_pool *pool);
/* Failovers of the pool's `disable` host list so far. */
unsigned long long server_hosts_failovers(const struct wp_pool *pool);

#endif
