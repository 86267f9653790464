"""t26_prepared_sql — issue 8, acceptance 7: SQL-level PREPARE / EXECUTE / DEALLOCATE.

Two raw clients A and B send simple queries through a private warmpool (transaction
mode, pool of 2). Between steps, holder clients keep one backend busy inside a
transaction so that the next step runs on a chosen backend — A's PREPARE happens on one
backend, its EXECUTE/DEALLOCATE on the other, and back. Every step's answer (rows,
CommandComplete tags, SQLSTATEs, ReadyForQuery status) must equal what PostgreSQL
answers for the same steps on two direct connections. Covered: PREPARE with and without
parameter types, EXECUTE in later transactions on other backends, DEALLOCATE [PREPARE]
name then EXECUTE (26000) and re-PREPARE (no 42P05), the same name in two clients with
different SQL, PREPARE twice (42P05), case folding of names, DEALLOCATE ALL, EXECUTE
inside EXPLAIN and CREATE TABLE AS on a backend that lacks the statement, and mixing
levels (SQL PREPARE then protocol Bind, protocol Parse then SQL EXECUTE). PREPARE +
EXECUTE in one query string is refused (KNOWN_GAPS). The step that moves a client to the other backend is checked
with pg_backend_pid().
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepared_lib import (DIRECT, PASSWORD, PG_PORT, USER, Bind, Close, Describe, Execute,  # noqa: E402
                          Parse, Query, Raw, Sync, Warmpool, check, fail, fmt, main, make_db, note, ok)

DB = "wpprep_sql"

# (client, what): what is SQL text (a simple Query), a list of protocol messages, or
# ("on", n): run the next steps on backend n (0 = the one A's first step used, 1 = other).
STEPS = [
    ("A", "BEGIN"),
    ("A", "PREPARE q(int) AS SELECT $1 + 1 AS r"),
    ("A", "EXECUTE q(41)"),
    ("A", "COMMIT"),
    ("on", 1),
    ("A", "EXECUTE q(1)"),
    ("B", "PREPARE q(text) AS SELECT $1 || '-B' AS r"),
    ("B", "EXECUTE q('x')"),
    ("on", 0),
    ("A", "EXECUTE q(2)"),
    ("B", "EXECUTE q('y')"),
    ("A", "PREPARE q(int) AS SELECT 0"),            # 42P05: A still has q
    ("on", 1),
    ("A", "BEGIN"),
    ("A", "EXECUTE q(3)"),
    ("A", "EXECUTE q(4)"),
    ("A", "COMMIT"),
    ("A", "DEALLOCATE q"),
    ("on", 0),
    ("A", "EXECUTE q(5)"),                          # 26000 on any backend
    ("B", "EXECUTE q('still B')"),                  # B's q untouched
    ("A", "PREPARE q AS SELECT $1::int * 100 AS r"),  # no 42P05: A's q is gone
    ("on", 1),
    ("A", "EXECUTE q(6)"),
    ("A", "PREPARE Upper_Case AS SELECT 'folded' AS r"),
    ("on", 0),
    ("A", "EXECUTE upper_case"),
    ("A", "EXECUTE UPPER_CASE"),
    ("A", "DEALLOCATE PREPARE upper_case"),
    ("A", "EXECUTE Upper_Case"),
    ("A", "PREPARE inone AS SELECT 'one string' AS r; EXECUTE inone"),
    ("on", 1),
    ("A", "EXECUTE inone"),
    ("A", "PREPARE mixed(int) AS SELECT $1 * 2 AS r"),
    ("on", 0),
    ("A", [Bind("mixed", [21]), Execute(), Sync()]),     # SQL-prepared, protocol Bind
    ("A", [Parse("pmix", "SELECT $1::int * 3 AS r"), Sync()]),
    ("on", 1),
    ("A", "EXECUTE pmix(5)"),                            # protocol-prepared, SQL EXECUTE
    ("A", "DEALLOCATE ALL"),
    ("on", 0),
    ("A", "EXECUTE q(7)"),
    ("A", "EXECUTE inone"),
    ("B", "EXECUTE q('after A deallocated all')"),
    ("B", "DEALLOCATE ALL"),
    ("B", "EXECUTE q('gone')"),
    # statements are not transactional; failed PREPAREs create nothing
    ("A", "PREPARE bad AS SELEC 1"),                # 42601
    ("A", "PREPARE bad AS SELECT 'now good' AS r"),  # no 42P05
    ("on", 1),
    ("A", "EXECUTE bad"),
    ("A", "BEGIN"),
    ("A", "PREPARE rb(int) AS SELECT $1 - 1 AS r"),
    ("A", "ROLLBACK"),                              # rb survives the rollback
    ("on", 0),
    ("A", "EXECUTE rb(10)"),
    ("A", "BEGIN"),
    ("A", "SELECT 1/0"),
    ("A", "PREPARE inerr AS SELECT 1"),             # 25P02: not created
    ("A", "ROLLBACK"),
    ("on", 1),
    ("A", "EXECUTE inerr"),
    ("A", "PREPARE inerr AS SELECT 'inerr now' AS r"),
    ("A", "BEGIN"),
    ("A", "DEALLOCATE rb"),
    ("A", "ROLLBACK"),                              # still deallocated
    ("on", 0),
    ("A", "EXECUTE rb(10)"),
    # spelling: quoted names, lower-case keywords, comments, semicolons, whitespace
    ("A", 'PREPARE "MixedQ" AS SELECT \'quoted\' AS r'),
    ("on", 1),
    ("A", 'EXECUTE "MixedQ"'),
    ("A", "EXECUTE mixedq"),                        # 26000: a different name
    ("A", "prepare low(int) as select $1 * 7 as r"),
    ("on", 0),
    ("A", "  execute   low ( 6 ) ;  "),
    ("A", "/* leading comment */ EXECUTE low(2)"),
    ("A", "-- line comment\nEXECUTE low(3)"),
    ("A", "EXECUTE low(1, 2)"),                     # 42601 wrong number of parameters
    ("A", "EXECUTE low('x')"),                      # 22P02
    ("A", "DEALLOCATE nosuch"),                     # 26000
    # other statements that run a prepared statement by name
    ("on", 1),
    ("A", "EXPLAIN (COSTS OFF) EXECUTE low(4)"),
    ("A", "CREATE TEMP TABLE ctas AS EXECUTE low(5)"),
    ("A", "DROP TABLE ctas"),                       # the temp table pinned A's backend
    # A failed transaction on a backend that lacks A's statements (prepared on the
    # other one): each request gets 25P02 as from PostgreSQL, never 26000 about
    # warmpool's wp_<n> or 42P05, and nothing is created or dropped.
    ("on", 0),
    ("A", "PREPARE ab(int) AS SELECT $1 + 100 AS r"),
    ("A", [Parse("pab", "SELECT $1::int + 200 AS r"), Sync()]),
    ("on", 1),
    ("A", "BEGIN"),
    ("A", "SELECT 1/0"),
    ("A", [Bind("ab", [1]), Execute(), Sync()]),        # SQL-prepared, protocol Bind
    ("A", [Describe("S", "ab"), Sync()]),
    ("A", "EXECUTE ab(2)"),
    ("A", [Bind("pab", [3]), Execute(), Sync()]),       # protocol-prepared
    ("A", [Describe("S", "pab"), Sync()]),
    ("A", "EXECUTE pab(4)"),
    ("A", "PREPARE ab AS SELECT 0"),                    # a name A uses: 25P02 first
    ("A", [Parse("pab", "SELECT 0"), Sync()]),
    ("A", "EXECUTE wp_1"),
    ("A", [Bind("nosuch", []), Execute(), Sync()]),     # 26000: looked up first
    ("A", "ROLLBACK"),
    ("A", "EXECUTE ab(5)"),
    ("A", [Bind("pab", [6]), Execute(), Sync()]),
    # pipelined: the Bind is sent before the failure is known
    ("on", 0),
    ("A", "PREPARE ab2(int) AS SELECT $1 * 1000 AS r"),
    ("on", 1),
    ("A", "BEGIN"),
    ("A", [Query("SELECT 1/0"), Bind("ab2", [7]), Execute(), Sync(), Query("EXECUTE ab2(8)")]),
    ("A", "ROLLBACK"),
    ("A", "EXECUTE ab2(9)"),
    # Statements the backend has (for B): A's Parse/PREPARE of the same text are answered
    # by warmpool, DEALLOCATE too; in a failed transaction they are refused (25P02) and
    # change no name, as on PostgreSQL. A protocol Close still works there.
    ("B", "PREPARE bx AS SELECT 'bx' AS r"),
    ("B", [Parse("pbx", "SELECT 'pbx' AS r"), Sync()]),
    ("A", "BEGIN"),
    ("A", "SELECT 1/0"),
    ("A", "PREPARE ax AS SELECT 'bx' AS r"),
    ("A", [Parse("pax", "SELECT 'pbx' AS r"), Sync()]),
    ("A", [Parse("rb", "ROLLBACK"), Sync()]),       # allowed in a failed transaction
    ("A", "DEALLOCATE ab"),
    ("A", "DEALLOCATE ALL"),
    ("A", [Close("S", "pab"), Sync()]),
    ("A", "ROLLBACK"),
    ("A", "EXECUTE ax"),                            # 26000: never created
    ("A", [Bind("pax", []), Execute(), Sync()]),    # 26000
    ("A", "EXECUTE ab(10)"),                        # still there
    ("A", [Bind("pab", [11]), Execute(), Sync()]),  # 26000: closed
    ("A", "EXECUTE ab2(12)"),
    # pipelined behind the failing query: warmpool cannot know yet that it will fail
    ("A", "BEGIN"),
    ("A", [Query("SELECT 1/0"), Query("DEALLOCATE ab"), Query("DEALLOCATE ALL"),
           Query("PREPARE ax AS SELECT 'bx' AS r")]),
    ("A", "ROLLBACK"),
    ("A", "EXECUTE ab(13)"),                        # still there
    ("A", "EXECUTE ax"),                            # 26000: never created
    # several statements in one query, on a backend that lacks them: SQL- and
    # protocol-level ones are injected before it; in a failed transaction the first
    # injected one fails and the rest is skipped, as PostgreSQL skips the query
    ("on", 0),
    ("A", [Parse("pm1", "SELECT 1 AS r"), Parse("pm2", "SELECT $1::int * 2 AS r"), Sync()]),
    ("A", "PREPARE sm1 AS SELECT 3 AS r"),
    ("on", 1),
    ("A", "BEGIN"),
    ("A", "SELECT 1/0"),
    ("A", "EXECUTE pm1; EXECUTE sm1; EXECUTE pm2(4)"),
    ("A", "ROLLBACK"),
    ("A", "SELECT 0 AS r; EXECUTE pm1; EXECUTE sm1; EXECUTE pm2(5); EXECUTE pm1"),
    ("on", 0),
    ("A", "BEGIN; EXECUTE pm2(6); EXPLAIN (COSTS OFF) EXECUTE sm1; COMMIT"),
    ("A", "SELECT 1 AS r; EXECUTE nosuch; EXECUTE pm1"),  # 26000 after the first result
]


# Documented difference (docs/ARCHITECTURE.md, "Prepared statements"): a PREPARE inside
# a multi-statement query is refused with 0A000 (t29_prepared_isolation asserts how),
# so the statement does not exist afterwards. These steps are shown, not counted.
KNOWN_GAPS = {
    "PREPARE inone AS SELECT 'one string' AS r; EXECUTE inone",
    "EXECUTE inone",
}


class Placer:
    """Makes the next steps run on a chosen one of the pool's two backends."""

    def __init__(self, wp):
        self.holders = [wp.raw("two"), wp.raw("two")]
        self.held = []
        self.pids = []  # [backend of A's first step, the other]

    def release(self):
        for h in self.held:
            h.run(Query("COMMIT"))
        self.held = []

    def place(self, want):
        """Hold every backend but pids[want] inside a transaction."""
        self.release()
        target = self.pids[want]
        h1, h2 = self.holders
        h1.run(Query("BEGIN"))
        p1 = int(h1.scalar("SELECT pg_backend_pid()"))
        if p1 != target:
            self.held = [h1]
            return
        h2.run(Query("BEGIN"))
        h2.scalar("SELECT pg_backend_pid()")
        h1.run(Query("COMMIT"))  # h1 had the target: give it back, h2 holds the other
        self.held = [h2]


