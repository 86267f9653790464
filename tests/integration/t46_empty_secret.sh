#!/bin/bash
# t46_empty_secret — an auth_file entry with an empty secret ("") logs nobody in, by any
# password method, and says so exactly as a wrong password does. A private warmpool
# (t30_lib.sh) whose auth_hba_file picks the method by database: viascram
# (scram-sha-256), viamd5 (md5), viaplain (password); all three lead to wptest.
# A raw client (access_client.py trace) logs in as "wpempty" (secret "") with the empty
# password and with another one, and as an unknown user, and prints the authentication
# requests it saw and the outcome. Each must be the full exchange of its method, then
# FATAL 28P01 "password authentication failed for user …" (for SCRAM: SASL, SASLContinue,
# then the error, never SASLFinal or AuthenticationOk). The log names the reason.
# A right password over each method logs in, so the client itself is sound.
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct
AC="/usr/bin/python3 $(dirname "$0")/access_client.py"
hba=$t3_tmp/hba.conf
cat >"$hba" <<HBA
host viascram all 127.0.0.1/32 scram-sha-256
host viamd5   all 127.0.0.1/32 md5
host viaplain all 127.0.0.1/32 password
HBA
dbs="viascram = host=127.0.0.1 port=$PG_PORT dbname=wptest
viamd5 = host=127.0.0.1 port=$PG_PORT dbname=wptest
viaplain = host=127.0.0.1 port=$PG_PORT dbname=wptest"
t3_start "auth_hba_file = $hba" "$dbs"
# t3_start wrote the auth file with the test user only; add the empty secret and reload.
printf '"wpempty" ""\n' >>"$t3_tmp/users.txt"
t3_reload "auth_hba_file = $hba" "$dbs"

trace() { $AC trace 127.0.0.1 "$t3_port" "$@"; }
expect() { # DESCRIPTION WANT GOT
    [ "$3" = "$2" ] || t3_fail "$1: got '$3', want '$2'"
}
refused() { echo "auth $1 -> 28P01 password authentication failed for user \"$2\""; }

expect "right password over SCRAM" "auth 10 11 12 0 -> ok 1" "$(trace "$WP_USER" "$WP_PASSWORD" viascram)"
expect "right password over md5" "auth 5 0 -> ok 1" "$(trace "$WP_USER" "$WP_PASSWORD" viamd5)"
expect "right password in clear" "auth 3 0 -> ok 1" "$(trace "$WP_USER" "$WP_PASSWORD" viaplain)"
t3_ok "the raw client logs in over SCRAM, md5 and cleartext with the right password"

expect "empty secret, empty password, SCRAM" "$(refused "10 11" wpempty)" "$(trace wpempty "" viascram)"
expect "empty secret, empty password, md5" "$(refused 5 wpempty)" "$(trace wpempty "" viamd5)"
expect "empty secret, empty password, cleartext" "$(refused 3 wpempty)" "$(trace wpempty "" viaplain)"
t3_ok "empty secret + empty password: 28P01 after the full exchange over SCRAM, md5 and cleartext"

expect "empty secret, other password, SCRAM" "$(refused "10 11" wpempty)" "$(trace wpempty guess viascram)"
expect "unknown user, empty password, SCRAM" "$(refused "10 11" t46_nobody)" "$(trace t46_nobody "" viascram)"
expect "wrong password, SCRAM" "$(refused "10 11" "$WP_USER")" "$(trace "$WP_USER" guess viascram)"
t3_ok "an empty secret is refused exactly like an unknown user or a wrong password"

grep -q 'viascram/wpempty@127.0.0.1:[0-9]*: password authentication failed (empty secret in auth_file)' \
    "$t3_log" || t3_fail "the log does not say why wpempty was refused"
grep -q 'viascram/t46_nobody@127.0.0.1:[0-9]*: password authentication failed (user not in auth_file)' \
    "$t3_log" || t3_fail "the log does not say why t46_nobody was refused"
t3_ok "the log gives the reason (empty secret / user not in auth_file) the client is not told"
t3_stop
