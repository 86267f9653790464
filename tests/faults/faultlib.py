"""faultlib — shared pieces of the fault-injection cases (tests/faults/README.md).

- Worker: a client thread running the ledger workload through the pooler. Every
  result it reads must carry its own client id and sequence number; it records which
  transactions certainly committed, which certainly did not, and which are unknown.
- Watchdog: turns a query that hangs into a recorded failure (and unblocks it).
- RawClient: the wire protocol by hand (md5 / SCRAM login, raw messages) for clients
  that misbehave on purpose.
- check_invariants(): what must hold after every case, whatever the fault was.

Cases call ok()/fail() and end with finish(), which exits 1 if anything failed.
"""
import base64
import hashlib
import hmac
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time

import psycopg

ENV = os.environ
ROOT = ENV["FT_ROOT"]
PG_DIR = ENV["FT_PG_DIR"]
PG_PORT = int(ENV["FT_PG_PORT"])
INSTANCES = {
    "md5": (int(ENV["FT_WP_MD5_PORT"]), int(ENV["FT_WP_MD5_PID"])),
    "scram": (int(ENV["FT_WP_SCRAM_PORT"]), int(ENV["FT_WP_SCRAM_PID"])),
}
USER, PASSWORD, DB = "wpuser", "wppass", "wpfault"
ASAN_SLACK_KB = int(ENV.get("FT_ASAN_SLACK_KB", "0"))  # RSS allowance under ASan
# Under TSan (make tsan) every byte the pooler writes has shadow memory beside it, so a
# bound on RSS growth from buffered data is scaled by this factor.
RSS_FACTOR = int(ENV.get("FT_RSS_FACTOR", "1"))
HANG_S = 30  # a single request outstanding this long is a hang
# WP_VALGRIND=1 (make faults-valgrind): the poolers run under valgrind, whose own memory
# (shadow memory, translations) dominates their VmRSS and VmPeak.
VALGRIND = ENV.get("WP_VALGRIND", "0") == "1"
T0 = time.monotonic()

_fails = []
_lock = threading.Lock()


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def ok(msg):
    log(f"ok   {msg}")


def fail(msg):
    with _lock:
        _fails.append(msg)
    log(f"FAIL {msg}")


def check(cond, msg):
    ok(msg) if cond else fail(msg)
    return cond


def check_memory(cond, msg):
    """check() for a bound on the pooler's RSS or VmPeak; skipped with a note under
    valgrind, where those figures are valgrind's and not the pooler's."""
    if VALGRIND:
        log(f"skip (valgrind: RSS/VmPeak are valgrind's own) {msg}")
        return True
    return check(cond, msg)


def finish():
    if _fails:
        log(f"{len(_fails)} failure(s)")
        sys.exit(1)
    log("all assertions held")
    sys.exit(0)


# ---------------------------------------------------------------- processes and PostgreSQL

def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def pooler_pid(inst="md5"):
    return INSTANCES[inst][1]


def pooler_dsn(inst="md5", db=DB, **extra):
    kw = dict(host="127.0.0.1", port=INSTANCES[inst][0], user=USER, password=PASSWORD,
              dbname=db, connect_timeout=10, sslmode="disable")
    kw.update(extra)
    return " ".join(f"{k}={v}" for k, v in kw.items())


def pg_admin():
    """A superuser connection straight to PostgreSQL (unix socket), never the pooler."""
    return psycopg.connect(host=PG_DIR, port=PG_PORT, user="postgres", dbname=DB,
                           autocommit=True, connect_timeout=30)


_admin = None


def pg_query(sql, params=None, attempts=3):
    """Run one statement on the cached superuser connection, reconnecting when a fault
    (restart, crash recovery) or a busy machine broke it."""
    global _admin
    for attempt in range(attempts):
        try:
            if _admin is None or _admin.closed:
                _admin = pg_admin()
            return _admin.execute(sql, params).fetchall()
        except psycopg.OperationalError:
            if _admin is not None:
                _admin.close()
            _admin = None
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


def pg_wait_ready(limit=60):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            pg_query("SELECT 1")
            return True
        except psycopg.Error:
            time.sleep(0.2)
    return False


def postmaster_pid():
    with open(os.path.join(PG_DIR, "data", "postmaster.pid")) as f:
        return int(f.readline())


