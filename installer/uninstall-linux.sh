#!/usr/bin/env bash
# Remove a cxr-viewer installed by install-linux.sh: the files its manifest lists (command link,
# menu entry, icons), then the app folder.
#
#   uninstall-linux.sh                     # when run from the installed app folder
#   uninstall-linux.sh [--prefix ~/.local | /opt | DIR]   # the same --prefix as the install
#
# Nothing outside the manifest is touched; a folder without a manifest is refused.
set -euo pipefail

NAME=cxr-viewer
MANIFEST_HEADER="# cxr-viewer install manifest"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX="" QUIET=0

die() { echo "uninstall-linux.sh: $*" >&2; exit 1; }
say() { [ "$QUIET" = 1 ] || echo "$@"; }

while [ $# -gt 0 ]; do
    case $1 in
        --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
        --prefix=*) PREFIX=${1#*=}; shift ;;
        --quiet) QUIET=1; shift ;;
        -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

if [ -n "$PREFIX" ]; then
    PREFIX=${PREFIX%/}
    case $PREFIX in /*) ;; *) PREFIX=$(pwd)/$PREFIX ;; esac
    # Same layout rule as install-linux.sh.
    if [ "$(basename "$PREFIX")" = opt ]; then APPDIR=$PREFIX/$NAME; else APPDIR=$PREFIX/lib/$NAME; fi
elif [ -f "$HERE/install-manifest.txt" ]; then
    APPDIR=$HERE
else
    APPDIR=$HOME/.local/lib/$NAME
fi

MANIFEST=$APPDIR/install-manifest.txt
[ -f "$MANIFEST" ] || die "no install manifest at $MANIFEST (nothing installed there by install-linux.sh)"
head -n1 "$MANIFEST" | grep -qx "$MANIFEST_HEADER" || die "$MANIFEST is not a cxr-viewer install manifest"
grep -qx "# app: $APPDIR" "$MANIFEST" || die "$MANIFEST belongs to another folder"

dirs=() removed=0
while IFS= read -r path; do
    case $path in "" | "#"*) continue ;; esac
    if [ -L "$path" ] || [ -f "$path" ]; then
        rm -f -- "$path"
        removed=$((removed + 1))
        dirs+=("$(dirname "$path")")
    fi
done <"$MANIFEST"
rm -rf -- "$APPDIR"

# Tidy the icon-size folders this install created, if now empty (never anything else).
for d in "${dirs[@]}"; do
    case $d in */icons/hicolor/*/apps) rmdir -- "$d" "$(dirname "$d")" 2>/dev/null || true ;; esac
done
for d in "${dirs[@]}"; do
    case $d in */applications)
        command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$d" || true ;;
    esac
done
say "removed cxr-viewer: $APPDIR and $removed files (command link, menu entry, icons)"
