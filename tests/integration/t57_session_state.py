"""t57_session_state — session settings follow the client, session-bound work pins its
backend (issue 15): a differential test against PostgreSQL.

Seven clients, each with its own script of SQL texts (one simple Query each; some hold
several statements), run round-robin one step at a time (client 0 step 0, client 1
step 0, …, client 0 step 1, …). The scripts cover SET in every form (name = value,
TO, SESSION, TIME ZONE, a quoted search_path, a custom myapp.tenant, TO DEFAULT, TIME
ZONE LOCAL), RESET name, RESET ALL, DISCARD ALL, SET LOCAL, committed, rolled-back and
failed blocks, savepoints, a failing implicit multi-statement transaction, startup
parameters (options -c search_path=a -c statement_timeout=5s; every client sends its
own application_name) that RESET and DISCARD ALL must bring back, LISTEN/NOTIFY
(pg_notify, a rolled-back NOTIFY, a duplicate payload, another channel, UNLISTEN name
and *), session advisory locks (held, tried by another client, re-entered, unlocked
once too often, unlock_all) and temporary tables. What each client sees after every
step — each result's command tag, columns and rows or SQLSTATE, the transaction
status, notices (severity, SQLSTATE), notifications (channel, payload; not the pid) and
libpq's ParameterStatus view of application_name and TimeZone — is its output.

Runs: (a) one PostgreSQL session per client: the reference; (c) through a private
warmpool in session mode (a pool of 7); (b) through a private warmpool in transaction
mode with a pool of 2; (d) as (b), with the single-statement SET/RESET/SHOW/SELECT
steps of clients 0 and 1 sent through the extended protocol (Parse/Bind/Execute/Sync).
Every client's output in (b), (c) and (d) must equal (a); the first difference is
reported (client, step, statement, expected, got) and ends that run.

With a pool of 2 and sequential steps, a client holding a backend between steps (open
transaction, LISTEN, advisory lock, temporary table) leaves one backend for everyone
else: the scripts are built in phases so that at most one client holds one while any
other client runs a statement; check_schedule() verifies that before anything runs.
query_wait_timeout = 3s turns a pooler that keeps a backend it should have released into
a difference (53300) instead of a hang.

custom settings: PostgreSQL keeps a placeholder for myapp.tenant once a session used it
(current_setting(…, true) then gives '' after RESET, NULL in a session that never did),
which no pooler can undo on a shared backend: the observation uses coalesce(…, '').

With WP_DIRECT=1 every run talks to PostgreSQL itself, which validates the scripts and
the comparison (the extended-protocol run included).
Run with /usr/bin/python3 (prepared_lib.py).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepared_lib import (DIRECT, PASSWORD, PG_PORT, SLOW, USER, Warmpool, at_exit, backend_pids,  # noqa: E402
                          check, fail, main, make_db, note, ok, superuser, terminate)

import psycopg  # noqa: E402
from psycopg import pq  # noqa: E402
from psycopg.generators import execute as pq_execute  # noqa: E402

DB = "wpsess_state"
TX_POOL = 2

OBS = ("SELECT current_setting('search_path') AS search_path, "
       "current_setting('statement_timeout') AS statement_timeout, "
       "current_setting('TimeZone') AS timezone, current_setting('work_mem') AS work_mem, "
       "coalesce(current_setting('myapp.tenant', true), '') AS tenant")
APP = "SHOW application_name"
WHO = "SELECT v FROM tbl"  # a.tbl, "B".tbl and public.tbl say which schema search_path found

NAMES = ["settings", "zone_path", "blocks", "startup", "listener", "notifier_lock",
         "temp_try"]
N = len(NAMES)
# Every client names itself: one that sends no application_name may be told the
# pooler's own (fallback_application_name, see t04_startup_params), not PostgreSQL's ''.
STARTUP = {c: {"application_name": f"client{c}"} for c in range(N)}
STARTUP[3]["options"] = "-c search_path=a -c statement_timeout=5s"
EXTENDED_CLIENTS = {0, 1}

# Each phase: {client: [step, ...]}; a step is SQL text or (label, SQL text). A phase
# has at most one client holding a backend between steps, and it lets go by the
# phase's end (check_schedule() enforces what matters).
PHASES = [
    # warm-up: nobody holds a backend
    {
        0: [OBS, APP, "SET work_mem = '8MB'", "SHOW work_mem", "SET statement_timeout TO '7s'",
            "SHOW statement_timeout", "SET SESSION myapp.tenant = 'x'", OBS],
        1: [OBS, "SET TIME ZONE 'Europe/Paris'", "SHOW TimeZone",
            'SET search_path = a, "B", public', "SHOW search_path", WHO, OBS],
        2: [OBS, "SET work_mem = '2MB'; SHOW work_mem",
            "SET myapp.tenant = 'two'; SELECT current_setting('myapp.tenant')", OBS],
        3: [("startup obs", OBS), ("startup app", APP), "SHOW search_path",
            "SHOW statement_timeout", ("startup who", WHO)],
        4: [OBS, "SET myapp.tenant = 'L'", OBS],
        5: ["NOTIFY ch1, 'payload-0'", "SET work_mem = '9MB'; SELECT 1/0",
            ("after failed implicit", "SHOW work_mem"), OBS],
        6: [OBS, "SET statement_timeout = '6s'; SET work_mem = '6MB'", OBS],
    },
    # client 2: a committed block
    {
        2: ["BEGIN", "SET work_mem = '3MB'", "SET TIME ZONE 'UTC'", "SET myapp.tenant = 'blk'",
            OBS, "COMMIT", ("after commit", OBS)],
        0: ["RESET work_mem", OBS, "SET work_mem = '8MB'", "RESET statement_timeout", OBS],
        1: [WHO, 'SET search_path TO "B"', WHO, OBS],
        3: ['SET search_path = "B"', WHO, OBS, "RESET search_path",
            ("reset search_path", "SHOW search_path"), WHO, OBS],
        5: ["BEGIN; SET work_mem = '10MB'; COMMIT", "SHOW work_mem",
            "BEGIN; SET work_mem = '11MB'; ROLLBACK", "SHOW work_mem"],
        6: ["SET work_mem = '7MB'; SHOW work_mem; SET work_mem = '5MB'", OBS],
    },
    # client 2: a rolled-back block
    {
        2: ["BEGIN", "SET work_mem = '4MB'", "SET TIME ZONE 'Asia/Tokyo'", "SET search_path = a",
            OBS, "ROLLBACK", ("after rollback", OBS)],
        0: ["SET TIME ZONE 'America/New_York'", OBS, "SET statement_timeout = '7s'",
            "SET work_mem TO DEFAULT", OBS],
        1: ["RESET search_path", OBS, WHO],
        3: ["SET statement_timeout = '9s'", "SET application_name = 'renamed3'", APP, OBS],
        4: ["SET work_mem = '20MB'", OBS],
        6: ["SET search_path = a, public", WHO, OBS],
    },
    # client 2: a failed block; client 3: RESET ALL back to its startup values
    {
        2: ["BEGIN", "SET statement_timeout = '1min'", "SET myapp.tenant = 'failed'",
            "SELECT 1/0", OBS, "COMMIT", ("after failed block", OBS)],
        1: ["SET work_mem = '12MB'", "SET TIME ZONE LOCAL", OBS],
        3: ["RESET ALL", ("after reset all", OBS), ("app after reset all", APP),
            ("who after reset all", WHO)],
        5: ["SET TIME ZONE 'Australia/Sydney'", OBS],
    },
    # client 0: SET LOCAL
    {
        0: ["BEGIN", "SET LOCAL work_mem = '16MB'", "SET LOCAL myapp.tenant = 'local'",
            "SHOW work_mem", OBS, "COMMIT", ("after set local", OBS),
            "SET LOCAL work_mem = '17MB'", "SHOW work_mem"],
        2: ["SET work_mem = '5MB'", OBS],
        6: ["RESET work_mem", "SHOW work_mem", OBS],
    },
    # client 2: savepoints
    {
        2: ["BEGIN", "SET work_mem = '5MB'", "SAVEPOINT s1", "SET work_mem = '6MB'",
            "SET TIME ZONE 'Asia/Tokyo'", "SHOW work_mem", "ROLLBACK TO SAVEPOINT s1",
            "SHOW work_mem", OBS, "SAVEPOINT s2", "SET myapp.tenant = 'sp'",
            "RELEASE SAVEPOINT s2", "SAVEPOINT s3", "SET statement_timeout = '3s'",
            "SELECT 1/0", "ROLLBACK TO SAVEPOINT s3", "SHOW statement_timeout", "COMMIT",
            ("after savepoints", OBS)],
        1: ['SET search_path = "B", a', WHO, OBS],
        5: ["SET myapp.tenant = 'five'", OBS],
    },
    # client 4 listens (4 runs before 5 and 6 in a step, after 0, 1, 2, 3)
    {
        4: ["LISTEN ch1", "SELECT 1", "SELECT 1", "SELECT 1", "LISTEN ch3", "SELECT 1",
            "UNLISTEN ch1", "SELECT 1", "UNLISTEN *", "SELECT 1", OBS],
        5: ["NOTIFY ch1, 'payload-1'", "SELECT 1", "NOTIFY ch2, 'other-channel'",
            "NOTIFY ch1, 'dup'; NOTIFY ch1, 'dup'", "SELECT 1", "SELECT 1",
            "NOTIFY ch1, 'after-unlisten-ch1'", "SELECT 1", "NOTIFY ch3, 'after-unlisten-all'"],
        1: [OBS, "NOTIFY ch1, 'payload-2'; SELECT 1",
            "BEGIN; NOTIFY ch1, 'payload-rolledback'; ROLLBACK", "SET work_mem = '14MB'", OBS,
            "NOTIFY ch3, 'payload-ch3'"],
        6: [OBS, "SELECT 1", "SELECT pg_notify('ch1', 'payload-3')", OBS],
        0: ["SET work_mem = '15MB'", OBS, "SET TIME ZONE 'Europe/Paris'", OBS],
        3: ["SET search_path = \"B\", public", WHO, OBS],
    },
    # client 5 takes a session advisory lock; client 6 tries it
    {
        5: ["SELECT pg_advisory_lock(42)", None,
            ("reentrant try", "SELECT pg_try_advisory_lock(42)"), "SELECT pg_advisory_unlock(42)",
            "SELECT pg_advisory_unlock(42)", "SELECT pg_advisory_unlock(42)",
            "SELECT pg_advisory_unlock_all()", OBS],
        # a try may pin (the pooler cannot know it failed): only 5 and 6 run in step 1
        6: [("try while held", "SELECT pg_try_advisory_lock(42)"),
            "SELECT pg_advisory_unlock_all()", None, None, None, None, None, None,
            ("try after unlock", "SELECT pg_try_advisory_lock(42)"),
            "SELECT pg_advisory_unlock(42)", "SELECT pg_advisory_unlock_all()"],
        0: ["SELECT 1", None, "BEGIN; SELECT pg_advisory_xact_lock(43); COMMIT", OBS],
        2: ["SELECT 2", None, "SET work_mem = '18MB'", OBS],
    },
    # client 6: a temporary table
    {
        6: ["CREATE TEMP TABLE t_6(x int)", "INSERT INTO t_6 VALUES (1), (2)",
            "SELECT sum(x) FROM t_6", "INSERT INTO t_6 SELECT 10",
            "SELECT count(*), sum(x) FROM t_6", "DROP TABLE t_6", "SELECT count(*) FROM t_6", OBS],
        0: ["BEGIN; CREATE TEMP TABLE t_0(x int) ON COMMIT DROP; INSERT INTO t_0 VALUES (5); "
            "SELECT x FROM t_0; COMMIT", "SELECT x FROM t_0", OBS],
        4: ["SET TIME ZONE 'UTC'", OBS],
        5: ["SET work_mem = '19MB'", OBS],
    },
    # client 3: a temporary table, then DISCARD ALL
    {
        3: ['SET search_path = "B"', "SET work_mem = '13MB'", "CREATE TEMP TABLE t_3(x int)",
            "INSERT INTO t_3 VALUES (3)", "SELECT x FROM t_3", "DISCARD ALL", "SELECT x FROM t_3",
            ("after discard all", OBS), ("app after discard all", APP), WHO],
        1: ["SET statement_timeout = '11s'", OBS],
        2: ["SET myapp.tenant = 'two-b'", OBS],
    },
    # the end: RESET ALL, DISCARD ALL, TO DEFAULT; everyone observes
    {
        0: ["SET work_mem = '1MB'", "RESET ALL", OBS, "SET myapp.tenant = 'end'", "DISCARD ALL",
            OBS, APP],
        1: ["SET search_path TO DEFAULT", OBS, "RESET TimeZone", OBS, WHO, APP],
        2: ["RESET ALL", OBS, APP],
        3: [OBS, APP, WHO],
        4: [OBS, APP],
        5: [OBS, APP],
        6: [OBS, APP],
    },
]


def build_scripts():
    """Phases → one list per client (None: the client skips that step), labels."""
    scripts = [[] for _ in range(N)]
    labels = {}
    for phase in PHASES:
        length = max(len(v) for v in phase.values())
        for c in range(N):
            steps = phase.get(c, [])
            for s in steps + [None] * (length - len(steps)):
                if isinstance(s, tuple):
                    labels[s[0]] = (c, len(scripts[c]))
                    s = s[1]
                scripts[c].append(s)
    return scripts, labels


def statements(sql):
    return [s.strip().lower() for s in sql.split(";") if s.strip()]


def hold_effects(stmt, held):
    """Update the set of reasons a client keeps its backend between steps (as a pooler
    would see them, conservatively) for one statement."""
    if stmt.startswith("begin") or stmt.startswith("start transaction"):
        held.add("tx")
    elif stmt.startswith(("commit", "end")) or (stmt.startswith("rollback")
                                                 and not stmt.startswith("rollback to")):
        held.discard("tx")
    elif stmt.startswith("listen"):
        held.add("listen")
    elif stmt == "unlisten *":
        held.discard("listen")
    elif stmt == "discard all":
        held.difference_update({"listen", "lock", "temp"})
    elif stmt.startswith("create temp") and "on commit drop" not in stmt:
        held.add("temp")
    elif stmt.startswith("drop table"):
        held.discard("temp")
    if "pg_advisory_lock(" in stmt or "pg_try_advisory_lock(" in stmt:
        held.add("lock")
    if "pg_advisory_unlock_all(" in stmt:
        held.discard("lock")


def check_schedule(scripts):
    held = [set() for _ in range(N)]
    for step in range(len(scripts[0])):
        for c in range(N):
            sql = scripts[c][step]
            if sql is None:
                continue
            holders = [k for k in range(N) if held[k] and k != c]
            if not held[c] and len(holders) >= TX_POOL:
                fail(f"schedule: at step {step} client {c} ({sql!r}) would wait for a backend "
                     f"while clients {holders} hold all {TX_POOL}")
            for stmt in statements(sql):
                hold_effects(stmt, held[c])
    left = [c for c in range(N) if held[c]]
    if left:
        fail(f"schedule: clients {left} still hold a backend at the end")
    ok(f"schedule: {len(scripts[0])} steps of {N} clients; at most one holds a backend "
       f"whenever another needs one (pool of {TX_POOL})")


# ---------------------------------------------------------------- running a script

class Client:
    def __init__(self, idx, conninfo):
        self.idx = idx
        self.notifies = []
        self.notices = []
        self.conn = psycopg.connect(**conninfo, **STARTUP[idx], autocommit=True,
                                    prepare_threshold=None, connect_timeout=10)
        self.conn.add_notify_handler(lambda n: self.notifies.append((n.channel, n.payload)))
        self.conn.add_notice_handler(
            lambda d: self.notices.append((d.severity_nonlocalized, d.sqlstate)))

    def step(self, sql, extended):
        pg = self.conn.pgconn
        try:
            if extended:
                pg.send_query_params(sql.encode(), None)
            else:
                pg.send_query(sql.encode())
            results = self.conn.wait(pq_execute(pg))
        except psycopg.Error as e:
            return {"closed": f"{type(e).__name__}: {e}".strip()}
        out = {"results": [summarize(r) for r in results],
               "status": pq.TransactionStatus(pg.transaction_status).name,
               "notices": self.notices,
               "notifies": self.notifies,
               "params": {k: (pg.parameter_status(k.encode()) or b"").decode()
                          for k in ("application_name", "TimeZone")}}
        self.notices, self.notifies = [], []
        return out

    def close(self):
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - a broken connection is closed anyway
            pass


def summarize(res):
    if res.status == pq.ExecStatus.FATAL_ERROR:
        code = res.error_field(pq.DiagnosticField.SQLSTATE)
        return ("ERROR", code.decode() if code else None)
    tag = (res.command_status or b"").decode()
    if res.status != pq.ExecStatus.TUPLES_OK:
        return (pq.ExecStatus(res.status).name, tag)
    cols = tuple(res.fname(i).decode() for i in range(res.nfields))
    rows = tuple(tuple(None if v is None else v.decode()
                       for v in (res.get_value(r, i) for i in range(res.nfields)))
                 for r in range(res.ntuples))
    return (tag, cols, rows)


def use_extended(c, sql, extended_clients):
    return (c in extended_clients and ";" not in sql
            and sql.split(None, 1)[0].upper() in ("SET", "RESET", "SHOW", "SELECT"))


def run(label, conninfo, scripts, reference=None, extended_clients=frozenset()):
    """Run every script round-robin. Returns (outputs, first difference or None); with a
    reference, the run stops at the first step whose output differs from it."""
    clients = [Client(c, conninfo) for c in range(N)]
    outputs = [[None] * len(scripts[c]) for c in range(N)]
    diff = None
    n_ext = 0
    try:
        for step in range(len(scripts[0])):
            for c in range(N):
                sql = scripts[c][step]
                if sql is None:
                    continue
                ext = use_extended(c, sql, extended_clients)
                n_ext += ext
                got = clients[c].step(sql, ext)
                outputs[c][step] = got
                if reference is not None and got != reference[c][step]:
                    diff = (c, step, sql, reference[c][step], got)
                    return outputs, diff, n_ext
                if "closed" in got:
                    fail(f"{label}: client {c} ({NAMES[c]}) step {step} {sql!r}: {got['closed']}")
    finally:
        for cl in clients:
            cl.close()
    return outputs, diff, n_ext


def describe(label, diff):
    c, step, sql, want, got = diff
    lines = [f"{label}: client {c} ({NAMES[c]}) step {step} {sql!r} differs from PostgreSQL"]
    for k in sorted(set(want) | set(got)):
        if want.get(k) != got.get(k):
            lines.append(f"    {k}: expected {want.get(k)!r}")
            lines.append(f"    {k}:      got {got.get(k)!r}")
    return "\n".join(lines)


def wait_no_backends():
    """Between runs: the previous run's backends (and any advisory lock a wrong pooler
    left on one) are gone."""
    deadline = time.time() + 10
    while time.time() < deadline:
        if not backend_pids(DB):
            return
        time.sleep(0.05)
    terminate(backend_pids(DB))


# ---------------------------------------------------------------- the reference itself

def first_row(out):
    """The first row of the last result of a step's output."""
    return out["results"][-1][2][0]


