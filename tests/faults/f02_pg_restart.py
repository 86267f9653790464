"""f02_pg_restart — PostgreSQL restarted (fast stop, 3 s down, start) while 20 clients
run the ledger workload: clients get errors while it is down, never hangs or wrong data,
and every client completes transactions again once it is back."""
import time

from faultlib import (PG_DIR, PG_PORT, check, check_invariants, finish, log, pg_ctl_script,
                      pg_wait_ready, start_workers, stop_workers, wait_progress)

RUN = "f02"


def main():
    ws, dog = start_workers(RUN, 20, think=0.02)
    check(wait_progress(ws, 0, need=3, limit=30), "20 ledger workers running")
    log("PostgreSQL: fast stop")
    pg_ctl_script("stop", PG_DIR)
    down = time.monotonic()
    time.sleep(3)
    ok_while_down = sum(w.ok_after(down + 0.5) for w in ws)
    log("PostgreSQL: start")
    pg_ctl_script("start", PG_DIR, str(PG_PORT))
    check(pg_wait_ready(60), "PostgreSQL is back")
    back = time.monotonic()
    check(wait_progress(ws, back, need=3, limit=45),
          "every worker completes requests again after the restart")
    time.sleep(1)
    errs = stop_workers(ws, dog)
    check(sum(errs.values()) > 0, "the restart was visible to clients as errors")
    log(f"requests that succeeded while PostgreSQL was down: {ok_while_down}")
    check(ok_while_down == 0, "no request succeeded while PostgreSQL was down")
    check_invariants(RUN, ws)
    finish()


main()
