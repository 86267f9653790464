/*
 * admin_rows — the admin console's result builder (include/warmpool/admin_rows.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "warmpool/admin_rows.h"
#include "warmpool/proto.h"

void admin_rows_begin(struct admin_rows *r, struct wp_buf *out, const char *const *cols, int ncols)
{
    memset(r, 0, sizeof *r);
    r->out = out;
    r->ncols = ncols;
    if (ncols > ADMIN_ROWS_MAX_COLS || proto_put_row_description(out, ncols, cols) < 0)
        r->failed = 1;
}

void admin_rows_begin_typed(struct admin_rows *r, struct wp_buf *out, const char *const *cols,
                            const uint32_t *oids, int ncols)
{
    memset(r, 0, sizeof *r);
    r->out = out;
    r->ncols = ncols;
    if (ncols > ADMIN_ROWS_MAX_COLS || proto_put_row_description_typed(out, ncols, cols, oids) < 0)
        r->failed = 1;
}

void admin_rows_begin_cols(struct admin_rows *r, struct wp_buf *out, const struct admin_col *cols,
                           int ncols)
{
    const char *names[ADMIN_ROWS_MAX_COLS];
    uint32_t oids[ADMIN_ROWS_MAX_COLS];
    for (int i = 0; i < ncols && i < ADMIN_ROWS_MAX_COLS; i++) {
        names[i] = cols[i].name;
        oids[i] = cols[i].oid;
    }
    admin_rows_begin_typed(r, out, names, oids, ncols);
}

void admin_cell_or_null(struct admin_rows *r, const char *s)
{
    if (r->col < r->ncols)
        r->vals[r->col++] = s;
}

void admin_cell_str(struct admin_rows *r, const char *s)
{
    admin_cell_or_null(r, s ? s : "");
}

void admin_cell_fmt(struct admin_rows *r, const char *fmt, ...)
{
    if (r->col >= r->ncols)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->cells[r->col], ADMIN_ROWS_CELL, fmt, ap);
    va_end(ap);
    r->vals[r->col] = r->cells[r->col];
    r->col++;
}

void admin_cell_int(struct admin_rows *r, long long v)
{
    admin_cell_fmt(r, "%lld", v);
}

void admin_rows_end_row(struct admin_rows *r)
{
    while (r->col < r->ncols)
        r->vals[r->col++] = NULL;
    if (proto_put_data_row(r->out, r->ncols, r->vals) < 0)
        r->failed = 1;
    r->col = 0;
    r->nrows++;
}

int admin_rows_finish(struct admin_rows *r)
{
    if (proto_put_command_complete(r->out, "SHOW") < 0)
        r->failed = 1;
    return r->failed ? -1 : 0;
}
