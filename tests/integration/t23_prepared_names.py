"""t23_prepared_names — issue 8, acceptance 4: statement names are per client.

Through private warmpools (transaction mode; pools of 1 and 2):
- two raw clients prepare different SQL under the same name "s1" and alternate Bind/
  Execute 200 times; each always gets its own statement's rows; re-preparing after
  Close keeps them apart
- 8 threads, each its own SQL under the same name "s1", 150 transactions each over a
  pool of 2: every row is the thread's own
- psycopg 3 (prepare_threshold=0): two connections whose first statements differ get
  the same driver name _pg3_0; each keeps getting its own results
- one client prepares the same SQL under two names: both work; closing one leaves the
  other; Bind of the closed one fails with 26000
- a client cannot reach statements it did not prepare through warmpool's own backend
  names (wp_<id>, read from pg_prepared_statements): Describe/Bind of them, SQL EXECUTE
  and SQL DEALLOCATE fail with 26000 as on PostgreSQL, and the owner's statement keeps
  working afterwards
"""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepared_lib import (DIRECT, Bind, Close, Describe, Execute, Parse, Query,  # noqa: E402
                          Sync, Warmpool, check, fail, fmt, main, make_db, note, ok)

DB = "wpprep_names"


def rows(res):
    return [tok[1:] for tok in res if tok[0] == "D"]


def errors(res):
    return [tok[1] for tok in res if tok[0] == "E"]


def exec_s1(raw, arg, name="s1"):
    res = raw.run(Bind(name, [arg]), Execute(), Sync())
    return res


def two_clients_same_name(wp, pool):
    a, b = wp.raw(pool), wp.raw(pool)
    qa = "SELECT 'A:' || $1::text AS v"
    qb = "SELECT 'B:' || $1::int * 2 AS v"
    ra = a.run(Parse("s1", qa), Sync())
    rb = b.run(Parse("s1", qb), Sync())
    check(ra == [("1",), ("Z", "I")] and rb == [("1",), ("Z", "I")],
          f"[{pool}] clients A and B both prepare 's1' (different SQL)",
          f"A {fmt(ra)}, B {fmt(rb)}")
    bad = []
    for i in range(200):
        got_a = rows(exec_s1(a, i))
        got_b = rows(exec_s1(b, i))
        if got_a != [(f"A:{i}",)] or got_b != [(f"B:{i * 2}",)]:
            bad.append((i, got_a, got_b))
        if i % 50 == 49:
            # re-prepare under the same name: Close then Parse, in one pipeline
            r = a.run(Close("S", "s1"), Parse("s1", qa), Bind("s1", [i]), Execute(), Sync())
            if rows(r) != [(f"A:{i}",)]:
                bad.append((i, "A re-prepare", fmt(r)))
    check(not bad, f"[{pool}] 200 alternations: A always runs A's s1, B always B's s1",
          f"first wrong answers: {bad[:5]}")
    a.close()
    b.close()


