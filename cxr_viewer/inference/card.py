"""Model card: everything the app needs to know about a bundle, kept next to its weights.

A bundle is a folder holding the weights (``model.keras``, or a legacy ``.h5``) and ``model.json``.
The card follows torchxrayvision's convention of keeping labels, operating thresholds and input
resolution with each set of weights (conventions only; no code is shared).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cxr_viewer.errors import ModelError
from cxr_viewer.inference.findings import NO_FINDING, VINDR_FINDINGS

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
