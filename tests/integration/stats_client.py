#!/usr/bin/python3
"""stats_client.py - test helper for warmpool's stats endpoint and admin console.

Plain socket code only (no curl, no third-party modules), so it runs anywhere the
integration tests run. Used by t40_admin_console.sh and t41_stats_http.sh.

  get TARGET PATH              print the status code, then the body
  raw TARGET                   send stdin as the request, print the status (or "closed")
  promcheck TARGET             strict Prometheus text-format check of /metrics
  metric TARGET NAME [k=v...]  print one sample's value from /metrics
  json TARGET PATH EXPR        print EXPR evaluated with d = the JSON body
  big TARGET BYTES             a request with a BYTES-long header: print the status
  slowloris TARGET SECONDS     send one byte a second: print when and how it ended
                               ("server" when the server closed it, "client" when
                               SECONDS passed first)
  conncap TARGET N             hold N idle connections, then print the N+1th's status
  pgwire-extended HOST PORT USER PASSWORD DB
                               admin console over raw protocol: extended query refused
                               with 0A000, simple query still works afterwards

TARGET is unix:/path/to/socket or tcp:host:port.
"""
import hashlib
import json
import math
import re
import socket
import struct
import sys
import time


def connect(target, timeout=15.0):
    if target.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(target[5:])
    elif target.startswith("tcp:"):
        host, port = target[4:].rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=timeout)
    else:
        raise SystemExit("bad target %r" % target)
    return s


def read_all(s):
    chunks = []
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


def parse_response(data):
    if not data:
        return None, {}, b""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.1 (\d{3}) ", lines[0])
    if not m:
        raise SystemExit("bad status line %r" % lines[0])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers and int(headers["content-length"]) != len(body):
        raise SystemExit("Content-Length %s but %d body bytes"
                         % (headers["content-length"], len(body)))
    return int(m.group(1)), headers, body


def request(target, raw):
    s = connect(target)
    try:
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and stopped reading; read the answer
        return parse_response(read_all(s))
    finally:
        s.close()


def get(target, path, method="GET"):
    return request(target, ("%s %s HTTP/1.1\r\nHost: test\r\n\r\n" % (method, path)).encode())


# ---------------------------------------------------------------- strict Prometheus parser

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
SAMPLE = re.compile(r"^(%s)(\{(?:%s)(?:,%s)*\})? (?P<value>\S+)$" % (NAME, LABEL, LABEL))


