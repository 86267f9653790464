#!/bin/sh
# logrotate-check.sh — the logrotate rule (issue 17): it parses (`logrotate -d` with a
# throwaway state file), and its postrotate script reloads every running instance,
# warmpool.service and each warmpool@NAME.service, and exits 0 whatever systemctl does.
# systemctl is a stub on PATH that plays the units listed in STUB_ACTIVE and records
# what it was asked; no systemd is needed.
#
#   tests/packaging/logrotate-check.sh [FILE]   (default packaging/logrotate/warmpool;
#                                                install-check.sh passes the installed one)
set -eu
cd "$(dirname "$0")/../.."
rule=${1:-packaging/logrotate/warmpool}
fail() { echo "FAIL $*"; exit 1; }
command -v logrotate >/dev/null || fail "logrotate not installed (apt-get install logrotate)"
tmp=$(mktemp -d /tmp/warmpool-logrotate.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

logrotate -d -s "$tmp/state" "$rule" >"$tmp/debug" 2>&1 || { cat "$tmp/debug"; fail "logrotate -d $rule"; }
grep -qi "error" "$tmp/debug" && { cat "$tmp/debug"; fail "logrotate -d $rule reports an error"; }
echo "PASS logrotate -d $rule"

# The postrotate body, as logrotate runs it: sh -c with the lines between the markers.
sed -n '/^ *postrotate$/,/^ *endscript$/p' "$rule" | sed '1d;$d' >"$tmp/postrotate"
grep -q "'warmpool@\*\.service'" "$tmp/postrotate" || fail "postrotate does not name warmpool@*.service"
mkdir "$tmp/bin"
cat >"$tmp/bin/systemctl" <<'STUB'
#!/bin/sh
echo "$*" >>"$STUB_LOG"
case $1 in
list-units) for u in $STUB_ACTIVE; do echo "$u loaded active running warmpool"; done ;;
reload) exit "${STUB_RELOAD_RC:-0}" ;;
esac
STUB
chmod +x "$tmp/bin/systemctl"

run_postrotate() { # STUB_ACTIVE [STUB_RELOAD_RC] -> the reload line, or "none"
    : >"$tmp/calls"
    PATH="$tmp/bin:$PATH" STUB_LOG="$tmp/calls" STUB_ACTIVE=$1 STUB_RELOAD_RC=${2:-0} \
        sh "$tmp/postrotate" /var/log/warmpool/warmpool.log ||
        fail "postrotate exited $? (units: '$1', reload status ${2:-0})"
    grep '^reload' "$tmp/calls" || echo none
}
got=$(run_postrotate "warmpool.service warmpool@a.service warmpool@b.service")
[ "$got" = "reload warmpool.service warmpool@a.service warmpool@b.service" ] ||
    fail "with the main unit and two slots running, postrotate ran: $got"
echo "PASS postrotate reloads warmpool.service, warmpool@a.service and warmpool@b.service"
got=$(run_postrotate "warmpool@b.service")
[ "$got" = "reload warmpool@b.service" ] || fail "with only slot b running, postrotate ran: $got"
echo "PASS postrotate reloads only the running slot when warmpool.service is stopped"
got=$(run_postrotate "")
[ "$got" = none ] || fail "with nothing running, postrotate ran: $got"
got=$(run_postrotate "warmpool.service" 1)
echo "PASS postrotate exits 0 with nothing running and when the reload fails"
mkdir "$tmp/nosystemd"
ln -s "$(command -v awk)" "$tmp/nosystemd/awk"
PATH="$tmp/nosystemd" /bin/sh "$tmp/postrotate" || fail "postrotate without systemctl exited $?"
echo "PASS postrotate exits 0 without systemctl"
