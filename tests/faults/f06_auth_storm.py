"""f06_auth_storm — 5000 login attempts with a wrong password, half against the md5
instance and half against the scram-sha-256 one, from 8 parallel raw-protocol clients,
while 4 good clients run the ledger workload (one attempt in ten gives up after the
server's first authentication request instead). Every attempt must end in ErrorResponse
28P01 or a clean close (never a hang, never success, never another error), both poolers
must stay up, their RSS must not grow with the number of attempts (measured from the
1000th attempt on), and the good clients must keep working without a single error."""
import random
import threading
import time

from faultlib import (ASAN_SLACK_KB, RawClient, check, check_invariants, check_memory,
                      finish, log,
                      pooler_pid, rss_kb, start_workers, stop_workers, wait_progress)

RUN = "f06"
ATTEMPTS = 5000
THREADS = 8
GROWTH_KB = 4 * 1024 + ASAN_SLACK_KB

outcomes = {}
done = 0
lock = threading.Lock()


def note(inst, key):
    key = f"{inst}: {key}"
    global done
    with lock:
        outcomes[key] = outcomes.get(key, 0) + 1
        done += 1


def attempt(inst):
    try:
        c = RawClient(inst, timeout=20)
    except OSError as e:
        note(inst, f"connect failed: {e}")
        return
    try:
        if random.random() < 0.1:  # some give up in the middle of the exchange instead
            c.startup()
            t, _ = c.read_msg()
            note(inst, "gave up mid-auth" if t == b"R" else f"startup answered {t!r}")
            return
        err = c.login(password="not-the-password")
        if err is None:
            note(inst, "LOGGED IN with a wrong password")
        else:
            note(inst, f"error {err.get('C')}")
    except EOFError:
        note(inst, "closed")
    except OSError as e:
        note(inst, f"socket error: {type(e).__name__}")
    except Exception as e:
        note(inst, f"unexpected: {type(e).__name__}: {e}")
    finally:
        c.close()


def storm(inst, n):
    for _ in range(n):
        attempt(inst)


def main():
    for inst in ("md5", "scram"):  # the raw client's login works with the right password
        c = RawClient(inst)
        check(c.login() is None, f"{inst}: control login with the right password succeeds")
        c.close()
    ws, dog = start_workers(RUN, 3, think=0.01)
    ws2, dog2 = start_workers(RUN, 1, cid_base=100, inst="scram", think=0.01)
    ws_all = ws + ws2
    check(wait_progress(ws_all, 0, need=3, limit=30), "4 good clients running")
    pids = {inst: pooler_pid(inst) for inst in ("md5", "scram")}
    start = time.monotonic()
    threads = [threading.Thread(target=storm, args=("md5" if i % 2 == 0 else "scram",
                                                    ATTEMPTS // THREADS), daemon=True)
               for i in range(THREADS)]
    for t in threads:
        t.start()
    base = None
    peak = {inst: 0 for inst in pids}
    while any(t.is_alive() for t in threads) and time.monotonic() - start < 150:
        if base is None and done >= 1000:
            base = {inst: rss_kb(pid) for inst, pid in pids.items()}
        if base is not None:
            for inst, pid in pids.items():
                peak[inst] = max(peak[inst], rss_kb(pid))
        time.sleep(0.05)
    for t in threads:
        t.join(30)
    secs = time.monotonic() - start
    end = {inst: rss_kb(pid) for inst, pid in pids.items()}
    log(f"{done} attempts in {secs:.1f} s: {outcomes}")
    check(done == ATTEMPTS, f"all {ATTEMPTS} attempts finished ({done})")
    bad = {k: v for k, v in outcomes.items() if k.split(": ", 1)[1] not in ("error 28P01", "closed", "gave up mid-auth")}
    check(not bad, f"every attempt got 28P01 or a clean close (others: {bad or 'none'})")
    for inst in pids:
        if base is None:
            check_memory(False, f"{inst}: RSS measured")
            continue
        grew = max(peak[inst], end[inst]) - base[inst]
        check_memory(grew < GROWTH_KB, f"{inst}: RSS {base[inst]} kB after 1000 attempts, peak "
              f"{peak[inst]} kB, end {end[inst]} kB: growth {grew} kB < {GROWTH_KB} kB")
    check(wait_progress(ws_all, start, need=20, limit=5) or
          all(w.ok_after(start) > 0 for w in ws_all),
          "good clients completed requests during the storm")
    errs = stop_workers(ws_all, dog)
    dog2.stop.set()
    check(not errs, f"good clients saw no error during the storm ({errs or 'none'})")
    check_invariants(RUN, ws_all)
    finish()


main()
