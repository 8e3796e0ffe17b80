"""Grab the real viewer window with the generated sample study open.

    python tests/screenshot.py [OUT.png [PATH...]]   (default out/screenshot-viewer.png, sample study)

Without a display it re-runs itself under ``xvfb-run`` (a real X server, real window manager-less
window), falling back to Qt's offscreen platform only when Xvfb is not installed (it says so). It
waits for the image to be rendered and, when the bundled model exists, for the AI findings and the
heat map of the top finding; then it writes the PNG of the whole window.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SIZE = (1600, 1000)
IMAGE_TIMEOUT_S = 60
ANALYSIS_TIMEOUT_S = 180


def _reexec_under_xvfb(out: Path, paths: list[str]) -> int | None:
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen" or os.environ.get("CXR_SCREENSHOT_CHILD"):
        return None
    xvfb_run = shutil.which("xvfb-run")
    if xvfb_run is None or shutil.which("Xvfb") is None:
        print("screenshot: Xvfb not installed; using the offscreen platform instead",
              file=sys.stderr)
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return None
    env = dict(os.environ, CXR_SCREENSHOT_CHILD="1", QT_QPA_PLATFORM="xcb")
    cmd = [xvfb_run, "-a", "-s", f"-screen 0 {SIZE[0] + 100}x{SIZE[1] + 100}x24",
           sys.executable, str(Path(__file__).resolve()), str(out), *paths]
    return subprocess.call(cmd, env=env)


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else REPO / "out" / "screenshot-viewer.png").resolve()
    paths = [str(Path(p).resolve()) for p in argv[2:]]
    status = _reexec_under_xvfb(out, paths)
    if status is not None:
        return status
    os.environ.setdefault("CXR_VIEWER_SETTINGS_DIR", tempfile.mkdtemp(prefix="cxr-shot-"))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from PySide6.QtWidgets import QApplication

    from cxr_viewer.paths import default_model_dir
    from cxr_viewer.ui.app import apply_theme, default_paths, make_app
    from cxr_viewer.ui.main_window import MainWindow

    app = make_app([sys.argv[0]])
    apply_theme(app, "dark")
    win = MainWindow()
    win.resize(*SIZE)
    win.show()
    t_start = time.perf_counter()
    win.open_paths(paths or default_paths())
    model = default_model_dir()
    want_ai = win.analysis is not None and model.exists()
    if want_ai:
        win.load_default_model()

    def pump_until(cond, timeout: float) -> bool:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            app.processEvents()
            if cond():
                return True
            time.sleep(0.02)
        return cond()

    if not pump_until(lambda: win.current_image is not None and win.view.displayed is not None,
                      IMAGE_TIMEOUT_S):
        print("screenshot: the sample image was not shown in time", file=sys.stderr)
        win.shutdown()
        return 1
    print(f"screenshot: image on screen after {time.perf_counter() - t_start:.2f} s")
    pump_until(lambda: all(win.browser.has_thumbnail(p) for p in win.browser.image_paths()), 20)
    if want_ai:
        ok = pump_until(lambda: win.prediction is not None and win.cams is not None,
                        ANALYSIS_TIMEOUT_S)
        print(f"screenshot: analysis {'done' if ok else 'NOT done'} after "
              f"{time.perf_counter() - t_start:.1f} s")
        if ok:
            win.toggle_heatmap()  # the top finding's heat map, as a reader would press H
    else:
        print(f"screenshot: no AI ({'no model at ' + str(model) if not model.exists() else 'no analysis controller'})")
    # one measurement so the screenshot shows the tool
    img = win.current_image
    rows, cols = img.shape
    win.view.add_measurement(rows * 0.30, cols * 0.22, rows * 0.30, cols * 0.45)
    pump_until(lambda: False, 0.5)
    out.parent.mkdir(parents=True, exist_ok=True)
    pixmap = win.grab()
    if not pixmap.save(str(out)):
        print(f"screenshot: could not write {out}", file=sys.stderr)
        return 1
    print(f"screenshot: wrote {out} ({pixmap.width()}x{pixmap.height()}, "
          f"platform {QApplication.platformName()})")
    win.shutdown()
    win.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
