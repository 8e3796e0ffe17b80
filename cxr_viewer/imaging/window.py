"""DICOM VOI (window/level) transforms, pure numpy (PS3.3 C.11.2.1.2 and C.11.2.1.1).

Every function maps modality-LUT output values to display values in ``[low, high]`` *before*
truncation to 8 bits. The arithmetic follows dcmtk's ``dcmimgle`` (``dimoopxt.h``) expression by
expression so that the truncated result is bit-identical to ``dcmj2pnm`` for LINEAR and SIGMOID:

* polarity is handled by swapping ``low`` and ``high`` (MONOCHROME1 renders with low=255,
  high=0), so MONOCHROME1 output is ``floor(255 - f)``, not ``255 - floor(f)``;
* LINEAR uses the borders ``c - 0.5 -/+ (w - 1) / 2`` and ``offset + x * gradient`` with
  ``offset = high - ((c - 0.5) / (w - 1) + 0.5) * (high - low)``;
* the 8-bit value is the C cast (truncation toward zero) of that double.

dcmtk ignores LINEAR_EXACT (it warns and uses LINEAR); we implement LINEAR_EXACT as the standard
defines it (C.11.2.1.3.2), which differs from LINEAR by at most one grey level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cxr_viewer.io.types import VOILut

WINDOW_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


@dataclass(frozen=True)
class VOI:
    """A resolved VOI transform: either a window or one VOI LUT Sequence item.

    Parameters
    ----------
    center, width
        Window Center / Width in modality units (``None`` for a LUT).
    function
        VOI LUT Function: ``LINEAR``, ``LINEAR_EXACT`` or ``SIGMOID``.
    lut_index
        0-based index into ``ImageData.voi_luts`` when this VOI is a VOI LUT item.
    label
        Human-readable description (for the UI and ``info``).
    """

    center: float | None = None
    width: float | None = None
    function: str = "LINEAR"
    lut_index: int | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if self.lut_index is None:
            if self.center is None or self.width is None:
                raise ValueError("a window VOI needs center and width")
            if self.function not in WINDOW_FUNCTIONS:
                raise ValueError(f"unknown VOI LUT Function {self.function!r}")
            if not np.isfinite(self.center) or not np.isfinite(self.width) or self.width <= 0:
                raise ValueError(f"invalid window C={self.center} W={self.width}")
        elif self.lut_index < 0:
            raise ValueError("lut_index must be >= 0")

    @property
    def is_lut(self) -> bool:
        """True when this VOI applies a VOI LUT Sequence item."""
        return self.lut_index is not None

    @classmethod
    def window(cls, center: float, width: float, function: str = "LINEAR", label: str = "") -> VOI:
        """A window VOI."""
        return cls(center=float(center), width=float(width), function=function.upper(), label=label)

    @classmethod
    def lut(cls, index: int, label: str = "") -> VOI:
        """A VOI LUT Sequence item (0-based index)."""
        return cls(lut_index=int(index), label=label)


def window_linear(
    values: np.ndarray, center: float, width: float, low: float = 0.0, high: float = 255.0
) -> np.ndarray:
    """LINEAR window (PS3.3 C.11.2.1.2.1), dcmtk arithmetic.

    Parameters
    ----------
    values
        Modality-LUT output values.
    center, width
        Window Center and Width (width >= 1 per the standard; narrower acts as a threshold).
    low, high
        Output for values below / above the window (swap them to invert).

    Returns
    -------
    numpy.ndarray
        float64 display values in ``[min(low, high), max(low, high)]``, not yet truncated.
    """
    x = np.asarray(values, dtype=np.float64)
    width_1 = float(width) - 1.0
    left = center - 0.5 - width_1 / 2.0
    right = center - 0.5 + width_1 / 2.0
    outrange = float(high) - float(low)
    if width_1 <= 0:
        # Width 1 (or less): a threshold at the centre, as dcmtk's gradient-0 branch does.
        return np.where(x <= left, float(low), float(high))
    offset = high - ((center - 0.5) / width_1 + 0.5) * outrange
    gradient = outrange / width_1
    out = offset + x * gradient
    out = np.where(x <= left, float(low), out)
    out = np.where(x > right, float(high), out)
    return out


def window_linear_exact(
    values: np.ndarray, center: float, width: float, low: float = 0.0, high: float = 255.0
) -> np.ndarray:
    """LINEAR_EXACT window (PS3.3 C.11.2.1.3.2): borders at ``c -/+ w/2`` exactly.

    Parameters and return value as :func:`window_linear`.
    """
    x = np.asarray(values, dtype=np.float64)
    outrange = float(high) - float(low)
    out = ((x - center) / width + 0.5) * outrange + low
    out = np.where(x <= center - width / 2.0, float(low), out)
    out = np.where(x > center + width / 2.0, float(high), out)
    return out


def window_sigmoid(
    values: np.ndarray, center: float, width: float, low: float = 0.0, high: float = 255.0
) -> np.ndarray:
    """SIGMOID window (PS3.3 C.11.2.1.3.1): ``low + range / (1 + exp(-4 (x - c) / w))``.

    Parameters and return value as :func:`window_linear`.
    """
    x = np.asarray(values, dtype=np.float64)
    outrange = float(high) - float(low)
    with np.errstate(over="ignore"):
        return outrange / (1.0 + np.exp(-4.0 * (x - center) / width)) + low


def lut_entries(lut: VOILut, values: np.ndarray) -> np.ndarray:
    """Look values up in a LUT: below the first mapped value -> first entry, above -> last.

    Parameters
    ----------
    lut
        The LUT (descriptor first mapped value + entries).
    values
        Input values (integers; non-integers are truncated toward minus infinity).

    Returns
    -------
    numpy.ndarray
        The LUT entries, same shape as ``values``, LUT dtype.
    """
    data = np.asarray(lut.data)
    idx = np.floor(np.asarray(values, dtype=np.float64)) - lut.first_mapped
    idx = np.clip(idx, 0, data.size - 1).astype(np.intp)
    return data[idx]


def apply_voi_lut(
    values: np.ndarray, lut: VOILut, low: float = 0.0, high: float = 255.0
) -> np.ndarray:
    """VOI LUT Sequence item (PS3.3 C.11.2.1.1), scaled to the output range as dcmtk does.

    dcmtk maps an entry ``e`` to ``low + e * (high - low + 1) / 2**bits`` (so 12-bit entries
    become ``e / 16``); inverted output (low=255, high=0) therefore spans 255..1, not 255..0.
    This matches dcmj2pnm ``+Wl`` byte for byte on the corpus.

    Parameters
    ----------
    values
        Modality-LUT output values.
    lut
        The VOI LUT item.
    low, high
        Output range (swap to invert).

    Returns
    -------
    numpy.ndarray
        float64 display values, not yet truncated.
    """
    entries = lut_entries(lut, values).astype(np.float64)
    gradient = (float(high) - float(low) + 1.0) / float(1 << int(lut.bits))
    return low + entries * gradient


def apply_voi(
    values: np.ndarray, voi: VOI, voi_luts: tuple[VOILut, ...] = (), inverted: bool = False
) -> np.ndarray:
    """Apply a resolved VOI and produce 8-bit display values (truncated like dcmtk).

    Parameters
    ----------
    values
        Modality-LUT output values (any shape).
    voi
        The window or VOI LUT to apply.
    voi_luts
        The image's VOI LUT items (needed when ``voi.is_lut``).
    inverted
        True to render with low=255, high=0 (MONOCHROME1, Presentation LUT INVERSE, user invert).

    Returns
    -------
    numpy.ndarray
        uint8, same shape as ``values``.
    """
    low, high = (255.0, 0.0) if inverted else (0.0, 255.0)
    if voi.is_lut:
        assert voi.lut_index is not None
        if voi.lut_index >= len(voi_luts):
            raise IndexError(f"VOI LUT {voi.lut_index + 1} requested; image has {len(voi_luts)}")
        f = apply_voi_lut(values, voi_luts[voi.lut_index], low, high)
    else:
        assert voi.center is not None and voi.width is not None
        fn = {
            "LINEAR": window_linear,
            "LINEAR_EXACT": window_linear_exact,
            "SIGMOID": window_sigmoid,
        }[voi.function]
        f = fn(values, voi.center, voi.width, low, high)
    # C cast to an unsigned 8-bit type: truncation toward zero; clip guards rounding at the ends.
    return np.clip(np.trunc(f), 0, 255).astype(np.uint8)
