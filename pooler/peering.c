/*
 * peering — forwarding of CancelRequests to peers (include/warmpool/peering.h).
 *
 * A forward is a peer_send on the event loop (no thread): a peer that is gone or
 * drops packets ties up one of its own pool_size slots until server_connect_timeout,
 * never the workpool that local cancels need.
 *
 * State per peer id lives here, not in the configuration, so a reload (which replaces * the
 * configuration) keeps the forwards in flight and the counters; the host, port and addresses are
 * those of the configuration in force when a forward is queued, the pool_size that in force when it
 * could start. Dropped requests are logged once per peer id and reason: a client or a load balancer
 * retrying a bad key must not flood the log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/cancel_key.h"
#include "warmpool/log.h"
#include "warmpool/list.h"
#include "warmpool/peer_resolve.h"
#include "warmpool/peer_send.h"
#include "warmpool/peering.h"
#include "warmpool/runtime.h"

struct forward {
    struct forward *next; /* in the queue */
    struct wp_list node;  /* in flight: in peer_state.sending */
    struct peer_state *peer;
    struct peer_send *send;
    uint32_t pid, key; /* as sent on: one hop spent */
    char host[256];
    int port;
    struct wp_peer_addrs to; /* from the configuration in force when it was queued */
    int64_t timeout_ms;
};

struct peer_state {
    struct peer_state *next;
    int id;
    int active;
    struct wp_list sending;      /* struct forward.node: in flight */
    struct forward *head, *tail; /* waiting for a free slot */
    int waiting;
    unsigned long long forwarded, failed;
    int failing; /* the last forward failed: the next failure is not logged again */
};

static struct peer_state *peers;

/* Queued forwards per peer beyond which new ones are dropped: a burst against a peer
   that never answers must not grow memory without end. */
#define WAITING_MAX 1024

#define ID_SPACE 65536
static uint8_t logged_unknown[ID_SPACE / 8], logged_spent[ID_SPACE / 8];

/* True the first time for this id. */
static int first_time(uint8_t *bits, int id)
{
    uint8_t bit = (uint8_t)(1u << (id & 7));
    if (bits[id >> 3] & bit)
        return 0;
    bits[id >> 3] |= bit;
    return 1;
}

static struct peer_state *find_state(int id, int create)
{
    for (struct peer_state *p = peers; p; p = p->next)
        if (p->id == id)
            return p;
    if (!create)
        return NULL;
    struct peer_state *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->id = id;
    list_init(&p->sending);
    p->next = peers;
    peers = p;
    return p;
}

static int pool_limit(int id)
{
    const struct wp_peer_config *pc = peers_config_find(&wp_rt.cfg->peers, id);
    if (pc && pc->pool_size > 0)
        return pc->pool_size;
    return wp_rt.cfg->pool.max_pool_size; /* default_pool_size, as in PgBouncer */
}

static void start_waiting(struct peer_state *p);

static void count_result(struct peer_state *p, const struct forward *f, int ok, const char *why)
{
    if (ok) {
        p->forwarded++;
        p->failing = 0;
        log_info("cancel request forwarded to peer %d (%s:%d)", p->id, f->host, f->port);
        return;
    }
    p->failed++;
    if (!p->failing)
        log_warn("cancel request not forwarded to peer %d: %s", p->id, why);
    p->failing = 1;
}

static void forward_done(void *arg, int ok, const char *why)
{
    struct forward *f = arg;
    struct peer_state *p = f->peer;
    list_remove(&f->node);
    p->active--;
    count_result(p, f, ok, why);
    free(f);
    start_waiting(p);
}

static void start_waiting(struct peer_state *p)
{
    char why[600], name[280];
    while (p->head && p->active < pool_limit(p->id)) {
        struct forward *f = p->head;
        p->head = f->next;
        if (!p->head)
            p->tail = NULL;
        p->waiting--;
        snprintf(name, sizeof name, "%s:%d", f->host, f->port);
        f->send = peer_send_start(&f->to, name, f->pid, f->key, f->timeout_ms, forward_done, f, why,
                                  sizeof why);
        if (!f->send) {
            count_result(p, f, 0, why);
            free(f);
            continue;
        }
        list_push_tail(&p->sending, &f->node);
        p->active++;
    }
}

static int dropped(int peer_id, int ttl)
{
    if (ttl == 0) {
        if (first_time(logged_spent, peer_id))
            log_warn("cancel request for peer %d dropped: forwarded too often (hop count "
                     "spent); further ones for this peer are not logged",
                     peer_id);
        return 1;
    }
    if (!peers_config_find(&wp_rt.cfg->peers, peer_id)) {
        if (first_time(logged_unknown, peer_id))
            log_warn("cancel request for peer %d dropped: no such peer in [peers]; further "
                     "ones for this peer are not logged",
                     peer_id);
        return 1;
    }
    return 0;
}

void peering_forward(uint32_t pid, uint32_t key)
{
    int id = cancel_key_peer_id(pid);
    if (dropped(id, cancel_key_ttl(key)))
        return;
    const struct wp_peer_config *pc = peers_config_find(&wp_rt.cfg->peers, id);
    struct peer_state *p = find_state(id, 1);
    if (p && p->waiting >= WAITING_MAX) {
        if (!p->failing)
            log_warn("cancel request for peer %d dropped: %d already wait", id, p->waiting);
        p->failing = 1;
        p->failed++;
        return;
    }
    struct forward *f = p ? calloc(1, sizeof *f) : NULL;
    if (!f)
        return; /* out of memory: the cancel is lost, as a lost packet would be */
    f->peer = p;
    f->pid = pid;
    f->key = cancel_key_spend_hop(key);
    snprintf(f->host, sizeof f->host, "%s", pc->host);
    f->port = pc->port;
    if (pc->addrs)
        f->to = *pc->addrs;
    else
        snprintf(f->to.err, sizeof f->to.err, "address not resolved");
    f->timeout_ms =
        wp_rt.cfg->server_connect_timeout > 0 ? wp_rt.cfg->server_connect_timeout : 15000;
    if (p->tail)
        p->tail->next = f;
    else
        p->head = f;
    p->tail = f;
    p->waiting++;
    start_waiting(p);
}

void peering_counts(int peer_id, struct peering_counts *out)
{
    memset(out, 0, sizeof *out);
    const struct peer_state *p = find_state(peer_id, 0);
    if (!p)
        return;
    out->active = p->active;
    out->waiting = p->waiting;
    out->forwarded = p->forwarded;
    out->failed = p->failed;
}

void peering_shutdown(void)
{
    while (peers) {
        struct peer_state *p = peers;
        peers = p->next;
        while (!list_empty(&p->sending)) {
            struct forward *f = list_entry(p->sending.next, struct forward, node);
            list_remove(&f->node);
            peer_send_free(f->send);
            free(f);
        }
        while (p->head) {
            struct forward *f = p->head;
            p->head = f->next;
            free(f);
        }
        free(p);
    }
}
