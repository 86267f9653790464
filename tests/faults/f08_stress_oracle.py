"""f08_stress_oracle — multi-client stress with an exact oracle.

Ten raw wire-protocol clients (five on the 2-backend pool `small`, five on the 1-backend
pool `tiny`, transaction mode) each run a seeded random sequence of operations: simple
queries, extended batches (named and unnamed statements, named ones reused across
transactions, Describe, portals run in pieces, Close), pipelines without Sync and with
Flush, errors in and out of transactions (including errors in the middle of an extended
batch followed by messages PostgreSQL skips until Sync, and a simple Query sent inside
that window, which PostgreSQL ignores), BEGIN/COMMIT/ROLLBACK, COPY FROM STDIN and COPY
TO STDOUT, cancels, unknown message types, SET application_name, and disconnects at
random points (half a message, while a query runs, inside a transaction, while
PostgreSQL skips until Sync).

Every message a client receives is checked against a model of PostgreSQL fed with the
messages that client sent (class Model): the response stream is a pure function of the
client's own sequence, with values that name the client and the step. The only
nondeterminism allowed is PostgreSQL's own: a cancel may arrive late. A client never
waits more than 30 s for a message (a hang is reported with the seed, the operation and
the last messages), and the rows each client committed to table stress_sink are
checked at the end, straight on PostgreSQL.

Knobs (environment, or the same as options when the case is run by hand with run.sh's
FT_* environment):
  FT_STRESS_SEED=N       replay a seed (default: a random one, printed first)
  FT_STRESS_SCALE=X      size factor (1 = full, >= 200 000 messages; run.sh sets 0.2
                         under ASan or valgrind)
  FT_STRESS_CLIENTS=N    clients (default 10)
  FT_STRESS_EXCLUDE=a,b  operation classes to leave out (default: none; see CLASSES)
  FT_STRESS_ONLY=a,b     only these classes
  FT_STRESS_DIRECT=1     clients talk to PostgreSQL itself (validates the oracle)
  FT_STRESS_KNOWN_DIFFS=1  also generate what docs/ARCHITECTURE.md lists as a known
                         difference from PostgreSQL (a named Parse pipelined in a failed
                         transaction)
  FT_STRESS_BUDGET=S     seconds after which clients stop (default 90; x3 on valgrind)
  FT_STRESS_IDS=3,7      run only these client ids (same sequences as in the full run;
                         to study one client's failure without the others)
  FT_STRESS_TRACE=1      print every message each client sends and receives
"""
import collections
import copy
import hashlib
import os
import random
import socket
import struct
import sys
import threading
import time

import faultlib as fl
from faultlib import RawClient, check, check_invariants, finish, log, pg_query

RUN = "f08"
CASE = "f08_stress_oracle"
CLASSES = ("simple", "extended", "pipeline", "error", "skipquery", "txn", "copy", "cancel",
           "disconnect", "unknown", "params")
WEIGHTS = {"simple": 14, "extended": 18, "pipeline": 12, "error": 12, "skipquery": 4,
           "txn": 9, "copy": 8, "cancel": 1.5, "disconnect": 3.5, "unknown": 2, "params": 5}
# Variants of a class (FT_STRESS_EXCLUDE=class:variant leaves one out), with weights.
VARIANTS = {
    "pipeline": (("units", .5), ("flush", .3), ("query-in-batch", .2)),
    "error": (("simple", .35), ("extended", .65)),
    "copy": (("in", .55), ("out", .30), ("stray", .15)),
    "disconnect": (("mid-message", .4), ("query-running", .2), ("in-txn", .2),
                   ("skip-until-sync", .2)),
    "unknown": (("alone", .35), ("after-unit", .25), ("mid-batch", .2), ("skip-until-sync", .2)),
}
STEPS = 1100  # operations per client at scale 1 (~230 000 messages with 10 clients)
MIN_MESSAGES = 200_000  # at scale 1
READ_TIMEOUT = 30.0
MAX_FAILURES = 3  # per client; it stops after that many

INT4, INT8, TEXT, VOID = 23, 20, 25, 2278
MSG_25P02 = "current transaction is aborted, commands ignored until end of transaction block"
NO_TXN, TXN_ALREADY = "25P01", "25001"


# ---------------------------------------------------------------- configuration

def config():
    env = os.environ
    cfg = {
        "seed": env.get("FT_STRESS_SEED", ""),
        "scale": env.get("FT_STRESS_SCALE", "1"),
        "clients": env.get("FT_STRESS_CLIENTS", "10"),
        "exclude": env.get("FT_STRESS_EXCLUDE", ""),
        "only": env.get("FT_STRESS_ONLY", ""),
        "direct": env.get("FT_STRESS_DIRECT", "0") == "1",
        "known_diffs": env.get("FT_STRESS_KNOWN_DIFFS", "0") == "1",
        "budget": env.get("FT_STRESS_BUDGET", ""),
        "ids": env.get("FT_STRESS_IDS", ""),
        "trace": env.get("FT_STRESS_TRACE", "0") == "1",
    }
    args = sys.argv[1:]
    while args:
        a = args.pop(0)
        if a == "--direct":
            cfg["direct"] = True
        elif a == "--known-diffs":
            cfg["known_diffs"] = True
        elif a == "--trace":
            cfg["trace"] = True
        elif a in ("--seed", "--scale", "--clients", "--exclude", "--only", "--budget",
                   "--ids") and args:
            cfg[a[2:]] = args.pop(0)
        else:
            sys.exit(f"{CASE}: unknown argument {a!r} (see the docstring)")
    cfg["seed"] = int(cfg["seed"]) if cfg["seed"] else int.from_bytes(os.urandom(4), "big")
    cfg["scale"] = float(cfg["scale"])
    cfg["clients"] = int(cfg["clients"])
    cfg["ids"] = [int(x) for x in cfg["ids"].split(",") if x.strip()] or list(range(cfg["clients"]))
    budget = float(cfg["budget"]) if cfg["budget"] else 90.0 * (3 if fl.VALGRIND else 1)
    cfg["budget"] = budget
    excl = {c for c in cfg["exclude"].replace(" ", "").split(",") if c}
    only = {c for c in cfg["only"].replace(" ", "").split(",") if c}
    known = set(CLASSES) | {f"{c}:{v}" for c, vs in VARIANTS.items() for v, _ in vs}
    bad = (excl | only) - known
    if bad:
        sys.exit(f"{CASE}: unknown operation class(es) {sorted(bad)}; classes: {', '.join(CLASSES)}; "
                 f"variants: {', '.join(sorted(known - set(CLASSES)))}")
    for c, vs in VARIANTS.items():  # only some variants of a class: the others are out
        if any(o.startswith(c + ":") for o in only):
            only.add(c)
            excl |= {f"{c}:{v}" for v, _ in vs if f"{c}:{v}" not in only}
    cfg["variants_out"] = {v for v in excl if ":" in v}
    for c, vs in VARIANTS.items():  # every variant out: the class is out
        if all(f"{c}:{v}" in excl for v, _ in vs):
            excl.add(c)
    cfg["classes"] = [c for c in CLASSES if c not in excl and (not only or c in only)]
    if not cfg["classes"]:
        sys.exit(f"{CASE}: every operation class is excluded")
    return cfg


# ---------------------------------------------------------------- frontend messages

def z(s):
    return s.encode() + b"\0"


def fe(t, body=b""):
    return t + struct.pack("!I", len(body) + 4) + body


def enc_params(params):
    out = struct.pack("!HH", 0, len(params))
    for p in params:
        if p is None:
            out += struct.pack("!i", -1)
        else:
            v = str(p).encode()
            out += struct.pack("!I", len(v)) + v
    return out + struct.pack("!H", 0)


# ---------------------------------------------------------------- SQL and what it does

class Sql:
    """A statement and what PostgreSQL does with it. `run` appends the execution's
    output to the model and returns False when it raised an error."""
    fields = None  # RowDescription [(name, type oid)], None: NoData
    oids = ()  # parameter types as PostgreSQL infers them
    syntax_err = parse_err = bind_err = None  # (sqlstate, message) raised at that phase
    txn_exit = False  # COMMIT / ROLLBACK: allowed in a failed transaction
    effects = False  # writes rows or changes state: never sent where it may be lost

    def __init__(self, text):
        self.text = text

    def run(self, m, params, simple, portal=None, max_rows=0):
        raise NotImplementedError


