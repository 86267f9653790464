"""f09_relay_state — the release decision follows what the backend still owes.

On the `small` pool (2 backends, transaction mode) one psycopg client holds a backend
inside a transaction, so the clients below share the other one. Each case is a
message sequence that once made one client receive another's error or settings, or
kept a backend from ever being released:
  1. an unknown message type ('z'): only its sender gets FATAL 08P01, and the client
     queued behind it gets its own answer;
  2. a simple Query inside skip-until-Sync (Parse/Bind/Execute of 1/0, Query, Sync):
     PostgreSQL ignores the Query; the backend is released after the Sync's
     ReadyForQuery, not kept waiting for a second one;
  3. a parameter sync that fails (a client with an invalid TimeZone, after one with
     its own search_path and statement_timeout): that client is refused with
     PostgreSQL's 22023, and the next client runs with the server's defaults;
  4. Close then a header declaring 0xFFFFFFFF bytes, then a stream of data: 08P01 at
     once, memory stays flat;
  5. a client that leaves while what it sent is only partly written to the backend:
     the backend is closed at once, not left to the drain timeout;
  6. unknown message types the refusal must not wait on: a type byte of 0 (it was
     taken for "no unknown type" and the client hung with its Parse never written),
     and 'z' right behind messages that get no answer (a Flush; a Bind skipped after
     an error), where the refusal waited for an answer that never came.
After every case no backend is left draining and the pooler log never says a backend
"did not become idle after its client left"."""
import struct
import time

import psycopg

from faultlib import (ENV, RawClient, check, check_invariants, check_memory, finish, log,
                      pg_query, pooler_dsn, pooler_pid, pooler_unsettled, rss_kb)

INST = "md5"
DB = "small"
u32 = lambda n: struct.pack("!I", n)  # noqa: E731
STUCK = "did not become idle after its client left"


class Client(RawClient):
    """RawClient with extra startup parameters."""

    def __init__(self, params=None, timeout=15.0):
        super().__init__(INST, timeout=timeout)
        self.params = params or {}

    def startup(self, user="wpuser", db=DB):
        body = struct.pack("!I", 196608)
        pairs = [("user", user), ("database", db)] + list(self.params.items())
        for k, v in pairs:
            body += k.encode() + b"\0" + v.encode() + b"\0"
        body += b"\0"
        self.send(struct.pack("!I", len(body) + 4) + body)

    def login_ok(self, what):
        err = self.login(db=DB)
        check(err is None, f"{what}: logged in ({err})")

    def exchange(self, what):
        """Messages up to ReadyForQuery, or up to the close or silence that ended the
        wait (then the last item is (None, reason))."""
        msgs = []
        try:
            while True:
                t, body = self.read_msg()
                msgs.append((t, body))
                if t == b"Z":
                    return msgs
        except (EOFError, OSError) as e:
            log(f"{what}: {type(e).__name__} {e}")
            return msgs + [(None, str(e))]


def log_mark():
    with open(ENV["FT_WP_MD5_LOG"], "rb") as f:
        return f.seek(0, 2)


def log_since(mark):
    with open(ENV["FT_WP_MD5_LOG"], "rb") as f:
        f.seek(mark)
        return f.read().decode(errors="replace")


def holder():
    """A psycopg client inside a transaction: one of the two backends stays with it."""
    h = psycopg.connect(pooler_dsn(INST, db=DB))
    h.execute("SELECT 1")
    return h


def rows_of(msgs):
    out = []
    for t, body in msgs or []:
        if t == b"D":
            n = struct.unpack("!H", body[:2])[0]
            off, row = 2, []
            for _ in range(n):
                ln = struct.unpack("!i", body[off:off + 4])[0]
                off += 4
                row.append(None if ln < 0 else body[off:off + ln].decode())
                off += max(ln, 0)
            out.append(row)
    return out


def errors_of(msgs):
    return [RawClient.error_fields(b) for t, b in msgs or [] if t == b"E"]


def settled(what):
    bad = pooler_unsettled(INST)
    check(not bad, f"{what}: pools settle ({bad})")


