"""t69_console_commands: the console's process-control commands with PgBouncer 1.25's
semantics, against a private warmpool (lib_private_warmpool.sh).

Usage: t69_console_commands.py HOST PORT PID APPUSER APPPASSWORD
  PAUSE db      answers only once an open transaction of db committed; then new
                queries of db wait until RESUME db
  DISABLE db    new logins to db refused (55000); its connected clients keep working;
                ENABLE db lets logins in again
  KILL_CLIENT   drops exactly the client named by SHOW CLIENTS' id
  RECONNECT db  servers are replaced once released; WAIT_CLOSE db answers only once
                the server an open transaction holds was released
  SUSPEND       answered; a query sent meanwhile is answered only after RESUME
  SHUTDOWN WAIT_FOR_CLIENTS  logins refused, connected clients keep working, the
                process exits once they have all left
"""
import hashlib
import os
import socket
import struct
import sys
import threading
import time

import psycopg

from proc_util import gone

SLOW = 6 if os.environ.get("WP_VALGRIND") == "1" else 1
HOST, PORT, PID, USER, PASSWORD = sys.argv[1:6]


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    os._exit(1)


def app(db="wptest", name="t69"):
    return psycopg.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, dbname=db,
                           autocommit=True, connect_timeout=5, application_name=name)


def console():
    conn = psycopg.connect(host=HOST, port=PORT, user="admin", password="adminpass",
                           dbname="pgbouncer", autocommit=True, connect_timeout=5)
    conn.prepare_threshold = None
    return conn


def one(conn, sql):
    return conn.execute(sql).fetchone()[0]


def rows(conn, what):
    cur = conn.execute("SHOW " + what)
    names = [d.name for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


class Background:
    """Run fn in a thread; done/error tell how it went."""

    def __init__(self, fn):
        self.error, self.result = None, None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn):
        try:
            self.result = fn()
        except Exception as e:  # reported by the caller
            self.error = e
        self.done.set()

    def still_running_after(self, seconds):
        return not self.done.wait(seconds)

    def finish(self, what, seconds=10):
        if not self.done.wait(seconds * SLOW):
            fail(f"{what}: not answered within {seconds * SLOW} s")
        if self.error:
            fail(f"{what}: {self.error}")
        return self.result


def pool_row(admin, db):
    for r in rows(admin, "POOLS"):
        if r["database"] == db and r["user"] == USER:
            return r
    return None


def pause_waits_for_commit(admin):
    in_tx = app()
    in_tx.execute("BEGIN")
    one(in_tx, "SELECT 1")
    pause = Background(lambda: console().execute("PAUSE wptest"))
    if not pause.still_running_after(1.0):
        fail(f"PAUSE returned with a transaction open ({pause.error})")
    if one(in_tx, "SELECT 2") != 2:
        fail("the open transaction broke during PAUSE")
    in_tx.execute("COMMIT")
    pause.finish("PAUSE after the COMMIT")
    print("ok: PAUSE wptest answered only after the open transaction committed")
    query = Background(lambda: one(in_tx, "SELECT 'after resume'"))
    if not query.still_running_after(0.5):
        fail("a new query ran on a paused database")
    if str(pool_row(admin, "wptest")["paused"]) != "1":
        fail("SHOW POOLS does not show wptest paused")
    if one(app("wpload"), "SELECT 3") != 3:
        fail("PAUSE wptest stopped wpload too")
    admin.execute("RESUME wptest")
    if query.finish("the query waiting for RESUME") != "after resume":
        fail("wrong answer after RESUME")
    print("ok: while paused a new query waits (other databases run); RESUME releases it")
    in_tx.close()


