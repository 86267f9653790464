#!/bin/bash
# t45_stats_local_answers — requests warmpool answers itself (SQL DEALLOCATE, a PREPARE
# or Parse of a statement the backend has) are timed and counted like the others.
# The test is t45_stats_local_answers.py (Debian's python3, see prepared_lib.py).
exec /usr/bin/python3 "$(dirname "$0")/t45_stats_local_answers.py"
