#!/bin/bash
# t70_log_time_zone — issue 17: log timestamps carry their time zone, as PostgreSQL's
# and PgBouncer's do. A private warmpool under TZ=Asia/Tokyo writes text lines
# "YYYY-MM-DD HH:MM:SS.mmm JST pid LEVEL ..." to its log file; after a reload to
# log_format = json, lines carry "time":"YYYY-MM-DDTHH:MM:SS.mmm+09:00".
# (Asia/Tokyo has had no summer time since 1951, so the zone is the same all year.)
. "$(dirname "$0")/t30_lib.sh"
t3_skip_direct

db="wptest = host=127.0.0.1 port=$PG_PORT dbname=wptest"
TZ=Asia/Tokyo t3_start "" "$db"
stamp='[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}'
grep -Eq "^$stamp JST $t3_pid LOG .*listening on" "$t3_log" ||
    t3_fail "no text line with the zone JST: $(head -n 3 "$t3_log")"
if grep -Ev "^$stamp JST $t3_pid [A-Z]+ " "$t3_log" | grep -q .; then
    t3_fail "a text line without the zone: $(grep -Ev "^$stamp JST " "$t3_log" | head -n 1)"
fi
t3_ok "text log lines read '<date> <time>.mmm JST <pid> <LEVEL>'"

t3_reload "log_format = json" "$db"
PGPASSWORD=$WP_PASSWORD psql -X -q -At -h 127.0.0.1 -p "$t3_port" -U "$WP_USER" wptest \
    -c "SELECT 1" >/dev/null || t3_fail "query after the reload"
iso='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}'
grep -Eq "^\{\"time\":\"$iso\+09:00\",\"pid\":$t3_pid," "$t3_log" ||
    t3_fail "no JSON line with the offset +09:00: $(tail -n 2 "$t3_log")"
t3_ok "JSON log lines carry \"time\":\"<date>T<time>.mmm+09:00\""
t3_stop
