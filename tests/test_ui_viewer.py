"""The viewer window driven through its real widgets (pytest-qt, offscreen)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt

from cxr_viewer.imaging.presets import AutoWindow, HeaderWindow, default_preset
from cxr_viewer.imaging.render import render_display
from cxr_viewer.imaging.window import VOI
from cxr_viewer.ui.viewstate import Orientation, orient_array, wl_step
from tests.ui_fixtures import *  # noqa: F403 - fixtures
from tests.ui_fixtures import CORPUS_FILES, mouse_drag, wait_for_image, write_png

pytestmark = pytest.mark.gui


def corpus_file(corpus_dir, key: str) -> str:
    return str(corpus_dir / "corpus" / CORPUS_FILES[key])


def open_one(qtbot, win, path):
    win.open_paths([str(path)])
    return wait_for_image(qtbot, win, path)


def viewport(win):
    return win.view.glw.viewport()


def view_to_viewport(win, x: float, y: float) -> QPointF:
    """Image pixel coordinates (x = col, y = row) -> viewport widget coordinates."""
    scene = win.view.orient.mapToScene(QPointF(x, y))
    return QPointF(win.view.glw.mapFromScene(scene))


# --------------------------------------------------------------------------- opening
def test_open_corpus_file_shows_first_header_window(qtbot, window, corpus_dir):
    path = corpus_file(corpus_dir, "two_windows")
    image = open_one(qtbot, window, path)
    expected = render_display(image, HeaderWindow(0).resolve(image), overlays=True)
    assert np.array_equal(window.view.displayed, expected)
    assert window.view.preset_label == "WINDOW1"
    texts = window.view.annotation_texts()
    assert "W 790" in texts["bl"] and "L 450" in texts["bl"]
    assert "Sssssss" in texts["tl"]
    assert window.windowTitle().endswith("pydicom__examples_overlay.dcm (1/1)")
    # tag browser: the header is there, sequences expandable, searchable
    assert window.tags.find_items("Patient's Name")
    seq = window.tags.find_items("Referenced Image Sequence")[0]
    assert seq.text(2) == "SQ" and seq.childCount() >= 1
    assert seq.child(0).text(1) == "Item 1" and seq.child(0).childCount() > 0
    window.tags.search.setText("window center")
    visible = [it for it in window.tags.find_items("Window Center") if not it.isHidden()]
    assert visible
    assert window.tags.find_items("Patient's Name")[0].isHidden()
    # pixel readout in the status bar: stored value and modality value at a pixel
    text = window.view.readout(10, 20)
    stored = image.frames[0, 10, 20]
    assert "x 20  y 10" in text and f"stored {float(stored):g}" in text


def test_reading_notes_are_shown_not_silent(qtbot, window, corpus_dir):
    """What the reader tolerated (here GH177's CP-246 sequence) is listed first in the tag
    browser and said in the status bar; a file without notes shows no notes group."""
    path = corpus_dir / "corpus" / "fo-dicom__GH177_D_CLUNIE_CT1_IVRLE_BigEndian_undefined_length.dcm"
    image = open_one(qtbot, window, path)
    assert image.notes and any("CP-246" in n for n in image.notes)
    top = window.tags.tree.topLevelItem(0)
    assert top.text(0) == f"Reading notes ({len(image.notes)})" and top.isExpanded()
    assert top.isFirstColumnSpanned()
    assert [top.child(i).text(0) for i in range(top.childCount())] == list(image.notes)
    message = window.statusBar().currentMessage()
    assert message.startswith(f"{path.name}: {len(image.notes)} reading note")
    assert "CP-246" in message
    # the next image has no notes: no group, and the message is gone
    clean = open_one(qtbot, window, corpus_file(corpus_dir, "ct_small"))
    assert clean.notes == ()
    assert not window.tags.tree.topLevelItem(0).text(0).startswith("Reading notes")
    assert "reading note" not in window.statusBar().currentMessage()


def test_pixel_readout_has_units(qtbot, window, corpus_dir):
    image = open_one(qtbot, window, corpus_file(corpus_dir, "ct_small"))
    assert image.units == "HU"
    value = float(image.frames[0, 64, 64])
    assert window.view.readout(64, 64).endswith(f"value {value:g} HU")
    # hovering the viewport reports the pixel under the mouse
    qtbot.mouseMove(viewport(window), view_to_viewport(window, 64.5, 64.5).toPoint())
    qtbot.waitUntil(lambda: window.pixel_label.text().startswith("x 64  y 64"), timeout=3000)


def test_generated_sample_study_opens(qtbot, window):
    from cxr_viewer.io.sample import sample_study_dir

    folder = sample_study_dir()
    window.open_paths([str(folder)])
    image = wait_for_image(qtbot, window)
    paths = window.browser.image_paths()
    # the prior study (2023) first, then the current one, whose first image is read first
    # (reading workflow: its prior hangs beside it)
    assert len(paths) == 3 and "prior" in paths[0] and image.path == paths[1]
    qtbot.waitUntil(lambda: all(window.browser.has_thumbnail(p) for p in paths), timeout=20000)
    assert window.browser.problem_paths() == []
    window.actions["next_image"].trigger()
    second = wait_for_image(qtbot, window, paths[2])
    assert window.view.displayed.shape == second.shape


def test_folder_with_broken_file_opens_the_rest(qtbot, window, corpus_dir, tmp_path):
    folder = tmp_path / "study"
    (folder / "sub").mkdir(parents=True)
    good1 = folder / "a.dcm"
    good2 = folder / "sub" / "b.dcm"
    shutil.copy(corpus_file(corpus_dir, "mr_small"), good1)
    shutil.copy(corpus_file(corpus_dir, "two_windows"), good2)
    broken = folder / "broken.dcm"
    broken.write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage" * 10)
    reported = []
    window.problemsReported.connect(reported.extend)
    window.open_paths([str(folder)])
    wait_for_image(qtbot, window)
    qtbot.waitUntil(lambda: str(broken) in window.browser.problem_paths(), timeout=20000)
    shown = set(window.browser.image_paths())
    assert {str(good1), str(good2)} <= shown
    assert any(p == str(broken) and "broken.dcm" in r for p, r in reported)
    # the good files both open
    window.show_path(str(good2))
    wait_for_image(qtbot, window, good2)


def test_stale_load_is_dropped(qtbot, window, corpus_dir):
    a = corpus_file(corpus_dir, "two_windows")
    b = corpus_file(corpus_dir, "mr_small")
    window.open_paths([a, b])
    wait_for_image(qtbot, window, a)
    shown = []
    window.imageShown.connect(lambda img: shown.append(img.path))
    window.cache.clear()
    window.show_path(a)
    window.show_path(b)  # supersedes a before it can arrive
    wait_for_image(qtbot, window, b)
    qtbot.wait(200)
    assert shown == [b]


# --------------------------------------------------------------------------- window/level
def test_right_drag_changes_window_and_pixels_follow(qtbot, window, corpus_dir):
    image = open_one(qtbot, window, corpus_file(corpus_dir, "mr_small"))
    step = wl_step(float(image.frames.min()), float(image.frames.max()))
    assert window.view.wl_step == pytest.approx(step)
    c0, w0, _ = window.view.current_window()
    assert (c0, w0) == (600.0, 1600.0)
    vp = viewport(window)
    start = QPoint(vp.width() // 2, vp.height() // 2)
    dx, dy = 120, -60
    live = []

    def check_live(i):
        if i == 5:  # mid-drag: what is displayed is the live (region/step) render
            region, st = window.view.displayed_region
            r0, r1, c0_, c1 = region
            live.append(np.array_equal(
                window.view.displayed,
                render_display(image, window.view.voi, overlays=True)[r0:r1:st, c0_:c1:st]))

    mouse_drag(vp, start, start + QPoint(dx, dy), Qt.MouseButton.RightButton, steps=10,
               on_step=check_live)
    c, w, _ = window.view.current_window()
    assert w == pytest.approx(w0 + dx * step)
    assert c == pytest.approx(c0 + dy * step)
    assert live == [True]
    expected = render_display(image, VOI.window(c, w), overlays=True)
    assert np.array_equal(window.view.displayed, expected)
    assert window.view.displayed_region == ((0, 64, 0, 64), 1)
    assert f"W {w:g}" in window.wl_label.text()


def test_live_drag_renders_only_visible_region_at_screen_resolution(qtbot, window, tmp_path):
    ramp = np.arange(3000, dtype=np.uint16)
    big = (ramp[:, None] + ramp[None, :]) % 4096  # 16-bit, compresses fast
    path = write_png(tmp_path / "big.png", big)
    image = open_one(qtbot, window, path)
    window.view.zoom_by(1.0)  # fitted: ~3000 image px in < 800 screen px
    vp = viewport(window)
    start = QPoint(vp.width() // 2, vp.height() // 2)
    seen = []
    mouse_drag(vp, start, start + QPoint(40, 0), Qt.MouseButton.RightButton, steps=4,
               release=False, on_step=lambda i: seen.append(window.view.displayed_region))
    (r0, r1, c0, c1), step = seen[-1]
    assert step >= 3  # subsampled to screen resolution
    assert window.view.displayed.shape[0] * window.view.displayed.shape[1] < 1_000_000
    # after the drag stops, the full-resolution image comes back
    qtbot.waitUntil(lambda: window.view.displayed_region == ((0, 3000, 0, 3000), 1),
                    timeout=3000)
    assert window.view.displayed.shape == image.shape


def test_preset_keys_select_header_windows(qtbot, window, corpus_dir):
    image = open_one(qtbot, window, corpus_file(corpus_dir, "two_windows"))
    qtbot.keyClick(window, Qt.Key.Key_2)
    assert window.view.voi == HeaderWindow(1).resolve(image)
    assert (window.view.voi.center, window.view.voi.width) == (200.0, 443.0)
    assert window.view.preset_label == "WINDOW2"
    assert np.array_equal(window.view.displayed, render_display(image, HeaderWindow(1).resolve(image),
                                                                 overlays=True))
    qtbot.keyClick(window, Qt.Key.Key_3)
    assert window.view.voi == AutoWindow().resolve(image)
    qtbot.keyClick(window, Qt.Key.Key_1)
    assert window.view.preset_label == "WINDOW1"
    qtbot.keyClick(window, Qt.Key.Key_9)  # no 9th preset: nothing changes
    assert window.view.preset_label == "WINDOW1"


# --------------------------------------------------------------------------- geometry
def quadrant_image(tmp_path):
    a = np.zeros((100, 200), np.uint8)
    a[:50, :100], a[:50, 100:], a[50:, :100], a[50:, 100:] = 250, 170, 90, 10
    return write_png(tmp_path / "quadrants.png", a), np.array([[250, 170], [90, 10]])


def screen_quadrants(win) -> np.ndarray:
    """Grey levels on screen at the centres of the displayed image's four quadrants."""
    grab = win.view.glw.grab().toImage()
    rect = win.view.orient.mapRectToScene(QRectF(0, 0, win.view.image.shape[1],
                                                 win.view.image.shape[0]))
    rect = win.view.glw.mapFromScene(rect).boundingRect()
    dpr = grab.devicePixelRatio()
    out = np.zeros((2, 2), int)
    for i, fy in enumerate((0.25, 0.75)):
        for j, fx in enumerate((0.25, 0.75)):
            x = rect.left() + fx * rect.width()
            y = rect.top() + fy * rect.height()
            out[i, j] = grab.pixelColor(int(x * dpr), int(y * dpr)).red()
    return out


def test_invert_rotate_flip_act_on_what_is_displayed(qtbot, window, tmp_path):
    path, quads = quadrant_image(tmp_path)
    open_one(qtbot, window, path)
    window.view.set_voi(VOI.window(128, 256))  # identity window for 8-bit data
    assert np.abs(screen_quadrants(window) - quads).max() <= 1
    qtbot.keyClick(window, Qt.Key.Key_I)
    assert window.view.invert
    assert np.abs(screen_quadrants(window) - (255 - quads)).max() <= 1
    qtbot.keyClick(window, Qt.Key.Key_I)
    qtbot.keyClick(window, Qt.Key.Key_R)  # clockwise
    o = window.view.orientation
    assert o == Orientation(3, False, False)
    assert np.array_equal(screen_quadrants(window), np.rot90(quads, -1))
    # the rotated image is fitted: it is now taller than wide on screen
    rect = window.view.image_rect_in_view()
    assert rect.height() == pytest.approx(200) and rect.width() == pytest.approx(100)
    qtbot.keyClick(window, Qt.Key.Key_H, Qt.KeyboardModifier.ShiftModifier)  # flip horizontal
    assert np.array_equal(screen_quadrants(window), np.rot90(quads, -1)[:, ::-1])
    qtbot.keyClick(window, Qt.Key.Key_V)
    expected = orient_array(quads, window.view.orientation)
    assert np.array_equal(screen_quadrants(window), expected)
    assert np.array_equal(expected, np.rot90(quads, -1)[::-1, ::-1])
    qtbot.keyClick(window, Qt.Key.Key_L)
    assert np.array_equal(screen_quadrants(window),
                          orient_array(quads, window.view.orientation))
    qtbot.keyClick(window, Qt.Key.Key_Escape)  # reset view: orientation and default window
    assert window.view.orientation == Orientation()
    default = render_display(window.current_image,
                             default_preset(window.current_image).resolve(window.current_image),
                             overlays=True)
    assert np.array_equal(screen_quadrants(window), default[25::50, 50::100])


def test_zoom_fit_and_actual_size(qtbot, window, tmp_path):
    path, _ = quadrant_image(tmp_path)
    open_one(qtbot, window, path)
    vb = window.view.vb
    fitted = window.view.zoom()
    # fitted: the whole image is visible and fills one dimension of the view
    view = vb.viewRect()
    assert view.contains(QRectF(0, 0, 200, 100).adjusted(1, 1, -1, -1))
    assert min(view.width() / 200, view.height() / 100) == pytest.approx(1.0, rel=0.02)
    qtbot.keyClick(window, Qt.Key.Key_Plus)
    assert window.view.zoom() == pytest.approx(fitted * 1.25, rel=1e-3)
    assert vb.viewRect().width() == pytest.approx(view.width() / 1.25, rel=1e-3)
    qtbot.keyClick(window, Qt.Key.Key_Minus)
    qtbot.keyClick(window, Qt.Key.Key_Minus)
    assert window.view.zoom() == pytest.approx(fitted * 1.25 * 0.8 * 0.8, rel=1e-3)
    qtbot.keyClick(window, Qt.Key.Key_0)  # 1:1
    assert window.view.zoom() == pytest.approx(1.0, rel=1e-3)
    assert vb.viewRect().width() == pytest.approx(vb.width() * window.devicePixelRatioF(),
                                                  rel=1e-3)
    qtbot.keyClick(window, Qt.Key.Key_F)
    assert window.view.zoom() == pytest.approx(fitted, rel=1e-3)
    # mouse wheel zooms in
    from PySide6.QtCore import QPoint as _P
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    vp = viewport(window)
    pos = QPointF(vp.width() / 2, vp.height() / 2)
    ev = QWheelEvent(pos, QPointF(vp.mapToGlobal(pos.toPoint())), _P(0, 0), _P(0, 240),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                     Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(vp, ev)
    assert window.view.zoom() > fitted * 1.1
    # middle drag pans
    before = vb.viewRect().center()
    mouse_drag(vp, QPoint(300, 300), QPoint(350, 300), Qt.MouseButton.MiddleButton, steps=5)
    assert vb.viewRect().center().x() < before.x() - 1


# --------------------------------------------------------------------------- measurement
def test_measurement_in_mm_from_pixel_spacing(qtbot, window, corpus_dir):
    image = open_one(qtbot, window, corpus_file(corpus_dir, "mr_small"))
    assert image.spacing.source == "PixelSpacing" and image.spacing.row_mm == 0.3125
    m = window.view.add_measurement(10, 10, 10, 50)  # 40 px along a row
    assert m.mm == pytest.approx(12.5)
    assert window.measure_list.item(0).text() == "1. 12.5 mm"
    assert "PixelSpacing" in window.measure_spacing_label.text()
    # a measurement drawn with the mouse in measure mode
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert window.view.vb.left_mode == "measure"
    vp = viewport(window)
    p0, p1 = view_to_viewport(window, 5, 20), view_to_viewport(window, 55, 20)
    mouse_drag(vp, p0, p1, Qt.MouseButton.LeftButton, steps=8)
    assert len(window.view.measurements) == 2
    drawn = window.view.measurements[1]
    assert drawn.mm == pytest.approx(50 * 0.3125, abs=2 * 0.3125)  # within a screen pixel
    assert window.measure_list.count() == 2
    # deletable from the list (Del deletes the selected one)
    window.measure_list.setCurrentRow(0)
    qtbot.keyClick(window, Qt.Key.Key_Delete)
    assert [mm.mm for mm in window.view.measurements] == [drawn.mm]
    assert window.measure_list.count() == 1


def test_measurement_imager_spacing_and_uncalibrated(qtbot, window, corpus_dir, tmp_path):
    image = open_one(qtbot, window, corpus_file(corpus_dir, "imager_spacing"))
    assert image.spacing.source == "ImagerPixelSpacing"
    m = window.view.add_measurement(0, 0, 6, 8)  # 10 px diagonal
    assert m.mm == pytest.approx(1.0)
    assert "ImagerPixelSpacing" in window.measure_spacing_label.text()
    path, _ = quadrant_image(tmp_path)
    open_one(qtbot, window, path)
    assert window.view.measurements == []  # a new image starts clean
    m = window.view.add_measurement(0, 0, 30, 40)
    assert m.mm is None and m.text() == "50.0 px (uncalibrated)"
    assert "Uncalibrated" in window.measure_spacing_label.text()


# --------------------------------------------------------------------------- modes
def test_annotations_toggle_and_deidentified_mode(qtbot, window, corpus_dir):
    open_one(qtbot, window, corpus_file(corpus_dir, "two_windows"))
    label = window.view._corners["tl"]
    assert label.isVisible() and "Sssssss" in label.text()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not label.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert label.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert window.deidentified
    everything = " ".join(
        [lab.text() for lab in window.view._corners.values()] + window.tags.values()
        + [window.windowTitle()]
        + [window.browser.tree.topLevelItem(0).text(0)])
    for secret in ("Sssssss", "Jsssss", "021234567", "11111111", "examples_overlay"):
        assert secret not in everything


def test_settings_persist_in_the_isolated_file(qtbot, window, corpus_dir, isolated_settings):
    path = corpus_file(corpus_dir, "mr_small")
    open_one(qtbot, window, path)
    window.save_settings()
    ini = (isolated_settings / "cxr-viewer.ini").read_text()
    assert "pydicom__MR_small.dcm" in ini and "geometry" in ini
    from cxr_viewer.ui.settings import make_settings, recent_files

    assert recent_files(make_settings())[0] == path
    assert len(window.recent_menu.actions()) == 1


def test_shortcuts_are_unique_and_listed(qtbot, window):
    from PySide6.QtGui import QKeySequence

    from cxr_viewer.ui.shortcuts import SHORTCUTS, markdown_table

    keys = [QKeySequence(k).toString() for s in SHORTCUTS for k in s.keys]
    assert len(keys) == len(set(keys)), "two actions share a key"
    for s in SHORTCUTS:
        assert s.action in window.actions
        assert window.actions[s.action].shortcut() == QKeySequence(s.keys[0])
    window.actions["shortcuts"].trigger()
    table = window._shortcuts_dialog.table
    assert table.rowCount() >= len(SHORTCUTS)
    assert "`Shift+H`" in markdown_table()


def test_drop_files_onto_the_window_opens_them(qtbot, window, corpus_dir):
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    path = corpus_file(corpus_dir, "mr_small")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(path)])
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(QPoint(50, 50), *args)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(window, QDropEvent(QPointF(50, 50), *args))
    wait_for_image(qtbot, window, path)


