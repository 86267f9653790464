/*
 * db_state — per database name: paused and disabled, as set from the console.
 * A handful of entries at most (one per database an operator acted on): a small
 * array searched linearly, entries dropped once neither flag is set.
 */
#include <stdlib.h>
#include <string.h>

#include "warmpool/db_state.h"

struct db_flags {
    char *name;
    unsigned paused : 1;
    unsigned disabled : 1;
};

static struct db_flags *flags;
static int nflags, flags_cap;
static int all_paused;

static struct db_flags *find(const char *db)
{
    for (int i = 0; i < nflags; i++)
        if (strcmp(flags[i].name, db) == 0)
            return &flags[i];
    return NULL;
}

static struct db_flags *find_or_add(const char *db)
{
    struct db_flags *f = find(db);
    if (f)
        return f;
    if (nflags == flags_cap) {
        int cap = flags_cap ? flags_cap * 2 : 8;
        struct db_flags *grown = realloc(flags, (size_t)cap * sizeof *grown);
        if (!grown)
            return NULL;
        flags = grown;
        flags_cap = cap;
    }
    char *name = strdup(db);
    if (!name)
        return NULL;
    f = &flags[nflags++];
    *f = (struct db_flags){.name = name};
    return f;
}

/* An entry with no flag left goes (the last one takes its place). */
static void drop_if_clear(struct db_flags *f)
{
    if (f->paused || f->disabled)
        return;
    free(f->name);
    *f = flags[--nflags];
}

void db_state_pause_all(void)
{
    all_paused = 1;
}

int db_state_paused(const char *db)
{
    if (all_paused)
        return 1;
    const struct db_flags *f = find(db);
    return f && f->paused;
}

int db_state_all_paused(void)
{
    return all_paused;
}

int db_state_any_paused(void)
{
    for (int i = 0; i < nflags; i++)
        if (flags[i].paused)
            return 1;
    return all_paused;
}

int db_state_set_paused(const char *db, int paused)
{
    struct db_flags *f = paused ? find_or_add(db) : find(db);
    if (!f)
        return paused ? -1 : 0;
    f->paused = paused != 0;
    drop_if_clear(f);
    return 0;
}

int db_state_set_disabled(const char *db, int disabled)
{
    struct db_flags *f = disabled ? find_or_add(db) : find(db);
    if (!f)
        return disabled ? -1 : 0;
    f->disabled = disabled != 0;
    drop_if_clear(f);
    return 0;
}

int db_state_disabled(const char *db)
{
    const struct db_flags *f = find(db);
    return f && f->disabled;
}

void db_state_resume_all(void)
{
    all_paused = 0;
    for (int i = nflags - 1; i >= 0; i--) {
        flags[i].paused = 0;
        drop_if_clear(&flags[i]);
    }
}

void db_state_clear(void)
{
    for (int i = 0; i < nflags; i++)
        free(flags[i].name);
    free(flags);
    flags = NULL;
    nflags = flags_cap = 0;
    all_paused = 0;
}
