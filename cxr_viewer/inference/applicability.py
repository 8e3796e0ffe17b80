"""Is this image something the model was made for? Refuse what is clearly not.

The bundled model (and any model this viewer ships) reads frontal chest radiographs. Running it on
a hip radiograph, a CT slice or a lateral view gives numbers that look like findings and mean
nothing, so such images are refused with a message that names the file and the reason, and images
whose header does not say what they are get a warning that travels with the prediction.
"""

from __future__ import annotations

from cxr_viewer.errors import CxrError
from cxr_viewer.io.types import ImageData

#: DICOM Modality defined terms for projection radiographs (PS3.3 C.7.3.1.1.1).
RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "RG"})
#: Body Part Examined values that describe the chest (PS3.16 CID 4031 code meanings as used in
#: the attribute, plus common vendor spellings).
CHEST_BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG", "CHEST_LAT", "CHESTPA", "TORAX", "THX"})
#: View Position values of lateral and decubitus projections (the model saw PA/AP only).
NON_FRONTAL_VIEWS = frozenset({"LL", "RL", "LATERAL", "LAT", "LLD", "RLD", "XTABLE"})


class NotApplicable(CxrError):
    """The model is not meant for this image (wrong modality, body part or view)."""

    def __init__(self, path: str, cause: str) -> None:
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{self.path}: not analysed: {cause}")


def assess(image: ImageData) -> tuple[str, ...]:
    """Check that a frontal-chest-radiograph model may read ``image``.

    Parameters
    ----------
    image
        A loaded image.

    Returns
    -------
    tuple of str
        Warnings to show with the results (e.g. the header does not name the body part).

    Raises
    ------
    NotApplicable
        The header says it is another modality, another body part, or a lateral view.
    """
    if image.source_format != "DICOM":
        return ("no DICOM header: the model assumes a frontal chest radiograph",)
    warnings: list[str] = []
    modality = (image.modality or "").strip().upper()
    if modality and modality not in RADIOGRAPH_MODALITIES:
        raise NotApplicable(
            image.path, f"modality {modality}; the model reads chest radiographs (CR/DX)"
        )
    body_part = str(image.tags.get("BodyPartExamined", "") or "").strip().upper()
    if body_part and body_part not in CHEST_BODY_PARTS:
        raise NotApplicable(
            image.path, f"body part {body_part}; the model reads chest radiographs"
        )
    view = str(image.tags.get("ViewPosition", "") or "").strip().upper()
    if view in NON_FRONTAL_VIEWS:
        raise NotApplicable(
            image.path, f"view position {view}; the model was trained on frontal (PA/AP) views"
        )
    if not modality:
        warnings.append("modality not stated: the model assumes a chest radiograph")
    if not body_part:
        warnings.append("body part not stated: the model assumes a chest radiograph")
    if image.num_frames > 1:
        warnings.append(f"only frame 1 of {image.num_frames} is analysed")
    return tuple(warnings)
