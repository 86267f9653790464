/*
 * listener — TCP and unix listen sockets; accepts and hands fds to the client module.
 */
#ifndef WARMPOOL_LISTENER_H
#define WARMPOOL_LISTENER_H

#include <stddef.h>

int listener_start(char *err, int errlen);
void listener_stop(void);
void listener_pause(int paused);
/* "host:port" for TCP peers, "unix" otherwise (log identities). */
struct sockaddr_storage;
void listener_describe_peer(const struct sockaddr_storage *ss, char *out, size_t len);

#endif