class Rows(Sql):
    """A SELECT: rows(m, params) -> list of tuples of str; an execution error after
    err_after rows when exec_err is set."""

    def __init__(self, text, fields, rows, oids=(), exec_err=None, err_after=0, tag="SELECT"):
        super().__init__(text)
        self.fields, self.rows, self.oids = tuple(fields), rows, tuple(oids)
        self.exec_err, self.err_after, self.tag = exec_err, err_after, tag

    def run(self, m, params, simple, portal=None, max_rows=0):
        if simple:
            m.emit(("T", self.fields))
        if portal is not None and portal.rows is not None:
            rows = portal.rows
        else:
            rows = self.rows(m, params)
            if portal is not None:
                portal.rows, portal.pos = rows, 0
        if self.exec_err:
            for r in rows[:self.err_after]:
                m.emit(("D", r))
            m.error(*self.exec_err)
            return False
        if portal is None:
            take = rows
        else:
            end = portal.pos + max_rows if max_rows else len(rows)
            take = rows[portal.pos:end]
            portal.pos += len(take)
        for r in take:
            m.emit(("D", r))
        if max_rows and len(take) == max_rows:
            m.emit(("s",))
        else:
            m.emit(("C", f"{self.tag} {len(take)}"))
        return True


class Insert(Sql):
    """INSERT INTO stress_sink: literal (run, n) or parameters ($1 run, $2 n)."""
    effects = True

    def __init__(self, tag=None, n=None, returning=False):
        if tag is None:
            text, self.oids = "insert into stress_sink values ($1, $2::int) returning n", (TEXT, INT4)
            returning = True
        else:
            text = f"insert into stress_sink values ('{tag}', {n})" + (" returning n" if returning else "")
        super().__init__(text)
        self.n, self.returning = n, returning
        self.fields = (("n", INT4),) if returning else None

    def run(self, m, params, simple, portal=None, max_rows=0):
        tag, n = (params[0], int(params[1])) if params else (None, self.n)
        if tag is not None and tag != m.c.tag:
            raise RuntimeError("insert for another tag")  # a bug of this test
        m.pend[0] += 1
        m.pend[1] += n
        if self.returning:
            if simple:
                m.emit(("T", self.fields))
            m.emit(("D", (str(n),)))
        m.emit(("C", "INSERT 0 1"))
        return True


class Count(Sql):
    """This client's committed rows (and the current transaction's own)."""

    def __init__(self, tag=None):
        where = "$1" if tag is None else f"'{tag}'"
        super().__init__("select count(*) as k, coalesce(sum(n), 0) as total "
                         f"from stress_sink where run = {where}")
        self.fields = (("k", INT8), ("total", INT8))
        self.oids = (TEXT,) if tag is None else ()

    def run(self, m, params, simple, portal=None, max_rows=0):
        led = m.c.ledger[m.c.tag]
        if simple:
            m.emit(("T", self.fields))
        m.emit(("D", (str(led[0] + m.pend[0]), str(led[1] + m.pend[1]))))
        m.emit(("C", "SELECT 1"))
        return True


class TxCtl(Sql):
    WORDS = {"begin": ("BEGIN", "BEGIN"), "start transaction": ("BEGIN", "START TRANSACTION"),
             "commit": ("COMMIT", "COMMIT"), "end": ("COMMIT", "COMMIT"),
             "rollback": ("ROLLBACK", "ROLLBACK"), "abort": ("ROLLBACK", "ROLLBACK")}

    def __init__(self, word):
        super().__init__(word)
        self.what, self.tag = self.WORDS[word]
        self.txn_exit = self.what != "BEGIN"
        self.effects = self.what == "COMMIT"

    def run(self, m, params, simple, portal=None, max_rows=0):
        if self.what == "BEGIN":
            if m.tx == "T":
                m.emit(("N", TXN_ALREADY))
            m.tx = "T"
            m.emit(("C", self.tag))
        elif self.what == "COMMIT":
            if m.tx == "I":
                m.emit(("N", NO_TXN))
            tag = "ROLLBACK" if m.tx == "E" else "COMMIT"
            m.abort() if m.tx == "E" else m.commit()
            m.tx = "I"
            m.emit(("C", tag))
        else:
            if m.tx == "I":
                m.emit(("N", NO_TXN))
            m.abort()
            m.tx = "I"
            m.emit(("C", "ROLLBACK"))
        return True


class SetApp(Sql):
    effects = True

    def __init__(self, value, local=False):
        super().__init__(f"set {'local ' if local else ''}application_name = '{value}'")
        self.value, self.local = value, local

    def run(self, m, params, simple, portal=None, max_rows=0):
        m.app_cur = self.value
        if not self.local:
            m.app_pending = self.value
        m.emit(("C", "SET"))
        return True


class ShowApp(Sql):
    def __init__(self):
        super().__init__("show application_name")
        self.fields = (("application_name", TEXT),)

    def run(self, m, params, simple, portal=None, max_rows=0):
        if simple:
            m.emit(("T", self.fields))
        m.emit(("D", (m.app_cur,)))
        m.emit(("C", "SHOW"))
        return True


class CopyOut(Sql):
    def __init__(self, tag, n):
        super().__init__(f"copy (select '{tag}' as t, g from generate_series(1, {n}) g) to stdout")
        self.tag, self.n = tag, n

    def run(self, m, params, simple, portal=None, max_rows=0):
        m.emit(("H", 2))
        for g in range(1, self.n + 1):
            m.emit(("d", f"{self.tag}\t{g}\n".encode()))
        m.emit(("c",))
        m.emit(("C", f"COPY {self.n}"))
        return True


class CopyIn(Sql):
    effects = True

    def __init__(self):
        super().__init__("copy stress_sink (run, n) from stdin")

    def run(self, m, params, simple, portal=None, max_rows=0):
        if not simple:
            raise RuntimeError("COPY FROM STDIN is only generated in a simple Query")
        m.emit(("G", 2))
        m.flush()  # PostgreSQL flushes CopyInResponse
        m.copy = []
        return True


class Failing(Sql):
    """A statement that fails at one phase: syntax (whole Query string), parse
    (analysis: a literal that is not an int, a missing relation) or bind (planning:
    constant folding of 1/0)."""

    def __init__(self, text, phase, code, msg, fields=None):
        super().__init__(text)
        setattr(self, phase + "_err", (code, msg))
        self.fields = fields


def void_sleep(secs, cid, seq):
    return Rows(f"select pg_sleep({secs}) as z, {cid} as c, {seq} as s",
                (("z", VOID), ("c", INT4), ("s", INT4)),
                lambda m, p, r=("", str(cid), str(seq)): [r])


# ---------------------------------------------------------------- the model of PostgreSQL

class Portal:
    __slots__ = ("st", "params", "rows", "pos")

    def __init__(self, st, params):
        self.st, self.params, self.rows, self.pos = st, params, None, 0


