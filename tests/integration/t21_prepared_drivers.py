"""t21_prepared_drivers — issue 8, acceptance 2: real drivers over a pool smaller than
their connection count.

Private warmpool, transaction mode, pool of 4, 20 concurrent connections per driver:
- asyncpg (statement cache on by default: named __asyncpg_stmt_N__ statements, Parse +
  Describe, then Bind/Execute): fetch / fetchrow / fetchval with parameters of several
  types, executemany, explicit transactions
- psycopg 3, 20 threads, prepare_threshold=0 (every query prepared as _pg3_N), autocommit
  and transactions, executemany
- psycopg 3 pipeline mode (AsyncConnection.pipeline()), 20 connections, with
  prepare_threshold 0 and the default, including a pipeline whose middle statement fails
Every result is checked against the value it must have; inserted rows are counted
directly on PostgreSQL; zero errors.
"""
import asyncio
import logging
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepared_lib import (PASSWORD, USER, Warmpool, check, main, make_db, ok,  # noqa: E402
                          su_query, superuser)

DB = "wpprep_drivers"
NCONN = 20
NITEMS = 500


def item_name(i):
    return f"item-{i:04d}"


def item_val(i):
    return (i * 37) % 101


def setup():
    make_db(DB)
    with superuser(DB) as su:
        su.execute(f"""
            CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, val int NOT NULL);
            INSERT INTO items SELECT g, 'item-' || lpad(g::text, 4, '0'), (g * 37) % 101
                FROM generate_series(1, {NITEMS}) g;
            CREATE TABLE sink (driver text, client int, i int, v text);
            ALTER TABLE items OWNER TO {USER};
            ALTER TABLE sink OWNER TO {USER};""")


# ---------------------------------------------------------------- asyncpg

def asyncpg_part(wp, rounds=25):
    import asyncpg

    errors, wrong = [], []

    async def client(c):
        try:
            conn = await asyncpg.connect(host=wp.host, port=wp.port, user=USER,
                                         password=PASSWORD, database=wp.dbname("four"))
        except Exception as e:  # noqa: BLE001
            errors.append((c, "connect", repr(e)))
            return
        try:
            for i in range(rounds):
                lo = (c * 13 + i * 7) % (NITEMS - 10) + 1
                hi = lo + (i % 5)
                rs = await conn.fetch("SELECT id, name, val FROM items WHERE id BETWEEN $1 "
                                      "AND $2 ORDER BY id", lo, hi)
                got = [tuple(r) for r in rs]
                want = [(j, item_name(j), item_val(j)) for j in range(lo, hi + 1)]
                if got != want:
                    wrong.append((c, i, "fetch", got[:2], want[:2]))
                row = await conn.fetchrow("SELECT $1::int + $2::int AS s, $3::text AS t, "
                                          "$4::numeric * 2 AS n", c, i, f"c{c}", i / 4)
                if (row["s"], row["t"], float(row["n"])) != (c + i, f"c{c}", i / 2):
                    wrong.append((c, i, "fetchrow", dict(row)))
                arr = await conn.fetchval("SELECT array_agg(x * $2) FROM unnest($1::int[]) x",
                                          [c, i, 1], 3)
                if arr != [3 * c, 3 * i, 3]:
                    wrong.append((c, i, "fetchval", arr))
                if i % 5 == 0:
                    await conn.executemany("INSERT INTO sink VALUES ('asyncpg', $1, $2, $3)",
                                           [(c, i * 10 + k, f"v{k}") for k in range(5)])
                if i % 7 == 0:
                    async with conn.transaction():
                        n = await conn.fetchval("SELECT count(*) FROM sink WHERE driver = "
                                                "'asyncpg' AND client = $1", c)
                        await conn.execute("INSERT INTO sink VALUES ('asyncpg-tx', $1, $2, "
                                           "$3)", c, i, str(n))
                        n2 = await conn.fetchval("SELECT count(*) FROM sink WHERE driver = "
                                                 "'asyncpg-tx' AND client = $1 AND i = $2",
                                                 c, i)
                        if n2 != 1:
                            wrong.append((c, i, "tx", n2))
        except Exception as e:  # noqa: BLE001
            errors.append((c, i, repr(e)))
        finally:
            await conn.close()

    async def run():
        await asyncio.wait_for(asyncio.gather(*(client(c) for c in range(NCONN))), 60)

    asyncio.run(run())
    check(not errors, f"asyncpg: {NCONN} connections × {rounds} rounds over a pool of 4: "
          "no errors", f"{len(errors)} errors, first {errors[:3]}")
    check(not wrong, "asyncpg: every fetch/fetchrow/fetchval result right",
          f"{len(wrong)} wrong, first {wrong[:3]}")
    per = (rounds + 4) // 5 * 5
    n = su_query("SELECT client, count(*) FROM sink WHERE driver = 'asyncpg' GROUP BY client "
                 "ORDER BY client", dbname=DB)
    check(n == [(c, per) for c in range(NCONN)],
          f"asyncpg: executemany inserted exactly {per} rows per connection (checked "
          "directly)", f"got {n}")
    ntx = su_query("SELECT count(*) FROM sink WHERE driver = 'asyncpg-tx'", dbname=DB)[0][0]
    want_tx = NCONN * len(range(0, rounds, 7))
    check(ntx == want_tx, f"asyncpg: {want_tx} transaction rows committed", f"got {ntx}")


# ---------------------------------------------------------------- psycopg, threads

