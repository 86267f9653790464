/*
 * hosts — the host list of a [databases] entry with several hosts, and the order a
 * new backend connect tries them in (load_balance_hosts). Pure: no sockets, the time
 * and the random state are passed in.
 *
 * libpq 15 has no load_balance_hosts, so warmpool hands libpq the `host`, `hostaddr`
 * and `port` lists already in the order it wants: the entry's (disable), a fresh
 * shuffle per connect (random) or the next rotation (round-robin, PgBouncer's). A host
 * that failed goes last (never dropped: libpq still reaches it when the others fail)
 * until its back-off, doubling from 50 ms per failure in a row up to a cap, expires.
 * What failed is learnt from the outcome: the host libpq logged in to (PQhost and
 * PQport) won, every host before it in that attempt failed; a connect that failed
 * failed on all of them.
 */
#ifndef WARMPOOL_HOSTS_H
#define WARMPOOL_HOSTS_H

#include <stddef.h>
#include <stdint.h>

enum wp_lb_mode {
    WP_LB_DISABLE = 0, /* the entry's order */
    WP_LB_RANDOM,      /* a fresh random order per connect (libpq 16) */
    WP_LB_ROUND_ROBIN, /* the next host first at each connect (PgBouncer 1.24) */
};
/* "disable", "random", "round-robin", NULL: the values load_balance_hosts takes. */
extern const char *const hosts_lb_names[];
const char *hosts_lb_name(int mode);

#define HOSTS_MAX 32        /* hosts in one entry's list */
#define HOSTS_BACKOFF_MS 50 /* the first failure's back-off */

struct wp_host {
    char *host;             /* the host list's item ("" when the list has none for it) */
    char *hostaddr;         /* the hostaddr list's item, or NULL without a hostaddr list */
    char *port;             /* the port for it, or NULL without a port list (libpq's default) */
    int failures;           /* failed connects in a row */
    int64_t retry_after_ms; /* tried last until then */
};

struct wp_hosts {
    /* The entry's lists as given, to notice a reload that changes them. */
    char *host_list, *hostaddr_list, *port_list;
    struct wp_host v[HOSTS_MAX];
    int n;
    unsigned next;      /* round-robin: the host to try first next time */
    int last;           /* the host the pool's latest backend logged in to; -1 none */
    uint64_t failovers; /* a backend logged in on another host than the one before it */
    uint64_t serial;    /* the caller's name for this list, copied into each order */
};

/* One connect's order: order[i] is an index into hosts->v, tried i-th. */
struct wp_host_order {
    int order[HOSTS_MAX];
    int n;
    uint64_t serial; /* of the list it orders */
};

/* The lists of an entry (NULL when the entry lacks the key), split by libpq's rules:
   the host count is the longest of host and hostaddr; the other list and the port list
   have one item for all or one per host. NULL with *err set when the counts do not
   match or there are more than HOSTS_MAX; NULL with *err "" when the entry has fewer
   than two hosts (libpq gets it as it is) or memory ran out (then errno). */
struct wp_hosts *hosts_parse(const char *host, const char *hostaddr, const char *port,
                             const char **err);
void hosts_free(struct wp_hosts *hosts);
/* Whether hosts was parsed from these lists. */
int hosts_same_lists(const struct wp_hosts *hosts, const char *host, const char *hostaddr,
                     const char *port);

/* The order of the next connect in mode (enum wp_lb_mode) at now_ms; *rng is a
   xorshift state (not 0) that random mode advances. */
void hosts_order(struct wp_hosts *hosts, int mode, int64_t now_ms, uint64_t *rng,
                 struct wp_host_order *out);
/* The comma list of one field (host, hostaddr or port) in that order, as libpq reads
   it; "" for a field the entry does not set. Returns -1 when it does not fit. */
enum wp_host_field { HOSTS_HOST, HOSTS_HOSTADDR, HOSTS_PORT };
int hosts_join(const struct wp_hosts *hosts, const struct wp_host_order *order,
               enum wp_host_field field, char *out, size_t len);

/* A connect in `order` logged in to the host libpq names (PQhost, PQport): the hosts
   before it failed, it works. Returns its index, or -1 when none matches (nothing is
   marked then). cap_ms bounds the back-off. */
int hosts_logged_in(struct wp_hosts *hosts, const struct wp_host_order *order, const char *pq_host,
                    const char *pq_port, int64_t now_ms, int64_t cap_ms);
/* A connect in `order` was given up (server_connect_timeout) while libpq was on the
   host it names: that host and those before it failed, those after it were not tried.
   Returns its index, or -1 when none matches (nothing is marked then). */
int hosts_timed_out(struct wp_hosts *hosts, const struct wp_host_order *order, const char *pq_host,
                    const char *pq_port, int64_t now_ms, int64_t cap_ms);
/* A connect in `order` failed: every host of it failed. */
void hosts_all_failed(struct wp_hosts *hosts, const struct wp_host_order *order, int64_t now_ms,
                      int64_t cap_ms);
/* A backend of the pool logged in on host i. With count_failover, a host other than
   the one the backend before it logged in to is a failover: counted, and that host's
   index returned; else -1. */
int hosts_note_backend(struct wp_hosts *hosts, int i, int count_failover);
/* "host:port" of host i ("host" when the entry gives no port). */
void hosts_describe(const struct wp_hosts *hosts, int i, char *out, size_t len);

#endif
