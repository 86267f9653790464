/*
 * config_keys — the one table of configuration keys (pooler/config_keys.c).
 *
 * Each row says everything warmpool knows about a key: its type and range, where it
 * may be written, its default (as an operator would write it; the loader parses that
 * text, so the default shown by SHOW CONFIG and docs/CONFIG.md is the one in force),
 * PgBouncer's name for it, and whether a reload changes it. The loader (config.c),
 * the per-pool overrides, SHOW CONFIG (admin_show.c) and the unit test that checks
 * docs/CONFIG.md all walk this table; nothing else lists keys.
 */
#ifndef WARMPOOL_CONFIG_KEYS_H
#define WARMPOOL_CONFIG_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "warmpool/config.h"

enum wp_key_type {
    WP_KEY_STR,       /* char *, may be "" */
    WP_KEY_PATH,      /* char *, "" means unset (NULL) */
    WP_KEY_LIST,      /* char **, comma separated */
    WP_KEY_INT,       /* int, decimal */
    WP_KEY_OCTAL,     /* int, file mode */
    WP_KEY_BOOL,      /* int 0/1 */
    WP_KEY_MODE,      /* int, enum wp_pool_mode */
    WP_KEY_PIN,       /* int, enum wp_pin_mode */
    WP_KEY_AUTH,      /* int, enum wp_auth_type */
    WP_KEY_SSLMODE,   /* int, enum wp_sslmode */
    WP_KEY_LB,        /* int, enum wp_lb_mode (hosts.h) */
    WP_KEY_DURATION,  /* int64_t milliseconds */
    WP_KEY_SIZE,      /* int64_t bytes */
    WP_KEY_NO_EFFECT, /* a PgBouncer key warmpool accepts and ignores, with a warning */
};

/* Which struct a key's offset is relative to. */
enum wp_key_base {
    WP_KEY_IN_CONFIG, /* struct wp_config */
    WP_KEY_IN_POOL,   /* struct wp_pool_settings: cfg->pool and every entry's overrides */
    WP_KEY_IN_USER,   /* struct wp_user_config */
    WP_KEY_IN_DB,     /* struct wp_db_config: what a [databases] entry keeps for itself */
    WP_KEY_NOWHERE,   /* nothing stored (WP_KEY_NO_EFFECT) */
};

/* Sections a key may be written in. */
/* Units of the table's values (milliseconds, bytes), for config.c and config_keys.c. */
#define SEC_MS 1000LL
#define DAY_MS (86400LL * SEC_MS)
/* Bounded so that callers may convert to microseconds or timevals without overflow. */
#define DURATION_MAX (365LL * DAY_MS)
#define KB 1024LL
#define MB (1024LL * KB)
#define GB (1024LL * MB)

#define WP_SEC_GLOBAL 1u /* [warmpool] / [pgbouncer] */
#define WP_SEC_DB 2u     /* inside a [databases] connection string */
#define WP_SEC_USER 4u   /* inside a [users] entry */
#define WP_SEC_ALL (WP_SEC_GLOBAL | WP_SEC_DB | WP_SEC_USER)

/* Flags. */
#define WP_KEY_RELOADS 1u /* a reload applies a changed value */
#define WP_KEY_ALIAS 2u   /* another name for the nearest row above with the same field */
#define WP_KEY_BARE_MS 4u /* a duration written as a bare number is milliseconds */

struct wp_key {
    const char *name;
    enum wp_key_type type;
    enum wp_key_base base;
    size_t off;
    unsigned sections;
    int64_t min, max;      /* numeric types; min == max means no range check */
    const char *dflt;      /* the default as text; NULL for rows without their own */
    const char *pgbouncer; /* PgBouncer's name for the setting; NULL when it has none */
    unsigned flags;
};

/* Room for every row (config_keys.c checks at compile time), for per-key arrays. */
#define WP_KEYS_MAX 192

extern const struct wp_key wp_keys[];
extern const int wp_nkeys;

/* Row index of `name` (case-insensitive) among the rows allowed in `sections`; -1. */
int config_key_find(const char *name, unsigned sections);
/* The row that owns the field of row i: the first row with the same field (itself
   for a row that is no alias). */
int config_key_canonical(int i);
/* The field of row `k` inside cfg (base WP_KEY_IN_CONFIG or WP_KEY_IN_POOL); NULL for
   the other bases. */
const void *config_key_field(const struct wp_config *cfg, const struct wp_key *k);
/* Rows SHOW CONFIG lists: a [warmpool] key that stores a value and is no alias. */
int config_key_shown(const struct wp_key *k);
/* How a number is written out. */
enum wp_key_style {
    WP_KEY_STYLE_UNITS,     /* warmpool's: "2min", "16kB", "0777" */
    WP_KEY_STYLE_PGBOUNCER, /* PgBouncer's SHOW CONFIG: "120" (seconds, or milliseconds for
                               a WP_KEY_BARE_MS key), "16384" (bytes), "511" (a mode) */
};
/* The value of row `k` in cfg as SHOW CONFIG prints it; returns the row's name. */
const char *config_key_format(const struct wp_config *cfg, const struct wp_key *k,
                              enum wp_key_style style, char *out, size_t len);
/* The default of row `k` in `style` (its text as written for all but durations and
   sizes, as in PgBouncer); NULL for a row without one. */
const char *config_key_format_default(const struct wp_key *k, enum wp_key_style style, char *out,
                                      size_t len);
/* What PgBouncer writes for row k's empty string ("<empty>" for server_check_query), or
   NULL: the loader reads it as "" and SHOW CONFIG prints "" as it. */
const char *config_key_empty_text(const struct wp_key *k);
/* Whether a running warmpool can change [warmpool] key `name` (warmpool's name or
   PgBouncer's, any case): its row in *row, or the reason it cannot in err. */
enum wp_key_settable {
    WP_KEY_SETTABLE,
    WP_KEY_UNKNOWN,       /* no such [warmpool] key */
    WP_KEY_NEEDS_RESTART, /* the table does not mark it reloadable */
};
enum wp_key_settable config_key_settable(const char *name, int *row, char *err, size_t errlen);
/* text as a number of row k (any type but the strings and lists) as the loader reads
   it; -1 when it is none. */
int config_parse_number(const struct wp_key *k, const char *text, int64_t *v);

#endif