class Model:
    """What one PostgreSQL backend answers to one client's messages (protocol 3.0 as
    postgres.c implements it): fed each frontend message in order, it appends the
    expected backend messages to `out`; `flushed` is how many of them PostgreSQL has
    certainly sent (up to the last ReadyForQuery, Flush, ErrorResponse/Notice or
    CopyInResponse)."""

    def __init__(self, client, app):
        self.c = client
        self.tx = "I"  # I idle, T in a transaction block, E failed block
        self.skip = False  # discarding extended messages until Sync
        self.named, self.unnamed, self.portals = {}, None, {}
        self.app_session = self.app_cur = self.app_reported = app
        self.app_pending = None  # SET (session) in the current transaction
        self.pend = [0, 0]  # rows (count, sum) written by the current transaction
        self.copy = None  # rows of a COPY FROM STDIN in progress
        self.out, self.flushed, self.nread = [], 0, 0

    # -- output and transactions
    def emit(self, item):
        self.out.append(item)

    def flush(self):
        self.flushed = len(self.out)

    def commit(self):
        led = self.c.ledger[self.c.tag]
        led[0] += self.pend[0]
        led[1] += self.pend[1]
        self.pend = [0, 0]
        if self.app_pending is not None:
            self.app_session = self.app_pending
        self.app_pending = None
        self.app_cur = self.app_session
        self.portals.clear()

    def abort(self):
        self.pend = [0, 0]
        self.app_pending = None
        self.app_cur = self.app_session
        self.portals.clear()

    def error(self, code, msg=None):
        """An ERROR: the transaction aborts at once (GUCs revert, portals go); an
        explicit block becomes failed (E) until ROLLBACK/COMMIT."""
        self.emit(("E", code, msg))
        self.flush()
        if self.tx == "T":
            self.tx = "E"
        self.abort()

    def ready(self):
        if self.app_cur != self.app_reported:  # ReportChangedGUCOptions, before ReadyForQuery
            self.emit(("S", "application_name", self.app_cur))
            self.app_reported = self.app_cur
        self.emit(("Z", self.tx))
        self.flush()

    def ext_error(self, code, msg=None):
        self.error(code, msg)
        self.skip = True

    # -- simple query
    def query(self, stmts):
        if self.copy is not None:
            raise RuntimeError("Query during COPY IN")  # never generated
        if self.skip:
            return  # ignored entirely, no answer
        self.unnamed = None  # exec_simple_query drops the unnamed statement and portal
        self.portals.pop("", None)
        if not stmts:
            self.emit(("I",))
            if self.tx == "I":
                self.commit()
            self.ready()
            return
        syn = next((st.syntax_err for st in stmts if st.syntax_err), None)
        if syn:  # the whole string is parsed first
            self.error(*syn)
            self.ready()
            return
        for st in stmts:
            if self.tx == "E" and not st.txn_exit:
                self.error("25P02", MSG_25P02)
                break
            if st.parse_err or st.bind_err:
                self.error(*(st.parse_err or st.bind_err))
                break
            if not st.run(self, (), True):
                break
            if self.copy is not None:
                return  # ReadyForQuery after CopyDone / CopyFail
        else:
            if self.tx == "I":
                self.commit()
        self.ready()

    # -- COPY FROM STDIN
    def copy_data(self, rows):
        if self.copy is None:
            return  # CopyData outside COPY: ignored
        for run, n in rows:
            if not n.isdigit():
                self.copy = None
                self.error("22P02", f'invalid input syntax for type integer: "{n}"')
                self.ready()
                return
            self.copy.append(int(n))

    def copy_done(self):
        if self.copy is None:
            return
        rows, self.copy = self.copy, None
        self.pend[0] += len(rows)
        self.pend[1] += sum(rows)
        self.emit(("C", f"COPY {len(rows)}"))
        if self.tx == "I":
            self.commit()
        self.ready()

    def copy_fail(self, why):
        if self.copy is None:
            return
        self.copy = None
        self.error("57014", f"COPY from stdin failed: {why}")
        self.ready()

    # -- extended query
    def parse(self, name, st):
        if self.skip:
            return
        if not name:
            self.unnamed = None
        if st.syntax_err:
            return self.ext_error(*st.syntax_err)
        if self.tx == "E" and not st.txn_exit:
            return self.ext_error("25P02", MSG_25P02)
        if st.parse_err:
            return self.ext_error(*st.parse_err)
        if name and name in self.named:
            return self.ext_error("42P05", f'prepared statement "{name}" already exists')
        if name:
            self.named[name] = st
        else:
            self.unnamed = st
        self.emit(("1",))

    def _stmt(self, name):
        st = self.named.get(name) if name else self.unnamed
        if st is None:
            self.ext_error("26000", f'prepared statement "{name}" does not exist' if name
                           else "unnamed prepared statement does not exist")
        return st

    def bind(self, portal, name, st_params):
        if self.skip:
            return
        st = self._stmt(name)
        if st is None:
            return
        if self.tx == "E" and not (st.txn_exit and not st_params):
            return self.ext_error("25P02", MSG_25P02)
        if st.bind_err:
            return self.ext_error(*st.bind_err)
        if portal and portal in self.portals:
            return self.ext_error("42P03", f'cursor "{portal}" already exists')
        self.portals[portal] = Portal(st, st_params)
        self.emit(("2",))

    def describe(self, kind, name):
        if self.skip:
            return
        if kind == "S":
            st = self._stmt(name)
            if st is None:
                return
        else:
            p = self.portals.get(name)
            if p is None:
                return self.ext_error("34000", f'portal "{name}" does not exist')
            st = p.st
        if self.tx == "E" and st.fields:
            return self.ext_error("25P02", MSG_25P02)
        if kind == "S":
            self.emit(("t", st.oids))
        self.emit(("T", st.fields) if st.fields else ("n",))

    def execute(self, portal, max_rows):
        if self.skip:
            return
        p = self.portals.get(portal)
        if p is None:
            return self.ext_error("34000", f'portal "{portal}" does not exist')
        if self.tx == "E" and not p.st.txn_exit:
            return self.ext_error("25P02", MSG_25P02)
        if not p.st.run(self, p.params, False, p, max_rows):
            self.skip = True

    def close(self, kind, name):
        if self.skip:
            return
        if kind == "S":
            if name:
                self.named.pop(name, None)
            else:
                self.unnamed = None
        else:
            self.portals.pop(name, None)
        self.emit(("3",))

    def sync(self):
        self.skip = False
        if self.tx == "I":
            self.commit()
        self.ready()

    def flush_msg(self):
        if not self.skip:
            self.flush()


# ---------------------------------------------------------------- backend messages

def cstr_at(b, i):
    j = b.index(b"\0", i)
    return b[i:j].decode(errors="replace"), j + 1


def err_fields(body):
    out = {}
    for part in body.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode(errors="replace")
    return out


def decode(t, body):
    """A backend message as a comparable value (same shape as the model's items)."""
    try:
        if t in "123nsIc":
            return (t,)
        if t == "T":
            n = struct.unpack_from("!H", body)[0]
            i, fields = 2, []
            for _ in range(n):
                name, i = cstr_at(body, i)
                fields.append((name, struct.unpack_from("!I", body, i + 6)[0]))
                i += 18
            return ("T", tuple(fields))
        if t == "D":
            n = struct.unpack_from("!H", body)[0]
            i, vals = 2, []
            for _ in range(n):
                ln = struct.unpack_from("!i", body, i)[0]
                i += 4
                if ln < 0:
                    vals.append(None)
                else:
                    vals.append(body[i:i + ln].decode(errors="replace"))
                    i += ln
            return ("D", tuple(vals))
        if t == "C":
            return ("C", body.rstrip(b"\0").decode(errors="replace"))
        if t in "EN":
            f = err_fields(body)
            sev = f.get("V", f.get("S"))
            if t == "E" and sev in ("FATAL", "PANIC"):
                return ("F", f.get("C"), f.get("M"))
            return (t, f.get("C"), f.get("M")) if t == "E" else ("N", f.get("C"), f.get("M"))
        if t == "Z":
            return ("Z", body.decode(errors="replace"))
        if t == "S":
            name, i = cstr_at(body, 0)
            value, _ = cstr_at(body, i)
            return ("S", name, value)
        if t == "t":
            n = struct.unpack_from("!H", body)[0]
            return ("t", struct.unpack_from(f"!{n}I", body, 2))
        if t in "GH":
            return (t, struct.unpack_from("!H", body, 1)[0])
        if t == "d":
            return ("d", bytes(body))
    except (struct.error, ValueError, IndexError):
        pass
    return ("?" + t, bytes(body[:80]))


def same(exp, got):
    """Does a received message (decoded) match the model's item?"""
    k = exp[0]
    if k != got[0]:
        return False
    if k == "E":  # sqlstate, and the message when the model knows it
        return exp[1] == got[1] and (exp[2] is None or exp[2] == got[2])
    if k == "F":
        return exp[1] == got[1]
    if k == "N":
        return exp[1] == got[1]
    return tuple(exp) == tuple(got)


def show(item):
    s = repr(item)
    return s if len(s) <= 160 else s[:157] + "..."


# ---------------------------------------------------------------- connections

class Failure(Exception):
    """A mismatch, a hang or an unexpected close: the client records it, drops the
    connection and goes on with a new one."""

    def __init__(self, kind, detail):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


