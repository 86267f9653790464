/*
 * workpool — blocking calls on helper threads, completions back on the event loop
 * through a pipe (see include/warmpool/workpool.h).
 *
 * The threads start with the first job, not at start-up: while the process has one
 * thread, glibc skips the cancellation bookkeeping around every read and writev
 * (~140 instructions per transaction on the relay's hot path), and most poolers
 * never cancel anything.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "warmpool/log.h"
#include "warmpool/runtime.h"
#include "warmpool/workpool.h"

#define WORKPOOL_MAX_THREADS 8

struct job {
    struct job *next;
    workpool_fn work;
    workpool_fn done;
    void *arg;
};

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cond = PTHREAD_COND_INITIALIZER;
static struct job *queue_head, *queue_tail;
static int stopping;
static pthread_t threads[WORKPOOL_MAX_THREADS];
static int nthreads_started, nthreads_wanted;
static int done_pipe[2] = {-1, -1};
static struct event *done_event;

static struct job *take_job(void)
{
    pthread_mutex_lock(&queue_lock);
    while (!queue_head && !stopping)
        pthread_cond_wait(&queue_cond, &queue_lock);
    struct job *job = queue_head;
    if (job) {
        queue_head = job->next;
        if (!queue_head)
            queue_tail = NULL;
    }
    pthread_mutex_unlock(&queue_lock);
    return job;
}

static void *worker_main(void *unused)
{
    (void)unused;
    struct job *job;
    while ((job = take_job()) != NULL) {
        job->work(job->arg);
        /* A pointer-sized write to a pipe is atomic. */
        while (write(done_pipe[1], &job, sizeof job) < 0 && errno == EINTR)
            ;
    }
    return NULL;
}

static void on_done(evutil_socket_t fd, short what, void *unused)
{
    (void)what;
    (void)unused;
    struct job *jobs[64];
    ssize_t n = read(fd, jobs, sizeof jobs);
    for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof jobs[0]; i++) {
        if (jobs[i]->done)
            jobs[i]->done(jobs[i]->arg);
        free(jobs[i]);
    }
}

int workpool_start(int nthreads)
{
    if (nthreads > WORKPOOL_MAX_THREADS)
        nthreads = WORKPOOL_MAX_THREADS;
    if (pipe2(done_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
    done_event = event_new(wp_rt.base, done_pipe[0], EV_READ | EV_PERSIST, on_done, NULL);
    if (!done_event || event_add(done_event, NULL) < 0)
        return -1;
    nthreads_wanted = nthreads;
    return 0;
}

/* On the first job: 0 once at least one worker runs. */
static int start_threads(void)
{
    for (int i = nthreads_started; i < nthreads_wanted; i++) {
        if (pthread_create(&threads[i], NULL, worker_main, NULL) != 0) {
            log_error("workpool: cannot start a helper thread");
            break;
        }
        nthreads_started++;
    }
    return nthreads_started > 0 ? 0 : -1;
}

void workpool_stop(void)
{
    pthread_mutex_lock(&queue_lock);
    stopping = 1;
    pthread_cond_broadcast(&queue_cond);
    pthread_mutex_unlock(&queue_lock);
    for (int i = 0; i < nthreads_started; i++)
        pthread_join(threads[i], NULL);
    nthreads_started = 0;
    /* Run the completions of jobs that finished after the loop stopped. */
    if (done_pipe[0] >= 0)
        on_done(done_pipe[0], EV_READ, NULL);
    while (queue_head) {
        struct job *job = queue_head;
        queue_head = job->next;
        free(job);
    }
    if (done_event)
        event_free(done_event);
    done_event = NULL;
    if (done_pipe[0] >= 0) {
        close(done_pipe[0]);
        close(done_pipe[1]);
    }
    done_pipe[0] = done_pipe[1] = -1;
}

int workpool_submit(workpool_fn work, workpool_fn done, void *arg)
{
    /* A completion run by workpool_stop may want to start the next job (peering.c's
       queue does): refuse, or threads would start that nobody joins. Only the loop
       thread submits and stops, so reading `stopping` here needs no lock. */
    if (stopping)
        return -1;
    if (nthreads_started == 0 && start_threads() < 0)
        return -1;
    struct job *job = calloc(1, sizeof *job);
    if (!job)
        return -1;
    job->work = work;
    job->done = done;
    job->arg = arg;
    pthread_mutex_lock(&queue_lock);
    if (queue_tail)
        queue_tail->next = job;
    else
        queue_head = job;
    queue_tail = job;
    pthread_cond_signal(&queue_cond);
    pthread_mutex_unlock(&queue_lock);
    return 0;
}
