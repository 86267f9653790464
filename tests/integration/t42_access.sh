#!/bin/bash
# t42_access — issue 5: auth_hba_file, admin console rights, max_client_conn, and hostile
# input from unauthenticated and authenticated clients. A private warmpool
# (lib_private_warmpool.sh) with an hba file:
#   unix socket: trust; console: admin and monitor by md5; wptest: md5 (a SCRAM rule for
#   user scramuser first); wpload: reject; dead: no rule at all. (cert rules need TLS:
#   t52_tls_hba.sh.)
# Checks: each rule's effect and SQLSTATE 28000 with PostgreSQL's wording; a broken hba
# file on SIGHUP keeps the previous rules, a good one applies; a stats user gets 42501
# for every admin command; client N+1 over max_client_conn gets 53300; oversized or
# overflowing lengths, too many / too long startup parameters and overlong SCRAM fields
# get a clean FATAL (08P01 / 54000) and warmpool keeps serving.
set -eu
here_t42=$(cd "$(dirname "$0")" && pwd)
hba_dir=$(mktemp -d /tmp/warmpool-t42.XXXXXX)
HBA=$hba_dir/hba.conf
write_hba() { # WPLOAD_METHOD
    cat >"$HBA" <<HBA
# t42 rules
local   all                 all                      trust
host    warmpool,pgbouncer  admin,monitor  127.0.0.1/32  md5
host    wptest              scramuser      127.0.0.1/32  scram-sha-256
host    wptest              all            127.0.0.1/32  md5
host    wpload              all            127.0.0.1/32  $1
host    dead                all            10.0.0.0/8    trust
HBA
}
write_hba reject
export MAX_PACKET_SIZE=65536
PW_EXTRA="auth_hba_file = $HBA
max_packet_size = 64kB"
. "$here_t42/lib_private_warmpool.sh"
pw_start
trap 'pw_stop; rm -rf "$hba_dir"' EXIT
AC="$PY $here_t42/access_client.py"

connect() { $AC connect 127.0.0.1 "$PW_PORT" "$@"; }
expect() { # WANT_PREFIX DESCRIPTION GOT
    case $3 in "$1"*) ;; *) fail "$2: got '$3', want '$1…'" ;; esac
}

# ---------------------------------------------------------------- hba rules
out=$(psql -X -At -h "$PW_DIR" -p "$PW_PORT" -U "$WP_USER" -d wptest -c "SELECT 'trusted'" 2>&1) ||
    fail "local trust rule: $out"
[ "$out" = trusted ] || fail "local trust rule: $out"
ok "unix socket: 'local all all trust' lets $WP_USER in without a password"

expect "ok 1" "wptest md5" "$(connect "$WP_USER" "$WP_PASSWORD" wptest)"
expect "28P01" "wptest wrong password" "$(connect "$WP_USER" nope wptest)"
expect "28000 hba rejects connection for host \"127.0.0.1\", user \"$WP_USER\", database \"wpload\"" \
    "reject rule" "$(connect "$WP_USER" "$WP_PASSWORD" wpload)"
expect "28000 no hba entry for host \"127.0.0.1\", user \"$WP_USER\", database \"dead\"" \
    "no matching rule" "$(connect "$WP_USER" "$WP_PASSWORD" dead)"
expect "28000 no hba entry for host \"127.0.0.1\", user \"$WP_USER\", database \"warmpool\"" \
    "plain user, console over TCP" "$(connect "$WP_USER" "$WP_PASSWORD" warmpool)"
ok "TCP: md5 rule, reject rule, no rule each answered as configured (28000 / 28P01)"

# ---------------------------------------------------------------- admin console rights
pw_admin -c "SHOW VERSION" | grep -q "^warmpool " || fail "admin over TCP with the md5 rule"
pw_psql monitor monpass warmpool -c "SHOW POOLS" >/dev/null || fail "stats user SHOW"
for cmd in "RELOAD" "PAUSE" "PAUSE wptest" "RESUME" "RESUME wptest" "KILL wptest" "SHUTDOWN"; do
    out=$(pw_psql monitor monpass warmpool -v VERBOSITY=verbose -c "$cmd" 2>&1) &&
        fail "stats user could run $cmd"
    echo "$out" | grep -q "42501" || fail "stats user $cmd: want 42501, got: $out"