def disable_refuses_logins(admin):
    before = app()
    admin.execute("DISABLE wptest")
    try:
        app().close()
        fail("DISABLE wptest: a new login got in")
    except psycopg.OperationalError as e:
        # libpq reports a refused login without its SQLSTATE: the text says why.
        if 'database "wptest" is disabled' not in str(e):
            fail(f"DISABLE: login refused for another reason: {e}")
    if one(before, "SELECT 4") != 4:
        fail("DISABLE broke a client already connected")
    row = next((r for r in rows(admin, "DATABASES") if r["name"] == "wptest"), None)
    if not row or str(row["disabled"]) != "1":
        fail(f"SHOW DATABASES does not show wptest disabled: {row}")
    if one(app("wpload"), "SELECT 5") != 5:
        fail("DISABLE wptest refused wpload")
    admin.execute("ENABLE wptest")
    if one(app(), "SELECT 6") != 6:
        fail("ENABLE wptest: login still refused")
    before.close()
    print("ok: DISABLE refuses new logins, connected clients go on; ENABLE undoes it")


def client_id(admin, application_name):
    for r in rows(admin, "CLIENTS"):
        if r.get("application_name") == application_name:
            if "id" in r:
                return int(r["id"])
            return int(str(r["ptr"]).split("-", 1)[1])
    fail(f"SHOW CLIENTS has no client {application_name}")


def kill_client_drops_one(admin):
    victim, bystander = app(name="t69-victim"), app(name="t69-bystander")
    one(victim, "SELECT 1")
    one(bystander, "SELECT 1")
    admin.execute(f"KILL_CLIENT {client_id(admin, 't69-victim')}")
    try:
        victim.execute("SELECT 1")
        fail("KILL_CLIENT: the client still runs queries")
    except psycopg.OperationalError:
        pass
    if one(bystander, "SELECT 7") != 7:
        fail("KILL_CLIENT dropped another client too")
    names = [r.get("application_name") for r in rows(admin, "CLIENTS")]
    if "t69-victim" in names or "t69-bystander" not in names:
        fail(f"SHOW CLIENTS after KILL_CLIENT: {names}")
    try:
        admin.execute("KILL_CLIENT 999999999")
        fail("KILL_CLIENT of an unknown id succeeded")
    except psycopg.errors.UndefinedObject:
        pass
    bystander.close()
    print("ok: KILL_CLIENT dropped exactly that client; an unknown id is 42704")


def reconnect_and_wait_close(admin):
    in_tx = app()
    in_tx.execute("BEGIN")
    old_pid = one(in_tx, "SELECT pg_backend_pid()")
    admin.execute("RECONNECT wptest")
    waiting = Background(lambda: console().execute("WAIT_CLOSE wptest"))
    if not waiting.still_running_after(1.0):
        fail(f"WAIT_CLOSE returned while a retired server was in use ({waiting.error})")
    in_tx.execute("COMMIT")
    waiting.finish("WAIT_CLOSE after the COMMIT")
    new_pid = one(in_tx, "SELECT pg_backend_pid()")
    if new_pid == old_pid:
        fail("RECONNECT: the released server was lent again")
    in_tx.close()
    print("ok: RECONNECT retired the servers; WAIT_CLOSE answered once the busy one was "
          "released; the next transaction ran on a new backend")


def suspend_holds_queries(admin):
    client = app()
    one(client, "SELECT 1")
    admin.execute("SUSPEND")
    query = Background(lambda: one(client, "SELECT 'after suspend'"))
    if not query.still_running_after(0.5):
        fail("a query was answered during SUSPEND")
    state = {r["key"]: r["value"] for r in rows(admin, "STATE")}
    if state != {"active": "no", "paused": "no", "suspended": "yes"}:
        fail(f"SHOW STATE during SUSPEND: {state}")
    admin.execute("RESUME")
    if query.finish("the query sent during SUSPEND") != "after suspend":
        fail("wrong answer after SUSPEND/RESUME")
    state = {r["key"]: r["value"] for r in rows(admin, "STATE")}
    if state != {"active": "yes", "paused": "no", "suspended": "no"}:
        fail(f"SHOW STATE after RESUME: {state}")
    client.close()
    print("ok: SUSPEND answered, SHOW STATE suspended; a query sent meanwhile was answered "
          "after RESUME")


