"""prepared_lib — shared helpers for the prepared-statement tests (t2*_prepared_*, issue 8).

Run with /usr/bin/python3 (Debian's, which has psycopg 3 and asyncpg).

- ok()/fail()/check(): one "ok: ..." line per passed check; the first failure prints
  "FAIL: ..." and exits 1.
- Warmpool: starts a private warmpool on a free port with the test's own settings
  (pool sizes, max_prepared_statements, ...), md5 client auth with a plaintext userlist,
  transaction mode; waits until it accepts; stop() sends SIGQUIT and asserts a clean exit.
  With WP_DIRECT=1 (run.sh --direct) nothing is started and the "pooler" address is
  PostgreSQL itself, so the same checks validate the tests; pooler-only checks are
  skipped (see DIRECT).
- superuser(): direct psycopg connection to PostgreSQL (unix socket, trust).
- make_db(): a fresh database owned by the test user, one per test.
- Raw: a tiny protocol-v3 client (trust, cleartext, md5, SCRAM-SHA-256) to send exact
  message sequences and record every message the server answers.
"""
import base64
import hashlib
import hmac
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ENV = os.environ
DIRECT = ENV.get("WP_DIRECT", "0") == "1"
USER = ENV.get("WP_USER", "wpuser")
PASSWORD = ENV.get("WP_PASSWORD", "wppass")
PG_HOST = ENV.get("PG_HOST", "")  # unix socket directory of PostgreSQL (trust)
PG_PORT = int(ENV.get("PG_PORT", "5432"))
PG_SUPERUSER = ENV.get("PG_SUPERUSER", "postgres")
WARMPOOL = ENV.get("WARMPOOL") or os.path.join(ROOT, "warmpool")
# WP_VALGRIND=1: $WARMPOOL runs the pooler under valgrind; waits on its start and stop
# are this many times longer.
SLOW = 6 if ENV.get("WP_VALGRIND", "0") == "1" else 1
if not os.path.isabs(WARMPOOL):
    WARMPOOL = os.path.join(ROOT, WARMPOOL)

T0 = time.time()


def ok(msg):
    print(f"ok: {msg}", flush=True)


def note(msg):
    print(f"note: {msg}", flush=True)


class TestFailure(Exception):
    pass


_cleanups = []


def at_exit(fn):
    _cleanups.append(fn)


def _run_cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - best effort on the way out
            print(f"cleanup: {e!r}", file=sys.stderr)


_failed = False


def fail(msg):
    global _failed
    _failed = True
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    _run_cleanups_and_exit(1)


def _run_cleanups_and_exit(rc):
    sys.stdout.flush()
    _run_cleanups()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


def check(cond, msg, detail=""):
    if not cond:
        fail(msg + (f": {detail}" if detail else ""))
    ok(msg)


def main(fn):
    """Run fn(); any exception is a failure; clean up (stop warmpools) either way."""
    def on_term(signum, frame):
        print(f"FAIL: killed by signal {signum} (time limit?)", file=sys.stderr, flush=True)
        _run_cleanups_and_exit(1)
    signal.signal(signal.SIGTERM, on_term)
    try:
        fn()
    except SystemExit as e:
        _run_cleanups_and_exit(e.code if isinstance(e.code, int) else 1)
    except BaseException as e:  # noqa: BLE001
        global _failed
        _failed = True
        import traceback
        traceback.print_exc()
        print(f"FAIL: unexpected exception {e!r}", file=sys.stderr, flush=True)
        _run_cleanups_and_exit(1)
    _run_cleanups_and_exit(0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- PostgreSQL, directly

def superuser(dbname="postgres", autocommit=True):
    import psycopg
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, dbname=dbname,
                           autocommit=autocommit)


def su_query(sql, params=None, dbname="postgres"):
    with superuser(dbname) as conn:
        return conn.execute(sql, params).fetchall()


def make_db(name):
    """A fresh database owned by the test user (dropped first if a previous run left it)."""
    with superuser() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{USER}"')
    return name


def backend_pids(dbname, user=USER):
    """pids of client backends of user in dbname, seen directly on PostgreSQL."""
    rows = su_query("SELECT pid FROM pg_stat_activity WHERE datname = %s AND usename = %s "
                    "AND backend_type = 'client backend' ORDER BY pid", (dbname, user))
    return [r[0] for r in rows]