def psycopg_threads(wp, rounds=30):
    import psycopg
    errors, wrong = [], []

    def worker(c):
        try:
            conn = psycopg.connect(**wp.dsn("four"), prepare_threshold=0,
                                   autocommit=(c % 2 == 0))
        except Exception as e:  # noqa: BLE001
            errors.append((c, "connect", repr(e)))
            return
        try:
            for i in range(rounds):
                lo = (c * 11 + i * 5) % (NITEMS - 10) + 1
                rs = conn.execute("SELECT id, name, val FROM items WHERE id >= %s AND id < %s "
                                  "ORDER BY id", (lo, lo + 3)).fetchall()
                want = [(j, item_name(j), item_val(j)) for j in range(lo, lo + 3)]
                if rs != want:
                    wrong.append((c, i, "select", rs, want))
                r = conn.execute("SELECT %s::int * %s::int, %s::text", (c, i, f"t{i}")).fetchone()
                if r != (c * i, f"t{i}"):
                    wrong.append((c, i, "expr", r))
                if i % 6 == 0:
                    with conn.cursor() as cur:
                        cur.executemany("INSERT INTO sink VALUES ('psycopg', %s, %s, %s)",
                                        [(c, i * 10 + k, f"p{k}") for k in range(4)])
                if not conn.autocommit and i % 3 == 2:
                    conn.commit()
            if not conn.autocommit:
                conn.commit()
        except Exception as e:  # noqa: BLE001
            errors.append((c, i, repr(e)))
        finally:
            conn.close()

    ts = [threading.Thread(target=worker, args=(c,)) for c in range(NCONN)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    check(not errors, f"psycopg prepare_threshold=0: {NCONN} threads × {rounds} rounds "
          "(autocommit and transactions) over a pool of 4: no errors",
          f"{len(errors)} errors, first {errors[:3]}")
    check(not wrong, "psycopg prepare_threshold=0: every result right",
          f"{len(wrong)} wrong, first {wrong[:3]}")
    per = len(range(0, rounds, 6)) * 4
    n = su_query("SELECT client, count(*) FROM sink WHERE driver = 'psycopg' GROUP BY client "
                 "ORDER BY client", dbname=DB)
    check(n == [(c, per) for c in range(NCONN)],
          f"psycopg: executemany inserted exactly {per} rows per connection", f"got {n}")


# ---------------------------------------------------------------- psycopg, pipeline mode

def psycopg_pipeline(wp, rounds=15):
    import psycopg
    errors, wrong = [], []

    async def client(c):
        threshold = 0 if c % 2 == 0 else 5
        try:
            conn = await psycopg.AsyncConnection.connect(**wp.dsn("four"),
                                                         prepare_threshold=threshold,
                                                         autocommit=(c % 4 < 2))
        except Exception as e:  # noqa: BLE001
            errors.append((c, "connect", repr(e)))
            return
        try:
            for i in range(rounds):
                async with conn.pipeline():
                    curs = []
                    for k in range(8):
                        cur = conn.cursor()
                        await cur.execute("SELECT %s::int + %s::int, name FROM items "
                                          "WHERE id = %s", (c, k, k + 1 + i))
                        curs.append(cur)
                    ins = conn.cursor()
                    await ins.executemany("INSERT INTO sink VALUES ('pipeline', %s, %s, %s)",
                                          [(c, i * 10 + k, f"q{k}") for k in range(3)])
                    for k, cur in enumerate(curs):
                        r = await cur.fetchone()
                        if r != (c + k, item_name(k + 1 + i)):
                            wrong.append((c, i, k, r))
                if not conn.autocommit:
                    await conn.commit()
            # a pipeline whose middle statement fails: the rest is skipped, as on PostgreSQL
            got = []
            try:
                async with conn.pipeline():
                    a = await conn.execute("SELECT %s::int", (1,))
                    await conn.execute("SELECT 1 / %s::int", (0,))
                    await conn.execute("SELECT %s::int", (3,))
                    got.append(await a.fetchone())
            except psycopg.errors.DivisionByZero:
                got.append("22012")
            except psycopg.errors.PipelineAborted:
                got.append("aborted")
            if not conn.autocommit:
                await conn.rollback()
            after = await (await conn.execute("SELECT %s::int + 1", (41,))).fetchone()
            if got not in ([(1,), "22012"], ["22012"]) or after != (42,):
                wrong.append((c, "error pipeline", got, after))
        except Exception as e:  # noqa: BLE001
            errors.append((c, repr(e)))
        finally:
            await conn.close()

    async def run():
        await asyncio.wait_for(asyncio.gather(*(client(c) for c in range(NCONN))), 60)

    asyncio.run(run())
    check(not errors, f"psycopg pipeline mode: {NCONN} connections × {rounds} pipelines "
          "(prepare_threshold 0 and 5) over a pool of 4: no errors",
          f"{len(errors)} errors, first {errors[:3]}")
    check(not wrong, "psycopg pipeline mode: every result right, a failing pipeline raises "
          "22012 and the connection works afterwards", f"{len(wrong)} wrong: {wrong[:3]}")
    n = su_query("SELECT count(*) FROM sink WHERE driver = 'pipeline'", dbname=DB)[0][0]
    check(n == NCONN * rounds * 3, f"psycopg pipeline: {NCONN * rounds * 3} rows inserted",
          f"got {n}")


def test():
    # psycopg logs "error ignored terminating <AsyncPipeline ...>: pipeline aborted" for the
    # deliberately failing pipeline (it does so against PostgreSQL directly too)
    logging.getLogger("psycopg").setLevel(logging.CRITICAL)
    setup()
    wp = Warmpool("t21", {"four": {"dbname": DB, "max_pool_size": 4}}).start()
    asyncpg_part(wp)
    psycopg_threads(wp)
    psycopg_pipeline(wp)
    check(wp.alive(), "warmpool still running")
    wp.stop()
    ok("drivers done")


if __name__ == "__main__":
    main(test)
