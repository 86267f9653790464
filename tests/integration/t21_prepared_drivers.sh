#!/bin/bash
# t21_prepared_drivers — issue 8, acceptance 2: asyncpg (statement cache on) and
# psycopg 3 (prepare_threshold=0, pipeline mode), 20 connections each over a pool of 4.
# The test is t21_prepared_drivers.py (Debian's python3, see prepared_lib.py).
exec /usr/bin/python3 "$(dirname "$0")/t21_prepared_drivers.py"
