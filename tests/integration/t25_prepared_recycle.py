"""t25_prepared_recycle — issue 8, acceptance 6: a recycled backend loses nothing visible.

Private warmpool, transaction mode, pool of 1 (and a statement-mode pool of 1). A client
prepares statements; the pool's backend is then terminated with pg_terminate_backend
(found directly in pg_stat_activity) while the client holds no backend; the client's next
Bind / Describe / Parse-then-Bind / pipeline on its named statements must succeed with the
right rows, on a new backend (new pid). Drivers too: psycopg 3 (prepare_threshold=0) and
asyncpg keep their cached statements across the recycle. Backends recycled by
server_lifetime behave the same.

A second warmpool with server_reset_query_always = 1: a client that disconnects inside a
transaction makes warmpool roll back and run DISCARD ALL on that backend, which drops
every prepared statement there; the next client's Parse + Bind of the same SQL must work.
"""
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepared_lib import (DIRECT, PASSWORD, USER, Bind, Describe, Execute, Parse,  # noqa: E402
                          Query, Sync, Warmpool, backend_pids, check, fail, fmt, main,
                          make_db, note, terminate)

DB = "wpprep_recycle"


def rows(res):
    return [tok[1:] for tok in res if tok[0] == "D"]


def errors(res):
    return [tok[1] for tok in res if tok[0] == "E"]


def recycle():
    pids = backend_pids(DB)
    if not pids:
        fail("no backend of the pool found in pg_stat_activity")
    terminate(pids)
    time.sleep(0.1)  # let warmpool read the backend's FATAL/EOF
    return pids


def raw_recycles(wp, pool):
    r = wp.raw(pool)
    q1 = "SELECT $1::int * 10 AS tens"
    q2 = "SELECT $1::text || '?' AS asked"
    res = r.run(Parse("p1", q1), Parse("p2", q2), Describe("S", "p1"), Bind("p1", [1]),
                Execute(), Bind("p2", ["a"]), Execute(), Sync())
    check(rows(res) == [("10",), ("a?",)], f"[{pool}] p1, p2 prepared and run", fmt(res))
    pid0 = r.scalar("SELECT pg_backend_pid()")

    cases = [
        ("Bind p1", [Bind("p1", [2]), Execute(), Sync()], [("20",)]),
        ("Describe p2 + Bind p2", [Describe("S", "p2"), Bind("p2", ["b"]), Execute(), Sync()],
         [("b?",)]),
        ("Parse p3 (known SQL) + Describe + Sync, then Bind p3",
         [Parse("p3", q1), Describe("S", "p3"), Sync(), Bind("p3", [3]), Execute(), Sync()],
         [("30",)]),
        ("pipeline Bind p1, Bind p2, Bind p3",
         [Bind("p1", [4]), Execute(), Bind("p2", ["c"]), Execute(), Bind("p3", [5]),
          Execute(), Sync()], [("40",), ("c?",), ("50",)]),
        ("BEGIN; Bind p2; COMMIT", [Query("BEGIN"), Bind("p2", ["d"]), Execute(), Sync(),
                                    Query("COMMIT")], [("d?",)]),
    ]
    pids_seen = {pid0}
    for what, msgs, want in cases:
        killed = recycle()
        res = r.run(*msgs)
        pid = r.scalar("SELECT pg_backend_pid()")
        check(rows(res) == want and not errors(res) and pid not in killed,
              f"[{pool}] backend {killed} terminated; then {what}: right rows on the new "
              f"backend {pid}", f"got {fmt(res)}, pid {pid}")
        pids_seen.add(pid)
    r.close()


def psycopg_recycles(wp):
    conn = wp.psycopg("one", autocommit=True, prepare_threshold=0)
    bad = []
    for i in range(4):
        v = conn.execute("SELECT %s::int + 100 AS v", (i,)).fetchone()[0]
        w = conn.execute("SELECT %s::text || 'w' AS w", (str(i),)).fetchone()[0]
        if (v, w) != (i + 100, f"{i}w"):
            bad.append((i, v, w))
        recycle()
    conn.close()
    check(not bad, "psycopg prepare_threshold=0: the same prepared statements keep working "
          "across 4 backend recycles", str(bad))


