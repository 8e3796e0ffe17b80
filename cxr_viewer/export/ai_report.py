"""The AI result as it is stored in DICOM: one neutral record, written by ``export.sr`` and read
back by ``io.stored_results``.

:func:`report_from_prediction` is the ONE place that maps the inference result
(:class:`~cxr_viewer.inference.results.Prediction`) to what the Structured Report says. Fields the
current inference API may not have yet are read when present (``abnormal``,
``abnormal_threshold``, ``mode`` / ``operating_mode``, ``calibrated``, a per-finding
``calibrated_probability``), so a newer ``Prediction`` needs changes here only.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from cxr_viewer.inference.findings import VINDR_FINDINGS
from cxr_viewer.inference.results import FindingScore, Prediction


@dataclass(frozen=True)
class ReportedFinding:
    finding: str  # one of VINDR_FINDINGS
    probability: float | None  # None: not scored by this model
    threshold: float | None = None  # at the active operating point
    flagged: bool | None = None  # None when not scored

    @property
    def scored(self) -> bool:
        return self.probability is not None


@dataclass(frozen=True)
class AiReport:
    """What the model said about one image, with the model's identity."""

    model_name: str
    model_version: str
    weights_sha256: str
    findings: tuple[ReportedFinding, ...]  # all 14, in VINDR_FINDINGS order
    abnormal: float | None = None  # "Abnormal" score (any finding), when the model has one
    no_finding: float | None = None  # "No finding" output, when the model has one
    operating_mode: str | None = None  # e.g. "balanced", when the result has one
    abnormal_threshold: float | None = None  # the active mode's, when the card has one
    calibrated: bool | None = None  # probabilities calibrated (None: the result does not say)
    warnings: tuple[str, ...] = ()
    created: _dt.datetime | None = None  # when the SR was written (read back only)

    def finding(self, name: str) -> ReportedFinding:
        return self.findings[VINDR_FINDINGS.index(name)]

    @property
    def abnormal_flagged(self) -> bool | None:
        if self.abnormal is None or self.abnormal_threshold is None:
            return None
        return self.abnormal >= self.abnormal_threshold

    @property
    def flagged(self) -> tuple[str, ...]:
        return tuple(f.finding for f in self.findings if f.flagged)

    def to_prediction(self, image_id: str) -> Prediction:
        """The stored result as a Prediction for the findings panel (no model needed)."""
        scores = tuple(
            FindingScore(
                finding=f.finding,
                probability=f.probability,
                threshold=f.threshold,
                flagged=bool(f.flagged),
            )
            for f in self.findings
        )
        return Prediction(  # the fields every Prediction has (stored extras stay in the report)
            image_id=image_id,
            model_name=self.model_name,
            model_version=self.model_version,
            weights_sha256=self.weights_sha256,
            scores=scores,
            no_finding=self.no_finding,
            warnings=self.warnings,
        )


def _optional_float(obj: Any, *names: str) -> float | None:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            try:
                return float(value)
            except (TypeError, ValueError):
                continue
    return None


def _optional_bool(obj: Any, name: str) -> bool | None:
    value = getattr(obj, name, None)
    return None if value is None else bool(value)


def _operating_mode(pred: Any) -> str | None:
    mode = getattr(pred, "operating_mode", None)
    if mode is None:
        mode = getattr(pred, "mode", None)  # model2's Prediction.mode
    if mode is None:
        return None
    # a plain string, an enum, or a small object with a name
    for attr in ("name", "value"):
        inner = getattr(mode, attr, None)
        if isinstance(inner, str):
            return inner
    return str(mode)


def report_from_prediction(pred: Prediction) -> AiReport:
    """Map an inference result to the stored record (THE mapping; adapt it here).

    ``probability`` is the score shown to the user (the calibrated one when the model is
    calibrated: a ``calibrated_probability`` attribute is preferred when present); ``flagged``
    is the decision at the active operating point; a finding without a probability is "not
    scored by this model".
    """
    findings = []
    for score in pred.scores:
        p = _optional_float(score, "calibrated_probability", "probability")
        findings.append(
            ReportedFinding(
                finding=score.finding,
                probability=p,
                threshold=None if p is None else _optional_float(score, "threshold"),
                flagged=None if p is None else bool(score.flagged),
            )
        )
    return AiReport(
        model_name=pred.model_name,
        model_version=pred.model_version,
        weights_sha256=pred.weights_sha256,
        findings=tuple(findings),
        abnormal=_optional_float(pred, "abnormal", "abnormal_score"),
        no_finding=_optional_float(pred, "no_finding"),
        operating_mode=_operating_mode(pred),
        abnormal_threshold=_optional_float(pred, "abnormal_threshold"),
        calibrated=_optional_bool(pred, "calibrated"),
        warnings=tuple(pred.warnings),
    )
