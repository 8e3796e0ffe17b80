"""Model card: everything the app needs to know about a bundle, kept next to its weights.

A bundle is a folder holding the weights (``model.keras``, or a legacy ``.h5``) and ``model.json``.
The card follows torchxrayvision's convention of keeping labels, operating thresholds and input
resolution with each set of weights (conventions only; no code is shared).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cxr_viewer.errors import ModelError
from cxr_viewer.inference.findings import NO_FINDING, VINDR_FINDINGS
from cxr_viewer.inference.operating import (
    DEFAULT_MODE,
    MODES,
    NO_OPERATING_POINTS_NOTE,
    apply_platt,
    check_mode,
)

CARD_SCHEMA = "cxr-viewer-model-card/1"
RESIZE_POLICIES = ("letterbox", "stretch", "crop")
NORMALIZATIONS = ("unit", "imagenet_caffe", "imagenet_torch", "minus_one_one")


@dataclass(frozen=True)
class LabelSpec:
    """One model output.

    ``finding`` is the VinDr-CXR finding it scores (one of ``VINDR_FINDINGS`` or ``"No finding"``),
    or None for an extra output (e.g. NIH "Edema") that the viewer does not rank among the 14.
    """

    name: str
    finding: str | None
    threshold: float = 0.5


@dataclass(frozen=True)
class InputSpec:
    height: int
    width: int
    channels: int = 1
    normalization: str = "unit"  # unit: 8-bit display / 255 -> [0, 1]
    resize: str = "letterbox"  # letterbox | stretch | crop


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    architecture: str
    labels: tuple[LabelSpec, ...]
    input: InputSpec
    weights: str = "model.keras"
    weights_sha256: str = ""
    output: str = "sigmoid"
    gradcam_layer: str | None = None  # None: no conv layer -> gradient saliency fallback
    training_data: str = ""
    intended_use: str = "Research use only. AI second opinion - not for primary diagnosis."
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    # Card 2.0 additions (absent from older cards: see inference.operating).
    # output name -> [a, b]: Platt scaling p' = sigmoid(a * logit(p) + b) of that output.
    calibration: dict[str, list[float]] = field(default_factory=dict)
    # mode -> {"target_specificity": s, "thresholds": {output name: threshold on p'}}.
    operating_points: dict[str, dict[str, Any]] = field(default_factory=dict)
    default_mode: str = DEFAULT_MODE
    # How the "Abnormal" triage score is made ({"source": "1 - No finding", "thresholds":
    # {mode: threshold}}); empty: 1 - P(No finding) when the model has that output.
    abnormal: dict[str, Any] = field(default_factory=dict)
    # Test-time augmentation: (scale, dx, dy) copies whose logits are averaged for the
    # probabilities (``inference.predict.tta_batch``); empty: the image as prepared.
    tta: list[list[float]] = field(default_factory=list)

    # ---- derived views -------------------------------------------------------------------
    @property
    def no_finding_index(self) -> int | None:
        for i, label in enumerate(self.labels):
            if label.finding == NO_FINDING:
                return i
        return None

    def index_of_finding(self, finding: str) -> int | None:
        """Output index scoring a VinDr-CXR finding, or None when the model does not score it."""
        for i, label in enumerate(self.labels):
            if label.finding == finding:
                return i
        return None

    @property
    def scored_findings(self) -> tuple[str, ...]:
        return tuple(f for f in VINDR_FINDINGS if self.index_of_finding(f) is not None)

    @property
    def not_scored_findings(self) -> tuple[str, ...]:
        return tuple(f for f in VINDR_FINDINGS if self.index_of_finding(f) is None)

    @property
    def has_operating_points(self) -> bool:
        return bool(self.operating_points)

    @property
    def operating_note(self) -> str:
        """One line for the panel when the card has no operating points, else ``""``."""
        return "" if self.operating_points else NO_OPERATING_POINTS_NOTE

    def resolve_mode(self, mode: str | None) -> str | None:
        """The operating mode to use (None: the card has no operating points)."""
        if not self.operating_points:
            return None
        mode = check_mode(mode or self.default_mode)
        if mode not in self.operating_points:
            raise ValueError(f"{self.name} {self.version} has no {mode!r} operating point")
        return mode

    def thresholds(self, mode: str | None = None) -> list[float]:
        """One threshold per output for ``mode`` (the card's fixed ones without operating
        points)."""
        mode = self.resolve_mode(mode)
        if mode is None:
            return [lab.threshold for lab in self.labels]
        table = self.operating_points[mode]["thresholds"]
        return [float(table.get(lab.name, lab.threshold)) for lab in self.labels]

    def calibrate(self, probs: Any) -> Any:
        """Calibrated probabilities (the outputs unchanged for outputs without calibration)."""
        import numpy as np

        p = np.asarray(probs, np.float64).copy()
        if not self.calibration:
            return p
        for i, lab in enumerate(self.labels):
            ab = self.calibration.get(lab.name)
            if ab is not None:
                p[..., i] = apply_platt(p[..., i], float(ab[0]), float(ab[1]))
        return p

    def abnormal_score(self, calibrated: Any) -> float | None:
        """The "Abnormal" triage score from calibrated outputs: 1 - P(No finding) (or, when the
        card's ``abnormal.source`` says "max scored finding", the highest scored finding's
        probability); None when the model has no No-finding output."""
        nf = self.no_finding_index
        if nf is None:
            return None
        if self.abnormal.get("source") == "max scored finding":
            idx = [i for i, lab in enumerate(self.labels)
                   if lab.finding is not None and lab.finding != NO_FINDING]
            score = float(max(float(calibrated[i]) for i in idx))
        else:
            score = float(1.0 - float(calibrated[nf]))
        ab = self.abnormal.get("calibration")
        if ab:  # Platt scaling of the score into P(abnormal) (training.evaluate_v2)
            score = float(apply_platt(score, float(ab[0]), float(ab[1])))
        return score

    def abnormal_threshold(self, mode: str | None = None) -> float | None:
        mode = self.resolve_mode(mode)
        table = self.abnormal.get("thresholds", {}) if self.abnormal else {}
        if mode is None or mode not in table:
            return None
        return float(table[mode])

    # ---- (de)serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"] = [asdict(lab) for lab in self.labels]
        d["schema"] = CARD_SCHEMA
        d["not_scored"] = list(self.not_scored_findings)
        return d

    def save(self, path: str | Path) -> None:
        from cxr_viewer.fsutil import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "model card") -> ModelCard:
        try:
            labels = tuple(
                LabelSpec(
                    name=str(x["name"]),
                    finding=x.get("finding"),
                    threshold=float(x.get("threshold", 0.5)),
                )
                for x in d["labels"]
            )
            inp = d["input"]
            card = cls(
                name=str(d["name"]),
                version=str(d["version"]),
                architecture=str(d.get("architecture", "")),
                labels=labels,
                input=InputSpec(
                    height=int(inp["height"]),
                    width=int(inp["width"]),
                    channels=int(inp.get("channels", 1)),
                    normalization=str(inp.get("normalization", "unit")),
                    resize=str(inp.get("resize", "letterbox")),
                ),
                weights=str(d.get("weights", "model.keras")),
                weights_sha256=str(d.get("weights_sha256", "")),
                output=str(d.get("output", "sigmoid")),
                gradcam_layer=d.get("gradcam_layer"),
                training_data=str(d.get("training_data", "")),
                intended_use=str(d.get("intended_use", cls.intended_use)),
                metrics=dict(d.get("metrics", {})),
                notes=str(d.get("notes", "")),
                calibration={
                    str(k): [float(v[0]), float(v[1])]
                    for k, v in dict(d.get("calibration") or {}).items()
                },
                operating_points={
                    str(mode): {
                        "target_specificity": float(op.get("target_specificity", 0.0)),
                        "thresholds": {
                            str(k): float(v) for k, v in dict(op["thresholds"]).items()
                        },
                    }
                    for mode, op in dict(d.get("operating_points") or {}).items()
                },
                default_mode=str(d.get("default_mode", DEFAULT_MODE)),
                abnormal=dict(d.get("abnormal") or {}),
                tta=[[float(v) for v in t] for t in (d.get("tta") or [])],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(source, f"invalid model card: {exc!r}") from exc
        card.validate(source)
        return card

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ModelError(str(path), "model card not found") from exc
        except json.JSONDecodeError as exc:
            raise ModelError(str(path), f"model card is not valid JSON: {exc}") from exc
        return cls.from_dict(d, source=str(path))

    def validate(self, source: str = "model card") -> None:
        """Raise ModelError when the card is inconsistent."""
        allowed = set(VINDR_FINDINGS) | {NO_FINDING}
        seen: set[str] = set()
        if not self.labels:
            raise ModelError(source, "the card lists no labels")
        for lab in self.labels:
            if lab.finding is not None and lab.finding not in allowed:
                raise ModelError(source, f"label {lab.name!r} maps to unknown finding {lab.finding!r}")
            if lab.finding is not None:
                if lab.finding in seen:
                    raise ModelError(source, f"two outputs score {lab.finding!r}")
                seen.add(lab.finding)
            if not 0.0 <= lab.threshold <= 1.0:
                raise ModelError(source, f"threshold of {lab.name!r} is outside [0, 1]")
        if self.input.resize not in RESIZE_POLICIES:
            raise ModelError(source, f"unknown resize policy {self.input.resize!r}")
        if self.input.normalization not in NORMALIZATIONS:
            raise ModelError(source, f"unknown normalization {self.input.normalization!r}")
        if self.input.channels not in (1, 3):
            raise ModelError(source, f"input channels must be 1 or 3, not {self.input.channels}")
        if self.output != "sigmoid":
            raise ModelError(source, f"unsupported output kind {self.output!r} (sigmoid only)")
        names = {lab.name for lab in self.labels}
        for name, ab in self.calibration.items():
            if name not in names:
                raise ModelError(source, f"calibration names unknown output {name!r}")
            if not (len(ab) == 2 and ab[0] > 0 and all(map(math.isfinite, ab))):
                raise ModelError(source, f"calibration of {name!r} must be [a > 0, b], not {ab}")
        for mode, op in self.operating_points.items():
            if mode not in MODES:
                raise ModelError(source, f"unknown operating mode {mode!r} "
                                 f"(one of {', '.join(MODES)})")
            for name, thr in op["thresholds"].items():
                if name not in names:
                    raise ModelError(source, f"operating point {mode!r} names unknown output "
                                     f"{name!r}")
                if not 0.0 <= thr <= 1.0:
                    raise ModelError(source, f"{mode!r} threshold of {name!r} is outside [0, 1]")
        for t in self.tta:
            if len(t) != 3 or not 0.5 <= t[0] <= 2.0 or abs(t[1]) > 0.5 or abs(t[2]) > 0.5:
                raise ModelError(source, f"test-time augmentation entry {t} is not "
                                 "[scale in 0.5-2, dx, dy within 0.5]")
        ab = self.abnormal.get("calibration") if self.abnormal else None
        if ab and not (len(ab) == 2 and float(ab[0]) > 0 and all(map(math.isfinite, ab))):
            raise ModelError(source, f"abnormal calibration must be [a > 0, b], not {ab}")
        if self.operating_points and self.default_mode not in self.operating_points:
            raise ModelError(source, f"default mode {self.default_mode!r} has no operating point")
