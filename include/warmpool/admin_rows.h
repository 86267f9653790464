/*
 * admin_rows — the admin console's result builder (pooler/admin_rows.c): a
 * RowDescription (text columns, or typed ones as PgBouncer 1.25 sends them), DataRows
 * filled cell by cell, the CommandComplete. Used by admin_show.c, admin_show_lists.c
 * and admin_show_stats.c. Out of memory sets `failed`; admin_rows_finish reports it.
 */
#ifndef WARMPOOL_ADMIN_ROWS_H
#define WARMPOOL_ADMIN_ROWS_H

#include <stdint.h>

struct wp_buf;

#define ADMIN_ROWS_MAX_COLS 32
#define ADMIN_ROWS_CELL 96

struct admin_rows {
    struct wp_buf *out;
    int ncols, col, nrows, failed;
    int sockets; /* admin_show.c: SHOW SOCKETS layout of SERVERS/CLIENTS rows */
    char cells[ADMIN_ROWS_MAX_COLS][ADMIN_ROWS_CELL];
    const char *vals[ADMIN_ROWS_MAX_COLS];
};

/* Text columns. */
void admin_rows_begin(struct admin_rows *r, struct wp_buf *out, const char *const *cols, int ncols);
/* Columns of the given type OIDs (PROTO_OID_*). */
void admin_rows_begin_typed(struct admin_rows *r, struct wp_buf *out, const char *const *cols,
                            const uint32_t *oids, int ncols);

/* A column as PgBouncer 1.25 describes it: name and type OID. */
struct admin_col {
    const char *name;
    uint32_t oid;
};
/* The same from a table of named, typed columns. */
void admin_rows_begin_cols(struct admin_rows *r, struct wp_buf *out, const struct admin_col *cols,
                           int ncols);
/* The next cell: a string that must live until admin_rows_end_row (NULL sent as ""). */
void admin_cell_str(struct admin_rows *r, const char *s);
/* The same, NULL sent as SQL NULL. */
void admin_cell_or_null(struct admin_rows *r, const char *s);
__attribute__((format(printf, 2, 3))) void admin_cell_fmt(struct admin_rows *r, const char *fmt,
                                                          ...);
void admin_cell_int(struct admin_rows *r, long long v);
/* Cells not given are NULL. */
void admin_rows_end_row(struct admin_rows *r);
/* CommandComplete "SHOW"; 0, or -1 when anything failed. */
int admin_rows_finish(struct admin_rows *r);

#endif
