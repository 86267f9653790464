/*
 * timeouts — the monotonic clock and the one periodic tick (janitor) that checks
 * every deadline: pool sizing and reserve, wait timeouts, draining backends,
 * graceful shutdown. No other module arms its own periodic timers.
 */
#ifndef WARMPOOL_TIMEOUTS_H
#define WARMPOOL_TIMEOUTS_H

#include <stdint.h>

int64_t wp_now_ms(void);
int timeouts_start(void);
void timeouts_stop(void);

#endif
