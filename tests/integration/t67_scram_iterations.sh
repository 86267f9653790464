#!/bin/bash
# t67_scram_iterations — PgBouncer's scram_iterations: the SCRAM keys warmpool derives
# for a plaintext password in auth_file use that many iterations, and so does the
# stand-in exchange for an unknown user (the count must not tell them apart). Private
# warmpool (t30_lib.sh), SCRAM for clients (auth_hba_file), scram_iterations = 5000.
#   1. The server-first message says i=5000 for the test user and for a user nobody has.
#   2. psql logs in with them (its proof, computed with 5000 iterations, is accepted).
#   3. After a reload to 4500 the next exchange says i=4500.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct

db="wptest = host=127.0.0.1 port=$PG_PORT dbname=wptest"
hba=$t3_tmp/hba.conf
printf 'host all all 127.0.0.1/32 scram-sha-256\n' >"$hba"
t3_start "auth_hba_file = $hba
scram_iterations = 5000" "$db"

iterations() { # USER: the i= of warmpool's server-first message
    /usr/bin/python3 - "$t3_port" "$1" <<'PY'
import socket, struct, sys
port, user = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=30)
def send(kind, body):
    s.sendall(kind + struct.pack("!I", len(body) + 4) + body)
def read():
    head = b""
    while len(head) < 5:
        head += s.recv(5 - len(head))
    n = struct.unpack("!I", head[1:5])[0] - 4
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    return head[:1], body
startup = struct.pack("!I", 196608) + b"user\0" + user.encode() + b"\0database\0wptest\0\0"
s.sendall(struct.pack("!I", len(startup) + 4) + startup)
kind, body = read()
assert kind == b"R" and struct.unpack("!I", body[:4])[0] == 10, (kind, body)
first = b"n,,n=,r=t67clientnonce"
send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first)
kind, body = read()
assert kind == b"R" and struct.unpack("!I", body[:4])[0] == 11, (kind, body)
attrs = dict(a.split("=", 1) for a in body[4:].decode().split(","))
print(attrs["i"])
PY
}

[ "$(iterations "$WP_USER")" = 5000 ] || t3_fail "i= for $WP_USER: $(iterations "$WP_USER"), want 5000"
[ "$(iterations t67_nobody)" = 5000 ] || t3_fail "i= for an unknown user: $(iterations t67_nobody)"
t3_ok "server-first says i=5000 for a plaintext user and for an unknown one"

got=$(PGPASSWORD=$WP_PASSWORD psql -X -q -At -h 127.0.0.1 -p "$t3_port" -U "$WP_USER" -d wptest \
    -c "SELECT 'in'" 2>&1) || t3_fail "psql login with 5000 iterations: $got"
[ "$got" = in ] || t3_fail "psql login: got '$got'"
t3_ok "psql logs in with keys of 5000 iterations"

t3_reload "auth_hba_file = $hba
scram_iterations = 4500" "$db"
[ "$(iterations "$WP_USER")" = 4500 ] || t3_fail "after the reload: i=$(iterations "$WP_USER")"
t3_ok "a reload to 4500 applies to the next exchange"
t3_stop