def case_unknown_type():
    h = holder()
    a, b = Client(), Client()
    a.login_ok("1 A")
    b.login_ok("1 B")
    a.query("BEGIN")
    check(a.exchange("1 A BEGIN")[-1][0] == b"Z", "1: A is in a transaction on the free backend")
    b.query("SELECT 'B-answer'")  # waits for A's backend
    time.sleep(0.2)
    a.send(RawClient.msg(b"Q", b"COMMIT\0") + RawClient.msg(b"z", b"junk"))
    got = a.exchange("1 A COMMIT")
    check(got and got[-1][0] == b"Z" and not errors_of(got), "1: A's COMMIT is answered")
    try:
        t, body = a.read_msg()
        f = RawClient.error_fields(body) if t == b"E" else {}
    except (EOFError, OSError) as e:
        t, f = None, {"error": str(e)}
    check(t == b"E" and f.get("S") == "FATAL" and f.get("C") == "08P01" and
          "invalid frontend message type 122" in f.get("M", ""),
          f"1: A gets FATAL 08P01 for type 'z' ({t} {f})")
    got = b.exchange("1 B")
    check(rows_of(got) == [["B-answer"]] and not errors_of(got),
          f"1: B queued behind gets its own answer, no one else's error ({errors_of(got)})")
    a.close()
    b.close()
    h.rollback()
    h.close()


def extended(sql):
    body_p = b"\0" + sql.encode() + b"\0" + struct.pack("!H", 0)
    return (RawClient.msg(b"P", body_p) + RawClient.msg(b"B", b"\0\0" + struct.pack("!HHH", 0, 0, 0)) +
            RawClient.msg(b"E", b"\0" + u32(0)))


def case_query_in_skip():
    h = holder()
    mark = log_mark()
    a, b = Client(), Client()
    a.login_ok("2 A")
    b.login_ok("2 B")
    a.send(extended("SELECT 1/0") + RawClient.msg(b"Q", b"SELECT 2\0") + RawClient.msg(b"S"))
    got = a.exchange("2 A")
    kinds = [t for t, _ in got or []]
    # 1/0 is folded when the unnamed statement is planned, at Bind.
    check(kinds == [b"1", b"E", b"Z"] and errors_of(got)[0].get("C") == "22012",
          f"2: A gets ParseComplete, 22012, ReadyForQuery and nothing for the skipped "
          f"Execute and Query ({kinds})")
    b.query("SELECT 'B-after-skip'")
    got = b.exchange("2 B")
    check(rows_of(got) == [["B-after-skip"]],
          "2: B is served while A stays connected (the backend was released)")
    a.query("SELECT 3")
    check(rows_of(a.exchange("2 A again")) == [["3"]], "2: A still works")
    a.close()
    b.close()
    h.rollback()
    h.close()
    settled("2")
    check(STUCK not in log_since(mark), "2: no backend waited for the drain timeout")


def case_failed_param_sync():
    h = holder()
    default_path = pg_query("SHOW search_path")[0][0]
    a = Client({"options": "-c search_path=evil,pg_catalog -c statement_timeout=4242"})
    a.login_ok("3 A")
    a.query("SELECT current_setting('search_path'), current_setting('statement_timeout')")
    rows = rows_of(a.exchange("3 A"))
    check([[r[0].replace(" ", ""), r[1]] for r in rows] == [["evil,pg_catalog", "4242ms"]],
          f"3: A runs with its own search_path and statement_timeout ({rows})")
    a.close()
    b = Client({"TimeZone": "Mars/Olympus_Mons"})
    b.login_ok("3 B")
    b.query("SELECT current_setting('search_path')")
    got = b.exchange("3 B")
    errs = errors_of(got)
    check(not rows_of(got) and len(errs) == 1 and errs[0].get("S") == "FATAL" and
          errs[0].get("C") == "22023" and "TimeZone" in errs[0].get("M", ""),
          f"3: B with an invalid TimeZone is refused with FATAL 22023 ({errs}, rows "
          f"{rows_of(got)})")
    b.close()
    c = Client()
    c.login_ok("3 C")
    c.query("SELECT current_setting('search_path'), current_setting('statement_timeout')")
    check(rows_of(c.exchange("3 C")) == [[default_path, "0"]],
          "3: C, with no parameters, runs with the server's defaults, not A's")
    c.close()
    h.rollback()
    h.close()


def read_until_error(c, what):
    """Message types up to the first ErrorResponse and its fields, or {"error": reason}
    when the connection ended or went silent first."""
    kinds = []
    try:
        while True:
            t, body = c.read_msg()
            if t == b"E":
                return kinds, RawClient.error_fields(body)
            kinds.append(t)
    except (EOFError, OSError) as e:
        log(f"{what}: {type(e).__name__} {e}")
        return kinds, {"error": str(e)}


