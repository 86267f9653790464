"""t58_session_pins — session settings follow the client from backend to backend, and
session-bound work pins the client to its backend (issue 15), through a private
warmpool in transaction mode with a pool of 2 (admin console and stats socket on).

1. statement_timeout follows: A runs SET statement_timeout = '300ms' (autocommit) while
   B holds the other backend in a transaction, so the backend A set it on is known.
   Another client then holds that backend: A's next transactions run on the other one
   (pg_backend_pid() in the same transaction), still see 300ms, and SELECT pg_sleep(2)
   fails with 57014 there. D, which never SET anything, runs pg_sleep(0.6) on each of
   the two backends and sees statement_timeout 0.
2. LISTEN ch pins L: L stays on its backend, two other clients run 50 queries each,
   interleaved, all on the other backend; a NOTIFY ch, 'hello' from a fourth client
   reaches L. SHOW POOLS cl_pinned = 1, /metrics warmpool_pool_pinned_clients 1 and
   warmpool_pins_total{cause="listen"} 1. After UNLISTEN *, cl_pinned is 0, the counter
   stays 1, another client can take L's former backend and L is served by the other.
3. SELECT pg_advisory_lock(7) pins (cause advisory_lock; pg_locks shows the lock on the
   pinned backend); pg_advisory_unlock_all() unpins and the lock is gone.
4. CREATE TEMP TABLE tt pins (cause temp_object): rows inserted in one statement are
   read in later ones while another client holds the other backend; DROP TABLE tt
   unpins. CREATE TEMP TABLE t2 … ON COMMIT DROP inside BEGIN/COMMIT never pins.
5. pin_session_state = off (a second warmpool): LISTEN does not pin; = log: it is
   counted and logged, not pinned; max_prepared_statements = 0: a SQL PREPARE pins
   until DISCARD ALL.
6. pinned_idle_timeout = 1 (a third warmpool): a pinned client idle past it is
   disconnected with FATAL 57P05; an unpinned client idle as long is not.

Names assumed for the implementation under way: SHOW POOLS column cl_pinned; metrics
warmpool_pool_pinned_clients and warmpool_pins_total with label cause (listen,
advisory_lock, temp_object, …) besides database and user; [warmpool] keys
pin_session_state (on|off|log) and pinned_idle_timeout (a duration).
With WP_DIRECT=1 the pooler-only checks (backend pids, SHOW POOLS, metrics, parts 5
and 6) are skipped; everything PostgreSQL itself must agree with still runs.
Run with /usr/bin/python3 (prepared_lib.py).
"""
import os
import select
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepared_lib import (DIRECT, PASSWORD, SLOW, USER, Query, Warmpool, _fields, at_exit,  # noqa: E402
                          check, fail, main, make_db, note, ok, superuser)
from stats_client import get, prom_parse  # noqa: E402

import psycopg  # noqa: E402

DB = "wpsess_pins"
POOL = "two"


# ---------------------------------------------------------------- clients

class Conns:
    """Connections to one warmpool (or PostgreSQL when direct), all closed at the end."""

    def __init__(self, wp):
        self.wp = wp
        self.open = []

    def new(self):
        conn = self.wp.psycopg(POOL, autocommit=True, prepare_threshold=None,
                               connect_timeout=10)
        conn.notes = []
        conn.add_notify_handler(lambda n: conn.notes.append((n.channel, n.payload)))
        self.open.append(conn)
        return conn

    def close(self):
        for c in self.open:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
        self.open = []


def q(conn, sql):
    try:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description is not None else []
    except psycopg.Error as e:
        fail(f"{sql!r}: {type(e).__name__} {getattr(e, 'sqlstate', None)}: {e}")


def one(conn, sql):
    return q(conn, sql)[0][0]


def pid(conn):
    return one(conn, "SELECT pg_backend_pid()")


def expect_error(conn, sql, sqlstate, what):
    try:
        conn.execute(sql)
    except psycopg.Error as e:
        check(e.sqlstate == sqlstate, what, f"{sql!r} failed with {e.sqlstate}: {e}")
        return
    fail(f"{what}: {sql!r} succeeded, want {sqlstate}")