class Conn(RawClient):
    """RawClient to any address, with a buffered reader that does not copy the rest of
    the buffer for each message."""

    def __init__(self, addr, app, timeout=READ_TIMEOUT):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rbuf, self.rpos, self.app = bytearray(), 0, app
        self.buf = b""
        self.nsent = 0

    def startup(self, user=fl.USER, db=fl.DB):
        body = struct.pack("!I", 196608)
        for k, v in (("user", user), ("database", db), ("application_name", self.app)):
            body += z(k) + z(v)
        body += b"\0"
        self.send(struct.pack("!I", len(body) + 4) + body)

    def _more(self):
        if self.rpos > 1 << 16:
            del self.rbuf[:self.rpos]
            self.rpos = 0
        chunk = self.sock.recv(1 << 18)
        if not chunk:
            raise EOFError("connection closed")
        self.rbuf += chunk

    def read_msg(self):
        while len(self.rbuf) - self.rpos < 5:
            self._more()
        n = struct.unpack_from("!I", self.rbuf, self.rpos + 1)[0]
        while len(self.rbuf) - self.rpos < 1 + n:
            self._more()
        p = self.rpos
        t = bytes(self.rbuf[p:p + 1])
        body = bytes(self.rbuf[p + 5:p + 1 + n])
        self.rpos = p + 1 + n
        return t, body

    def send(self, data):
        self.nsent += 1  # login messages: one per call
        self.sock.sendall(data)

    def login_full(self, user, db):
        """Log in; returns (ParameterStatus dict, BackendKeyData (pid, key), messages
        read, ReadyForQuery status) or raises Failure."""
        self.startup(user, db)
        params, key, nread = {}, None, 0
        while True:
            t, body = self.read_msg()
            nread += 1
            if t == b"E":
                raise Failure("login", f"refused: {err_fields(body)}")
            if t == b"S":
                _, name, value = decode("S", body)
                params[name] = value
            elif t == b"K":
                key = struct.unpack("!II", body[:8])
            elif t == b"Z":
                return params, key, nread, body
            elif t == b"R":
                code = struct.unpack("!I", body[:4])[0]
                if code == 5:
                    inner = hashlib.md5((fl.PASSWORD + user).encode()).hexdigest()
                    outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                    self.send(self.msg(b"p", b"md5" + outer.encode() + b"\0"))
                elif code == 3:
                    self.send(self.msg(b"p", fl.PASSWORD.encode() + b"\0"))
                elif code == 10:
                    self._scram_first()
                elif code == 11:
                    self._scram_final(fl.PASSWORD, body[4:])
                elif code not in (0, 12):
                    raise Failure("login", f"unexpected auth request {code}")
            elif t != b"N":
                raise Failure("login", f"unexpected message {t!r} during login")


# ---------------------------------------------------------------- the clients

NAMES = ("s0", "s1", "s2", "s3", "s4")  # the same names in every client, other statements