done
out=$(psql -X -At -v VERBOSITY=verbose -h "$PW_DIR" -p "$PW_PORT" -U "$WP_USER" -d warmpool \
    -c "SHOW POOLS" 2>&1) && fail "plain user reached the console through the local trust rule"
echo "$out" | grep -q "not allowed to use the admin console" || fail "plain user console: $out"
kill -0 "$PW_PID" || fail "warmpool went away (SHUTDOWN by a stats user?)"
ok "stats user: SHOW yes, 42501 for RELOAD/PAUSE/RESUME/KILL/SHUTDOWN; plain users never reach the console"

# ---------------------------------------------------------------- hba reload
reload() {
    local before
    before=$(grep -c "configuration reloaded" "$PW_LOG" || true)
    kill -HUP "$PW_PID"
    for _ in $(seq 100); do
        [ "$(grep -c "configuration reloaded" "$PW_LOG" || true)" -gt "$before" ] && return 0
        sleep 0.1
    done
    fail "no 'configuration reloaded' within 10 s of SIGHUP"
}
cp "$HBA" "$hba_dir/good"
printf 'host all all 10.0.0.0/33 trust\nhost all all all md5 extra\n' >"$HBA"
reload
grep -q "$HBA:1: CIDR prefix length too large" "$PW_LOG" || fail "broken hba: no file:line error in the log"
grep -q "$HBA:2: too many fields" "$PW_LOG" || fail "broken hba: second error not listed"
grep -q "keeping the previous rules" "$PW_LOG" || fail "broken hba: no 'keeping the previous rules'"
expect "ok 1" "wptest after a broken reload" "$(connect "$WP_USER" "$WP_PASSWORD" wptest)"
expect "28000 hba rejects" "wpload after a broken reload" "$(connect "$WP_USER" "$WP_PASSWORD" wpload)"
ok "SIGHUP with a broken hba file: errors logged with file:line, previous rules kept"
write_hba md5
reload
expect "ok 1" "wpload after the rule became md5" "$(connect "$WP_USER" "$WP_PASSWORD" wpload)"
ok "SIGHUP with a good hba file: wpload (reject → md5) now lets clients in"

# ---------------------------------------------------------------- hostile input
raw() { $AC raw 127.0.0.1 "$PW_PORT" "$@"; }
expect "08P01 invalid length of startup packet" "length 0xFFFFFFFF" "$(raw "$WP_USER" x wptest hugelen)"
expect "08P01 invalid startup packet: more than 64" "65 parameters" "$(raw "$WP_USER" x wptest params65)"
expect "54000 startup parameter name too long" "64-byte name" "$(raw "$WP_USER" x wptest longname)"
expect "54000 value of startup parameter \"application_name\" too long" "4097-byte value" \
    "$(raw "$WP_USER" x wptest longvalue)"
expect "54000 user name too long" "64-byte user" "$(raw "$WP_USER" x wptest longuser)"
expect "08P01 invalid message length during authentication" "password length 0x7FFFFFFF" \
    "$(raw "$WP_USER" x wptest negauth)"
expect "08P01 invalid message length during authentication" "9000-byte password" \
    "$(raw "$WP_USER" x wptest bigauth)"
expect "08P01 malformed SCRAM message" "1000-byte SCRAM nonce" "$(raw scramuser x wptest scramnonce)"
expect "08P01 malformed SASLInitialResponse" "SASL length 0xFFFFFFFF" "$(raw scramuser x wptest scramlen)"
expect "08P01 message too large" "Query over max_packet_size" "$(raw "$WP_USER" "$WP_PASSWORD" wptest toolarge)"
kill -0 "$PW_PID" || fail "warmpool died on hostile input"
expect "ok 1" "a client after the hostile ones" "$(connect "$WP_USER" "$WP_PASSWORD" wptest)"
ok "hostile lengths, parameters and SCRAM fields: clean FATAL 08P01/54000 each, warmpool keeps serving"

# ---------------------------------------------------------------- max_client_conn
sed -i 's/^max_client_conn = .*/max_client_conn = 3/' "$PW_INI"
reload
got=$($AC hold 127.0.0.1 "$PW_PORT" "$WP_USER" "$WP_PASSWORD" wptest 3)
expect "53300 no more connections allowed (max_client_conn)" "client 4 of max_client_conn = 3" "$got"
expect "ok 1" "a client once the others left" "$(connect "$WP_USER" "$WP_PASSWORD" wptest)"
ok "max_client_conn = 3: the 4th client gets 53300, and a place frees when one leaves"
