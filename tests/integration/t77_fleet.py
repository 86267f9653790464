"""t77_fleet: the load and the sampler of t77_fleet.sh (see there for what is asserted).

Usage: t77_fleet.py PG_HOST PG_PORT USER PASSWORD DB PORT_A PORT_B PORT_C PID_C BUDGET SLOW

Clients run `SELECT pg_sleep(0.05)` in a loop through an instance; a sampler reads
pg_stat_activity straight from PostgreSQL every 200 ms: the test user's backends of the
database (the fleet's, since nothing else logs in as that user there) apart from the
`wpfleet:` monitor connections, and each instance's published state (cap, held, want)
from the monitors' application_name. Prints facts; exits 1 with FAIL lines on a
failed assertion.
"""
import os
import signal
import sys
import threading
import time

import psycopg

(pg_host, pg_port, user, password, db, port_a, port_b, port_c, pid_c, budget,
 slow) = sys.argv[1:12]
budget, slow = int(budget), int(slow)
ports = {"A": port_a, "B": port_b, "C": port_c}
BOUND = 60 * slow  # generous bounds for conditions; the times are printed, not asserted

failures = []
lock = threading.Lock()
state = {"total": 0, "max_total": 0, "members": {}, "max_held": {}, "max_cap": {},
         "stamped": 0}
stop_sampler = threading.Event()


def fail(msg):
    print("FAIL: " + msg, flush=True)
    failures.append(msg)


def sampler():
    conn = psycopg.connect(host=pg_host, port=pg_port, user="postgres", dbname=db,
                           autocommit=True)
    while not stop_sampler.is_set():
        rows = conn.execute(
            "SELECT application_name FROM pg_stat_activity WHERE datname = %s "
            "AND usename = %s", (db, user)).fetchall()
        total, members, stamped = 0, {}, 0
        for (app,) in rows:
            stamped += app.startswith(f"wp:{db}:") if app else 0
            if app and app.startswith("wpfleet:"):
                parts = app.split(":")
                if len(parts) == 6:
                    members[parts[2]] = tuple(int(x) for x in parts[3:])
            else:
                total += 1
        with lock:
            state["total"] = total
            state["max_total"] = max(state["max_total"], total)
            state["members"] = members
            state["stamped"] = max(state["stamped"], stamped)
            for name, (cap, held, _want) in members.items():
                state["max_held"][name] = max(state["max_held"].get(name, 0), held)
                state["max_cap"][name] = max(state["max_cap"].get(name, 0), cap)
        time.sleep(0.2)
    conn.close()


class Load:
    """n clients looping through one instance until stop()."""

    def __init__(self, name, n):
        self.name, self.stopping, self.errors = name, threading.Event(), []
        self.queries = 0
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def client(self):
        try:
            with psycopg.connect(host="127.0.0.1", port=ports[self.name], user=user,
                                 password=password, dbname=db, autocommit=True) as conn:
                while not self.stopping.is_set():
                    conn.execute("SELECT pg_sleep(0.05)")
                    with lock:
                        self.queries += 1
        except Exception as e:  # noqa: BLE001 - reported below
            if not self.stopping.is_set():
                with lock:
                    self.errors.append(str(e).strip().splitlines()[0])

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(30)


def members():
    with lock:
        return dict(state["members"])


def wait_until(what, cond):
    start = time.monotonic()
    while time.monotonic() - start < BOUND:
        if cond():
            return time.monotonic() - start
        time.sleep(0.1)
    fail(f"not within {BOUND} s: {what} (published: {members()})")
    return None


threading.Thread(target=sampler, daemon=True).start()

# 1. A busy, B and C idle: A takes more than its three-way share, the fleet never
#    more than the budget.
wait_until("three monitors publishing", lambda: len(members()) == 3)
a = Load("A", 30)
time.sleep(6)
with lock:
    max_total, max_a = state["max_total"], state["max_held"].get("A", 0)
print(f"burst on A: max sampled fleet backends {max_total}, A's max held {max_a}, "
      f"A's cap {members().get('A')}, {a.queries} queries", flush=True)
if max_total > budget:
    fail(f"{max_total} backends sampled, budget {budget}")
if max_a <= budget // 3:
    fail(f"A held at most {max_a} while B and C idled")
if a.errors:
    fail(f"A's clients: {len(a.errors)} errors, first: {a.errors[0]}")

# 2. B and C get busy too: each gets its fair share back from A.
b, c = Load("B", 30), Load("C", 30)
share = budget // 3


def fair():
    m = members()
    return all(m.get(x, (0,))[0] == share for x in "ABC")


took = wait_until(f"every cap {share}", fair)
if took is not None:
    print(f"B and C busy: every cap {share} after {took:.1f} s; sampled {state['total']}",
          flush=True)

# 3. C stops: A and B grow beyond the three-way share.
os.kill(int(pid_c), signal.SIGQUIT)
c.stopping.set()
t0 = time.monotonic()


def grown():
    m = members()
    return "C" not in m and all(m.get(x, (0,))[0] > share for x in "AB")


took = wait_until(f"A and B caps above {share} after C stopped", grown)
if took is not None:
    print(f"C stopped: A and B caps above {share} after {took:.1f} s "
          f"(published {members()})", flush=True)


def backends_grown():
    m = members()
    return all(m.get(x, (0, 0))[1] > share for x in "AB")


took = wait_until(f"A and B holding more than {share} backends", backends_grown)
if took is not None:
    print(f"C stopped: A and B hold more than {share} backends each after "
          f"{time.monotonic() - t0:.1f} s", flush=True)
time.sleep(1)
a.stop()
b.stop()
c.stop()
stop_sampler.set()
with lock:
    max_total = state["max_total"]
print(f"whole run: max sampled fleet backends {max_total} (budget {budget})", flush=True)
if max_total > budget:
    fail(f"{max_total} backends sampled, budget {budget}")
print(f"backends stamped application_name wp:{db}:<instance>: up to {state['stamped']} "
      "in one sample", flush=True)
if state["stamped"] == 0:
    fail(f"no backend ever stamped wp:{db}:<instance>")
for load in (a, b):
    if load.errors:
        fail(f"{load.name}'s clients: {len(load.errors)} errors, first: {load.errors[0]}")
sys.exit(1 if failures else 0)
