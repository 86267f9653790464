"""tls_probe — raw PostgreSQL protocol checks for t50_tls.sh (run with /usr/bin/python3).

libpq hides what these tests need to see: the SQLSTATE of a refused startup, what a
server does with bytes stuffed after an SSLRequest, and a CancelRequest sent inside
TLS (libpq 17 does that; the libpq here does not). t76_peering.py imports its
startup_packet, read_message and error_field.

  tls_probe.py plain-startup PORT USER DB        prints the SQLSTATE of the refusal
  tls_probe.py stuffed PORT                      SSLRequest + extra bytes: prints the
                                                 first answer byte and any SQLSTATE
  tls_probe.py cancel-in-tls PORT USER PASSWORD DB CAFILE
      logs in over TLS (md5), runs pg_sleep(30), cancels it with a CancelRequest sent
      inside a second TLS connection, prints the SQLSTATE the query ended with;
      CAFILE "-" does the same without TLS
  tls_probe.py auth PORT USER DB CAFILE [CERT KEY]
      sends a startup packet (over TLS verified against CAFILE, with the client
      certificate CERT/KEY if given; CAFILE "-" for no TLS) and prints the first answer:
      "R <code> [<SASL mechanisms>]" for an authentication request (0 = logged in
      without a password), "E <SQLSTATE> <message>", or "tls-error <reason>"
  tls_probe.py slow-reader PORT USER DB BYTES WAIT
      logs in over TLS (trust, certificate not checked) with a 4 kB receive buffer, asks
      for one row of BYTES bytes, reads nothing for WAIT seconds, then reads the answer;
      prints "complete" when the row, CommandComplete and ReadyForQuery all arrived,
      else "E <SQLSTATE> <message>" or "closed after N bytes". BYTES 0 sends no query:
      it prints what the idle client is sent after WAIT seconds
"""
import hashlib
import socket
import ssl
import struct
import sys
import time

SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def startup_packet(user, db):
    body = struct.pack("!i", 196608)
    for k, v in (("user", user), ("database", db)):
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def read_message(sock):
    head = read_exact(sock, 5)
    length = struct.unpack("!i", head[1:])[0]
    return head[:1], read_exact(sock, length - 4)


def error_field(body, code):
    for part in body.split(b"\0"):
        if part[:1] == code:
            return part[1:].decode()
    return None


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=20)


def start_tls(port, cafile):
    if cafile == "-":
        return connect(port)
    sock = connect(port)
    sock.sendall(SSL_REQUEST)
    answer = read_exact(sock, 1)
    if answer != b"S":
        raise RuntimeError("SSLRequest answered %r" % answer)
    ctx = ssl.create_default_context(cafile=cafile)
    return ctx.wrap_socket(sock, server_hostname="localhost")


def plain_startup(port, user, db):
    sock = connect(port)
    sock.sendall(startup_packet(user, db))
    kind, body = read_message(sock)
    print(error_field(body, b"C") if kind == b"E" else "no error: %r" % kind)


def stuffed(port):
    sock = connect(port)
    sock.sendall(SSL_REQUEST + startup_packet("x", "y"))
    first = read_exact(sock, 1)
    if first == b"E":
        length = struct.unpack("!i", read_exact(sock, 4))[0]
        print("E", error_field(read_exact(sock, length - 4), b"C"))
    else:
        print(first.decode(errors="replace"))


def login_md5(sock, user, password, db):
    sock.sendall(startup_packet(user, db))
    key = None
    while True:
        kind, body = read_message(sock)
        if kind == b"R":
            code = struct.unpack("!i", body[:4])[0]
            if code == 5:
                inner = hashlib.md5((password + user).encode()).hexdigest()
                outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                payload = b"md5" + outer.encode() + b"\0"
                sock.sendall(b"p" + struct.pack("!i", len(payload) + 4) + payload)
            elif code != 0:
                raise RuntimeError("unsupported auth request %d" % code)
        elif kind == b"K":
            key = struct.unpack("!ii", body)
        elif kind == b"E":
            raise RuntimeError("login failed: %s" % error_field(body, b"M"))
        elif kind == b"Z":
            return key


def cancel_in_tls(port, user, password, db, cafile):
    a = start_tls(port, cafile)
    pid, secret = login_md5(a, user, password, db)
    query = b"SELECT pg_sleep(30)\0"
    a.sendall(b"Q" + struct.pack("!i", len(query) + 4) + query)
    time.sleep(1)  # let the query reach the backend; the answer is what is asserted
    b = start_tls(port, cafile)
    b.sendall(struct.pack("!iiii", 16, 80877102, pid, secret))
    try:
        b.recv(1)  # the pooler closes it once handled
    except (OSError, ssl.SSLError):
        pass
    while True:
        kind, body = read_message(a)
        if kind == b"E":
            print(error_field(body, b"C"))
            return
        if kind == b"Z":
            print("query finished without error")
            return


def first_auth_answer(port, user, db, cafile, cert=None, key=None):
    try:
        if cafile == "-":
            sock = connect(port)
        else:
            sock = connect(port)
            sock.sendall(SSL_REQUEST)
            if read_exact(sock, 1) != b"S":
                print("tls-error SSLRequest refused")
                return
            ctx = ssl.create_default_context(cafile=cafile)
            if cert:
                ctx.load_cert_chain(cert, key)
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
        sock.sendall(startup_packet(user, db))
        kind, body = read_message(sock)
    except (ssl.SSLError, EOFError, OSError) as e:
        print("tls-error", str(e).replace("\n", " ")[:120])
        return
    if kind == b"R":
        code = struct.unpack("!i", body[:4])[0]
        mechs = [m.decode() for m in body[4:].split(b"\0") if m] if code == 10 else []
        print(" ".join(["R", str(code)] + mechs))
    elif kind == b"E":
        print("E", error_field(body, b"C"), error_field(body, b"M"))
    else:
        print("unexpected %r" % kind)


def slow_reader(port, user, db, nbytes, wait):
    sock = socket.socket()
    # Set before connecting, so the window the client announces stays small: most of
    # the answer has to wait on the pooler's side.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    sock.sendall(SSL_REQUEST)
    if read_exact(sock, 1) != b"S":
        raise RuntimeError("SSLRequest refused")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = ctx.wrap_socket(sock, server_hostname="localhost")
    login_md5(tls, user, "", db)
    if nbytes > 0:
        query = ("SELECT repeat('x', %d)" % nbytes).encode() + b"\0"
        tls.sendall(b"Q" + struct.pack("!i", len(query) + 4) + query)
    time.sleep(wait)
    got, row_ok = 0, False
    try:
        while True:
            kind, body = read_message(tls)
            got += 5 + len(body)
            if kind == b"D":
                row_ok = struct.unpack("!i", body[2:6])[0] == nbytes
            elif kind == b"E":
                print("E", error_field(body, b"C"), error_field(body, b"M"))
                return
            elif kind == b"Z":
                print("complete" if row_ok else "no full row before ReadyForQuery")
                return
    except (EOFError, OSError, ssl.SSLError):
        print("closed after %d bytes" % got)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "plain-startup":
        plain_startup(int(args[0]), args[1], args[2])
    elif cmd == "stuffed":
        stuffed(int(args[0]))
    elif cmd == "cancel-in-tls":
        cancel_in_tls(int(args[0]), args[1], args[2], args[3], args[4])
    elif cmd == "auth":
        first_auth_answer(int(args[0]), args[1], args[2], args[3], *args[4:6])
    elif cmd == "slow-reader":
        slow_reader(int(args[0]), args[1], args[2], int(args[3]), float(args[4]))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
