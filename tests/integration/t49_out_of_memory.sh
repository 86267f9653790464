#!/bin/bash
# t49_out_of_memory — running out of memory is reported as such (53200), never as a
# protocol violation, and costs only the client that asked for the memory.
#
# A private warmpool runs with its address space limited (ulimit -v) and the default
# max_packet_size (1GB). A client declares a 900 MB Parse: warmpool must hold a Parse
# whole, the buffer cannot grow, and the client gets FATAL 53200 "out of memory". Then
# a client with an ordinary query is served by the same process.
# Skipped under ASan, TSan and valgrind: they need far more address space than the limit.
set -eu
. "$(dirname "$0")/lib_private_warmpool.sh"

if [ "${WP_VALGRIND:-0}" = 1 ] || ldd "${WP_WORKERS_BIN:-$WARMPOOL}" 2>/dev/null | grep -qE "lib(a|t)san"; then
    echo "ok: skipped (ASan, TSan or valgrind reserve more address space than the limit allows)"
    exit 0
fi

# Enough for the process and its helper threads, far from 900 MB.
ulimit -v 400000
pw_start
ulimit -v unlimited 2>/dev/null || true

got=$($PY - "$PW_PORT" "$WP_USER" "$WP_PASSWORD" <<'PY'
import socket, struct, sys
sys.path.insert(0, "tests/integration")
from access_client import login, message, startup_packet, until_error

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=20)
s.sendall(startup_packet([(b"user", user.encode()), (b"database", b"wptest")]))
err = login(s, user, password)
if err:
    print("login failed: " + err)
    sys.exit(0)
# A named Parse declaring 900 MB, of which a little is sent.
s.sendall(b"P" + struct.pack("!I", 900 * 1024 * 1024) + b"big\0SELECT '" + b"x" * 65536)
print(until_error(s))
PY
)
case $got in
"53200 out of memory") ok "a Parse too big for memory: FATAL 53200 out of memory" ;;
*) fail "a Parse too big for memory: got '$got', want '53200 out of memory'" ;;
esac

n=$(pw_app wptest -c "SELECT 41 + 1")
[ "$n" = 42 ] || fail "the next client got '$n'"
ok "the pooler serves the next client"
kill -0 "$PW_PID" 2>/dev/null || fail "warmpool died"
grep -q "out of memory" "$PW_LOG" || fail "no 'out of memory' line in the log"
ok "the log says out of memory"
