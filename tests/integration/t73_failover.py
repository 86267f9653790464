"""t73_failover: a writer through warmpool while its primary fails over (issue #18).

Usage: t73_failover.py HOST PORT USER PASSWORD DB SECONDS OUT
Inserts (n, clock_timestamp()) every 50 ms for SECONDS, reconnecting after an error.
Writes to OUT one line per attempt: "<monotonic s> ok <n>" or "<monotonic s> err <sqlstate>".
"""
import sys
import time

import psycopg

host, port, user, password, db, seconds, out = sys.argv[1:8]
deadline = time.monotonic() + float(seconds)
conn = None
n = 0
with open(out, "w") as log:
    while time.monotonic() < deadline:
        n += 1
        try:
            if conn is None:
                conn = psycopg.connect(host=host, port=port, user=user, password=password,
                                       dbname=db, autocommit=True, connect_timeout=5)
            conn.execute("INSERT INTO t73 VALUES (%s, clock_timestamp())", (n,))
            log.write(f"{time.monotonic():.3f} ok {n}\n")
        except psycopg.Error as e:
            log.write(f"{time.monotonic():.3f} err {getattr(e, 'sqlstate', None)}\n")
            try:
                if conn is not None:
                    conn.close()
            except psycopg.Error:
                pass
            conn = None
        log.flush()
        time.sleep(0.05)
