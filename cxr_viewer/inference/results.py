"""What an analysis returns. Every result carries the id of the image it belongs to, so that a
result arriving after the user moved to another image is dropped, never shown on the wrong one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from cxr_viewer.inference.findings import VINDR_FINDINGS


@dataclass(frozen=True)
class FindingScore:
    finding: str  # one of VINDR_FINDINGS
    probability: float | None  # None: not scored by this model
    threshold: float | None
    flagged: bool  # probability >= threshold


@dataclass(frozen=True)
class Prediction:
    image_id: str
    model_name: str
    model_version: str
    weights_sha256: str
    scores: tuple[FindingScore, ...]  # all 14 VinDr-CXR findings, in VINDR_FINDINGS order
    no_finding: float | None = None  # "No finding" output, when the model has one
    extras: Mapping[str, float] = field(default_factory=dict)  # outputs not mapped to VinDr-CXR
    warnings: tuple[str, ...] = ()  # e.g. "body part not stated" (inference.applicability)
    # "Abnormal" triage score = 1 - P(No finding) (calibrated), None without a No-finding output.
    abnormal: float | None = None
    abnormal_threshold: float | None = None  # the active mode's, None when the card has none
    mode: str | None = None  # operating mode of the flags (None: the card has no operating points)
    operating_note: str = ""  # one line when the card has no operating points / calibration
    calibrated: bool = False  # probabilities went through the card's calibration

    @property
    def abnormal_flagged(self) -> bool | None:
        if self.abnormal is None or self.abnormal_threshold is None:
            return None
        return self.abnormal >= self.abnormal_threshold

    def flagged(self) -> list[FindingScore]:
        """Flagged findings by descending probability."""
        return [s for s in self.ranked() if s.flagged]

    def ranked(self) -> list[FindingScore]:
        """Scored findings by descending probability, then the not-scored ones (VinDr order)."""
        scored = sorted(
            (s for s in self.scores if s.probability is not None),
            key=lambda s: -float(s.probability or 0.0),
        )
        return scored + [s for s in self.scores if s.probability is None]

    def score(self, finding: str) -> FindingScore:
        return self.scores[VINDR_FINDINGS.index(finding)]

    def heatmap_subject(self) -> str | None:
        """The finding a heat map shows unless the reader picks one: the most probable
        *flagged* finding, or, with no flag, the most probable scored one (None: nothing
        scored).  A flagged finding can rank below an unflagged one with a higher threshold;
        the reader's first question is "where is what was flagged"."""
        flagged = self.flagged()
        if flagged:
            return flagged[0].finding
        scored = [s.finding for s in self.ranked() if s.probability is not None]
        return scored[0] if scored else None


@dataclass(frozen=True)
class CamResult:
    """Heat maps for one image: finding -> float32 map in [0, 1] at the ORIGINAL image size."""

    image_id: str
    method: str  # "gradcam" | "gradcam++" | "scorecam" | "saliency"
    maps: Mapping[str, np.ndarray] = field(repr=False)
    note: str = ""  # e.g. "no convolutional layer: gradient saliency (SmoothGrad)"
