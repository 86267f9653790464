/*
 * peering — forwarding of CancelRequests to peers (include/warmpool/peering.h).
 *
 * State per peer id lives here, not in the configuration, so a reload (which replaces
 * the configuration) keeps the forwards in flight and the counters; the host, port and
 * pool_size are read from the configuration in force when a forward starts. Dropped
 * requests are logged once per peer id and reason: a client or a load balancer
 * retrying a bad key must not flood the log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/cancel_key.h"
#include "warmpool/log.h"
#include "warmpool/peer_send.h"
#include "warmpool/peering.h"
#include "warmpool/runtime.h"
#include "warmpool/workpool.h"

struct forward {
    struct forward *next;
    struct peer_state *peer;
    uint32_t pid, key; /* as sent on: one hop spent */
    char host[256];
    int port;
    int64_t timeout_ms;
    int ok;
    char err[320];
};

struct peer_state {
    struct peer_state *next;
    int id;
    int active;
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

static void run_forward(void *arg)
{
    struct forward *f = arg;
    f->ok = peer_send_cancel(f->host, f->port, f->pid, f->key, f->timeout_ms, f->err,
                             sizeof f->err) == 0;
}

static void start_waiting(struct peer_state *p);

static void forward_done(void *arg)
{
    struct forward *f = arg;
    struct peer_state *p = f->peer;
    p->active--;
    if (f->ok) {
        p->forwarded++;
        p->failing = 0;
        log_info("cancel request forwarded to peer %d (%s:%d)", p->id, f->host, f->port);
    } else {
        p->failed++;
        if (!p->failing)
            log_warn("cancel request not forwarded to peer %d: %s", p->id, f->err);
        p->failing = 1;
    }
    free(f);
    start_waiting(p);
}

static void start_waiting(struct peer_state *p)
{
    while (p->head && p->active < pool_limit(p->id)) {
        struct forward *f = p->head;
        p->head = f->next;
        if (!p->head)
            p->tail = NULL;
        p->waiting--;
        if (workpool_submit(run_forward, forward_done, f) < 0) {
            p->failed++;
            free(f);
            continue;
        }
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
