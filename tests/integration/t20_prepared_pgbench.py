"""t20_prepared_pgbench — issue 8, acceptance 1: pgbench -M prepared over a small pool.

pgbench -i -s 5 directly on PostgreSQL, then through a private warmpool (transaction
mode, pool of 10):
  pgbench -n -S -M prepared -c 50 -j 2 -T 20     (select-only)
  pgbench -n    -M prepared -c 40 -j 2 -T 20     (TPC-B)
each under `timeout 60`. Asserts per run: exit 0 (not killed by the timeout), all clients
ran, no client aborted, "number of failed transactions: 0", transactions > 0; a direct
pg_stat_activity sampler never sees more than 10 backends of the database. Afterwards,
directly on PostgreSQL: sum(bbalance) = sum(tbalance) = sum(abalance) = sum(delta), and
pgbench_history has exactly one row per TPC-B transaction pgbench reported.
T20_SECONDS overrides the 20 s.
"""
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepared_lib import (DIRECT, PASSWORD, PG_HOST, PG_PORT, USER, Warmpool, check,  # noqa: E402
                          fail, main, make_db, ok, su_query)

DB = "wpprep_bench"
POOL = 10
SECS = int(os.environ.get("T20_SECONDS", "20"))


class Sampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.stop_flag = False
        self.max_seen = 0
        self.samples = 0

    def run(self):
        import psycopg
        conn = psycopg.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres",
                               autocommit=True)
        while not self.stop_flag:
            n = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                             "AND backend_type = 'client backend'", (DB,)).fetchone()[0]
            self.max_seen = max(self.max_seen, n)
            self.samples += 1
            time.sleep(0.05)
        conn.close()


def pgbench(wp, args, clients):
    cmd = ["timeout", str(SECS + 40), "pgbench", "-n", "-M", "prepared", "-c", str(clients),
           "-j", "2", "-T", str(SECS), "-h", wp.host, "-p", str(wp.port), "-U", USER] + args + \
        [wp.dbname(DB)]
    env = dict(os.environ, PGPASSWORD=PASSWORD, PGCONNECT_TIMEOUT="10")
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    took = time.time() - t0
    out = p.stdout + p.stderr

    def grab(pattern):
        m = re.search(pattern, out, re.M)
        return m.group(1) if m else None

    nclients = grab(r"^number of clients: (\d+)")
    processed = grab(r"^number of transactions actually processed: (\d+)")
    failed = grab(r"^number of failed transactions: (\d+)")
    tps = grab(r"^tps = ([\d.]+)")
    aborted = len(re.findall(r"aborted", out))
    what = " ".join(cmd[2:])
    if p.returncode != 0 or nclients != str(clients) or not processed or processed == "0" or \
            failed != "0" or aborted:
        tail = "\n".join("    pgbench: " + line for line in out.splitlines()[-30:])
        fail(f"{what}: exit {p.returncode}{' (timeout)' if p.returncode == 124 else ''}, "
             f"clients {nclients}, processed {processed}, failed {failed}, lines mentioning "
             f"'aborted': {aborted}, {took:.1f} s\n{tail}\n--- warmpool log:\n{wp.log_tail()}")
    ok(f"{what}: {processed} transactions, 0 failed, tps {tps}, {took:.1f} s")
    return int(processed)


def test():
    make_db(DB)
    p = subprocess.run(["pgbench", "-i", "-q", "-s", "5", "-h", PG_HOST, "-p", str(PG_PORT),
                        "-U", USER, DB], capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"pgbench -i on PostgreSQL failed: {p.stderr[-500:]}")
    ok("pgbench -i -s 5 directly on PostgreSQL")
    wp = Warmpool("t20", {DB: {"dbname": DB, "max_pool_size": POOL}}).start()
    sampler = Sampler()
    sampler.start()
    pgbench(wp, ["-S"], 50)
    tpcb = pgbench(wp, [], 40)
    sampler.stop_flag = True
    sampler.join(5)
    if not DIRECT:
        check(sampler.max_seen <= POOL, f"{sampler.samples} samples of pg_stat_activity: at "
              f"most {POOL} backends (max seen {sampler.max_seen})")
    b, t, a, h, n = su_query("""
        SELECT (SELECT sum(bbalance) FROM pgbench_branches),
               (SELECT sum(tbalance) FROM pgbench_tellers),
               (SELECT sum(abalance) FROM pgbench_accounts),
               (SELECT coalesce(sum(delta), 0) FROM pgbench_history),
               (SELECT count(*) FROM pgbench_history)""", dbname=DB)[0]
    check(b == t == a == h, f"TPC-B invariant: sum(bbalance) = sum(tbalance) = sum(abalance) "
          f"= sum(delta) = {b}", f"branches {b}, tellers {t}, accounts {a}, history {h}")
    check(n == tpcb, f"pgbench_history holds exactly the {tpcb} reported TPC-B transactions",
          f"it holds {n}")
    wp.stop()


if __name__ == "__main__":
    main(test)
