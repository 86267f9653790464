/*
 * listener — TCP and unix listen sockets; accepts and hands fds to the client module.
 */
#ifndef WARMPOOL_LISTENER_H
#define WARMPOOL_LISTENER_H

#include <stddef.h>

int listener_start(char *err, int errlen);
void listener_stop(void);
void listener_pause(int paused);
/* accept() on some listen socket failed with errno err. Returns 1 when that was for
   want of descriptors or memory: every watched socket then stops accepting for a
   moment (logged here, at a bounded rate, naming `who`). 0 for any other error. */
int listener_accept_failed(int err, const char *who);
/* Other accept loops (the stats endpoint) take part in those pauses: register an
   added EV_READ|EV_PERSIST accept event, and unregister it before freeing it. */
struct event;
void listener_watch_accepts(struct event *ev);
void listener_unwatch_accepts(struct event *ev);
/* "host:port" for TCP peers, "unix" otherwise (log identities). */
struct sockaddr_storage;
void listener_describe_peer(const struct sockaddr_storage *ss, char *out, size_t len);

#endif