def terminate(pids, wait=10.0):
    with superuser() as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.time() + wait
        while time.time() < deadline:
            left = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)",
                                (list(pids),)).fetchone()[0]
            if left == 0:
                return
            time.sleep(0.05)
    fail(f"backends {pids} still alive {wait} s after pg_terminate_backend")


# ---------------------------------------------------------------- warmpool

class Warmpool:
    """A private warmpool. dbs: {name: {"dbname": real db, "max_pool_size": n, ...}}."""

    def __init__(self, label, dbs, **settings):
        self.label = label
        self.dbs = dbs
        self.settings = settings
        self.proc = None
        self.dir = None
        if DIRECT:
            self.host = ENV.get("WP_HOST", "127.0.0.1")
            self.port = int(ENV.get("WP_PORT", str(PG_PORT)))
        else:
            self.host = "127.0.0.1"
            self.port = None

    def dbname(self, name):
        """The name a client uses: the pool name, or the real database when direct."""
        return self.dbs[name]["dbname"] if DIRECT else name

    def start(self):
        if DIRECT:
            return self
        self.dir = tempfile.mkdtemp(prefix=f"wp-{self.label}.")
        self.port = free_port()
        with open(os.path.join(self.dir, "users.txt"), "w") as f:
            f.write(f'"{USER}" "{PASSWORD}"\n')
        g = {
            "listen_addr": "127.0.0.1",
            "listen_port": self.port,
            "unix_socket_dir": self.dir,
            "auth_type": "md5",
            "auth_file": os.path.join(self.dir, "users.txt"),
            "pool_mode": "transaction",
            "min_pool_size": 0,
            "max_pool_size": 10,
            "reserve_pool_size": 0,
            "max_client_conn": 1000,
            "server_reset_query": "DISCARD ALL",
            "logfile": os.path.join(self.dir, "warmpool.log"),
            "verbose": 1,
        }
        g.update(self.settings)
        lines = ["[warmpool]"] + [f"{k} = {v}" for k, v in g.items()] + ["", "[databases]"]
        for name, d in self.dbs.items():
            d = dict(d)
            real = d.pop("dbname")
            extra = "".join(f" {k}={v}" for k, v in d.items())
            lines.append(f"{name} = host=127.0.0.1 port={PG_PORT} dbname={real}{extra}")
        self.ini = os.path.join(self.dir, "warmpool.ini")
        with open(self.ini, "w") as f:
            f.write("\n".join(lines) + "\n")
        chk = subprocess.run([WARMPOOL, "--check", "-c", self.ini], capture_output=True,
                             text=True)
        if chk.returncode != 0:
            fail(f"warmpool --check rejected {self.ini}: {(chk.stdout + chk.stderr).strip()}"
                 f"\n--- config:\n" + "\n".join(lines))
        self.stderr = open(os.path.join(self.dir, "stderr.log"), "w")
        self.proc = subprocess.Popen([WARMPOOL, "-c", self.ini], stdout=self.stderr,
                                     stderr=self.stderr, stdin=subprocess.DEVNULL)
        at_exit(self.stop)
        deadline = time.time() + 10 * SLOW
        while time.time() < deadline:
            if self.proc.poll() is not None:
                fail(f"warmpool ({self.label}) exited at startup with {self.proc.returncode}:"
                     f"\n{self.log_tail()}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                ok(f"warmpool ({self.label}) accepts on {self.host}:{self.port}, config "
                   + ", ".join(f"{k}={v}" for k, v in self.settings.items()))
                return self
            except OSError:
                time.sleep(0.05)
        fail(f"warmpool ({self.label}) not accepting after {10 * SLOW} s")

    def log_text(self):
        out = ""
        for f in ("warmpool.log", "stderr.log"):
            p = os.path.join(self.dir or "/nonexistent", f)
            if os.path.exists(p):
                with open(p, errors="replace") as fh:
                    out += fh.read()
        return out

    def log_tail(self, n=40):
        return "\n".join("    " + line for line in self.log_text().splitlines()[-n:])

    def responsive(self, timeout=3.0):
        """Does a new client still get logged in? (False when warmpool hangs or died.)"""
        if not self.alive():
            return False
        try:
            r = Raw(self.host, self.port, USER, PASSWORD, next(iter(self.dbs)) if not DIRECT
                    else self.dbs[next(iter(self.dbs))]["dbname"], timeout=timeout)
            r.close()
            return True
        except Exception:  # noqa: BLE001
            return False

    def backtrace(self):
        """gdb backtrace of the running warmpool (for hang reports), if gdb exists."""
        if DIRECT or self.proc is None or not shutil.which("gdb"):
            return "(no backtrace: gdb not available)"
        p = subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-ex", "bt 12"],
                           capture_output=True, text=True, timeout=60)
        return "\n".join("    " + line for line in p.stdout.splitlines() if line.startswith("#"))

    def hang_report(self, what):
        """fail() with a backtrace and the CPU time when warmpool stopped answering."""
        cpu = ""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu = f", {(int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK'):.1f} s CPU"
        except Exception:  # noqa: BLE001
            pass
        bt = self.backtrace()
        fail(f"warmpool ({self.label}) stopped answering (new logins time out){cpu} after "
             f"{what}; backtrace:\n{bt}\n--- log tail:\n{self.log_tail(15)}")

    def alive(self):
        return DIRECT or (self.proc is not None and self.proc.poll() is None)

    def stop(self):
        """SIGQUIT (immediate shutdown); assert a clean exit within 10 s (a failure ends the test, after the
        remaining cleanups). The temp dir is removed unless the test failed."""
        if DIRECT or self.proc is None:
            return
        proc, self.proc = self.proc, None
        where = f"; config and log kept in {self.dir}"
        if proc.poll() is not None:
            fail(f"warmpool ({self.label}) died during the test, status {proc.returncode}"
                 f"{where}; log tail:\n{self.log_tail()}")
        proc.send_signal(signal.SIGQUIT)
        try:
            rc = proc.wait(10 * SLOW)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            fail(f"warmpool ({self.label}) still running {10 * SLOW} s after SIGQUIT (killed)"
                 f"{where}")
        if rc != 0:
            fail(f"warmpool ({self.label}) exited {rc} after SIGQUIT{where}; log tail:\n"
                 f"{self.log_tail()}")
        bad = [line for line in self.log_text().splitlines()
               if "Sanitizer" in line or "runtime error:" in line]
        if bad:
            fail(f"sanitizer report in warmpool ({self.label}) log{where}:\n" +
                 "\n".join(bad[:20]))
        if _failed:
            print(f"ok: warmpool ({self.label}) stopped cleanly{where}", flush=True)
        else:
            print(f"ok: warmpool ({self.label}) stopped cleanly", flush=True)
            shutil.rmtree(self.dir, ignore_errors=True)

    def dsn(self, name, **kw):
        d = dict(host=self.host, port=self.port, user=USER, password=PASSWORD,
                 dbname=self.dbname(name))
        d.update(kw)
        return d

    def psycopg(self, name, **kw):
        import psycopg
        d = self.dsn(name)
        return psycopg.connect(**d, **kw)

    def raw(self, name):
        return Raw(self.host, self.port, USER, PASSWORD, self.dbname(name))


