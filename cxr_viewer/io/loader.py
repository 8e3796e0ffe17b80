"""One entry point for every supported file: :func:`load_image`."""

from __future__ import annotations

from pathlib import Path

from cxr_viewer.errors import ImageRefused
from cxr_viewer.io.types import ImageData


def load_image(path: str | Path, frame: int | None = None) -> ImageData:
    """Load a DICOM, PNG, JPEG or TIFF file for display and analysis.

    The format is chosen from the file's first bytes (not its name): PNG/JPEG/TIFF signatures go
    to Pillow, everything else is tried as DICOM (with or without the 128-byte preamble).

    Parameters
    ----------
    path
        The file.
    frame
        DICOM multi-frame only: ``None`` decodes all frames; an index decodes just that frame.

    Returns
    -------
    ImageData
        Pixels after the Modality LUT, header windows/LUTs, spacing and display tags.

    Raises
    ------
    ImageRefused
        When the file cannot be shown correctly; the message names the file and the cause.
    """
    from cxr_viewer.io.dicom import load_dicom
    from cxr_viewer.io.raster import load_raster, sniff_raster

    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(132)
    except FileNotFoundError as exc:
        raise ImageRefused(str(p), "file not found") from exc
    except IsADirectoryError as exc:
        raise ImageRefused(str(p), "is a folder, not a file") from exc
    except OSError as exc:
        raise ImageRefused(str(p), f"cannot be read ({exc.strerror or exc})") from exc
    if not head:
        raise ImageRefused(str(p), "empty file")
    fmt = sniff_raster(head)
    if fmt is not None and head[128:132] != b"DICM":
        if frame not in (None, 0):
            raise ImageRefused(str(p), f"frame {frame + 1} requested; {fmt} has one frame")
        return load_raster(p)
    return load_dicom(p, frame=frame)
