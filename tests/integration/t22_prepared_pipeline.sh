#!/bin/bash
# t22_prepared_pipeline — issue 8, acceptance 3: exact extended-protocol pipelines
# (Parse/Bind/Describe/Close/Execute/Sync/Flush, errors mid-pipeline, 26000, 42P05)
# give the same message sequence through warmpool as from PostgreSQL directly.
# The test is t22_prepared_pipeline.py (Debian's python3, see prepared_lib.py).
exec /usr/bin/python3 "$(dirname "$0")/t22_prepared_pipeline.py"
