"""Qt fixtures for the viewer tests (import them into a test module with
``from ui_fixtures import *``).

* settings never touch the user's real QSettings (``CXR_VIEWER_SETTINGS_DIR`` -> tmp folder);
* a test that leaves a new top-level widget behind fails (ndv's conftest pattern).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

__all__ = [
    "isolated_settings", "no_widget_leaks", "window", "wait_for_image",
    "mouse_drag", "CORPUS_FILES",
]

CORPUS_FILES = {
    "mr_small": "pydicom__MR_small.dcm",  # 64x64, window 600/1600, PixelSpacing 0.3125
    "two_windows": "pydicom__examples_overlay.dcm",  # windows WINDOW1 450/790, WINDOW2 200/443
    "imager_spacing": "pydicom__dicomdirtests_CR1_6154.dcm",  # 16x16 CR, ImagerPixelSpacing 0.1
    "ct_small": "pydicom__CT_small.dcm",  # 128x128 CT, HU, no window
}


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "settings"
    monkeypatch.setenv("CXR_VIEWER_SETTINGS_DIR", str(folder))
    # the study cache too: the prior lookup reads it whenever a dated study is shown
    monkeypatch.setenv("CXR_VIEWER_DATA_DIR", str(tmp_path / "data"))
    return folder


def _flush_deletes() -> None:
    app = QApplication.instance()
    for _ in range(3):
        app.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        app.processEvents()


@pytest.fixture
def no_widget_leaks(qapp) -> Iterator[None]:
    _flush_deletes()
    before = set(QApplication.topLevelWidgets())
    yield
    _flush_deletes()
    leaked = [w for w in QApplication.topLevelWidgets() if w not in before]
    assert not leaked, f"top-level widgets leaked: {[type(w).__name__ for w in leaked]}"


@pytest.fixture
def window(qtbot, no_widget_leaks):
    from cxr_viewer.ui.main_window import MainWindow

    win = MainWindow()
    win.setObjectName("MainWindow")
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.shutdown()
    win.close()
    win.deleteLater()
    _flush_deletes()


def wait_for_image(qtbot, win, path: str | Path | None = None, timeout: int = 20000):
    """Wait until ``path`` (or any image) is on screen; returns the ImageData."""
    target = str(path) if path is not None else None

    def shown() -> bool:
        img = win.current_image
        return img is not None and (target is None or img.path == target) and \
            win.view.image is img

    qtbot.waitUntil(shown, timeout=timeout)
    return win.current_image


def _send(widget, etype, pos: QPointF, button, buttons) -> None:
    global_pos = QPointF(widget.mapToGlobal(pos.toPoint()))
    ev = QMouseEvent(etype, pos, global_pos, button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, ev)


def mouse_drag(widget, start: QPoint | QPointF, end: QPoint | QPointF, button, steps: int = 10,
               release: bool = True, on_step=None) -> None:
    """A real press / moves / release sequence on ``widget`` (a QGraphicsView viewport)."""
    start, end = QPointF(start), QPointF(end)
    _send(widget, QEvent.Type.MouseButtonPress, start, button, button)
    for i in range(1, steps + 1):
        p = start + (end - start) * (i / steps)
        _send(widget, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, button)
        QApplication.processEvents()
        if on_step is not None:
            on_step(i)
    if release:
        _send(widget, QEvent.Type.MouseButtonRelease, end, button, Qt.MouseButton.NoButton)
        QApplication.processEvents()


def write_png(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(array).save(path)
    return path
