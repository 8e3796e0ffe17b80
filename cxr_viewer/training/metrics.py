"""Evaluation metrics in plain numpy (no scikit-learn): AUROC, average precision, bootstrap CIs
that resample patients, Youden threshold, sensitivity/specificity, calibration (ECE, Brier),
and heat-map localization (pointing game, IoU of the thresholded CAM) with a location prior.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def auroc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties).

    Returns NaN when only one class is present.
    """
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(score, np.float64).ravel()
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points (fpr, tpr, thresholds), thresholds descending; predicted positive: ``score >=
    threshold``. The first point is (0, 0) at threshold +inf."""
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(score, np.float64).ravel()
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    distinct = np.r_[np.nonzero(np.diff(s_sorted))[0], s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[distinct]
    fps = (distinct + 1) - tps
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    tpr = np.r_[0.0, tps / n_pos]
    fpr = np.r_[0.0, fps / n_neg]
    thresholds = np.r_[np.inf, s_sorted[distinct]]
    return fpr, tpr, thresholds


def average_precision(y_true: np.ndarray, score: np.ndarray) -> float:
    """Average precision: sum over recall steps of (R_k - R_{k-1}) * P_k. NaN without positives."""
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(score, np.float64).ravel()
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    distinct = np.r_[np.nonzero(np.diff(s_sorted))[0], s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[distinct]
    precision = tps / (distinct + 1)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def youden_threshold(y_true: np.ndarray, score: np.ndarray) -> float:
    """Threshold maximising Youden's J = sensitivity + specificity - 1 (``score >= t`` positive).

    Ties on J are broken towards the higher threshold; a single-class input gives 0.5.
    """
    y = np.asarray(y_true).astype(bool).ravel()
    if y.all() or not y.any():
        return 0.5
    fpr, tpr, thr = roc_curve(y, score)
    j = (tpr - fpr)[1:]  # skip the +inf point
    best = int(np.nonzero(j >= j.max() - 1e-12)[0][0]) + 1  # ties (up to rounding): higher t
    return float(thr[best])


def sensitivity_specificity(
    y_true: np.ndarray, score: np.ndarray, threshold: float
) -> tuple[float, float]:
    """(sensitivity, specificity) with ``score >= threshold`` predicted positive (NaN if a class
    is absent)."""
    y = np.asarray(y_true).astype(bool).ravel()
    pred = np.asarray(score, np.float64).ravel() >= threshold
    sens = float(pred[y].mean()) if y.any() else float("nan")
    spec = float((~pred[~y]).mean()) if (~y).any() else float("nan")
    return sens, spec


def brier_score(y_true: np.ndarray, prob: np.ndarray) -> float:
    """Mean squared error of the probabilities."""
    y = np.asarray(y_true, np.float64).ravel()
    p = np.asarray(prob, np.float64).ravel()
    return float(np.mean((p - y) ** 2))


def expected_calibration_error(y_true: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> float:
    """ECE with ``n_bins`` equal-width bins on [0, 1]: sum_b |B|/N * |mean(y_b) - mean(p_b)|."""
    y = np.asarray(y_true, np.float64).ravel()
    p = np.asarray(prob, np.float64).ravel()
    if y.size == 0:
        return float("nan")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            ece += sel.sum() / y.size * abs(y[sel].mean() - p[sel].mean())
    return float(ece)


def bootstrap_ci(
    metric: object,
    y_true: np.ndarray,
    score: np.ndarray,
    groups: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, int]:
    """Percentile bootstrap CI of ``metric(y, score)`` resampling *groups* (patients).

    Parameters
    ----------
    metric
        Callable ``(y_true, score) -> float`` (NaN results are dropped, e.g. one-class resamples).
    groups
        Patient id per sample; whole patients are drawn with replacement.

    Returns
    -------
    (low, high, n_valid)
        NaN bounds when fewer than 10 valid resamples.
    """
    y = np.asarray(y_true)
    s = np.asarray(score)
    g = np.asarray(groups)
    uniq, inverse = np.unique(g, return_inverse=True)
    members = [np.nonzero(inverse == k)[0] for k in range(len(uniq))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), len(uniq))
        idx = np.concatenate([members[k] for k in pick])
        v = metric(y[idx], s[idx])  # type: ignore[operator]
        if np.isfinite(v):
            values.append(v)
    if len(values) < 10:
        return float("nan"), float("nan"), len(values)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi), len(values)


# ------------------------------------------------------------------------------------------------
# Heat-map localization. Boxes are (x1, y1, x2, y2) in the map's pixel coordinates, pixel (r, c)
# covering [c, c + 1) x [r, r + 1); a pixel is inside a box when its centre is.
# ------------------------------------------------------------------------------------------------
BoxXYXY = tuple[float, float, float, float]


def boxes_mask(shape: tuple[int, int], boxes: list[BoxXYXY]) -> np.ndarray:
    """Boolean mask of the union of boxes (pixel centres inside)."""
    rows, cols = shape
    r = np.arange(rows)[:, None] + 0.5
    c = np.arange(cols)[None, :] + 0.5
    mask = np.zeros(shape, bool)
    for x1, y1, x2, y2 in boxes:
        mask |= (c >= x1) & (c <= x2) & (r >= y1) & (r <= y2)
    return mask


def pointing_game_hit(cam: np.ndarray, boxes: list[BoxXYXY]) -> bool:
    """True when the CAM's maximum (first in row-major order on ties) lies inside a box.

    A map with no positive value (Grad-CAM after its ReLU found no evidence anywhere) is a miss.
    """
    cam = np.asarray(cam)
    if not cam.max() > 0:
        return False
    r, c = np.unravel_index(int(np.argmax(cam)), cam.shape)
    y, x = r + 0.5, c + 0.5
    return any(x1 <= x <= x2 and y1 <= y <= y2 for x1, y1, x2, y2 in boxes)


def cam_iou(cam: np.ndarray, boxes: list[BoxXYXY], threshold: float = 0.5) -> float:
    """IoU between the CAM thresholded at ``threshold * max`` and the union of the boxes."""
    cam = np.asarray(cam, np.float64)
    peak = cam.max()
    pred = cam >= threshold * peak if peak > 0 else np.zeros(cam.shape, bool)
    truth = boxes_mask(cam.shape, boxes)
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 0.0


def location_prior(
    boxes_per_image: list[list[BoxXYXY]],
    image_shapes: list[tuple[int, int]],
    grid: int = 256,
) -> np.ndarray:
    """Location prior: how many training boxes cover each point, in normalised image coordinates.

    Parameters
    ----------
    boxes_per_image
        Boxes of one finding, per training image, in that image's pixels.
    image_shapes
        (rows, cols) of each training image.
    grid
        Side of the returned map.

    Returns
    -------
    np.ndarray
        float32 (grid, grid), maximum 1 where the boxes overlap most; resize it to an image to use
        it as a fixed "CAM".
    """
    acc = np.zeros((grid, grid), np.float64)
    for boxes, (rows, cols) in zip(boxes_per_image, image_shapes, strict=True):
        scaled = [(x1 / cols * grid, y1 / rows * grid, x2 / cols * grid, y2 / rows * grid)
                  for x1, y1, x2, y2 in boxes]
        acc += boxes_mask((grid, grid), scaled)
    if acc.max() > 0:
        acc /= acc.max()
    return acc.astype(np.float32)
