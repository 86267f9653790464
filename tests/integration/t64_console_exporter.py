"""t64_console_exporter: every SHOW of PgBouncer 1.25 on warmpool's console answers
with 1.25's column names, order and type OIDs first (what the Prometheus community
pgbouncer_exporter and other tools read), warmpool's own columns after them; and
values that follow warmpool's state: the console's row in SHOW POOLS and DATABASES,
the test's own client id in SHOW CLIENTS, Parse/Bind counts in SHOW STATS.

Usage: t64_console_exporter.py HOST PORT USER PASSWORD (console user); WP_USER and
WP_PASSWORD in the environment log in to database wptest, PW_DIR is the Unix socket's
directory.
"""
import os
import sys

import psycopg

TEXT, INT4, INT8, NUMERIC, BYTEA = 25, 23, 20, 1700, 17


def typed(oid, names):
    return [(n, oid) for n in names.split()]


# Every SHOW of PgBouncer 1.25: its columns, in order, with the type OIDs of its
# RowDescription (read from a running PgBouncer 1.25.2 through psycopg 3, and
# doc/usage.md). warmpool's first len(...) columns must be exactly these; its own
# columns may follow.
STATS_N = "server_assignment_count xact_count query_count"
CONN = (typed(TEXT, "type user database replication state addr") + [("port", INT4)] +
        [("local_addr", TEXT), ("local_port", INT4)] +
        typed(TEXT, "connect_time request_time") +
        typed(INT4, "wait wait_us close_needed") + typed(TEXT, "ptr link") +
        [("remote_pid", INT4)] + typed(TEXT, "tls application_name") +
        typed(INT4, "prepared_statements id"))
SOCKETS = CONN + typed(INT4, "recv_pos pkt_pos pkt_remain send_pos send_remain pkt_avail "
                       "send_avail")
PS = "client_parse_count server_parse_count bind_count"
EXPECT = {
    "STATS": [("database", TEXT)] + typed(NUMERIC, " ".join(
        ["total_" + c for c in (STATS_N + " received sent xact_time query_time wait_time "
                                + PS).split()] +
        ["avg_" + c for c in (STATS_N + " recv sent xact_time query_time wait_time "
                              + PS).split()])),
    "STATS_TOTALS": [("database", TEXT)] + typed(NUMERIC, STATS_N + " bytes_received "
                                                 "bytes_sent xact_time query_time wait_time "
                                                 + PS),
    "STATS_AVERAGES": [("database", TEXT)] + typed(NUMERIC, STATS_N + " bytes_received "
                                                   "bytes_sent xact_time query_time wait_time "
                                                   "avg_client_parse_count "
                                                   "avg_server_parse_count avg_bind_count"),
    "TOTALS": [("name", TEXT), ("value", NUMERIC)],
    "SERVERS": CONN,
    "CLIENTS": CONN,
    "POOLS": typed(TEXT, "database user") +
             typed(INT4, "cl_active cl_waiting cl_active_cancel_req cl_waiting_cancel_req "
                   "sv_active sv_active_cancel sv_being_canceled sv_idle sv_used sv_tested "
                   "sv_login maxwait maxwait_us") + typed(TEXT, "pool_mode load_balance_hosts"),
    "PEER_POOLS": typed(INT4, "peer_id cl_active_cancel_req cl_waiting_cancel_req "
                        "sv_active_cancel sv_login"),
    "LISTS": [("list", TEXT), ("items", INT4)],
    "USERS": typed(TEXT, "name pool_size reserve_pool_size pool_mode") +
             typed(INT4, "max_user_connections current_connections "
                   "max_user_client_connections current_client_connections"),
    "DATABASES": typed(TEXT, "name host") + [("port", INT4)] +
                 typed(TEXT, "database force_user") +
                 typed(INT4, "pool_size min_pool_size reserve_pool_size server_lifetime") +
                 typed(TEXT, "pool_mode load_balance_hosts") +
                 typed(INT4, "max_connections current_connections max_client_connections "
                       "current_client_connections paused disabled"),
    "PEERS": [("peer_id", INT4), ("host", TEXT), ("port", INT4), ("pool_size", INT4)],
    "FDS": [("fd", INT4)] + typed(TEXT, "task user database addr") + [("port", INT4),
            ("cancel", INT8), ("link", INT4)] +
           typed(TEXT, "client_encoding std_strings datestyle timezone password") +
           typed(BYTEA, "scram_client_key scram_server_key"),
    "SOCKETS": SOCKETS,
    "ACTIVE_SOCKETS": SOCKETS,
    "CONFIG": typed(TEXT, "key value default changeable"),
    "MEM": [("name", TEXT)] + typed(INT4, "size used free memtotal"),
    "DNS_HOSTS": [("hostname", TEXT), ("ttl", INT8), ("addrs", TEXT)],
    "DNS_ZONES": [("zonename", TEXT), ("serial", INT8), ("count", INT4)],
    "VERSION": [("version", TEXT)],
    "STATE": [("key", TEXT), ("value", TEXT)],
}
# warmpool's own columns after 1.25's, where it has some.
EXTRA = {
    "STATS": ["total_query_errors", "query_p50_us", "query_p95_us", "query_p99_us",
              "xact_p95_us", "wait_p95_us", "wait_p99_us"],
    "POOLS": ["cl_idle", "paused", "cl_pinned", "host", "failovers", "fleet_cap",
              "fleet_backends"],
    "CONFIG": ["effect"],
}


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
        cols, rows = show(conn, what)  # fetching parses every value by its type
        if cols[:len(want)] != want:
            fail("SHOW %s: columns %s, want first %s" % (what, cols, want))
        extra = [c[0] for c in cols[len(want):]]
        if extra != EXTRA.get(what, []):
            fail("SHOW %s: warmpool's columns %s, want %s" % (what, extra,
                                                             EXTRA.get(what, [])))
        for row in rows:
            for (name, oid), v in zip(cols, row):
                if oid in (INT4, INT8, NUMERIC) and v is not None and \
                        not isinstance(v, int) and not hasattr(v, "as_integer_ratio"):
                    fail("SHOW %s: %s = %r is not a number" % (what, name, v))
    print("ok: every SHOW of 1.25 (%d): its columns and type OIDs first, in its order"
          % len(EXPECT))


