/*
 * fleet_share — the fleet connection budget's arithmetic, without sockets
 * (pooler/fleet_share.c; the event-loop side is fleet.c, the design docs/DEPLOY.md).
 *
 * Every instance of a fleet publishes "wpfleet:<fleet>:<instance>:<cap>:<held>:<want>"
 * as the application_name of its monitor connection and reads everyone's from
 * pg_stat_activity. From one such snapshot every instance computes the same max-min
 * fair allocation, then its own next cap: lowered to its allocation at once, raised
 * only into the room nobody holds or may hold, by its own portion of that room.
 */
#ifndef WARMPOOL_FLEET_SHARE_H
#define WARMPOOL_FLEET_SHARE_H

#include <stddef.h>

#define FLEET_NAME_MAX 16
/* The largest budget, cap, held or want published: five digits each keep the state
   within PostgreSQL's 63-byte application_name. */
#define FLEET_NUMBER_MAX 99999

struct fleet_member {
    char name[FLEET_NAME_MAX + 1];
    int cap;   /* the ceiling it allows itself */
    int held;  /* its backends to the database, open or opening */
    int want;  /* backends it could use now */
    int alloc; /* fleet_allocate()'s answer */
    int self;  /* the reader's own row (its monitor's backend), whatever its name */
};

/* 1 when `s` is 1..16 characters of [A-Za-z0-9_.-]. */
int fleet_name_valid(const char *s);
/* `s` made a valid name in place: other characters become '-', cut at 16; "" stays. */
void fleet_name_sanitize(char *s);

/* The published state; -1 when it does not fit `len`. */
int fleet_format_state(char *out, size_t len, const char *fleet, const char *instance, int cap,
                       int held, int want);
/* One application_name read back: 0 and *m filled when it is a state of `fleet`. */
int fleet_parse_state(const char *app, const char *fleet, struct fleet_member *m);
/* The one round trip: publish the state, read every member's with whether it is the
   reader's own connection (the values are quoted as SQL literals). -1 when it does
   not fit. */
int fleet_build_query(char *out, size_t len, const char *fleet, const char *instance, int cap,
                      int held, int want);
/* Only the publish (before a raise takes effect). */
int fleet_build_publish(char *out, size_t len, const char *fleet, const char *instance, int cap,
                        int held, int want);

/* Sorts by name, then sets every alloc: water-filling over want, sum <= budget, the
   remainders one each to the first unsatisfied members by name; budget no one wants
   then lets members keep what they hold (the same filling over max(want, held)). */
void fleet_allocate(struct fleet_member *m, int n, int budget);
/* After fleet_allocate: member `self`'s next cap. */
int fleet_next_cap(const struct fleet_member *m, int n, int self, int budget);
/* The cap when the state cannot be read: budget / the last known number of members
   (1 when never known). */
int fleet_fallback_cap(int budget, int last_members);

#endif
