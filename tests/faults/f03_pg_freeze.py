"""f03_pg_freeze — PostgreSQL frozen: SIGSTOP to the postmaster and all its backends for
5 s under a 12-client ledger load, then SIGCONT. Requests stall (or fail) during the
freeze but none hangs past it, the pooler keeps accepting clients meanwhile, and every
client completes transactions again afterwards. A client of a pool that has no backend
yet (`fresh`) asks for one during the freeze: it must get its answer or an error, not
wait past server_connect_timeout and query_wait_timeout."""
import os
import signal
import threading
import time

import psycopg


from faultlib import (HANG_S, RawClient, check, check_invariants, finish, log, pg_children,
                      pooler_dsn, postmaster_pid, start_workers, stop_workers,
                      wait_progress)

RUN = "f03"


def fresh_pool_client(result):
    """A query that needs a brand-new backend while PostgreSQL is frozen."""
    start = time.monotonic()
    try:
        with psycopg.connect(pooler_dsn(db="fresh"), autocommit=True) as c:
            v = c.execute("SELECT 'f03-fresh'").fetchone()[0]
            result["outcome"] = f"answer {v!r}" if v == "f03-fresh" else f"WRONG answer {v!r}"
    except psycopg.Error as e:
        result["outcome"] = f"error {e.sqlstate or type(e).__name__}: {str(e).strip()[:160]}"
    result["secs"] = time.monotonic() - start


def main():
    ws, dog = start_workers(RUN, 12, think=0.02)
    check(wait_progress(ws, 0, need=3, limit=30), "12 ledger workers running")
    pm = postmaster_pid()
    os.kill(pm, signal.SIGSTOP)  # first, so that it forks nothing new meanwhile
    kids = pg_children(pm)
    for pid in kids:
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            pass
    frozen = time.monotonic()
    log(f"froze postmaster {pm} and {len(kids)} children")
    try:
        # The pooler itself must stay responsive: a new client can still log in
        # (authentication is the pooler's own) while every backend is stopped.
        c = RawClient("md5", timeout=10)
        err = c.login()
        c.close()
        check(err is None, f"a new client logs in to the pooler while PostgreSQL is frozen ({err})")
        fresh = {}
        fresh_thread = threading.Thread(target=fresh_pool_client, args=(fresh,), daemon=True)
        fresh_thread.start()
        time.sleep(max(0.0, 5 - (time.monotonic() - frozen)))
    finally:
        for pid in kids + [pm]:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    thawed = time.monotonic()
    log("thawed")
    fresh_thread.join(HANG_S)
    outcome = fresh.get("outcome", "no outcome (hang)")
    check(not fresh_thread.is_alive() and "WRONG" not in outcome,
          f"the fresh-pool client got {outcome} after {fresh.get('secs', 0):.1f} s")
    check(wait_progress(ws, thawed, need=3, limit=45),
          "every worker completes requests again after the freeze")
    time.sleep(1)
    stop_workers(ws, dog)
    check_invariants(RUN, ws)
    finish()


main()