def parse_value(text):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.match(r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$", text):
        raise ValueError("bad value %r" % text)
    return float(text)


def parse_labels(text):
    if not text:
        return ()
    return tuple(re.findall(LABEL, text[1:-1]))


def prom_parse(text):
    """Every line a comment or `name{labels} value`; HELP then TYPE before samples;
    families not split; counters end in _total; histogram buckets increase to +Inf
    and _count equals the +Inf bucket. Returns {(name, labels): value}."""
    if not text.endswith("\n"):
        raise ValueError("no final newline")
    families = {}
    current = None
    samples = {}
    hist = {}
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d: %r" % (n, line)
        if line == "":
            raise ValueError("blank line at " + where)
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            if name in families:
                raise ValueError("family split or repeated at " + where)
            families[name] = None
            current = name
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            if name != current or families[name] is not None:
                raise ValueError("TYPE without HELP at " + where)
            if kind not in ("counter", "gauge", "histogram"):
                raise ValueError("type at " + where)
            if kind == "counter" and not name.endswith("_total"):
                raise ValueError("counter name at " + where)
            families[name] = kind
            continue
        if line.startswith("#"):
            raise ValueError("stray comment at " + where)
        m = SAMPLE.match(line)
        if not m:
            raise ValueError("not name{labels} value at " + where)
        name, labels, value = m.group(1), parse_labels(m.group(2)), parse_value(m.group("value"))
        kind = families.get(current)
        if kind is None:
            raise ValueError("sample before TYPE at " + where)
        if kind == "histogram":
            suffix = name[len(current):]
            if not name.startswith(current) or suffix not in ("_bucket", "_sum", "_count"):
                raise ValueError("histogram sample name at " + where)
            key = (current, tuple(l for l in labels if l[0] != "le"))
            h = hist.setdefault(key, {"le": -math.inf, "cum": -1, "inf": None, "count": None})
            if suffix == "_bucket":
                le = [v for k, v in labels if k == "le"]
                if len(le) != 1 or h["inf"] is not None:
                    raise ValueError("bucket at " + where)
                bound = parse_value(le[0])
                if bound <= h["le"] or value < h["cum"]:
                    raise ValueError("buckets not increasing at " + where)
                h["le"], h["cum"] = bound, value
                if math.isinf(bound):
                    h["inf"] = value
            elif suffix == "_count":
                h["count"] = value
        elif name != current:
            raise ValueError("sample outside its family at " + where)
        if kind == "counter" and value < 0:
            raise ValueError("negative counter at " + where)
        if (name, labels) in samples:
            raise ValueError("duplicate sample at " + where)
        samples[(name, labels)] = value
    for key, h in hist.items():
        if h["inf"] is None or h["count"] is None or h["count"] != h["inf"]:
            raise ValueError("histogram %r: no +Inf bucket or _count != +Inf bucket" % (key,))
    return samples


def metric(samples, name, **labels):
    want = sorted(labels.items())
    for (n, ls), v in samples.items():
        if n == name and sorted(ls) == want:
            return v
    return None


# ---------------------------------------------------------------- misbehaving clients

def big(target, size):
    raw = b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
    status, _, _ = request(target, raw)
    return status


def slowloris(target, seconds):
    s = connect(target, timeout=2)
    start = time.monotonic()
    payload = b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 1000
    got = b""
    ended_by = "client"
    for i in range(seconds):
        try:
            s.sendall(payload[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            ended_by = "server"
            break
        try:
            b = s.recv(4096)
            if not b:
                ended_by = "server"
                break
            got += b
        except socket.timeout:
            pass
        except ConnectionResetError:
            ended_by = "server"
            break
    s.close()
    return time.monotonic() - start, got, ended_by


def conncap(target, n):
    held = [connect(target) for _ in range(n)]
    time.sleep(0.3)
    try:
        extra = connect(target)
        extra.settimeout(5)
        try:
            extra.sendall(b"GET /health HTTP/1.1\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _, _ = parse_response(read_all(extra))
        extra.close()
    finally:
        for s in held:
            s.close()
    return status


# ---------------------------------------------------------------- PG wire (admin console)

def pg_message(kind, body):
    return kind + struct.pack("!I", len(body) + 4) + body


def pg_read(s):
    head = b""
    while len(head) < 5:
        b = s.recv(5 - len(head))
        if not b:
            raise SystemExit("server closed the connection")
        head += b
    kind, length = head[:1], struct.unpack("!I", head[1:])[0]
    body = b""
    while len(body) < length - 4:
        b = s.recv(length - 4 - len(body))
        if not b:
            raise SystemExit("server closed the connection")
        body += b
    return kind, body


def pg_until_ready(s):
    seen = []
    while True:
        kind, body = pg_read(s)
        seen.append((kind, body))
        if kind == b"Z":
            return seen


def error_code(body):
    for field in body.split(b"\0"):
        if field[:1] == b"C":
            return field[1:].decode()
    return None


def pgwire_extended(host, port, user, password, db):
    s = socket.create_connection((host, int(port)), timeout=10)
    params = b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0\0"
    body = struct.pack("!I", 196608) + params
    s.sendall(struct.pack("!I", len(body) + 4) + body)
    kind, body = pg_read(s)
    if kind != b"R":
        raise SystemExit("expected an authentication request, got %r" % kind)
    code = struct.unpack("!I", body[:4])[0]
    if code != 5:
        raise SystemExit("expected md5 authentication, got code %d" % code)
    inner = hashlib.md5(password.encode() + user.encode()).hexdigest()
    outer = "md5" + hashlib.md5(inner.encode() + body[4:8]).hexdigest()
    s.sendall(pg_message(b"p", outer.encode() + b"\0"))
    pg_until_ready(s)
    # Extended protocol: Parse/Bind/Describe/Execute/Sync -> one error, one ReadyForQuery.
    batch = (pg_message(b"P", b"\0SHOW POOLS\0\0\0") + pg_message(b"B", b"\0\0\0\0\0\0\0\0")
             + pg_message(b"D", b"P\0") + pg_message(b"E", b"\0\0\0\0\0")
             + pg_message(b"S", b""))
    s.sendall(batch)
    seen = pg_until_ready(s)
    kinds = b"".join(k for k, _ in seen)
    if kinds != b"EZ" or error_code(seen[0][1]) != "0A000":
        raise SystemExit("extended query: expected E(0A000) Z, got %r" % (seen,))
    s.sendall(pg_message(b"Q", b"SHOW VERSION\0"))
    seen = pg_until_ready(s)
    kinds = b"".join(k for k, _ in seen)
    if kinds != b"TDCZ" or b"warmpool" not in seen[1][1]:
        raise SystemExit("simple query after the refusal: got %r" % (seen,))
    # A function call is refused the same way.
    s.sendall(pg_message(b"F", struct.pack("!IHHH", 1, 0, 0, 0)))
    seen = pg_until_ready(s)
    if b"".join(k for k, _ in seen) != b"EZ":
        raise SystemExit("FunctionCall: got %r" % (seen,))
    s.sendall(pg_message(b"X", b""))
    s.close()
    return "extended protocol refused with 0A000; simple protocol works"


# ---------------------------------------------------------------- CLI

def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "get":
        status, _, body = get(args[0], args[1])
        sys.stdout.write("%s\n%s" % (status, body.decode("utf-8", "replace")))
    elif cmd == "raw":
        status, _, _ = request(args[0], sys.stdin.buffer.read())
        print(status if status else "closed")
    elif cmd == "promcheck":
        status, headers, body = get(args[0], "/metrics")
        if status != 200 or not headers.get("content-type", "").startswith("text/plain"):
            raise SystemExit("GET /metrics: %s %s" % (status, headers))
        samples = prom_parse(body.decode("utf-8"))
        print("%d samples" % len(samples))
    elif cmd == "metric":
        status, _, body = get(args[0], "/metrics")
        samples = prom_parse(body.decode("utf-8"))
        labels = dict(a.split("=", 1) for a in args[2:])
        v = metric(samples, args[1], **labels)
        # repr: the shortest text that reads back as the same float, never an exponent
        # for a time since the epoch (which "%g" would print as 1.7965e+09).
        print("none" if v is None else ("%d" % v if v == int(v) else repr(v)))
    elif cmd == "json":
        status, _, body = get(args[0], args[1])
        d = json.loads(body)
        print(eval(args[2], {"d": d}))
    elif cmd == "big":
        print(big(args[0], int(args[1])) or "closed")
    elif cmd == "slowloris":
        elapsed, got, ended_by = slowloris(args[0], int(args[1]))
        status = got.split(b" ")[1].decode() if got.startswith(b"HTTP/1.1 ") else "none"
        print("%.1f %s %s" % (elapsed, status, ended_by))
    elif cmd == "conncap":
        print(conncap(args[0], int(args[1])) or "closed")
    elif cmd == "pgwire-extended":
        print(pgwire_extended(*args))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
