#!/bin/sh
# install-check.sh — issue 6 acceptance 1 and 4 on this machine: the .deb installs with
# dpkg, the installed config passes `warmpool --check`, the installed logrotate rule
# parses and reloads every instance (logrotate-check.sh), and the systemd unit verifies.
# (lintian errors already fail `make deb`.) Needs root; CI machines are throwaway.
#
#   tests/packaging/install-check.sh build/deb/warmpool_<version>_<arch>.deb
set -eu
deb=${1:?usage: $0 PACKAGE.deb}
fail() { echo "FAIL $*"; exit 1; }

dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb"
echo "PASS dpkg -i $(basename "$deb")"
[ -x /usr/sbin/warmpool ] || fail "/usr/sbin/warmpool missing after install"
getent passwd warmpool >/dev/null || fail "system user warmpool not created"
echo "PASS /usr/sbin/warmpool installed, user warmpool exists"
mode=$(stat -c %a /etc/warmpool/userlist.txt)
[ "$mode" = 640 ] || fail "/etc/warmpool/userlist.txt has mode $mode, want 640"
echo "PASS /etc/warmpool/userlist.txt mode 0640"
/usr/sbin/warmpool --check -c /etc/warmpool/warmpool.ini || fail "warmpool --check of the installed config"
echo "PASS warmpool --check -c /etc/warmpool/warmpool.ini"
[ -f /usr/share/man/man8/warmpool.8.gz ] || fail "/usr/share/man/man8/warmpool.8.gz missing"
[ ! -e /usr/share/man/man1/warmpool.1.gz ] || fail "the old section-1 page is still installed"
man -w warmpool | grep -q '/man8/warmpool\.8' || fail "man warmpool finds $(man -w warmpool), not warmpool(8)"
echo "PASS man warmpool is warmpool(8), in /usr/share/man/man8"
tests/packaging/logrotate-check.sh /etc/logrotate.d/warmpool || fail "logrotate rule /etc/logrotate.d/warmpool"
systemd-analyze verify packaging/systemd/warmpool.service || fail "systemd-analyze verify"
echo "PASS systemd-analyze verify packaging/systemd/warmpool.service"
