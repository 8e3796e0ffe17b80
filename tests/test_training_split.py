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