def threads_same_name(wp, pool, nthreads=8, iters=150):
    bad, errs = [], []

    def worker(k):
        try:
            r = wp.raw(pool)
            q = f"SELECT {k} * 1000 + $1::int AS v, 'thread{k}'::text AS who"
            res = r.run(Parse("s1", q), Sync())
            if errors(res):
                bad.append((k, "parse", fmt(res)))
                return
            for i in range(iters):
                res = r.run(Bind("s1", [i]), Execute(), Sync())
                if rows(res) != [(str(k * 1000 + i), f"thread{k}")]:
                    bad.append((k, i, fmt(res)))
                    return
            r.close()
        except Exception as e:  # noqa: BLE001
            errs.append((k, repr(e)))

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(nthreads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    check(not errs and not bad,
          f"[{pool}] {nthreads} threads × {iters}: each thread's 's1' is its own SQL",
          f"errors {errs[:3]}, wrong {bad[:3]}")


def psycopg_same_driver_name(wp, pool):
    c1 = wp.psycopg(pool, autocommit=True, prepare_threshold=0)
    c2 = wp.psycopg(pool, autocommit=True, prepare_threshold=0)
    bad = []
    for i in range(100):
        v1 = c1.execute("SELECT %s::int + 1000 AS one", (i,)).fetchone()[0]
        v2 = c2.execute("SELECT %s::text || '-two' AS two", (str(i),)).fetchone()[0]
        if v1 != i + 1000 or v2 != f"{i}-two":
            bad.append((i, v1, v2))
    names1 = c1.execute("SELECT 1").fetchone()
    check(not bad and names1 == (1,),
          f"[{pool}] psycopg prepare_threshold=0: two connections, both first statements "
          "named _pg3_0, each gets its own results 100 times", f"wrong: {bad[:5]}")
    c1.close()
    c2.close()


def one_client_two_names(wp, pool):
    r = wp.raw(pool)
    q = "SELECT $1::int * 3 AS v"
    res = r.run(Parse("x1", q), Parse("x2", q), Bind("x1", [1]), Execute(), Bind("x2", [2]),
                Execute(), Sync())
    check(res == [("1",), ("1",), ("2",), ("D", "3"), ("C", "SELECT 1"), ("2",), ("D", "6"),
                  ("C", "SELECT 1"), ("Z", "I")],
          f"[{pool}] same SQL under two names x1, x2: both work in one pipeline", fmt(res))
    bad = []
    for i in range(20):
        a = rows(exec_s1(r, i, "x1"))
        b = rows(exec_s1(r, i, "x2"))
        if a != [(str(3 * i),)] or b != [(str(3 * i),)]:
            bad.append((i, a, b))
    check(not bad, f"[{pool}] x1 and x2 keep working in later transactions", str(bad[:3]))
    res = r.run(Close("S", "x1"), Sync())
    res2 = exec_s1(r, 5, "x2")
    res3 = exec_s1(r, 5, "x1")
    check(res == [("3",), ("Z", "I")] and rows(res2) == [("15",)] and
          errors(res3) == ["26000"],
          f"[{pool}] after Close x1: x2 still works, Bind x1 fails with 26000",
          f"close {fmt(res)}, x2 {fmt(res2)}, x1 {fmt(res3)}")
    r.close()


def no_access_to_backend_names(wp):
    """Pool of 1: B must not reach A's statement through warmpool's name for it."""
    a, b = wp.raw("one"), wp.raw("one")
    q = "SELECT 'secret of A'::text || $1::text AS v"
    res = a.run(Parse("mine", q), Bind("mine", ["!"]), Execute(), Sync())
    check(rows(res) == [("secret of A!",)], "A prepares and runs its statement 'mine'",
          fmt(res))
    names, err, _ = b.query("SELECT name FROM pg_prepared_statements "
                            "WHERE statement LIKE '%secret of A%'")
    names = [n[0] for n in names]
    if not names:
        fail("A's statement is not in pg_prepared_statements of the pool's only backend "
             f"(err {err})")
    ok(f"the backend holds A's statement as {names}")
    leaks = []
    for n in names:
        res = b.run(Describe("S", n), Sync())
        if errors(res) != ["26000"]:
            leaks.append(f"Describe S {n}: {fmt(res)}")
        res = b.run(Bind(n, ["?"]), Execute(), Sync())
        if errors(res) != ["26000"]:
            leaks.append(f"Bind {n}: {fmt(res)}")
        res = b.run(Query(f"EXECUTE {n}('?')"))
        if errors(res) != ["26000"]:
            leaks.append(f"EXECUTE {n}('?'): {fmt(res)}")
        res = b.run(Query(f"DEALLOCATE {n}"))
        if errors(res) != ["26000"]:
            leaks.append(f"DEALLOCATE {n}: {fmt(res)}")
    res = a.run(Bind("mine", ["?"]), Execute(), Sync())
    if rows(res) != [("secret of A?",)]:
        leaks.append(f"afterwards A's own Bind mine: {fmt(res)}")
    check(not leaks, "client B cannot Describe/Bind/EXECUTE/DEALLOCATE A's statement by "
          "its backend name (26000 as on PostgreSQL), and A's statement still works",
          "; ".join(leaks))
    a.close()
    b.close()


def test():
    make_db(DB)
    wp = Warmpool("t23", {"one": {"dbname": DB, "max_pool_size": 1},
                          "two": {"dbname": DB, "max_pool_size": 2}}).start()
    for pool in ("one", "two"):
        two_clients_same_name(wp, pool)
        one_client_two_names(wp, pool)
        psycopg_same_driver_name(wp, pool)
    threads_same_name(wp, "two")
    threads_same_name(wp, "one", nthreads=4, iters=60)
    if DIRECT:
        note("direct: warmpool's backend names do not exist; isolation check skipped")
    else:
        no_access_to_backend_names(wp)
    wp.stop()


if __name__ == "__main__":
    main(test)
