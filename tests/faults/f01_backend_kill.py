"""f01_backend_kill — backends die under the pooler: pg_terminate_backend() of a backend
running a long query, of a backend inside an open transaction (between statements and
right before COMMIT), of every idle pooled backend at once, then `kill -9` of a backend,
which makes PostgreSQL restart every backend (crash recovery), all while 8 ledger
workers run."""
import os
import signal
import threading
import time

import psycopg

from faultlib import (check, check_invariants, finish, log, pg_query, pg_wait_ready,
                      pooler_backends, pooler_dsn, start_workers, stop_workers, wait_progress)

RUN = "f01"


def terminate(pid):
    return pg_query("SELECT pg_terminate_backend(%s)", (pid,))[0][0]


def is_error_or_closed(exc):
    """A psycopg error with a SQLSTATE, or a lost connection (no SQLSTATE)."""
    return isinstance(exc, psycopg.Error)


def mid_query():
    result = {}

    def victim():
        try:
            with psycopg.connect(pooler_dsn(), autocommit=True) as c:
                c.execute("SELECT pg_sleep(60) /* f01-victim */")
                result["rows"] = "returned"
        except BaseException as e:
            result["exc"] = e

    t = threading.Thread(target=victim, daemon=True)
    t.start()
    pid = None
    for _ in range(100):
        rows = pooler_backends("query LIKE '%f01-victim%' AND state = 'active'")
        if rows:
            pid = rows[0][0]
            break
        time.sleep(0.1)
    if not check(pid is not None, "mid-query: the pg_sleep(60) is running on a backend"):
        return
    check(terminate(pid), f"mid-query: pg_terminate_backend({pid})")
    t.join(20)
    exc = result.get("exc")
    check(not t.is_alive(), "mid-query: the client's query ended (no hang)")
    check(exc is not None and is_error_or_closed(exc),
          f"mid-query: the client got an error: {getattr(exc, 'sqlstate', None)} {exc!r:.120}")


def mid_transaction(finish_with):
    """BEGIN; INSERT; (backend terminated); then `finish_with` must fail."""
    run = f"{RUN}-txn-{finish_with}"
    c = psycopg.connect(pooler_dsn(), autocommit=True)
    c.execute("BEGIN")
    c.execute("INSERT INTO ledger VALUES (%s, 9001, 1, 1)", (run,))
    pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
    check(terminate(pid), f"mid-transaction: pg_terminate_backend({pid}) between statements")
    time.sleep(0.5)
    try:
        if finish_with == "insert":
            c.execute("INSERT INTO ledger VALUES (%s, 9001, 2, 1)", (run,))
            c.execute("COMMIT")
        else:
            c.execute("COMMIT")
        outcome = f"success ({c.pgconn.transaction_status})"
    except psycopg.Error as e:
        outcome = f"error {e.sqlstate or type(e).__name__}"
    finally:
        c.close()
    check(outcome.startswith("error"), f"mid-transaction: the next {finish_with} fails: {outcome}")
    n = pg_query("SELECT count(*) FROM ledger WHERE run = %s", (run,))[0][0]
    check(n == 0, f"mid-transaction: nothing of the killed transaction was committed ({n} rows)")


def idle_backends_killed():
    """Every idle pooled backend terminated at once: the pooler must notice (their
    sockets close) and not lend a dead one to the next clients."""
    def sleeper():  # 6 at once grow the pool beyond what the busy workers hold
        with psycopg.connect(pooler_dsn(), autocommit=True) as c:
            c.execute("SELECT pg_sleep(0.5)")

    extra = [threading.Thread(target=sleeper) for _ in range(6)]
    for t in extra:
        t.start()
    for t in extra:
        t.join(30)
    rows = pooler_backends("backend_type = 'client backend' AND state = 'idle'")
    for pid, *_ in rows:
        terminate(pid)
    check(len(rows) > 0, f"idle pooled backends: terminated {len(rows)} at once")
    pids = ",".join(str(r[0]) for r in rows) or "0"
    deadline = time.monotonic() + 15  # SIGTERM is handled when the backend gets to it
    while pooler_backends(f"pid IN ({pids})") and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    errors = []
    for i in range(10):
        try:
            with psycopg.connect(pooler_dsn(), autocommit=True) as c:
                v = c.execute("SELECT %s::int", (i,)).fetchone()[0]
                if v != i:
                    errors.append(f"got {v} for {i}")
        except psycopg.Error as e:
            errors.append(f"{e.sqlstate} {e}")
    check(not errors, f"idle pooled backends: the next 10 new clients are served ({errors})")


def kill9(ws):
    rows = pooler_backends("backend_type = 'client backend' AND state <> 'idle'") or \
        pooler_backends("backend_type = 'client backend'")
    if not check(rows, "kill -9: the workers have backends"):
        return
    pid = rows[0][0]
    log(f"kill -9 backend {pid}: PostgreSQL restarts every backend")
    os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    check(pg_wait_ready(60), "kill -9: PostgreSQL is back after crash recovery")
    back = time.monotonic()
    check(wait_progress(ws, back, need=3, limit=45),
          "kill -9: every worker completes requests again after recovery")


def main():
    ws, dog = start_workers(RUN, 8)
    check(wait_progress(ws, 0, need=3, limit=30), "8 ledger workers running")
    mid_query()
    mid_transaction("insert")
    mid_transaction("commit")
    before = time.monotonic()
    check(wait_progress(ws, before, need=2, limit=30), "workers unaffected by the terminations")
    idle_backends_killed()
    kill9(ws)
    time.sleep(2)
    stop_workers(ws, dog)
    check_invariants(RUN, ws)
    finish()


main()
