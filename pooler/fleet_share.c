/*
 * fleet_share — the fleet connection budget's arithmetic (include/warmpool/fleet_share.h).
 *
 * Why the rule is safe: an instance lowers its cap at once, but raises it only into
 * F = B - sum over all members of max(cap, held), the room no member holds or may
 * open, and only by its own portion of F. Members that raise from the same snapshot
 * take disjoint portions (the split is by sorted name, the same for everyone), so the
 * sum of caps and backends stays within B. A member that has stopped has no monitor
 * connection, so it is missing from the next snapshot: its share goes back into F.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/fleet_share.h"

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

int fleet_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > FLEET_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]))
            return 0;
    return 1;
}

void fleet_name_sanitize(char *s)
{
    size_t i = 0;
    for (; s[i] && i < FLEET_NAME_MAX; i++)
        if (!name_char(s[i]))
            s[i] = '-';
    s[i] = '\0';
}

static int clamp(int v)
{
    return v < 0 ? 0 : v > FLEET_NUMBER_MAX ? FLEET_NUMBER_MAX : v;
}

int fleet_format_state(char *out, size_t len, const char *fleet, const char *instance, int cap,
                       int held, int want)
{
    int n = snprintf(out, len, "wpfleet:%s:%s:%d:%d:%d", fleet, instance, clamp(cap), clamp(held),
                     clamp(want));
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* A decimal number of at most five digits ending at `end` or ':'; -1 otherwise. */
static int parse_number(const char **p)
{
    int v = 0, digits = 0;
    while (**p >= '0' && **p <= '9' && digits < 6) {
        v = v * 10 + (**p - '0');
        (*p)++;
        digits++;
    }
    return digits == 0 || digits > 5 ? -1 : v;
}

int fleet_parse_state(const char *app, const char *fleet, struct fleet_member *m)
{
    size_t flen = strlen(fleet);
    if (strncmp(app, "wpfleet:", 8) != 0 || strncmp(app + 8, fleet, flen) != 0 ||
        app[8 + flen] != ':')
        return -1;
    const char *p = app + 8 + flen + 1;
    const char *colon = strchr(p, ':');
    if (!colon || colon == p || (size_t)(colon - p) > FLEET_NAME_MAX)
        return -1;
    memset(m, 0, sizeof *m);
    memcpy(m->name, p, (size_t)(colon - p));
    if (!fleet_name_valid(m->name))
        return -1;
    p = colon + 1;
    int *fields[3] = {&m->cap, &m->held, &m->want};
    for (int i = 0; i < 3; i++) {
        int v = parse_number(&p);
        if (v < 0 || *p != (i < 2 ? ':' : '\0'))
            return -1;
        *fields[i] = v;
        if (i < 2)
            p++;
    }
    return 0;
}

/* `text` as a SQL literal (quotes doubled); names are checked already, this is the
   second line of defence. -1 when it does not fit. */
static int quote(char *out, size_t len, const char *text)
{
    size_t o = 0;
    if (len < 3)
        return -1;
    out[o++] = '\'';
    for (const char *p = text; *p; p++) {
        if (o + 4 >= len)
            return -1;
        if (*p == '\'' || *p == '\\')
            out[o++] = *p;
        out[o++] = *p;
    }
    out[o++] = '\'';
    out[o] = '\0';
    return 0;
}

int fleet_build_publish(char *out, size_t len, const char *fleet, const char *instance, int cap,
                        int held, int want)
{
    char state[128], lit[300];
    if (fleet_format_state(state, sizeof state, fleet, instance, cap, held, want) < 0 ||
        quote(lit, sizeof lit, state) < 0)
        return -1;
    int n = snprintf(out, len, "SET application_name = %s", lit);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int fleet_build_query(char *out, size_t len, const char *fleet, const char *instance, int cap,
                      int held, int want)
{
    char prefix[64], lit[160];
    int plen = snprintf(prefix, sizeof prefix, "wpfleet:%s:", fleet);
    if (plen < 0 || (size_t)plen >= sizeof prefix || quote(lit, sizeof lit, prefix) < 0 ||
        fleet_build_publish(out, len, fleet, instance, cap, held, want) < 0)
        return -1;
    /* left() rather than LIKE: '_' is a LIKE wildcard and a valid name character. */
    size_t used = strlen(out);
    int n = snprintf(
        out + used, len - used,
        "; SELECT application_name, pid = pg_backend_pid() FROM pg_stat_activity WHERE datname = "
        "current_database() AND left(application_name, %d) = %s",
        plen, lit);
    return n < 0 || (size_t)n >= len - used ? -1 : 0;
}

/* By name; rows of one name (an old and a new process during a restart) by their
   numbers, so that every reader orders them alike. */
static int by_name(const void *a, const void *b)
{
    const struct fleet_member *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c == 0)
        c = x->cap != y->cap     ? x->cap - y->cap
            : x->held != y->held ? x->held - y->held
                                 : x->want - y->want;
    return c;
}

/* What a member's allocation is filled toward: its want, or (keep) what it holds
   when that is more. */
static int target(const struct fleet_member *m, int keep)
{
    return keep && m->held > m->want ? m->held : m->want;
}

/* Raise every alloc toward its target (max-min fair), from `left`; what is left. */
static int water_fill(struct fleet_member *m, int n, int keep, int left)
{
    for (;;) {
        int unsatisfied = 0;
        for (int i = 0; i < n; i++)
            unsatisfied += m[i].alloc < target(&m[i], keep);
        if (unsatisfied == 0 || left == 0)
            return left;
        int share = left / unsatisfied;
        for (int i = 0; i < n && left > 0; i++) {
            int need = target(&m[i], keep) - m[i].alloc;
            if (need <= 0)
                continue;
            /* Less than one each: the remainder goes one by one in name order. */
            int give = share > 0 ? share : 1;
            if (give > need)
                give = need;
            m[i].alloc += give;
            left -= give;
        }
    }
}

void fleet_allocate(struct fleet_member *m, int n, int budget)
{
    qsort(m, (size_t)n, sizeof *m, by_name);
    for (int i = 0; i < n; i++)
        m[i].alloc = 0;
    int left = water_fill(m, n, 0, budget > 0 ? budget : 0);
    /* Room nobody wants: each member keeps the backends it holds (filled the same
       way), so that an instance between bursts does not close its idle backends
       while no one else needs them. */
    water_fill(m, n, 1, left);
}

static int max2(int a, int b)
{
    return a > b ? a : b;
}

int fleet_next_cap(const struct fleet_member *m, int n, int self, int budget)
{
    int cap = m[self].cap, alloc = m[self].alloc;
    if (alloc <= cap)
        return alloc;
    long free_room = budget;
    for (int i = 0; i < n; i++)
        free_room -= max2(m[i].cap, m[i].held);
    if (free_room <= 0)
        return cap;
    /* The room is split among the members whose fair share is above their cap (all
       compute the same set), evenly, the remainder one each in name order. */
    int raisers = 0, rank = -1;
    for (int i = 0; i < n; i++) {
        if (m[i].alloc <= m[i].cap)
            continue;
        if (i == self)
            rank = raisers;
        raisers++;
    }
    long portion = free_room / raisers + (rank < free_room % raisers ? 1 : 0);
    return cap + portion < alloc ? (int)(cap + portion) : alloc;
}

int fleet_fallback_cap(int budget, int last_members)
{
    return budget / (last_members > 0 ? last_members : 1);
}
