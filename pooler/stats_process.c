/*
 * stats_process — process_* metrics from /proc/self (include/warmpool/stats_process.h).
 *
 * The same sources and units as the Prometheus client libraries, so a dashboard made
 * for any exporter works: CPU ticks and the start tick over sysconf(_SC_CLK_TCK), the
 * boot time from /proc/stat's btime, rss in pages times the page size, descriptors as
 * the entries of /proc/self/fd. Read per scrape: a few small files, nothing cached.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "warmpool/stats_process.h"

/* Field number `want` (as proc(5) numbers them, >= 3) of the fields after the command
   name, which start with field 3 (state). */
static int stat_field(const char *after_comm, int want, uint64_t *out)
{
    const char *p = after_comm;
    for (int field = 3;; field++) {
        while (*p == ' ')
            p++;
        if (!*p || *p == '\n')
            return -1;
        if (field == want) {
            char *end;
            unsigned long long v = strtoull(p, &end, 10);
            if (end == p)
                return -1;
            *out = v;
            return 0;
        }
        while (*p && *p != ' ')
            p++;
    }
}

int stats_process_parse_stat(const char *line, uint64_t *utime_ticks, uint64_t *stime_ticks,
                             uint64_t *start_ticks, uint64_t *vsize, uint64_t *rss_pages)
{
    const char *after_comm = strrchr(line, ')');
    if (!after_comm)
        return -1;
    after_comm++;
    /* proc(5): utime 14, stime 15, starttime 22, vsize 23, rss 24. */
    if (stat_field(after_comm, 14, utime_ticks) < 0 ||
        stat_field(after_comm, 15, stime_ticks) < 0 ||
        stat_field(after_comm, 22, start_ticks) < 0 || stat_field(after_comm, 23, vsize) < 0 ||
        stat_field(after_comm, 24, rss_pages) < 0)
        return -1;
    return 0;
}

static int read_file(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(out, 1, len - 1, f);
    fclose(f);
    out[n] = '\0';
    return n > 0 ? 0 : -1;
}

/* Seconds since the epoch at which the machine booted: "btime N" in /proc/stat. */
static int boot_time(uint64_t *out)
{
    FILE *f = fopen("/proc/stat", "r");
    char line[256];
    int found = -1;
    if (!f)
        return -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        unsigned long long v;
        if (sscanf(line, "btime %llu", &v) == 1) {
            *out = v;
            found = 0;
        }
    }
    fclose(f);
    return found;
}

/* Entries of /proc/self/fd, less the one opendir itself holds while counting. */
static int count_open_fds(uint64_t *out)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    uint64_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    *out = n > 0 ? n - 1 : 0;
    return 0;
}

int stats_process_read(struct stats_process *p)
{
    char line[1024];
    uint64_t utime, stime, start, vsize, rss, btime;
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    struct rlimit rl;
    if (ticks <= 0 || page <= 0 || read_file("/proc/self/stat", line, sizeof line) < 0 ||
        stats_process_parse_stat(line, &utime, &stime, &start, &vsize, &rss) < 0 ||
        boot_time(&btime) < 0 || count_open_fds(&p->open_fds) < 0)
        return -1;
    p->cpu_seconds = (double)(utime + stime) / (double)ticks;
    p->virtual_bytes = vsize;
    p->resident_bytes = rss * (uint64_t)page;
    p->start_time_seconds = (double)btime + (double)start / (double)ticks;
    p->max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                     ? (uint64_t)rl.rlim_cur
                     : 0;
    return 0;
}
