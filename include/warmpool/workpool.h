/*
 * workpool — a few threads for blocking calls (PQcancel) so the event loop never
 * blocks. Results come back on the loop through a pipe: `done` runs on the loop.
 */
#ifndef WARMPOOL_WORKPOOL_H
#define WARMPOOL_WORKPOOL_H

typedef void (*workpool_fn)(void *arg);

int workpool_start(int nthreads);
void workpool_stop(void);
/* `work` runs on a worker thread; `done` (may be NULL) then runs on the loop. */
int workpool_submit(workpool_fn work, workpool_fn done, void *arg);

#endif
