#!/bin/bash
# t58_session_pins — issue 15: statement_timeout follows a client from backend to
# backend; LISTEN, advisory locks and temp tables pin it (SHOW POOLS cl_pinned, /metrics)
# and their release unpins; pin_session_state = off; pinned_idle_timeout.
# The test is t58_session_pins.py (Debian's python3, see prepared_lib.py).
exec /usr/bin/python3 "$(dirname "$0")/t58_session_pins.py"
