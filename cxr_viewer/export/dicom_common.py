"""What the DICOM result objects (SR, Parametric Map, presentation state) share: the source
check, the series numbers, the equipment and the atomic write."""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cxr_viewer import DISCLAIMER, __version__
from cxr_viewer.export.annotated import ExportError
from cxr_viewer.fsutil import atomic_path
from cxr_viewer.io.types import ImageData

MANUFACTURER = "cxr-viewer"
MODEL_NAME = "cxr-viewer"
SOFTWARE_VERSION = f"cxr-viewer {__version__}"
DEVICE_SERIAL = "none"  # software: there is no serial number; Type 1 in the PM/GSPS IODs

# High series numbers so that results sort after the acquired series (the SC capture is 9901).
SR_SERIES_NUMBER = 9902
PM_SERIES_NUMBER = 9903
PR_SERIES_NUMBER = 9904

SR_SERIES_DESCRIPTION = "AI findings (SR)"
PM_SERIES_DESCRIPTION = "AI heat maps"
PR_SERIES_DESCRIPTION = "Presentation state"


def model_equipment(
    model_name: str, model_version: str, weights_sha256: str, contribution: str
) -> list[Any]:
    """The Contributing Equipment Sequence item naming the AI model (empty without a model).

    ``contribution`` says what the model contributed (e.g. "heat maps (gradcam)"); the
    disclaimer is always appended.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    if not model_name:
        return []
    return [
        hd.ContributingEquipment(
            manufacturer=MANUFACTURER,
            purpose_of_reference=codes.DCM.ProcessingEquipment,
            manufacturer_model_name=model_name[:64],
            software_versions=[model_version[:64] or "unknown", f"sha256:{weights_sha256[:57]}"],
            contribution_description=(
                f"AI algorithm {model_name} version {model_version}: {contribution}{DISCLAIMER}"
            )[:1024],
        )
    ]


def require_dicom_source(image: ImageData, what: str) -> Any:
    """The source header of ``image`` when a DICOM result can reference it.

    Raises
    ------
    ExportError
        When the image is not DICOM (PNG, JPEG: no Study/Series/SOP UIDs to file the result
        under) or lacks one of those UIDs.
    """
    ref = image.header
    if ref is None or image.source_format != "DICOM":
        raise ExportError(
            image.path,
            f"a DICOM {what} needs a DICOM source image to reference; this is a "
            f"{image.source_format} file without Study/Series/SOP Instance UIDs "
            "(no DICOM results are written for it)",
        )
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"):
        if not str(ref.get(keyword, "") or ""):
            raise ExportError(image.path, f"the source has no {keyword}; a DICOM {what} needs it")
    return with_type2_present(ref)


#: Patient and study attributes that are Type 2 in every IOD we write (PS3.3 C.7.1.1, C.7.2.1):
#: a result copies them from the source, so a source that omits them gets them empty (unknown).
TYPE2_COPIED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


_AGE = re.compile(r"[0-9]{3}[DWMY]")


def with_type2_present(ref: Any) -> Any:
    """``ref``, or a shallow copy fit to be copied into a result object.

    * absent :data:`TYPE2_COPIED` attributes become present and empty (real files omit them;
      highdicom needs them to build the copied modules);
    * an invalid Patient's Age (Type 3, e.g. ``62`` instead of ``062Y``, seen in the SIIM data)
      is left out rather than copied into an invalid object.

    Values are never invented; the source header itself is not changed.
    """
    missing = [k for k in TYPE2_COPIED if k not in ref]
    age = ref.get("PatientAge")
    bad_age = age is not None and age != "" and not _AGE.fullmatch(str(age))
    if not missing and not bad_age:
        return ref
    from pydicom.dataset import Dataset

    view = Dataset(ref)
    view.file_meta = getattr(ref, "file_meta", Dataset())
    for keyword in missing:
        setattr(view, keyword, None)
    if bad_age:
        del view.PatientAge
    return view


@contextlib.contextmanager
def quiet_source_names() -> Iterator[None]:
    """Names are copied from the source unchanged; highdicom warns about single-component names
    (anonymised IDs are), which is not an error."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=".*unlikely to represent the intended person name",
            category=UserWarning,
        )
        yield


def new_instance(series_number: int, *, device: bool = True) -> dict[str, Any]:
    """The highdicom keywords every export shares: a new series and SOP instance UID, instance 1,
    this software as the manufacturer and, where the IOD takes them (``device``), its model
    name, version and serial number."""
    import highdicom as hd

    kw: dict[str, Any] = {
        "series_instance_uid": hd.UID(),
        "series_number": series_number,
        "sop_instance_uid": hd.UID(),
        "instance_number": 1,
        "manufacturer": MANUFACTURER,
    }
    if device:
        kw.update(manufacturer_model_name=MODEL_NAME, software_versions=SOFTWARE_VERSION,
                  device_serial_number=DEVICE_SERIAL)
    return kw


@contextlib.contextmanager
def from_source_header(image: ImageData, how: str) -> Iterator[None]:
    """Build an instance from ``image``'s header: its names are copied quietly, and a header
    highdicom cannot use (e.g. a birth date that is not a DICOM date) is refused with an
    ExportError that says ``how`` it was to be used, never repaired silently."""
    with quiet_source_names():
        try:
            yield
        except (ValueError, TypeError, AttributeError) as exc:
            raise ExportError(image.path, f"the source header cannot be {how}: {exc}") from exc


def save_dataset(ds: Any, path: str | Path) -> Path:
    """Write a DICOM Part 10 file atomically (temp sibling + fsync + rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return path
