"""Fitting what the card's ``calibration`` and ``operating_points`` hold (numpy only).

Both are fitted on the calibration split of TRAINING patients (``calibration_fraction`` in the
config), never on the validation patients the card's numbers come from.
"""

from __future__ import annotations

import math

import numpy as np

from cxr_viewer.inference.operating import apply_platt, logit

#: Platt fits of outputs with fewer positives (or negatives) than this stay the identity.
MIN_CLASS_FOR_PLATT = 5


def fit_platt(
    y: np.ndarray, p: np.ndarray, prior_weight: float = 1.0, iterations: int = 100
) -> tuple[float, float]:
    """Platt scaling of a sigmoid output: (a, b) minimising the log loss of
    ``sigmoid(a * logit(p) + b)`` plus ``prior_weight / 2 * ((a - 1)^2 + b^2)`` (a weak pull
    towards the identity, so that a few positives cannot produce a wild fit). Newton's method.

    Parameters
    ----------
    y
        0/1 labels (entries < 0, not annotated, are ignored).
    p
        The model's probabilities.

    Returns
    -------
    (a, b)
        ``a`` is kept >= 0.05 so that calibration never reverses the ranking. (1, 0) when a class
        has fewer than ``MIN_CLASS_FOR_PLATT`` examples.
    """
    y = np.asarray(y, np.float64).ravel()
    keep = y >= 0
    y, x = y[keep], logit(np.asarray(p, np.float64).ravel()[keep])
    if min(int(y.sum()), int((1 - y).sum())) < MIN_CLASS_FOR_PLATT:
        return 1.0, 0.0
    a, b = 1.0, 0.0
    lam = float(prior_weight)
    for _ in range(iterations):
        q = apply_platt_logits(x, a, b)
        r = q - y
        w = q * (1 - q)
        g = np.array([np.sum(r * x) + lam * (a - 1.0), np.sum(r) + lam * b])
        h = np.array(
            [[np.sum(w * x * x) + lam, np.sum(w * x)], [np.sum(w * x), np.sum(w) + lam]]
        )
        step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
        if np.max(np.abs(step)) < 1e-10:
            break
    return max(float(a), 0.05), float(b)


def apply_platt_logits(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """sigmoid(a * x + b) for logits ``x``."""
    z = a * x + b
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def calibrate_columns(
    probs: np.ndarray, names: list[str], calibration: dict[str, list[float]]
) -> np.ndarray:
    """Apply per-output Platt parameters to an (n, outputs) matrix."""
    out = np.asarray(probs, np.float64).copy()
    for j, name in enumerate(names):
        if name in calibration:
            a, b = calibration[name]
            out[:, j] = apply_platt(out[:, j], a, b)
    return out


def threshold_for_specificity(y: np.ndarray, p: np.ndarray, specificity: float) -> float:
    """The threshold (flag when ``p >= t``) giving at least ``specificity`` on these data.

    With the negatives' scores sorted, s_1 <= ... <= s_n, and k = ceil(specificity * n): the
    threshold lies halfway between s_k and s_{k+1}, so that k negatives fall below it (if s_k
    ties with s_{k+1}, the next larger distinct score is used; above the largest negative, the
    threshold is s_n + (1 - s_n) / 2). 0.5 when there are no negatives.
    """
    y = np.asarray(y, np.float64).ravel()
    p = np.asarray(p, np.float64).ravel()
    neg = np.sort(p[y == 0])
    n = neg.size
    if n == 0:
        return 0.5
    k = min(max(int(math.ceil(specificity * n - 1e-9)), 1), n)
    lower = neg[k - 1]
    above = neg[neg > lower]
    upper = above[0] if above.size else 1.0
    return float((lower + upper) / 2.0)


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """Wilson score 95% interval of a proportion; None when n == 0."""
    if n <= 0:
        return None
    phat = successes / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def sens_spec_counts(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, int]:
    """True/false positives/negatives of ``p >= threshold`` over annotated entries."""
    y = np.asarray(y, np.float64).ravel()
    p = np.asarray(p, np.float64).ravel()
    keep = y >= 0
    y, p = y[keep], p[keep]
    flag = p >= threshold
    return {
        "tp": int(np.sum(flag & (y == 1))),
        "fn": int(np.sum(~flag & (y == 1))),
        "tn": int(np.sum(~flag & (y == 0))),
        "fp": int(np.sum(flag & (y == 0))),
    }


def sensitivity_at_specificity(y: np.ndarray, p: np.ndarray, specificity: float) -> float:
    """Best sensitivity among thresholds whose specificity on these data is >= ``specificity``
    (read off the empirical ROC curve). NaN without both classes."""
    y = np.asarray(y, np.float64).ravel()
    p = np.asarray(p, np.float64).ravel()
    pos, neg = p[y == 1], p[y == 0]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    best = 0.0
    for t in np.unique(np.r_[p, np.inf]):
        spec = float(np.mean(neg < t))
        if spec >= specificity:
            best = max(best, float(np.mean(pos >= t)))
    return best
