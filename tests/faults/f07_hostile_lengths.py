"""f07_hostile_lengths — messages whose length field lies, on both instances:
  - startup packets declaring 1 GiB, 0xFFFFFFFF, 0, 7, 8 (a bare protocol number),
    10001 (PostgreSQL's startup limit + 1), and CancelRequests of the wrong size;
  - a password message declaring 1 GiB during authentication;
  - after login, messages declaring 1 GiB, 0x7FFFFFFF, 0xFFFFFFFF and 3 bytes
    (the instances run with max_packet_size = 64MB);
  - a Query declaring 60 MB (allowed) of which 8 MB are sent before the client stalls
    and then closes: the pooler holds no more than it was sent (in transaction mode a
    Query is read whole before it goes to a backend, as a Parse is), and no backend is
    left holding part of it.
Each must get a clear error (ErrorResponse with a SQLSTATE) or a clean close promptly,
with no big allocation: VmPeak (which a 1 GiB buffer would raise even untouched) and
VmRSS stay within bounds, and the pooler stays up."""
import struct
import time

import psycopg

from faultlib import (ENV, INSTANCES, RSS_FACTOR, RawClient, check, check_invariants,
                      check_memory, finish, log, outcome_of_refusal, pooler_dsn, pooler_pid, rss_kb,
                      start_workers, stop_workers, wait_progress)

RUN = "f07"
RSS_BOUND_KB = 32 * 1024 * RSS_FACTOR
PEAK_BOUND_KB = 256 * 1024
GIB = 1 << 30
u32 = lambda n: struct.pack("!I", n)  # noqa: E731


def vm_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def judge(what, outcome):
    kind, info = outcome
    if kind == "error":
        good = bool(info.get("C")) and info.get("S") in ("FATAL", "ERROR")
        check(good, f"{what}: ErrorResponse {info.get('S')} {info.get('C')} "
              f"\"{info.get('M')}\"")
    else:
        check(kind == "closed", f"{what}: {kind} {info if info else ''}")


def raw_socket(inst):
    return RawClient(inst).sock


def hostile_startups(inst):
    cases = [
        ("1 GiB", u32(GIB) + u32(196608)),
        ("0xFFFFFFFF", u32(0xFFFFFFFF) + u32(196608)),
        ("0", u32(0)),
        ("7", u32(7) + b"\0\3\0"),
        ("8, bare protocol number", u32(8) + u32(196608)),
        ("10001 (limit + 1)", u32(10001) + u32(196608) + b"user\0wpuser\0"),
        ("CancelRequest of 12 bytes", u32(12) + u32(80877102) + u32(1)),
        ("CancelRequest of 20 bytes", u32(20) + u32(80877102) + u32(1) + u32(2) + u32(3)),
    ]
    for name, data in cases:
        s = raw_socket(inst)
        s.sendall(data)
        judge(f"{inst} startup length {name}", outcome_of_refusal(s))
        s.close()


def hostile_password(inst):
    c = RawClient(inst)
    c.startup()
    t, _ = c.read_msg()
    check(t == b"R", f"{inst}: authentication requested")
    c.send(b"p" + u32(GIB) + b"x" * 100)
    judge(f"{inst} password message declaring 1 GiB", outcome_of_refusal(c.sock))
    c.close()


def hostile_after_login(inst):
    for name, n in (("1 GiB", GIB), ("0x7FFFFFFF", 0x7FFFFFFF), ("0xFFFFFFFF", 0xFFFFFFFF),
                    ("3", 3)):
        c = RawClient(inst)
        check(c.login() is None, f"{inst}: logged in")
        c.send(b"Q" + u32(n) + b"SELECT 1")
        judge(f"{inst} Query declaring {name} after login", outcome_of_refusal(c.sock))
        c.close()


def half_sent_big_query(inst):
    pid = pooler_pid(inst)
    base = rss_kb(pid)
    with open(ENV[f"FT_WP_{inst.upper()}_LOG"], errors="replace") as f:
        log_from = len(f.read())
    c = RawClient(inst)
    check(c.login() is None, f"{inst}: logged in")
    total = 60 << 20
    body = b"SELECT '" + b"z" * (total - 4 - 8 - 3) + b"'\0"  # never fully sent
    c.send(b"Q" + u32(total))
    sent = 0
    chunk = b"z" * (1 << 20)
    c.send(body[:8])
    while sent < 8 << 20:
        c.send(chunk)
        sent += len(chunk)
    time.sleep(2)
    grew = rss_kb(pid) - base
    check_memory(grew < RSS_BOUND_KB, f"{inst}: 8 MB of a 60 MB Query sent and stalled: RSS grew "
          f"{grew} kB (< {RSS_BOUND_KB} kB)")
    c.close()
    # In transaction mode a simple Query is read whole before it goes to a backend (its
    # text is checked for statement names), so no backend gets part of it; a backend
    # that did (session mode, or a Query streamed) cannot be lent again and is closed
    # at once. Either way none may be left waiting for the rest until the drain timeout.
    time.sleep(12)  # past the 10 s drain timeout, which would log a stuck backend
    with open(ENV[f"FT_WP_{inst.upper()}_LOG"], errors="replace") as f:
        text = f.read()[log_from:]
    check("did not become idle after its client left" not in text,
          f"{inst}: no backend was left holding part of the Query")


def main():
    ws, dog = start_workers(RUN, 3, think=0.01)
    check(wait_progress(ws, 0, need=3, limit=30), "3 ledger workers running")
    base = {i: (rss_kb(pooler_pid(i)), vm_kb(pooler_pid(i), "VmPeak")) for i in INSTANCES}
    for inst in INSTANCES:
        hostile_startups(inst)
        hostile_password(inst)
        hostile_after_login(inst)
    for inst in INSTANCES:
        pid = pooler_pid(inst)
        rss, peak = rss_kb(pid), vm_kb(pid, "VmPeak")
        log(f"{inst}: RSS {base[inst][0]} -> {rss} kB, VmPeak {base[inst][1]} -> {peak} kB")
        check_memory(rss - base[inst][0] < RSS_BOUND_KB, f"{inst}: RSS grew {rss - base[inst][0]} kB")
        check_memory(peak - base[inst][1] < PEAK_BOUND_KB,
              f"{inst}: VmPeak grew {peak - base[inst][1]} kB: no 1 GiB allocation")
    half_sent_big_query("md5")
    try:
        with psycopg.connect(pooler_dsn(), autocommit=True) as c:
            v = c.execute("SELECT length(%s::text)", ("q" * 100000,)).fetchone()[0]
        check(v == 100000, "a normal 100 kB query still works")
    except psycopg.Error as e:
        check(False, f"a normal 100 kB query fails: {e}")
    stop_workers(ws, dog)
    check_invariants(RUN, ws)
    finish()


main()
