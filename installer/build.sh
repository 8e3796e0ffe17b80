#!/usr/bin/env bash
# Build the one-folder bundle dist/cxr-viewer/ and the archive
# dist/cxr-viewer-<version>-linux-<arch>.tar.gz, then report sizes and build time.
#
#   bash installer/build.sh            # what `make installer` runs
#   PYTHON=/path/to/python bash installer/build.sh
#
# Needs: the project installed in .venv (make install), the `installer` extra (PyInstaller,
# installed here when missing) and the trained model in models/default/ (or the bundle folder
# named by CXR_BUNDLE_MODEL_DIR). About 4 min of CPU and
# ~2 GB of disk (dist/: the 1.5 GB bundle + the 0.45 GB archive; build/ ~0.1 GB).
# Check the result with: bash installer/smoke_test.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-$ROOT/.venv/bin/python}
DIST=$ROOT/dist
WORK=$ROOT/build/pyinstaller
BUNDLE=$DIST/cxr-viewer

[ -x "$PY" ] || { echo "build.sh: $PY not found; run 'make install' first" >&2; exit 1; }
# CXR_BUNDLE_MODEL_DIR ships another model bundle folder (as models/default) - e.g. a test build.
MODEL_DIR=${CXR_BUNDLE_MODEL_DIR:-$ROOT/models/default}
[ -f "$MODEL_DIR/model.json" ] || {
    echo "build.sh: $MODEL_DIR/model.json is missing; the bundle must contain the model" >&2
    exit 1
}
if ! "$PY" -m PyInstaller --version >/dev/null 2>&1; then
    # The requirement lives in one place: pyproject's `installer` extra.
    req=$("$PY" -c 'import tomllib; d = tomllib.load(open("pyproject.toml", "rb")); print(*d["project"]["optional-dependencies"]["installer"])')
    echo "build.sh: installing $req"
    "$PY" -m pip install --quiet $req
fi

VERSION=$("$PY" -c 'import cxr_viewer; print(cxr_viewer.__version__)')
ARCH=$(uname -m)
ARCHIVE=$DIST/cxr-viewer-$VERSION-linux-$ARCH.tar.gz

echo "build.sh: cxr-viewer $VERSION, PyInstaller $("$PY" -m PyInstaller --version), $(nproc) CPUs"
t0=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" installer/cxr-viewer.spec
t1=$(date +%s)

# The install scripts travel inside the archive, beside the executable.
cp installer/install-linux.sh installer/uninstall-linux.sh "$BUNDLE/"
chmod +x "$BUNDLE/install-linux.sh" "$BUNDLE/uninstall-linux.sh"

rm -f "$ARCHIVE"
if command -v pigz >/dev/null 2>&1; then
    tar -C "$DIST" -cf - cxr-viewer | pigz -6 >"$ARCHIVE"
else
    tar -C "$DIST" -czf "$ARCHIVE" cxr-viewer
fi
t2=$(date +%s)

echo
echo "== cxr-viewer $VERSION bundle =="
printf '%-28s %s\n' "bundle folder" "$BUNDLE ($(du -sh "$BUNDLE" | cut -f1), $(find "$BUNDLE" -type f | wc -l) files)"
printf '%-28s %s\n' "archive" "$ARCHIVE ($(du -h "$ARCHIVE" | cut -f1))"
printf '%-28s %s\n' "PyInstaller time" "$((t1 - t0)) s"
printf '%-28s %s\n' "archive time" "$((t2 - t1)) s"
printf '%-28s %s\n' "total build time" "$((t2 - t0)) s"
echo
echo "largest parts of the bundle:"
(cd "$BUNDLE/_internal" && du -s -- * 2>/dev/null | sort -rn | head -12 |
    awk '{ printf "  %8.1f MB  %s\n", $1 / 1024, $2 }')
echo
echo "next: bash installer/smoke_test.sh"
