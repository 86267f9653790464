#!/bin/bash
# t25_prepared_recycle — issue 8, acceptance 6: after pg_terminate_backend (and
# server_lifetime, and a DISCARD ALL reset) the client's named statements still work.
# The test is t25_prepared_recycle.py (Debian's python3, see prepared_lib.py).
exec /usr/bin/python3 "$(dirname "$0")/t25_prepared_recycle.py"