def test_theme_choice_is_remembered(qtbot, window, isolated_settings):
    from cxr_viewer.ui.settings import make_settings

    window.set_theme("light")
    assert make_settings().value("theme") == "light"
    window.set_theme("dark")
    assert make_settings().value("theme") == "dark"


def test_multiframe_frames_step_with_keys(qtbot, window, corpus_dir):
    from cxr_viewer.imaging.presets import default_preset

    path = corpus_dir / "corpus" / "cornerstoneWADOImageLoader__CT0012.fragmented_no_bot_jpeg_baseline.51.dcm"
    image = open_one(qtbot, window, path)
    assert image.num_frames == 2
    voi = default_preset(image).resolve(image)
    assert "Frame 1/2" in window.view.annotation_texts()["br"]
    qtbot.keyClick(window, Qt.Key.Key_Period)
    assert window.view.frame == 1
    assert np.array_equal(window.view.displayed, render_display(image, voi, frame=1, overlays=True))
    qtbot.keyClick(window, Qt.Key.Key_Period)  # clamped at the last frame
    assert window.view.frame == 1 and "Frame 2/2" in window.view.annotation_texts()["br"]
    qtbot.keyClick(window, Qt.Key.Key_Comma)
    assert np.array_equal(window.view.displayed, render_display(image, voi, frame=0, overlays=True))


def test_readme_shortcut_table_matches_the_single_source():
    """README's table is generated by ``python -m cxr_viewer.ui.shortcuts``; keep them equal."""
    from pathlib import Path

    from cxr_viewer.ui.shortcuts import markdown_table

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme, (
        "README.md's keyboard-shortcut table is out of date: paste the output of "
        "`python -m cxr_viewer.ui.shortcuts`")