def case_unknown_type_at_once():
    h = holder()
    parse = RawClient.msg(b"P", b"\0SELECT 1\0" + struct.pack("!H", 0))
    cases = [
        # label, bytes sent first and the SQLSTATE they get, then the bytes whose last
        # message has the unknown type, the answers before the FATAL, and that type
        ("a Parse, then type 0", b"", None, parse + RawClient.msg(b"\0", b"junk"), [b"1"], 0),
        ("a Flush, then 'z'", b"", None, RawClient.msg(b"H") + RawClient.msg(b"z", b"junk"),
         [], 122),
        ("a Bind skipped after an error, then 'z'",
         RawClient.msg(b"P", b"\0SELECT (\0" + struct.pack("!H", 0)) + RawClient.msg(b"H"),
         "42601", RawClient.msg(b"B", b"\0\0" + struct.pack("!HHH", 0, 0, 0)) +
         RawClient.msg(b"z", b"junk"), [], 122),
    ]
    for label, first, first_code, then, kinds_wanted, typ in cases:
        a = Client(timeout=5.0)
        a.login_ok(f"6 {label}")
        if first:
            a.send(first)
            kinds, f = read_until_error(a, f"6 {label}, first")
            check(f.get("C") == first_code, f"6: {label}: first {first_code} ({kinds} {f})")
        start = time.monotonic()
        a.send(then)
        kinds, f = read_until_error(a, f"6 {label}")
        took = time.monotonic() - start
        check(kinds == kinds_wanted and f.get("S") == "FATAL" and f.get("C") == "08P01" and
              f"invalid frontend message type {typ}" in f.get("M", "") and took < 4,
              f"6: {label}: {kinds_wanted} then FATAL 08P01 at once ({kinds} {f}, {took:.1f} s)")
        a.close()
    b = Client()
    b.login_ok("6 B")
    b.query("SELECT 'B-after-refusals'")
    check(rows_of(b.exchange("6 B")) == [["B-after-refusals"]], "6: the next client is served")
    b.close()
    h.rollback()
    h.close()
    settled("6")


def case_close_then_huge_length():
    pid = pooler_pid(INST)
    before = rss_kb(pid)
    a = Client(timeout=5.0)
    a.login_ok("4 A")
    a.send(RawClient.msg(b"C", b"Sx\0") + b"Q" + u32(0xFFFFFFFF))
    outcome, sent = None, 0
    chunk = b"x" * 65536
    try:
        while sent < 64 << 20:
            a.sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    try:
        while True:
            t, body = a.read_msg()
            if t == b"E":
                outcome = RawClient.error_fields(body)
                break
    except (EOFError, OSError):
        pass
    grown = rss_kb(pid) - before
    check(outcome is not None and outcome.get("C") == "08P01",
          f"4: Close then length 0xFFFFFFFF gets 08P01 ({outcome}, {sent >> 20} MB sent)")
    check_memory(grown < 16 * 1024, f"4: pooler RSS grew {grown} kB (< 16 MB)")
    a.close()


def case_leave_mid_write():
    """A sleeping backend reads nothing: the client sends Syncs (5 bytes each, so the
    pooler always holds whole messages) until its own socket is full, which happens
    once the pooler has more scanned than the backend's socket would take, then
    leaves. The backend then holds a cut message: it must be closed at once."""
    h = holder()
    mark = log_mark()
    a = Client()
    a.login_ok("5 A")
    a.query("SELECT pg_sleep(5)")
    syncs = RawClient.msg(b"S") * 13107
    a.sock.setblocking(False)
    sent, pending, deadline = 0, syncs, time.monotonic() + 3
    while sent < 256 << 20 and time.monotonic() < deadline:
        try:
            n = a.sock.send(pending)
        except BlockingIOError:
            time.sleep(0.1)  # full: once more after a pause, in case it was a blip
            try:
                n = a.sock.send(pending)
            except BlockingIOError:
                break
        sent += n
        pending = pending[n:] or syncs
    log(f"5: {sent >> 10} kB of Syncs sent before the client's socket was full")
    a.close()
    b = Client()
    b.login_ok("5 B")
    b.query("SELECT 'B-after-leave'")
    check(rows_of(b.exchange("5 B")) == [["B-after-leave"]], "5: the next client is served")
    b.close()
    h.rollback()
    h.close()
    settled("5")
    check(STUCK not in log_since(mark),
          "5: the backend left mid-message was closed at once, not after the drain timeout")


for case in (case_unknown_type, case_query_in_skip, case_failed_param_sync,
             case_close_then_huge_length, case_leave_mid_write, case_unknown_type_at_once):
    log(f"-- {case.__name__}")
    try:
        case()
    except Exception as e:  # a broken case must not hide the others
        check(False, f"{case.__name__}: {type(e).__name__}: {e}")
check_invariants("f09")
finish()
