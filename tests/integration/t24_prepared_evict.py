"""t24_prepared_evict — issue 8, acceptance 5: LRU eviction at max_prepared_statements.

A private warmpool with max_prepared_statements = 3, pool of 1 (so every query through it,
including the checks, runs on the one backend):
- 4 raw clients each prepare 10 distinct statements and run them in rotation (and in
  pipelines using all 10), 4 psycopg clients (prepare_threshold=0) do the same: every
  result is right
- meanwhile a monitor client samples pg_prepared_statements through the pool: the
  backend never holds more than 3 wp_% statements, and more than 3 distinct wp_% names
  are seen over time (evictions happened)
- a pipeline needing more statements than fit (Parse a..d, then Bind a) is answered as
  PostgreSQL answers it
- an eviction in a pipeline that fails before it (the backend skips warmpool's Close):
  the statement is still usable afterwards and the backend still holds at most 3
- evictions counted: read from the admin console (SHOW PREPARED / SHOW STATS) when it
  exists; until then noted and skipped
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepared_lib import (DIRECT, PASSWORD, PG_PORT, USER, Bind, Execute, Parse,  # noqa: E402
                          Raw, Sync, Warmpool, check, fail, fmt, main, make_db, note, ok)

DB = "wpprep_evict"
MAX = 3
NSTMT = 10


def stmt_sql(k):
    return f"SELECT $1::int + {k} AS v /* evict {k} */"


def rows(res):
    return [tok[1:] for tok in res if tok[0] == "D"]


def errors(res):
    return [tok[1] for tok in res if tok[0] == "E"]


class Monitor(threading.Thread):
    def __init__(self, wp):
        super().__init__(daemon=True)
        self.raw = wp.raw("one")
        self.stop_flag = False
        self.max_seen = 0
        self.names = set()
        self.samples = 0
        self.worst = None
        self.error = None

    def sample(self):
        res = self.raw.run(__import__("prepared_lib").Query(
            "SELECT name FROM pg_prepared_statements WHERE name LIKE 'wp\\_%'"))
        if errors(res):
            raise RuntimeError(fmt(res))
        names = [r[0] for r in rows(res)]
        self.samples += 1
        self.names.update(names)
        if len(names) > self.max_seen:
            self.max_seen = len(names)
            self.worst = names
        return names

    def run(self):
        try:
            while not self.stop_flag:
                self.sample()
                time.sleep(0.002)
        except Exception as e:  # noqa: BLE001
            self.error = repr(e)


def raw_rotation(wp, nclients=4, rounds=120):
    bad, errs = [], []

    def worker(c):
        try:
            r = wp.raw("one")
            for k in range(NSTMT):
                res = r.run(Parse(f"st{k}", stmt_sql(k)), Sync())
                if res != [("1",), ("Z", "I")]:
                    bad.append((c, "parse", k, fmt(res)))
                    return
            for i in range(rounds):
                k = (i + c) % NSTMT
                res = r.run(Bind(f"st{k}", [i]), Execute(), Sync())
                if rows(res) != [(str(i + k),)]:
                    bad.append((c, i, k, fmt(res)))
                    return
                if i % 10 == 9:  # one pipeline touching all ten statements
                    msgs = []
                    for j in range(NSTMT):
                        msgs += [Bind(f"st{j}", [i]), Execute()]
                    res = r.run(*msgs, Sync())
                    want = [(str(i + j),) for j in range(NSTMT)]
                    if rows(res) != want or errors(res):
                        bad.append((c, i, "pipeline", fmt(res)))
                        return
            r.close()
        except Exception as e:  # noqa: BLE001
            errs.append((c, repr(e)))

    ts = [threading.Thread(target=worker, args=(c,)) for c in range(nclients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    check(not bad and not errs, f"{nclients} raw clients × {NSTMT} statements in rotation "
          f"({rounds} transactions + pipelines of all {NSTMT}): every result right",
          f"wrong {bad[:3]} errors {errs[:3]}")


def psycopg_rotation(wp, nclients=4, rounds=150):
    bad, errs = [], []

    def worker(c):
        try:
            conn = wp.psycopg("one", autocommit=(c % 2 == 0), prepare_threshold=0)
            for i in range(rounds):
                k = (i * 3 + c) % NSTMT
                v = conn.execute(stmt_sql(k).replace("$1", "%s"), (i,)).fetchone()[0]
                if v != i + k:
                    bad.append((c, i, k, v))
                    return
                if not conn.autocommit and i % 5 == 4:
                    conn.commit()
            conn.close()
        except Exception as e:  # noqa: BLE001
            errs.append((c, repr(e)))

    ts = [threading.Thread(target=worker, args=(c,)) for c in range(nclients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    check(not bad and not errs, f"{nclients} psycopg clients (prepare_threshold=0, "
          f"autocommit and transactions) × {NSTMT} statements: every result right",
          f"wrong {bad[:3]} errors {errs[:3]}")


def overfull_pipeline(wp):
    tag = str(time.time())

    def q(x):
        return f"SELECT '{x}'::text || $1::text AS v /* {tag} */"

    steps = [
        [Parse("a", q("a")), Parse("b", q("b")), Parse("c", q("c")), Parse("d", q("d")),
         Bind("a", [1]), Execute(), Bind("d", [2]), Execute(), Bind("b", [3]), Execute(),
         Sync()],
        [Bind("c", [4]), Execute(), Bind("a", [5]), Execute(), Bind("d", [6]), Execute(),
         Sync()],
    ]
    d = Raw("127.0.0.1", PG_PORT, USER, PASSWORD, DB)
    want = [d.run(*s) for s in steps]
    d.close()
    r = wp.raw("one")
    got = [r.run(*s) for s in steps]
    r.close()
    check(got == want, "pipeline of 4 Parses + Binds with room for 3: same answers as "
          "PostgreSQL", f"PostgreSQL {[fmt(x) for x in want]}, warmpool {[fmt(x) for x in got]}")


def eviction_after_error(wp, mon):
    """The backend skips warmpool's eviction Close when the pipeline failed before it."""
    tag = str(time.time())

    def q(x):
        return f"SELECT '{x}'::text || $1::text AS v /* err {tag} */"

    r = wp.raw("one")
    # fill the backend with this client's three statements
    res = r.run(Parse("e1", q(1)), Parse("e2", q(2)), Parse("e3", q(3)), Bind("e1", [0]),
                Execute(), Bind("e2", [0]), Execute(), Bind("e3", [0]), Execute(), Sync())
    check(rows(res) == [("10",), ("20",), ("30",)], "three statements fill the backend",
          fmt(res))
    # error first; then a new statement, which makes warmpool evict one
    res = r.run(Parse("bad", "SELEC oops"), Parse("e4", q(4)), Sync())
    check(errors(res) == ["42601"] and res[-1] == ("Z", "I"),
          "pipeline: Parse with syntax error, then Parse of a 4th statement: 42601",
          fmt(res))
    names = mon.sample()
    ok(f"backend now holds {sorted(names)}")
    res_all = []
    for name, x in (("e1", 1), ("e2", 2), ("e3", 3)):
        res = r.run(Bind(name, ["x"]), Execute(), Sync())
        res_all.append((name, fmt(res)))
    res4 = r.run(Bind("e4", ["x"]), Execute(), Sync())
    names = mon.sample()
    good = [rr for rr in res_all if "E(" not in rr[1]]
    check(len(good) == 3 and errors(res4) == ["26000"],
          "after the failed pipeline e1..e3 still work and e4 was never created (26000)",
          f"{res_all}, e4: {fmt(res4)}; the backend then holds {sorted(names)}")
    check(len(names) <= MAX, f"backend holds at most {MAX} wp_% statements afterwards",
          f"it holds {sorted(names)}")
    res = r.run(Parse("e4", q(4)), Bind("e4", ["y"]), Execute(), Sync())
    names = mon.sample()
    check(rows(res) == [("4y",)] and len(names) <= MAX,
          "e4 prepared properly afterwards; backend still within the limit",
          f"{fmt(res)}, backend holds {sorted(names)}")
    r.close()


