"""t65_signals: PgBouncer 1.25's shutdown signals, driven against a private warmpool.

Usage: t65_signals.py SCENARIO HOST PORT PID USER PASSWORD DB
  safe   SIGINT: new logins refused at once; an open transaction runs to its COMMIT;
         an idle client is closed (57P01); the process then exits by itself.
  super  SIGTERM: new logins refused; a connected client keeps running transactions
         for as long as it stays; the process exits once it leaves.
  twice  SIGTERM, then SIGTERM again: the second does not wait (immediate shutdown).
The caller waits for the process and checks its exit status and log.
"""
import os
import signal
import sys
import time

import psycopg

from proc_util import gone

SLOW = 6 if os.environ.get("WP_VALGRIND") == "1" else 1


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def wait_for(what, cond, seconds=10):
    deadline = time.monotonic() + seconds * SLOW
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    fail(f"not within {seconds * SLOW} s: {what}")


class Target:
    def __init__(self, host, port, pid, user, password, db):
        self.host, self.port, self.pid = host, int(port), int(pid)
        self.user, self.password, self.db = user, password, db

    def connect(self):
        return psycopg.connect(host=self.host, port=self.port, user=self.user,
                               password=self.password, dbname=self.db,
                               autocommit=True, connect_timeout=5)

    def refuses_logins(self):
        try:
            self.connect().close()
            return False
        except psycopg.OperationalError:
            return True


def one(conn, sql):
    return conn.execute(sql).fetchone()[0]


def closed_by_shutdown(conn):
    try:
        conn.execute("SELECT 1")
        return False
    except psycopg.OperationalError as e:
        sqlstate = getattr(e, "sqlstate", None)
        if sqlstate not in (None, "57P01"):
            fail(f"idle client closed with {sqlstate}, want 57P01: {e}")
        return True


def safe(t):
    in_tx = t.connect()
    idle = t.connect()
    one(idle, "SELECT 1")
    in_tx.execute("BEGIN")
    xid = one(in_tx, "SELECT txid_current()")
    os.kill(t.pid, signal.SIGINT)
    wait_for("new logins refused after SIGINT", t.refuses_logins)
    wait_for("the idle client closed after SIGINT", lambda: closed_by_shutdown(idle))
    if gone(t.pid):
        fail("warmpool exited with a transaction open (SIGINT must let it finish)")
    if one(in_tx, "SELECT txid_current()") != xid:
        fail("the open transaction moved to another backend during the shutdown")
    in_tx.execute("COMMIT")
    print("ok: SIGINT: logins refused, idle client closed (57P01), the open transaction "
          "ran to its COMMIT on its backend")
    wait_for("warmpool exits once the transaction ended", lambda: gone(t.pid))
    print("ok: SIGINT: warmpool exited by itself after the COMMIT")


def super_safe(t):
    client = t.connect()
    one(client, "SELECT 1")
    os.kill(t.pid, signal.SIGTERM)
    wait_for("new logins refused after SIGTERM", t.refuses_logins)
    for i in range(5):
        with client.transaction():
            if one(client, f"SELECT {i}") != i:
                fail("wrong answer during SIGTERM's wait")
        time.sleep(0.1)
    if gone(t.pid):
        fail("warmpool exited while a client was still connected (SIGTERM waits for it)")
    print("ok: SIGTERM: logins refused; the connected client ran 5 more transactions")
    client.close()
    wait_for("warmpool exits once the last client left", lambda: gone(t.pid))
    print("ok: SIGTERM: warmpool exited by itself once the client disconnected")


def twice(t):
    client = t.connect()
    one(client, "SELECT 1")
    os.kill(t.pid, signal.SIGTERM)
    wait_for("new logins refused after SIGTERM", t.refuses_logins)
    if one(client, "SELECT 7") != 7:
        fail("client broken after the first SIGTERM")
    os.kill(t.pid, signal.SIGTERM)
    wait_for("warmpool exits at the second SIGTERM", lambda: gone(t.pid))
    print("ok: a second SIGTERM is an immediate shutdown (a client was still connected)")


def main():
    scenario, *args = sys.argv[1:]
    t = Target(*args)
    {"safe": safe, "super": super_safe, "twice": twice}[scenario](t)


if __name__ == "__main__":
    main()
