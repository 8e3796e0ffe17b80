"""Findings panel and model 2.0 cards: Abnormal first, the operating-mode selector, and the
one-line note for cards without operating points."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cxr_viewer.inference.card import ModelCard
from cxr_viewer.inference.operating import NO_OPERATING_POINTS_NOTE
from cxr_viewer.inference.predict import apply_mode, build_prediction
from cxr_viewer.ui.findings_panel import FindingsPanel
from tests.inference_testkit import vindr_card
from tests.test_inference_operating import OLD_CARD, operating_card

pytestmark = pytest.mark.gui


@pytest.fixture
def panel(qtbot):
    widget = FindingsPanel()
    qtbot.addWidget(widget)
    widget.resize(320, 700)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_abnormal_first_and_mode_selector(panel, qtbot):
    card = operating_card()
    panel.set_card(card)
    assert panel.mode_row.isVisible() and not panel.operating_note_label.isVisible()
    assert panel.operating_mode() == "balanced"
    pred = build_prediction(card, np.array([0.45, 0.5, 0.4]), "x")
    panel.show_prediction(pred)
    assert panel.abnormal_label.isVisible()
    assert panel.abnormal_label.text() == "Abnormal: 60%  FLAG"
    layout = panel.header_layout
    assert layout.indexOf(panel.abnormal_label) < layout.indexOf(panel.summary_label)
    assert layout.indexOf(panel.abnormal_label) < layout.indexOf(panel.no_finding_label)
    assert panel.abnormal_label.y() < panel.rows["Cardiomegaly"].mapTo(panel, panel.rect().topLeft()).y()
    with qtbot.waitSignal(panel.modeChanged) as blocker:
        panel.mode_combo.setCurrentIndex(2)
    assert blocker.args == ["high-specificity"]
    panel.show_prediction(apply_mode(card, pred, "high-specificity"))
    assert panel.abnormal_label.text() == "Abnormal: 60%"  # 0.6 < 0.7: not flagged
    assert panel.rows["Cardiomegaly"].flag_label.text() == ""
    # restoring a saved mode does not emit
    with qtbot.assertNotEmitted(panel.modeChanged):
        panel.set_operating_mode("high-sensitivity")
    assert panel.operating_mode() == "high-sensitivity"
    panel.set_operating_mode("nonsense")
    assert panel.operating_mode() == "balanced"


def test_old_card_says_it_has_no_operating_points(panel):
    card = ModelCard.load(OLD_CARD)
    panel.set_card(card)
    assert not panel.mode_row.isVisible()
    assert panel.operating_note_label.isVisible()
    assert panel.operating_note_label.text() == NO_OPERATING_POINTS_NOTE
    panel.show_prediction(build_prediction(card, np.full(len(card.labels), 0.3), "y"))
    assert not panel.abnormal_label.isVisible()  # no No-finding output, no Abnormal


def test_no_finding_card_without_operating_points_shows_abnormal(panel):
    card = vindr_card(findings=("Cardiomegaly",), thresholds=(0.5,), no_finding=True)
    panel.set_card(dataclasses.replace(card))
    panel.show_prediction(build_prediction(card, np.array([0.2, 0.75]), "z"))
    assert panel.abnormal_label.text() == "Abnormal: 25%"
    assert panel.operating_note_label.isVisible() and not panel.mode_row.isVisible()
