"""DICOM Secondary Capture of the annotated export, filed into the source image's study.

Built with highdicom (``SCImage.from_ref_dataset``): the patient and study modules are copied from
the source header so a PACS files the capture into the same study, in a new series
"AI second opinion". The pixels carry burned-in text (Burned In Annotation = YES); the algorithm
(model name, version, weights hash) is named in the Contributing Equipment Sequence and the
findings are summarised in Image Comments and Derivation Description.

Note that the DICOM header keeps the source's patient identity by design (that is how a PACS files
it); "include patient details" only controls the text burned into the pixels.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from cxr_viewer import __version__
from cxr_viewer.export.annotated import (
    METHOD_LABELS,
    ExportError,
    ExportRequest,
    describe_voi,
    summary_lines,
)
from cxr_viewer.export.dicom_common import (
    MODEL_NAME,
    SOFTWARE_VERSION,
    from_source_header,
    model_equipment,
    new_instance,
)

SERIES_DESCRIPTION = "AI second opinion"
SERIES_NUMBER = 9901  # high, so the capture sorts after the acquired series

_UID_RE = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
_OPPOSITE = str.maketrans("LRAPHF", "RLPAFH")


def orient_patient_orientation(
    orientation: tuple[str, str], *, flip_h: bool, flip_v: bool, rotation_k: int
) -> tuple[str, str]:
    """Patient Orientation (row direction, column direction) after the viewer's flips/rotation.

    Parameters
    ----------
    orientation
        (0020,0020) of the source, e.g. ``("L", "F")`` for a PA chest.
    flip_h, flip_v, rotation_k
        As in :class:`~cxr_viewer.export.annotated.ExportRequest` (flips first, then quarter turns
        clockwise).

    Returns
    -------
    tuple of str
        The orientation of the exported image region.
    """
    row_dir, col_dir = orientation
    if flip_h:
        row_dir = row_dir.translate(_OPPOSITE)
    if flip_v:
        col_dir = col_dir.translate(_OPPOSITE)
    for _ in range(rotation_k % 4):
        # one clockwise turn: new columns run along the old rows upwards, new rows along old columns
        row_dir, col_dir = col_dir.translate(_OPPOSITE), row_dir
    return row_dir, col_dir


def _findings_comment(request: ExportRequest) -> str:
    return "; ".join(summary_lines(request))[:10240]  # LT: at most 10240 characters


def _derivation(request: ExportRequest) -> str:
    parts = [f"Annotated screenshot by cxr-viewer {__version__}"]
    parts.append("window " + describe_voi(request.voi, request.window_label))
    if request.invert:
        parts.append("inverted")
    if request.finding is not None and request.cams is not None:
        method = METHOD_LABELS.get(request.cams.method, request.cams.method)
        parts.append(f"heat map {request.finding} ({method})")
    if request.measurements:
        parts.append(f"{len(request.measurements)} measurement(s)")
    parts.append("side panel with AI findings")
    return "; ".join(parts)[:1024]  # ST: at most 1024 characters


def build_secondary_capture(rgb: np.ndarray, request: ExportRequest):  # -> highdicom SCImage
    """Build (without writing) the Secondary Capture dataset of an annotated export.

    Parameters
    ----------
    rgb
        (H, W, 3) uint8 from :func:`~cxr_viewer.export.annotated.compose_annotated`.
    request
        The request it was composed from; ``request.image.header`` is the reference dataset.

    Returns
    -------
    highdicom.sc.SCImage
        A pydicom Dataset subclass.

    Raises
    ------
    ExportError
        When the source is not DICOM or lacks a Study Instance UID, or the array is not RGB.
    """
    import highdicom as hd
    from pydicom.dataset import Dataset
    from pydicom.uid import ExplicitVRLittleEndian

    image = request.image
    ref = image.header
    if ref is None or image.source_format != "DICOM":
        raise ExportError(
            image.path,
            f"a DICOM Secondary Capture needs a DICOM source to file it into a study; "
            f"this is a {image.source_format} image (export PNG or JPEG instead)",
        )
    if not str(getattr(ref, "StudyInstanceUID", "") or ""):
        raise ExportError(image.path, "the source has no Study Instance UID")
    arr = np.ascontiguousarray(np.asarray(rgb))
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ExportError(
            image.path, f"expected (H, W, 3) uint8 pixels, got {arr.dtype} {arr.shape}"
        )

    pred = request.prediction
    card = request.card
    model_name = pred.model_name if pred is not None else (card.name if card else "")
    model_version = pred.model_version if pred is not None else (card.version if card else "")
    weights = pred.weights_sha256 if pred is not None else (card.weights_sha256 if card else "")
    equipment = model_equipment(model_name, model_version, weights, "")

    source_orientation = [str(v) for v in (ref.get("PatientOrientation") or [])]
    known = len(source_orientation) == 2 and all(source_orientation)
    with from_source_header(image, "copied into a Secondary Capture"):
        sc = hd.sc.SCImage.from_ref_dataset(
            ref_dataset=ref,
            pixel_array=arr,
            photometric_interpretation="RGB",
            bits_allocated=8,
            coordinate_system="PATIENT",
            **new_instance(SERIES_NUMBER, device=False),
            # highdicom insists on single-letter values here; the real value is set below.
            patient_orientation=("L", "F"),
            transfer_syntax_uid=ExplicitVRLittleEndian,
            contributing_equipment=equipment or None,
            series_description=SERIES_DESCRIPTION,
            software_versions=SOFTWARE_VERSION,
            manufacturer_model_name=MODEL_NAME,
        )
    if known:
        oriented = orient_patient_orientation(
            (source_orientation[0], source_orientation[1]),
            flip_h=request.flip_h,
            flip_v=request.flip_v,
            rotation_k=request.rotation_k,
        )
        sc.PatientOrientation = list(oriented)
    else:
        sc.PatientOrientation = None  # Type 2: unknown -> empty, never guessed
    sc.BurnedInAnnotation = "YES"
    sc.ConversionType = "WSD"  # workstation
    sc.ImageComments = _findings_comment(request)
    sc.DerivationDescription = _derivation(request)
    _copy_laterality_and_body_part(ref, sc)
    if _valid_uid(ref.get("SOPClassUID")) and _valid_uid(ref.get("SOPInstanceUID")):
        # an invalid source UID (seen in the wild) is not propagated: the reference is optional
        item = Dataset()
        item.ReferencedSOPClassUID = ref.SOPClassUID
        item.ReferencedSOPInstanceUID = ref.SOPInstanceUID
        sc.SourceImageSequence = [item]
    return sc


#: Body parts that are not paired: no Laterality needed (General Series, Type 2C).
UNPAIRED_BODY_PARTS = frozenset(
    {
        "CHEST",
        "ABDOMEN",
        "PELVIS",
        "HEAD",
        "SKULL",
        "NECK",
        "SPINE",
        "CSPINE",
        "TSPINE",
        "LSPINE",
        "WHOLEBODY",
        "HEART",
        "CHESTABDOMEN",
        "ABDOMENPELVIS",
    }
)


def _valid_uid(value: object) -> bool:
    """A syntactically valid UID (PS3.5 9.1): digits and dots, no leading zeros, <= 64 chars."""
    text = str(value or "")
    return 0 < len(text) <= 64 and _UID_RE.fullmatch(text) is not None


def _copy_laterality_and_body_part(ref: Any, sc: Any) -> None:
    laterality = str(ref.get("Laterality") or "").upper()
    image_laterality = str(ref.get("ImageLaterality") or "").upper()
    if laterality in ("R", "L"):
        sc.Laterality = laterality
    if image_laterality in ("R", "L", "U", "B"):
        sc.ImageLaterality = image_laterality
    body_part = str(ref.get("BodyPartExamined") or "").upper()
    if body_part:
        sc.BodyPartExamined = ref.BodyPartExamined
    # Laterality is Type 2C (a paired or unknown body part without Image Laterality): when the
    # source does not say, it is present and empty (unknown), never guessed.
    if "Laterality" not in sc and "ImageLaterality" not in sc:
        if body_part not in UNPAIRED_BODY_PARTS:
            sc.Laterality = None


def write_secondary_capture(rgb: np.ndarray, request: ExportRequest, path: str | Path) -> Path:
    """Write the annotated export as a DICOM Secondary Capture Image (Part 10 file).

    Parameters
    ----------
    rgb
        (H, W, 3) uint8 from :func:`~cxr_viewer.export.annotated.compose_annotated`.
    request
        The request it was composed from (source header, prediction, model).
    path
        Output file (``.dcm``).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ExportError
        See :func:`build_secondary_capture`.
    """
    path = Path(path)
    sc = build_secondary_capture(rgb, request)
    from cxr_viewer.fsutil import atomic_path

    with atomic_path(path) as tmp:  # a killed export leaves no partial file
        sc.save_as(tmp, enforce_file_format=True)
    return path
