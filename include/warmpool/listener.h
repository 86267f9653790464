/*
 * listener — TCP and unix listen sockets; accepts and hands fds to the client module.
 */
#ifndef WARMPOOL_LISTENER_H
#define WARMPOOL_LISTENER_H

int listener_start(char *err, int errlen);
void listener_stop(void);
void listener_pause(int paused);

#endif
