"""The window's wiring to the AI controller (signals carrying real Prediction / CamResult
objects) and to the export composition (what is exported is what is displayed)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from cxr_viewer.imaging.heatmap import render_overlay
from cxr_viewer.imaging.render import render_display
from cxr_viewer.inference.findings import VINDR_FINDINGS
from cxr_viewer.inference.results import CamResult, FindingScore, Prediction
from cxr_viewer.ui.viewstate import orient_array
from tests.ui_fixtures import *  # noqa: F403 - fixtures
from tests.ui_fixtures import CORPUS_FILES, wait_for_image

pytestmark = pytest.mark.gui


def _prediction(image_id: str, top: str = "Cardiomegaly") -> Prediction:
    scores = tuple(
        FindingScore(f, 0.9 if f == top else 0.05 * (i % 5), 0.5, f == top)
        for i, f in enumerate(VINDR_FINDINGS))
    return Prediction(image_id, "test-model", "0", "ab" * 32, scores, no_finding=0.1)


def _cams(image_id: str, shape: tuple[int, int]) -> CamResult:
    rows, cols = shape
    yy, xx = np.mgrid[0:rows, 0:cols]
    peak = np.exp(-(((yy - rows * 0.7) / (rows / 6)) ** 2 + ((xx - cols * 0.3) / (cols / 6)) ** 2))
    maps = {f: peak.astype(np.float32) for f in VINDR_FINDINGS}
    return CamResult(image_id, "gradcam", maps)


@pytest.fixture
def shown(qtbot, window, corpus_dir):
    path = corpus_dir / "corpus" / CORPUS_FILES["two_windows"]
    window.open_paths([str(path)])
    return wait_for_image(qtbot, window, path)


def test_results_for_the_current_image_reach_panel_and_overlay(qtbot, window, shown):
    if window.analysis is None:
        pytest.fail("cxr_viewer.ui.analysis is present in this tree but was not wired")
    pred = _prediction(shown.image_id)
    window.analysis.predictionReady.emit(pred)
    assert window.prediction is pred
    cams = _cams(shown.image_id, shown.shape)
    window.analysis.camsReady.emit(cams)
    assert window.cams is cams
    assert not window.view.heatmap_visible()
    qtbot.keyClick(window, Qt.Key.Key_H)  # the top-ranked finding's heat map
    assert window.view.heatmap_visible()
    ov = window.overlay
    assert ov.finding == "Cardiomegaly"
    # drawn as it should be read: the map times min(1, probability / threshold); flagged at
    # 90 % with a 50 % threshold, that is full strength
    expected = render_overlay(cams.maps["Cardiomegaly"], ov, 1.0)
    assert np.array_equal(window.view.heat_rgba, expected)
    legend = window.view.heat_legend
    assert legend["title"] == "Cardiomegaly  90%  FLAG" and "threshold 50%" in legend["detail"]
    assert window.view.legend.isVisible() and window.view.legend_bar.pixmap() is not None
    assert window.view.heat_item.opacity() == pytest.approx(ov.opacity)
    assert "Heat map: Cardiomegaly" in window.view.annotation_texts()["bl"]
    # the overlay sits on the image: same size, same orientation group
    assert window.view.heat_item.parentItem() is window.view.orient
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert not window.view.heatmap_visible()
    if window.has_findings_panel:  # clicking a finding shows its map; the controls act
        cams.maps["Pleural effusion"][:] = 0.0
        cams.maps["Pleural effusion"][:10, :10] = 1.0
        window.findings_panel.select_finding("Pleural effusion")
        # below its threshold: not drawn, and the view says so
        assert not window.view.heatmap_visible() and window.overlay.finding == "Pleural effusion"
        assert "below the threshold 50%" in window.view.heat_legend["note"]
        window.findings_panel.below_check.setChecked(True)  # asked for: drawn
        # another below-threshold finding (15 %, threshold 50 %): faded to 15 / 50
        window.findings_panel.select_finding("Nodule/Mass")
        p = pred.score("Nodule/Mass").probability
        faded = render_overlay(cams.maps["Nodule/Mass"], window.overlay, p / 0.5)
        assert 0 < p < 0.5 and np.array_equal(window.view.heat_rgba, faded)
        assert not np.array_equal(faded, expected)
        window.findings_panel.select_finding("Pleural effusion")
        window.findings_panel.scale_check.setChecked(False)
        assert window.view.heatmap_visible()
        assert window.view.heat_rgba[5, 5, 3] == 255 and window.view.heat_rgba[50, 50, 3] == 0
        window.findings_panel.opacity_slider.setValue(70)
        assert window.view.heat_item.opacity() == pytest.approx(0.7)


def test_results_for_another_image_are_dropped(qtbot, window, shown):
    window.analysis.predictionReady.emit(_prediction("some-other-image"))
    window.analysis.camsReady.emit(_cams("some-other-image", shown.shape))
    assert window.prediction is None and window.cams is None
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert not window.view.heatmap_visible()


def test_export_request_matches_what_is_displayed(qtbot, window, shown):
    from cxr_viewer.export.annotated import compose_annotated_layout

    qtbot.keyClick(window, Qt.Key.Key_2)  # second header window
    qtbot.keyClick(window, Qt.Key.Key_I)
    qtbot.keyClick(window, Qt.Key.Key_R)
    qtbot.keyClick(window, Qt.Key.Key_H, Qt.KeyboardModifier.ShiftModifier)
    window.view.add_measurement(10, 10, 10, 60)
    request = window.export_request()
    assert request.invert and request.voi == window.view.voi
    assert request.measurements[0][:4] == (10, 10, 10, 60)
    request = type(request)(**{**request.__dict__, "measurements": ()})  # pixels only
    layout = compose_annotated_layout(request)
    x0, y0, x1, y1 = layout.image_box
    exported = layout.rgb[y0:y1, x0:x1, 0]
    on_screen = orient_array(render_display(shown, window.view.voi, invert=True, overlays=True),
                             window.view.orientation)
    assert exported.shape == on_screen.shape
    assert np.array_equal(exported, on_screen)