# ---------------------------------------------------------------- raw protocol v3 client

def _msg(t, body=b""):
    return t + struct.pack("!I", len(body) + 4) + body


def _cstr(s):
    return (s.encode() if isinstance(s, str) else s) + b"\0"


def Parse(name, query, types=()):
    return _msg(b"P", _cstr(name) + _cstr(query) + struct.pack("!H", len(types)) +
                b"".join(struct.pack("!I", t) for t in types))


def Bind(stmt, params=(), portal="", result_formats=()):
    body = _cstr(portal) + _cstr(stmt) + struct.pack("!H", 0)  # all params text
    body += struct.pack("!H", len(params))
    for p in params:
        if p is None:
            body += struct.pack("!i", -1)
        else:
            b = str(p).encode()
            body += struct.pack("!i", len(b)) + b
    body += struct.pack("!H", len(result_formats))
    body += b"".join(struct.pack("!H", f) for f in result_formats)
    return _msg(b"B", body)


def Execute(portal="", max_rows=0):
    return _msg(b"E", _cstr(portal) + struct.pack("!I", max_rows))


def Describe(kind, name):
    return _msg(b"D", kind.encode() + _cstr(name))


def Close(kind, name):
    return _msg(b"C", kind.encode() + _cstr(name))


def Sync():
    return _msg(b"S")


