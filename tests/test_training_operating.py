"""Operating points, Wilson intervals, Platt calibration and flags per normal radiograph,
against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cxr_viewer.inference.operating import apply_platt, logit
from cxr_viewer.training.evaluate_v2 import (
    abnormal_targets,
    fit_operating_points,
    flags_per_normal,
)
from cxr_viewer.training.labels import MODEL_LABEL_NAMES, NO_FINDING_INDEX, SCORED_INDICES
from cxr_viewer.training.operating import (
    fit_platt,
    sens_spec_counts,
    sensitivity_at_specificity,
    threshold_for_specificity,
    wilson_interval,
)


def test_threshold_for_specificity_by_hand() -> None:
    neg = np.arange(1, 11) / 10  # 0.1 ... 1.0
    y = np.zeros(10)
    # 90% of 10 negatives = 9 below the threshold: halfway between the 9th (0.9) and 10th (1.0)
    assert threshold_for_specificity(y, neg, 0.90) == pytest.approx(0.95)
    assert threshold_for_specificity(y, neg, 0.80) == pytest.approx(0.85)
    # positives do not move it
    y2, p2 = np.r_[y, [1, 1]], np.r_[neg, [0.05, 0.99]]
    assert threshold_for_specificity(y2, p2, 0.90) == pytest.approx(0.95)
    # 100%: above the largest negative, halfway to 1
    assert threshold_for_specificity(y, neg * 0.8, 1.0) == pytest.approx(0.9)
    # ties: k = 2 of [0.2, 0.2, 0.2, 0.4] -> the next larger distinct score is 0.4
    assert threshold_for_specificity(np.zeros(4), [0.2, 0.2, 0.2, 0.4], 0.5) == pytest.approx(0.3)
    # not-annotated entries (-1) are ignored; no negatives -> 0.5
    assert threshold_for_specificity([-1, 1], [0.9, 0.2], 0.9) == 0.5


def test_threshold_reaches_the_specificity_it_promises() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(400) < 0.3).astype(float)
    p = np.clip(rng.normal(0.3 + 0.3 * y, 0.15), 0, 1)
    for spec in (0.8, 0.9, 0.95):
        t = threshold_for_specificity(y, p, spec)
        c = sens_spec_counts(y, p, t)
        assert c["tn"] / (c["tn"] + c["fp"]) >= spec
        assert c["tn"] == math.ceil(spec * int((y == 0).sum()))  # no more than needed


def test_wilson_interval_by_hand() -> None:
    # 8 of 10: centre (0.8 + 1.96^2/20) / (1 + 1.96^2/10) = 0.71675,
    # half 1.96 * sqrt(0.016 + 1.96^2/400) / 1.38415 = 0.22658
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.49016, abs=1e-4) and hi == pytest.approx(0.94333, abs=1e-4)
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.16113, abs=1e-4)
    assert wilson_interval(0, 0) is None


def test_platt_fit_by_hand() -> None:
    # Two groups: logit -1 with 2/10 positive, logit +1 with 6/10 positive. Without the prior
    # the maximum-likelihood fit puts sigmoid(-a + b) = 0.2 and sigmoid(a + b) = 0.6:
    # a = (logit 0.6 - logit 0.2) / 2 = 0.895880, b = (logit 0.6 + logit 0.2) / 2 = -0.490415.
    p = np.r_[np.full(10, 1 / (1 + math.e)), np.full(10, 1 / (1 + math.exp(-1)))]
    y = np.r_[[1, 1] + [0] * 8, [1] * 6 + [0] * 4].astype(float)
    a, b = fit_platt(y, p, prior_weight=0.0)
    assert a == pytest.approx(0.895880, abs=1e-5) and b == pytest.approx(-0.490415, abs=1e-5)
    assert apply_platt(1 / (1 + math.e), a, b) == pytest.approx(0.2, abs=1e-6)
    # the weak prior pulls towards the identity (a = 1, b = 0)
    a1, b1 = fit_platt(y, p, prior_weight=1.0)
    assert a < a1 < 1.0 and b < b1 < 0.0
    # too few positives: identity
    assert fit_platt(np.r_[np.ones(4), np.zeros(30)], np.linspace(0.1, 0.9, 34)) == (1.0, 0.0)


def test_apply_platt_by_hand() -> None:
    assert apply_platt(0.5, 2.0, -1.0) == pytest.approx(1 / (1 + math.e))  # sigmoid(-1)
    assert apply_platt(0.8, 1.0, 0.0) == pytest.approx(0.8)
    assert logit(0.5) == 0.0


def test_sensitivity_at_specificity_by_hand() -> None:
    y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.7, 0.5, 0.6, 0.8, 0.9])
    # 80% specificity: flag >= 0.5 keeps 4/5 negatives below; all 4 positives are >= 0.5
    assert sensitivity_at_specificity(y, p, 0.8) == 1.0
    # 100%: flag > 0.7 only -> 0.8 and 0.9 -> 2/4
    assert sensitivity_at_specificity(y, p, 1.0) == 0.5


def _targets(rows: list[dict[str, float]]) -> np.ndarray:
    t = np.zeros((len(rows), len(MODEL_LABEL_NAMES)))
    for i, row in enumerate(rows):
        for name, v in row.items():
            t[i, MODEL_LABEL_NAMES.index(name)] = v
    return t


def test_flags_per_normal_by_hand() -> None:
    targets = _targets([{"No finding": 1}, {"No finding": 1}, {"Atelectasis": 1}])
    probs = np.zeros_like(targets)
    thresholds = [0.5] * len(MODEL_LABEL_NAMES)
    probs[0, SCORED_INDICES[0]] = 0.6  # one flag on the first normal image
    probs[0, SCORED_INDICES[3]] = 0.7  # and a second
    probs[1, NO_FINDING_INDEX] = 0.9  # "No finding" itself is not a flag
    probs[2, :] = 0.9  # an abnormal image does not count
    out = flags_per_normal(targets, probs, thresholds)
    assert out["n_normal"] == 2 and out["mean"] == 1.0 and out["share_with_any_flag"] == 0.5
    assert list(abnormal_targets(targets)) == [0.0, 0.0, 1.0]


def test_operating_points_per_mode() -> None:
    rng = np.random.default_rng(0)
    targets = (rng.random((200, len(MODEL_LABEL_NAMES))) < 0.3).astype(float)
    probs = rng.random(targets.shape)
    ops = fit_operating_points(targets, probs)
    assert set(ops) == {"high-sensitivity", "balanced", "high-specificity"}
    j = MODEL_LABEL_NAMES.index("Cardiomegaly")
    neg = targets[:, j] == 0
    for mode, spec in (("high-sensitivity", 0.8), ("balanced", 0.9), ("high-specificity", 0.95)):
        assert ops[mode]["target_specificity"] == spec
        t = ops[mode]["thresholds"]["Cardiomegaly"]
        assert t == pytest.approx(threshold_for_specificity(targets[:, j], probs[:, j], spec),
                                  abs=1e-6)
        assert np.mean(probs[neg, j] < t) >= spec
    hs, bal, hsp = (ops[m]["thresholds"]["Cardiomegaly"] for m in
                    ("high-sensitivity", "balanced", "high-specificity"))
    assert hs < bal < hsp
