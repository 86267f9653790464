/*
 * admin — the admin console (placeholder until the console lands: it answers every
 * query with an error so that logins to `warmpool` fail clearly, not silently).
 */
#include <string.h>

#include "warmpool/admin.h"
#include "warmpool/client.h"
#include "warmpool/config.h"
#include "warmpool/proto.h"
#include "warmpool/runtime.h"

int admin_is_console_db(const char *dbname)
{
    return strcmp(dbname, "warmpool") == 0 || strcmp(dbname, "pgbouncer") == 0;
}

int admin_may_connect(const char *user)
{
    return config_user_in_list(wp_rt.cfg->admin_users, user) ||
           config_user_in_list(wp_rt.cfg->stats_users, user);
}

void admin_welcome(struct wp_client *c)
{
    client_send_error(c, "FATAL", "0A000", "the admin console is not available yet");
}

void admin_input(struct wp_client *c)
{
    (void)c;
}
