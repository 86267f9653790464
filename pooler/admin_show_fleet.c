/*
 * admin_show_fleet — the console's SHOW FLEET (include/warmpool/admin.h): the fleet
 * connection budget (fleet.c) as this instance last read it, one row per budgeted
 * database and fleet member: its published cap, held and want, the allocation this
 * instance computed for it, how old the read is, and this instance's state for the
 * database (ok, fallback: PostgreSQL could not be read, starting: no read yet). A
 * database with no read yet has one row, for this instance.
 */
#include <string.h>

#include "warmpool/admin.h"
#include "warmpool/admin_rows.h"
#include "warmpool/fleet.h"
#include "warmpool/proto.h"
#include "warmpool/timeouts.h"

static const struct admin_col fleet_cols[] = {
    {"database", PROTO_OID_TEXT},      {"instance", PROTO_OID_TEXT}, {"cap", PROTO_OID_INT4},
    {"held", PROTO_OID_INT4},          {"want", PROTO_OID_INT4},     {"alloc", PROTO_OID_INT4},
    {"last_read_age", PROTO_OID_TEXT}, {"state", PROTO_OID_TEXT},
};

static void age_cell(struct admin_rows *r, int64_t last_read_ms)
{
    if (last_read_ms == 0)
        admin_cell_or_null(r, NULL);
    else
        admin_cell_fmt(r, "%.1fs", (double)(wp_now_ms() - last_read_ms) / 1000.0);
}

static void db_rows(const struct fleet_info *fi, void *arg)
{
    struct admin_rows *r = arg;
    const char *self = fleet_instance();
    if (fi->nmembers == 0) {
        admin_cell_str(r, fi->dbname);
        admin_cell_str(r, self);
        admin_cell_int(r, fi->cap);
        for (int k = 0; k < 3; k++) /* held, want, alloc: not read yet */
            admin_cell_or_null(r, NULL);
        age_cell(r, fi->last_read_ms);
        admin_cell_str(r, fleet_state_name(fi->state));
        admin_rows_end_row(r);
        return;
    }
    for (int i = 0; i < fi->nmembers; i++) {
        const struct fleet_member *m = &fi->members[i];
        admin_cell_str(r, fi->dbname);
        admin_cell_str(r, m->name);
        admin_cell_int(r, m->cap);
        admin_cell_int(r, m->held);
        admin_cell_int(r, m->want);
        admin_cell_int(r, m->alloc);
        age_cell(r, fi->last_read_ms);
        admin_cell_str(r, fleet_state_name(fi->state));
        admin_rows_end_row(r);
    }
}

int admin_show_fleet(struct wp_buf *out)
{
    struct admin_rows r;
    admin_rows_begin_cols(&r, out, fleet_cols, (int)(sizeof fleet_cols / sizeof fleet_cols[0]));
    fleet_each(db_rows, &r);
    return admin_rows_finish(&r);
}
