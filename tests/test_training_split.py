"""Seeded, stratified, patient-level splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cxr_viewer.training.datasets import Record
from cxr_viewer.training.splits import patient_split


def _records(n_patients: int = 60, seed: int = 0) -> list[Record]:
    rng = np.random.default_rng(seed)
    out = []
    for p in range(n_patients):
        for k in range(int(rng.integers(1, 4))):  # 1-3 images per patient
            targets = (rng.random(4) < [0.5, 0.3, 0.1, 0.0]).astype(float)
            if p in (3, 17, 40):  # a rare label held by three patients only
                targets[3] = 1.0
            out.append(Record(Path(f"{p}_{k}.png"), f"{p}_{k}", str(p), tuple(targets)))
    return out


def test_no_patient_on_both_sides_and_all_kept() -> None:
    recs = _records()
    train, val = patient_split(recs, 0.25, seed=1)
    assert not {r.patient_id for r in train} & {r.patient_id for r in val}
    assert len(train) + len(val) == len(recs)
    assert 0.15 < len(val) / len(recs) < 0.35


def test_seeded() -> None:
    recs = _records()
    a = patient_split(recs, 0.25, seed=3)
    b = patient_split(recs, 0.25, seed=3)
    c = patient_split(recs, 0.25, seed=4)
    assert [r.image_id for r in a[1]] == [r.image_id for r in b[1]]
    assert [r.image_id for r in a[1]] != [r.image_id for r in c[1]]


@pytest.mark.parametrize("seed", range(5))
def test_rare_label_reaches_validation(seed: int) -> None:
    recs = _records(seed=seed)
    _, val = patient_split(recs, 0.25, seed=seed)
    assert any(r.targets[3] == 1.0 for r in val)


def test_bad_fraction() -> None:
    with pytest.raises(ValueError):
        patient_split(_records(), 1.0)


def test_v1_compatible_split_keeps_1_1_0_validation_patients(nih_dir: Path) -> None:
    """The 2.0 split: 1.1.0's validation patients (its card's val_ids_sha256, reproduced), plus
    about 25% of the random-sample patients; nobody on two sides; the inner calibration split
    takes training patients only."""
    import hashlib
    import json
    from dataclasses import replace

    from cxr_viewer.training.config import TrainConfig
    from cxr_viewer.training.datasets import read_nih_shared
    from cxr_viewer.training.splits import RANDOM_SUBSET, v1_compatible_split
    from cxr_viewer.training.train import split_records

    records = read_nih_shared(nih_dir)
    old = [r for r in records if r.subset != RANDOM_SUBSET]
    _, old_val = patient_split(old, 0.25, 0, n_labels=15)
    card = json.loads((Path(__file__).parent / "data" / "model-card-1.1.0.json").read_text())
    digest = hashlib.sha256("\n".join(r.image_id for r in old_val).encode()).hexdigest()
    assert digest == card["metrics"]["split"]["val_ids_sha256"]

    train, val = v1_compatible_split(records, 0.25, 0)
    assert len(train) + len(val) == len(records)
    assert not {r.patient_id for r in train} & {r.patient_id for r in val}
    assert {r.image_id for r in old_val} <= {r.image_id for r in val}
    new_val = [r for r in val if r.subset == RANDOM_SUBSET]
    n_new = sum(r.subset == RANDOM_SUBSET for r in records)
    assert 0.2 * n_new < len(new_val) < 0.3 * n_new
    assert sum(r.targets[-1] == 1 for r in val) >= 10  # normal radiographs reach validation

    cfg = replace(TrainConfig(), split="v1-compatible", calibration_fraction=0.25, split_seed=0,
                  data=replace(TrainConfig().data, root=str(nih_dir)))
    inner, calib, held = split_records(cfg)
    assert held is not None and [r.image_id for r in held] == [r.image_id for r in val]
    sides = [{r.patient_id for r in s} for s in (inner, calib, held)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert {r.image_id for r in inner} | {r.image_id for r in calib} == {r.image_id for r in train}
