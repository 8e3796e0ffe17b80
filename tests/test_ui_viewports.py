"""Per-viewport state of the reading workflow (issue 14): each viewport's own heat map from its
own image's analysis, window presets and view keys on the active viewport, and a study-browser
drag dropped into a viewport through Qt's drag-and-drop."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from cxr_viewer.io.sample import PRIOR_FILE
from tests.ui_fixtures import *  # noqa: F403 - fixtures
from tests.ui_fixtures import mouse_drag, wait_for_image, write_png

CURRENT = "IM0001_CR.dcm"
DX = "IM0002_DX.dcm"



@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from tests.inference_testkit import cam_model, vindr_card, write_bundle

    return write_bundle(tmp_path_factory.mktemp("bundle"), cam_model(48), vindr_card(48))


def _click(vp) -> None:
    w = vp.view.glw.viewport()
    QTest.mouseClick(w, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(w.width() // 2, w.height() // 2))


def _open_with_prior(qtbot, window, sample):
    window.open_paths([str(sample)])
    wait_for_image(qtbot, window, sample / CURRENT)
    grid = window.workflow.grid
    prior_vp, current_vp = grid.visible_viewports()
    assert current_vp is grid.primary
    qtbot.waitUntil(lambda: prior_vp.view.image is not None, timeout=20000)
    assert prior_vp.view.image.path == str(sample / PRIOR_FILE)
    return prior_vp, current_vp


def _key(qtbot, window, key) -> None:
    """A real key press on the window (goes through its shortcut map)."""
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=5000)
    QTest.keyClick(window, key)


# ====================================================================== heat maps per viewport
def test_each_viewport_shows_its_own_images_heat_map_with_its_own_toggle(qtbot, window, sample,
                                                                         bundle):
    from cxr_viewer.imaging.heatmap import overlay_plan, render_overlay

    with qtbot.waitSignal(window.analysis.modelLoaded, timeout=120000):
        window.load_model(str(bundle))
    window.findings_panel.below_check.setChecked(True)  # draw maps whatever the tiny model says
    prior_vp, current_vp = _open_with_prior(qtbot, window, sample)
    wf = window.workflow
    qtbot.waitUntil(lambda: prior_vp.ai.cams is not None and window.cams is not None,
                    timeout=120000)
    prior_img, cur_img = prior_vp.view.image, window.current_image
    # the prior's results are of the prior image (its id), the current's of the current
    assert prior_vp.ai.cams.image_id == prior_img.image_id != cur_img.image_id
    assert prior_vp.ai.prediction.image_id == prior_img.image_id
    assert window.cams.image_id == cur_img.image_id
    # the same analysis feeds the change column
    assert str(sample / PRIOR_FILE) in wf.predictions
    qtbot.waitUntil(lambda: wf.comparison.rowCount() > 0, timeout=60000)

    # H on the prior (clicked: active) shows the prior's map only
    assert window.view.heat_rgba is None and prior_vp.view.heat_rgba is None
    _click(prior_vp)
    assert wf.grid.active is prior_vp
    window.actions["heatmap"].trigger()
    assert prior_vp.view.heat_rgba is not None and window.view.heat_rgba is None
    assert window.actions["heatmap"].isChecked()
    finding = prior_vp.ai.overlay.finding
    assert finding is not None and prior_vp.view.heat_legend["title"].startswith(finding)
    ov = wf.viewport_overlay(prior_vp)
    score = prior_vp.ai.prediction.score(finding)
    plan = overlay_plan(score.probability, score.threshold, ov)
    expected = render_overlay(prior_vp.ai.cams.maps[finding], ov, plan.gain)
    assert np.array_equal(prior_vp.view.heat_rgba, expected)
    assert prior_vp.view.heat_rgba.shape[:2] == prior_img.shape
    wrong = render_overlay(window.cams.maps[finding], ov, plan.gain)  # the current's map
    assert wrong.shape != expected.shape or not np.array_equal(wrong, expected)

    # H on the current: its own map; the prior's stays; H on the prior again: only it goes
    _click(current_vp)
    assert not window.actions["heatmap"].isChecked()
    window.actions["heatmap"].trigger()
    qtbot.waitUntil(lambda: window.view.heat_rgba is not None, timeout=60000)
    assert prior_vp.view.heat_rgba is not None
    _click(prior_vp)
    window.actions["heatmap"].trigger()
    assert prior_vp.view.heat_rgba is None and window.view.heat_rgba is not None

    # a change-table row: that finding on both images
    row = len(wf.comparison.rows) - 1
    other = wf.comparison.rows[row].finding
    wf.comparison.cellClicked.emit(row, 0)
    assert window.overlay.finding == other and prior_vp.ai.overlay.finding == other
    assert prior_vp.view.heat_legend["title"].startswith(other)
    assert window.view.heat_legend["title"].startswith(other)

    # a result of another image never lands on the prior: the current's results delivered
    # the way the TensorFlow thread delivers them are dropped
    before = prior_vp.ai.cams
    wf._signals.viewDone.emit(prior_img.path, cur_img.image_id, (window.prediction, window.cams))
    assert prior_vp.ai.cams is before and prior_vp.ai.cams.image_id == prior_img.image_id

    # another image put into the prior's viewport: the old map goes, the new image's comes
    wf.load_into(prior_vp, str(sample / DX))
    qtbot.waitUntil(lambda: prior_vp.view.image is not None
                    and prior_vp.view.image.path == str(sample / DX), timeout=20000)
    dx_id = prior_vp.view.image.image_id
    assert prior_vp.ai.cams is None or prior_vp.ai.cams.image_id == dx_id
    qtbot.waitUntil(lambda: prior_vp.ai.cams is not None, timeout=120000)
    assert prior_vp.ai.cams.image_id == dx_id and prior_vp.ai.prediction.image_id == dx_id
    assert prior_vp.view.heat_rgba is not None  # its map was on: the new image's map
    assert prior_vp.view.heat_rgba.shape[:2] == prior_vp.view.image.shape


# ====================================================================== keys on the active viewport
def test_window_presets_and_w_act_on_the_active_viewport(qtbot, window, sample):
    prior_vp, current_vp = _open_with_prior(qtbot, window, sample)
    wf = window.workflow
    assert current_vp.view.preset_label == prior_vp.view.preset_label == "NORMAL"
    # sync on (default, both CR): key 2 on the active prior, the current follows
    _click(prior_vp)
    _key(qtbot, window, Qt.Key.Key_2)
    assert prior_vp.view.preset_label == "LUNG"
    assert current_vp.view.current_window()[:2] == prior_vp.view.current_window()[:2]
    # sync off: W resets only the active viewport
    window.actions["sync"].trigger()
    lung = current_vp.view.current_window()[:2]
    _key(qtbot, window, Qt.Key.Key_W)
    assert prior_vp.view.preset_label == "NORMAL"
    assert prior_vp.view.current_window()[:2] != lung
    assert current_vp.view.current_window()[:2] == lung
    # invert, then Esc (reset view and window) on the active viewport only
    _key(qtbot, window, Qt.Key.Key_I)
    assert prior_vp.view.invert and not current_vp.view.invert
    _key(qtbot, window, Qt.Key.Key_Escape)
    assert not prior_vp.view.invert
    # the image's own presets: a DX with a VOI LUT in the other viewport
    wf.load_into(prior_vp, str(sample / DX))
    qtbot.waitUntil(lambda: prior_vp.view.image is not None
                    and prior_vp.view.image.path == str(sample / DX), timeout=20000)
    _click(prior_vp)
    names = [a.text() for a in window.preset_menu.actions()]
    assert names[:2] == ["&1  STANDARD", "&2  SOFT S-CURVE (LUT)"]  # the active image's
    window.show_shortcuts()  # Help -> Shortcuts names the keys as the active image has them
    table = window._shortcuts_dialog.table
    texts = [table.item(r, 1).text() for r in range(table.rowCount()) if table.item(r, 1)]
    assert "Window preset 2: SOFT S-CURVE (LUT)" in texts
    window._shortcuts_dialog.close()
    _key(qtbot, window, Qt.Key.Key_2)
    assert prior_vp.view.preset_label == "SOFT S-CURVE (LUT)" and prior_vp.view.voi.is_lut
    assert current_vp.view.current_window()[:2] == lung and not current_vp.view.voi.is_lut
    # the primary again: keys act there
    _click(current_vp)
    assert [a.text() for a in window.preset_menu.actions()][:2] == ["&1  NORMAL", "&2  LUNG"]
    _key(qtbot, window, Qt.Key.Key_1)
    assert current_vp.view.preset_label == "NORMAL"
    assert prior_vp.view.preset_label == "SOFT S-CURVE (LUT)"


def test_preset_menu_acts_on_the_active_viewport(qtbot, window, sample):
    prior_vp, current_vp = _open_with_prior(qtbot, window, sample)
    window.actions["sync"].trigger()  # off
    _click(prior_vp)
    lung = next(a for a in window.preset_menu.actions() if "LUNG" in a.text())
    lung.trigger()
    assert prior_vp.view.preset_label == "LUNG" and current_vp.view.preset_label == "NORMAL"


# ====================================================================== drag and drop
def _drag_from_tree(qtbot, tree, item) -> None:
    """Press on ``item`` and move: Qt's item view starts the drag (StudyTree.startDrag)."""
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    tree.scrollToItem(item)
    vp = tree.viewport()
    start = tree.visualItemRect(item).center()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for i in range(1, 4):
        p = start + QPoint(12 * i, 4 * i)
        QApplication.sendEvent(vp, QMouseEvent(
            QEvent.Type.MouseMove, QPointF(p), QPointF(vp.mapToGlobal(p)),
            Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))