def run(steps, clients, placer=None):
    out = []
    for who, what in steps:
        if who == "on":
            if placer:
                if not placer.pids:
                    a = clients["A"]
                    p = int(a.scalar("SELECT pg_backend_pid()"))
                    placer.pids = [p]
                    # find the other backend: hold A's, ask for another
                    h = placer.holders[0]
                    h.run(Query("BEGIN"))
                    q = int(h.scalar("SELECT pg_backend_pid()"))
                    if q == p:
                        placer.holders[1].run(Query("BEGIN"))
                        q = int(placer.holders[1].scalar("SELECT pg_backend_pid()"))
                        placer.holders[1].run(Query("COMMIT"))
                    h.run(Query("COMMIT"))
                    if q == p:
                        fail("pool of 2 gave the same backend to two transactions at once")
                    placer.pids.append(q)
                placer.place(what)
                pid = int(clients["A"].scalar("SELECT pg_backend_pid()"))
                if pid != placer.pids[what]:
                    fail(f"placing: A runs on {pid}, wanted {placer.pids[what]}")
            out.append(("on", what))
            continue
        r = clients[who]
        try:
            if isinstance(what, str):
                res = r.run(Query(what))
            else:
                res = r.run(*what)
        except Exception as e:  # noqa: BLE001
            res = [("exception", str(e)[:100])]
        out.append((who, res))
    if placer:
        placer.release()
    return out


