"""FindingsPanel: ranked findings, greyed not-scored ones, selection and heat-map controls."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from cxr_viewer.imaging.heatmap import OverlaySettings
from cxr_viewer.inference.findings import VINDR_FINDINGS
from cxr_viewer.inference.gradcam import SALIENCY_FALLBACK_NOTE
from cxr_viewer.inference.predict import build_prediction
from cxr_viewer.inference.results import CamResult
from cxr_viewer.ui.findings_panel import DISCLAIMER, NOT_SCORED, FindingsPanel
from tests.inference_testkit import vindr_card

pytestmark = pytest.mark.gui

SCORED = ("Cardiomegaly", "Pleural effusion", "Nodule/Mass", "Atelectasis")


@pytest.fixture
def card():
    return vindr_card(findings=SCORED, thresholds=(0.5, 0.3, 0.9, 0.5), no_finding=True)


@pytest.fixture
def panel(qtbot, card):
    widget = FindingsPanel()
    qtbot.addWidget(widget)
    widget.resize(320, 700)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_card(card)
    return widget


def _prediction(card, probs=(0.62, 0.35, 0.2, 0.05, 0.4)):
    return build_prediction(card, np.array(probs), "image-1")


def test_header_and_not_scored_findings(panel, card):
    assert panel.model_label.text() == "Tiny test model 0.0.1"
    assert panel.disclaimer_label.text() == DISCLAIMER and panel.disclaimer_label.isVisible()
    assert panel.no_finding_label.isVisible()
    for finding in VINDR_FINDINGS:
        row = panel.rows[finding]
        if finding in SCORED:
            assert row.isEnabled() and row.value_label.text() == "-"
        else:
            assert not row.isEnabled() and row.not_scored_label.text() == NOT_SCORED
            assert row.not_scored_label.isVisible() and not row.bar.isVisible()
    # scored first (VinDr order), then the rest
    assert panel.ranked_findings()[:4] == [f for f in VINDR_FINDINGS if f in SCORED]


def test_prediction_is_ranked_with_bars_percentages_and_flags(panel, card, qtbot):
    panel.show_prediction(_prediction(card))
    order = panel.ranked_findings()
    assert order[:4] == ["Cardiomegaly", "Pleural effusion", "Nodule/Mass", "Atelectasis"]
    assert set(order[4:]) == set(VINDR_FINDINGS) - set(SCORED)
    cardio, effusion, nodule = (panel.rows[f] for f in SCORED[:3])
    assert cardio.value_label.text() == "62%" and cardio.bar.value() == 620
    assert cardio.flag_label.text() == "FLAG"  # 0.62 >= 0.5
    assert effusion.flag_label.text() == "FLAG"  # 0.35 >= 0.3
    assert nodule.flag_label.text() == ""  # 0.2 < 0.9
    assert panel.no_finding_label.text() == "No finding: 40%"
    assert panel.rows["Pneumothorax"].not_scored_label.isVisible()
    assert panel.disclaimer_label.isVisible()
    # the layout really shows them in that order, top to bottom
    def top_to_bottom() -> bool:
        ys = [panel.rows[f].y() for f in order[:4]]
        return ys == sorted(ys) and len(set(ys)) == 4

    qtbot.waitUntil(top_to_bottom, timeout=2000)


def test_top_finding_is_preselected_without_forcing_the_overlay(panel, card, qtbot):
    with qtbot.assertNotEmitted(panel.findingSelected):
        with qtbot.waitSignal(panel.overlayChanged) as blocker:
            panel.show_prediction(_prediction(card))
    settings = blocker.args[0]
    assert settings.finding == "Cardiomegaly" and settings.visible is False
    assert panel.selected_finding == "Cardiomegaly"


def test_the_flagged_finding_is_preselected_over_a_more_probable_unflagged_one(panel, card):
    """Nodule/Mass 70 % is below its 90 % threshold, Pleural effusion 35 % is above its 30 %:
    the heat map's default subject is the flagged effusion, not the top of the list."""
    pred = _prediction(card, probs=(0.2, 0.35, 0.7, 0.05, 0.4))
    assert [s.finding for s in pred.ranked()][:2] == ["Nodule/Mass", "Pleural effusion"]
    assert [s.finding for s in pred.flagged()] == ["Pleural effusion"]
    assert pred.heatmap_subject() == "Pleural effusion"
    panel.show_prediction(pred)
    assert panel.selected_finding == "Pleural effusion"
    # without any flag, the most probable finding is the subject
    quiet = _prediction(card, probs=(0.2, 0.1, 0.7, 0.05, 0.4))
    assert quiet.flagged() == [] and quiet.heatmap_subject() == "Nodule/Mass"
    panel.show_prediction(quiet)
    assert panel.selected_finding == "Nodule/Mass"


