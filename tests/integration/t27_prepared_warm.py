"""t27_prepared_warm — issue 8, acceptance 8: warm statements on new backends.

Private warmpool, transaction mode, warm_prepared_statements = 50:
- pool of 1: a client prepares 5 hot statements and runs each 30 times; the backend is
  terminated (pg_terminate_backend); the very first query on the new backend (a simple
  query reading pg_prepared_statements through the pool) already sees all 5 hot
  statements under wp_% names, i.e. before any client's Bind on them
- the client's next Binds of those statements (no Parse) give the right rows, and the
  backend then holds each hot statement exactly once (no duplicate prepare, no 42P05)
- pool of 2: with the warm backend held inside a transaction, a second backend opened for
  another client is warm too
- a second warmpool with warm_prepared_statements = 3: after 8 statements (5 used once,
  then 3 used 20 times each) and a recycle, the new backend holds at most 3 wp_%
  statements, and they are the 3 hot ones
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepared_lib import (DIRECT, Bind, Execute, Parse, Query, Sync, Warmpool,  # noqa: E402
                          backend_pids, check, fail, fmt, main, make_db, note, ok, terminate)

DB = "wpprep_warm"


def hot_sql(k, tag="hot"):
    return f"SELECT $1::int + {k} AS v /* {tag} {k} */"


def rows(res):
    return [tok[1:] for tok in res if tok[0] == "D"]


def errors(res):
    return [tok[1] for tok in res if tok[0] == "E"]


def backend_statements(raw):
    """(pid, [(name, statement)]) of wp_% statements on the backend this query runs on."""
    res = raw.run(Query("SELECT pg_backend_pid()::text, name, statement "
                        "FROM pg_prepared_statements RIGHT JOIN (SELECT 1) one ON true "
                        "AND name LIKE 'wp\\_%' ORDER BY name"))
    if errors(res):
        fail(f"reading pg_prepared_statements failed: {fmt(res)}")
    rs = rows(res)
    pid = int(rs[0][0])
    return pid, [(n, s) for _, n, s in rs if n is not None]


def warm_up(raw, ks, times, tag="hot"):
    for k in ks:
        res = raw.run(Parse(f"{tag}{k}", hot_sql(k, tag)), Sync())
        if errors(res):
            fail(f"Parse {tag}{k}: {fmt(res)}")
    for _ in range(times):
        for k in ks:
            res = raw.run(Bind(f"{tag}{k}", [1]), Execute(), Sync())
            if rows(res) != [(str(1 + k),)]:
                fail(f"warm-up Bind {tag}{k}: {fmt(res)}")


def recycle(db):
    pids = backend_pids(db)
    if not pids:
        fail("no backend to recycle")
    terminate(pids)
    time.sleep(0.1)
    return pids


def pool_of_one(wp):
    a = wp.raw("one")
    ks = range(5)
    warm_up(a, ks, 30)
    ok("client A: 5 hot statements, 30 Binds each")
    killed = recycle(DB)
    checker = wp.raw("one")
    pid, stmts = backend_statements(checker)
    texts = {s for _, s in stmts}
    missing = [k for k in ks if hot_sql(k) not in texts]
    check(pid not in killed and not missing,
          f"first query on the new backend {pid} (old {killed} terminated) sees the hot "
          f"statements already prepared: {sorted(n for n, _ in stmts)}",
          f"missing hot statements {missing}; backend holds {stmts}")
    bad = []
    for k in ks:
        res = a.run(Bind(f"hot{k}", [10]), Execute(), Sync())
        if rows(res) != [(str(10 + k),)] or errors(res):
            bad.append((k, fmt(res)))
    pid2, stmts2 = backend_statements(checker)
    dup = [k for k in ks if sum(1 for _, s in stmts2 if s == hot_sql(k)) != 1]
    check(not bad and not dup and pid2 == pid,
          "A's Binds of the hot statements (no Parse) on the warm backend give the right "
          "rows, each statement is prepared there exactly once",
          f"wrong {bad}, not exactly once {dup}, backend {pid2} holds {stmts2}")
    a.close()
    checker.close()


def new_backend_for_growth(wp):
    a = wp.raw("two")
    ks = range(20, 23)
    warm_up(a, ks, 20, tag="grow")
    holder = wp.raw("two")
    holder.run(Query("BEGIN"))
    held = int(holder.scalar("SELECT pg_backend_pid()"))
    # the pool may already have a second backend; recycle it so a fresh one must open
    others = [p for p in backend_pids(DB) if p != held]
    if others:
        terminate(others)
        time.sleep(0.1)
    checker = wp.raw("two")
    pid, stmts = backend_statements(checker)
    texts = {s for _, s in stmts}
    missing = [k for k in ks if hot_sql(k, "grow") not in texts]
    check(pid != held and pid not in others and not missing,
          f"pool of 2, backend {held} held in a transaction: the newly opened backend {pid} "
          "has the pool's hot statements", f"missing {missing}; it holds {stmts}")
    holder.run(Query("COMMIT"))
    for r in (a, holder, checker):
        r.close()


def bounded(db2):
    wp = Warmpool("t27-bounded", {"one": {"dbname": db2, "max_pool_size": 1}},
                  warm_prepared_statements=3).start()
    a = wp.raw("one")
    warm_up(a, range(30, 35), 1, tag="cold")
    warm_up(a, range(40, 43), 20, tag="hot")
    recycle(db2)
    checker = wp.raw("one")
    pid, stmts = backend_statements(checker)
    texts = {s for _, s in stmts}
    hot = [hot_sql(k, "hot") for k in range(40, 43)]
    check(len(stmts) <= 3 and all(h in texts for h in hot),
          "warm_prepared_statements = 3: the new backend holds the 3 hot statements and "
          "no more", f"it holds {stmts}")
    a.close()
    checker.close()
    wp.stop()


def test():
    make_db(DB)
    if DIRECT:
        note("direct: warm statements are a pooler feature; test skipped")
        return
    wp = Warmpool("t27", {"one": {"dbname": DB, "max_pool_size": 1},
                          "two": {"dbname": DB, "max_pool_size": 2}},
                  warm_prepared_statements=50).start()
    pool_of_one(wp)
    new_backend_for_growth(wp)
    wp.stop()
    bounded(make_db(DB + "_bounded"))


if __name__ == "__main__":
    main(test)
