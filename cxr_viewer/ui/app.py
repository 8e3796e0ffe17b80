"""``run_gui``: the QApplication, dark theme, high-DPI policy, the main window.

The window is shown before TensorFlow is imported: the model loads in the analysis worker after the
event loop has started.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from cxr_viewer.paths import resources_dir
from cxr_viewer.ui.settings import APPLICATION, ORGANIZATION, make_settings
from cxr_viewer.ui.theme import THEMES, apply_theme, dark_palette  # noqa: F401


def make_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication (created once), with names for QSettings and high-DPI pass-through."""
    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("cxr-viewer")
    app.setDesktopFileName("cxr-viewer")  # Wayland: match the window to the .desktop entry
    icon = resources_dir() / "icons" / "cxr-viewer.png"
    if icon.is_file():
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(icon)))
    return app


def default_paths() -> list[str]:
    """The generated sample study's folder (made on first use; no patient data).

    The folder, scanned recursively, not its files: it holds the current study and, in
    ``prior/``, the same patient's prior study that the compare-with-prior layout pairs it with.
    """
    from cxr_viewer.io.sample import sample_study_dir

    return [str(sample_study_dir())]


def run_gui(paths: list[str], *, load_model: bool = True) -> int:
    """Start the viewer on ``paths`` (files/folders; the sample study when empty) and run the event
    loop. Returns the exit status."""
    app = make_app()
    settings = make_settings()
    theme = str(settings.value("theme", "dark"))
    apply_theme(app, theme if theme in THEMES else "dark")
    from cxr_viewer.ui.main_window import MainWindow

    window = MainWindow(settings=settings)
    window.show()
    targets = [str(Path(p)) for p in paths]

    def start() -> None:
        window.repaint()  # the first frame is on screen before any worker starts
        try:
            window.open_paths(targets or default_paths())
        except Exception as exc:  # noqa: BLE001 - the window stays up and says why
            window.statusBar().showMessage(f"Could not open the sample study: {exc}")
        if load_model:
            window.load_default_model()

    # After the first paint: the window is up before any decoding or TensorFlow import.
    QTimer.singleShot(0, start)
    smoke = os.environ.get(QUIT_AFTER_ANALYSIS_ENV, "")
    if smoke:
        _quit_after_analysis(app, window, cycle_methods=smoke == "methods")
    return int(app.exec())


#: Hidden test hook: "1" quits with status 0 once the first image's findings and heat map are
#: on screen; "methods" first switches the findings panel through every heat-map method,
#: waiting for each method's map.  Status 3 if that does not happen within
#: ``CXR_VIEWER_QUIT_TIMEOUT_S`` (default 300) seconds.
QUIT_AFTER_ANALYSIS_ENV = "CXR_VIEWER_QUIT_AFTER_ANALYSIS"


def _quit_after_analysis(app: QApplication, window, cycle_methods: bool) -> None:
    panel = getattr(window, "findings_panel", None)
    methods: list[str] = []
    if cycle_methods and panel is not None and hasattr(panel, "method_combo"):
        methods = [panel.method_combo.itemData(i) for i in range(panel.method_combo.count())]
    state = {"step": -1}
    deadline = float(os.environ.get("CXR_VIEWER_QUIT_TIMEOUT_S", "300"))
    timer = QTimer(window)

    def shown(method: str | None) -> bool:
        cams = window.cams
        return (window.prediction is not None and cams is not None
                and window.view.heat_rgba is not None
                and (method is None or cams.method == method))

    def poll() -> None:
        if window.prediction is not None and panel is not None and state["step"] == -1:
            panel.overlay_check.setChecked(True)
            panel.below_check.setChecked(True)  # draw even a finding below its threshold
        step = state["step"]
        wanted = None if step < 0 else methods[step]
        if not shown(wanted):
            return
        print(f"shown: {window.view.heat_label}", flush=True)
        if step + 1 < len(methods):
            state["step"] = step + 1
            index = panel.method_combo.findData(methods[step + 1])
            panel.method_combo.setCurrentIndex(index)
            return
        timer.stop()
        window.close()
        app.exit(0)

    def give_up() -> None:
        print(f"{QUIT_AFTER_ANALYSIS_ENV}: analysis not shown within {deadline:g} s",
              file=sys.stderr, flush=True)
        window.close()
        app.exit(3)

    timer.timeout.connect(poll)
    timer.start(100)
    QTimer.singleShot(int(deadline * 1000), give_up)
