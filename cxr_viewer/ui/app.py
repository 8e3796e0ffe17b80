"""``run_gui``: the QApplication, dark theme, high-DPI policy, the main window.

The window is shown before TensorFlow is imported: the model loads in the analysis worker after the
event loop has started.
"""

from __future__ import annotations

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
    """The generated sample study's files (made on first use; no patient data)."""
    from cxr_viewer.io.sample import sample_study_dir

    folder = sample_study_dir()
    files = sorted(str(p) for p in folder.iterdir() if p.is_file())
    return files or [str(folder)]


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
    return int(app.exec())
