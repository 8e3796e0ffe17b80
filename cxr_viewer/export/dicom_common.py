"""What the DICOM result objects (SR, Parametric Map, presentation state) share: the source
check, the series numbers, the equipment and the atomic write."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cxr_viewer import __version__
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
    return ref


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


def save_dataset(ds: Any, path: str | Path) -> Path:
    """Write a DICOM Part 10 file atomically (temp sibling + fsync + rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return path
