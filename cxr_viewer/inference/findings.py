"""The 14 VinDr-CXR findings the viewer reports, in VinBigData class-id order (0..13)."""

from __future__ import annotations

import re

VINDR_FINDINGS: tuple[str, ...] = (
    "Aortic enlargement",
    "Atelectasis",
    "Calcification",
    "Cardiomegaly",
    "Consolidation",
    "ILD",
    "Infiltration",
    "Lung Opacity",
    "Nodule/Mass",
    "Other lesion",
    "Pleural effusion",
    "Pleural thickening",
    "Pneumothorax",
    "Pulmonary fibrosis",
)
NO_FINDING = "No finding"  # VinBigData class id 14


def finding_slug(name: str) -> str:
    """File-name slug: lower case, every run of other characters -> ``-``.

    >>> finding_slug("Nodule/Mass")
    'nodule-mass'
    """
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
