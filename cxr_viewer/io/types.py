"""The one frozen image type every loader returns (DICOM, PNG, JPEG, TIFF).

Pixel values are stored *after* the Modality LUT stage (Rescale Slope/Intercept, or a Modality LUT
Sequence), i.e. in the units the VOI stage works on (DICOM PS3.3 C.11.1). Integer-valued results
stay integer (so the display can use a precomputed LUT); a non-integer rescale gives float32.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def new_image_id() -> str:
    """A fresh id for one loaded image; async results carry it so stale ones can be dropped."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class VOIWindow:
    """One header window (Window Center/Width item) with its VOI LUT Function."""

    center: float
    width: float
    explanation: str = ""
    function: str = "LINEAR"  # LINEAR | LINEAR_EXACT | SIGMOID (PS3.3 C.11.2.1.3)


@dataclass(frozen=True)
class VOILut:
    """One VOI LUT Sequence item (PS3.3 C.11.2.1.1)."""

    first_mapped: int  # LUT Descriptor value 2: first input value mapped
    bits: int  # LUT Descriptor value 3: bits per entry
    data: np.ndarray = field(repr=False)  # the LUT entries (read-only)
    explanation: str = ""


@dataclass(frozen=True)
class PixelSpacing:
    """Physical size of one pixel and the attribute it came from."""

    row_mm: float  # spacing between rows (vertical)
    col_mm: float  # spacing between columns (horizontal)
    source: str  # "PixelSpacing" | "ImagerPixelSpacing" | "NominalScannedPixelSpacing"
    note: str = ""  # e.g. "at the detector; not corrected for magnification"


@dataclass(frozen=True)
class OverlayPlane:
    """One DICOM overlay plane (group 60xx, PS3.3 C.9.2), as a boolean bitmap.

    ``bitmap`` has shape (overlay frames, rows, cols); its pixel (0, 0) lies at image pixel
    ``origin`` (0-based row, col; may be negative or beyond the image: drawing clips).
    ``first_frame`` is the index, in the loaded image's ``frames``, of the bitmap's first frame;
    ``all_frames`` means one bitmap frame applies to every image frame.
    """

    group: int  # 0x6000, 0x6002, ... 0x601E
    bitmap: np.ndarray = field(repr=False)  # bool, read-only
    origin: tuple[int, int] = (0, 0)
    first_frame: int = 0
    all_frames: bool = True
    kind: str = "G"  # Overlay Type: G graphics, R region of interest
    description: str = ""
    embedded: bool = False  # in unused high bits of Pixel Data (retired) rather than 60xx,3000

    def frame_bitmap(self, frame: int) -> np.ndarray | None:
        """The bitmap drawn on image frame ``frame`` (index into ``frames``), or None."""
        if self.all_frames:
            return self.bitmap[0]
        k = frame - self.first_frame
        return self.bitmap[k] if 0 <= k < self.bitmap.shape[0] else None


@dataclass(frozen=True)
class ImageData:
    """A loaded grayscale image, ready for the display pipeline and the model.

    ``frames`` has shape (n_frames, rows, cols); ``pixels`` is frame 0. ``stored`` keeps the stored
    values (before the Modality LUT) for the pixel readout; it is None when they equal ``frames``.
    """

    path: str
    frames: np.ndarray = field(repr=False)
    photometric: str = "MONOCHROME2"  # MONOCHROME1 | MONOCHROME2
    presentation_lut_shape: str | None = None  # IDENTITY | INVERSE | None
    windows: tuple[VOIWindow, ...] = ()
    voi_luts: tuple[VOILut, ...] = ()
    spacing: PixelSpacing | None = None
    modality: str = ""
    units: str = ""  # from Rescale Type (e.g. "HU"), or "" when unknown / unspecified
    bits_stored: int = 8
    is_signed: bool = False
    transfer_syntax: str = ""  # name, e.g. "JPEG 2000 Image Compression (Lossless Only)"
    source_format: str = "DICOM"  # DICOM | PNG | JPEG | TIFF
    tags: Mapping[str, str] = field(default_factory=dict)  # PatientName, PatientID, StudyDate...
    study_uid: str = ""
    series_uid: str = ""
    sop_uid: str = ""
    instance_number: int | None = None
    stored: np.ndarray | None = field(default=None, repr=False)
    header: Any = field(default=None, repr=False, compare=False)  # pydicom Dataset, no PixelData
    notes: tuple[str, ...] = ()  # what the loader noticed and handled (e.g. skipped empty LUT)
    image_id: str = field(default_factory=new_image_id)
    # Rescale applied to ``stored`` to give ``frames`` (1, 0 when none or a Modality LUT was used);
    # lets the display build its LUT over the integer stored values for a non-integer rescale.
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    # Overlay planes (60xx) the display draws when overlays are shown (as dcmtk does by default).
    overlays: tuple[OverlayPlane, ...] = ()

    @property
    def pixels(self) -> np.ndarray:
        """Frame 0, shape (rows, cols)."""
        return self.frames[0]

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    @property
    def inverted_display(self) -> bool:
        """True when the display must invert (MONOCHROME1 XOR Presentation LUT Shape INVERSE)."""
        mono1 = self.photometric == "MONOCHROME1"
        inverse = self.presentation_lut_shape == "INVERSE"
        # MONOCHROME1 + INVERSE is *not* inverted a second time (dcmtk, corpus README).
        return mono1 or (inverse and not mono1)
