/*
 * io_threads — helper threads for batches of socket I/O (see include/warmpool/io_threads.h).
 *
 * One batch at a time: the loop thread publishes it (function, items, a generation
 * number) under the mutex and wakes the helpers; every thread, the loop's included,
 * takes items by an atomic index until none is left; the last helper to finish
 * signals the loop thread, which waits for it before returning. The helpers sleep on
 * a condition variable between batches, so an idle pooler spends nothing on them.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "warmpool/io_threads.h"

/* Below this many items a batch runs on the loop thread: waking a helper costs more
   than the few system calls it would take over. */
#define MIN_SHARED_BATCH 2

static struct {
    pthread_t *threads;
    int helpers;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    unsigned long generation; /* a new batch, or stop, under lock */
    int stopping;
    int busy; /* helpers still working on the current batch, under lock */
    void (*fn)(void *item);
    void **items;
    size_t count;
    atomic_size_t next;
    unsigned long long batches, items_shared;
} io = {.lock = PTHREAD_MUTEX_INITIALIZER,
        .wake = PTHREAD_COND_INITIALIZER,
        .done = PTHREAD_COND_INITIALIZER};

static void take_items(void)
{
    for (;;) {
        size_t i = atomic_fetch_add_explicit(&io.next, 1, memory_order_relaxed);
        if (i >= io.count)
            return;
        io.fn(io.items[i]);
    }
}

static void *helper_main(void *arg)
{
    (void)arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&io.lock);
    for (;;) {
        while (io.generation == seen && !io.stopping)
            pthread_cond_wait(&io.wake, &io.lock);
        if (io.stopping)
            break;
        seen = io.generation;
        pthread_mutex_unlock(&io.lock);
        take_items();
        pthread_mutex_lock(&io.lock);
        if (--io.busy == 0)
            pthread_cond_signal(&io.done);
    }
    pthread_mutex_unlock(&io.lock);
    return NULL;
}

int io_threads_start(int workers)
{
    int want = workers > 1 ? workers - 1 : 0;
    if (want == 0)
        return 0;
    io.threads = calloc((size_t)want, sizeof *io.threads);
    if (!io.threads)
        return -1;
    io.stopping = 0;
    /* Signals stay the loop thread's: the helpers start with every one blocked. */
    sigset_t all, before;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &before);
    int rc = 0;
    for (io.helpers = 0; rc == 0 && io.helpers < want; io.helpers++)
        rc = pthread_create(&io.threads[io.helpers], NULL, helper_main, NULL);
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    if (rc != 0) {
        io.helpers--; /* the one that failed */
        io_threads_stop();
        errno = rc;
        return -1;
    }
    return 0;
}

void io_threads_stop(void)
{
    pthread_mutex_lock(&io.lock);
    io.stopping = 1;
    pthread_cond_broadcast(&io.wake);
    pthread_mutex_unlock(&io.lock);
    for (int i = 0; i < io.helpers; i++)
        pthread_join(io.threads[i], NULL);
    free(io.threads);
    io.threads = NULL;
    io.helpers = 0;
}

int io_threads_count(void)
{
    return io.helpers + 1;
}

void io_threads_run(void (*fn)(void *item), void **items, size_t n)
{
    if (io.helpers == 0 || n < MIN_SHARED_BATCH) {
        for (size_t i = 0; i < n; i++)
            fn(items[i]);
        return;
    }
    pthread_mutex_lock(&io.lock);
    io.fn = fn;
    io.items = items;
    io.count = n;
    atomic_store_explicit(&io.next, 0, memory_order_relaxed);
    io.busy = io.helpers;
    io.generation++;
    io.batches++;
    io.items_shared += n;
    pthread_cond_broadcast(&io.wake);
    pthread_mutex_unlock(&io.lock);
    take_items();
    pthread_mutex_lock(&io.lock);
    while (io.busy > 0)
        pthread_cond_wait(&io.done, &io.lock);
    pthread_mutex_unlock(&io.lock);
}

void io_threads_counts(unsigned long long *batches, unsigned long long *items)
{
    *batches = io.batches;
    *items = io.items_shared;
}
