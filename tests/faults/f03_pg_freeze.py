"""f03_pg_freeze — PostgreSQL frozen: SIGSTOP to the postmaster and all its backends for
5 s under a 12-client ledger load, then SIGCONT. Requests stall (or fail) during the
freeze but none hangs past it, the pooler keeps accepting clients meanwhile, and every
client completes transactions again afterwards."""
import os
import signal
import time


from faultlib import (RawClient, check, check_invariants, finish, log, pg_children,
                      postmaster_pid, start_workers, stop_workers, wait_progress)

RUN = "f03"


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
        time.sleep(max(0.0, 5 - (time.monotonic() - frozen)))
    finally:
        for pid in kids + [pm]:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    thawed = time.monotonic()
    log("thawed")
    check(wait_progress(ws, thawed, need=3, limit=45),
          "every worker completes requests again after the freeze")
    time.sleep(1)
    stop_workers(ws, dog)
    check_invariants(RUN, ws)
    finish()


main()
