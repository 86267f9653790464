"""t22_prepared_pipeline — issue 8, acceptance 3 (and the protocol corners around it).

A raw protocol-v3 client sends exact extended-protocol sequences, pipelined in one write
per step, to PostgreSQL directly (TCP, SCRAM) and through a private warmpool
(transaction mode, md5, pool of 1), and asserts that the answers match message by
message: type, SQLSTATE of errors, DataRow values, CommandComplete tags, RowDescription
column names, ParameterDescription OIDs, ReadyForQuery status.

Each scenario runs through warmpool in three modes:
  cold   statement texts never seen before (tagged with a fresh comment)
  warm   another client has already prepared and described every text on the backend,
         so Parses are answered by warmpool (synthetic ParseComplete) and Describes may be
  fresh  the backend is terminated (pg_terminate_backend) between steps, so every Bind
         and Describe lands on a backend that lacks the statement (injected Parse)
  split  each step is written in 7-byte pieces, so warmpool sees every message cut up
"""
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepared_lib import (DIRECT, ENV, PASSWORD, PG_PORT, SLOW, USER, Bind, Close, Describe,  # noqa: E402
                          Execute, Flush, Parse, Query, Raw, Sync, Warmpool, backend_pids,
                          fail, fmt, main, make_db, ok, summarize, superuser, terminate)

DB = "wpprep_pipe"
Q1 = "SELECT $1::int + 1 AS plus_one"
Q2 = "SELECT $1::text || '!' AS bang, 7 AS seven"
BAD = "SELEC 1 oops"
INS = "INSERT INTO pipe_t VALUES ($1::int)"


