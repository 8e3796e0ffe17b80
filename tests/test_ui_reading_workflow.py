"""Reading workflow in the real window (issue 14): layouts, sync on/off, the prior hanging
protocol with the change column, worklist sort, next unread and persisted read state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from cxr_viewer.io.sample import PRIOR_FILE
from tests.ui_fixtures import *  # noqa: F403 - fixtures
from tests.ui_fixtures import mouse_drag, wait_for_image, write_png


def _gradient(tmp_path, name, shape=(300, 400)):
    rows, cols = shape
    arr = (np.add.outer(np.arange(rows), np.arange(cols)) % 256).astype(np.uint8)
    return write_png(tmp_path / name, arr)


def _vp_center(vp):
    w = vp.view.glw.viewport()
    return w, QPointF(w.width() / 2, w.height() / 2)


def test_layouts_menu_and_keys_change_the_grid(qtbot, window, tmp_path):
    a, b = _gradient(tmp_path, "a.png"), _gradient(tmp_path, "b.png", (200, 500))
    window.open_paths([str(a), str(b)])
    wait_for_image(qtbot, window)
    grid = window.workflow.grid
    assert grid.layout_name == "1x1" and len(grid.visible_viewports()) == 1
    for name, n, (rows, cols) in (("2x2", 4, (2, 2)), ("1x2", 2, (1, 2)), ("2x1", 2, (2, 1))):
        window.actions[f"layout_{name}"].trigger()
        qtbot.waitUntil(lambda n=n: sum(vp.isVisible() for vp in grid.viewports) == n)
        assert grid.layout_name == name
        tops = {vp.geometry().top() for vp in grid.visible_viewports()}
        lefts = {vp.geometry().left() for vp in grid.visible_viewports()}
        assert (len(tops), len(lefts)) == (rows, cols)
    # an image dropped into the second viewport shows there with its own window and corners
    second = grid.visible_viewports()[1]
    window.workflow.load_into(second, str(b))
    qtbot.waitUntil(lambda: second.view.image is not None, timeout=20000)
    assert second.view.image.shape == (200, 500) and window.view.image.shape == (300, 400)
    # clicking a viewport makes it the active, outlined one
    w, c = _vp_center(second)
    qtbot.mouseClick(w, Qt.MouseButton.LeftButton, pos=c.toPoint())
    assert grid.active is second and second.active and not grid.primary.active
    assert "#ffb000" in second.styleSheet()
    window.actions["layout_1x1"].trigger()
    assert [vp.isVisible() for vp in grid.viewports].count(True) == 1 and grid.primary.isVisible()


def test_sync_on_and_off(qtbot, window, tmp_path):
    a, b = _gradient(tmp_path, "a.png"), _gradient(tmp_path, "b.png")
    window.open_paths([str(a), str(b)])
    wait_for_image(qtbot, window)
    wf = window.workflow
    window.actions["layout_1x2"].trigger()
    other = wf.grid.visible_viewports()[1]
    wf.load_into(other, str(b))
    qtbot.waitUntil(lambda: other.view.image is not None, timeout=20000)
    assert wf.grid.sync.sync_view  # on by default
    # window/level drag in the primary: the same-modality image follows
    w, c = _vp_center(wf.grid.primary)
    mouse_drag(w, c, c + QPointF(60, 40), Qt.MouseButton.RightButton)
    assert window.view.current_window()[:2] == other.view.current_window()[:2]
    assert np.array_equal(window.view.displayed, other.view.displayed)
    # zoom follows, relative to fit
    window.view.zoom_by(2.0)
    assert other.view.zoom() == pytest.approx(window.view.zoom(), rel=0.02)
    # linked cursor: a move in the primary marks the same place in the other viewport
    window.view._on_mouse_moved(window.view.orient.mapToScene(QPointF(100, 50)))
    wf.grid.sync.cursor_moved(window.view, window.view.orient.mapToScene(QPointF(100, 50)))
    assert wf.grid.sync.marker_position(other.view) == pytest.approx((100, 50))
    # sync off: the other viewport keeps its window and zoom
    window.actions["sync"].trigger()
    assert not wf.grid.sync.sync_view
    before = other.view.current_window()[:2], other.view.zoom()
    mouse_drag(w, c, c + QPointF(-80, 10), Qt.MouseButton.RightButton)
    window.view.zoom_by(1.5)
    assert (other.view.current_window()[:2], other.view.zoom()) == before
    assert window.view.current_window()[:2] != before[0]


def test_prior_hangs_left_with_dates_and_interval(qtbot, window, sample):
    window.open_paths([str(sample)])
    image = wait_for_image(qtbot, window)
    assert image.path == str(sample / "IM0001_CR.dcm")  # the current study is read first
    grid = window.workflow.grid
    left, right = grid.visible_viewports()
    assert grid.layout_name == "1x2" and right is grid.primary
    qtbot.waitUntil(lambda: left.view.image is not None, timeout=20000)
    assert left.view.image.path == str(sample / PRIOR_FILE)
    assert left.title.text() == "Prior 2023-10-02, 3 months earlier"
    assert right.title.text() == "Current 2024-01-01"
    assert "Prior 2023-10-02, 3 months earlier" in window.workflow.comparison_label.text()
    # compare off: back to one viewport
    window.actions["compare_prior"].trigger()
    assert grid.layout_name == "1x1"


def test_undated_pngs_open_without_a_prior(qtbot, window, tmp_path):
    a, b = _gradient(tmp_path, "a.png"), _gradient(tmp_path, "b.png")
    window.open_paths([str(a), str(b)])
    wait_for_image(qtbot, window)
    assert window.workflow.prior is None and window.workflow.grid.layout_name == "1x1"


def test_worklist_sort_next_unread_and_read_state_persist(qtbot, window, tmp_path):
    from cxr_viewer.inference.results import FindingScore, Prediction
    from cxr_viewer.worklist import ReadState

    folder = tmp_path / "worklist"
    folder.mkdir()
    paths = [str(_gradient(folder, f"{n}.png")) for n in ("a", "b", "c")]
    window.open_paths([str(folder)])  # a scanned folder: each PNG its own study
    wait_for_image(qtbot, window, paths[0])
    wf = window.workflow
    # analysed scores (as the background pass records them): b most abnormal, c next
    for p, prob in zip(paths, (0.1, 0.9, 0.6), strict=True):
        wf.predictions[p] = Prediction("x", "m", "1", "", (FindingScore("Nodule/Mass", prob, 0.5,
                                                                        prob >= 0.5),))
    window.actions["sort_worklist"].trigger()
    assert window.browser.image_paths() == [paths[1], paths[2], paths[0]]
    tree = window.browser.tree
    assert tree.topLevelItem(0).text(1) == "90%  1 flag"
    window.actions["next_unread"].trigger()
    wait_for_image(qtbot, window, paths[1])
    window.actions["next_unread"].trigger()
    wait_for_image(qtbot, window, paths[2])
    state_path = wf.read_state.path
    keys = {e.study_key for e in window.browser._entries.values()}
    assert ReadState(state_path).keys() == keys  # all three read, on disk
    window.actions["toggle_read"].trigger()  # c back to unread
    assert not ReadState(state_path).is_read(window.browser._entries[paths[2]].study_key)
    assert tree.topLevelItem(1).font(0).bold()  # unread is bold


def test_background_pass_scores_every_study_and_cancel_stops_it(qtbot, window, sample, tmp_path):
    """A real (tiny) model on the one TensorFlow thread: the pass analyses the prior and the
    current study, the browser shows their scores, the change column fills; Cancel empties the
    queue."""
    from tests.inference_testkit import cam_model, vindr_card, write_bundle

    bundle = write_bundle(tmp_path / "bundle", cam_model(48), vindr_card(48))
    with qtbot.waitSignal(window.analysis.modelLoaded, timeout=120000):
        window.load_model(str(bundle))
    window.open_paths([str(sample)])
    wait_for_image(qtbot, window, sample / "IM0001_CR.dcm")
    wf = window.workflow
    window.actions["worklist_pass"].trigger()
    qtbot.waitUntil(lambda: wf.pass_pending() == 0 and window.prediction is not None,
                    timeout=120000)
    prior, current = str(sample / PRIOR_FILE), str(sample / "IM0001_CR.dcm")
    assert prior in wf.predictions and current in wf.predictions and not wf.failures
    texts = [window.browser.tree.topLevelItem(i).text(1) for i in range(2)]
    assert all(t.split("%")[0].isdigit() for t in texts), texts
    qtbot.waitUntil(lambda: wf.comparison.rowCount() > 0, timeout=20000)
    assert set(wf.comparison.changes().values()) <= {"new flag", "resolved", "up", "down",
                                                    "same", ""}
    assert "analysed" in wf.pass_label.text()
    # the export carries the comparison, without the prior's date (de-identified by default)
    request = window.export_request()
    assert request.comparison == tuple(wf.comparison.rows)
    assert request.comparison_caption == "Prior, 3 months earlier"
    # cancel: queued work is dropped, nothing more is analysed
    wf.predictions.pop(prior)
    wf.predictions.pop(str(sample / "IM0002_DX.dcm"), None)
    wf.start_pass()
    queued = wf.pass_pending()
    assert queued >= 1
    wf.cancel_pass()
    assert wf._queue == [] and "cancelled" in wf.pass_label.text()
    qtbot.waitUntil(lambda: wf.pass_pending() == 0, timeout=60000)


def test_a_file_dropped_on_a_viewport_shows_there(qtbot, window, tmp_path):
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    a, b = _gradient(tmp_path, "a.png"), _gradient(tmp_path, "b.png", (220, 330))
    window.open_paths([str(a)])
    wait_for_image(qtbot, window, a)
    window.actions["layout_1x2"].trigger()
    target = window.workflow.grid.visible_viewports()[1]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(b))])
    w = target.view.glw.viewport()
    pos = QPointF(w.width() / 2, w.height() / 2).toPoint()
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(w, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(w.width() / 2, w.height() / 2), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(w, drop)
    qtbot.waitUntil(lambda: target.view.image is not None, timeout=20000)
    assert target.view.image.path == str(b) and target.view.image.shape == (220, 330)
    assert window.current_image.path == str(a)  # the image being read stays
    assert window.workflow.grid.active is target


def test_view_keys_act_on_the_active_viewport(qtbot, window, tmp_path):
    a, b = _gradient(tmp_path, "a.png"), _gradient(tmp_path, "b.png")
    window.open_paths([str(a)])
    wait_for_image(qtbot, window, a)
    wf = window.workflow
    window.actions["layout_1x2"].trigger()
    second = wf.grid.visible_viewports()[1]
    wf.load_into(second, str(b))
    qtbot.waitUntil(lambda: second.view.image is not None, timeout=20000)
    window.actions["sync"].trigger()  # off: only the active viewport may change
    wf.grid.set_active(second)
    zoom_primary, zoom_second = window.view.zoom(), second.view.zoom()
    window.actions["zoom_in"].trigger()
    window.actions["invert"].trigger()
    assert second.view.zoom() == pytest.approx(zoom_second * 1.25, rel=0.02)
    assert second.view.invert and not window.view.invert
    assert window.view.zoom() == pytest.approx(zoom_primary)
    wf.grid.set_active(wf.grid.primary)
    window.actions["zoom_in"].trigger()
    assert window.view.zoom() == pytest.approx(zoom_primary * 1.25, rel=0.02)


def test_prefetch_fills_the_memory_bounded_cache_and_the_limit_is_a_setting(qtbot, window,
                                                                            tmp_path):
    folder = tmp_path / "studies"
    folder.mkdir()
    paths = [str(_gradient(folder, f"{n}.png")) for n in ("a", "b", "c", "d")]
    window.open_paths([str(folder)])
    wait_for_image(qtbot, window, paths[0])
    cache = window.cache
    assert cache.max_bytes == 1024 << 20  # default 1 GB
    # the next studies are decoded in the background while the first is read (thumbnails
    # load through the same cache: let them finish, then start from an empty cache)
    qtbot.waitUntil(lambda: not window.runner.busy(), timeout=20000)
    cache.clear()
    assert window.workflow.prefetch_paths() == paths[1:3]
    window.workflow.prefetch()
    qtbot.waitUntil(lambda: paths[1] in cache and paths[2] in cache, timeout=20000)
    assert paths[3] not in cache and paths[0] not in cache
    window.workflow.set_cache_limit_mb(64)
    assert cache.max_bytes == 64 << 20 and int(window.settings.value("prefetch/limit_mb")) == 64


def test_default_start_opens_the_sample_with_its_prior(qtbot, window, tmp_path, monkeypatch):
    """`make run` (no path): the sample folder is scanned, so its prior study hangs beside it."""
    from cxr_viewer.ui.app import default_paths

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a fresh generated sample
    paths = default_paths()
    assert len(paths) == 1 and Path(paths[0]).is_dir()
    window.open_paths(paths)
    wait_for_image(qtbot, window, Path(paths[0]) / "IM0001_CR.dcm", timeout=30000)
    left = window.workflow.grid.visible_viewports()[0]
    qtbot.waitUntil(lambda: left.view.image is not None, timeout=20000)
    assert left.view.image.path == str(Path(paths[0]) / PRIOR_FILE)
