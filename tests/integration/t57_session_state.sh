#!/bin/bash
# t57_session_state — issue 15: seven clients' SET/RESET/DISCARD, blocks, startup
# parameters, LISTEN/NOTIFY, advisory locks and temp tables, run round-robin directly,
# through session mode and through transaction mode (pool of 2, simple and extended
# protocol): every client's view must equal PostgreSQL's.
# The test is t57_session_state.py (Debian's python3, see prepared_lib.py).
exec /usr/bin/python3 "$(dirname "$0")/t57_session_state.py"
