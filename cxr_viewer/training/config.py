"""Training configuration: one JSON file drives a CPU, one-GPU or multi-GPU run."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cxr_viewer.training.pipeline import AugmentConfig


@dataclass(frozen=True)
class DataConfig:
    kind: str = "nih-shared"  # nih-shared | nih | vindr
    root: str = "../shared/data/nih-cxr"  # nih-shared: the folder; nih/vindr: the image folder
    labels_csv: str = ""  # nih: Data_Entry_2017.csv; vindr: train.csv[.gz]
    boxes_csv: str = ""  # nih: BBox_List_2017.csv
    image_size: tuple[int, int] | None = None  # nih: (w, h) of resized PNGs, for the boxes
    vindr_rule: str = "any"  # any | majority


@dataclass(frozen=True)
class ModelConfig:
    architecture: str = "compact"  # compact | densenet121
    input_size: int = 256
    width: float = 1.0
    dropout: float = 0.2
    channels: int = 1
    normalization: str = "unit"
    imagenet_weights: str = ""  # densenet121: local no-top ImageNet .h5 (never downloaded)


@dataclass(frozen=True)
class PretrainConfig:
    """Self-supervised masked-inpainting pretraining of the encoder (``training.pretrain``)
    on the training patients' pixels (inner-train + calibration split; never the held-out
    validation patients), before the supervised fit. ``epochs = 0``: off."""

    epochs: int = 0
    batch_size: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 0.02
    warmup_epochs: int = 1
    mask_ratio: float = 0.5  # share of the patch x patch squares blacked out
    patch: int = 32  # pixels of the input
    target_factor: int = 4  # the image is reconstructed at 1/target_factor of the side
    decoder_width: int = 64
    visible_weight: float = 0.1  # weight of the error on the unmasked squares
    run_dir: str = ""  # "" = <run_dir>/pretrain

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"pretrain.mask_ratio must be in (0, 1), not {self.mask_ratio}")


@dataclass(frozen=True)
class TrainConfig:
    name: str = "cxr-viewer NIH-639 CNN"
    version: str = "1.0.0"
    card_notes: str = ""  # appended to the model card's notes (e.g. how the recipe was chosen)
    seed: int = 0  # weights, shuffling, augmentation
    split_seed: int | None = None  # patient split; None = seed
    # Train one member per seed (same split) and average their logits inside ONE keras model.
    ensemble_seeds: tuple[int, ...] = ()
    val_fraction: float = 0.25
    # "stratified" (patient_split over all records) or "v1-compatible" (splits.v1_compatible_split:
    # 1.1.0's validation patients + a seeded share of the nih_random621 patients).
    split: str = "stratified"
    # > 0: the training patients are split again (seed split_seed + 1) into inner-train (the model
    # is fitted on it) and a calibration split of this fraction, on which per-epoch monitoring,
    # recipe selection, calibration and operating points are done. The held-out validation
    # patients are then used once, for the card's numbers.
    calibration_fraction: float = 0.0
    label_smoothing: float = 0.0  # BCE targets y -> y (1 - s) + s / 2 (text-mined labels)
    # Positive weight per label: clip((neg / pos) ** pos_weight_power, 1, pos_weight_max);
    # 0.5 (sqrt, 1.x) or 1.0 (fully class-balanced).
    pos_weight_power: float = 0.5
    tta: bool = False  # evaluation: average small scale/shift copies (no flips)
    target_specificity: float = 0.90  # the "balanced" operating point
    # Tuning mode: leave the held-out patients out entirely and split the training patients again
    # (seed + 1), so hyper-parameters are never chosen on the set the card's metrics come from.
    tuning: bool = False
    epochs: int = 40
    batch_size: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 0.02
    warmup_epochs: int = 2
    pos_weight_max: float = 10.0
    # Weight of the auxiliary box-map loss (radiologist boxes of the *training* images supervise
    # the classifier's class activation map; 0 = off). compact architecture only.
    box_supervision: float = 0.0
    box_sources: tuple[str, ...] = ("NIH_BBox_List_2017", "ChestX-Det10")
    # Which box loss: "map_bce" (per-location sigmoid BCE of the whole map on boxed findings and
    # on known negatives; the original) or "cam" (losses.cam_box_loss: only boxed findings, the
    # raw CAM features . W_c must put its softmax mass inside the box and be positive there).
    box_loss: str = "map_bce"
    cam_temperature: float = 1.0  # box_loss "cam": softmax temperature over the map
    cam_evidence: float = 0.5  # box_loss "cam": weight of the positive-evidence term
    threads: int = 2  # intra/inter-op threads; 0 = TensorFlow's default
    mixed_precision: bool = False  # float16 compute on GPU
    distribute: str = "auto"  # auto | none | mirrored | multiworker
    cache_dir: str = ".cache/training"
    run_dir: str = "runs/nih-default"
    bundle_dir: str = "models/default"
    report_dir: str = "docs/model-report"  # "" = no report
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)

    def __post_init__(self) -> None:
        if self.box_loss not in ("map_bce", "cam"):
            raise ValueError(f"unknown box_loss {self.box_loss!r} (map_bce | cam)")
        if self.split not in ("stratified", "v1-compatible"):
            raise ValueError(f"unknown split {self.split!r} (stratified | v1-compatible)")
        if not 0.0 <= self.calibration_fraction < 1.0:
            raise ValueError(f"calibration_fraction must be in [0, 1), not {self.calibration_fraction}")
        if self.cam_temperature <= 0:
            raise ValueError(f"cam_temperature must be > 0, not {self.cam_temperature}")

    @property
    def split_seed_value(self) -> int:
        return self.seed if self.split_seed is None else self.split_seed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _build(cls: type, d: dict[str, Any], where: str) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}")
    return cls(**d)


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    """Build a ``TrainConfig``; unknown keys are refused (typos must not pass silently)."""
    d = dict(d)
    d.pop("_comment", None)
    data = dict(d.pop("data", {}))
    if data.get("image_size") is not None:
        data["image_size"] = tuple(data["image_size"])
    if "ensemble_seeds" in d:
        d["ensemble_seeds"] = tuple(d["ensemble_seeds"])
    if "box_sources" in d:
        d["box_sources"] = tuple(d["box_sources"])
    return _build(
        TrainConfig,
        {
            **d,
            "data": _build(DataConfig, data, "data"),
            "model": _build(ModelConfig, d.pop("model", {}), "model"),
            "augment": _build(AugmentConfig, d.pop("augment", {}), "augment"),
            "pretrain": _build(PretrainConfig, d.pop("pretrain", {}), "pretrain"),
        },
        "config",
    )


def load_config(path: str | Path) -> TrainConfig:
    """Read a JSON training config."""
    return config_from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
