/*
 * server_role — does a backend still fit its entry's target_session_attrs
 * (see include/warmpool/server_role.h).
 */
#include <string.h>
#include <strings.h>

#include "warmpool/server_role.h"

enum server_role server_role_wanted(const char *target_session_attrs)
{
    static const struct {
        const char *value;
        enum server_role role;
    } roles[] = {
        {"read-write", ROLE_READ_WRITE},
        {"primary", ROLE_PRIMARY},
        {"read-only", ROLE_READ_ONLY},
        {"standby", ROLE_STANDBY},
    };
    for (size_t i = 0; target_session_attrs && i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(roles[i].value, target_session_attrs) == 0)
            return roles[i].role;
    return ROLE_ANY;
}

/* -1 not reported, else 0 off / 1 on */
static int reported_on(const struct wp_params *reported, const char *name)
{
    const char *value = params_get(reported, name);
    if (!value)
        return -1;
    return strcmp(value, "on") == 0;
}

int server_role_fits(enum server_role role, const struct wp_params *reported)
{
    int standby = reported_on(reported, "in_hot_standby");
    int read_only = reported_on(reported, "default_transaction_read_only");
    switch (role) {
    case ROLE_READ_WRITE:
        return standby != 1 && read_only != 1;
    case ROLE_PRIMARY:
        return standby != 1;
    case ROLE_READ_ONLY:
        return standby != 0 || read_only != 0;
    case ROLE_STANDBY:
        return standby != 0;
    case ROLE_ANY:
        break;
    }
    return 1;
}

int server_role_param(const char *name)
{
    return strcasecmp(name, "in_hot_standby") == 0 ||
           strcasecmp(name, "default_transaction_read_only") == 0;
}
