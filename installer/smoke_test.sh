#!/usr/bin/env bash
# Smoke test of a built bundle: run its --self-test off screen, from an empty folder, with a
# minimal environment that cannot reach the source tree or the .venv.
#
#   bash installer/smoke_test.sh                      # dist/cxr-viewer/
#   bash installer/smoke_test.sh dist/cxr-viewer      # a bundle folder
#   bash installer/smoke_test.sh dist/cxr-viewer-0.1.0-linux-x86_64.tar.gz
#                                                     # unpack the archive elsewhere and test that
#
# With xvfb-run available it also runs the self-test on the X11 (xcb) platform plug-in, the one a
# workstation's desktop uses. Exit status 0 when every run passed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${1:-$ROOT/dist/cxr-viewer}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cxr-viewer-smoke.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

if [ -f "$TARGET" ]; then
    echo "smoke: unpacking $TARGET into $WORK"
    t0=$(date +%s)
    tar -C "$WORK" -xzf "$TARGET"
    echo "smoke: unpacked in $(($(date +%s) - t0)) s"
    BUNDLE=$WORK/cxr-viewer
else
    BUNDLE=$(cd "$TARGET" && pwd)
fi
EXE=$BUNDLE/cxr-viewer
[ -x "$EXE" ] || { echo "smoke: $EXE is not an executable bundle; run installer/build.sh" >&2; exit 1; }
for part in _internal/models/default/model.json _internal/resources/cxr-viewer.desktop \
    _internal/resources/icons/cxr-viewer.svg; do
    [ -f "$BUNDLE/$part" ] || { echo "smoke: $BUNDLE/$part is missing from the bundle" >&2; exit 1; }
done

mkdir -p "$WORK/home" "$WORK/run"
cd "$WORK/run"
# env -i: no PYTHONPATH, no VIRTUAL_ENV, no CXR_VIEWER_HOME; HOME and the cache are throw-away.
run_bundle() {
    env -i HOME="$WORK/home" XDG_CACHE_HOME="$WORK/home/.cache" PATH=/usr/bin:/bin LANG=C.UTF-8 \
        TF_CPP_MIN_LOG_LEVEL=2 "$@"
}

echo "smoke: $(run_bundle "$EXE" --version)"

status=0
echo "smoke: self-test, offscreen platform"
t0=$(date +%s)
if run_bundle QT_QPA_PLATFORM=offscreen CXR_VIEWER_SELFTEST_DIR="$WORK/out-offscreen" \
    "$EXE" --self-test; then
    echo "smoke: offscreen self-test passed in $(($(date +%s) - t0)) s (wall, incl. start-up)"
else
    status=1
    echo "smoke: offscreen self-test FAILED" >&2
fi
if [ $status -eq 0 ]; then
    export_png=$WORK/out-offscreen/cxr-viewer-self-test.png
    [ -s "$export_png" ] || { echo "smoke: $export_png was not written" >&2; status=1; }
fi

if command -v xvfb-run >/dev/null 2>&1; then
    echo "smoke: self-test, xcb platform under Xvfb"
    t0=$(date +%s)
    # xvfb-run sets DISPLAY and XAUTHORITY; pass those two through the otherwise empty environment.
    if xvfb-run -a -s "-screen 0 1280x1024x24" sh -c 'exec env -i HOME="$1" \
        XDG_CACHE_HOME="$1/.cache" PATH=/usr/bin:/bin LANG=C.UTF-8 TF_CPP_MIN_LOG_LEVEL=2 \
        DISPLAY="$DISPLAY" XAUTHORITY="$XAUTHORITY" QT_QPA_PLATFORM=xcb \
        CXR_VIEWER_SELFTEST_DIR="$2" "$3" --self-test' sh "$WORK/home" "$WORK/out-xcb" "$EXE" \
        2>"$WORK/xcb.err"; then
        echo "smoke: xcb self-test passed in $(($(date +%s) - t0)) s"
    else
        status=1
        cat "$WORK/xcb.err" >&2
        echo "smoke: xcb self-test FAILED" >&2
    fi
else
    echo "smoke: xvfb-run not found; the xcb (X11) platform plug-in was not exercised"
fi

[ $status -eq 0 ] && echo "smoke: PASSED ($BUNDLE)" || echo "smoke: FAILED ($BUNDLE)" >&2
exit $status
