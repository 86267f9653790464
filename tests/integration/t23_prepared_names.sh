#!/bin/bash
# t23_prepared_names — issue 8, acceptance 4: statement names are per client (same name,
# different SQL; same SQL, two names; no access to another client's statements).
# The test is t23_prepared_names.py (Debian's python3, see prepared_lib.py).
exec /usr/bin/python3 "$(dirname "$0")/t23_prepared_names.py"
