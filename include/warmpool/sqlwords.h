/*
 * sqlwords — the one pass over a Query's text that tells the relay whether the two SQL
 * scanners need to read it at all: sqlprep (PREPARE, EXECUTE, DEALLOCATE) and
 * session_sql (SET, DISCARD, DROP, LISTEN, HOLD, ADVISORY, TEMP, CLOSE, U&"). Every
 * simple Query in transaction mode passes here, so both word families are looked for
 * together: pairs of bytes that ordinary SQL rarely holds, 16 or 32 places at a time
 * (SSE2, or AVX2 where the processor has it), and only around a pair is the word
 * compared (sqllex_word_at: any case, not inside a longer word).
 *
 * The answer is a superset: a bit set means the word occurs somewhere (in a string or
 * comment too); a bit clear means the scanner would find nothing. Pure.
 */
#ifndef WARMPOOL_SQLWORDS_H
#define WARMPOOL_SQLWORDS_H

#include <stddef.h>

enum {
    SQLWORDS_PREPARED = 1, /* PREPARE, EXECUTE or DEALLOCATE starts a word */
    SQLWORDS_SESSION = 2,  /* a word session_sql_mentions looks for */
    SQLWORDS_ALL = SQLWORDS_PREPARED | SQLWORDS_SESSION,
};

/* Which of the `wanted` families sql[0..len) mentions (no NUL needed). */
unsigned sqlwords_mentions(const char *sql, size_t len, unsigned wanted);

#endif