def pg_children(pm):
    out = subprocess.run(["pgrep", "-P", str(pm)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def pg_ctl_script(*args):
    subprocess.run([os.path.join(ROOT, "scripts/pg-throwaway.sh"), *args], check=True,
                   stdout=subprocess.DEVNULL)


def pooler_backends(where="TRUE"):
    return pg_query("SELECT pid, state, wait_event, query FROM pg_stat_activity "
                    f"WHERE usename = 'wpuser' AND {where}")


# ---------------------------------------------------------------- ledger workers

class Worker(threading.Thread):
    """One client of the ledger workload. Each iteration is either a transaction
    (BEGIN; INSERT ... RETURNING; SELECT; COMMIT) or an autocommit SELECT; every row
    read back must carry (cid, seq) of this very request."""

    def __init__(self, run, cid, inst="md5", db=DB, think=0.0):
        super().__init__(daemon=True, name=f"worker-{cid}")
        self.run_name, self.cid, self.inst, self.db, self.think = run, cid, inst, db, think
        self.stop = threading.Event()
        self.conn = None
        self.committed = {}  # seq -> amount, COMMIT returned success
        self.aborted = set()  # seq whose COMMIT was never sent: must not be in the table
        self.unknown = set()  # seq whose COMMIT was sent but no answer came
        self.errors = {}  # sqlstate (or exception class) -> count
        self.mismatches = []
        self.ok_times = []  # monotonic time of each successful request
        self.busy_since = None  # set while a request is outstanding (for the Watchdog)
        self.hangs = 0
        self.seq = 0

    def _connect(self):
        self.busy_since = time.monotonic()
        self.conn = psycopg.connect(pooler_dsn(self.inst, self.db), autocommit=True)
        self.busy_since = None

    def _expect(self, row, want, what):
        if tuple(row) != tuple(want):
            self.mismatches.append(f"{what}: got {row!r}, want {want!r}")

    def _call(self, sql, params):
        self.busy_since = time.monotonic()
        try:
            cur = self.conn.execute(sql, params)
            rows = cur.fetchall() if cur.description else None
            return cur, rows
        finally:
            self.busy_since = None

    def _txn(self, seq):
        amount = random.randint(1, 10**6)
        phase = "before-commit"
        try:
            self._call("BEGIN", None)
            _, rows = self._call("INSERT INTO ledger VALUES (%s, %s, %s, %s) "
                                 "RETURNING cid, seq, amount",
                                 (self.run_name, self.cid, seq, amount))
            self._expect(rows[0] if len(rows) == 1 else rows, (self.cid, seq, amount), "insert")
            tag = f"c{self.cid}s{seq}"
            _, rows = self._call("SELECT %s::int, %s::int, %s::text", (self.cid, seq, tag))
            self._expect(rows[0] if len(rows) == 1 else rows, (self.cid, seq, tag), "select")
            if self.think:
                time.sleep(random.random() * self.think)
            phase = "commit"
            cur, _ = self._call("COMMIT", None)
            if cur.statusmessage != "COMMIT":
                self.mismatches.append(f"COMMIT answered {cur.statusmessage!r}")
                self.aborted.add(seq)
                return
            self.committed[seq] = amount
        except BaseException:
            (self.unknown if phase == "commit" else self.aborted).add(seq)
            raise

    def _read(self, seq):
        tag = f"r{self.cid}:{seq}:" + "x" * random.randint(0, 200)
        _, rows = self._call("SELECT %s::int AS cid, %s::int AS seq, %s::text AS tag",
                             (self.cid, seq, tag))
        self._expect(rows[0] if len(rows) == 1 else rows, (self.cid, seq, tag), "read")

    def run(self):
        while not self.stop.is_set():
            self.seq += 1
            try:
                if self.conn is None:
                    self._connect()
                if random.random() < 0.7:
                    self._txn(self.seq)
                else:
                    self._read(self.seq)
                self.ok_times.append(time.monotonic())
            except psycopg.Error as e:
                key = getattr(e, "sqlstate", None) or type(e).__name__
                self.errors[key] = self.errors.get(key, 0) + 1
                self._drop()
                self.stop.wait(0.2 + random.random() * 0.3)
            except Exception as e:  # a protocol mix-up would show here
                self.mismatches.append(f"unexpected {type(e).__name__}: {e}")
                self._drop()
        self._drop()

    def _drop(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
        self.conn = None
        self.busy_since = None

    def ok_after(self, t):
        return sum(1 for x in self.ok_times if x > t)

    def unstick(self):
        """Called by the Watchdog: shut the socket down so the blocked call fails."""
        conn = self.conn
        if conn is None:
            return
        try:
            fd = conn.pgconn.socket
            s = socket.socket(fileno=os.dup(fd))
            s.shutdown(socket.SHUT_RDWR)
            s.close()
        except Exception:
            pass


class Watchdog(threading.Thread):
    def __init__(self, workers):
        super().__init__(daemon=True, name="watchdog")
        self.workers, self.stop = workers, threading.Event()

    def run(self):
        while not self.stop.wait(1.0):
            now = time.monotonic()
            for w in self.workers:
                since = w.busy_since
                if since is not None and now - since > HANG_S:
                    w.hangs += 1
                    fail(f"worker {w.cid}: request outstanding for {now - since:.0f} s (hang)")
                    w.busy_since = None
                    w.unstick()


def start_workers(run, n, cid_base=0, **kw):
    ws = [Worker(run, cid_base + i, **kw) for i in range(n)]
    for w in ws:
        w.start()
    dog = Watchdog(ws)
    dog.start()
    return ws, dog


def stop_workers(ws, dog):
    for w in ws:
        w.stop.set()
    deadline = time.monotonic() + HANG_S + 15
    for w in ws:
        w.join(max(0.1, deadline - time.monotonic()))
        if w.is_alive():
            fail(f"worker {w.cid} did not stop (stuck in a call)")
            w.unstick()
    dog.stop.set()
    errs = {}
    for w in ws:
        for k, v in w.errors.items():
            errs[k] = errs.get(k, 0) + v
    log(f"workers: {sum(len(w.committed) for w in ws)} committed, "
        f"{sum(len(w.aborted) for w in ws)} rolled back, {sum(len(w.unknown) for w in ws)} "
        f"unknown, {sum(len(w.ok_times) for w in ws)} requests ok; errors {errs or 'none'}")
    return errs


def wait_progress(ws, since, need=1, limit=45):
    """Every worker completes `need` requests after `since` (monotonic) within `limit` s."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if all(w.ok_after(since) >= need for w in ws):
            return True
        time.sleep(0.2)
    return False


# ---------------------------------------------------------------- invariants

def pooler_serves(inst):
    pid = pooler_pid(inst)
    if not os.path.exists(f"/proc/{pid}"):
        return f"process {pid} is gone"
    try:
        with psycopg.connect(pooler_dsn(inst), autocommit=True) as c:
            v = c.execute("SELECT 1").fetchone()[0]
            return None if v == 1 else f"SELECT 1 returned {v!r}"
    except psycopg.Error as e:
        return f"SELECT 1 failed: {e}"


def pooler_pools(inst):
    """The pooler's own view of its pools: GET /pools on its stats socket."""
    path = os.path.join(ENV["FT_TMP"], f"{inst}.stats")
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(b"GET /pools HTTP/1.1\r\nHost: warmpool\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])["pools"]


def pooler_unsettled(inst, limit=15.0):
    """Pools that still count clients, waiting clients, or backends that are not idle
    once every client has gone ([] when all settled within `limit` s)."""
    deadline = time.monotonic() + limit
    while True:
        bad = []
        for p in pooler_pools(inst):
            cl, sv = p["clients"], p["servers"]
            busy = {k: sv[k] for k in ("active", "connecting", "resetting", "draining") if sv[k]}
            if any(cl.values()) or busy or sv["total"] > p["max_pool_size"]:
                bad.append(f"{p['database']}: clients {cl}, servers {sv}")
        if not bad or time.monotonic() > deadline:
            return bad
        time.sleep(0.25)


def no_idle_in_transaction(limit=10.0):
    deadline = time.monotonic() + limit
    while True:
        rows = pooler_backends("state LIKE 'idle in transaction%'")
        if not rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.25)


def check_ledger(run, workers):
    rows = pg_query("SELECT cid, seq, amount FROM ledger WHERE run = %s", (run,))
    in_db = {}
    for cid, seq, amount in rows:
        in_db.setdefault(cid, {})[seq] = amount
    problems = 0
    for w in workers:
        db = in_db.pop(w.cid, {})
        missing = [s for s in w.committed if s not in db]
        wrong = [s for s, a in w.committed.items() if s in db and db[s] != a]
        local = (len(w.committed), sum(w.committed.values()))
        kept = [db[s] for s in w.committed if s in db]
        remote = (len(kept), sum(kept))
        ghosts = [s for s in db if s in w.aborted]
        strays = [s for s in db if s not in w.committed and s not in w.unknown
                  and s not in w.aborted]
        for what, bad in (("committed rows missing", missing), ("rows with another amount", wrong),
                          ("rows whose transaction never sent COMMIT", ghosts),
                          ("rows nobody wrote", strays)):
            if bad:
                problems += 1
                fail(f"ledger client {w.cid}: {len(bad)} {what}: seq {sorted(bad)[:10]}")
        if local != remote:
            problems += 1
            fail(f"ledger client {w.cid}: count/sum {remote} in the database, {local} recorded")
    for cid in in_db:
        problems += 1
        fail(f"ledger: rows for client {cid}, which no worker of this case is")
    return problems


def check_invariants(run, workers=(), instances=("md5", "scram")):
    """The invariants every case must leave behind (README.md, 'Invariants')."""
    for inst in instances:
        err = pooler_serves(inst)
        check(err is None, f"invariant: warmpool {inst} alive and serves SELECT 1"
              + (f" ({err})" if err else ""))
    bad = [m for w in workers for m in w.mismatches]
    check(not bad, f"invariant: no client saw data that is not its own ({len(bad)} mismatches)"
          + (f": {bad[:5]}" if bad else ""))
    hangs = sum(w.hangs for w in workers)
    check(hangs == 0, f"invariant: no worker request hung ({hangs} hangs)")
    for inst in instances:
        bad = pooler_unsettled(inst)
        check(not bad, f"invariant: warmpool {inst} counts no client and no busy backend "
              f"once all clients left ({bad or 'none'})")
    left = no_idle_in_transaction()
    check(not left, f"invariant: no idle-in-transaction backend of the pooler ({left})")
    if workers:
        n = sum(len(w.committed) for w in workers)
        if check_ledger(run, workers) == 0:
            ok(f"invariant: all {n} committed ledger rows present, count/sum per client match, "
               "no row of a transaction that never committed")


# ---------------------------------------------------------------- the wire protocol by hand

_salted = {}


class RawClient:
    """A client speaking the v3 protocol itself, for misbehaving on purpose."""

    def __init__(self, inst="md5", timeout=15.0):
        self.sock = socket.create_connection(("127.0.0.1", INSTANCES[inst][0]), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    @staticmethod
    def msg(type_byte, body=b""):
        return type_byte + struct.pack("!I", len(body) + 4) + body

    def startup(self, user=USER, db=DB):
        body = struct.pack("!I", 196608)
        for k, v in (("user", user), ("database", db)):
            body += k.encode() + b"\0" + v.encode() + b"\0"
        body += b"\0"
        self.send(struct.pack("!I", len(body) + 4) + body)

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def read_msg(self):
        """(type, body); raises EOFError on a close and socket.timeout on silence."""
        self._fill(5)
        t, n = self.buf[:1], struct.unpack("!I", self.buf[1:5])[0]
        self._fill(1 + n)
        body, self.buf = self.buf[5:1 + n], self.buf[1 + n:]
        return t, body

    @staticmethod
    def error_fields(body):
        out = {}
        for part in body.split(b"\0"):
            if part:
                out[part[:1].decode()] = part[1:].decode(errors="replace")
        return out

    def login(self, password=PASSWORD, user=USER, db=DB):
        """Log in; returns None when ReadyForQuery came, else the error fields (dict)."""
        self.startup(user, db)
        while True:
            t, body = self.read_msg()
            if t == b"E":
                return self.error_fields(body)
            if t == b"Z":
                return None
            if t != b"R":
                continue
            code = struct.unpack("!I", body[:4])[0]
            if code == 5:  # md5
                inner = hashlib.md5((password + user).encode()).hexdigest()
                outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                self.send(self.msg(b"p", b"md5" + outer.encode() + b"\0"))
            elif code == 3:
                self.send(self.msg(b"p", password.encode() + b"\0"))
            elif code == 10:
                self._scram_first()
            elif code == 11:
                self._scram_final(password, body[4:])
            elif code in (0, 12):
                pass
            else:
                raise RuntimeError(f"unexpected auth request {code}")

    def _scram_first(self):
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"
        data = ("n,," + self.first_bare).encode()
        self.send(self.msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(data)) + data))

    def _scram_final(self, password, server_first):
        attrs = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
        key = (password, attrs["s"], int(attrs["i"]))
        if key not in _salted:  # 4096 rounds per attempt would make storms client-bound
            _salted[key] = hashlib.pbkdf2_hmac("sha256", password.encode(),
                                               base64.b64decode(attrs["s"]), int(attrs["i"]))
        salted = _salted[key]
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored = hashlib.sha256(client_key).digest()
        final_bare = f"c=biws,r={attrs['r']}"
        auth_msg = f"{self.first_bare},{server_first.decode()},{final_bare}".encode()
        sig = hmac.new(stored, auth_msg, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        final = f"{final_bare},p={base64.b64encode(proof).decode()}"
        self.send(self.msg(b"p", final.encode()))

    def query(self, sql):
        self.send(self.msg(b"Q", sql.encode() + b"\0"))

    def read_until_ready(self):
        msgs = []
        while True:
            t, body = self.read_msg()
            msgs.append((t, body))
            if t == b"Z":
                return msgs

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def outcome_of_refusal(sock, limit=10.0):
    """What a refused connection got: ('error', fields), ('closed', None) or
    ('timeout'|'data', info). Reads until the peer closes or `limit` passes."""
    sock.settimeout(limit)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return ("timeout", data)
    except ConnectionResetError:
        pass
    if not data:
        return ("closed", None)
    if data[:1] == b"E" and len(data) >= 5:
        n = struct.unpack("!I", data[1:5])[0]
        if len(data) >= 1 + n:
            return ("error", RawClient.error_fields(data[5:1 + n]))
    return ("data", data[:200])