def Flush():
    return _msg(b"H")


def Query(sql):
    return _msg(b"Q", _cstr(sql))


def _fields(body):
    """ErrorResponse/NoticeResponse fields → {code: value}."""
    out = {}
    i = 0
    while i < len(body) and body[i] != 0:
        code = chr(body[i])
        end = body.index(b"\0", i + 1)
        out[code] = body[i + 1:end].decode(errors="replace")
        i = end + 1
    return out


def _datarow(body):
    n = struct.unpack("!H", body[:2])[0]
    vals, i = [], 2
    for _ in range(n):
        ln = struct.unpack("!i", body[i:i + 4])[0]
        i += 4
        if ln < 0:
            vals.append(None)
        else:
            vals.append(body[i:i + ln].decode(errors="replace"))
            i += ln
    return tuple(vals)


def summarize(t, body):
    """One message → a comparable token: type plus the parts that must match."""
    if t == "E":
        return ("E", _fields(body).get("C"))
    if t == "Z":
        return ("Z", body.decode())
    if t == "C":
        return ("C", body.rstrip(b"\0").decode())
    if t == "D":
        return ("D",) + _datarow(body)
    if t == "T":
        n = struct.unpack("!H", body[:2])[0]
        names, i = [], 2
        for _ in range(n):
            end = body.index(b"\0", i)
            names.append(body[i:end].decode())
            i = end + 1 + 18
        return ("T",) + tuple(names)
    if t == "t":
        n = struct.unpack("!H", body[:2])[0]
        return ("t",) + struct.unpack("!%dI" % n, body[2:2 + 4 * n])
    return (t,)


