"""Evaluation metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from cxr_viewer.training import metrics as M

Y = np.array([0, 0, 1, 1])
S = np.array([0.1, 0.4, 0.35, 0.8])


def test_auroc_known_values() -> None:
    assert M.auroc(Y, S) == pytest.approx(0.75)
    assert M.auroc([0, 1], [0.2, 0.9]) == 1.0
    assert M.auroc([0, 1], [0.9, 0.2]) == 0.0
    assert M.auroc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5  # ties count one half
    assert np.isnan(M.auroc([1, 1], [0.1, 0.2]))


def test_auroc_equals_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.3
    s = np.round(rng.random(200) + 0.5 * y, 2)  # rounded: many ties
    pos, neg = s[y], s[~y]
    pairwise = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (
        pos.size * neg.size
    )
    assert M.auroc(y, s) == pytest.approx(pairwise)


def test_roc_curve_points() -> None:
    fpr, tpr, thr = M.roc_curve(Y, S)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(thr[1:], [0.8, 0.4, 0.35, 0.1])


def test_average_precision_known_value() -> None:
    # ranks: 0.8 (pos) P=1 R=.5; 0.4 (neg); 0.35 (pos) P=2/3 R=1 -> AP = .5*1 + .5*2/3
    assert M.average_precision(Y, S) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_youden_threshold_and_operating_point() -> None:
    # J = 0.5 at thresholds 0.8 and 0.35: the higher one is chosen
    assert M.youden_threshold(Y, S) == pytest.approx(0.8)
    assert M.sensitivity_specificity(Y, S, 0.8) == (0.5, 1.0)
    assert M.sensitivity_specificity(Y, S, 0.35) == (1.0, 0.5)
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.6, 0.5, 0.7, 0.9])
    assert M.youden_threshold(y, s) == pytest.approx(0.7)  # J: .667 at 0.7 and at 0.5 -> 0.7
    assert M.youden_threshold([1, 1], [0.2, 0.3]) == 0.5


def test_calibration() -> None:
    y = np.array([0, 1, 1, 1])
    p = np.array([0.1, 0.1, 0.9, 0.9])
    assert M.brier_score(y, p) == pytest.approx((0.01 + 0.81 + 0.01 + 0.01) / 4)
    assert M.expected_calibration_error(y, p) == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    assert M.expected_calibration_error([1, 0], [1.0, 0.0]) == 0.0


def test_bootstrap_resamples_whole_patients() -> None:
    # every patient has exactly two images: a patient-level resample always has an even size
    groups = np.repeat(np.arange(30), 2)
    y = np.tile([0, 1], 30)
    s = np.linspace(0, 1, 60)
    lo, hi, n = M.bootstrap_ci(lambda a, b: float(len(a) % 2 == 0), y, s, groups, n_boot=200)
    assert (lo, hi, n) == (1.0, 1.0, 200)


def test_bootstrap_ci_brackets_the_estimate_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.4
    s = rng.random(300) + 0.6 * y
    groups = np.arange(300) // 3
    lo, hi, n = M.bootstrap_ci(M.auroc, y, s, groups, n_boot=300, seed=5)
    assert lo < M.auroc(y, s) < hi and hi - lo < 0.2 and n == 300
    assert M.bootstrap_ci(M.auroc, y, s, groups, n_boot=300, seed=5)[:2] == (lo, hi)
    perfect = M.bootstrap_ci(M.auroc, [0, 1] * 20, [0.1, 0.9] * 20, np.arange(40), n_boot=100)
    assert perfect[:2] == (1.0, 1.0)


def test_pointing_game() -> None:
    cam = np.zeros((10, 10))
    cam[2, 7] = 1.0
    assert M.pointing_game_hit(cam, [(6, 1, 9, 4)])
    assert not M.pointing_game_hit(cam, [(0, 0, 5, 5)])
    assert M.pointing_game_hit(cam, [(0, 0, 5, 5), (7, 2, 8, 3)])  # any box of the finding
    assert not M.pointing_game_hit(np.zeros((10, 10)), [(0, 0, 10, 10)])  # no attention: miss


def test_cam_iou() -> None:
    cam = np.zeros((10, 10))
    cam[0:5, 0:5] = 1.0
    cam[0, 0] = 2.0  # the maximum; 0.5 x max = 1.0 keeps the 5x5 block
    assert M.cam_iou(cam, [(0, 0, 5, 5)]) == pytest.approx(1.0)
    assert M.cam_iou(cam, [(0, 0, 5, 10)]) == pytest.approx(0.5)
    assert M.cam_iou(cam, [(6, 6, 10, 10)]) == 0.0
    assert M.cam_iou(np.zeros((4, 4)), [(0, 0, 2, 2)]) == 0.0  # no attention: nothing predicted


def test_location_prior_peaks_where_boxes_overlap() -> None:
    boxes = [[(0, 0, 60, 60)], [(40, 40, 100, 100)], [(45, 45, 55, 55)]]
    prior = M.location_prior(boxes, [(100, 100)] * 3, grid=100)
    assert prior.max() == 1.0
    r, c = np.unravel_index(np.argmax(prior), prior.shape)
    assert 45 <= r < 55 and 45 <= c < 55
    # a box in a 200x100 image covers the same normalised region as in a 100x50 one
    a = M.location_prior([[(0, 0, 50, 100)]], [(200, 100)], grid=20)
    b = M.location_prior([[(0, 0, 25, 50)]], [(100, 50)], grid=20)
    np.testing.assert_array_equal(a, b)
