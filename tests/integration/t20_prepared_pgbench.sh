#!/bin/bash
# t20_prepared_pgbench — issue 8, acceptance 1: pgbench -S and TPC-B with -M prepared,
# 50 / 40 clients over a transaction-mode pool of 10: finish, 0 failed, invariant holds.
# The test is t20_prepared_pgbench.py (Debian's python3, see prepared_lib.py).
exec /usr/bin/python3 "$(dirname "$0")/t20_prepared_pgbench.py"
