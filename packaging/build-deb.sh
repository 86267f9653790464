#!/bin/sh
# build-deb.sh — build the warmpool .deb with dpkg-buildpackage and debhelper.
#
#   packaging/build-deb.sh [OUTDIR]        (default OUTDIR: build/deb)
#
# Copies the sources (not build output, not .git) into OUTDIR/warmpool-VERSION/, puts
# packaging/debian there as debian/, and runs `dpkg-buildpackage -b -us -uc` in it;
# the .deb and .changes land in OUTDIR, then lintian checks them (errors fail the
# build). Keeping debian/ under packaging/ leaves the top of the tree to the project;
# the staging copy also keeps the developer's build/ and ./warmpool untouched.
# Needs: dpkg-dev debhelper fakeroot lintian go-md2man and the build dependencies
# (scripts/install-deps.sh installs them).
set -eu

cd "$(dirname "$0")/.."
root=$(pwd)
out=${1:-build/deb}
case $out in /*) ;; *) out=$root/$out ;; esac

version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
binver=$(sed -n 's/^#define WARMPOOL_VERSION "\(.*\)"/\1/p' pooler/main.c)
if [ "$version" != "$binver" ]; then
    echo "build-deb.sh: packaging/debian/changelog says $version, pooler/main.c says" \
        "$binver: add a changelog entry (dch -c packaging/debian/changelog -v $binver)" >&2
    exit 1
fi

stage=$out/warmpool-$version
rm -rf "$stage"
mkdir -p "$stage"
for f in Makefile README.md .clang-format conf docs include pooler packaging scripts tests; do
    [ -e "$f" ] && cp -a "$f" "$stage/"
done
cp -a packaging/debian "$stage/debian"
rm -f "$out"/warmpool_"$version"_*.deb "$out"/warmpool-dbgsym_"$version"_*.deb \
    "$out"/warmpool_"$version"_*.changes "$out"/warmpool_"$version"_*.buildinfo

(cd "$stage" && dpkg-buildpackage -b -us -uc)

changes=$(ls "$out"/warmpool_"$version"_*.changes)
echo "+ lintian $(basename "$changes")"
# --fail-on error: warnings and infos (-I) are printed but do not fail the build.
lintian --fail-on error --display-info "$changes"
ls -1 "$out"/*.deb
