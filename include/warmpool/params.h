/*
 * params — a small set of session parameters (name → value) and the SQL that makes
 * a backend's parameters match what a client expects.
 *
 * A client's view starts from the pool's ParameterStatus set, overlaid with its
 * startup parameters, and follows every ParameterStatus relayed to it. A backend's
 * view follows its ParameterStatus messages plus what warmpool SET on it.
 */
#ifndef WARMPOOL_PARAMS_H
#define WARMPOOL_PARAMS_H

#include <stdint.h>

#include "warmpool/buf.h"

#define PARAMS_MAX 48

struct wp_param {
    char *name;
    char *value;
    int reported; /* the server reports changes with ParameterStatus */
};

struct wp_params_shared;

struct wp_params {
    /* Order-independent digest of the settable (name, value) pairs: two sets with the
       same digest need no sync, which keeps the per-transaction check O(1). */
    uint64_t digest;
    struct wp_param *items;
    /* Non-NULL: items belong to an interned set shared with other views (read-only;
       the first change copies them). */
    struct wp_params_shared *shared;
    int n;
    int cap; /* items are allocated as needed: idle clients stay small */
};

/* Returns 0, or -1 when full or out of memory. Replaces an existing value. */
int params_set(struct wp_params *p, const char *name, const char *value);
const char *params_get(const struct wp_params *p, const char *name);
void params_remove(struct wp_params *p, const char *name);
/* Remove every setting PostgreSQL does not report (what RESET ALL and DISCARD ALL put
   back to the backend's defaults). */
void params_remove_unreported(struct wp_params *p);
void params_copy(struct wp_params *dst, const struct wp_params *src);
void params_clear(struct wp_params *p);
/* Share p's items with every other interned set of the same contents (a thousand
   clients with the same parameters hold one copy). Later changes copy on write. */
void params_intern(struct wp_params *p);
/* Interned sets alive (for tests and SHOW MEM-style accounting). */
int params_interned_count(void);

/* Names PostgreSQL reports with ParameterStatus (NULL-terminated). */
extern const char *const params_reported_names[];
int params_is_reported(const char *name);
/* Reported by PostgreSQL and settable with SET (others like server_version are read-only). */
int params_is_settable_reported(const char *name);
/* Names the client may not set through startup parameters (user, database, replication…). */
int params_is_reserved_startup(const char *name);

/*
 * Append to sql a query that turns `server` into `client` for the parameters that
 * matter: SET for settable values that differ, RESET for unreported values warmpool
 * set earlier that the client does not want. Returns the number of statements
 * appended (0 = nothing to do), or -1 on out of memory. Names are quoted as
 * identifiers and values as literals, so nothing the client sent is run as SQL.
 */
/* Nothing to sync between these two? (digest comparison) */
static inline int params_in_sync(const struct wp_params *client, const struct wp_params *server)
{
    return client->digest == server->digest;
}
/* Mark an item's reported flag (the digest depends on it). */
void params_set_reported(struct wp_params *p, const char *name, int reported);

int params_build_sync(const struct wp_params *client, const struct wp_params *server,
                      struct wp_buf *sql);

/* Record in `server` what params_build_sync's query will do once it succeeds. */
void params_apply_sync(const struct wp_params *client, struct wp_params *server);

/* Parse the startup `options` value ("-c a=b --c=d") into params; -1 on bad syntax. */
int params_parse_options(struct wp_params *p, const char *options);

#endif