def raw_login(db="wptest"):
    """A v3 client on a bare socket (md5 login), for a client that stops reading."""
    sock = socket.create_connection((HOST, int(PORT)), timeout=10 * SLOW)
    params = b"user\0" + USER.encode() + b"\0database\0" + db.encode() + b"\0\0"
    sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
    buf = b""
    while True:
        while len(buf) < 5 or len(buf) < 1 + struct.unpack("!i", buf[1:5])[0]:
            chunk = sock.recv(65536)
            if not chunk:
                fail("raw login: connection closed")
            buf += chunk
        n = 1 + struct.unpack("!i", buf[1:5])[0]
        kind, body, buf = buf[:1], buf[5:n], buf[n:]
        if kind == b"R" and struct.unpack("!i", body[:4])[0] == 5:
            inner = hashlib.md5((PASSWORD + USER).encode()).hexdigest().encode()
            answer = b"md5" + hashlib.md5(inner + body[4:8]).hexdigest().encode() + b"\0"
            sock.sendall(b"p" + struct.pack("!i", 4 + len(answer)) + answer)
        elif kind == b"E":
            fail(f"raw login refused: {body!r}")
        elif kind == b"Z":
            return sock


def suspend_drops_unflushed(admin):
    admin.execute("SET suspend_timeout = 1")
    stuck = raw_login()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    query = b"SELECT repeat('x', 64 * 1024 * 1024)\0"
    stuck.sendall(b"Q" + struct.pack("!i", 4 + len(query)) + query)
    # The result fills the client's socket, then warmpool's buffers: from then on bytes
    # wait in warmpool on their way to the client (SHOW SOCKETS' send_avail of its
    # backend), for good. Seen in three polls in a row, they are not just in passage.
    deadline, seen = time.monotonic() + 30 * SLOW, 0
    while seen < 3:
        if time.monotonic() > deadline:
            fail("the big result never backed up in warmpool")
        waiting = [r for r in rows(admin, "ACTIVE_SOCKETS")
                   if r["type"] == "S" and r["database"] == "wptest" and
                   int(r["send_avail"]) > 0]
        seen = seen + 1 if waiting else 0
        time.sleep(0.2)
    started = time.monotonic()
    admin.execute("SUSPEND")
    waited = time.monotonic() - started
    left = [r for r in rows(admin, "CLIENTS") if r["database"] == "wptest"]
    admin.execute("RESUME")
    stuck.close()
    if waited < 0.9:
        fail(f"SUSPEND answered after {waited:.2f} s with a client's output unflushed")
    if left:
        fail(f"SUSPEND left the client that did not read connected: {left}")
    print(f"ok: SUSPEND with a client that does not read answered after {waited:.1f} s "
          "(suspend_timeout = 1), that client closed")


def shutdown_wait_for_clients(admin):
    client = app()
    admin.execute("SHUTDOWN WAIT_FOR_CLIENTS")
    try:
        app().close()
        fail("SHUTDOWN WAIT_FOR_CLIENTS: a new login got in")
    except psycopg.OperationalError:
        pass
    for i in range(3):
        if one(client, f"SELECT {i}") != i:
            fail("wrong answer during SHUTDOWN WAIT_FOR_CLIENTS")
    if gone(PID):
        fail("warmpool exited while clients were connected")
    client.close()
    admin.close()
    deadline = time.monotonic() + 10 * SLOW
    while not gone(PID):
        if time.monotonic() > deadline:
            fail("warmpool still running after its last client left")
        time.sleep(0.05)
    print("ok: SHUTDOWN WAIT_FOR_CLIENTS: logins refused, the client went on, exit once "
          "every client had left")


def main():
    admin = console()
    pause_waits_for_commit(admin)
    disable_refuses_logins(admin)
    kill_client_drops_one(admin)
    reconnect_and_wait_close(admin)
    suspend_holds_queries(admin)
    suspend_drops_unflushed(admin)
    shutdown_wait_for_clients(admin)


if __name__ == "__main__":
    main()
