#!/usr/bin/python3
"""access_client.py - test helper for t42_access.sh: connections that must be refused,
and raw protocol input a hostile client could send.

  connect HOST PORT USER PASSWORD DB [SQL]
        connect with libpq (psycopg); print "ok <first value>" or "<SQLSTATE> <message>"
  trace HOST PORT USER PASSWORD DB
        log in (trust, cleartext, md5 or SCRAM-SHA-256, an empty password sent as is) and
        print the authentication requests seen, then what connect prints:
        "auth 10 11 -> 28P01 password authentication failed for user ..."
  hold HOST PORT USER PASSWORD DB N
        hold N connections open, then print what connection N+1 gets (as connect does)
  raw HOST PORT USER PASSWORD DB CASE
        send one hostile input and print "<SQLSTATE> <message>" of the error warmpool
        answers with (or "closed" / "no error"). CASE is one of:
          hugelen     startup packet length 0xFFFFFFFF
          negauth     password message length 0x7FFFFFFF while authenticating
          bigauth     password message of 9000 bytes while authenticating
          params65    65 startup parameters
          longname    a parameter name of 64 bytes
          longvalue   an application_name of 4097 bytes
          longuser    a user name of 64 bytes
          scramnonce  SCRAM client-first with a 1000-byte nonce
          scramlen    SASLInitialResponse whose data length says 0xFFFFFFFF
          toolarge    after login (md5), a Query declaring max_packet_size + 1 bytes
                      (max_packet_size from the environment variable MAX_PACKET_SIZE)
"""
import base64
import hashlib
import hmac
import os
import socket
import struct
import sys

PY = "/usr/bin/python3"


def libpq_connect(host, port, user, password, db):
    import psycopg
    return psycopg.connect(host=host, port=port, user=user, password=password, dbname=db,
                           connect_timeout=10)


def cmd_connect(host, port, user, password, db, sql="SELECT 1", trace=None):
    """Raw protocol, so that a refused login shows its SQLSTATE (libpq keeps it from
    connection errors)."""
    s = socket.create_connection((host, int(port)), timeout=15)
    try:
        s.sendall(startup_packet([(b"user", user.encode()), (b"database", db.encode())]))
        err = login(s, user, password, trace)
        if err:
            return err
        s.sendall(message(b"Q", sql.encode() + b"\0"))
        value = None
        while True:
            kind, body = read_message(s)
            if kind is None:
                return "closed"
            if kind == b"E":
                return error_text(body)
            if kind == b"D" and value is None:
                n = struct.unpack("!I", body[2:6])[0]
                value = body[6:6 + n].decode()
            if kind == b"Z":
                return "ok %s" % value
    finally:
        s.close()


def cmd_hold(host, port, user, password, db, n):
    held = [libpq_connect(host, port, user, password, db) for _ in range(int(n))]
    try:
        return cmd_connect(host, port, user, password, db)
    finally:
        for c in held:
            c.close()


# ---------------------------------------------------------------- raw protocol

def startup_packet(params, version=196608):
    body = struct.pack("!I", version)
    for k, v in params:
        body += k + b"\0" + v + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def message(kind, body):
    return kind + struct.pack("!I", len(body) + 4) + body


def read_message(s):
    head = b""
    while len(head) < 5:
        chunk = s.recv(5 - len(head))
        if not chunk:
            return None, None
        head += chunk
    kind, length = head[:1], struct.unpack("!I", head[1:5])[0]
    body = b""
    while len(body) < length - 4:
        chunk = s.recv(length - 4 - len(body))
        if not chunk:
            return None, None
        body += chunk
    return kind, body


def error_text(body):
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[part[:1]] = part[1:].decode("utf-8", "replace")
    return "%s %s" % (fields.get(b"C", "none"), fields.get(b"M", ""))


def until_error(s):
    """Read until an ErrorResponse (its text), EOF ("closed") or ReadyForQuery."""
    while True:
        try:
            kind, body = read_message(s)
        except (ConnectionResetError, socket.timeout):
            return "closed"
        if kind is None:
            return "closed"
        if kind == b"E":
            return error_text(body)
        if kind == b"Z":
            return "no error"


def expect_auth_request(s):
    kind, body = read_message(s)
    if kind != b"R":
        raise SystemExit("expected an authentication request, got %r %r" % (kind, body))
    return struct.unpack("!I", body[:4])[0], body[4:]


