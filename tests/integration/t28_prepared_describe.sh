#!/bin/bash
# t28_prepared_describe — issue 8: Parse/Describe answered by warmpool from its registry
# stay what PostgreSQL would answer (two databases, DDL directly and through warmpool).
# The test is t28_prepared_describe.py (Debian's python3, see prepared_lib.py).
exec /usr/bin/python3 "$(dirname "$0")/t28_prepared_describe.py"
