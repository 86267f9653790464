"""f04_client_abort — clients that vanish mid-protocol, on a pool of only 2 backends (so
a backend the pooler failed to clean up would soon starve it), with 6 ledger workers on
the main pool meanwhile:
  - COPY FROM STDIN: half the data sent, then the socket closed (autocommit and inside
    BEGIN); no row of it may be committed;
  - pipelined Parse/Bind/Execute batches: without any Sync (results flushed, or not read
    at all), with a Sync every 10 statements and an unsynced tail, and after BEGIN;
    unsynced work must never be committed, a synced batch is all-or-nothing;
  - a pipeline whose last statement is a pg_sleep(30): its backend must not stay busy.
After each kind of abort the small pool must still serve new clients."""
import struct
import time

import psycopg

from faultlib import (RawClient, check, check_invariants, finish, pg_query,
                      pooler_backends, pooler_dsn, start_workers, stop_workers, wait_progress)

RUN = "f04"
SMALL = "small"
msg = RawClient.msg


def z(s):
    return s.encode() + b"\0"


def parse(sql):
    return msg(b"P", z("") + z(sql) + struct.pack("!H", 0))


def bind(*params):
    body = z("") + z("") + struct.pack("!HH", 0, len(params))
    for p in params:
        v = str(p).encode()
        body += struct.pack("!I", len(v)) + v
    return msg(b"B", body + struct.pack("!H", 0))


def execute():
    return msg(b"E", z("") + struct.pack("!I", 0))


SYNC, FLUSH = msg(b"S"), msg(b"H")


def insert(run, n):
    return parse("INSERT INTO pipe_sink VALUES ($1, $2::int)") + bind(run, n) + execute()


def small_client():
    c = RawClient("md5")
    err = c.login(db=SMALL)
    if err:
        raise RuntimeError(f"login to {SMALL} failed: {err}")
    return c


def wait_backend(pattern, limit=10):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if pooler_backends(f"query LIKE '{pattern}'"):
            return True
        time.sleep(0.05)
    return False


def rows(table, run):
    return pg_query(f"SELECT count(*) FROM {table} WHERE run = %s", (run,))[0][0]


def small_pool_serves(what):
    """Three new clients in a row on the 2-backend pool must be served."""
    try:
        for _ in range(3):
            with psycopg.connect(pooler_dsn(db=SMALL), autocommit=True) as c:
                c.execute("SELECT 1").fetchone()
        check(True, f"{what}: the 2-backend pool still serves new clients")
    except psycopg.Error as e:
        check(False, f"{what}: the 2-backend pool no longer serves: {e.sqlstate} {e}")
    gone = not pooler_backends("state = 'active' AND query NOT LIKE '%pg_stat_activity%' "
                               "AND (query LIKE 'COPY%' OR query LIKE '%pipe_sink%' "
                               "OR query LIKE '%pg_sleep%')")
    check(gone, f"{what}: no backend still busy with the aborted work")


def copy_half(run, in_txn):
    c = small_client()
    if in_txn:
        c.query("BEGIN")
        c.read_until_ready()
        c.query(f"INSERT INTO copy_sink VALUES ('{run}', -1, 'before copy')")
        c.read_until_ready()
    c.query("COPY copy_sink FROM STDIN")
    t, _ = c.read_msg()
    if not check(t == b"G", f"{run}: CopyInResponse"):
        c.close()
        return
    pad = "y" * 900
    line = lambda n: f"{run}\t{n}\t{pad}\n".encode()  # noqa: E731
    for n in range(2000):  # ~1.8 MB: half of what the COPY would carry
        c.send(msg(b"d", line(n)))
    seen = wait_backend("COPY copy_sink%")
    c.close()
    check(seen, f"{run}: the COPY was running on a backend when the client vanished")


def pipeline_nosync(run, flush):
    c = small_client()
    batch = b"".join(insert(run, n) for n in range(200))
    if flush:
        c.send(batch + FLUSH)
        got = 0
        while got < 200:  # ParseComplete, BindComplete, CommandComplete per statement
            t, _ = c.read_msg()
            got += t == b"C"
        check(True, f"{run}: 200 inserts executed (flushed, never synced)")
    else:
        c.send(batch * 10)  # 2000 unsynced statements, results never read
    c.close()


def pipeline_some_syncs(run):
    c = small_client()
    data = b""
    for batch in range(21):
        data += b"".join(insert(run, batch * 10 + i) for i in range(10))
        if batch < 20:
            data += SYNC  # the 21st batch has no Sync
    c.send(data)
    time.sleep(0.3)
    c.close()


def pipeline_begin(run):
    c = small_client()
    c.query("BEGIN")
    c.read_until_ready()
    c.send(b"".join(insert(run, n) for n in range(50)) + SYNC)
    c.read_until_ready()
    c.close()  # inside a transaction, never committed


def pipeline_sleep(run):
    c = small_client()
    c.send(insert(run, 1) + parse("SELECT pg_sleep(30)") + bind() + execute() + SYNC)
    seen = wait_backend("SELECT pg_sleep(30)")
    c.close()
    check(seen, f"{run}: pg_sleep(30) was running when the client vanished")


def settle():
    time.sleep(0.5)


def main():
    ws, dog = start_workers(RUN, 6, think=0.01)
    check(wait_progress(ws, 0, need=3, limit=30), "6 ledger workers running")

    for i in range(3):
        copy_half(f"f04-copy-{i}", in_txn=False)
        copy_half(f"f04-copytx-{i}", in_txn=True)
    settle()
    n = sum(rows("copy_sink", f"f04-copy{t}-{i}") for t in ("", "tx") for i in range(3))
    check(n == 0, f"half-sent COPYs committed nothing ({n} rows)")
    small_pool_serves("after 6 half-sent COPYs")

    for i in range(3):
        pipeline_nosync(f"f04-nosync-flushed-{i}", flush=True)
        pipeline_nosync(f"f04-nosync-unread-{i}", flush=False)
    settle()
    n = sum(rows("pipe_sink", f"f04-nosync-{k}-{i}") for k in ("flushed", "unread")
            for i in range(3))
    check(n == 0, f"pipelines without Sync committed nothing ({n} rows)")
    small_pool_serves("after 6 unsynced pipelines")

    for i in range(3):
        pipeline_some_syncs(f"f04-syncs-{i}")
    settle()
    for i in range(3):
        got = pg_query("SELECT n / 10, count(*) FROM pipe_sink WHERE run = %s GROUP BY 1",
                       (f"f04-syncs-{i}",))
        partial = [(b, k) for b, k in got if k != 10]
        check(not partial, f"f04-syncs-{i}: every synced batch all-or-nothing "
              f"({len(got)} batches committed, partial {partial})")
        tail = [b for b, _ in got if b == 20]
        check(not tail, f"f04-syncs-{i}: the unsynced last batch was not committed")
    small_pool_serves("after 3 pipelines cut after some Syncs")

    for i in range(3):
        pipeline_begin(f"f04-begin-{i}")
    settle()
    n = sum(rows("pipe_sink", f"f04-begin-{i}") for i in range(3))
    check(n == 0, f"pipelines inside an open BEGIN committed nothing ({n} rows)")
    small_pool_serves("after 3 pipelines inside BEGIN")

    for i in range(3):
        pipeline_sleep(f"f04-sleep-{i}")
    deadline = time.monotonic() + 10
    while pooler_backends("query = 'SELECT pg_sleep(30)' AND state = 'active'") and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    small_pool_serves("after 3 pipelines cut during pg_sleep(30)")

    stop_workers(ws, dog)
    check_invariants(RUN, ws)
    finish()


main()
