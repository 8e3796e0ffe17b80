"""Operating modes, per-finding calibration and the "Abnormal" triage score (numpy only).

A model card (``inference.card``) may carry, per output:

- ``calibration``: Platt scaling of the output's logit, ``p' = sigmoid(a * logit(p) + b)``,
  fitted on a calibration split of training patients (``training.operating.fit_platt``). Every
  probability the app shows is the calibrated one.
- ``operating_points``: per operating mode, a threshold on the *calibrated* probability chosen
  on that calibration split for a stated specificity (``training.operating.threshold_for_
  specificity``). A finding is flagged when its probability is at or above the active mode's
  threshold.

Cards without them (model 1.1.0, the seed's ``.h5`` preset) keep working: probabilities as the
model outputs them, one fixed threshold per output (the card's, 0.5 when it states none), and
``ModelCard.operating_note`` says so in one line.
"""

from __future__ import annotations

import numpy as np

#: Operating modes, most sensitive first.
MODES: tuple[str, ...] = ("high-sensitivity", "balanced", "high-specificity")
DEFAULT_MODE = "balanced"
#: Specificity each mode is chosen for (on the calibration split of training patients).
MODE_SPECIFICITY: dict[str, float] = {
    "high-sensitivity": 0.80,
    "balanced": 0.90,
    "high-specificity": 0.95,
}
#: Human-readable mode names (panel, exports).
MODE_TITLES: dict[str, str] = {
    "high-sensitivity": "High sensitivity",
    "balanced": "Balanced",
    "high-specificity": "High specificity",
}

NO_OPERATING_POINTS_NOTE = (
    "This model has no operating points or calibration: flags use its fixed thresholds "
    "and probabilities are uncalibrated."
)

_EPS = 1e-6


def logit(p: np.ndarray | float) -> np.ndarray:
    """log(p / (1 - p)), with p clipped to [1e-6, 1 - 1e-6]."""
    q = np.clip(np.asarray(p, np.float64), _EPS, 1.0 - _EPS)
    return np.log(q) - np.log1p(-q)


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    """1 / (1 + exp(-x)), numerically stable."""
    x = np.asarray(x, np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def apply_platt(p: np.ndarray | float, a: float, b: float) -> np.ndarray:
    """Calibrated probability ``sigmoid(a * logit(p) + b)`` (a = 1, b = 0 is the identity)."""
    return sigmoid(a * logit(p) + b)


def check_mode(mode: str) -> str:
    """Return ``mode`` or raise ValueError naming the valid modes."""
    if mode not in MODES:
        raise ValueError(f"unknown operating mode {mode!r} (one of {', '.join(MODES)})")
    return mode