class Client(threading.Thread):
    def __init__(self, cid, cfg, run_id, stop_at):
        super().__init__(daemon=True, name=f"stress-{cid}")
        self.cid, self.cfg, self.run_id, self.stop_at = cid, cfg, run_id, stop_at
        self.rng = random.Random(f"{cfg['seed']}:{cid}")
        self.steps = max(1, round(STEPS * cfg["scale"]))
        self.classes = cfg["classes"]
        self.weights = [WEIGHTS[c] for c in self.classes]
        if cfg["direct"]:
            self.addr, self.db = ("127.0.0.1", fl.PG_PORT), fl.DB
        else:
            self.addr = ("127.0.0.1", fl.INSTANCES["md5"][0])
            self.db = "small" if cid % 2 == 0 else "tiny"
        self.conn = self.m = None
        self.key = None
        self.ledger, self.uncertain, self.gen = {}, set(), 0
        self.new_tag()
        self.wbuf = []
        self.sent = self.recv = 0
        self.failures = []
        self.seq = 0
        self.nconn = 0
        self.opname = "-"
        self.quiet = True  # nothing sent since the last ReadyForQuery was read
        self.hist_sent = collections.deque(maxlen=12)
        self.hist_recv = collections.deque(maxlen=12)
        self.ops = collections.Counter()
        self.types = collections.Counter()  # messages received after login, by type
        self.cancels = collections.Counter()
        self.done_steps = 0
        self.stopped = None

    # -- bookkeeping
    def new_tag(self):
        self.gen += 1
        self.tag = f"f08.{self.run_id}.c{self.cid}.g{self.gen}"
        self.ledger[self.tag] = [0, 0]

    def ctx(self):
        return (f"client {self.cid} (db {self.db}, connection {self.nconn}, seed "
                f"{self.cfg['seed']}) op {self.seq} [{self.opname}]")

    def record(self, kind, detail):
        self.failures.append((kind, f"{self.ctx()}: {detail}\n      last sent: "
                              f"{list(self.hist_sent)}\n      last received: "
                              f"{[show(x) for x in self.hist_recv]}"))

    # -- connection
    def connect(self):
        self.nconn += 1
        app = f"f08c{self.cid}n{self.nconn}"
        self.conn = Conn(self.addr, app)
        try:
            params, key, nread, status = self.conn.login_full(fl.USER, self.db)
        except socket.timeout:
            raise Failure("hang", "no answer to the login within 30 s")
        except EOFError:
            raise Failure("closed", "connection closed during login")
        self.sent += self.conn.nsent
        self.recv += nread
        self.key = key
        self.hist_sent.append(f"startup(application_name={app})")
        if params.get("application_name") != app:
            raise Failure("mismatch", f"login ParameterStatus application_name = "
                          f"{params.get('application_name')!r}, want {app!r}")
        if key is None or status != b"I":
            raise Failure("mismatch", f"login: BackendKeyData {key}, ReadyForQuery {status!r}")
        self.m = Model(self, app)
        self.quiet = True

    def drop(self, uncertain):
        if self.conn is not None:
            self.conn.close()
        self.conn = self.m = None
        self.wbuf = []
        if uncertain:  # what the database holds for this tag is no longer known
            self.uncertain.add(self.tag)
            self.new_tag()

    def hangup(self):
        """A deliberate close: whatever the transaction wrote is never committed."""
        if self.wbuf:
            self.conn.send(b"".join(self.wbuf))
            self.wbuf = []
        self.conn.close()
        self.conn = self.m = None

    # -- sending (each call also feeds the model)
    def put(self, raw, what):
        self.wbuf.append(raw)
        self.sent += 1
        self.hist_sent.append(what)
        if self.cfg["trace"]:
            log(f"c{self.cid} op {self.seq} > {what[:200]}")
        self.quiet = False

    def Q(self, *stmts):
        self.put(fe(b"Q", z("; ".join(st.text for st in stmts))),
                 "Q " + "; ".join(st.text[:60] for st in stmts))
        self.m.query(list(stmts))

    def P(self, name, st):
        self.put(fe(b"P", z(name) + z(st.text) + struct.pack("!H", 0)),
                 f"P {name!r} {st.text[:60]}")
        self.m.parse(name, st)

    def B(self, portal, name, params=()):
        self.put(fe(b"B", z(portal) + z(name) + enc_params(params)),
                 f"B {portal!r} {name!r} {list(params)}")
        self.m.bind(portal, name, tuple(None if v is None else str(v) for v in params))

    def D(self, kind, name):
        self.put(fe(b"D", kind.encode() + z(name)), f"D {kind} {name!r}")
        self.m.describe(kind, name)

    def E(self, portal="", max_rows=0):
        self.put(fe(b"E", z(portal) + struct.pack("!I", max_rows)), f"E {portal!r} {max_rows}")
        self.m.execute(portal, max_rows)

    def C(self, kind, name):
        self.put(fe(b"C", kind.encode() + z(name)), f"C {kind} {name!r}")
        self.m.close(kind, name)

    def S(self):
        self.put(fe(b"S"), "S")
        self.m.sync()

    def H(self):
        self.put(fe(b"H"), "H")
        self.m.flush_msg()

    def copy_data(self, rows):
        data = "".join(f"{r}\t{n}\n" for r, n in rows).encode()
        self.put(fe(b"d", data), f"d {len(rows)} rows")
        self.m.copy_data(rows)

    def copy_done(self):
        self.put(fe(b"c"), "c")
        self.m.copy_done()

    def copy_fail(self, why):
        self.put(fe(b"f", z(why)), f"f {why!r}")
        self.m.copy_fail(why)

    # -- receiving
    def recv_one(self):
        try:
            t, body = self.conn.read_msg()
        except socket.timeout:
            raise Failure("hang", f"no message within {READ_TIMEOUT:.0f} s")
        except EOFError:
            raise Failure("closed", "the connection was closed")
        except OSError as e:
            raise Failure("closed", f"read failed: {e}")
        self.recv += 1
        got = decode(t.decode("latin-1"), body)
        self.hist_recv.append(got)
        if self.cfg["trace"]:
            log(f"c{self.cid} op {self.seq} < {show(got)}")
        self.types[got[0] if got[0] not in "ENF" else got[0] + ":" + str(got[1])] += 1
        return got

    def push(self):
        if self.wbuf:
            data = b"".join(self.wbuf)
            self.wbuf = []
            try:
                self.conn.send(data)
            except socket.timeout:
                raise Failure("hang", f"could not send {len(data)} bytes within {READ_TIMEOUT:.0f} s")
            except OSError as e:
                raise Failure("closed", f"send failed: {e}")

    def exchange(self):
        """Send what is queued, then read and check everything PostgreSQL has certainly
        sent by now."""
        self.push()
        m = self.m
        while m.nread < m.flushed:
            exp = m.out[m.nread]
            got = self.recv_one()
            if not same(exp, got):
                raise Failure("mismatch", f"message {m.nread + 1} of the answer: expected "
                              f"{show(exp)}, got {show(got)}")
            m.nread += 1
        if m.nread == len(m.out):
            last = m.out[-1] if m.out else None
            m.out.clear()
            m.flushed = m.nread = 0
            if last is not None and last[0] == "Z":
                self.quiet = True

    # -- values that name this client and step
    def v_triple(self):
        c, s = self.cid, self.seq
        k = self.rng.randrange(1000)
        return Rows(f"select {c} as c, {s} as s, '{c}:{s}:{k}'::text as t",
                    (("c", INT4), ("s", INT4), ("t", TEXT)),
                    lambda m, p, r=(str(c), str(s), f"{c}:{s}:{k}"): [r])

    def v_series(self, n=None):
        c, s = self.cid, self.seq
        n = self.rng.randint(0, 8) if n is None else n
        return Rows(f"select g as g, '{c}.{s}' as cs from generate_series(1, {n}) g",
                    (("g", INT4), ("cs", TEXT)),
                    lambda m, p: [(str(g), f"{c}.{s}") for g in range(1, n + 1)])

    def v_big(self):
        c, s = self.cid, self.seq
        if self.rng.random() < 0.5:  # a big DataRow (crosses the relay's 16 kB buffer)
            k = self.rng.randint(3000, 20000)
            return Rows(f"select repeat('<{c}:{s}>', {k}) as pad", (("pad", TEXT),),
                        lambda m, p: [(f"<{c}:{s}>" * k,)])
        lit = f"<{c}:{s}>" * self.rng.randint(2000, 8000)  # a big Query / Parse
        return Rows(f"select '{lit}'::text as lit", (("lit", TEXT),), lambda m, p: [(lit,)])

    def value_stmt(self, effects=True):
        """A statement that succeeds (outside a failed transaction)."""
        r = self.rng.random()
        if r < 0.35:
            return self.v_triple()
        if r < 0.55:
            return self.v_series()
        if r < 0.63:
            return ShowApp()
        if r < 0.70:
            return Count(self.tag)
        if r < 0.73:
            return self.v_big()
        if r < 0.78:
            return CopyOut(self.tag, self.rng.randint(0, 5))
        if effects and r < 0.92:
            return Insert(self.tag, self.rng.randint(1, 1000), self.rng.random() < 0.5)
        return self.v_triple()

    def failing_stmt(self):
        c, s = self.cid, self.seq
        r = self.rng.random()
        if r < 0.25:  # analysis: an unknown literal is cast when parsed
            return Failing(f"select 'f08:{c}:{s}'::int as v", "parse", "22P02",
                           f'invalid input syntax for type integer: "f08:{c}:{s}"', (("v", INT4),))
        if r < 0.40:
            return Failing(f"select * from f08_missing_{c}", "parse", "42P01",
                           f'relation "f08_missing_{c}" does not exist')
        if r < 0.55:  # planning: constant folding, so at Bind (extended) / before T (simple)
            return Failing(f"select {c} as c, 1/0 as x", "bind", "22012", "division by zero",
                           (("c", INT4), ("x", INT4)))
        if r < 0.68:
            return Failing(f"selec {c}, {s}", "syntax", "42601", 'syntax error at or near "selec"')
        n = self.rng.randint(1, 4)  # execution: rows, then the error
        k = self.rng.randint(1, n)
        return Rows(f"select {c} as c, 1/(g - {k}) as x from generate_series(1, {n}) g",
                    (("c", INT4), ("x", INT4)),
                    lambda m, p: [(str(c), str(int(1 / (g - k)))) for g in range(1, k)],
                    exec_err=("22012", "division by zero"), err_after=k - 1)

    # -- named statements: the same names in every client, this client's own statements
    def template(self, name):
        t = (self.cid + NAMES.index(name)) % 5
        c = self.cid
        if t == 0:
            st = Rows("select $1::int as c, $2::int as s, $3::text as t",
                      (("c", INT4), ("s", INT4), ("t", TEXT)), lambda m, p: [tuple(p)],
                      oids=(INT4, INT4, TEXT))
            return st, lambda: (c, self.seq, f"{c}:{self.seq}")
        if t == 1:
            st = Rows(f"select $1::int as s, 'c{c}'::text as who", (("s", INT4), ("who", TEXT)),
                      lambda m, p: [(p[0], f"c{c}")], oids=(INT4,))
            return st, lambda: (self.seq,)
        if t == 2:
            st = Rows("select g, $1::int as c from generate_series(1, $2::int) g",
                      (("g", INT4), ("c", INT4)),
                      lambda m, p: [(str(g), p[0]) for g in range(1, int(p[1]) + 1)],
                      oids=(INT4, INT4))
            return st, lambda: (c, self.rng.randint(0, 7))
        if t == 3:
            return Insert(), lambda: (self.tag, self.rng.randint(1, 1000))
        return Count(), lambda: (self.tag,)

    def named_ok(self):
        """May a named Parse be sent now? In a failed transaction with requests in flight
        warmpool answers ParseComplete where PostgreSQL refuses (a known difference,
        docs/ARCHITECTURE.md); FT_STRESS_KNOWN_DIFFS=1 generates it anyway."""
        m = self.m
        return self.cfg["known_diffs"] or self.quiet or m.skip or m.tx != "E"

    def ext_stmt(self, effects=True, allow_named=True):
        """One statement of an extended batch: unnamed Parse/Bind/[Describe]/Execute, or
        a named statement of this client (Parse when it has none by that name, then
        Bind/[Describe]/Execute, sometimes in pieces, sometimes with a named portal)."""
        rng, m = self.rng, self.m
        if allow_named and rng.random() < 0.55:
            names = NAMES if effects else [n for n in NAMES if not self.template(n)[0].effects]
            name = rng.choice(names)
            st, params = self.template(name)
            if name not in m.named or (m.skip and rng.random() < 0.5):
                if not self.named_ok():
                    return self.ext_stmt(effects, False)
                self.P(name, st)
                if rng.random() < 0.3:
                    self.D("S", name)
            elif rng.random() < 0.15:
                self.D("S", name)
            portal = "" if rng.random() < 0.8 else f"p{rng.randrange(3)}"
            self.B(portal, name, params())
            if rng.random() < 0.3:
                self.D("P", portal)
            if isinstance(st, Rows) and rng.random() < 0.4:  # in pieces: PortalSuspended
                k = rng.randint(1, 3)
                for _ in range(rng.randint(1, 4)):
                    self.E(portal, k)
                self.E(portal, 0)
            else:
                self.E(portal)
            if portal and rng.random() < 0.7:
                self.C("P", portal)
            if rng.random() < 0.06:
                self.C("S", name)  # gone; parsed again later
            return
        st = self.value_stmt(effects)
        self.P("", st)
        if rng.random() < 0.2:
            self.D("S", "")
        self.B("", "", ())
        if rng.random() < 0.4:
            self.D("P", "")
        self.E("")

    def unit_simple(self, effects=True):
        n = 1 if self.rng.random() < 0.7 else self.rng.randint(2, 3)
        if self.rng.random() < 0.04:
            self.Q()  # empty query
        else:
            self.Q(*[self.value_stmt(effects) for _ in range(n)])

    def unit_extended(self, effects=True, sync=True):
        for _ in range(self.rng.randint(1, 4)):
            self.ext_stmt(effects)
        if sync:
            self.S()

    # -- operation classes
    def variant(self, cls):
        """One random draw picks a variant among those not excluded (the same draw as
        with all of them, so a sequence changes only where an excluded one was)."""
        vs = [(v, w) for v, w in VARIANTS[cls] if f"{cls}:{v}" not in self.cfg["variants_out"]]
        x = self.rng.random() * sum(w for _, w in vs)
        for v, w in vs:
            if x < w:
                break
            x -= w
        self.opname = f"{cls}:{v}"
        return v

    def op_simple(self):
        self.opname = "simple"
        self.unit_simple()
        self.exchange()

    def op_extended(self):
        self.opname = "extended"
        self.unit_extended()
        self.exchange()

    def op_pipeline(self):
        rng = self.rng
        v = self.variant("pipeline")
        if v == "units":
            need_sync = False  # extended messages since the last Sync
            for _ in range(rng.randint(2, 5)):
                if rng.random() < 0.35:
                    self.no_skip_query()
                    self.unit_simple()
                else:
                    sync = rng.random() < 0.6
                    self.unit_extended(sync=sync)
                    need_sync = not sync
            if need_sync:
                self.S()
            self.exchange()
        elif v == "flush":
            for _ in range(rng.randint(1, 3)):
                self.unit_extended(sync=False)
                self.H()
                self.exchange()  # what Flush sent, read before sending more
            self.S()
            self.exchange()
        else:  # query-in-batch: a Query after unsynced messages
            self.unit_extended(sync=False)
            self.no_skip_query()
            self.unit_simple()
            if rng.random() < 0.5:
                self.unit_extended(sync=False)
            self.S()
            self.exchange()

    def no_skip_query(self):
        """A Query is about to follow unsynced messages: if PostgreSQL is skipping
        until Sync (a failed transaction refused them), that is class skipquery's
        business; without it, Sync first."""
        if self.m.skip and "skipquery" not in self.classes:
            self.S()

    def error_batch(self, effects=True):
        """Extended messages with an error among them, then more messages that
        PostgreSQL skips until Sync. The error: a failing statement, a duplicate name,
        an unknown statement or portal."""
        rng, m = self.rng, self.m
        for _ in range(rng.randint(0, 2)):
            self.ext_stmt(effects)
        r = rng.random()
        if r < 0.6:
            st = self.failing_stmt()
            self.P("", st)
            self.B("", "", ())
            if rng.random() < 0.5:
                self.D("P", "")
            self.E("")
        elif r < 0.72 and m.named and self.named_ok():
            name = rng.choice(sorted(m.named))
            self.P(name, self.template(name)[0])  # 42P05
        elif r < 0.86:
            self.B("", f"nx{self.cid}", (1,))  # 26000
            self.E("")
        elif r < 0.93:
            self.D("S", f"nx{self.cid}")
        else:
            self.E(f"np{self.cid}")  # 34000

    def skipped_tail(self):
        """Messages sent while PostgreSQL skips until Sync (no answer to any)."""
        for _ in range(self.rng.randint(0, 3)):
            r = self.rng.random()
            if r < 0.5:
                self.ext_stmt()
            elif r < 0.7:
                self.H()
            elif r < 0.85:
                self.C("S", self.rng.choice(NAMES))
            else:
                self.D("S", "")

    def op_error(self):
        rng = self.rng
        if self.variant("error") == "simple":
            stmts = [self.value_stmt() for _ in range(rng.randint(0, 2))]
            stmts.insert(rng.randint(0, len(stmts)), self.failing_stmt())
            if rng.random() < 0.5:
                stmts.append(self.value_stmt())
            self.Q(*stmts)
            self.exchange()
        else:
            self.error_batch()
            self.skipped_tail()
            self.S()
            if rng.random() < 0.4:  # and afterwards things work again
                self.unit_extended()
            self.exchange()

    def op_skipquery(self):
        self.opname = "skipquery"
        self.error_batch()
        for _ in range(self.rng.randint(1, 2)):
            self.skipped_tail()
            r = self.rng.random()  # a Query in the skip window: PostgreSQL ignores it
            if r < 0.6:
                self.Q(self.value_stmt())
            elif r < 0.8:
                self.Q(self.failing_stmt())
            else:
                self.Q(TxCtl(self.rng.choice(("begin", "commit", "rollback"))))
        self.skipped_tail()
        self.S()
        self.exchange()

    def txn_word(self, what):
        if what == "BEGIN":
            return TxCtl("begin" if self.rng.random() < 0.85 else "start transaction")
        if what == "COMMIT":
            return TxCtl("commit" if self.rng.random() < 0.85 else "end")
        return TxCtl("rollback" if self.rng.random() < 0.85 else "abort")

    def tx_statement(self, st):
        """BEGIN / COMMIT / ROLLBACK as a simple Query or an extended batch."""
        if self.rng.random() < 0.6:
            self.Q(st)
        else:
            self.P("", st)
            self.B("", "", ())
            self.E("")
            self.S()

    def op_txn(self):
        rng, m = self.rng, self.m
        if m.tx == "I":
            r = rng.random()
            if r < 0.85:
                self.opname = "txn:begin"
                self.tx_statement(self.txn_word("BEGIN"))
                if rng.random() < 0.5:
                    self.unit_simple() if rng.random() < 0.5 else self.unit_extended()
            else:
                self.opname = "txn:end-outside"  # WARNING 25P01
                self.tx_statement(self.txn_word(rng.choice(("COMMIT", "ROLLBACK"))))
            self.exchange()
            return
        r = rng.random()
        if r < 0.1:
            self.opname = "txn:begin-inside"  # WARNING 25001 (25P02 when failed)
            self.tx_statement(self.txn_word("BEGIN"))
        elif r < 0.3 and m.tx == "T":
            self.opname = "txn:end-in-batch"  # statements and COMMIT/ROLLBACK in one batch
            for _ in range(rng.randint(1, 3)):
                self.ext_stmt()
            st = self.txn_word(rng.choice(("COMMIT", "ROLLBACK")))
            self.P("", st)
            self.B("", "", ())
            self.E("")
            self.S()
        else:
            what = "COMMIT" if rng.random() < 0.55 else "ROLLBACK"
            self.opname = f"txn:{what.lower()}"
            self.tx_statement(self.txn_word(what))
        self.exchange()

    def copy_rows(self, n, bad_at=None):
        rows = []
        for i in range(n):
            v = self.rng.randint(1, 1000)
            rows.append((self.tag, f"x{self.cid}" if i == bad_at else str(v)))
        return rows

    def op_copy(self):
        rng = self.rng
        v = self.variant("copy")
        if v == "in":
            wait = rng.random() < 0.5
            end = rng.random()
            self.opname += "-wait" if wait else "-pipelined"
            n = rng.randint(1, 12)
            bad_at = rng.randrange(n) if end > 0.85 else None
            self.Q(CopyIn())
            if wait:
                self.exchange()  # CopyInResponse (or the error that refused the COPY)
            rows = self.copy_rows(n, bad_at)
            i = 0
            while i < n:
                k = rng.randint(1, 4)
                self.copy_data(rows[i:i + k])
                i += k
            if bad_at is None and end > 0.75:
                self.opname += "-fail"
                self.copy_fail(f"f08 client {self.cid} gives up")
            else:
                self.copy_done()
            self.exchange()
        elif v == "out":
            st = CopyOut(self.tag, rng.randint(0, 20))
            if rng.random() < 0.5:
                self.opname += "-simple"
                self.Q(st)
            else:
                self.opname += "-extended"
                self.P("", st)
                self.B("", "", ())
                if rng.random() < 0.5:
                    self.D("P", "")
                self.E("")
                self.S()
            self.exchange()
        else:  # stray: CopyData/CopyDone/CopyFail outside COPY, ignored
            for _ in range(rng.randint(1, 3)):
                r = rng.random()
                if r < 0.4:
                    self.copy_data(self.copy_rows(1))
                elif r < 0.8:
                    self.copy_done()
                else:
                    self.copy_fail("stray")
            self.unit_simple()
            self.exchange()

    def op_params(self):
        rng, m = self.rng, self.m
        value = f"f08c{self.cid}s{self.seq}"
        local = m.tx == "T" and rng.random() < 0.4
        self.opname = f"params:set{'-local' if local else ''}"
        st = SetApp(value, local)
        if rng.random() < 0.6:
            self.Q(st)
        else:
            self.P("", st)
            self.B("", "", ())
            self.E("")
            self.S()
        if rng.random() < 0.6:
            self.Q(ShowApp())
        self.exchange()

    def send_cancel(self):
        pid, key = self.key
        try:
            with socket.create_connection(self.addr, timeout=10) as s:
                s.sendall(struct.pack("!IIII", 16, 80877102, pid, key))
                self.sent += 1
                while s.recv(4096):  # PQcancel waits for the close too
                    pass
        except OSError as e:
            raise Failure("cancel", f"CancelRequest: {e}")

    def op_cancel(self):
        rng, m = self.rng, self.m
        if m.tx == "E":
            return self.op_txn()
        in_txn = m.tx == "T"
        self.opname = f"cancel{':in-txn' if in_txn else ''}"
        delay = rng.uniform(0.005, 0.06)
        extended = rng.random() < 0.3
        st = void_sleep(2 if self.cfg["direct"] else 1, self.cid, self.seq)
        # The model of each outcome: the query's result, or 57014 before / after T.
        outcomes = []
        for kind in ("late", "after-T", "before-T"):
            mm = copy.copy(m)
            mm.out, mm.portals, mm.named = list(m.out), dict(m.portals), dict(m.named)
            mm.pend = list(m.pend)
            if kind == "late":
                (mm.query([st]) if not extended else self._ext_into(mm, st))
            else:
                if not extended:
                    if kind == "after-T":
                        mm.emit(("T", st.fields))
                    mm.unnamed = None
                    mm.portals.pop("", None)
                    mm.error("57014", "canceling statement due to user request")
                    mm.ready()
                else:
                    if kind == "after-T":
                        continue
                    for pre in range(3):  # 57014 after a prefix of ParseComplete, BindComplete
                        m3 = copy.copy(mm)
                        m3.out, m3.portals, m3.pend = list(mm.out), dict(mm.portals), list(mm.pend)
                        m3.unnamed = st if pre else None
                        for item in (("1",), ("2",))[:pre]:
                            m3.emit(item)
                        m3.error("57014", "canceling statement due to user request")
                        m3.ready()
                        outcomes.append((kind, m3))
                    continue
            outcomes.append((kind, mm))
        raw = (fe(b"Q", z(st.text)) if not extended else
               fe(b"P", z("") + z(st.text) + b"\0\0") + fe(b"B", z("") + z("") + enc_params(()))
               + fe(b"E", z("") + b"\0\0\0\0") + fe(b"S"))
        nmsgs = 1 if not extended else 4
        self.push()
        self.conn.send(raw)
        self.sent += nmsgs
        self.hist_sent.append(f"{'Q' if not extended else 'P/B/E/S'} {st.text}")
        self.quiet = False
        time.sleep(delay)
        self.send_cancel()
        got = []
        while True:
            got.append(self.recv_one())
            if got[-1][0] == "Z" or len(got) > 8:
                break
        for kind, mm in outcomes:
            exp = mm.out[mm.nread:]
            if len(exp) == len(got) and all(same(e, g) for e, g in zip(exp, got)):
                self.cancels[kind] += 1
                mm.out.clear()
                mm.flushed = mm.nread = 0
                self.m = mm
                break
        else:
            raise Failure("mismatch", f"cancelled pg_sleep answered {[show(g) for g in got]}; "
                          "want its result or 57014 then ReadyForQuery")
        self.quiet = True
        if in_txn:  # the outcome decides T or E: end the transaction either way
            self.Q(TxCtl("rollback"))
            self.exchange()

    @staticmethod
    def _ext_into(mm, st):
        mm.parse("", st)
        mm.bind("", "", ())
        mm.execute("", 0)
        mm.sync()

    def op_disconnect(self):
        rng, m = self.rng, self.m
        v = self.variant("disconnect")
        if v == "mid-message":
            for _ in range(rng.randint(0, 3)):  # complete messages, never a Sync or Query
                r = rng.random()
                if r < 0.7:
                    self.ext_stmt()
                else:
                    self.P("", self.value_stmt())
            r = rng.random()
            if r < 0.3:
                raw = fe(b"Q", z(self.v_triple().text))
            elif r < 0.5:
                raw = fe(b"P", z("") + z(self.v_big().text) + b"\0\0")
            elif r < 0.7:
                raw = fe(b"B", z("") + z("") + enc_params((self.cid, self.seq)))
            elif r < 0.85:
                raw = fe(b"E", z("") + b"\0\0\0\0")
            else:
                raw = fe(b"S")
            cut = rng.randint(1, len(raw) - 1)
            self.push()
            self.conn.send(raw[:cut])
            self.hist_sent.append(f"{raw[:1]!r} cut at {cut}/{len(raw)} bytes")
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0, 0.03))
            self.hangup()
        elif v == "query-running":
            st = void_sleep(1, self.cid, self.seq)
            if rng.random() < 0.5:
                self.Q(st)
            else:
                self.P("", st)
                self.B("", "", ())
                self.E("")
                self.S()
            self.push()
            time.sleep(rng.uniform(0.005, 0.04))
            self.hangup()
        elif v == "in-txn":
            if m.tx == "I":
                self.Q(TxCtl("begin"))
                for _ in range(rng.randint(0, 2)):
                    self.unit_simple() if rng.random() < 0.5 else self.unit_extended()
                self.exchange()
            if rng.random() < 0.5:
                self.ext_stmt()  # and unsynced work
            self.hangup()
        else:  # skip-until-sync
            self.error_batch()
            self.exchange()  # the error is flushed at once
            self.skipped_tail()
            self.hangup()

    def op_unknown(self):
        rng, m = self.rng, self.m
        v = self.variant("unknown")
        if v == "alone":
            pass
        elif v == "after-unit":
            self.unit_simple(False) if rng.random() < 0.5 else self.unit_extended(False)
        elif v == "mid-batch":
            for _ in range(rng.randint(1, 2)):
                self.ext_stmt(False)
        else:  # skip-until-sync
            self.error_batch(False)
            self.skipped_tail()
        typ = rng.choice((b"z", b"z", b"y", b"\x01", b"~"))
        body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 12)))
        self.put(fe(typ, body), f"unknown type {typ!r} ({len(body)} bytes)")
        self.push()
        # PostgreSQL answers everything before it, then FATAL 08P01, and closes. A pooler
        # may drop answers still in flight: a prefix of them is accepted, nothing else.
        pending = m.out[m.nread:]
        i = 0
        while True:
            got = self.recv_one()
            if got[0] == "F":
                if got[1] != "08P01":
                    raise Failure("mismatch", f"unknown message type: FATAL {got[1]}, want 08P01")
                break
            if i >= len(pending) or not same(pending[i], got):
                raise Failure("mismatch", f"unknown message type: expected "
                              f"{show(pending[i]) if i < len(pending) else 'nothing more'} "
                              f"then FATAL 08P01, got {show(got)}")
            i += 1
        self.expect_close("after FATAL 08P01")
        self.conn.close()
        self.conn = self.m = None

    def expect_close(self, when):
        """Nothing more may come: only the close."""
        try:
            t, body = self.conn.read_msg()
            raise Failure("mismatch", f"a message {when}: {show(decode(t.decode('latin-1'), body))}")
        except EOFError:
            pass
        except socket.timeout:
            raise Failure("hang", f"the connection stayed open {when}")
        except OSError:
            pass

    # -- the run
    def pick(self):
        m = self.m
        if m.tx != "I" and "txn" in self.classes and self.rng.random() < 0.3:
            return "txn"
        return self.rng.choices(self.classes, self.weights)[0]

    def run(self):
        for i in range(self.steps):
            if time.monotonic() > self.stop_at:
                self.stopped = f"stopped by the time budget at op {i}/{self.steps}"
                break
            self.seq = i
            self.opname = "connect"
            try:
                if self.conn is None:
                    self.connect()
                cls = self.pick()
                self.ops[cls] += 1
                getattr(self, "op_" + cls)()
                self.done_steps += 1
            except Failure as e:
                self.record(e.kind, e.detail)
                self.drop(uncertain=True)
            except (OSError, EOFError) as e:
                self.record("closed", f"{type(e).__name__}: {e}")
                self.drop(uncertain=True)
            if len(self.failures) >= MAX_FAILURES:
                self.stopped = f"stopped after {MAX_FAILURES} failures at op {i}/{self.steps}"
                break
        try:
            if self.conn is not None and self.stopped is None:
                self.opname = "end"
                if self.m.tx != "I":
                    self.Q(TxCtl("rollback"))
                self.Q(Count(self.tag))
                self.exchange()
                self.put(fe(b"X"), "X")
                self.push()
                self.expect_close("after Terminate")
        except Failure as e:
            self.record(e.kind, e.detail)
            self.drop(uncertain=True)
        except (OSError, EOFError) as e:
            self.record("closed", f"{type(e).__name__}: {e}")
            self.drop(uncertain=True)
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# ---------------------------------------------------------------- the case

