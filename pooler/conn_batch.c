/*
 * conn_batch — reads and writes of one loop turn, spread over the io_threads (see
 * include/warmpool/conn_batch.h).
 */
#include <stdint.h>
#include <stdlib.h>

#include "warmpool/buf.h"
#include "warmpool/conn_batch.h"
#include "warmpool/io_threads.h"

struct batch {
    struct wp_conn **conns; /* NULL where a connection closed since it joined */
    uint32_t count, cap;
};

int conn_batching;
static struct batch reads, writes; /* joining now */
static struct batch running;       /* the batch being done (reads or writes) */

void conn_batch_enable(int on)
{
    conn_batching = on != 0;
}

static int join(struct batch *b, struct wp_conn *cn, uint32_t *slot)
{
    if (*slot)
        return 1;
    if (b->count == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 64;
        struct wp_conn **conns = realloc(b->conns, cap * sizeof *conns);
        if (!conns)
            return 0; /* done at once instead */
        b->conns = conns;
        b->cap = cap;
    }
    b->conns[b->count++] = cn;
    *slot = b->count;
    return 1;
}

int conn_batch_join_read(struct wp_conn *cn)
{
    return !cn->tls && join(&reads, cn, &cn->read_slot);
}

int conn_batch_join_write(struct wp_conn *cn)
{
    return !cn->tls && join(&writes, cn, &cn->write_slot);
}

void conn_batch_forget(struct wp_conn *cn)
{
    if (cn->read_slot)
        reads.conns[cn->read_slot - 1] = NULL;
    if (cn->write_slot)
        writes.conns[cn->write_slot - 1] = NULL;
    if (cn->run_slot)
        running.conns[cn->run_slot - 1] = NULL;
    cn->read_slot = cn->write_slot = cn->run_slot = 0;
}

/* The joining batch becomes the running one; the joining one starts empty. */
static void start_running(struct batch *from, int is_read)
{
    struct batch swap = running;
    running = *from;
    *from = (struct batch){swap.conns, 0, swap.cap};
    for (uint32_t i = 0; i < running.count; i++) {
        struct wp_conn *cn = running.conns[i];
        if (!cn)
            continue;
        if (is_read)
            cn->read_slot = 0;
        else
            cn->write_slot = 0;
        cn->run_slot = i + 1;
    }
}

static void end_running(void)
{
    for (uint32_t i = 0; i < running.count; i++)
        if (running.conns[i])
            running.conns[i]->run_slot = 0;
    running.count = 0;
}

/* ---- reads ---- */

/* Still worth reading now? The owner may have paused it since (the input cap, or a
   slow peer), and its input cap is checked by conn_read itself: over it, the handler
   reads unbatched and pauses. Room is reserved here, since the buffer cache is the
   loop thread's. */
static int read_wanted(struct wp_conn *cn)
{
    if (cn->read_room == 0 || (cn->read_cap > 0 && buf_unread(&cn->in) >= cn->read_cap))
        return 0;
    return buf_reserve(&cn->in, cn->read_room) == 0;
}

static void read_one(void *item)
{
    struct wp_conn *cn = item;
    cn->io_rc = buf_read_fd(&cn->in, cn->fd, cn->read_room);
}

/* The items handed to the threads: a separate list, the batch keeps its order. */
static struct {
    void **items;
    uint32_t cap;
} todo;

static int todo_room(uint32_t n)
{
    if (n <= todo.cap)
        return 0;
    void **items = realloc(todo.items, n * sizeof *items);
    if (!items)
        return -1;
    todo.items = items;
    todo.cap = n;
    return 0;
}

static void run_reads(void)
{
    start_running(&reads, 1);
    size_t n = 0;
    int room = todo_room(running.count) == 0; /* else every handler reads itself */
    for (uint32_t i = 0; room && i < running.count; i++) {
        struct wp_conn *cn = running.conns[i];
        if (cn && cn->fd >= 0 && !cn->read_paused && read_wanted(cn)) {
            cn->prefetched = 1;
            todo.items[n++] = cn;
        }
    }
    io_threads_run(read_one, todo.items, n);
    /* Every queued connection's handler runs, as its event would have, unless it
       closed or paused since; one not read for reads itself in conn_read. */
    for (uint32_t i = 0; i < running.count; i++) {
        struct wp_conn *cn = running.conns[i];
        if (!cn || cn->fd < 0 || (cn->read_paused && !cn->prefetched))
            continue;
        cn->on_readable(cn->owner);
        if (running.conns[i] == cn)
            cn->prefetched = 0;
    }
    end_running();
}

/* ---- writes ---- */

static void write_one(void *item)
{
    struct wp_conn *cn = item;
    cn->io_rc = conn_write_plain(cn, cn->io_peer);
}

static void run_writes(void)
{
    start_running(&writes, 0);
    size_t n = 0;
    if (todo_room(running.count) < 0) {
        for (uint32_t i = 0; i < running.count; i++)
            if (running.conns[i])
                running.conns[i]->io_rc = 0; /* wait for the socket instead */
    } else {
        for (uint32_t i = 0; i < running.count; i++) {
            struct wp_conn *cn = running.conns[i];
            if (!cn || cn->fd < 0)
                continue;
            cn->io_peer = cn->peer_of ? cn->peer_of(cn->owner) : NULL;
            todo.items[n++] = cn;
        }
    }
    io_threads_run(write_one, todo.items, n);
    for (uint32_t i = 0; i < running.count; i++) {
        struct wp_conn *cn = running.conns[i];
        if (!cn || cn->fd < 0)
            continue;
        cn->io_peer = NULL;
        conn_write_done(cn, (int)cn->io_rc);
    }
    end_running();
}

void conn_batch_run(void)
{
    while (reads.count > 0 || writes.count > 0) {
        if (reads.count > 0)
            run_reads();
        if (writes.count > 0)
            run_writes();
    }
}

void conn_batch_free(void)
{
    free(reads.conns);
    free(writes.conns);
    free(running.conns);
    free(todo.items);
    reads = writes = running = (struct batch){0};
    todo.items = NULL;
    todo.cap = 0;
}
