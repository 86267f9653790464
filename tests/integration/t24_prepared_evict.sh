#!/bin/bash
# t24_prepared_evict — issue 8, acceptance 5: max_prepared_statements = 3 with 10
# statements in rotation: results right, the backend never holds more than 3.
# The test is t24_prepared_evict.py (Debian's python3, see prepared_lib.py).
exec /usr/bin/python3 "$(dirname "$0")/t24_prepared_evict.py"
