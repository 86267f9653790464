/*
 * sqlprep — recognises SQL-level PREPARE, EXECUTE and DEALLOCATE in a simple Query,
 * so that transaction mode can map their names like protocol-level statements.
 * Pure text processing; anything it does not fully understand is left alone.
 */
#ifndef WARMPOOL_SQLPREP_H
#define WARMPOOL_SQLPREP_H

#include <stddef.h>

#define SQLPREP_NAME_MAX 256
#define SQLPREP_IDENT_MAX 63 /* NAMEDATALEN - 1 */

enum sqlprep_kind {
    SQLPREP_NONE,           /* not one of ours: pass the query through */
    SQLPREP_PREPARE,        /* PREPARE name [(types)] AS statement */
    SQLPREP_EXECUTE,        /* EXECUTE name [(args)] */
    SQLPREP_DEALLOCATE,     /* DEALLOCATE [PREPARE] name */
    SQLPREP_DEALLOCATE_ALL, /* DEALLOCATE [PREPARE] ALL */
};

struct sqlprep {
    enum sqlprep_kind kind;
    char name[SQLPREP_NAME_MAX]; /* folded to lower case unless quoted */
    const char *rest;            /* PREPARE: "[(types)] AS …"; EXECUTE: "[(args)]" */
    size_t rest_len;             /* without the trailing ';' and spaces */
};

/* Classify one simple-query text of len bytes (no NUL needed). Several statements,
   comments before the keyword, or odd syntax give SQLPREP_NONE. */
void sqlprep_parse(const char *sql, size_t len, struct sqlprep *out);

#endif