def asyncpg_recycles(wp):
    import asyncpg

    async def run():
        conn = await asyncpg.connect(host=wp.host, port=wp.port, user=USER,
                                     password=PASSWORD, database=wp.dbname("one"))
        out = []
        for i in range(4):
            out.append(await conn.fetchval("SELECT $1::int * 7", i))
            row = await conn.fetchrow("SELECT $1::text AS t, $2::int AS n", f"x{i}", i)
            out.append((row["t"], row["n"]))
            await asyncio.get_running_loop().run_in_executor(None, recycle)
        await conn.close()
        return out

    out = asyncio.run(run())
    want = []
    for i in range(4):
        want += [i * 7, (f"x{i}", i)]
    check(out == want, "asyncpg (statement cache on): fetchval/fetchrow keep working across "
          "4 backend recycles", f"got {out}")


def lifetime_recycles(wp):
    r = wp.raw("life")
    res = r.run(Parse("l1", "SELECT $1::int - 1 AS v"), Sync())
    pids, bad = set(), []
    for i in range(5):
        res = r.run(Bind("l1", [i]), Execute(), Sync())
        if rows(res) != [(str(i - 1),)]:
            bad.append((i, fmt(res)))
        pids.add(r.scalar("SELECT pg_backend_pid()"))
        time.sleep(1.2)
    r.close()
    check(not bad and len(pids) >= 2, f"server_lifetime = 1 s: statement keeps working on "
          f"{len(pids)} successive backends", str(bad))


def statement_mode(wp):
    r = wp.raw("stmt")
    res = r.run(Parse("m1", "SELECT $1::int + 5 AS v"), Bind("m1", [1]), Execute(), Sync())
    bad = [] if rows(res) == [("6",)] else [fmt(res)]
    for i in range(20):
        res = r.run(Bind("m1", [i]), Execute(), Sync())
        if rows(res) != [(str(i + 5),)]:
            bad.append((i, fmt(res)))
        if i == 10:
            recycle()
    r.close()
    check(not bad, "statement mode: named statement works for 20 statements and across a "
          "recycle", str(bad[:3]))


def reset_always(db2):
    wp = Warmpool("t25-reset", {"one": {"dbname": db2, "max_pool_size": 1}},
                  server_reset_query_always=1).start()
    q = "SELECT $1::int + 2 AS v /* reset */"
    a = wp.raw("one")
    res = a.run(Parse("r1", q), Bind("r1", [1]), Execute(), Sync())
    check(rows(res) == [("3",)], "[reset_always] A prepares r1", fmt(res))
    a.run(Query("BEGIN"))
    res = a.run(Bind("r1", [2]), Execute(), Sync())
    check(rows(res) == [("4",)], "[reset_always] A uses r1 inside BEGIN", fmt(res))
    a.sock.close()  # vanish inside the transaction: warmpool rolls back and resets
    time.sleep(0.5)
    b = wp.raw("one")
    res = b.run(Parse("r1", q), Bind("r1", [5]), Execute(), Sync())
    res2 = b.run(Bind("r1", [6]), Execute(), Sync())
    check(rows(res) == [("7",)] and rows(res2) == [("8",)],
          "[reset_always] after A vanished in a transaction (ROLLBACK + DISCARD ALL on the "
          "backend), B's Parse + Bind of the same SQL works", f"{fmt(res)} | {fmt(res2)}")
    b.close()
    wp.stop()


def test():
    make_db(DB)
    if DIRECT:
        note("direct: nothing to recycle through a pooler; test skipped")
        return
    wp = Warmpool("t25", {"one": {"dbname": DB, "max_pool_size": 1},
                          "stmt": {"dbname": DB, "max_pool_size": 1, "pool_mode": "statement"},
                          "life": {"dbname": DB, "max_pool_size": 1, "server_lifetime": 1}},
                  ).start()
    raw_recycles(wp, "one")
    psycopg_recycles(wp)
    asyncpg_recycles(wp)
    statement_mode(wp)
    lifetime_recycles(wp)
    wp.stop()
    reset_always(make_db(DB + "_reset"))


if __name__ == "__main__":
    main(test)
