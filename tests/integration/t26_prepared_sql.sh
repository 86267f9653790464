#!/bin/bash
# t26_prepared_sql — issue 8, acceptance 7: SQL-level PREPARE / EXECUTE / DEALLOCATE
# across transactions served by different backends answer as PostgreSQL does.
# The test is t26_prepared_sql.py (Debian's python3, see prepared_lib.py).
exec /usr/bin/python3 "$(dirname "$0")/t26_prepared_sql.py"