def rows_by_name(conn, what):
    cols, rows = show(conn, what)
    names = [c[0] for c in cols]
    return [dict(zip(names, r)) for r in rows]


def check_console_rows(conn):
    """The console itself, as 1.25 lists it, and the test's own connection."""
    pools = [r for r in rows_by_name(conn, "POOLS")
             if (r["database"], r["user"]) == ("pgbouncer", "pgbouncer")]
    if len(pools) != 1 or pools[0]["pool_mode"] != "statement" or pools[0]["cl_active"] < 1 \
            or pools[0]["load_balance_hosts"] is not None:
        fail("SHOW POOLS: console row %s" % pools)
    dbs = {r["name"]: r for r in rows_by_name(conn, "DATABASES")}
    console = dbs.get("pgbouncer")
    if not console or console["force_user"] != "pgbouncer" or \
            console["current_client_connections"] < 1 or console["pool_mode"] != "statement":
        fail("SHOW DATABASES: console row %s" % console)
    wptest = dbs.get("wptest")
    if not wptest or wptest["disabled"] != 0 or wptest["paused"] != 0 or \
            wptest["pool_mode"] is not None or wptest["current_client_connections"] < 1 or \
            wptest["server_lifetime"] <= 0:
        fail("SHOW DATABASES: wptest row %s" % wptest)
    clients = rows_by_name(conn, "CLIENTS")
    ids = [r["id"] for r in clients]
    mine = [r for r in clients if r["application_name"] == "t64_console"]
    if len(mine) != 1 or mine[0]["id"] <= 0 or ids.count(mine[0]["id"]) != 1 or \
            mine[0]["replication"] != "none" or mine[0]["ptr"] != "C-%d" % mine[0]["id"]:
        fail("SHOW CLIENTS: the test's connection %s among ids %s" % (mine, ids))
    if mine[0]["remote_pid"] != 0:
        fail("SHOW CLIENTS: remote_pid %s of a TCP client" % mine[0]["remote_pid"])
    with psycopg.connect(host=os.environ["PW_DIR"], port=conn.info.port, user=conn.info.user,
                         password=conn.info.password, dbname="pgbouncer", autocommit=True,
                         application_name="t64_unix"):
        unix = [r for r in rows_by_name(conn, "CLIENTS") if r["application_name"] == "t64_unix"]
    if len(unix) != 1 or unix[0]["remote_pid"] != os.getpid():
        fail("SHOW CLIENTS: remote_pid of a Unix-socket client %s, want %d" % (unix,
                                                                          os.getpid()))
    servers = rows_by_name(conn, "SERVERS")
    sids = [r["id"] for r in servers]
    if not servers or min(sids) <= 0 or len(set(sids)) != len(sids):
        fail("SHOW SERVERS ids %s" % sids)
    print("ok: the console in SHOW POOLS and DATABASES; CLIENTS/SERVERS ids unique and > 0; "
          "a Unix-socket client's remote_pid")


def check_prepared_counts(conn, app):
    """Named statements through warmpool count in SHOW STATS as in 1.25."""
    for _ in range(3):
        app.execute("SELECT %s::int", [1], prepare=True)
    stats = {r["database"]: r for r in rows_by_name(conn, "STATS")}.get("wptest")
    if not stats or stats["total_client_parse_count"] < 1 or \
            stats["total_server_parse_count"] < 1 or stats["total_bind_count"] < 3 or \
            stats["total_query_count"] < 3 or stats["total_server_assignment_count"] < 1:
        fail("SHOW STATS wptest: parse/bind counts %s" % stats)
    totals = {r["database"]: r for r in rows_by_name(conn, "STATS_TOTALS")}["wptest"]
    for c in ("client_parse_count", "server_parse_count", "bind_count", "query_count"):
        if totals[c] != stats["total_" + c]:
            fail("SHOW STATS_TOTALS %s %s, SHOW STATS %s" % (c, totals[c],
                                                            stats["total_" + c]))
    print("ok: SHOW STATS counts Parse (%s client, %s server) and Bind (%s); STATS_TOTALS "
          "agrees" % (stats["total_client_parse_count"], stats["total_server_parse_count"],
                      stats["total_bind_count"]))


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
                         dbname="pgbouncer", autocommit=True,
                         application_name="t64_console") as conn, \
            psycopg.connect(host=host, port=port, user=os.environ["WP_USER"],
                            password=os.environ["WP_PASSWORD"], dbname="wptest",
                            autocommit=True) as app:
        # The exporter's session: simple protocol only (the console refuses extended).
        conn.prepare_threshold = None
        app.execute("SELECT 1")
        check_typed(conn)
        check_console_rows(conn)
        check_prepared_counts(conn, app)
        check_values(conn)


if __name__ == "__main__":
    main()
