/*
 * cancel — query cancellation. Clients hold keys warmpool made up; a CancelRequest
 * with such a key becomes libpq's PQcancel against the backend that client is using (or
 * the same request sent by server_login.c for a backend it logged in), run on the
 * workpool because both block. With peering on (peer_id), a key another instance issued
 * goes to peering.c, which forwards it to that instance.
 */
#include <libpq-fe.h>
#include <stdlib.h>

#include "warmpool/cancel.h"
#include "warmpool/cancel_key.h"
#include "warmpool/client.h"
#include "warmpool/log.h"
#include "warmpool/peering.h"
#include "warmpool/pool.h"
#include "warmpool/relay.h"
#include "warmpool/runtime.h"
#include "warmpool/server.h"
#include "warmpool/server_login.h"
#include "warmpool/stats.h"
#include "warmpool/workpool.h"

struct cancel_job {
    PGcancel *handle;                /* libpq's backends */
    struct server_cancel_target own; /* server_login's backends (handle NULL) */
    struct wp_server *server;        /* kept alive by server->cancel_pending */
    int ok;
    char err[256];
};

static void run_cancel(void *arg)
{
    struct cancel_job *job = arg;
    if (job->handle)
        job->ok = PQcancel(job->handle, job->err, sizeof job->err);
    else
        job->ok = server_login_send_cancel(&job->own, job->err, sizeof job->err) == 0;
}

static void cancel_done(void *arg)
{
    struct cancel_job *job = arg;
    struct wp_server *s = job->server;
    if (job->handle)
        PQfreeCancel(job->handle);
    s->cancel_pending--;
    if (!job->ok)
        log_warn("S-%llu pid=%u: cancel failed: %s", (unsigned long long)s->id, s->backend_pid,
                 job->err);
    free(job);
    if (s->state == SV_CLOSED)
        return; /* the reaper frees it now that nothing points here */
    if (s->client)
        relay_try_release(s);
    else
        server_on_quiet(s);
}

void cancel_server(struct wp_server *s)
{
    struct cancel_job *job = calloc(1, sizeof *job);
    if (!job)
        return;
    /* PQgetCancel only copies the key and address: safe on the loop. */
    if (s->pq)
        job->handle = PQgetCancel(s->pq);
    else if (server_login_cancel_target(s, &job->own) < 0) {
        free(job);
        return;
    }
    job->server = s;
    if ((s->pq && !job->handle) || workpool_submit(run_cancel, cancel_done, job) < 0) {
        if (job->handle)
            PQfreeCancel(job->handle);
        free(job);
        return;
    }
    s->cancel_pending++;
    log_info("S-%llu pid=%u: cancel sent", (unsigned long long)s->id, s->backend_pid);
}

void cancel_request(uint32_t pid, uint32_t key)
{
    int self = wp_rt.cfg->peer_id;
    if (self > 0) {
        /* PgBouncer's peering: the key says which instance issued it. */
        if (cancel_key_peer_id(pid) != self) {
            peering_forward(pid, key);
            return;
        }
        key = cancel_key_as_issued(key); /* hops spent on the way do not matter here */
    }
    struct wp_client *c = client_find_by_cancel_key(pid, key);
    if (!c) {
        log_debug("cancel request with an unknown key ignored");
        return;
    }
    /* Only a backend busy for this client gets the cancel, never one it left. */
    if (c->server && server_outstanding(c->server)) {
        stats_cancel(c->pool);
        cancel_server(c->server);
    } else if (c->state == CL_WAITING && client_request_buffered(c)) {
        /* Still queued for a backend: it never runs, and says so as PostgreSQL would. */
        stats_cancel(c->pool);
        pool_refuse_waiter(c, "57014", "canceling statement due to user request");
    }
}
