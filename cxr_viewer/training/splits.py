"""Seeded patient-level splits: a patient's images all land on the same side.

The split is stratified over the labels (greedy iterative stratification, after Sechidis et al.
2011): patients holding the rarest labels are placed first, so that every label with enough
positives has some in validation (a purely random split of 639 images can leave a label with 13
positives, like NIH Fibrosis, with none there, and its AUROC undefined).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cxr_viewer.training.datasets import Record


def patient_split(
    records: Sequence[Record], val_fraction: float = 0.25, seed: int = 0,
    n_labels: int | None = None,
) -> tuple[list[Record], list[Record]]:
    """Split records into (train, validation) by patient, stratified over the labels.

    Parameters
    ----------
    records
        The data set.
    val_fraction
        Target fraction of images (and of each label's positives) in validation.
    seed
        Same seed, same records -> same split.
    n_labels
        Stratify over the first ``n_labels`` targets only (None: all). 1.1.0's head had 15
        outputs; its split is reproduced with ``n_labels=15``.

    Returns
    -------
    (train, validation)
        Each in the input order; no patient appears in both.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), not {val_fraction}")
    patients = sorted({r.patient_id for r in records})
    index = {p: k for k, p in enumerate(patients)}
    if n_labels is None:
        n_labels = len(records[0].targets) if records else 0
    images = np.zeros(len(patients), int)
    positives = np.zeros((len(patients), n_labels), int)
    for r in records:
        k = index[r.patient_id]
        images[k] += 1
        positives[k] += np.asarray(r.targets[:n_labels]) == 1
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(patients))
    target_images = val_fraction * len(records)
    target_pos = val_fraction * positives.sum(axis=0)
    val = np.zeros(len(patients), bool)
    assigned = np.zeros(len(patients), bool)
    val_images, val_pos = 0, np.zeros(n_labels)
    # rarest labels first; within a label, patients in the seeded random order
    for j in np.argsort(positives.sum(axis=0), kind="stable"):
        if positives[:, j].sum() == 0:
            continue
        for k in order:
            if assigned[k] or positives[k, j] == 0:
                continue
            assigned[k] = True
            if val_pos[j] + positives[k, j] / 2 <= target_pos[j] and val_images < target_images:
                val[k] = True
                val_images += images[k]
                val_pos += positives[k]
    for k in order:  # patients without any positive label
        if not assigned[k]:
            assigned[k] = True
            if val_images < target_images:
                val[k] = True
                val_images += images[k]
    val_patients = {patients[k] for k in np.nonzero(val)[0]}
    train_records = [r for r in records if r.patient_id not in val_patients]
    val_records = [r for r in records if r.patient_id in val_patients]
    if not train_records or not val_records:
        raise ValueError("split left one side empty: too few patients")
    return train_records, val_records


#: The subset of ``../shared/data/nih-cxr`` that 1.1.0 never saw (added for 2.0).
RANDOM_SUBSET = "nih_random621"
#: 1.1.0's head (before the "No finding" output): its split was stratified over these outputs.
V1_HEAD_OUTPUTS = 15


def v1_compatible_split(
    records: Sequence[Record], val_fraction: float = 0.25, seed: int = 0
) -> tuple[list[Record], list[Record]]:
    """The 2.0 split: validation patients that NO bundled model has trained on.

    Validation = the validation patients of model 1.1.0 (``patient_split`` with the same seed and
    fraction over the images that are not in ``nih_random621``: the 639-image set 1.1.0 was
    trained on) plus a seeded, label-stratified ``val_fraction`` of the ``nih_random621`` patients
    that 1.1.0 did not train on. A random-sample patient who also has images in the 639-image set
    follows that patient's side (1.1.0 training -> 2.0 training). So 2.0 and 1.1.0 can be
    compared on the same validation patients, and neither has seen them.

    Returns
    -------
    (train, validation)
        Each in the input order; no patient appears in both.
    """
    old = [r for r in records if r.subset != RANDOM_SUBSET]
    new = [r for r in records if r.subset == RANDOM_SUBSET]
    if not old or not new:
        raise ValueError(f"the v1-compatible split needs both {RANDOM_SUBSET} and other images")
    old_train, old_val = patient_split(old, val_fraction, seed, n_labels=V1_HEAD_OUTPUTS)
    train_p = {r.patient_id for r in old_train}
    val_p = {r.patient_id for r in old_val}
    free = [r for r in new if r.patient_id not in train_p and r.patient_id not in val_p]
    if free:
        _, new_val = patient_split(free, val_fraction, seed)
        val_p |= {r.patient_id for r in new_val}
    train_records = [r for r in records if r.patient_id not in val_p]
    val_records = [r for r in records if r.patient_id in val_p]
    return train_records, val_records


def make_split(
    records: Sequence[Record], kind: str, val_fraction: float, seed: int
) -> tuple[list[Record], list[Record]]:
    """Dispatch on the config's ``split``: ``stratified`` | ``v1-compatible``."""
    if kind == "stratified":
        return patient_split(records, val_fraction, seed)
    if kind == "v1-compatible":
        return v1_compatible_split(records, val_fraction, seed)
    raise ValueError(f"unknown split {kind!r} (stratified | v1-compatible)")
