"""t29_prepared_isolation — no client reaches a statement another client prepared, through
SQL in any form ("Correctness first", bug 7).

A private warmpool in transaction mode with a pool of ONE backend, so that every
client's statements live in the same PostgreSQL session. Clients A, B and C:

1. PREPARE or DEALLOCATE name anywhere in a multi-statement query (after ';', after
   comments, inside BEGIN … COMMIT, any case and quoting) is refused with 0A000 and
   ReadyForQuery; nothing of the query runs (an INSERT before it leaves no row), the
   client stays usable, no statement is left on the backend, and B's EXECUTE of the
   name gets 26000.
2. Text that only contains the words (strings, E'', dollar quotes, nested comments,
   column aliases) is not refused: answers equal PostgreSQL's.
3. C plants a statement y on the backend behind warmpool's back (a DO block), and A
   prepares its own; B names y, A's name and A's statement's backend name wp_<n> in
   EXECUTE, EXPLAIN [ANALYZE] EXECUTE, CREATE TABLE … AS EXECUTE, after other
   statements, inside a transaction, and in DEALLOCATE: every answer equals what B gets
   from PostgreSQL on a session of its own (26000 for its name), no row carries another
   client's data, and y is still there afterwards. A Parse whose text is PREPARE,
   EXECUTE or DEALLOCATE name is refused with 0A000; one of DEALLOCATE ALL runs.
4. A's own statement works in those same forms, answers equal to PostgreSQL's.
5. DEALLOCATE ALL among other statements runs: A's names are gone after it, also for
   an EXECUTE later in the same query (26000 naming A's name), and A may PREPARE them
   again.
Run with /usr/bin/python3 (prepared_lib.py).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepared_lib import (DIRECT, PASSWORD, PG_PORT, USER, Bind, Execute, Parse, Query,  # noqa: E402
                          Raw, Sync, Warmpool, _fields, check, fail, fmt, main, make_db, note,
                          ok, summarize, superuser)

DB = "wpprep_iso"
MULTI = "inside a multi-statement query is not supported in transaction pooling mode"
EXTENDED = "in the extended query protocol is not supported in transaction pooling mode"


def ask(r, *msgs):
    """Send; read every answer through one ReadyForQuery per Query/Sync. Errors come as
    ("E", code, message), the rest as prepared_lib.summarize() tokens."""
    r.send(*msgs)
    left = sum(1 for m in msgs if m[:1] in (b"Q", b"S"))
    out = []
    while left:
        m = r.read_msg()
        if m is None:
            fail(f"no ReadyForQuery within {r.timeout} s after {msgs!r}; got {fmt(out)}")
        t, body = m
        if t == "E":
            f = _fields(body)
            out.append(("E", f.get("C"), f.get("M")))
        else:
            out.append(summarize(t, body))
        left -= t == "Z"
    return out


def rows(res):
    return [tok[1:] for tok in res if tok[0] == "D"]


def errors(res):
    return [tok for tok in res if tok[0] == "E"]


def without_messages(res):
    """Answers compared with PostgreSQL's: error texts may differ (SQLSTATEs may not)."""
    return [tok[:2] if tok[0] == "E" else tok for tok in res]


def statements_on_backend(r, fragment):
    """Prepared statements of the (only) backend whose text contains fragment."""
    res = ask(r, Query("SELECT name FROM pg_prepared_statements WHERE strpos(statement, "
                       f"'{fragment}') > 0 ORDER BY name"))
    if errors(res):
        fail(f"pg_prepared_statements: {fmt(res)}")
    return [row[0] for row in rows(res)]


# ---------------------------------------------------------------- 1. refused

REFUSED = [
    "select 1; prepare y as select 'A secret' as a",
    "insert into iso_log values (1); prepare y as select 'A secret' as a",
    "/* lead */ select 1 -- prepare\n; PrEpArE \"y\" as select 'A secret' as a",
    "begin; prepare y as select 'A secret' as a; commit",
    "prepare y as select 'A secret' as a; select 1",
    "insert into iso_log values (2);;\n\tprepare y(int) as select 'A secret' as a, $1 as b;",
    "select 1; deallocate y",
    "insert into iso_log values (3); deallocate mine",
    "select 1;\nDEALLOCATE PREPARE \"y\"",
]


