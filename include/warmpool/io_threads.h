/*
 * io_threads — the helper threads behind `workers = N`.
 *
 * warmpool keeps one event loop: every decision (pools, the relay's accounting, the
 * console) is made by the loop thread alone. What costs the CPU on a busy pooler is
 * the socket I/O itself, a read(2) and a writev(2) per message burst; conn.c gathers
 * those of one loop turn into a batch, and io_threads_run() spreads a batch over the
 * loop thread and N - 1 helpers, returning once every item is done. While a batch
 * runs the loop thread does nothing else, so an item may touch its own connection's
 * buffers freely; it must not allocate from the buffer cache or touch libevent.
 */
#ifndef WARMPOOL_IO_THREADS_H
#define WARMPOOL_IO_THREADS_H
#include <stddef.h>

/* Start workers - 1 helper threads (none for 1). 0, or -1 with errno set. */
int io_threads_start(int workers);
void io_threads_stop(void);
/* Threads taking part in a batch (the loop thread included); 1 when none run. */
int io_threads_count(void);
/* Run fn(item) for every item, spread over the threads; returns when all are done.
   Small batches run on the calling thread alone. */
void io_threads_run(void (*fn)(void *item), void **items, size_t n);
/* Batches that used the helpers, and items run by them (SHOW STATE, metrics). */
void io_threads_counts(unsigned long long *batches, unsigned long long *items);

#endif