def scenarios(tag):
    """name → list of steps; a step is (messages sent in one write, how to read)."""
    def t(q):
        return f"{q} /* {tag} */" if tag else q
    q1, q2, bad, ins = t(Q1), t(Q2), t(BAD), t(INS)
    S = "sync"  # read up to as many ReadyForQuery as Sync/Query messages sent
    Z = "quiet"  # read what arrives until 0.4 s pass quietly (Flush without Sync)
    return {
        # The sequence from acceptance 3, in two writes and in one.
        "acceptance3": [
            ([Parse("S1", q1), Bind("S1", [41]), Execute(), Parse("S2", bad), Bind("S2"),
              Execute(), Sync()], S),
            ([Bind("S1", [1]), Execute(), Sync()], S),
        ],
        "acceptance3_one_write": [
            ([Parse("S1", q1), Bind("S1", [41]), Execute(), Parse("S2", bad), Bind("S2"),
              Execute(), Sync(), Bind("S1", [1]), Execute(), Sync()], S),
        ],
        "describe_before_bind": [
            ([Parse("S1", q1), Describe("S", "S1"), Bind("S1", [41]), Execute(), Sync()], S),
            ([Describe("S", "S1"), Bind("S1", [9]), Describe("P", ""), Execute(), Sync()], S),
            ([Parse("S2", q2), Describe("S", "S2"), Sync()], S),
            ([Bind("S2", ["x"]), Execute(), Sync()], S),
        ],
        "close_then_bind_26000": [
            ([Parse("S1", q1), Sync()], S),
            ([Close("S", "S1"), Bind("S1", [1]), Execute(), Sync()], S),
            ([Bind("S1", [1]), Execute(), Sync()], S),
            ([Close("S", "S1"), Sync()], S),  # closing a missing statement is no error
            ([Parse("S1", q1), Bind("S1", [2]), Execute(), Sync()], S),
        ],
        "close_then_describe_26000": [
            ([Parse("S1", q1), Bind("S1", [1]), Execute(), Close("S", "S1"), Sync()], S),
            ([Describe("S", "S1"), Sync()], S),
        ],
        "duplicate_name_42P05": [
            ([Parse("S1", q1), Sync()], S),
            ([Parse("S1", q1), Sync()], S),
            ([Parse("S1", q2), Bind("S1", [1]), Execute(), Sync()], S),
            ([Bind("S1", [5]), Execute(), Sync()], S),  # still the first statement
            ([Parse("S3", q2), Parse("S3", q2), Bind("S3", ["a"]), Execute(), Sync()], S),
            ([Bind("S3", ["a"]), Execute(), Sync()], S),  # never created
        ],
        # 42P05 inside an explicit transaction: the transaction is failed (Z 'E').
        "duplicate_in_transaction": [
            ([Query("TRUNCATE pipe_t")], S),
            ([Parse("I1", ins), Sync()], S),
            ([Query("BEGIN")], S),
            ([Bind("I1", [1]), Execute(), Parse("I1", ins), Bind("I1", [2]), Execute(),
              Sync()], S),
            ([Query("SELECT 1")], S),
            ([Query("ROLLBACK")], S),
            ([Query("SELECT count(*) FROM pipe_t")], S),
        ],
        # 42P05 in an implicit transaction rolls back what the pipeline did before it.
        "duplicate_rolls_back_pipeline": [
            ([Query("TRUNCATE pipe_t")], S),
            ([Parse("I1", ins), Bind("I1", [1]), Execute(), Parse("I1", ins), Sync()], S),
            ([Query("SELECT count(*) FROM pipe_t")], S),
        ],
        # After an error everything up to Sync is skipped, local Close included.
        "error_skips_close": [
            ([Parse("S1", q1), Sync()], S),
            ([Parse("S2", bad), Close("S", "S1"), Sync()], S),
            ([Bind("S1", [3]), Execute(), Sync()], S),
        ],
        "error_skips_parse_of_known_text": [
            ([Parse("S1", q1), Bind("S1", [1]), Execute(), Sync()], S),
            ([Parse("S2", bad), Parse("S3", q1), Bind("S3", [2]), Execute(), Sync()], S),
            ([Bind("S3", [3]), Execute(), Sync()], S),  # S3 was never created: 26000
            ([Parse("S3", q1), Bind("S3", [4]), Execute(), Sync()], S),
        ],
        # The error reaches the client (Flush) before the rest of the pipeline is sent.
        "error_then_flush_then_more": [
            ([Parse("S1", q1), Bind("S1", [1]), Execute(), Sync()], S),
            ([Parse("S2", bad), Flush()], Z),
            ([Parse("S3", q1), Close("S", "S1"), Bind("S3", [2]), Execute(), Sync()], S),
            ([Bind("S1", [5]), Execute(), Sync()], S),
            ([Bind("S3", [5]), Execute(), Sync()], S),
        ],
        "execute_error_skips_rest": [
            ([Parse("S1", q1), Parse("S2", q2), Sync()], S),
            ([Bind("S1", ["notanint"]), Execute(), Parse("S4", q2), Bind("S2", ["y"]),
              Execute(), Close("S", "S2"), Sync(), Bind("S2", ["z"]), Execute(), Sync()], S),
            ([Bind("S4", ["w"]), Execute(), Sync()], S),
        ],
        "flush_driven": [
            ([Parse("S1", q1), Flush()], Z),
            ([Describe("S", "S1"), Flush()], Z),
            ([Bind("S1", [10]), Execute(), Flush()], Z),
            ([Sync()], S),
            ([Bind("S1", [11]), Execute(), Sync()], S),
        ],
        "portals": [
            ([Parse("G", t("SELECT g FROM generate_series(1, $1::int) g")),
              Bind("G", [5], portal="p1"), Describe("P", "p1"), Execute("p1", 2),
              Execute("p1", 2), Execute("p1", 0), Close("P", "p1"), Sync()], S),
            ([Query("BEGIN")], S),
            ([Bind("G", [3], portal="p2"), Execute("p2", 1), Sync()], S),
            ([Execute("p2", 0), Sync()], S),
            ([Query("COMMIT")], S),
        ],
        "unnamed_mixed": [
            ([Parse("", q2), Bind("", ["u"]), Execute(), Parse("S1", q1), Bind("S1", [1]),
              Execute(), Parse("", q1), Describe("S", ""), Bind("", [2]), Execute(), Sync()],
             S),
            ([Bind("S1", [3]), Execute(), Sync()], S),
        ],
        "many_syncs_one_write": [
            ([Parse("S1", q1), Bind("S1", [1]), Execute(), Sync(),
              Parse("S2", bad), Sync(),
              Bind("S1", [2]), Execute(), Sync(),
              Bind("S2"), Execute(), Sync(),
              Parse("S2", q2), Bind("S2", ["k"]), Execute(), Sync(),
              Close("S", "S1"), Close("S", "S2"), Sync(),
              Bind("S1", [3]), Execute(), Sync()], S),
        ],
        "deallocate_all": [
            ([Parse("S1", q1), Bind("S1", [1]), Execute(), Sync()], S),
            ([Query("DEALLOCATE ALL")], S),
            ([Bind("S1", [2]), Execute(), Sync()], S),
            ([Parse("S1", q1), Bind("S1", [3]), Execute(), Sync()], S),
        ],
        "discard_all": [
            ([Parse("S1", q1), Bind("S1", [1]), Execute(), Sync()], S),
            ([Query("DISCARD ALL")], S),
            ([Bind("S1", [2]), Execute(), Sync()], S),
            ([Parse("S1", q1), Bind("S1", [3]), Execute(), Sync()], S),
        ],
        # Messages larger than warmpool's 16 kB buffer, and binary result format.
        "big_messages": [
            ([Parse("BIG", t("SELECT length($1::text) AS n, '" + "x" * 40000 + "' AS pad")),
              Bind("BIG", ["y" * 300000]), Execute(), Sync()], S),
            ([Bind("BIG", ["z" * 70000], result_formats=[1, 0]), Execute(), Sync()], S),
            ([Describe("S", "BIG"), Sync()], S),
        ],
        "typed_params": [
            ([Parse("T1", t("SELECT $1 + $2 AS s"), [23, 20]), Describe("S", "T1"),
              Bind("T1", [1, 2]), Execute(), Sync()], S),
            ([Parse("T2", t("SELECT $1 + $2 AS s"), [20, 20]), Describe("S", "T2"),
              Bind("T2", [3, 4]), Execute(), Sync()], S),
            ([Bind("T1", [5, 6]), Execute(), Sync()], S),
        ],
    }