def part_refused(a, b):
    for sql in REFUSED:
        res = ask(a, Query(sql))
        word = "DEALLOCATE" if "dealloc" in sql.lower() else "PREPARE"
        want = [("E", "0A000", f"{word} {MULTI}"), ("Z", "I")]
        check(res == want, f"refused with 0A000 + ReadyForQuery: {sql!r}", fmt(res))
    check(ask(a, Query("select 'still here'")) == [("T", "?column?"), ("D", "still here"),
                                                  ("C", "SELECT 1"), ("Z", "I")],
          "the refused client stays connected and usable")
    with superuser(DB) as conn:
        n = conn.execute("SELECT count(*) FROM iso_log").fetchone()[0]
    check(n == 0, "nothing of a refused query ran (its INSERTs left no row)", f"{n} rows")
    check(statements_on_backend(b, "secret") == [], "no statement was left on the backend")
    res = ask(b, Query("execute y"))
    check(not any("secret" in str(v) for row in rows(res) for v in row) and
          errors(res) == [("E", "26000", 'prepared statement "y" does not exist')],
          "B's EXECUTE y gets 26000, not A's result", fmt(res))


# ---------------------------------------------------------------- 2, 3, 4: compared

FINE = [
    "select 'prepare x as select 1' as a",
    "select $$execute y$$ as a, $t$ deallocate all; $t$ as b",
    "select E'\\' ; prepare y as' as a -- ; execute y\n",
    "select 1 /* ; prepare y as select 2; /* nested */ ; execute y */ as a",
    "select 1 as execute; select 2 as prepare",
    "select 'a''; prepare y as' as a; select \"prepare y as\" "
    "from (select 3 as \"prepare y as\") s",
    "select $q$ $$ ; execute y $q$ as a, B'101' as b, X'1F' as c, U&'\\0041' as d",
]

# B uses names it never prepared: y (C's, planted behind warmpool's back), mine (A's),
# and WP, the backend's name for A's statement (filled in at run time).
LEAKS = [
    "execute y",
    "EXECUTE \"y\"",
    "explain execute y",
    "explain (analyze, costs off) execute y",
    "EXPLAIN ANALYZE VERBOSE execute y",
    "create temp table leak as execute y",
    "explain analyze create temp table leak as execute y",
    "select 1 as a; execute y",
    "select 1 as a; /* c */ execute y; select 2 as b",
    "begin; explain analyze execute y; commit",
    "rollback",
    "execute mine",
    "select 1 as a; execute mine",
    "execute WP",
    "explain execute WP",
    "select 1 as a; execute WP",
    "create temp table leak as execute WP",
    "deallocate y",
    "deallocate WP",
    "deallocate mine",
]

# A's own statement in the same forms.
OWN = [
    "execute mine",
    "select 1 as a; execute mine",
    "execute mine; execute mine",
    "explain (costs off) execute mine",
    "begin; create temp table own on commit drop as execute mine; select a from own; commit",
    "explain (analyze, costs off, timing off, summary off) execute mine",
]

# After part_parse: DEALLOCATE ALL also drops the statement planted for B's steps.
CLEAR = [
    "execute mine; deallocate all; execute mine",
    "execute mine",
    "prepare mine as select 'A again' as a",
    "select 1 as a; deallocate prepare all; execute mine",
    "prepare mine as select 'A again' as a",
    "execute mine",
]

PLANT = "do $$ begin execute 'prepare y as select ''native secret'' as a'; end $$"


def run_steps(a, b, c, wpname):
    """The compared part: [(label, answer)]; runs the same on PostgreSQL and warmpool."""
    out = []
    for sql in FINE:
        out.append((f"A: {sql}", ask(a, Query(sql))))
    out.append(("C: plant y", ask(c, Query(PLANT))))
    out.append(("A: prepare mine", ask(a, Query("prepare mine as select 'A secret' as a"))))
    for sql in LEAKS:
        sql = sql.replace("WP", wpname)
        out.append((f"B: {sql}", ask(b, Query(sql))))
    for sql in OWN:
        out.append((f"A: {sql}", ask(a, Query(sql))))
    return out