def test_an_image_dragged_from_the_study_browser_drops_into_a_viewport(qtbot, window, tmp_path):
    """The drag starts from real mouse events on the study browser (Qt's item view calls the
    browser's startDrag, which builds the QDrag with the browser's mimeData); the offscreen
    platform has no drag manager (its QDrag.exec returns at once), so the drag's own mime data
    is delivered to the viewport as the platform would: QDragEnterEvent, QDragMoveEvent,
    QDropEvent.  The full platform drag under X11 is
    ``test_study_browser_drag_under_x11``."""
    from PySide6.QtGui import QDrag, QDragEnterEvent, QDragMoveEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    folder = tmp_path / "pngs"
    folder.mkdir()
    a = write_png(folder / "a.png", (np.add.outer(np.arange(300), np.arange(400)) % 256)
                  .astype(np.uint8))
    b = write_png(folder / "b.png", (np.add.outer(np.arange(220), np.arange(330)) % 256)
                  .astype(np.uint8))
    window.open_paths([str(a), str(b)])
    wait_for_image(qtbot, window, a)
    qtbot.waitUntil(lambda: not window.runner.busy(), timeout=20000)
    window.actions["layout_1x2"].trigger()
    target = window.workflow.grid.visible_viewports()[1]
    tree = window.browser.tree
    _drag_from_tree(qtbot, tree, window.browser._images[str(b)])
    drag = tree.findChild(QDrag)
    assert drag is not None, "the study browser did not start a drag"
    mime = drag.mimeData()
    assert drag.supportedActions() == Qt.DropAction.CopyAction
    w = target.view.glw.viewport()
    pos = QPointF(w.width() / 2, w.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), drag.supportedActions(), mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(w, enter)
    assert enter.isAccepted() and enter.dropAction() == Qt.DropAction.CopyAction
    move = QDragMoveEvent(pos.toPoint(), drag.supportedActions(), mime,
                          Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(w, move)
    assert move.isAccepted()
    drop = QDropEvent(pos, drag.supportedActions(), mime, Qt.MouseButton.NoButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(w, drop)
    assert drop.isAccepted() and drop.dropAction() == Qt.DropAction.CopyAction
    qtbot.waitUntil(lambda: target.view.image is not None, timeout=20000)
    assert target.view.image.path == str(b) and target.view.image.shape == (220, 330)
    assert window.workflow.grid.active is target
    assert window.current_image.path == str(a)  # the image being read stays
    assert sorted(window.browser.image_paths()) == sorted([str(a), str(b)])  # copied, kept
    # the desktop's drags (no browser paths, no files) are refused
    from PySide6.QtCore import QMimeData

    other = QMimeData()
    other.setText("not an image")
    refused = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, other,
                              Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(w, refused)
    assert not refused.isAccepted()


def test_study_browser_drag_under_x11(tmp_path):
    """The whole platform drag (QDrag.exec's own event loop, X11 drag-and-drop, QDropEvent
    delivered by Qt) on a private Xvfb display, in a child process (the test session's Qt runs
    offscreen)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    read, write = os.pipe()
    server = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "1400x900x24",
                               "-nolisten", "tcp"], pass_fds=(write,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as f:
            display = f.readline().strip()
        assert display, "Xvfb did not start"
        env = dict(os.environ, QT_QPA_PLATFORM="xcb", DISPLAY=f":{display}",
                   CXR_VIEWER_SETTINGS_DIR=str(tmp_path / "settings"),
                   PYTHONPATH=str(Path(__file__).resolve().parent.parent))
        script = Path(__file__).with_name("dnd_x11_script.py")
        done = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env,
                              capture_output=True, text=True, timeout=180)
    finally:
        server.terminate()
        server.wait(10)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dropped b.png into the second viewport; primary a.png; tree 2" in done.stdout, \
        done.stdout + done.stderr


# ====================================================================== measuring on any viewport
def _to_widget(view, x: float, y: float) -> QPointF:
    """Image pixel coordinates (x = column, y = row) -> that view's widget coordinates."""
    return QPointF(view.glw.mapFromScene(view.orient.mapToScene(QPointF(x, y))))


def test_measure_mode_measures_on_every_viewport_and_the_panel_follows_the_active_one(
    qtbot, window, sample
):
    prior_vp, current_vp = _open_with_prior(qtbot, window, sample)
    prior = prior_vp.view.image
    assert prior.spacing is not None
    _click(prior_vp)
    _key(qtbot, window, Qt.Key.Key_M)
    assert prior_vp.view.vb.left_mode == current_vp.view.vb.left_mode == "measure"
    rows, cols = prior.pixels.shape[:2]
    p0 = _to_widget(prior_vp.view, cols * 0.3, rows * 0.5)
    p1 = _to_widget(prior_vp.view, cols * 0.6, rows * 0.5)
    mouse_drag(prior_vp.view.glw.viewport(), p0, p1, Qt.MouseButton.LeftButton, steps=8)
    assert len(prior_vp.view.measurements) == 1 and current_vp.view.measurements == []
    m = prior_vp.view.measurements[0]
    assert m.mm == pytest.approx(cols * 0.3 * prior.spacing.col_mm, rel=0.03)
    # the panel lists the active viewport's measurements and says which image it measures
    assert [window.measure_list.item(i).text() for i in range(window.measure_list.count())] == [
        f"1. {m.text()}"]
    assert window.measure_spacing_label.text().startswith(
        f"{prior_vp.title.text()}: mm from")  # e.g. "Prior 2023-10-02, 3 months earlier: ..."
    assert prior_vp.title.text().startswith("Prior 2023-10-02")
    # the current image (a click in measure mode draws nothing): its own, empty list
    _click(current_vp)
    assert window.measure_list.count() == 0 and current_vp.view.measurements == []
    assert window.measure_spacing_label.text().startswith("mm from")
    kept = current_vp.view.add_measurement(10, 10, 10, 60)
    assert window.measure_list.count() == 1
    # Del on the active prior deletes its measurement, not the current image's
    _click(prior_vp)
    assert window.measure_list.item(0).text() == f"1. {m.text()}"
    _key(qtbot, window, Qt.Key.Key_Delete)
    assert prior_vp.view.measurements == [] and current_vp.view.measurements == [kept]
    assert window.measure_list.count() == 0
    # a viewport made after M was pressed measures too; pan mode again everywhere
    window.workflow.set_layout("2x2")
    assert all(vp.view.vb.left_mode == "measure" for vp in window.workflow.grid.viewports)
    window.set_left_mode("pan")
    assert all(vp.view.vb.left_mode == "pan" for vp in window.workflow.grid.viewports)
