/*
 * relay — moves bytes between a linked client and server. relay_scan.h reads the
 * message headers, opens only the bodies it must act on (ReadyForQuery,
 * ParameterStatus, Terminate…) and tracks what is outstanding; the relay forwards
 * everything else as byte ranges, and pauses, releases or closes as the scan decides.
 */
#ifndef WARMPOOL_RELAY_H
#define WARMPOOL_RELAY_H

struct wp_client;
struct wp_server;

/* Bytes arrived from the client (or a backend was just linked): scan and forward. */
void relay_client_input(struct wp_client *client);
/* Bytes arrived from the backend: scan, track, forward to the client or drop. */
void relay_server_input(struct wp_server *server);
/* Write what is pending toward the server (warmpool bytes, then client bytes). */
int relay_flush_to_server(struct wp_server *server);
/* Write what is pending toward the client (warmpool bytes, then backend bytes). */
int relay_flush_to_client(struct wp_client *client);
/* Release the server if it sits at a release point with nothing left to flush. */
void relay_try_release(struct wp_server *server);
/* The client socket became writable again. */
void relay_client_writable(struct wp_client *client);

#endif
