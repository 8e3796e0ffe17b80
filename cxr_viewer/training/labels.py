"""Label spaces and the explicit NIH ChestX-ray14 -> VinDr-CXR label map.

The bundled model is trained on NIH ChestX-ray14 images. Its output head (``MODEL_LABELS``) holds
the nine NIH labels that score a VinDr-CXR finding, followed by NIH extras that the viewer does not
rank among the 14 VinDr-CXR findings (``finding=None`` on the card).

Map (NIH -> VinDr-CXR):

==================  ======================
NIH                 VinDr-CXR
==================  ======================
Atelectasis         Atelectasis
Cardiomegaly        Cardiomegaly
Consolidation       Consolidation
Infiltration        Infiltration
Effusion            Pleural effusion
Mass, Nodule        Nodule/Mass (merged: positive when either is)
Pleural_Thickening  Pleural thickening
Pneumothorax        Pneumothorax
Fibrosis            Pulmonary fibrosis
==================  ======================

Aortic enlargement, Calcification, ILD, Lung Opacity and Other lesion have no NIH label: a model
trained on NIH data does not score them (``NOT_SCORED_BY_NIH``).
"""

from __future__ import annotations

from collections.abc import Mapping

from cxr_viewer.inference.findings import NO_FINDING, VINDR_FINDINGS

#: The 14 NIH ChestX-ray14 finding labels (column names of the NIH files, "No Finding" excluded).
NIH_LABELS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Effusion",
    "Emphysema",
    "Fibrosis",
    "Hernia",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pleural_Thickening",
    "Pneumonia",
    "Pneumothorax",
)

#: NIH label -> VinDr-CXR finding. Mass and Nodule both map to the merged "Nodule/Mass".
NIH_TO_VINDR: Mapping[str, str] = {
    "Atelectasis": "Atelectasis",
    "Cardiomegaly": "Cardiomegaly",
    "Consolidation": "Consolidation",
    "Infiltration": "Infiltration",
    "Effusion": "Pleural effusion",
    "Mass": "Nodule/Mass",
    "Nodule": "Nodule/Mass",
    "Pleural_Thickening": "Pleural thickening",
    "Pneumothorax": "Pneumothorax",
    "Fibrosis": "Pulmonary fibrosis",
}

#: VinDr-CXR findings that no NIH label maps to.
NOT_SCORED_BY_NIH: tuple[str, ...] = tuple(
    f for f in VINDR_FINDINGS if f not in set(NIH_TO_VINDR.values())
)

#: Box-file spellings -> NIH label names ("Infiltrate" in NIH's BBox list, ChestX-Det spellings).
NIH_BOX_ALIASES: Mapping[str, str] = {
    "Infiltrate": "Infiltration",
    "Pleural Thickening": "Pleural_Thickening",  # ChestX-Det spelling
}

#: Output head of the NIH-trained model: (output name, VinDr-CXR finding or None for an extra).
#: The first nine score VinDr-CXR findings; "Nodule/Mass" is the merged Mass-or-Nodule label.
MODEL_LABELS: tuple[tuple[str, str | None], ...] = (
    ("Atelectasis", "Atelectasis"),
    ("Cardiomegaly", "Cardiomegaly"),
    ("Consolidation", "Consolidation"),
    ("Infiltration", "Infiltration"),
    ("Nodule/Mass", "Nodule/Mass"),
    ("Pleural effusion", "Pleural effusion"),
    ("Pleural thickening", "Pleural thickening"),
    ("Pneumothorax", "Pneumothorax"),
    ("Pulmonary fibrosis", "Pulmonary fibrosis"),
    ("Edema", None),
    ("Emphysema", None),
    ("Hernia", None),
    ("Pneumonia", None),
    ("Mass", None),
    ("Nodule", None),
    # 16th output: the image has none of the 14 NIH findings (NIH "No Finding"). 1 - P(No finding)
    # is the viewer's "Abnormal" triage score. Not one of the scored VinDr-CXR findings.
    ("No finding", NO_FINDING),
)

