"""t64_console_exporter: the queries of the Prometheus community pgbouncer_exporter
(SHOW STATS_TOTALS, LISTS, POOLS, DATABASES, CONFIG, VERSION) on warmpool's console,
checked for the columns the exporter reads and, where warmpool sends PgBouncer 1.25's
types, those type OIDs. Also every other SHOW that 1.25 has and warmpool added.

Usage: t64_console_exporter.py HOST PORT USER PASSWORD
"""
import sys

import psycopg

TEXT, INT4, INT8, NUMERIC, BYTEA = 25, 23, 20, 1700, 17

N_STATS = ["server_assignment_count", "xact_count", "query_count", "bytes_received",
           "bytes_sent", "xact_time", "query_time", "wait_time"]
EXPECT = {
    # 1.25's columns and types, exactly (warmpool sends these typed).
    "STATS_TOTALS": [("database", TEXT)] + [(c, NUMERIC) for c in N_STATS +
                     ["client_parse_count", "server_parse_count", "bind_count"]],
    "STATS_AVERAGES": [("database", TEXT)] + [(c, NUMERIC) for c in N_STATS +
                       ["avg_client_parse_count", "avg_server_parse_count", "avg_bind_count"]],
    "LISTS": [("list", TEXT), ("items", INT4)],
    "TOTALS": [("name", TEXT), ("value", NUMERIC)],
    "USERS": [("name", TEXT), ("pool_size", TEXT), ("reserve_pool_size", TEXT),
              ("pool_mode", TEXT), ("max_user_connections", INT4),
              ("current_connections", INT4), ("max_user_client_connections", INT4),
              ("current_client_connections", INT4)],
    "MEM": [("name", TEXT), ("size", INT4), ("used", INT4), ("free", INT4),
            ("memtotal", INT4)],
    "STATE": [("key", TEXT), ("value", TEXT)],
    "PEERS": [("peer_id", INT4), ("host", TEXT), ("port", INT4), ("pool_size", INT4)],
    "PEER_POOLS": [("peer_id", INT4), ("cl_active_cancel_req", INT4),
                   ("cl_waiting_cancel_req", INT4), ("sv_active_cancel", INT4),
                   ("sv_login", INT4)],
    "DNS_HOSTS": [("hostname", TEXT), ("ttl", INT8), ("addrs", TEXT)],
    "DNS_ZONES": [("zonename", TEXT), ("serial", INT8), ("count", INT4)],
    "FDS": [("fd", INT4), ("task", TEXT), ("user", TEXT), ("database", TEXT),
            ("addr", TEXT), ("port", INT4), ("cancel", INT8), ("link", INT4),
            ("client_encoding", TEXT), ("std_strings", TEXT), ("datestyle", TEXT),
            ("timezone", TEXT), ("password", TEXT), ("scram_client_key", BYTEA),
            ("scram_server_key", BYTEA)],
}
SOCKET_COLS = [(c, TEXT if c in ("type", "user", "database", "replication", "state", "addr",
                                  "local_addr", "connect_time", "request_time", "ptr",
                                  "link", "tls", "application_name") else INT4)
               for c in ["type", "user", "database", "replication", "state", "addr", "port",
                         "local_addr", "local_port", "connect_time", "request_time", "wait",
                         "wait_us", "close_needed", "ptr", "link", "remote_pid", "tls",
                         "application_name", "prepared_statements", "id", "recv_pos",
                         "pkt_pos", "pkt_remain", "send_pos", "send_remain", "pkt_avail",
                         "send_avail"]]
EXPECT["SOCKETS"] = SOCKET_COLS
EXPECT["ACTIVE_SOCKETS"] = SOCKET_COLS

# Columns the exporter reads, by name (the first ones in 1.25's order).
PREFIX = {
    "POOLS": ["database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req",
              "cl_waiting_cancel_req", "sv_active", "sv_active_cancel", "sv_being_canceled",
              "sv_idle", "sv_used", "sv_tested", "sv_login", "maxwait", "maxwait_us",
              "pool_mode"],
    "DATABASES": ["name", "host", "port", "database", "force_user", "pool_size",
                  "min_pool_size"],
    "CONFIG": ["key", "value", "default", "changeable"],
    "VERSION": ["version"],
}
# 1.25's types of the columns warmpool shares with it in the older commands (warmpool
# lacks some of 1.25's columns there, so compared by name, not by position).
POOLS_TEXT = {"database", "user", "pool_mode", "load_balance_hosts"}
DATABASES_TEXT = {"name", "host", "database", "force_user", "pool_mode", "load_balance_hosts"}
CONN_TEXT = {"type", "user", "database", "replication", "state", "addr", "local_addr",
             "connect_time", "request_time", "ptr", "link", "tls", "application_name"}
