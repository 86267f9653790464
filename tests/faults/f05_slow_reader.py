"""f05_slow_reader — a client that never reads its results: it asks for ~1.1 GB
(SELECT g, repeat('x', 1000) FROM generate_series(1, 1100000) g: a wide column rather
than `SELECT * FROM generate_series(1, 54000000)`, which PostgreSQL would first
materialise to disk), reads 1 MB, then stops reading with the socket open. The backend
must end up blocked writing (backpressure reached PostgreSQL), the pooler's RSS must
stay within 64 MB of where it was, and the other clients of the same pool must keep
completing queries. Then the stuck client closes, and its backend must stop running the
query within 20 s, cancelled and kept by the pool (the pooler must keep draining it:
PostgreSQL ignores a cancel while blocked writing). Done once in autocommit and once
inside BEGIN."""
import time

from faultlib import (RawClient, check, check_invariants, check_memory, finish, log, pooler_backends,
                      pooler_pid, rss_kb, start_workers, stop_workers, wait_progress)

RUN = "f05"
BOUND_KB = 64 * 1024
SQL = "SELECT g, repeat('x', 1000) FROM generate_series(1, 1100000) g /* f05-stuck-{} */"


def stuck_backend(tag):
    return pooler_backends(f"query LIKE '%f05-stuck-{tag}%' AND query NOT LIKE '%pg_stat%'")


def one_stuck_client(ws, tag, in_txn):
    pid = pooler_pid()
    base = rss_kb(pid)
    c = RawClient("md5")
    check(c.login() is None, f"{tag}: stuck client logged in")
    if in_txn:
        c.query("BEGIN")
        c.read_until_ready()
    c.query(SQL.format(tag))
    got = 0
    while got < 1 << 20:
        _, body = c.read_msg()
        got += len(body) + 5
    log(f"{tag}: read {got} bytes of ~1.1 GB, now not reading any more")
    blocked = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = stuck_backend(tag)
        if rows and rows[0][1] == "active" and rows[0][2] == "ClientWrite":
            blocked = True
            break
        time.sleep(0.2)
    check(blocked, f"{tag}: the backend is blocked writing to the pooler (backpressure)")
    stuck_at = time.monotonic()
    peak = base
    while time.monotonic() - stuck_at < 8:
        peak = max(peak, rss_kb(pid))
        time.sleep(0.25)
    grew = peak - base
    check_memory(grew < BOUND_KB, f"{tag}: pooler RSS grew {grew} kB (< {BOUND_KB} kB) "
          f"from {base} kB while a 1.1 GB result is pending")
    check(wait_progress(ws, stuck_at, need=5, limit=20),
          f"{tag}: the other clients of the pool keep completing queries meanwhile")
    still = stuck_backend(tag)
    check(still and still[0][1] == "active", f"{tag}: the query is still pending (client stuck)")
    backend = still[0][0] if still else None
    c.close()
    closed = time.monotonic()
    while time.monotonic() - closed < 20:
        rows = stuck_backend(tag)
        if not rows or rows[0][1] != "active":
            break
        time.sleep(0.2)
    rows = stuck_backend(tag)
    check(not rows or rows[0][1] != "active",
          f"{tag}: after the client closed, its backend stopped the query "
          f"({time.monotonic() - closed:.1f} s; now {rows[0][1] if rows else 'gone'})")
    # Cancelled and kept, rather than stuck in its write until a timeout closes it:
    # the pooler must go on reading (and dropping) its output for the cancel to land.
    kept = pooler_backends(f"pid = {backend}") if backend else []
    check(bool(kept), f"{tag}: the backend ({backend}) was cancelled and kept, not closed")


def main():
    ws, dog = start_workers(RUN, 4, think=0.01)
    check(wait_progress(ws, 0, need=20, limit=30), "4 ledger workers running")
    one_stuck_client(ws, "autocommit", in_txn=False)
    one_stuck_client(ws, "in-transaction", in_txn=True)
    time.sleep(1)
    stop_workers(ws, dog)
    check_invariants(RUN, ws)
    finish()


main()
