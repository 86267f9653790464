#!/bin/sh
# gen-config.sh — write the packaged /etc/warmpool files from the repo's examples.
#
#   packaging/gen-config.sh OUTDIR     writes OUTDIR/warmpool.ini and OUTDIR/userlist.txt
#
# warmpool.ini is conf/warmpool.ini (every key, commented) with the values a system
# install needs: unix socket in systemd's RuntimeDirectory, the auth file under
# /etc/warmpool, logging to the journal. Each replaced key must exist exactly once
# in the example, so a renamed key fails the package build instead of shipping the
# development value. userlist.txt keeps the format description and drops the example
# users: their passwords are public, and a packaged file must not let anyone in.
set -eu

cd "$(dirname "$0")/.."
out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"

# key value: replace "key = ..." in the [warmpool] section.
set_key() {
    n=$(grep -c "^$1 =\( \|$\)" "$out/warmpool.ini.tmp" || true)
    if [ "$n" != 1 ]; then
        echo "gen-config.sh: conf/warmpool.ini has $n lines for key $1, expected 1" >&2
        exit 1
    fi
    sed -i "s|^$1 =\( .*\)\?$|$1 = $2|" "$out/warmpool.ini.tmp"
}

{
    echo "; /etc/warmpool/warmpool.ini — warmpool configuration (Debian package)."
    echo ";"
    echo "; Edit, then check with: warmpool --check -c /etc/warmpool/warmpool.ini"
    echo "; apply with: systemctl reload warmpool (listen_* and unix_socket_dir need a"
    echo "; restart). Reference: man 5 warmpool.ini, /usr/share/doc/warmpool/."
    echo ";"
    cat conf/warmpool.ini
} >"$out/warmpool.ini.tmp"
set_key unix_socket_dir /run/warmpool
set_key auth_file /etc/warmpool/userlist.txt
set_key logfile ''
set_key pidfile ''
set_key log_format text
# The stats endpoint, once conf/warmpool.ini lists it, next to the client socket.
if grep -q '^stats_socket =' "$out/warmpool.ini.tmp"; then
    set_key stats_socket /run/warmpool/stats.sock
fi
sed -i 's/ = $/ =/' "$out/warmpool.ini.tmp"
mv "$out/warmpool.ini.tmp" "$out/warmpool.ini"

# Comment lines and blank lines only; the "examples below" note goes with the examples.
grep -E '^[[:space:]]*([;#]|$)' conf/userlist.txt |
    grep -v -e 'The entries below are examples' -e '^; plaintext password' \
        -e '^; md5 of password' -e '^; SCRAM-SHA-256 of password' -e '^# a user name with' |
    cat -s >"$out/userlist.txt"
printf '%s\n' '; Add one line per user, for example:' '; "appuser" "SCRAM-SHA-256$4096:..."' \
    >>"$out/userlist.txt"
