/*
 * hosts — an entry's host list and the order each backend connect tries it in
 * (include/warmpool/hosts.h). server.c asks for an order, hands libpq the lists in
 * it, and reports which host won; nothing here touches a socket or reads a clock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/hosts.h"

const char *const hosts_lb_names[] = {"disable", "random", "round-robin", NULL};

const char *hosts_lb_name(int mode)
{
    return mode >= WP_LB_DISABLE && mode <= WP_LB_ROUND_ROBIN ? hosts_lb_names[mode] : "unknown";
}

/* ---------------------------------------------------------------- parsing */

/* Items of a comma list as libpq splits it (no quoting, empty items kept); 0 for an
   absent or empty list, -1 beyond max, -2 out of memory (items freed either way). */
static int split_list(const char *list, char **items, int max)
{
    if (!list || !*list)
        return 0;
    int n = 0;
    for (const char *p = list;; n++) {
        size_t len = strcspn(p, ",");
        int rc = n == max ? -1 : !(items[n] = strndup(p, len)) ? -2 : 0;
        if (rc < 0) {
            while (n > 0)
                free(items[--n]);
            return rc;
        }
        if (!p[len])
            return n + 1;
        p += len + 1;
    }
}

static void free_items(char **items, int n)
{
    for (int i = 0; i < n; i++) /* n < 0: none */
        free(items[i]);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Gives each host its items: hosts and hostaddrs one to one, ports one to one or one
   for all. Takes the items (freed or kept) in every case. */
static int fill_hosts(struct wp_hosts *h, char **hosts, int nh, char **addrs, int na, char **ports,
                      int np)
{
    int ok = 1;
    for (int i = 0; i < h->n; i++) {
        struct wp_host *x = &h->v[i];
        x->host = nh ? hosts[i] : strdup("");
        x->hostaddr = na ? addrs[i] : NULL;
        x->port = np ? strdup(ports[np == 1 ? 0 : i]) : NULL;
        ok &= x->host && (!np || x->port);
    }
    free_items(ports, np);
    return ok ? 0 : -1;
}

static const char *count_error(int nh, int na, int np)
{
    int n = nh > na ? nh : na;
    if (nh == -1 || na == -1 || np == -1)
        return "more hosts than warmpool supports in one entry (32)";
    if (nh && na && nh != na)
        return "the host and hostaddr lists differ in length";
    if (np > 1 && np != n)
        return "the port list has neither one port nor one per host";
    return NULL;
}

static struct wp_hosts *new_hosts(const char *host, const char *hostaddr, const char *port, int n)
{
    struct wp_hosts *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->n = n;
    h->last = -1;
    h->host_list = dup_or_null(host);
    h->hostaddr_list = dup_or_null(hostaddr);
    h->port_list = dup_or_null(port);
    return h;
}

struct wp_hosts *hosts_parse(const char *host, const char *hostaddr, const char *port,
                             const char **err)
{
    char *hosts[HOSTS_MAX], *addrs[HOSTS_MAX], *ports[HOSTS_MAX];
    int nh = split_list(host, hosts, HOSTS_MAX);
    int na = split_list(hostaddr, addrs, HOSTS_MAX);
    int np = split_list(port, ports, HOSTS_MAX);
    int n = nh > na ? nh : na;
    const char *bad = count_error(nh, na, np);
    int oom = nh == -2 || na == -2 || np == -2;
    struct wp_hosts *h = NULL;
    *err = bad ? bad : "";
    if (!bad && !oom && n >= 2 && (h = new_hosts(host, hostaddr, port, n))) {
        int failed = fill_hosts(h, hosts, nh, addrs, na, ports, np) < 0;
        if (failed || (host && !h->host_list) || (hostaddr && !h->hostaddr_list) ||
            (port && !h->port_list)) {
            hosts_free(h);
            errno = ENOMEM;
            return NULL;
        }
        return h;
    }
    free_items(hosts, nh);
    free_items(addrs, na);
    free_items(ports, np);
    return NULL;
}

void hosts_free(struct wp_hosts *h)
{
    if (!h)
        return;
    for (int i = 0; i < h->n; i++) {
        free(h->v[i].host);
        free(h->v[i].hostaddr);
        free(h->v[i].port);
    }
    free(h->host_list);
    free(h->hostaddr_list);
    free(h->port_list);
    free(h);
}

static int same_text(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

int hosts_same_lists(const struct wp_hosts *h, const char *host, const char *hostaddr,
                     const char *port)
{
    return same_text(h->host_list, host) && same_text(h->hostaddr_list, hostaddr) &&
           same_text(h->port_list, port);
}

/* ---------------------------------------------------------------- ordering */

static uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ULL;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

static void shuffle(int *v, int n, uint64_t *rng)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(xorshift64(rng) % (uint64_t)(i + 1));
        int t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

void hosts_order(struct wp_hosts *h, int mode, int64_t now_ms, uint64_t *rng,
                 struct wp_host_order *out)
{
    int base[HOSTS_MAX];
    unsigned first = mode == WP_LB_ROUND_ROBIN ? h->next++ % (unsigned)h->n : 0;
    for (int i = 0; i < h->n; i++)
        base[i] = (int)((first + (unsigned)i) % (unsigned)h->n);
    if (mode == WP_LB_RANDOM)
        shuffle(base, h->n, rng);
    /* Hosts in back-off go last, each group keeping its order. */
    out->n = 0;
    out->serial = h->serial;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < h->n; i++)
            if ((h->v[base[i]].retry_after_ms > now_ms) == pass)
                out->order[out->n++] = base[i];
}

static const char *field_of(const struct wp_host *x, enum wp_host_field field)
{
    return field == HOSTS_HOST ? x->host : field == HOSTS_HOSTADDR ? x->hostaddr : x->port;
}

int hosts_join(const struct wp_hosts *h, const struct wp_host_order *order,
               enum wp_host_field field, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    if (!field_of(&h->v[0], field))
        return 0; /* the entry has no such list */
    for (int i = 0; i < order->n; i++) {
        int w = snprintf(out + used, len - used, "%s%s", i ? "," : "",
                         field_of(&h->v[order->order[i]], field));
        if (w < 0 || (size_t)w >= len - used)
            return -1;
        used += (size_t)w;
    }
    return 0;
}

/* ---------------------------------------------------------------- outcomes */

static void mark_failed(struct wp_host *x, int64_t now_ms, int64_t cap_ms)
{
    int shift = x->failures < 20 ? x->failures : 20;
    int64_t backoff = (int64_t)HOSTS_BACKOFF_MS << shift;
    x->failures++;
    x->retry_after_ms = now_ms + (backoff < cap_ms ? backoff : cap_ms);
}

/* What PQhost reports for a host: its name, else its address. */
static int is_host(const struct wp_host *x, const char *pq_host, const char *pq_port)
{
    const char *name = x->host[0] || !x->hostaddr ? x->host : x->hostaddr;
    return strcmp(name, pq_host) == 0 && (!x->port || strcmp(x->port, pq_port) == 0);
}

/* Where the host libpq names is in order; -1 when none matches. */
static int position(const struct wp_hosts *h, const struct wp_host_order *order,
                    const char *pq_host, const char *pq_port)
{
    for (int i = 0; i < order->n && pq_host && pq_port; i++)
        if (is_host(&h->v[order->order[i]], pq_host, pq_port))
            return i;
    return -1;
}

int hosts_logged_in(struct wp_hosts *h, const struct wp_host_order *order, const char *pq_host,
                    const char *pq_port, int64_t now_ms, int64_t cap_ms)
{
    int at = position(h, order, pq_host, pq_port);
    if (at < 0)
        return -1;
    for (int i = 0; i < at; i++)
        mark_failed(&h->v[order->order[i]], now_ms, cap_ms);
    struct wp_host *won = &h->v[order->order[at]];
    won->failures = 0;
    won->retry_after_ms = 0;
    return order->order[at];
}

int hosts_timed_out(struct wp_hosts *h, const struct wp_host_order *order, const char *pq_host,
                    const char *pq_port, int64_t now_ms, int64_t cap_ms)
{
    int at = position(h, order, pq_host, pq_port);
    for (int i = 0; i <= at; i++)
        mark_failed(&h->v[order->order[i]], now_ms, cap_ms);
    return at < 0 ? -1 : order->order[at];
}

void hosts_all_failed(struct wp_hosts *h, const struct wp_host_order *order, int64_t now_ms,
                      int64_t cap_ms)
{
    for (int i = 0; i < order->n; i++)
        mark_failed(&h->v[order->order[i]], now_ms, cap_ms);
}

int hosts_note_backend(struct wp_hosts *h, int i, int count_failover)
{
    int before = h->last;
    h->last = i;
    if (!count_failover || before < 0 || before == i)
        return -1;
    h->failovers++;
    return before;
}

void hosts_describe(const struct wp_hosts *h, int i, char *out, size_t len)
{
    const struct wp_host *x = &h->v[i];
    const char *name = x->host[0] || !x->hostaddr ? x->host : x->hostaddr;
    if (x->port)
        snprintf(out, len, "%s:%s", name, x->port);
    else
        snprintf(out, len, "%s", name);
}