def run_clear(a):
    return [(f"A: {sql}", ask(a, Query(sql))) for sql in CLEAR]


def part_parse(b):
    """A Parse whose text names prepared statements: refused, and nothing happens."""
    for name, text, word in [("", "execute y", "EXECUTE"), ("s1", "EXPLAIN EXECUTE y", "EXECUTE"),
                             ("", "prepare z as select 'B secret'", "PREPARE"),
                             ("s2", "deallocate y", "DEALLOCATE"),
                             ("", "/* c */ Deallocate PREPARE y", "DEALLOCATE"),
                             ("", "create temp table t as execute y", "EXECUTE")]:
        res = ask(b, Parse(name, text), Bind(name), Execute(), Sync())
        check(res == [("E", "0A000", f"{word} {EXTENDED}"), ("Z", "I")],
              f"Parse of {text!r} refused with 0A000", fmt(res))
    check(statements_on_backend(b, "B secret") == [], "the refused PREPARE created nothing")
    check(statements_on_backend(b, "native secret") == ["y"],
          "the statement planted behind warmpool's back is still there")
    # DEALLOCATE ALL names no statement: it runs, and the backend holds none afterwards
    # (warmpool prepares A's again when A uses it, see CLEAR)
    res = ask(b, Parse("", "/* c */ Deallocate ALL"), Bind(""), Execute(), Sync())
    check(res == [("1",), ("2",), ("C", "DEALLOCATE ALL"), ("Z", "I")],
          "Parse of DEALLOCATE ALL runs", fmt(res))
    check(statements_on_backend(b, "secret") == [], "no statement is left on the backend")


def test():
    make_db(DB)
    with superuser(DB) as conn:
        conn.execute(f'CREATE TABLE iso_log (x int); ALTER TABLE iso_log OWNER TO "{USER}"')
    direct = {k: Raw("127.0.0.1", PG_PORT, USER, PASSWORD, DB) for k in "ABC"}
    expect = run_steps(direct["A"], direct["B"], direct["C"], "wp_1") + run_clear(direct["A"])
    for r in direct.values():
        r.close()
    if DIRECT:
        note("direct: steps run on PostgreSQL only (nothing to compare)")
        return
    wp = Warmpool("t29", {"one": {"dbname": DB, "max_pool_size": 1}}).start()
    a, b, c = (wp.raw("one") for _ in range(3))
    part_refused(a, b)
    ask(c, Query("prepare probe as select 'A secret' as a"))  # learns A's backend name
    wpname = statements_on_backend(c, "A secret")
    check(len(wpname) == 1 and wpname[0].startswith("wp_"), "A's statement has a wp_ name",
          str(wpname))
    got = run_steps(a, b, c, wpname[0])
    part_parse(b)
    got += run_clear(a)
    bad = []
    for (label, e), (_, g) in zip(expect, got):
        if without_messages(e) != without_messages(g):
            bad.append(f"!! {label}\n     PostgreSQL: {fmt(e)}\n     warmpool:   {fmt(g)}")
    if bad:
        print("\n".join(bad), flush=True)
    check(not bad, f"all {len(got)} steps answer as on PostgreSQL (B has a session of its own "
          "there)", f"{len(bad)} differ")
    leaked = [label for label, res in got if label.startswith("B:") and
              any("secret" in str(v) for row in rows(res) for v in row)]
    check(not leaked, "no answer to B carries another client's rows", str(leaked))
    named = [label for label, res in got if errors(res) and
             errors(res)[0][1] == "26000" and "wp_" in errors(res)[0][2] and
             "wp_" not in label]
    check(not named, "26000 errors name the client's statement, never warmpool's", str(named))
    for r in (a, b, c):
        r.close()
    wp.stop()


if __name__ == "__main__":
    main(test)
