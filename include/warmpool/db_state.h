/*
 * db_state — what the admin console (and SIGUSR1/SIGUSR2) decided per database name:
 * paused (PAUSE, KILL) and disabled (DISABLE). Kept by name, not on pools, because a
 * pool of a paused database may be created later (another user logs in) and must
 * start paused; pools take their state from here (pool_get, pool_set_paused).
 */
#ifndef WARMPOOL_DB_STATE_H
#define WARMPOOL_DB_STATE_H

/* PAUSE without a database (or SIGUSR1): every database, present and future. */
void db_state_pause_all(void);
/* Is db paused, by its own PAUSE/KILL or by a pause of all? */
int db_state_paused(const char *db);
/* Was every database paused (PAUSE with no name), or is any database paused? */
int db_state_all_paused(void);
int db_state_any_paused(void);
/* 0 on success, -1 out of memory. */
int db_state_set_paused(const char *db, int paused);
int db_state_set_disabled(const char *db, int disabled);
int db_state_disabled(const char *db);
/* RESUME without a database: nothing stays paused (disabled databases stay disabled). */
void db_state_resume_all(void);
/* Forget everything (shutdown, tests). */
void db_state_clear(void);

#endif