class Raw:
    def __init__(self, host, port, user, password, dbname, timeout=10.0):
        self.timeout = timeout
        if host.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(timeout)
            self.sock.connect(os.path.join(host, f".s.PGSQL.{port}"))
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        if not host.startswith("/"):
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.user, self.password = user, password
        self.params = {}
        self.notices = []
        body = struct.pack("!I", 196608) + _cstr("user") + _cstr(user) + _cstr("database") + \
            _cstr(dbname) + _cstr("application_name") + _cstr("prepared_raw") + b"\0"
        self.sock.sendall(struct.pack("!I", len(body) + 4) + body)
        self._login()

    def close(self):
        try:
            self.sock.sendall(_msg(b"X"))
        except OSError:
            pass
        self.sock.close()

    def send(self, *msgs):
        self.sock.sendall(b"".join(msgs))

    def _read_msg(self, timeout=None):
        deadline = time.time() + (self.timeout if timeout is None else timeout)
        while True:
            if len(self.buf) >= 5:
                ln = struct.unpack("!I", self.buf[1:5])[0]
                if len(self.buf) >= ln + 1:
                    t, body = chr(self.buf[0]), self.buf[5:ln + 1]
                    self.buf = self.buf[ln + 1:]
                    return t, body
            left = deadline - time.time()
            if left <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return None
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection; got so far: "
                                      f"{self.buf!r}")
            self.buf += data

    def read_msg(self, timeout=None):
        """Next message (type, body), skipping notices and ParameterStatus; None on timeout."""
        while True:
            m = self._read_msg(timeout)
            if m is None:
                return None
            t, body = m
            if t == "N":
                self.notices.append(_fields(body))
                continue
            if t == "S":
                k, v = body.split(b"\0")[:2]
                self.params[k.decode()] = v.decode()
                continue
            return m

    def _login(self):
        while True:
            m = self.read_msg()
            if m is None:
                raise TimeoutError("no answer during login")
            t, body = m
            if t == "E":
                raise ConnectionError(f"login failed: {_fields(body)}")
            if t == "R":
                code = struct.unpack("!I", body[:4])[0]
                if code == 0:
                    continue
                if code == 3:
                    self.send(_msg(b"p", _cstr(self.password)))
                elif code == 5:
                    salt = body[4:8]
                    inner = hashlib.md5((self.password + self.user).encode()).hexdigest()
                    outer = hashlib.md5(inner.encode() + salt).hexdigest()
                    self.send(_msg(b"p", _cstr("md5" + outer)))
                elif code == 10:
                    self._scram(body[4:])
                else:
                    raise ConnectionError(f"unsupported auth request {code}")
            elif t == "K":
                self.pid, self.key = struct.unpack("!II", body)
            elif t == "Z":
                return

    def _scram(self, mechs):
        if b"SCRAM-SHA-256" not in mechs.split(b"\0"):
            raise ConnectionError(f"no SCRAM-SHA-256 in {mechs!r}")
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = f"n=,r={nonce}"
        first = ("n,," + first_bare).encode()
        self.send(_msg(b"p", _cstr("SCRAM-SHA-256") + struct.pack("!I", len(first)) + first))
        t, body = self.read_msg()
        if t != "R" or struct.unpack("!I", body[:4])[0] != 11:
            raise ConnectionError(f"SCRAM: expected SASLContinue, got {t} {body!r}")
        server_first = body[4:].decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salt = base64.b64decode(attrs["s"])
        iters = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iters)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        final_noproof = f"c=biws,r={attrs['r']}"
        auth_msg = f"{first_bare},{server_first},{final_noproof}".encode()
        sig = hmac.new(stored_key, auth_msg, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        final = f"{final_noproof},p={base64.b64encode(proof).decode()}".encode()
        self.send(_msg(b"p", final))
        t, body = self.read_msg()
        if t == "E":
            raise ConnectionError(f"SCRAM failed: {_fields(body)}")
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        expect = base64.b64encode(hmac.new(server_key, auth_msg, hashlib.sha256).digest())
        if t != "R" or struct.unpack("!I", body[:4])[0] != 12 or \
                body[4:].split(b"v=")[1].rstrip(b"\0") != expect:
            raise ConnectionError("SCRAM: bad server signature")

    def until_ready(self, n=1, timeout=None):
        """Messages (summarized) up to and including the n-th ReadyForQuery."""
        out = []
        while n > 0:
            m = self.read_msg(timeout)
            if m is None:
                raise TimeoutError(f"no ReadyForQuery within {timeout or self.timeout} s; "
                                   f"got so far: {out}")
            tok = summarize(*m)
            out.append(tok)
            if m[0] == "Z":
                n -= 1
        return out

    def until_quiet(self, quiet=0.3):
        """Everything that arrives until nothing more comes for `quiet` seconds."""
        out = []
        while True:
            m = self.read_msg(quiet)
            if m is None:
                return out
            out.append(summarize(*m))

    def run(self, *msgs, n=None):
        """Send messages; read answers up to as many ReadyForQuery as Sync/Query sent."""
        self.send(*msgs)
        if n is None:
            n = sum(1 for m in msgs if m[:1] in (b"S", b"Q"))
        return self.until_ready(n)

    def query(self, sql):
        """Simple query → (rows, error sqlstate or None, tx status)."""
        res = self.run(Query(sql))
        rows = [tok[1:] for tok in res if tok[0] == "D"]
        errs = [tok[1] for tok in res if tok[0] == "E"]
        return rows, (errs[0] if errs else None), res[-1][1]

    def scalar(self, sql):
        rows, err, _ = self.query(sql)
        if err:
            raise RuntimeError(f"{sql!r} failed with {err}")
        return rows[0][0]


def fmt(seq):
    """Readable message sequence: 1 2 D(…) C(SELECT 1) E(42601) Z(I)."""
    def short(x):
        x = str(x)
        if not x.isprintable():
            x = x.encode("unicode_escape").decode()
        return x if len(x) <= 40 else f"{x[:12]}…({len(x)} chars)"
    out = []
    for tok in seq:
        if len(tok) == 1:
            out.append(tok[0])
        else:
            out.append(f"{tok[0]}({','.join(short(x) for x in tok[1:])})")
    return " ".join(out)
