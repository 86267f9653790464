#!/bin/bash
# t54_accept_emfile — accept() out of file descriptors must not spin ("Correctness
# first", item 11). A private warmpool (t30_lib.sh) runs under `ulimit -n 40`.
#   - Raw TCP connections (no startup packet) are opened until warmpool logs that
#     accept() failed; then more keep arriving for 2 s. Over those 2 s the log grows by
#     fewer than 20 lines (warmpool used to retry at once and log each failure: tens
#     of thousands of lines a second).
#   - Once the raw connections are closed, warmpool says it accepts again and a real
#     client logs in and gets an answer.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct

fd_limit=40
[ "${WP_VALGRIND:-0}" = 1 ] && fd_limit=64 # valgrind keeps some descriptors for itself
real_warmpool=$WARMPOOL
WARMPOOL=$t3_tmp/warmpool-low-fd-limit.sh
cat >"$WARMPOOL" <<SH
#!/bin/bash
ulimit -n $fd_limit || exit 1
exec "$real_warmpool" "\$@"
SH
chmod +x "$WARMPOOL"

t3_start "" "wptest = host=127.0.0.1 port=$PG_PORT dbname=wptest"
t3_ok "private warmpool with ulimit -n $fd_limit on port $t3_port"

# Runs in the background until stdin closes: holds the connections open meanwhile.
# Prints "full" once warmpool logged an accept failure, then "counted BEFORE AFTER"
# (log lines before and after 2 s of further connection attempts).
fifo=$t3_tmp/flood.in
mkfifo "$fifo"
/usr/bin/python3 - "$t3_port" "$t3_log" "$fd_limit" <"$fifo" >"$t3_tmp/flood.out" 2>&1 <<'PY' &
import socket, sys, time

port, log, limit = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
held = []

def connect():
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect(("127.0.0.1", port))
        held.append(s)
    except OSError:
        s.close()

def log_text():
    with open(log, errors="replace") as f:
        return f.read()

# More connections than warmpool has descriptors (well inside the listen backlog).
deadline = time.time() + 10
while "accept failed" not in log_text():
    if time.time() > deadline:
        print("no 'accept failed' in the log after %d connections" % len(held))
        sys.exit(1)
    if len(held) < 2 * limit:
        connect()
    else:
        time.sleep(0.05)
print("full after %d connections" % len(held), flush=True)
before = log_text().count("\n")
end = time.time() + 2
while time.time() < end:
    connect()
    time.sleep(0.1)
after = log_text().count("\n")
print("counted %d %d (%d connections held)" % (before, after, len(held)), flush=True)
sys.stdin.read()  # hold them until told to let go
for s in held:
    s.close()
PY
flood_pid=$!
exec 7>"$fifo"

for _ in $(seq $((150 * t3_slow))); do
    grep -q '^counted' "$t3_tmp/flood.out" && break
    kill -0 "$flood_pid" 2>/dev/null || break
    sleep 0.1
done
cat "$t3_tmp/flood.out"
read -r _ before after _ < <(grep '^counted' "$t3_tmp/flood.out") ||
    t3_fail "the connection flood did not finish: $(cat "$t3_tmp/flood.out")"
grown=$((after - before))
[ "$grown" -lt 20 ] ||
    t3_fail "the log grew by $grown lines in 2 s of refused connections (want < 20): $(sed -n "$((before + 1)),$((before + 5))p" "$t3_log")"
t3_ok "accept() out of descriptors: the log grew by $grown lines in 2 s (< 20)"

exec 7>&-
wait "$flood_pid" || t3_fail "the connection flood failed: $(cat "$t3_tmp/flood.out")"

answer=$(PGPASSWORD=$WP_PASSWORD PGCONNECT_TIMEOUT=$((10 * t3_slow)) psql -X -q -At \
    -h 127.0.0.1 -p "$t3_port" -U "$WP_USER" -d wptest -c "SELECT 'served'") ||
    t3_fail "no login after the raw connections closed"
[ "$answer" = served ] || t3_fail "got '$answer', want 'served'"
t3_ok "after the raw connections closed, a new client logs in and is served"
grep -q 'accepting connections again' "$t3_log" ||
    t3_fail "warmpool did not log that it accepts again"
t3_ok "warmpool logged that it accepts connections again"
grep -E 'accept' "$t3_log" | sed 's/^/    log: /'
t3_stop
t3_ok "SIGQUIT: warmpool exited with status 0"
