"""Coded concepts used in the DICOM results (SR, Parametric Map, presentation state).

Rule: a code under a public scheme (DCM, SCT, LN, UCUM) is used only when it appears in DICOM
PS3.16 with that meaning (``tests/test_export_sr.py`` checks every one against the PS3.16
concept table that pydicom ships). Everything else gets a code under our private coding scheme
designator :data:`PRIVATE_SCHEME` ("99CXRV"; PS3.3 8.2: designators starting with "99" are
private), documented in ``docs/dicom-results.md``.

The 14 VinDr-CXR findings
-------------------------
======================  ===============================  =====================================
finding                 code                             why
======================  ===============================  =====================================
Aortic enlargement      99CXRV AORTIC_ENLARGED           no PS3.16 concept
Atelectasis             99CXRV ATELECTASIS               PS3.16 has only "Plate-like atelectasis"
Calcification           SCT 18115005 Pathologic calc.    CID 6335..6338
Cardiomegaly            SCT 287272002 Cardiomegaly       CID 12248
Consolidation           99CXRV CONSOLIDATION             no PS3.16 concept
ILD                     99CXRV ILD                       DCM 112004 is a pattern, not the disease
Infiltration            DCM 112121 Infiltrate            CID 6102/6104 (chest findings)
Lung Opacity            DCM 112001 Opacity               CID 6102/6104
Nodule/Mass             99CXRV NODULE_MASS               SCT Nodule and Mass are two concepts
Other lesion            99CXRV OTHER_LESION              a catch-all of the data set
Pleural effusion        SCT 60046008 Pleural effusion    CID 645
Pleural thickening      99CXRV PLEURAL_THICKEN           no PS3.16 concept
Pneumothorax            SCT 36118008 Pneumothorax        CID 6102/6105
Pulmonary fibrosis      99CXRV PULM_FIBROSIS             SCT 112674009 is generic "Fibrosis"
======================  ===============================  =====================================
"""

from __future__ import annotations

from dataclasses import dataclass

from cxr_viewer.inference.findings import VINDR_FINDINGS

PRIVATE_SCHEME = "99CXRV"
PRIVATE_SCHEME_NAME = "cxr-viewer private codes"
PRIVATE_SCHEME_VERSION = "1"


@dataclass(frozen=True)
class Concept:
    """(code value, coding scheme designator, code meaning), as in a Code Sequence item."""

    value: str
    scheme: str
    meaning: str

    @property
    def is_private(self) -> bool:
        return self.scheme == PRIVATE_SCHEME

    def coded(self):  # -> highdicom.sr.CodedConcept
        """The highdicom CodedConcept (highdicom imported lazily: it is slow to import)."""
        from highdicom.sr import CodedConcept

        return CodedConcept(self.value, self.scheme, self.meaning)


def _p(value: str, meaning: str) -> Concept:
    return Concept(value, PRIVATE_SCHEME, meaning)


FINDING_CONCEPTS: dict[str, Concept] = {
    "Aortic enlargement": _p("AORTIC_ENLARGED", "Aortic enlargement"),
    "Atelectasis": _p("ATELECTASIS", "Atelectasis"),
    "Calcification": Concept("18115005", "SCT", "Pathologic calcification"),
    "Cardiomegaly": Concept("287272002", "SCT", "Cardiomegaly"),
    "Consolidation": _p("CONSOLIDATION", "Consolidation"),
    "ILD": _p("ILD", "Interstitial lung disease"),
    "Infiltration": Concept("112121", "DCM", "Infiltrate"),
    "Lung Opacity": Concept("112001", "DCM", "Opacity"),
    "Nodule/Mass": _p("NODULE_MASS", "Nodule or mass"),
    "Other lesion": _p("OTHER_LESION", "Other lesion"),
    "Pleural effusion": Concept("60046008", "SCT", "Pleural effusion"),
    "Pleural thickening": _p("PLEURAL_THICKEN", "Pleural thickening"),
    "Pneumothorax": Concept("36118008", "SCT", "Pneumothorax"),
    "Pulmonary fibrosis": _p("PULM_FIBROSIS", "Pulmonary fibrosis"),
}
assert tuple(FINDING_CONCEPTS) == VINDR_FINDINGS

#: Scores that are not one of the 14 findings.
ABNORMAL = _p("ABNORMAL", "Abnormal chest radiograph")  # any finding present
NO_FINDING = _p("NO_FINDING", "No finding")  # the model's "No finding" output

# Concept names of the content items.
PROBABILITY = Concept("122157", "DCM", "Probability")
THRESHOLD = Concept("122411", "DCM", "Threshold Value")
FLAGGED = _p("FLAGGED", "Flagged at the active operating point")
SCORED = _p("SCORED", "Scored by this model")
OPERATING_MODE = _p("OPERATING_MODE", "Operating mode")
COMMENT = Concept("121106", "DCM", "Comment")
YES = Concept("373066001", "SCT", "Yes")
NO = Concept("373067005", "SCT", "No")
NO_UNITS = Concept("1", "UCUM", "no units")
PROCEDURE = Concept("43468-8", "LN", "XR unspecified body region")  # CID 100
REPORT_TITLE = Concept("126000", "DCM", "Imaging Measurement Report")  # CID 7021
# Parametric Map: what a heat-map value is (quantity definition) and the map's derivation
HEATMAP_QUANTITY = _p("CLASS_ACTIVATION", "Class activation (heat map), normalised to 0..1")

PUBLIC_CONCEPTS: tuple[Concept, ...] = tuple(
    c
    for c in (
        *FINDING_CONCEPTS.values(),
        PROBABILITY,
        THRESHOLD,
        COMMENT,
        YES,
        NO,
        NO_UNITS,
        PROCEDURE,
        REPORT_TITLE,
    )
    if not c.is_private
)


def finding_for_concept(value: str, scheme: str) -> str | None:
    """The VinDr-CXR finding a (code value, scheme) stands for, or None."""
    for finding, concept in FINDING_CONCEPTS.items():
        if concept.value == value and concept.scheme == scheme:
            return finding
    return None
