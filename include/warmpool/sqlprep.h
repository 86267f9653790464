/*
 * sqlprep — finds every place a SQL text names a prepared statement, so that
 * transaction mode can map those names like protocol-level ones (or refuse what it
 * cannot map): PREPARE name, DEALLOCATE [PREPARE] name | ALL, and EXECUTE name on its
 * own, after EXPLAIN [options] and in CREATE TABLE … AS EXECUTE name.
 *
 * A lexer that follows PostgreSQL's rules for everything that hides text from its
 * parser ('…', E'…', B'…', X'…', N'…', U&'…', "…", U&"…", $tag$…$tag$, -- and nested
 * block comments) splits the text into statements at ';'. Pure text processing.
 */
#ifndef WARMPOOL_SQLPREP_H
#define WARMPOOL_SQLPREP_H

#include <stddef.h>

#define SQLPREP_IDENT_MAX 63 /* NAMEDATALEN - 1: PostgreSQL cuts names there */
#define SQLPREP_NAME_MAX (SQLPREP_IDENT_MAX + 1)
#define SQLPREP_USES_MAX 16 /* EXECUTEs recorded per text */

enum sqlprep_kind {
    SQLPREP_NONE,           /* not one of ours */
    SQLPREP_PREPARE,        /* PREPARE name [(types)] AS statement */
    SQLPREP_EXECUTE,        /* EXECUTE name [(args)] */
    SQLPREP_DEALLOCATE,     /* DEALLOCATE [PREPARE] name */
    SQLPREP_DEALLOCATE_ALL, /* DEALLOCATE [PREPARE] ALL */
};

/* One statement that is one of the commands above, well formed. */
struct sqlprep {
    enum sqlprep_kind kind;
    char name[SQLPREP_NAME_MAX]; /* as PostgreSQL stores it: folded unless quoted, cut */
    const char *rest;            /* PREPARE: "[(types)] AS …"; EXECUTE: "[(args)]" */
    size_t rest_len;             /* up to the statement's last token (no ';', comment) */
};

/* A prepared statement's name used by an EXECUTE: where it is written in the text
   (quotes included), to be replaced there, and the name it means. */
struct sqlprep_use {
    size_t offset, len;
    char name[SQLPREP_NAME_MAX];
    int after_clear; /* a DEALLOCATE ALL earlier in the text drops every name first */
};

/* How the backend reads '…' strings: standard_conforming_strings on (a backslash is a
   plain character), off (it escapes the next one), or not known for sure. */
enum sqlprep_strings {
    SQLPREP_STRINGS_STANDARD,
    SQLPREP_STRINGS_BACKSLASH,
    SQLPREP_STRINGS_EITHER,
};

struct sqlprep_scan {
    int statements;                 /* non-empty statements */
    enum sqlprep_kind first;        /* kind of the first statement that names a prepared
                                       statement (EXPLAIN/CREATE TABLE AS count as EXECUTE) */
    enum sqlprep_kind first_define; /* PREPARE or DEALLOCATE: the first statement of those */
    int defines;                    /* PREPARE and DEALLOCATE name statements (not PREPARE
                                       TRANSACTION, not DEALLOCATE ALL) */
    int clears;                     /* DEALLOCATE [PREPARE] ALL statements: they name none */
    int unreadable;                 /* a name sqlprep does not decode (U&"…") */
    int malformed;                  /* PostgreSQL refuses the whole text before running any of
                                       it: a quote or comment that does not end, "", a NUL */
    int ambiguous;                  /* EITHER: what it names depends on the setting */
    int nuses;                      /* uses[] filled, in text order */
    int uses_overflow;              /* more EXECUTEs than SQLPREP_USES_MAX */
    struct sqlprep_use uses[SQLPREP_USES_MAX];
    struct sqlprep command; /* the first statement, when it is a well-formed command */
};

/* Can the text name a prepared statement at all? 0 when it contains none of the words
   PREPARE, EXECUTE, DEALLOCATE (in any case): sqlprep_scan would find nothing. */
int sqlprep_mentions(const char *sql, size_t len);

/* Everything sql[0..len) (no NUL needed) does with prepared-statement names. With
   SQLPREP_STRINGS_EITHER a text the two settings read differently is read both ways. */
void sqlprep_scan(const char *sql, size_t len, enum sqlprep_strings strings,
                  struct sqlprep_scan *out);

/* The text as one command (standard strings): SQLPREP_NONE unless it holds exactly one
   statement and that is a well-formed PREPARE, EXECUTE or DEALLOCATE. */
void sqlprep_parse(const char *sql, size_t len, struct sqlprep *out);

#endif