def hold(conns, target):
    """A client in an open transaction on backend target, the pool's other backend left
    free (pool of 2: when the first try lands elsewhere it keeps that backend busy while
    a second client gets target, then lets go). Not used when direct."""
    a = conns.new()
    q(a, "BEGIN")
    if pid(a) == target:
        return a
    b = conns.new()
    q(b, "BEGIN")
    got = pid(b)
    if got != target:
        fail(f"hold: with backend {pid(a)} held, the next client got {got}, not {target} "
             f"(pool of 2)")
    q(a, "COMMIT")
    return b


def wait_notify(conn, timeout=10.0 * SLOW):
    """The first notification that reaches conn within timeout (a wait, not a bound)."""
    pg = conn.pgconn
    deadline = time.time() + timeout
    while True:
        pg.consume_input()
        while True:
            n = pg.notifies()
            if not n:
                break
            conn.notes.append((n.relname.decode(), n.extra.decode()))
        if conn.notes:
            return conn.notes.pop(0)
        left = deadline - time.time()
        if left <= 0:
            return None
        select.select([pg.socket], [], [], min(left, 0.5))


# ---------------------------------------------------------------- pooler views

class Views:
    """SHOW POOLS through the admin console and /metrics through the stats socket."""

    def __init__(self, wp, sock):
        self.wp, self.sock = wp, sock

    def pool_row(self):
        with psycopg.connect(host=self.wp.host, port=self.wp.port, user=USER,
                             password=PASSWORD, dbname="warmpool", autocommit=True,
                             connect_timeout=10) as conn:
            cur = conn.execute("SHOW POOLS")
            cols = [d.name for d in cur.description]
            rows = [dict(zip(cols, r)) for r in cur.fetchall()]
        for r in rows:
            if r.get("database") == POOL and r.get("user") == USER:
                return r
        fail(f"SHOW POOLS has no row for {POOL}/{USER}: {rows}")

    def cl_pinned(self):
        row = self.pool_row()
        if "cl_pinned" not in row:
            fail(f"SHOW POOLS has no column cl_pinned; columns: {', '.join(row)}")
        return int(row["cl_pinned"])

    def metric(self, name, **labels):
        status, _, body = get(f"unix:{self.sock}", "/metrics")
        if status != 200:
            fail(f"GET /metrics: {status}")
        want = {("database", POOL), ("user", USER)} | set(labels.items())
        hits = [v for (n, ls), v in prom_parse(body.decode()).items()
                if n == name and want <= set(ls)]
        if len(hits) > 1:
            fail(f"{name}{labels}: {len(hits)} samples match")
        return hits[0] if hits else None

    def expect_pinned(self, n, what, timeout=5.0 * SLOW):
        """cl_pinned reaches n (polled: the pooler may update it after ReadyForQuery)."""
        deadline = time.time() + timeout
        while True:
            got = self.cl_pinned()
            if got == n or time.time() > deadline:
                break
            time.sleep(0.05)
        check(got == n, f"SHOW POOLS cl_pinned = {n} {what}", f"got {got}")
        got = self.metric("warmpool_pool_pinned_clients")
        check(got == n, f"/metrics warmpool_pool_pinned_clients = {n} {what}", f"got {got}")

    def expect_pins(self, cause, n, what):
        got = self.metric("warmpool_pins_total", cause=cause) or 0
        check(got == n, f'/metrics warmpool_pins_total{{cause="{cause}"}} = {n} {what}',
              f"got {got}")


def start(label, sock_dir, **settings):
    sock = os.path.join(sock_dir, f"{label}.sock")
    wp = Warmpool(label, {POOL: {"dbname": DB, "max_pool_size": 2}}, admin_users=USER,
                  stats_socket=sock, query_wait_timeout=f"{3 * SLOW}s", **settings).start()
    return wp, Views(wp, sock)


# ---------------------------------------------------------------- 1. statement_timeout

