#!/bin/bash
# t27_prepared_warm — issue 8, acceptance 8: after warm-up, a fresh backend already
# holds the pool's hot statements before any client binds them.
# The test is t27_prepared_warm.py (Debian's python3, see prepared_lib.py).
exec /usr/bin/python3 "$(dirname "$0")/t27_prepared_warm.py"