def describe(what):
    if isinstance(what, str):
        return what.replace("\n", "\\n")
    return "protocol " + " ".join(m[:1].decode() for m in what)


def test():
    make_db(DB)
    direct = {c: Raw("127.0.0.1", PG_PORT, USER, PASSWORD, DB) for c in "AB"}
    # The "on" steps also need pg_backend_pid on the direct side: no-ops there.
    expect = run(STEPS, direct)
    for r in direct.values():
        r.close()
    if DIRECT:
        note("direct: steps run on PostgreSQL only (nothing to compare)")
        for (who, what), (_, res) in zip(STEPS, expect):
            if who != "on":
                print(f"   {who}: {describe(what)} -> {fmt(res)}")
        return
    wp = Warmpool("t26", {"two": {"dbname": DB, "max_pool_size": 2}}).start()
    clients = {c: wp.raw("two") for c in "AB"}
    placer = Placer(wp)
    got = run(STEPS, clients, placer)
    ok(f"the pool's two backends: {placer.pids}; steps after ('on', n) run on backend n")
    bad = 0
    lines = []
    for (who, what), (_, e), (_, g) in zip(STEPS, expect, got):
        if who == "on":
            lines.append(f"   -- now on backend {what}")
            continue
        same = e == g
        known = not same and isinstance(what, str) and what in KNOWN_GAPS
        bad += not same and not known
        lines.append(f"{'   ' if same else ('~~ ' if known else '!! ')}{who}: {describe(what)}")
        lines.append(f"       PostgreSQL: {fmt(e)}")
        if not same:
            lines.append(f"       warmpool:   {fmt(g)}")
    print("\n".join(lines), flush=True)
    check(bad == 0, f"all {len(STEPS)} steps answer as on PostgreSQL, but the documented "
          "gaps (marked ~~)", f"{bad} steps differ (marked !! above)")
    for r in clients.values():
        r.close()
    wp.stop()


if __name__ == "__main__":
    main(test)
