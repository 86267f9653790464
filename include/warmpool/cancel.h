/*
 * cancel — forwards a client's CancelRequest (with the key warmpool issued) to the
 * backend that client is using, through libpq's PQcancel on the workpool.
 */
#ifndef WARMPOOL_CANCEL_H
#define WARMPOOL_CANCEL_H

#include <stdint.h>

struct wp_server;

void cancel_request(uint32_t pid, uint32_t key);
/* Cancel whatever the backend is running now; the server keeps cancel_pending until done. */
void cancel_server(struct wp_server *server);

#endif