def send_split(raw, msgs, piece=7):
    data = b"".join(msgs)
    for i in range(0, len(data), piece):
        raw.sock.sendall(data[i:i + piece])
        if i // piece % 8 == 0:
            time.sleep(0.0005)


def read_unsynced(raw, expect, last):
    """Answers to a step without Sync (Flush): with PostgreSQL's answer known, read as many
    messages as it gave, waiting as long as a slow pooler needs (valgrind), then whatever
    else comes within 0.4 s (the last step: 0.4 s, 6x under valgrind); an extra message
    arriving later still shows in the next step's answer. Without `expect` (PostgreSQL
    itself), read until 0.4 s pass quietly."""
    if expect is None:
        return raw.until_quiet(0.4)
    out = []
    while len(out) < len(expect):
        m = raw.read_msg(10 * SLOW)
        if m is None:
            return out
        out.append(summarize(*m))
    return out + raw.until_quiet(0.4 * SLOW if last else 0.4)


def run_steps(raw, steps, between=None, split=False, expect=None):
    """Answers per step; a step that failed gets the exception text instead. `expect`:
    PostgreSQL's answers, which tell how many messages a step without Sync waits for."""
    out = []
    for i, (msgs, how) in enumerate(steps):
        try:
            # Terminate the backend only where the client holds none (after Z 'I').
            if between and i > 0 and out[-1] and out[-1][-1] == ("Z", "I"):
                between()
            if split and sum(len(m) for m in msgs) < 4096:
                send_split(raw, msgs)
            else:
                raw.send(*msgs)
            if how == "sync":
                n = sum(1 for m in msgs if m[:1] in (b"S", b"Q"))
                out.append(raw.until_ready(n))
            else:
                step_expect = expect[i] if expect and i < len(expect) else None
                if not isinstance(step_expect, list):
                    step_expect = None
                out.append(read_unsynced(raw, step_expect, i == len(steps) - 1))
        except Exception as e:  # noqa: BLE001
            out.append(f"exception: {e}")
            break
    return out


def closed_servers(wp):
    """Backends the pooler has closed so far, from its log."""
    with open(os.path.join(wp.dir, "warmpool.log"), errors="replace") as f:
        return sum(1 for line in f if " S-" in line and ": closing: " in line)


