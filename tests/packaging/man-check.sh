#!/bin/sh
# man-check.sh — the man pages (issue 17): warmpool(8) and warmpool.ini(5) build with
# packaging/man/build-man.sh, groff reports no warning (-ww) and man renders them
# without one at 60 (warmpool(8) only), 80 and 120 columns; warmpool(8) documents exactly the options
# `warmpool --help` lists, and every signal warmpool handles.
#
#   tests/packaging/man-check.sh [WARMPOOL]     (default build/warmpool)
set -eu
cd "$(dirname "$0")/../.."
warmpool=${1:-build/warmpool}
fail() { echo "FAIL $*"; exit 1; }
tmp=$(mktemp -d /tmp/warmpool-man.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

packaging/man/build-man.sh "$tmp" || fail "build-man.sh"
[ -f "$tmp/warmpool.8" ] && [ -f "$tmp/warmpool.ini.5" ] || fail "build-man.sh made $(ls "$tmp")"
for page in "$tmp/warmpool.8" "$tmp/warmpool.ini.5"; do
    # -k: preconv, as man runs it (CONFIG.md, in warmpool.ini.5, is UTF-8).
    groff -k -man -ww -z "$page" >"$tmp/groff.err" 2>&1 || fail "groff on $(basename "$page")"
    [ ! -s "$tmp/groff.err" ] || { cat "$tmp/groff.err"; fail "groff -ww warns on $(basename "$page")"; }
    # warmpool.ini(5) holds CONFIG.md's long key names: 80 columns and up.
    widths="60 80 120"
    [ "$page" = "$tmp/warmpool.8" ] || widths="80 120"
    for width in $widths; do
        MANWIDTH=$width man -l "$page" >"$tmp/page.txt" 2>"$tmp/man.err" || fail "man -l $(basename "$page")"
        [ ! -s "$tmp/man.err" ] || { cat "$tmp/man.err"; fail "man -l $(basename "$page") warns at $width columns"; }
    done
done
echo "PASS warmpool(8) and warmpool.ini(5) render without a warning (groff -ww, man -l)"

MANWIDTH=80 man -l "$tmp/warmpool.8" >"$tmp/warmpool.txt" 2>/dev/null
head -n 1 "$tmp/warmpool.txt" | grep -q '^WARMPOOL(8) ' || fail "the page is not WARMPOOL(8): $(head -n 1 "$tmp/warmpool.txt")"
# Long options: from --help, and from the OPTIONS section's item lines.
"$warmpool" --help | grep -o -- '--[a-z][a-z-]*' | sort -u >"$tmp/help.opts"
sed -n '/^OPTIONS$/,/^[A-Z]/p' "$tmp/warmpool.txt" | grep -E '^       -' |
    grep -o -- '--[a-z][a-z-]*' | sort -u >"$tmp/man.opts"
[ -s "$tmp/help.opts" ] || fail "no options in $warmpool --help"
diff "$tmp/help.opts" "$tmp/man.opts" >"$tmp/opts.diff" ||
    { cat "$tmp/opts.diff"; fail "options of --help (<) and of warmpool(8) (>) differ"; }
echo "PASS warmpool(8) documents the options of --help: $(tr '\n' ' ' <"$tmp/help.opts")"
for sig in SIGHUP SIGINT SIGTERM SIGQUIT SIGUSR1 SIGUSR2; do
    sed -n '/^SIGNALS$/,/^[A-Z][A-Z]/p' "$tmp/warmpool.txt" | grep -q "^       $sig" ||
        fail "warmpool(8) SIGNALS does not describe $sig"
done
echo "PASS warmpool(8) describes SIGHUP SIGINT SIGTERM SIGQUIT SIGUSR1 SIGUSR2"