#: Output indices that score one of the 14 VinDr-CXR findings (No finding excluded).
SCORED_INDICES: tuple[int, ...] = tuple(
    i for i, (_, f) in enumerate(MODEL_LABELS) if f is not None and f != NO_FINDING
)
#: Index of the "No finding" output.
NO_FINDING_INDEX: int = next(i for i, (_, f) in enumerate(MODEL_LABELS) if f == NO_FINDING)

MODEL_LABEL_NAMES: tuple[str, ...] = tuple(name for name, _ in MODEL_LABELS)

#: Where each model output comes from in the NIH label space (tuple: positive if any is positive).
_MODEL_LABEL_SOURCES: Mapping[str, tuple[str, ...]] = {
    "Atelectasis": ("Atelectasis",),
    "Cardiomegaly": ("Cardiomegaly",),
    "Consolidation": ("Consolidation",),
    "Infiltration": ("Infiltration",),
    "Nodule/Mass": ("Mass", "Nodule"),
    "Pleural effusion": ("Effusion",),
    "Pleural thickening": ("Pleural_Thickening",),
    "Pneumothorax": ("Pneumothorax",),
    "Pulmonary fibrosis": ("Fibrosis",),
    "Edema": ("Edema",),
    "Emphysema": ("Emphysema",),
    "Hernia": ("Hernia",),
    "Pneumonia": ("Pneumonia",),
    "Mass": ("Mass",),
    "Nodule": ("Nodule",),
    "No finding": NIH_LABELS,  # positive when every NIH label is a known negative
}

#: VinDr-CXR finding -> model output name, for data sets labelled in VinDr-CXR terms.
_VINDR_TO_MODEL: Mapping[str, str] = {
    finding: name for name, finding in MODEL_LABELS if finding is not None
}

UNKNOWN = -1.0  # label value for "this data set does not annotate this label" (masked in the loss)


def nih_to_model_targets(nih: Mapping[str, float]) -> list[float]:
    """Map one image's NIH labels to the model head.

    Parameters
    ----------
    nih
        NIH label name -> 0/1 (or ``UNKNOWN``); labels absent from the mapping are unknown.

    Returns
    -------
    list of float
        One value per ``MODEL_LABELS`` entry: 1 positive, 0 negative, ``UNKNOWN`` (-1) not
        annotated. A merged label is positive when any source is positive, negative only when all
        sources are known negatives.
    """
    out: list[float] = []
    for name in MODEL_LABEL_NAMES:
        values = [float(nih.get(src, UNKNOWN)) for src in _MODEL_LABEL_SOURCES[name]]
        if name == "No finding":
            if any(v >= 1.0 for v in values):
                out.append(0.0)
            elif all(v == 0.0 for v in values):
                out.append(1.0)
            else:
                out.append(UNKNOWN)
            continue
        if any(v >= 1.0 for v in values):
            out.append(1.0)
        elif all(v == 0.0 for v in values):
            out.append(0.0)
        else:
            out.append(UNKNOWN)
    return out


def vindr_to_model_targets(positive_findings: set[str]) -> list[float]:
    """Map one VinDr-CXR image's positive findings to the model head.

    Every VinDr-CXR finding that a model output scores is annotated (0 or 1); NIH extras that the
    VinDr-CXR set does not annotate (Edema, Emphysema, Hernia, Pneumonia, separate Mass/Nodule)
    are ``UNKNOWN``.
    """
    out: list[float] = []
    for _name, finding in MODEL_LABELS:
        if finding == NO_FINDING:
            out.append(0.0 if positive_findings & set(VINDR_FINDINGS) else 1.0)
        elif finding is None:
            out.append(UNKNOWN)
        else:
            out.append(1.0 if finding in positive_findings else 0.0)
    return out


def model_label_for_box(finding: str) -> str | None:
    """Model output name that a box label (NIH or VinDr-CXR spelling) localizes, or None."""
    finding = NIH_BOX_ALIASES.get(finding, finding)
    if finding in _VINDR_TO_MODEL:
        return _VINDR_TO_MODEL[finding]
    if finding in NIH_TO_VINDR:
        return _VINDR_TO_MODEL[NIH_TO_VINDR[finding]]
    if finding in MODEL_LABEL_NAMES:
        return finding
    return None