def warm_up(wp, steps):
    """Another client prepares and describes every text of the scenario on the backend."""
    raw = wp.raw("one")
    texts = []
    for msgs, _ in steps:
        for m in msgs:
            if m[:1] == b"P":
                body = m[5:]
                name_end = body.index(b"\0")
                q_end = body.index(b"\0", name_end + 1)
                nparams = int.from_bytes(body[q_end + 1:q_end + 3], "big")
                types = [int.from_bytes(body[q_end + 3 + 4 * i:q_end + 7 + 4 * i], "big")
                         for i in range(nparams)]
                texts.append((body[name_end + 1:q_end].decode(), types))
    for i, (q, types) in enumerate(texts):
        raw.run(Parse(f"warm{i}", q, types), Describe("S", f"warm{i}"), Sync())
    raw.close()


def test():
    make_db(DB)
    with superuser(DB) as su:
        su.execute(f"CREATE TABLE pipe_t (v int); ALTER TABLE pipe_t OWNER TO {USER}")
    wp = Warmpool("t22", {"one": {"dbname": DB, "max_pool_size": 1}}).start()
    direct_port = PG_PORT

    def direct():
        return Raw("127.0.0.1", direct_port, USER, PASSWORD, DB)

    failures = []
    modes = ["cold"] if DIRECT else ["cold", "warm", "fresh", "split"]
    modes = ENV.get("T22_MODES", " ".join(modes)).split()
    only = ENV.get("T22_ONLY", "").split()
    # mode-major: the cut-up writes (split) last, after every other result is known
    for mode in modes:
        for name in scenarios(""):
            if only and name not in only:
                continue
            tag = f"{name}:{mode}:{uuid.uuid4().hex[:8]}"
            steps = scenarios(tag)[name]
            d = direct()
            expect = run_steps(d, steps)
            d.close()
            if mode == "warm":
                warm_up(wp, steps)
            raw = wp.raw("one")
            between = None
            if mode == "fresh":
                def between():
                    pids = [p for p in backend_pids(DB)]
                    if pids:
                        seen = closed_servers(wp)
                        terminate(pids)
                        # The pooler must have seen them go before the next step, or
                        # it may lend one whose FATAL is still on its way.
                        deadline = time.time() + 10
                        while closed_servers(wp) < seen + len(pids) and time.time() < deadline:
                            time.sleep(0.02)
            got = run_steps(raw, steps, between, split=(mode == "split"), expect=expect)
            raw.close()
            if any(isinstance(g, str) for g in got) and not wp.responsive():
                if failures:
                    print(f"FAIL: before that, {len(failures)} scenario runs differed from "
                          f"PostgreSQL: {', '.join(failures)}", file=sys.stderr, flush=True)
                wp.hang_report(f"{name} [{mode}]: " + " | ".join(
                    fmt(g) if isinstance(g, list) else g for g in got))
            if got == expect:
                ok(f"{name} [{mode}]: same answers as PostgreSQL: " +
                   " | ".join(fmt(s) for s in expect))
            else:
                lines = [f"{name} [{mode}]: answers differ from PostgreSQL"]
                for i, (msgs, _) in enumerate(steps):
                    e = expect[i] if i < len(expect) else None
                    g = got[i] if i < len(got) else None
                    sent = " ".join(m[:1].decode() for m in msgs)
                    mark = "  " if e == g else "!!"
                    lines.append(f"  {mark} step {i + 1} sent: {sent}")
                    lines.append(f"       PostgreSQL: {fmt(e) if e is not None else '-'}")
                    lines.append(f"       warmpool:   "
                                 f"{fmt(g) if isinstance(g, list) else g}")
                msg = "\n".join(lines)
                print("MISMATCH: " + msg, file=sys.stderr, flush=True)
                failures.append(f"{name} [{mode}]")
            if not wp.alive():
                fail(f"warmpool died during {name} [{mode}]:\n{wp.log_tail()}")
    if failures:
        fail(f"{len(failures)} scenario runs differ from PostgreSQL: {', '.join(failures)}")
    ok("every scenario matches PostgreSQL in every mode")


if __name__ == "__main__":
    main(test)
