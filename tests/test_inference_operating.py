"""Cards with calibration, operating modes and the Abnormal score; older cards without them."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from cxr_viewer.errors import ModelError
from cxr_viewer.inference.bundle import card_preset_seed_h5
from cxr_viewer.inference.card import ModelCard
from cxr_viewer.inference.operating import NO_OPERATING_POINTS_NOTE
from cxr_viewer.inference.predict import build_prediction
from tests.inference_testkit import vindr_card

OLD_CARD = Path(__file__).parent / "data" / "model-card-1.1.0.json"


def operating_card() -> ModelCard:
    """Cardiomegaly, Pleural effusion, No finding; effusion calibrated with a = 2, b = -1."""
    card = vindr_card(findings=("Cardiomegaly", "Pleural effusion"), thresholds=(0.5, 0.5),
                      no_finding=True)
    ops = {
        "high-sensitivity": {"target_specificity": 0.8,
                             "thresholds": {"Cardiomegaly": 0.2, "Pleural effusion": 0.1,
                                            "No finding": 0.5}},
        "balanced": {"target_specificity": 0.9,
                     "thresholds": {"Cardiomegaly": 0.4, "Pleural effusion": 0.3,
                                    "No finding": 0.5}},
        "high-specificity": {"target_specificity": 0.95,
                             "thresholds": {"Cardiomegaly": 0.6, "Pleural effusion": 0.5,
                                            "No finding": 0.5}},
    }
    return dataclasses.replace(
        card,
        calibration={"Pleural effusion": [2.0, -1.0], "Cardiomegaly": [1.0, 0.0],
                     "No finding": [1.0, 0.0]},
        operating_points=ops,
        abnormal={"source": "1 - No finding",
                  "thresholds": {"high-sensitivity": 0.3, "balanced": 0.5,
                                 "high-specificity": 0.7}},
    )


def test_calibrated_probabilities_and_mode_thresholds() -> None:
    card = operating_card()
    # effusion raw 0.5 -> sigmoid(2 * 0 - 1) = 0.268941
    pred = build_prediction(card, np.array([0.45, 0.5, 0.4]), "x")
    eff = pred.score("Pleural effusion")
    assert eff.probability == pytest.approx(1 / (1 + math.e))
    assert pred.mode == "balanced" and pred.calibrated and pred.operating_note == ""
    assert eff.threshold == 0.3 and not eff.flagged
    assert pred.score("Cardiomegaly").flagged  # 0.45 >= 0.4
    assert pred.abnormal == pytest.approx(0.6) and pred.no_finding == pytest.approx(0.4)
    assert pred.abnormal_threshold == 0.5 and pred.abnormal_flagged
    sens = build_prediction(card, np.array([0.45, 0.5, 0.4]), "x", mode="high-sensitivity")
    assert sens.mode == "high-sensitivity" and sens.score("Pleural effusion").flagged
    spec = build_prediction(card, np.array([0.45, 0.5, 0.4]), "x", mode="high-specificity")
    assert [s.finding for s in spec.flagged()] == [] and spec.abnormal_flagged is False
    with pytest.raises(ValueError, match="unknown operating mode"):
        build_prediction(card, np.array([0.45, 0.5, 0.4]), "x", mode="paranoid")


def test_card_round_trip_keeps_operating_fields(tmp_path: Path) -> None:
    card = operating_card()
    card.save(tmp_path / "model.json")
    again = ModelCard.load(tmp_path / "model.json")
    assert again.calibration == card.calibration
    assert again.operating_points == card.operating_points
    assert again.abnormal == card.abnormal and again.default_mode == "balanced"
    assert again.thresholds("high-specificity")[:2] == [0.6, 0.5]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"calibration": {"Pleural effusion": [-1.0, 0.0]}}, "a > 0"),
        ({"calibration": {"Edema": [1.0, 0.0]}}, "unknown output"),
        ({"operating_points": {"paranoid": {"thresholds": {}}}}, "unknown operating mode"),
        ({"operating_points": {"balanced": {"thresholds": {"Cardiomegaly": 1.5}}}},
         "outside"),
        ({"default_mode": "high-sensitivity",
          "operating_points": {"balanced": {"thresholds": {"Cardiomegaly": 0.5}}}},
         "default mode"),
    ],
)
def test_bad_operating_fields_are_refused(tmp_path: Path, change, message) -> None:
    d = operating_card().to_dict()
    d.update(change)
    with pytest.raises(ModelError, match=message):
        ModelCard.from_dict(d)


def test_old_1_1_0_card_loads_without_operating_points() -> None:
    """The 1.1.0 card format: 15 outputs, Youden thresholds, no calibration, no No-finding."""
    card = ModelCard.load(OLD_CARD)
    raw = json.loads(OLD_CARD.read_text())
    assert "operating_points" not in raw and "calibration" not in raw
    assert card.version == "1.1.0" and not card.has_operating_points
    assert card.operating_note == NO_OPERATING_POINTS_NOTE
    probs = np.linspace(0.05, 0.95, len(card.labels))
    pred = build_prediction(card, probs, "old", mode="high-specificity")  # mode ignored
    assert pred.mode is None and not pred.calibrated
    assert pred.abnormal is None and pred.abnormal_flagged is None  # no No-finding output
    assert pred.operating_note == NO_OPERATING_POINTS_NOTE
    cardio = pred.score("Cardiomegaly")
    j = [lab.name for lab in card.labels].index("Cardiomegaly")
    assert cardio.probability == pytest.approx(probs[j])  # uncalibrated, as output
    assert cardio.threshold == pytest.approx(raw["labels"][j]["threshold"])  # the card's own


def test_seed_h5_preset_has_abnormal_but_fixed_thresholds() -> None:
    card = card_preset_seed_h5()
    probs = np.full(15, 0.2)
    probs[14] = 0.9  # No finding
    pred = build_prediction(card, probs, "seed")
    assert pred.abnormal == pytest.approx(0.1) and pred.abnormal_threshold is None
    assert pred.mode is None and pred.operating_note
    assert all(s.threshold == 0.5 for s in pred.scores)


def test_tta_copies_by_hand() -> None:
    from cxr_viewer.inference.predict import average_tta, tta_batch

    x = np.zeros((1, 10, 10, 1), np.float32)
    x[0, 5, 2, 0] = 1.0
    copies = tta_batch(x, [[1.0, 0.0, 0.0], [1.0, 0.1, 0.0], [1.0, 0.0, -0.2]])
    assert copies.shape == (3, 10, 10, 1) and copies.dtype == np.float32
    np.testing.assert_array_equal(copies[0], x[0])  # the identity copy is the input
    assert copies[1, 5, 3, 0] == pytest.approx(1.0)  # dx 0.1 of 10 px: one pixel right
    assert copies[2, 3, 2, 0] == pytest.approx(1.0)  # dy -0.2: two pixels up
    # logits 0 and 1 average to 0.5 -> sigmoid(0.5)
    p = average_tta(np.array([[0.5], [1 / (1 + math.exp(-1))]]))
    assert p[0] == pytest.approx(1 / (1 + math.exp(-0.5)))


def test_apply_mode_reflags_without_the_model() -> None:
    from cxr_viewer.inference.predict import apply_mode

    card = operating_card()
    pred = build_prediction(card, np.array([0.45, 0.5, 0.4]), "x")
    again = apply_mode(card, pred, "high-sensitivity")
    direct = build_prediction(card, np.array([0.45, 0.5, 0.4]), "x", mode="high-sensitivity")
    assert again == direct
    assert apply_mode(card, again, "balanced") == pred
    old = ModelCard.load(OLD_CARD)
    old_pred = build_prediction(old, np.full(len(old.labels), 0.3), "y")
    assert apply_mode(old, old_pred, "high-specificity") is old_pred


def test_abnormal_score_is_platt_scaled_when_the_card_says_so() -> None:
    card = operating_card()
    card = dataclasses.replace(card, abnormal={**card.abnormal, "calibration": [2.0, 1.0]})
    pred = build_prediction(card, np.array([0.45, 0.5, 0.5]), "x")
    # 1 - P(No finding) = 0.5 -> sigmoid(2 * 0 + 1)
    assert pred.abnormal == pytest.approx(1 / (1 + math.exp(-1)))
    maxed = dataclasses.replace(card, abnormal={"source": "max scored finding",
                                                "calibration": [1.0, 0.0]})
    # max over the scored findings' calibrated probabilities: Cardiomegaly 0.45 vs effusion 0.27
    assert build_prediction(maxed, np.array([0.45, 0.5, 0.5]), "x").abnormal == pytest.approx(0.45)
    bad = operating_card().to_dict()
    bad["abnormal"] = {"source": "1 - No finding", "calibration": [0.0, 1.0]}
    with pytest.raises(ModelError, match="abnormal calibration"):
        ModelCard.from_dict(bad)