SHARED_TYPES = {  # command: (text columns, type of every other column)
    "POOLS": (POOLS_TEXT, INT4),
    "DATABASES": (DATABASES_TEXT, INT4),
    "CLIENTS": (CONN_TEXT, INT4),
    "SERVERS": (CONN_TEXT, INT4),
    "STATS": ({"database"}, NUMERIC),
}
# Present in DATABASES whatever their place (the exporter maps them by name).
DATABASES_READ = ["pool_mode", "max_connections", "current_connections", "paused",
                  "disabled"]


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def show(conn, what):
    with conn.cursor() as cur:
        cur.execute("SHOW " + what + ";")
        cols = [(d.name, d.type_code) for d in cur.description]
        return cols, cur.fetchall()


def check_typed(conn):
    for what, want in EXPECT.items():
        cols, rows = show(conn, what)
        if cols != want:
            fail("SHOW %s: columns %s, want %s" % (what, cols, want))
        for row in rows:
            for (name, oid), v in zip(cols, row):
                if oid in (INT4, INT8, NUMERIC) and v is not None and not isinstance(v, (int,)) \
                        and not hasattr(v, "as_integer_ratio"):
                    fail("SHOW %s: %s = %r is not a number" % (what, name, v))
    print("ok: SHOW %s: 1.25's columns and type OIDs" % ", ".join(EXPECT))


def check_exporter(conn):
    for what, want in PREFIX.items():
        cols, rows = show(conn, what)
        names = [c[0] for c in cols]
        if names[:len(want)] != want:
            fail("SHOW %s: columns %s, want first %s" % (what, names, want))
        if not rows:
            fail("SHOW %s: no rows" % what)
    names = [c[0] for c in show(conn, "DATABASES")[0]]
    missing = [c for c in DATABASES_READ if c not in names]
    if missing:
        fail("SHOW DATABASES lacks %s" % missing)
    print("ok: SHOW POOLS, DATABASES, CONFIG, VERSION: the columns the exporter reads")


def check_shared_types(conn):
    for what, (text, other) in SHARED_TYPES.items():
        cols, rows = show(conn, what)  # fetching parses every value by its type
        for name, oid in cols:
            want = TEXT if name in text else other
            if oid != want:
                fail("SHOW %s: %s has type %d, 1.25 sends %d" % (what, name, oid, want))
        if what != "SERVERS" and not rows:
            fail("SHOW %s: no rows" % what)
    print("ok: SHOW POOLS, DATABASES, CLIENTS, SERVERS, STATS: 1.25's types (int4/numeric/text)")


def check_values(conn):
    lists = dict(show(conn, "LISTS")[1])
    for name in ["databases", "users", "pools", "free_clients", "used_clients",
                 "login_clients", "free_servers", "used_servers", "dns_names",
                 "dns_zones", "dns_queries", "dns_pending"]:
        if name not in lists:
            fail("SHOW LISTS lacks %s" % name)
    if lists["used_clients"] < 1 or lists["pools"] < 1 or lists["used_servers"] < 1:
        fail("SHOW LISTS counts: %s" % lists)
    totals = {r[0]: r for r in show(conn, "STATS_TOTALS")[1]}
    if "wptest" not in totals or totals["wptest"][3] < 1 or totals["wptest"][1] < 1:
        fail("SHOW STATS_TOTALS: no queries or assignments counted for wptest: %s" % totals)
    t = dict(show(conn, "TOTALS")[1])
    if t.get("total_query_count", 0) < totals["wptest"][3]:
        fail("SHOW TOTALS total_query_count %s" % t.get("total_query_count"))
    state = dict(show(conn, "STATE")[1])
    if state != {"active": "yes", "paused": "no", "suspended": "no"}:
        fail("SHOW STATE: %s" % state)
    socks = show(conn, "SOCKETS")[1]
    if not any(r[0] == "C" and r[1] == "admin" for r in socks) or \
            not any(r[0] == "S" for r in socks):
        fail("SHOW SOCKETS lacks the console client or a server: %s" % socks)
    # The console's own Query is in its input buffer while SHOW ACTIVE_SOCKETS runs.
    if not any(r[0] == "C" and r[1] == "admin" for r in show(conn, "ACTIVE_SOCKETS")[1]):
        fail("SHOW ACTIVE_SOCKETS lacks the console client")
    if show(conn, "DNS_HOSTS")[1] or show(conn, "FDS")[1]:
        fail("SHOW DNS_HOSTS/FDS: rows where warmpool has no such thing")
    print("ok: LISTS, STATS_TOTALS, TOTALS, STATE, SOCKETS values follow warmpool's counters")


def main():
    host, port, user, password = sys.argv[1:5]
    with psycopg.connect(host=host, port=port, user=user, password=password,
                         dbname="pgbouncer", autocommit=True) as conn:
        # The exporter's session: simple protocol only (the console refuses extended).
        conn.prepare_threshold = None
        check_exporter(conn)
        check_typed(conn)
        check_shared_types(conn)
        check_values(conn)


if __name__ == "__main__":
    main()