def part_statement_timeout(conns, views):
    a, b = conns.new(), conns.new()
    q(b, "BEGIN")
    b_pid = pid(b)
    q(a, "SET statement_timeout = '300ms'")
    set_pid, setting = q(a, "SELECT pg_backend_pid(), current_setting('statement_timeout')")[0]
    check(setting == "300ms", "A: SET statement_timeout = '300ms' (autocommit) is in effect",
          f"statement_timeout {setting!r}")
    if not DIRECT:
        check(set_pid != b_pid, f"A set it on backend {set_pid} while B held {b_pid}")
    q(b, "COMMIT")

    h = None if DIRECT else hold(conns, set_pid)  # A must run elsewhere now
    q(a, "BEGIN")
    a_pid, setting = q(a, "SELECT pg_backend_pid(), current_setting('statement_timeout')")[0]
    if not DIRECT:
        check(a_pid != set_pid, f"A's next transaction runs on backend {a_pid}, not {set_pid}")
    check(setting == "300ms", "A still sees statement_timeout 300ms in its next transaction",
          f"statement_timeout {setting!r} on backend {a_pid}")
    expect_error(a, "SELECT pg_sleep(2)", "57014",
                 "A's pg_sleep(2) in that transaction is cancelled (57014)")
    q(a, "ROLLBACK")
    expect_error(a, "SELECT pg_sleep(2)", "57014",
                 "A's autocommit pg_sleep(2) is cancelled (57014)")
    if not DIRECT:
        got = pid(a)
        check(got == a_pid, f"A is still served by backend {a_pid}", f"got {got}")
        q(h, "COMMIT")

    d = conns.new()
    sql = ("SELECT current_setting('statement_timeout'), pg_backend_pid() "
           "FROM pg_sleep(0.6)")
    if DIRECT:
        setting = q(d, sql)[0][0]
        check(setting == "0", "D (never SET anything) sleeps 0.6 s, statement_timeout 0",
              f"statement_timeout {setting!r}")
        return
    for target, other in ((set_pid, a_pid), (a_pid, set_pid)):
        h = hold(conns, other)
        setting, got = q(d, sql)[0]
        check(got == target and setting == "0",
              f"D (never SET anything) sleeps 0.6 s on backend {target} with statement_timeout 0",
              f"backend {got}, statement_timeout {setting!r}")
        q(h, "COMMIT")


# ---------------------------------------------------------------- 2. LISTEN

def part_listen(conns, views):
    lis = conns.new()
    q(lis, "LISTEN ch")
    l_pid = pid(lis)
    if not DIRECT:
        pids = {pid(lis) for _ in range(3)}
        check(pids == {l_pid}, f"L stays on backend {l_pid} after LISTEN", str(pids))
        views.expect_pinned(1, "while L listens")
        views.expect_pins("listen", 1, "after L's LISTEN")
    p, r = conns.new(), conns.new()
    seen = set()
    for i in range(50):
        for c in (p, r):
            seen.add(pid(c))
    ok("two other clients ran 50 queries each, interleaved, while L listened")
    if not DIRECT:
        check(l_pid not in seen, f"none of them ran on L's backend {l_pid}", f"they used {seen}")
        got = pid(lis)
        check(got == l_pid, f"L is still on backend {l_pid}", f"got {got}")
    n = conns.new()
    q(n, "NOTIFY ch, 'hello'")
    got = wait_notify(lis)
    check(got == ("ch", "hello"), "L receives NOTIFY ch, 'hello' from a fourth client", str(got))
    q(lis, "UNLISTEN *")
    if DIRECT:
        return
    views.expect_pinned(0, "after L's UNLISTEN *")
    views.expect_pins("listen", 1, "still, after UNLISTEN *")
    h = hold(conns, l_pid)
    ok(f"another client can take L's former backend {l_pid}")
    got = pid(lis)
    check(got != l_pid, f"L is served by the other backend meanwhile ({got})")
    q(h, "COMMIT")


# ---------------------------------------------------------------- 3. advisory lock

def advisory_holders(key):
    with superuser(DB) as su:
        return [r[0] for r in su.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND granted",
            (key,)).fetchall()]


def part_advisory(conns, views):
    k = conns.new()
    q(k, "SELECT pg_advisory_lock(7)")
    k_pid = pid(k)
    holders = advisory_holders(7)
    check(holders == [k_pid], f"pg_locks: advisory lock 7 held by K's backend {k_pid}",
          f"held by {holders}")
    if not DIRECT:
        pids = {pid(k) for _ in range(3)}
        check(pids == {k_pid}, f"K stays on backend {k_pid} while it holds the lock", str(pids))
        views.expect_pinned(1, "while K holds advisory lock 7")
        views.expect_pins("advisory_lock", 1, "after K's pg_advisory_lock(7)")
    q(k, "SELECT pg_advisory_unlock_all()")
    holders = advisory_holders(7)
    check(holders == [], "pg_advisory_unlock_all() released lock 7", f"held by {holders}")
    if not DIRECT:
        views.expect_pinned(0, "after K's pg_advisory_unlock_all()")
        views.expect_pins("advisory_lock", 1, "still, after pg_advisory_unlock_all()")


