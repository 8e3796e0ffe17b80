"""Records, the seeded patient split and the image caches of a training config.

Used by ``train`` and ``evaluate``; a module of its own so that neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cxr_viewer.training.config import TrainConfig
from cxr_viewer.training.datasets import Record, read_nih_data_entry, read_nih_shared, read_vindr
from cxr_viewer.training.splits import make_split, patient_split


def load_records(cfg: TrainConfig) -> list[Record]:
    """Read the data set named by ``cfg.data``."""
    d = cfg.data
    if d.kind == "nih-shared":
        return read_nih_shared(d.root)
    if d.kind == "nih":
        return read_nih_data_entry(d.labels_csv, d.root, d.boxes_csv or None, d.image_size)
    if d.kind == "vindr":
        return read_vindr(d.labels_csv, d.root, rule=d.vindr_rule)
    raise ValueError(f"unknown data kind {d.kind!r} (nih-shared | nih | vindr)")


@dataclass
class PreparedData:
    train: list[Record]
    val: list[Record]
    train_images: np.ndarray
    val_images: np.ndarray
    train_targets: np.ndarray
    val_targets: np.ndarray
    # calibration_fraction > 0: ``train``/``val`` are inner-train/calibration (both training
    # patients) and ``holdout`` holds the validation patients (not cached here).
    holdout: list[Record] | None = None


def split_records(cfg: TrainConfig) -> tuple[list[Record], list[Record], list[Record] | None]:
    """(fit, monitor, holdout) records of a config.

    - plain: (train, validation, None);
    - ``tuning``: the training patients split again; the validation patients are left out;
    - ``calibration_fraction > 0``: (inner-train, calibration, validation).
    """
    records = load_records(cfg)
    train, val = make_split(records, cfg.split, cfg.val_fraction, cfg.split_seed_value)
    if cfg.tuning:
        train, val = patient_split(train, cfg.val_fraction, cfg.split_seed_value + 1)
        return train, val, None
    if cfg.calibration_fraction > 0:
        inner, calib = patient_split(train, cfg.calibration_fraction, cfg.split_seed_value + 1)
        return inner, calib, val
    return train, val, None


def prepare_data(cfg: TrainConfig, log: bool = False) -> PreparedData:
    """Records, the seeded patient split and the uint8 caches of the fit and monitor sides."""
    from cxr_viewer.training.preprocess import build_cache

    train, val, holdout = split_records(cfg)
    size = cfg.model.input_size
    return PreparedData(
        train=train,
        val=val,
        train_images=np.asarray(build_cache(train, size, cfg.cache_dir, log=log)),
        val_images=np.asarray(build_cache(val, size, cfg.cache_dir, log=log)),
        train_targets=np.array([r.targets for r in train], np.float32),
        val_targets=np.array([r.targets for r in val], np.float32),
        holdout=holdout,
    )
