#!/usr/bin/python3
"""t76_peering.py - raw protocol helpers for t76_peering.sh (libpq hides the cancel key).

  sleep HOST PORT USER DB SECONDS KEYFILE
      log in (trust, cleartext or md5 with $PGPASSWORD), write "pid key" of the
      BackendKeyData to KEYFILE, run SELECT pg_sleep(SECONDS) and print
      "ok <elapsed>" or "error <SQLSTATE> <elapsed>"
  cancel HOST PORT PID KEY
      send a CancelRequest, wait (10 s at most) for the other end to close; print "closed"
  raw HOST PORT HEX
      send these bytes as they are (a malformed request), wait for the close; print "closed"
"""
import hashlib
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tls_probe import error_field, read_message as read_msg, startup_packet  # noqa: E402


def error_code(body):
    return error_field(body, b"C") or "?"


def login(sock, user, db):
    sock.sendall(startup_packet(user, db))
    pid = key = None
    while True:
        kind, body = read_msg(sock)
        if kind == b"R":
            code = struct.unpack("!I", body[:4])[0]
            password = os.environ.get("PGPASSWORD", "").encode()
            if code == 3:
                reply = password + b"\0"
            elif code == 5:
                inner = hashlib.md5(password + user.encode()).hexdigest().encode()
                reply = b"md5" + hashlib.md5(inner + body[4:8]).hexdigest().encode() + b"\0"
            elif code == 0:
                continue
            else:
                raise SystemExit("unsupported authentication request %d" % code)
            sock.sendall(b"p" + struct.pack("!I", 4 + len(reply)) + reply)
        elif kind == b"K":
            pid, key = struct.unpack("!II", body[:8])
        elif kind == b"E":
            raise SystemExit("login failed: " + error_code(body))
        elif kind == b"Z":
            return pid, key


def cmd_sleep(host, port, user, db, seconds, keyfile):
    sock = socket.create_connection((host, int(port)), 10)
    sock.settimeout(120)
    pid, key = login(sock, user, db)
    with open(keyfile + ".tmp", "w") as f:
        f.write("%d %d\n" % (pid, key))
    os.rename(keyfile + ".tmp", keyfile)
    query = ("SELECT pg_sleep(%s)" % seconds).encode() + b"\0"
    start = time.monotonic()
    sock.sendall(b"Q" + struct.pack("!I", 4 + len(query)) + query)
    result = "ok"
    while True:
        kind, body = read_msg(sock)
        if kind == b"E":
            result = "error " + error_code(body)
        elif kind == b"Z":
            break
    print("%s %.2f" % (result, time.monotonic() - start))


def wait_close(sock):
    sock.settimeout(10)
    try:
        while sock.recv(64):
            pass
    except ConnectionResetError:
        pass
    print("closed")


def cmd_cancel(host, port, pid, key):
    sock = socket.create_connection((host, int(port)), 10)
    sock.sendall(struct.pack("!IIII", 16, 80877102, int(pid), int(key)))
    wait_close(sock)


def cmd_raw(host, port, hexbytes):
    sock = socket.create_connection((host, int(port)), 10)
    sock.sendall(bytes.fromhex(hexbytes))
    sock.shutdown(socket.SHUT_WR)
    wait_close(sock)


if __name__ == "__main__":
    commands = {"sleep": cmd_sleep, "cancel": cmd_cancel, "raw": cmd_raw}
    commands[sys.argv[1]](*sys.argv[2:])