# ---------------------------------------------------------------- 4. temp table

def part_temp(conns, views):
    t = conns.new()
    q(t, "CREATE TEMP TABLE tt(x int)")
    t_pid = pid(t)
    if not DIRECT:
        views.expect_pinned(1, "while T has temp table tt")
        views.expect_pins("temp_object", 1, "after CREATE TEMP TABLE tt")
    q(t, "INSERT INTO tt VALUES (1), (2)")
    o = conns.new()
    q(o, "BEGIN")
    o_pid = pid(o)
    if not DIRECT:
        check(o_pid != t_pid, f"another client's transaction runs on backend {o_pid}, not "
              f"T's {t_pid}")
    check(one(t, "SELECT sum(x) FROM tt") == 3, "T reads the rows it inserted in an earlier "
          "statement while another client holds the other backend")
    q(t, "INSERT INTO tt SELECT 10")
    q(o, "COMMIT")
    check(q(t, "SELECT count(*), sum(x) FROM tt") == [(3, 13)], "T's later statements see all "
          "its rows")
    if not DIRECT:
        got = pid(t)
        check(got == t_pid, f"T stays on backend {t_pid}", f"got {got}")
    q(t, "DROP TABLE tt")
    if not DIRECT:
        views.expect_pinned(0, "after DROP TABLE tt")
    q(t, "BEGIN")
    q(t, "CREATE TEMP TABLE t2(x int) ON COMMIT DROP")
    q(t, "INSERT INTO t2 VALUES (1)")
    if not DIRECT:
        views.expect_pinned(0, "inside a block that created t2 ON COMMIT DROP")
    check(one(t, "SELECT count(*) FROM t2") == 1, "t2 ON COMMIT DROP works inside its block")
    q(t, "COMMIT")
    with superuser(DB) as su:
        left = su.execute("SELECT relname FROM pg_class WHERE relpersistence = 't' "
                          "AND relname IN ('tt', 't2')").fetchall()
    check(left == [], "no temp table tt or t2 is left", str(left))
    if not DIRECT:
        views.expect_pinned(0, "after the block's COMMIT (ON COMMIT DROP never pins)")
        views.expect_pins("temp_object", 1, "still: t2 ON COMMIT DROP was no pin")


# ---------------------------------------------------------------- 5. pin_session_state = off

def part_pin_off(sock_dir):
    wp, views = start("t58-off", sock_dir, pin_session_state="off")
    conns = Conns(wp)
    lis = conns.new()
    q(lis, "LISTEN ch")
    q(lis, "SELECT 1")
    views.expect_pinned(0, "after LISTEN with pin_session_state = off", timeout=0.5)
    views.expect_pins("listen", 0, "with pin_session_state = off")
    conns.close()
    wp.stop()


# ------------------------------------------- 5b. pin_session_state = log; uncarried PREPARE

def part_pin_log(sock_dir):
    wp, views = start("t58-log", sock_dir, pin_session_state="log")
    conns = Conns(wp)
    lis = conns.new()
    q(lis, "LISTEN ch")
    q(lis, "SELECT 1")
    views.expect_pinned(0, "after LISTEN with pin_session_state = log", timeout=0.5)
    views.expect_pins("listen", 1, "with pin_session_state = log (counted, not pinned)")
    check("pin_session_state = log" in wp.log_text(),
          "pin_session_state = log warns that the state stays on the backend")
    conns.close()
    wp.stop()


def part_prepare_uncarried(sock_dir):
    wp, views = start("t58-noprep", sock_dir, max_prepared_statements=0)
    conns = Conns(wp)
    c = conns.new()
    q(c, "PREPARE p58 AS SELECT 58")
    views.expect_pinned(1, "after PREPARE with max_prepared_statements = 0")
    views.expect_pins("prepare", 1, "after PREPARE with max_prepared_statements = 0")
    others = [conns.new() for _ in range(2)]
    got = [(one(others[i % 2], "SELECT 1"), one(c, "EXECUTE p58")) for i in range(10)]
    check(got == [(1, 58)] * 10,
          "others are served beside the pinned client, whose statement runs on its backend",
          str(got))
    q(c, "DISCARD ALL")
    views.expect_pinned(0, "after DISCARD ALL")
    conns.close()
    wp.stop()


