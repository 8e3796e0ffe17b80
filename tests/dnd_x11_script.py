"""Child process of ``test_ui_viewports.test_study_browser_drag_under_x11``: on an X11 display,
drag an image from the study browser into the second viewport with Qt's own drag-and-drop (the
mouse press and moves start the drag, QDrag.exec runs its event loop, the release over the
viewport drops), and print what happened.

    QT_QPA_PLATFORM=xcb DISPLAY=:N python tests/dnd_x11_script.py OUT_FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QCursor, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication


def wait(app, cond, seconds=30.0) -> bool:
    for _ in range(int(seconds * 100)):
        app.processEvents()
        if cond():
            return True
        QTest.qWait(10)
    return cond()


def main() -> int:
    out = Path(sys.argv[1])
    folder = out / "x11-pngs"
    folder.mkdir(parents=True, exist_ok=True)
    for name, (rows, cols) in (("a", (300, 400)), ("b", (220, 330))):
        pixels = (np.add.outer(np.arange(rows), np.arange(cols)) % 256).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}.png")
    app = QApplication([sys.argv[0]])
    from cxr_viewer.ui.main_window import MainWindow

    win = MainWindow()
    win.resize(1200, 800)
    win.show()
    QTest.qWaitForWindowExposed(win)
    win.open_paths([str(folder / "a.png"), str(folder / "b.png")])
    wait(app, lambda: win.current_image is not None and not win.runner.busy())
    win.actions["layout_1x2"].trigger()
    target = win.workflow.grid.visible_viewports()[1]
    tree = win.browser.tree
    item = win.browser._images[str(folder / "b.png")]
    view = tree.viewport()
    start = tree.visualItemRect(item).center()
    dest = target.view.glw.viewport()
    local = QPoint(dest.width() // 2, dest.height() // 2)
    global_pos = dest.mapToGlobal(local)

    def send(widget, etype, pos, button, buttons):
        QApplication.sendEvent(widget, QMouseEvent(
            etype, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons,
            Qt.KeyboardModifier.NoModifier))

    def over_the_viewport_and_release():  # runs inside QDrag.exec's event loop
        QCursor.setPos(global_pos)
        send(dest, QEvent.Type.MouseMove, local, Qt.MouseButton.NoButton,
             Qt.MouseButton.LeftButton)
        QTest.qWait(50)
        send(dest, QEvent.Type.MouseButtonRelease, local, Qt.MouseButton.LeftButton,
             Qt.MouseButton.NoButton)

    QTimer.singleShot(300, over_the_viewport_and_release)
    QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for i in range(1, 4):
        send(view, QEvent.Type.MouseMove, start + QPoint(12 * i, 4 * i), Qt.MouseButton.NoButton,
             Qt.MouseButton.LeftButton)
    ok = wait(app, lambda: target.view.image is not None)
    if not ok:
        print("nothing dropped")
        return 1
    print(f"dropped {Path(target.view.image.path).name} into the second viewport; "
          f"primary {Path(win.current_image.path).name}; tree {len(win.browser.image_paths())}")
    win.shutdown()
    win.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