def check_reference(ref, labels):
    """The reference must show what the scripts are about, or the comparison is empty."""
    def at(label):
        c, step = labels[label]
        return ref[c][step]

    dflt = at("startup obs")  # client 3's view at the start
    check(first_row(dflt)[:2] == ("a", "5s"),
          "reference: startup options -c search_path=a -c statement_timeout=5s are in effect",
          str(first_row(dflt)))
    check(first_row(at("startup app")) == ("client3",), "reference: application_name=client3")
    check(first_row(at("startup who")) == ("a",), "reference: search_path a finds a.tbl")
    check(first_row(at("reset search_path")) == ("a",),
          "reference: RESET search_path gives the startup value back")
    for label in ("after reset all", "after discard all"):
        check(first_row(at(label))[:2] == ("a", "5s"),
              f"reference: {label.replace('after ', '').upper()} gives the startup values back",
              str(first_row(at(label))))
        check(first_row(at("app " + label)) == ("client3",),
              f"reference: application_name is client3 again after "
              f"{label.replace('after ', '').upper()}")
    check(first_row(at("who after reset all")) == ("a",), "reference: RESET ALL finds a.tbl again")
    check(first_row(at("after failed implicit"))[0] != "9MB",
          "reference: a SET in a failed implicit multi-statement transaction does not stay")
    check(first_row(at("after commit"))[2:5] == ("UTC", "3MB", "blk"),
          "reference: SETs of a committed block stay", str(first_row(at("after commit"))))
    rb = first_row(at("after rollback"))
    check(rb[2] != "Asia/Tokyo" and rb[3] != "4MB" and rb[0] != "a",
          "reference: SETs of a rolled-back block do not stay", str(rb))
    fb = first_row(at("after failed block"))
    check(fb[1] != "1min" and fb[4] != "failed", "reference: SETs of a failed block do not stay",
          str(fb))
    check(first_row(at("after set local"))[3] != "16MB" and
          first_row(at("after set local"))[4] != "local",
          "reference: SET LOCAL ends with its transaction")
    sp = first_row(at("after savepoints"))
    check(sp[1:5] == ("0", "UTC", "5MB", "sp"),
          "reference: ROLLBACK TO SAVEPOINT undoes only the SETs after it", str(sp))
    got = [n for out in ref[4] if out for n in out["notifies"]]
    want = [("ch1", "payload-1"), ("ch1", "payload-2"), ("ch1", "payload-3"), ("ch1", "dup"),
            ("ch3", "payload-ch3")]
    check(got == want, "reference: the listener gets exactly the notifications sent while it "
          "listened, once each, in order", f"got {got}")
    check(first_row(at("try while held")) == ("f",),
          "reference: pg_try_advisory_lock(42) is false while another session holds it")
    check(first_row(at("reentrant try")) == ("t",),
          "reference: the holder's own pg_try_advisory_lock(42) is true")
    check(first_row(at("try after unlock")) == ("t",),
          "reference: pg_try_advisory_lock(42) is true once the holder let go")


