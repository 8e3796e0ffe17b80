#!/usr/bin/env bash
# Install the cxr-viewer bundle with a desktop menu entry and icon.
#
#   install-linux.sh [--prefix ~/.local | /opt | DIR] [--bundle DIR] [--bindir DIR] [--datadir DIR]
#
# Layouts (the default prefix is ~/.local, for the current user, no root needed):
#   --prefix ~/.local (any DIR not named opt)  --prefix /opt (system-wide, run as root)
#     app      DIR/lib/cxr-viewer/                /opt/cxr-viewer/
#     command  DIR/bin/cxr-viewer (symlink)       /usr/local/bin/cxr-viewer (symlink)
#     menu     DIR/share/applications/            /usr/local/share/applications/
#     icons    DIR/share/icons/hicolor/           /usr/local/share/icons/hicolor/
# --bindir / --datadir override the last three. The bundle is, in order: --bundle, the folder
# this script is in (it ships inside the release archive), or dist/cxr-viewer/ of the checkout.
# A manifest of every file written goes to <app>/install-manifest.txt; uninstall-linux.sh (also
# copied into <app>/) removes exactly those. Re-running upgrades an earlier install in place.
set -euo pipefail

NAME=cxr-viewer
MANIFEST_HEADER="# cxr-viewer install manifest"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=$HOME/.local
BUNDLE="" BINDIR="" DATADIR=""

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; }
die() { echo "install-linux.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case $1 in
        --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
        --prefix=*) PREFIX=${1#*=}; shift ;;
        --bundle) BUNDLE=${2:?--bundle needs a folder}; shift 2 ;;
        --bundle=*) BUNDLE=${1#*=}; shift ;;
        --bindir) BINDIR=${2:?--bindir needs a folder}; shift 2 ;;
        --bindir=*) BINDIR=${1#*=}; shift ;;
        --datadir) DATADIR=${2:?--datadir needs a folder}; shift 2 ;;
        --datadir=*) DATADIR=${1#*=}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

is_bundle() { [ -x "$1/$NAME" ] && [ -d "$1/_internal" ]; }
if [ -z "$BUNDLE" ]; then
    if is_bundle "$HERE"; then BUNDLE=$HERE; else BUNDLE=$HERE/../dist/$NAME; fi
fi
is_bundle "$BUNDLE" || die "$BUNDLE is not a built bundle (no $NAME executable + _internal/); run installer/build.sh"
BUNDLE=$(cd "$BUNDLE" && pwd)
RES=$BUNDLE/_internal/resources
for f in "$RES/$NAME.desktop" "$RES/icons/$NAME.svg" "$BUNDLE/_internal/models/default/model.json"; do
    [ -f "$f" ] || die "the bundle lacks $f"
done

PREFIX=${PREFIX%/}
[ -n "$PREFIX" ] || die "--prefix / is not allowed"
case $PREFIX in /*) ;; *) PREFIX=$(pwd)/$PREFIX ;; esac
if [ "$(basename "$PREFIX")" = opt ]; then
    APPDIR=$PREFIX/$NAME
    BINDIR=${BINDIR:-/usr/local/bin}
    DATADIR=${DATADIR:-/usr/local/share}
else
    APPDIR=$PREFIX/lib/$NAME
    BINDIR=${BINDIR:-$PREFIX/bin}
    DATADIR=${DATADIR:-$PREFIX/share}
fi
# The desktop file quotes the path; refuse the characters its Exec key would need escaped.
case $APPDIR in *[\"\\\$\`%]*) die "the install folder '$APPDIR' contains \" \\ \$ \` or %" ;; esac
[ "$BUNDLE" != "$APPDIR" ] || die "the bundle is already at $APPDIR"

if [ -e "$APPDIR" ]; then
    if [ -f "$APPDIR/install-manifest.txt" ] && head -n1 "$APPDIR/install-manifest.txt" | grep -qx "$MANIFEST_HEADER"; then
        echo "install-linux.sh: replacing the earlier install in $APPDIR"
        bash "$APPDIR/uninstall-linux.sh" --quiet
    else
        die "$APPDIR exists and was not installed by this script; remove it or choose another --prefix"
    fi
fi
LINK=$BINDIR/$NAME
if [ -e "$LINK" ] || [ -L "$LINK" ]; then
    [ -L "$LINK" ] && [ "$(readlink "$LINK")" = "$APPDIR/$NAME" ] ||
        die "$LINK exists and is not this install's link (a pip-installed cxr-viewer?); remove it first"
fi

mkdir -p "$(dirname "$APPDIR")" "$BINDIR" "$DATADIR/applications"
staging=$(mktemp -d "$(dirname "$APPDIR")/.$NAME-install.XXXXXX")
trap 'rm -rf "$staging"' EXIT
cp -a "$BUNDLE/." "$staging/"
cp "$HERE/uninstall-linux.sh" "$staging/uninstall-linux.sh" 2>/dev/null ||
    cp "$BUNDLE/uninstall-linux.sh" "$staging/uninstall-linux.sh"
chmod 755 "$staging" "$staging/uninstall-linux.sh"
mv "$staging" "$APPDIR"
trap - EXIT

written=()
ln -sfn "$APPDIR/$NAME" "$LINK"
written+=("$LINK")

desktop=$DATADIR/applications/$NAME.desktop
sed -e "s|^Exec=.*|Exec=\"$APPDIR/$NAME\" %F|" -e "s|^TryExec=.*|TryExec=$APPDIR/$NAME|" \
    "$RES/$NAME.desktop" >"$desktop"
chmod 644 "$desktop"
written+=("$desktop")

icons=$DATADIR/icons/hicolor
for png in "$RES"/icons/hicolor/*/apps/$NAME.png; do
    size=$(basename "$(dirname "$(dirname "$png")")")
    install -D -m 644 "$png" "$icons/$size/apps/$NAME.png"
    written+=("$icons/$size/apps/$NAME.png")
done
install -D -m 644 "$RES/icons/$NAME.svg" "$icons/scalable/apps/$NAME.svg"
written+=("$icons/scalable/apps/$NAME.svg")

{
    echo "$MANIFEST_HEADER"
    echo "# app: $APPDIR"
    printf '%s\n' "${written[@]}"
} >"$APPDIR/install-manifest.txt"

# Menus and icon themes pick the new files up sooner with their caches refreshed (optional tools).
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$DATADIR/applications" || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$icons/index.theme" ] &&
    gtk-update-icon-cache -q -t "$icons" || true

echo "installed cxr-viewer into $APPDIR"
echo "  command:    $LINK"
echo "  menu entry: $desktop"
echo "  icons:      $icons/{16x16..512x512,scalable}/apps/$NAME.*"
echo "  uninstall:  $APPDIR/uninstall-linux.sh"
case ":$PATH:" in *":$BINDIR:"*) ;; *) echo "note: $BINDIR is not on PATH; the menu entry works regardless" ;; esac
echo "check it:   $LINK --self-test"