class Scram:
    """Client side of SCRAM-SHA-256 without channel binding; any password, even ""."""

    def __init__(self, password):
        self.password = password.encode()
        self.bare = "n=,r=" + base64.b64encode(os.urandom(18)).decode()

    def first(self):
        data = ("n,," + self.bare).encode()
        return b"SCRAM-SHA-256\0" + struct.pack("!I", len(data)) + data

    def final(self, server_first):
        fields = dict(f.split("=", 1) for f in server_first.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(fields["s"]),
                                     int(fields["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        without_proof = "c=biws,r=" + fields["r"]
        signed = ",".join((self.bare, server_first, without_proof)).encode()
        signature = hmac.new(hashlib.sha256(client_key).digest(), signed, hashlib.sha256).digest()
        proof = bytes(k ^ g for k, g in zip(client_key, signature))
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()


def login(s, user, password, trace=None):
    """trust, cleartext, md5 or SCRAM up to ReadyForQuery: None, or the error text.
    The authentication request codes seen are appended to trace."""
    scram = None
    while True:
        kind, body = read_message(s)
        if kind is None:
            return "closed"
        if kind == b"E":
            return error_text(body)
        if kind == b"Z":
            return None
        if kind != b"R":
            continue
        code = struct.unpack("!I", body[:4])[0]
        if trace is not None:
            trace.append(code)
        if code == 10:
            scram = Scram(password)
            s.sendall(message(b"p", scram.first()))
        elif code == 11:
            s.sendall(message(b"p", scram.final(body[4:].decode())))
        elif code == 12:
            pass  # the server's signature; not checked here
        elif code == 3:
            s.sendall(message(b"p", password.encode() + b"\0"))
        elif code == 5:
            inner = hashlib.md5(password.encode() + user.encode()).hexdigest()
            outer = "md5" + hashlib.md5(inner.encode() + body[4:8]).hexdigest()
            s.sendall(message(b"p", outer.encode() + b"\0"))
        elif code != 0:
            return "unsupported authentication request %d" % code


def md5_login(s, user, password):
    err = login(s, user, password)
    if err:
        raise SystemExit("login failed: %s" % err)


def raw_case(case, user, password, db):
    """(bytes to send first, follow-up function or None)"""
    base = [(b"user", user.encode()), (b"database", db.encode())]
    if case == "hugelen":
        return struct.pack("!I", 0xFFFFFFFF) + struct.pack("!I", 196608) + b"x" * 64, None
    if case == "params65":
        return startup_packet(base + [(b"p%d" % i, b"v") for i in range(63)]), None
    if case == "longname":
        return startup_packet(base + [(b"n" * 64, b"v")]), None
    if case == "longvalue":
        return startup_packet(base + [(b"application_name", b"v" * 4097)]), None
    if case == "longuser":
        return startup_packet([(b"user", b"u" * 64), (b"database", db.encode())]), None
    if case == "negauth":
        return startup_packet(base), lambda s: (expect_auth_request(s),
                                                s.sendall(b"p" + struct.pack("!I", 0x7FFFFFFF)))
    if case == "bigauth":
        return startup_packet(base), lambda s: (expect_auth_request(s),
                                                s.sendall(message(b"p", b"x" * 9000 + b"\0")))
    if case == "scramnonce":
        def scram_nonce(s):
            expect_auth_request(s)
            first = b"n,,n=,r=" + b"N" * 1000
            s.sendall(message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
        return startup_packet(base), scram_nonce
    if case == "scramlen":
        def scram_len(s):
            expect_auth_request(s)
            s.sendall(message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", 0xFFFFFFFF) + b"n,,"))
        return startup_packet(base), scram_len
    if case == "toolarge":
        limit = int(os.environ["MAX_PACKET_SIZE"])

        def too_large(s):
            md5_login(s, user, password)
            s.sendall(b"Q" + struct.pack("!I", limit + 1) + b"SELECT 1")
        return startup_packet(base), too_large
    raise SystemExit("unknown case %s" % case)


def cmd_raw(host, port, user, password, db, case):
    first, then = raw_case(case, user, password, db)
    s = socket.create_connection((host, int(port)), timeout=15)
    try:
        s.sendall(first)
        if then:
            then(s)
        return until_error(s)
    finally:
        s.close()


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "connect":
        print(cmd_connect(*args))
    elif cmd == "trace":
        seen = []
        outcome = cmd_connect(*args, trace=seen)
        print("auth %s -> %s" % (" ".join(str(code) for code in seen), outcome))
    elif cmd == "hold":
        print(cmd_hold(*args))
    elif cmd == "raw":
        print(cmd_raw(*args))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
