"""t75_demoted_primary: a read-write entry whose primary is fenced read-only (issue #18).

Usage: t75_demoted_primary.py HOST PORT USER PASSWORD PRIMARY_DIR PRIMARY_PORT
Through warmpool's `rw` entry (target_session_attrs=read-write, the primary and its
standby): a primary fenced with ALTER SYSTEM SET default_transaction_read_only = on and
a reload answers the next write with its own 25006 (as a direct session sees it); that
backend is not lent again and, with no read-write server left, the write after it fails
with warmpool's error, not with a write to a read-only server. Unfenced, writes go on.
A client's own SET default_transaction_read_only is its own: it reads, then writes again.
Prints one "ok: …" line per check; exits 1 on the first failure.
"""
import sys
import time

import psycopg

host, port, user, password, primary_dir, primary_port = sys.argv[1:7]


def fail(text):
    print(f"FAIL: {text}", file=sys.stderr)
    sys.exit(1)


def through_warmpool():
    return psycopg.connect(host=host, port=port, user=user, password=password, dbname="rw",
                           autocommit=True, connect_timeout=10)


def sqlstate_of(conn, sql):
    """None when sql succeeds, else its SQLSTATE."""
    try:
        conn.execute(sql)
        return None
    except psycopg.Error as e:
        return e.sqlstate


admin = psycopg.connect(host=primary_dir, port=primary_port, user="postgres", dbname="postgres",
                        autocommit=True)


def fence(on):
    setting = "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
    admin.execute(f"ALTER SYSTEM {setting}")
    admin.execute("SELECT pg_reload_conf()")


def rows_on_primary():
    with psycopg.connect(host=primary_dir, port=primary_port, user="postgres", dbname="wptest") as c:
        return c.execute("SELECT count(*) FROM t75").fetchone()[0]


client = through_warmpool()
client.execute("CREATE TABLE t75 (n int)")
client.execute("INSERT INTO t75 VALUES (1)")

fence(True)
# The backend reads the reload before its next command; wait for it without timing.
state = None
for _ in range(200):
    state = sqlstate_of(client, "INSERT INTO t75 VALUES (2)")
    if state is not None:
        break
    time.sleep(0.05)
if state != "25006":
    fail(f"a write on the fenced primary answered {state}, not 25006")
print("ok: the fenced primary answered the write with 25006 (its own answer)")

before = rows_on_primary()
try:
    client.execute("INSERT INTO t75 VALUES (3)")
    fail("a write succeeded with no read-write server")
except psycopg.Error as e:
    if e.sqlstate == "25006":
        fail("the fenced backend was lent again (25006 a second time)")
    print(f"ok: with no read-write server the next write fails with {e.sqlstate}: {e}")
if rows_on_primary() != before:
    fail("a row reached the fenced primary")

fence(False)
client = through_warmpool()
for _ in range(200):
    if sqlstate_of(client, "INSERT INTO t75 VALUES (4)") is None:
        break
    client.close()
    time.sleep(0.05)
    client = through_warmpool()
else:
    fail("writes did not resume once the fence was lifted")
print("ok: unfenced, writes go on")

client.execute("SET default_transaction_read_only = on")
if sqlstate_of(client, "INSERT INTO t75 VALUES (5)") != "25006":
    fail("the client's own read-only setting did not hold")
for _ in range(3):
    if client.execute("SELECT count(*) FROM t75").fetchone()[0] < 2:
        fail("the client's reads went wrong")
client.execute("SET default_transaction_read_only = off")
if sqlstate_of(client, "INSERT INTO t75 VALUES (6)") is not None:
    fail("the client could not write after its own SET default_transaction_read_only = off")
print("ok: a client's own SET default_transaction_read_only is followed, not fenced")
