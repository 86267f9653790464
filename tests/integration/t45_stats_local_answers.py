"""t45_stats_local_answers — requests warmpool answers itself are timed and counted like
the ones a backend answers ("Correctness first", bug 12).

Per-statement stats time a request from its first message to its ReadyForQuery. When
warmpool sends that ReadyForQuery itself (SQL DEALLOCATE, DEALLOCATE ALL, a PREPARE of
a statement the backend already has, a Parse + Sync of a known statement while the
client has no backend), the request must end there too: otherwise its timer runs on
into the next request, which is then recorded under the earlier statement, or not at
all.

A private warmpool (transaction mode, pool of one, stats_socket). Each locally answered
request is followed by SELECT pg_sleep(0.2) from the same client. Asserted from
/stats and /statements: the pool counted exactly one query per request; pg_sleep(?)
has one call per sleep; each locally answered statement has its calls, and its
longest call took less than a quarter of the sleep's mean (it never absorbed one).
Run with /usr/bin/python3 (prepared_lib.py).
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepared_lib import (DIRECT, Parse, Query, Sync, Warmpool, at_exit, check, fail, fmt,  # noqa: E402
                          main, make_db, note)
from stats_client import get  # noqa: E402

DB = "wpstats_local"
SLEEP = "SELECT pg_sleep(0.2)"

# (client, messages, what /statements calls it)
LOCAL = [
    ("A", [Query("DEALLOCATE p")], "DEALLOCATE p"),
    ("A", [Query("DEALLOCATE ALL")], "DEALLOCATE ALL"),
    ("B", [Query("PREPARE p2 AS SELECT 1 AS one")], "PREPARE p2 AS SELECT ? AS one"),
    ("B", [Parse("pq", "SELECT 3 AS three"), Sync()], "SELECT ? AS three"),
]


def answer(r, msgs):
    r.send(*msgs)
    res = r.until_ready(sum(1 for m in msgs if m[:1] in (b"Q", b"S")))
    if any(tok[0] == "E" for tok in res):
        fail(f"{msgs!r}: {fmt(res)}")
    return res


def stats_json(sock, path):
    status, _, body = get(f"unix:{sock}", path)
    if status != 200:
        fail(f"GET {path}: {status}")
    return json.loads(body)


def pool_queries(sock):
    pools = [p for p in stats_json(sock, "/stats")["pools"] if p["database"] == "one"]
    return pools[0]["queries"] if pools else 0


def statement(sock, text):
    rows = [s for s in stats_json(sock, "/statements?limit=100000")["statements"]
            if s["database"] == "one" and s["query"] == text]
    return rows[0] if rows else None


def test():
    if DIRECT:
        note("direct: nothing to check without warmpool")
        return
    make_db(DB)
    sock_dir = tempfile.mkdtemp(prefix="wp-t45-stats.")
    at_exit(lambda: shutil.rmtree(sock_dir, ignore_errors=True))
    sock = os.path.join(sock_dir, "stats.sock")
    wp = Warmpool("t45", {"one": {"dbname": DB, "max_pool_size": 1}}, stats_socket=sock).start()
    clients = {"A": wp.raw("one"), "B": wp.raw("one")}
    # what the local answers need: a statement of A's, the same text prepared on the
    # (only) backend for B's PREPARE, a Parse the backend accepted for B's
    answer(clients["A"], [Query("PREPARE p AS SELECT 1 AS one")])
    answer(clients["A"], [Parse("pa", "SELECT 3 AS three"), Sync()])
    before = pool_queries(sock)
    for who, msgs, _ in LOCAL:
        answer(clients[who], msgs)
        answer(clients[who], [Query(SLEEP)])
    counted = pool_queries(sock) - before
    check(counted == 2 * len(LOCAL), f"{2 * len(LOCAL)} requests counted as queries", str(counted))
    sleep = statement(sock, "SELECT pg_sleep(?)")
    check(sleep is not None and sleep["calls"] == len(LOCAL),
          f"pg_sleep(?) recorded once per sleep ({len(LOCAL)})", str(sleep))
    # the Parse of SELECT 3 AS three: A's went to the backend, B's was answered locally
    calls = {"DEALLOCATE p": 1, "DEALLOCATE ALL": 1, "PREPARE p2 AS SELECT ? AS one": 1,
             "SELECT ? AS three": 2}
    for _, msgs, text in LOCAL:
        st = statement(sock, text)
        check(st is not None and st["calls"] == calls[text], f"{text!r} recorded", str(st))
        check(st["max_us"] * 4 < sleep["mean_us"],
              f"{text!r} took {st['max_us']} us at most, well under the sleep after it "
              f"({sleep['mean_us']} us)")
    for r in clients.values():
        r.close()
    wp.stop()


if __name__ == "__main__":
    main(test)