def replay_hint(cfg):
    env = [f"FT_STRESS_SEED={cfg['seed']}"]
    if cfg["scale"] != 1:
        env.append(f"FT_STRESS_SCALE={cfg['scale']:g}")
    if cfg["clients"] != 10:
        env.append(f"FT_STRESS_CLIENTS={cfg['clients']}")
    if cfg["ids"] != list(range(cfg["clients"])):
        env.append(f"FT_STRESS_IDS={','.join(map(str, cfg['ids']))}")
    if set(cfg["classes"]) != set(CLASSES):
        env.append(f"FT_STRESS_ONLY={','.join(cfg['classes'])}")
    if cfg["variants_out"]:
        env.append(f"FT_STRESS_EXCLUDE={','.join(sorted(cfg['variants_out']))}")
    if cfg["direct"]:
        env.append("FT_STRESS_DIRECT=1")
    if cfg["known_diffs"]:
        env.append("FT_STRESS_KNOWN_DIFFS=1")
    return " ".join(env) + f" tests/faults/run.sh {CASE}"


def fresh_client(addr, db):
    c = Conn(addr, "f08-fresh", timeout=20)
    try:
        c.login_full(fl.USER, db)
        c.query("select 'f08 fresh'")
        msgs = [decode(t.decode(), b) for t, b in c.read_until_ready()]
        return msgs == [("T", (("?column?", TEXT),)), ("D", ("f08 fresh",)), ("C", "SELECT 1"),
                        ("Z", "I")], msgs
    finally:
        c.close()