# ------------------------------------------------ 5c. a SET whose client left before its answer

def part_abandoned_set(sock_dir):
    """A client sends SET and goes away at once: the SET may commit after warmpool lost
    its client, so the backend is reset before the next client (pool of one) gets it."""
    sock = os.path.join(sock_dir, "t58-abandon.sock")
    wp = Warmpool("t58-abandon", {POOL: {"dbname": DB, "max_pool_size": 1}}, admin_users=USER,
                  stats_socket=sock, query_wait_timeout=f"{3 * SLOW}s").start()
    conns = Conns(wp)
    default = one(conns.new(), "SHOW search_path")
    got = []
    for i in range(5):
        r = wp.raw(POOL)
        r.send(Query(f"SET search_path = left_{i}"), Query("SELECT pg_sleep(0.2)"))
        r.close()
        got.append(one(conns.new(), "SHOW search_path"))
    check(got == [default] * 5,
          "a SET whose client left before its answer never reaches the next client",
          f"default {default!r}, got {got}")
    conns.close()
    wp.stop()


# ---------------------------------------------------------------- 6. pinned_idle_timeout

def part_pinned_idle(sock_dir):
    wp, views = start("t58-idle", sock_dir, pinned_idle_timeout=1)
    pinned, idle = wp.raw(POOL), wp.raw(POOL)
    rows, err, _ = idle.query("SET statement_timeout = '1min'")
    check(err is None, "U (unpinned) SETs statement_timeout", str(err))
    rows, err, _ = pinned.query("LISTEN ch")
    check(err is None, "P LISTENs (pinned)", str(err))
    views.expect_pinned(1, "while P listens")
    deadline = time.time() + 10 * SLOW
    got = None
    try:
        while got is None and time.time() < deadline:
            m = pinned.read_msg(timeout=deadline - time.time())
            if m is not None and m[0] == "E":
                got = _fields(m[1])
    except ConnectionError as e:
        fail(f"P's connection was closed without an ErrorResponse: {e}")
    if got is None:
        fail("P (pinned, idle) still connected 10 s after pinned_idle_timeout = 1 s")
    check(got.get("C") == "57P05" and got.get("S") == "FATAL",
          "P, pinned and idle past pinned_idle_timeout = 1 s, gets FATAL 57P05",
          f"{got.get('S')} {got.get('C')}: {got.get('M')}")
    try:
        rest = pinned.read_msg(timeout=5 * SLOW)
        closed = False
    except ConnectionError:
        closed, rest = True, None
    check(closed, "P's connection is closed after the error", f"then got {rest}")
    time.sleep(1.5)  # U has now been idle longer than pinned_idle_timeout too
    try:
        rows, err, _ = idle.query("SELECT current_setting('statement_timeout')")
    except ConnectionError as e:
        fail(f"U (unpinned), idle as long as P, was disconnected: {e}; notices {idle.notices}")
    check(err is None and rows == [("1min",)],
          "U (unpinned), idle as long, is still connected and keeps its setting",
          f"{rows} {err}")
    views.expect_pinned(0, "once P is gone")
    idle.close()
    wp.stop()


# ---------------------------------------------------------------- test

def test():
    make_db(DB)

    def drop():
        with superuser() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    at_exit(drop)
    sock_dir = tempfile.mkdtemp(prefix="wp-t58.")
    at_exit(lambda: shutil.rmtree(sock_dir, ignore_errors=True))

    wp, views = start("t58", sock_dir)
    conns = Conns(wp)
    at_exit(conns.close)
    if DIRECT:
        note("direct: backend pids, SHOW POOLS, metrics, pin_session_state and "
             "pinned_idle_timeout are not checked")
    for part in (part_statement_timeout, part_listen, part_advisory, part_temp):
        part(conns, views)
        conns.close()
    wp.stop()
    if DIRECT:
        return
    part_pin_off(sock_dir)
    part_pin_log(sock_dir)
    part_prepare_uncarried(sock_dir)
    part_abandoned_set(sock_dir)
    part_pinned_idle(sock_dir)


if __name__ == "__main__":
    main(test)
