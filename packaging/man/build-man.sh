#!/bin/sh
# build-man.sh — turn the Markdown man page sources into roff with go-md2man (Debian
# package go-md2man).
#
#   packaging/man/build-man.sh OUTDIR
#
# Writes OUTDIR/warmpool.8 from packaging/man/warmpool.8.md (section 8: a daemon run by
# the administrator, in /usr/sbin, as Debian policy wants), and OUTDIR/warmpool.ini.5
# from packaging/man/warmpool.ini.5.md followed by docs/CONFIG.md, so the page cannot
# drift from the reference. go-md2man makes the body; the .TH line is ours, since
# its title block syntax gives malformed .TH lines. go-md2man maps '##' to .SH and
# '###' to .SS; CONFIG.md already uses those levels, only its '# title' is dropped.
# Markdown tables become definition lists: tbl cannot wrap long cells the way
# go-md2man writes them, and a reference table is read one key at a time anyway.
# The date is SOURCE_DATE_EPOCH's (dpkg-buildpackage sets it from debian/changelog),
# so builds are reproducible.
set -eu

cd "$(dirname "$0")/../.."
out=${1:?usage: $0 OUTDIR}
command -v go-md2man >/dev/null ||
    { echo "build-man.sh: go-md2man not found (apt-get install go-md2man)" >&2; exit 1; }
mkdir -p "$out"
version=$(sed -n 's/^#define WARMPOOL_VERSION "\(.*\)"/\1/p' pooler/main.c)
date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%d)

# A table "| A | B | C |" with rows "| a | b | c |" becomes, per row,
#   a
#   : B: b. c       (middle columns as "Header: value", joined by "; "; the last bare)
tables_to_lists() {
    awk '
        function cells(line, out,   n, i) {
            gsub(/\\\|/, "\001", line)          # an escaped \| is not a separator
            sub(/^[ \t]*\|/, "", line); sub(/\|[ \t]*$/, "", line)
            n = split(line, out, "|")
            for (i = 1; i <= n; i++) {
                gsub(/^[ \t]+|[ \t]+$/, "", out[i]); gsub(/\001/, "|", out[i])
            }
            return n
        }
        /^```/ { code = !code }
        !code && /^[ \t]*\|/ {
            if (!intable) { intable = 1; nh = cells($0, head); next }
            if ($0 ~ /^[ \t]*\|[-:| \t]+\|[ \t]*$/) next
            n = cells($0, row)
            def = ""
            for (i = 2; i < n; i++) def = def (i > 2 ? "; " : "") head[i] ": " row[i]
            print row[1]; print ": " def (n > 2 ? ". " : "") row[n]; print ""
            next
        }
        { intable = 0; print }
    '
}

# name section body.md
page() {
    {
        printf '.TH "%s" "%s" "%s" "warmpool %s" "warmpool manual"\n' \
            "$(echo "$1" | tr "[:lower:]" "[:upper:]")" "$2" "$date" "$version"
        # Links become their text: a man page cannot follow a relative path.
        sed -E 's/\[([^]]*)\]\([^)]*\)/\1/g' "$3" | tables_to_lists | go-md2man
    } >"$out/$1.$2"
}

page warmpool 8 packaging/man/warmpool.8.md

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
    cat packaging/man/warmpool.ini.5.md
    echo
    awk '
        /^```/ { code = !code; print; next }
        !code && /^# / && !seen_title { seen_title = 1; next }
        { print }
    ' docs/CONFIG.md
} >"$tmp"
page warmpool.ini 5 "$tmp"