# ---------------------------------------------------------------- test

def setup_db():
    make_db(DB)
    with psycopg.connect(host="127.0.0.1", port=PG_PORT, user=USER, password=PASSWORD,
                         dbname=DB, autocommit=True) as conn:
        for schema in ("a", '"B"', "public"):
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            conn.execute(f"CREATE TABLE {schema}.tbl (v text)")
            conn.execute(f"INSERT INTO {schema}.tbl VALUES (%s)", (schema.strip('"'),))

    def drop():
        wait_no_backends()
        with superuser() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    return drop


def test():
    scripts, labels = build_scripts()
    check_schedule(scripts)
    at_exit(setup_db())

    direct = dict(host="127.0.0.1", port=PG_PORT, user=USER, password=PASSWORD, dbname=DB)
    t0 = time.time()
    ref, _, _ = run("direct", direct, scripts)
    nsteps = sum(1 for s in scripts for x in s if x is not None)
    ok(f"reference run: {nsteps} steps of {N} clients on their own PostgreSQL sessions "
       f"({time.time() - t0:.1f} s)")
    check_reference(ref, labels)
    wait_no_backends()

    runs = [
        ("session mode", {"pool_mode": "session", "max_pool_size": N}, frozenset()),
        (f"transaction mode, pool of {TX_POOL}", {"max_pool_size": TX_POOL}, frozenset()),
        (f"transaction mode, pool of {TX_POOL}, clients {sorted(EXTENDED_CLIENTS)} extended",
         {"max_pool_size": TX_POOL}, EXTENDED_CLIENTS),
    ]
    failures = []
    for i, (label, pool, ext) in enumerate(runs):
        wp = Warmpool(f"t57-{i}", {"st": dict(dbname=DB, **pool)}, query_wait_timeout=f"{3 * SLOW}s",
                      max_pool_size=N).start()
        t0 = time.time()
        _, diff, n_ext = run(label, wp.dsn("st"), scripts, reference=ref, extended_clients=ext)
        extra = f", {n_ext} steps extended" if ext else ""
        if diff is None:
            ok(f"{label}: every client's output equals PostgreSQL's ({time.time() - t0:.1f} s"
               f"{extra})")
        else:
            msg = describe(label, diff)
            print(f"not ok: {msg}", flush=True)
            failures.append(msg)
        wp.stop()
        wait_no_backends()
    if DIRECT:
        note("direct: every run above talked to PostgreSQL itself")
    if failures:
        fail(f"{len(failures)} of {len(runs)} runs differ from PostgreSQL:\n" + "\n".join(failures))


if __name__ == "__main__":
    main(test)