def test_click_selects_a_finding_and_shows_its_heat_map(panel, card, qtbot):
    panel.show_prediction(_prediction(card))
    row = panel.rows["Nodule/Mass"]
    seen = []
    panel.findingSelected.connect(lambda f: seen.append(("selected", f)))
    panel.overlayChanged.connect(lambda s: seen.append(("overlay", s)))
    with qtbot.waitSignals([panel.findingSelected, panel.overlayChanged], order="strict"):
        qtbot.mouseClick(row, Qt.MouseButton.LeftButton)
    assert [kind for kind, _ in seen] == ["selected", "overlay"]
    assert seen[0][1] == "Nodule/Mass"
    settings = seen[1][1]
    assert settings.finding == "Nodule/Mass" and settings.visible is True
    assert row.selected and not panel.rows["Cardiomegaly"].selected
    with qtbot.assertNotEmitted(panel.findingSelected):
        qtbot.mouseClick(panel.rows["Pneumothorax"], Qt.MouseButton.LeftButton)  # not scored
    assert panel.selected_finding == "Nodule/Mass"


def test_controls_emit_overlay_settings(panel, qtbot):
    with qtbot.waitSignal(panel.overlayChanged) as b:
        panel.opacity_slider.setValue(70)
    assert b.args[0].opacity == pytest.approx(0.7)
    with qtbot.waitSignal(panel.overlayChanged) as b:
        panel.threshold_slider.setValue(35)
    assert b.args[0].threshold == pytest.approx(0.35)
    with qtbot.waitSignal(panel.overlayChanged) as b:
        panel.colormap_combo.setCurrentIndex(panel.colormap_combo.findData("inferno"))
    assert b.args[0].colormap == "inferno"
    with qtbot.waitSignal(panel.overlayChanged) as b:
        panel.method_combo.setCurrentIndex(panel.method_combo.findData("scorecam"))
    assert b.args[0].method == "scorecam"
    with qtbot.waitSignal(panel.overlayChanged) as b:
        panel.toggle_overlay()
    assert b.args[0].visible is True
    assert panel.opacity_value.text() == "70%"


def test_set_overlay_syncs_controls_silently(panel, qtbot):
    wanted = OverlaySettings(visible=True, finding="Atelectasis", opacity=0.25,
                             colormap="viridis", threshold=0.1, method="gradcam++")
    with qtbot.assertNotEmitted(panel.overlayChanged):
        panel.set_overlay(wanted)
    assert panel.overlay_settings() == wanted


def test_saliency_fallback_is_said(panel):
    panel.show_cams(CamResult("image-1", "saliency", {}, note=SALIENCY_FALLBACK_NOTE))
    assert panel.cam_note_label.isVisible()
    assert "not Grad-CAM" in panel.cam_note_label.text()
    panel.clear()
    assert not panel.cam_note_label.isVisible()


def test_card_without_no_finding_hides_it(panel):
    panel.set_card(vindr_card(findings=("ILD",)))
    assert not panel.no_finding_label.isVisible()
    assert panel.rows["ILD"].isEnabled() and not panel.rows["Cardiomegaly"].isEnabled()


def test_applicability_warnings_are_shown_with_the_prediction(panel, card):
    from dataclasses import replace

    pred = replace(_prediction(card), warnings=("body part not stated: the model assumes a "
                                                "chest radiograph",))
    panel.show_prediction(pred)
    assert not panel.warning_label.isHidden()
    assert panel.warning_label.text() == (
        "Caution: body part not stated: the model assumes a chest radiograph")
    panel.clear()
    assert panel.warning_label.isHidden()
    panel.show_prediction(_prediction(card))
    assert panel.warning_label.isHidden()
