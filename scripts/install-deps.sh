#!/bin/sh
# install-deps.sh — install the Debian packages warmpool needs to build, test and demo.
#
#   scripts/install-deps.sh           compiler, libraries, PostgreSQL 15 server and client
#   scripts/install-deps.sh --bench   also pgbouncer and gnuplot-nox (for `make bench`)
#   scripts/install-deps.sh --packaging  also what `make deb` and its tests need
#   scripts/install-deps.sh --fuzz       accepted for older callers: clang and libFuzzer are
#                                        now in the base set, since `make test` replays the
#                                        fuzz corpora (make fuzz-regress)
#
# Idempotent: installs only what is missing, and runs `apt-get update` only when an
# install fails without it. Needs root (or sudo). Installing postgresql-15 may create and
# start Debian's own `15/main` cluster; nothing in warmpool uses it.
set -eu

pkgs="build-essential gcc make pkg-config libevent-dev libpq-dev libinih-dev libcmocka-dev
libssl-dev postgresql-15 postgresql-client-15 postgresql-contrib python3 python3-psycopg
python3-asyncpg valgrind clang-format clang libclang-rt-14-dev"
for arg in "$@"; do
    case "$arg" in
    --bench) pkgs="$pkgs pgbouncer gnuplot-nox valgrind strace" ;;
    --packaging) pkgs="$pkgs dpkg-dev debhelper fakeroot lintian go-md2man adduser systemd logrotate" ;;
    --fuzz) ;;
    *) echo "usage: $0 [--bench] [--packaging] [--fuzz]" >&2; exit 2 ;;
    esac
done

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi

if [ "$(id -u)" = 0 ]; then
    sudo=""
elif command -v sudo >/dev/null; then
    sudo="sudo"
else
    echo "install-deps: missing:$missing; run as root: apt-get install$missing" >&2
    exit 1
fi

install() {
    echo "+ apt-get install -y --no-install-recommends$missing"
    # shellcheck disable=SC2086
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
}
if ! install; then
    echo "+ apt-get update (package lists may be stale)"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    install
fi
echo "install-deps: installed$missing"
