/*
 * stats_process — the standard process_* metrics of Prometheus client libraries
 * (CPU time, memory, descriptors, start time), read from /proc/self as they read
 * them, for the stats endpoint's /metrics.
 */
#ifndef WARMPOOL_STATS_PROCESS_H
#define WARMPOOL_STATS_PROCESS_H

#include <stdint.h>

struct stats_process {
    double cpu_seconds;         /* user + system time */
    uint64_t virtual_bytes;     /* address space (vsize) */
    uint64_t resident_bytes;    /* resident set (rss pages x page size) */
    double start_time_seconds;  /* since the Unix epoch */
    uint64_t open_fds, max_fds; /* descriptors open; RLIMIT_NOFILE's soft limit */
};

/* Fills *p from /proc/self/stat, /proc/stat, /proc/self/fd and getrlimit. Returns 0,
   or -1 when /proc cannot be read (not Linux, or not mounted): no process_* then. */
int stats_process_read(struct stats_process *p);

/* The fields of a /proc/<pid>/stat line that stats_process_read uses; 0, or -1 if the
   line is malformed. The command name may hold spaces and ')': the fields start after
   the last ')'. Exposed for the unit tests. */
int stats_process_parse_stat(const char *line, uint64_t *utime_ticks, uint64_t *stime_ticks,
                             uint64_t *start_ticks, uint64_t *vsize, uint64_t *rss_pages);

#endif
