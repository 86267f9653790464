#!/bin/bash
# t29_prepared_isolation — no client reaches a statement another client prepared, through
# SQL in any form: multi-statement PREPARE/DEALLOCATE refused, EXECUTE anywhere mapped.
# The test is t29_prepared_isolation.py (Debian's python3, see prepared_lib.py).
exec /usr/bin/python3 "$(dirname "$0")/t29_prepared_isolation.py"