def main():
    cfg = config()
    print(f"seed {cfg['seed']}", flush=True)
    log(f"replay: {replay_hint(cfg)}")
    log(f"{len(cfg['ids'])} clients x {max(1, round(STEPS * cfg['scale']))} operations "
        f"(scale {cfg['scale']:g}), {'straight to PostgreSQL' if cfg['direct'] else 'through warmpool md5 (pools small: 2 backends, tiny: 1)'}; "
        f"classes {','.join(cfg['classes'])}; budget {cfg['budget']:.0f} s")
    with fl.pg_admin() as admin:
        admin.execute("CREATE TABLE IF NOT EXISTS stress_sink (run text, n int)")
        admin.execute("CREATE INDEX IF NOT EXISTS stress_sink_run ON stress_sink (run)")
        admin.execute("ALTER TABLE stress_sink OWNER TO wpuser")
    run_id = f"{cfg['seed']}.{os.getpid()}"
    t0 = time.monotonic()
    clients = [Client(i, cfg, run_id, t0 + cfg["budget"]) for i in cfg["ids"]]
    for c in clients:
        c.start()
    for c in clients:
        c.join(max(0.1, cfg["budget"] + READ_TIMEOUT * 2 - (time.monotonic() - t0)))
    took = time.monotonic() - t0
    stuck = [c.cid for c in clients if c.is_alive()]
    sent = sum(c.sent for c in clients)
    recv = sum(c.recv for c in clients)
    failures = [f for c in clients for f in c.failures]
    kinds = collections.Counter(k for k, _ in failures)
    ops = collections.Counter()
    cancels = collections.Counter()
    types = collections.Counter()
    for c in clients:
        ops.update(c.ops)
        cancels.update(c.cancels)
        types.update(c.types)
    log(f"{sent + recv} messages ({sent} sent, {recv} received), "
        f"{sum(c.done_steps for c in clients)} operations in {took:.1f} s, "
        f"{len(failures)} mismatches/hangs ({dict(kinds) or 'none'})")
    log(f"operations by class: {dict(sorted(ops.items()))}; cancels: "
        f"{cancels['after-T'] + cancels['before-T']} took effect, {cancels['late']} came late")
    log(f"messages received by type: {dict(sorted(types.items()))}")
    for kind, text in failures[:15]:
        log(f"  {kind.upper()} {text}")
    if len(failures) > 15:
        log(f"  ... and {len(failures) - 15} more")
    for c in clients:
        if c.stopped:
            log(f"  client {c.cid}: {c.stopped}")
    check(not stuck, f"every client finished (stuck: {stuck or 'none'})")
    check(not failures, f"0 mismatches: every message each client received is the one its "
          f"own sequence must produce ({len(failures)} mismatches/hangs)")
    check(all(c.done_steps == c.steps for c in clients),
          f"every client ran its whole sequence ({sum(c.done_steps for c in clients)}/"
          f"{sum(c.steps for c in clients)} operations)")
    if set(cfg["classes"]) == set(CLASSES) and not cfg["variants_out"] and len(cfg["ids"]) >= 10:
        need = int(MIN_MESSAGES * cfg["scale"])
        check(sent + recv >= need, f"{sent + recv} protocol messages >= {need}")

    # What each client committed, straight on PostgreSQL.
    rows = dict(((r, (k, s)) for r, k, s in pg_query(
        "SELECT run, count(*), coalesce(sum(n), 0) FROM stress_sink WHERE run LIKE %s GROUP BY run",
        (f"f08.{run_id}.%",))))
    bad, known = [], 0
    for c in clients:
        for tag, (k, s) in c.ledger.items():
            if tag in c.uncertain:
                continue
            known += 1
            got = rows.get(tag, (0, 0))
            if tuple(got) != (k, s):
                bad.append(f"{tag}: {got} in the database, {k, s} committed")
    check(not bad, f"stress_sink: rows committed by each client are exactly those its model "
          f"committed ({known} ledgers; {bad[:5] or 'all match'})")

    # No backend left in a transaction (polled: a closed client's backend needs a moment).
    deadline = time.monotonic() + 10
    while True:
        left = pg_query("SELECT pid, usename, state, query FROM pg_stat_activity WHERE "
                        "datname = 'wpfault' AND state LIKE 'idle in transaction%' "
                        "AND pid <> pg_backend_pid()")
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    check(not left, f"no backend of the test database is idle in transaction ({left or 'none'})")
    if cfg["direct"]:
        targets = [(("127.0.0.1", fl.PG_PORT), fl.DB)]
    else:
        port = fl.INSTANCES["md5"][0]
        targets = [(("127.0.0.1", port), "small"), (("127.0.0.1", port), "tiny")]
    for addr, db in targets:
        try:
            t = time.monotonic()
            good, msgs = fresh_client(addr, db)
            check(good, f"a fresh client of {db} is served in {time.monotonic() - t:.1f} s ({msgs})")
        except (OSError, EOFError, Failure) as e:
            check(False, f"a fresh client of {db} is served ({type(e).__name__}: {e})")
    check_invariants(RUN)
    if fl._fails:
        log(f"replay: {replay_hint(cfg)}")
    finish()


if __name__ == "__main__":
    main()
