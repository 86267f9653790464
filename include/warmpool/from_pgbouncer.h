/*
 * from_pgbouncer — `warmpool --from-pgbouncer FILE` (pooler/from_pgbouncer.c): a
 * PgBouncer configuration rewritten as a native warmpool.ini.
 */
#ifndef WARMPOOL_FROM_PGBOUNCER_H
#define WARMPOOL_FROM_PGBOUNCER_H

#include <stddef.h>
#include <stdio.h>

/* Writes to `out` the warmpool.ini equivalent to the PgBouncer file at `path`, which
   must load (its errors, one per line as file:line, are written to err otherwise).
   Returns 0, or -1 with err set. */
int from_pgbouncer(const char *path, FILE *out, char *err, size_t errlen);

#endif