def eviction_counter(wp):
    try:
        import psycopg
        conn = psycopg.connect(host=wp.host, port=wp.port, user=USER, password=PASSWORD,
                               dbname="warmpool", autocommit=True)
    except Exception as e:  # noqa: BLE001
        note(f"admin console not reachable ({str(e).strip()[:120]}); evictions counter "
             "not checked")
        return
    for cmd in ("SHOW PREPARED", "SHOW STATS"):
        try:
            cur = conn.execute(cmd)
        except Exception as e:  # noqa: BLE001
            note(f"{cmd}: {str(e).strip()[:100]}")
            continue
        cols = [c.name for c in cur.description]
        ev = [i for i, c in enumerate(cols) if "evict" in c]
        if not ev:
            note(f"{cmd}: no column about evictions in {cols}")
            continue
        total = sum(int(row[ev[0]] or 0) for row in cur.fetchall())
        check(total > 0, f"{cmd}: {cols[ev[0]]} counts the evictions ({total})")
        return
    note("no admin command exposes an evictions counter yet; not checked")


def test():
    make_db(DB)
    wp = Warmpool("t24", {"one": {"dbname": DB, "max_pool_size": 1}},
                  max_prepared_statements=MAX, admin_users=USER, stats_users=USER).start()
    if DIRECT:
        raw_rotation(wp)
        psycopg_rotation(wp)
        overfull_pipeline(wp)
        note("direct: no pooler, no limit to check")
        return
    mon = Monitor(wp)
    mon.start()
    raw_rotation(wp)
    psycopg_rotation(wp)
    overfull_pipeline(wp)
    mon.stop_flag = True
    mon.join(10)
    if mon.error:
        fail(f"monitor failed: {mon.error}")
    check(mon.samples >= 20 and mon.max_seen <= MAX,
          f"{mon.samples} samples of pg_prepared_statements on the backend: at most "
          f"{MAX} wp_% statements (max seen {mon.max_seen})", f"worst sample {mon.worst}")
    check(len(mon.names) > MAX, f"{len(mon.names)} distinct wp_% names seen over time: "
          "statements were evicted and re-prepared")
    eviction_after_error(wp, mon)
    eviction_counter(wp)
    wp.stop()


if __name__ == "__main__":
    main(test)
