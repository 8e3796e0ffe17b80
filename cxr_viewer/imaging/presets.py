"""Window presets: small frozen policy objects that resolve to a :class:`VOI` for an image.

Each preset has a ``label`` (for menus and the 1-9 keys) and ``resolve(image) -> VOI``. They hold
policy, not data, so one preset can be applied to any image (e.g. "Auto" while paging a series).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cxr_viewer.imaging.window import VOI
from cxr_viewer.io.types import ImageData

__all__ = [
    "VOI",
    "HeaderWindow",
    "HeaderVOILut",
    "AutoWindow",
    "FullRange",
    "ManualWindow",
    "AsStored",
    "Preset",
    "default_preset",
    "presets_for",
    "min_max_window",
]


def min_max_window(image: ImageData, frame: int | None = None) -> tuple[float, float]:
    """dcmtk's min-max window of the modality values: ``C = (min+max+1)/2, W = max-min+1``.

    Parameters
    ----------
    image
        The image.
    frame
        One frame, or ``None`` for all frames.

    Returns
    -------
    tuple of float
        (center, width).
    """
    values = image.frames if frame is None else image.frames[frame]
    lo, hi = float(np.min(values)), float(np.max(values))
    return (lo + hi + 1.0) / 2.0, hi - lo + 1.0


@dataclass(frozen=True)
class HeaderWindow:
    """The ``index``-th (0-based) header Window Center/Width, with its VOI LUT Function."""

    index: int = 0

    @property
    def label(self) -> str:
        return f"Header window {self.index + 1}"

    def label_for(self, image: ImageData) -> str:
        """Label using the window's explanation when the image has one."""
        if self.index < len(image.windows) and image.windows[self.index].explanation:
            return image.windows[self.index].explanation
        return self.label

    def resolve(self, image: ImageData) -> VOI:
        """The header window as a VOI. Raises IndexError when the image has no such window."""
        if self.index >= len(image.windows):
            raise IndexError(f"{image.path}: no header window {self.index + 1}")
        w = image.windows[self.index]
        return VOI.window(w.center, w.width, w.function, label=self.label_for(image))


@dataclass(frozen=True)
class HeaderVOILut:
    """The ``index``-th (0-based) VOI LUT Sequence item."""

    index: int = 0

    @property
    def label(self) -> str:
        return f"VOI LUT {self.index + 1}"

    def label_for(self, image: ImageData) -> str:
        if self.index < len(image.voi_luts) and image.voi_luts[self.index].explanation:
            return f"{image.voi_luts[self.index].explanation} (LUT)"
        return self.label

    def resolve(self, image: ImageData) -> VOI:
        if self.index >= len(image.voi_luts):
            raise IndexError(f"{image.path}: no VOI LUT {self.index + 1}")
        return VOI.lut(self.index, label=self.label_for(image))


@dataclass(frozen=True)
class AutoWindow:
    """Linear window spanning the ``low_pct``..``high_pct`` percentiles of frame 0."""

    low_pct: float = 0.5
    high_pct: float = 99.5

    @property
    def label(self) -> str:
        return "Auto"

    def resolve(self, image: ImageData) -> VOI:
        values = image.pixels
        if values.size > 1_000_000:  # a strided sample is plenty for percentiles
            step = int(np.ceil(np.sqrt(values.size / 1_000_000)))
            values = values[::step, ::step]
        lo, hi = np.percentile(values, [self.low_pct, self.high_pct])
        lo, hi = float(lo), float(hi)
        if hi <= lo:
            return FullRange().resolve(image)
        return VOI.window((lo + hi + 1.0) / 2.0, hi - lo + 1.0, "LINEAR", label=self.label)


@dataclass(frozen=True)
class FullRange:
    """dcmtk's min-max window over all frames."""

    @property
    def label(self) -> str:
        return "Full range"

    def resolve(self, image: ImageData) -> VOI:
        c, w = min_max_window(image)
        return VOI.window(c, w, "LINEAR", label=self.label)


@dataclass(frozen=True)
class ManualWindow:
    """A window the user set (drag, typed values)."""

    center: float
    width: float
    function: str = "LINEAR"

    @property
    def label(self) -> str:
        return f"C {self.center:g} / W {self.width:g}"

    def resolve(self, image: ImageData) -> VOI:
        return VOI.window(self.center, self.width, self.function, label=self.label)


@dataclass(frozen=True)
class AsStored:
    """Show an 8-bit display image (PNG/JPEG/TIFF) exactly as stored: value v -> grey level v.

    A raster file is already a display rendering, so stretching it by its min-max would change
    its contrast (and feed the model a different image than the one it was trained on). The
    window C=128, W=256 is the identity under the LINEAR formula of PS3.3 C.11.2.1.2.1.
    """

    @property
    def label(self) -> str:
        return "As stored"

    def resolve(self, image: ImageData) -> VOI:
        return VOI.window(128.0, 256.0, "LINEAR", label=self.label)


def is_display_raster(image: ImageData) -> bool:
    """True for an 8-bit non-DICOM image, whose values already are display grey levels."""
    return image.source_format != "DICOM" and image.frames.dtype == np.uint8


Preset = HeaderWindow | HeaderVOILut | AutoWindow | FullRange | ManualWindow | AsStored


def default_preset(image: ImageData) -> Preset:
    """What opens first: the first header window (with its function), else the min-max window;
    an 8-bit PNG/JPEG/TIFF opens as stored.

    This is what ``dcmj2pnm`` shows as ``ww`` in the corpus and what ``cxr-viewer render`` writes.
    """
    if image.windows:
        return HeaderWindow(0)
    if is_display_raster(image):
        return AsStored()
    return FullRange()


def presets_for(image: ImageData) -> list[Preset]:
    """Presets offered for this image, in key order (1-9).

    Header windows first (labelled by explanation), then VOI LUT items, then Auto, Full range.
    """
    out: list[Preset] = [HeaderWindow(i) for i in range(len(image.windows))]
    out += [HeaderVOILut(i) for i in range(len(image.voi_luts))]
    if is_display_raster(image):
        out.append(AsStored())
    out += [AutoWindow(), FullRange()]
    return out
