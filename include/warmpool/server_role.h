/*
 * server_role — whether a backend still serves the role its entry's
 * target_session_attrs asks for, from the parameters the backend reported. libpq
 * checks the role once, at connect; a server can change it later (a standby promoted,
 * a primary fenced with default_transaction_read_only = on by a reload), and the
 * backend says so with ParameterStatus. Pure code.
 */
#ifndef WARMPOOL_SERVER_ROLE_H
#define WARMPOOL_SERVER_ROLE_H

#include "warmpool/params.h"

enum server_role {
    ROLE_ANY,        /* no target_session_attrs, any, prefer-standby */
    ROLE_READ_WRITE, /* in_hot_standby off and default_transaction_read_only off */
    ROLE_PRIMARY,    /* in_hot_standby off */
    ROLE_READ_ONLY,  /* in_hot_standby on or default_transaction_read_only on */
    ROLE_STANDBY,    /* in_hot_standby on */
};

/* The role a target_session_attrs value asks for (NULL: ROLE_ANY). */
enum server_role server_role_wanted(const char *target_session_attrs);
/* 1 when reported values fit the role; a parameter not reported fits (PostgreSQL
   before 14 reports no in_hot_standby, and libpq asked at connect). */
int server_role_fits(enum server_role role, const struct wp_params *reported);
/* in_hot_standby and default_transaction_read_only: the parameters that can change it. */
int server_role_param(const char *name);

#endif
