"""8-bit display rendering: VOI + polarity (MONOCHROME1, Presentation LUT Shape, user invert).

:func:`render_display` is the reference path (elementwise maths). :class:`DisplayRenderer` gives
the same bytes much faster for integer data by building, once per VOI, a uint8 LUT over the
image's value range, so re-windowing is one gather (pyqtgraph issue #1590 shows why the view
should be fed 8-bit data).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from cxr_viewer.imaging.window import VOI, apply_voi
from cxr_viewer.io.types import ImageData

#: Largest value range (max - min + 1) for which a LUT is built (4M entries = 4 MB).
MAX_LUT_ENTRIES = 1 << 22

#: 8-bit value of a drawn overlay-plane pixel: white, as dcmtk's default (Replace mode,
#: foreground density 1.0) after the polarity stage.
OVERLAY_VALUE = 255


def display_inverted(image: ImageData, invert: bool = False) -> bool:
    """Whether the output is inverted: (MONOCHROME1 xor INVERSE, without double inversion) xor
    the user's invert toggle."""
    return bool(image.inverted_display) != bool(invert)


def render_display(
    image: ImageData,
    voi: VOI,
    *,
    frame: int = 0,
    invert: bool = False,
    overlays: bool = False,
) -> np.ndarray:
    """Render one frame to 8-bit grayscale as dcmtk's ``dcmj2pnm`` does.

    Parameters
    ----------
    image
        The loaded image (values after the Modality LUT).
    voi
        Window or VOI LUT to apply.
    frame
        0-based frame index.
    invert
        The user's extra invert toggle, on top of the photometric handling.
    overlays
        Burn the image's overlay planes (60xx) in, white, as ``dcmj2pnm`` does by default
        (the viewer, ``cxr-viewer render`` and exports pass True unless the user hid them).

    Returns
    -------
    numpy.ndarray
        uint8, shape (rows, cols).
    """
    values = _modality_values(image, frame)
    out = apply_voi(values, voi, image.voi_luts, display_inverted(image, invert))
    if overlays:
        mask = overlay_mask(image, frame)
        if mask is not None:
            out = np.array(out, copy=True)
            out[mask] = OVERLAY_VALUE
    return out


def overlay_mask(image: ImageData, frame: int = 0) -> np.ndarray | None:
    """Boolean (rows, cols) mask of the overlay-plane pixels drawn on ``frame``, or None.

    Planes are clipped to the image (an origin may be negative or beyond it, PS3.3 C.9.2.1.2);
    planes of other frames are left out.
    """
    rows, cols = image.shape
    mask: np.ndarray | None = None
    for plane in image.overlays:
        bitmap = plane.frame_bitmap(frame)
        if bitmap is None:
            continue
        pr, pc = plane.origin
        r0, r1 = max(pr, 0), min(pr + bitmap.shape[0], rows)
        c0, c1 = max(pc, 0), min(pc + bitmap.shape[1], cols)
        if r1 <= r0 or c1 <= c0:
            continue
        if mask is None:
            mask = np.zeros((rows, cols), bool)
        mask[r0:r1, c0:c1] |= bitmap[r0 - pr : r1 - pr, c0 - pc : c1 - pc]
    return mask


def _modality_values(image: ImageData, frame: int) -> np.ndarray:
    """The VOI stage's input for one frame.

    dcmtk's intermediate (modality) representation is integer: a non-integer rescale is
    truncated toward zero before windowing. We do the same for display, so renders match
    dcmj2pnm byte for byte (4 corpus files go from max |diff| 1 to 0); ``image.frames`` keeps
    the exact values for the model and the pixel readout.
    """
    if image.frames.dtype.kind == "f" and image.stored is not None:
        return np.trunc(
            image.stored[frame].astype(np.float64) * image.rescale_slope + image.rescale_intercept
        )
    return image.frames[frame]


class DisplayRenderer:
    """Fast, cached renderer for one image.

    For integer data (or integer stored values with a rescale) a uint8 LUT over ``min..max`` is
    built once per (VOI, invert) and each render is a single gather; results are identical to
    :func:`render_display`. Float data without integer stored values falls back to it.

    Parameters
    ----------
    image
        The image to render.
    cache_size
        How many LUTs to keep (LRU).
    """

    def __init__(self, image: ImageData, cache_size: int = 16) -> None:
        self.image = image
        self._cache: OrderedDict[tuple[VOI, bool], np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        if image.frames.dtype.kind in "iu":
            self._index_source = image.frames
            self._rescale = None
        elif image.stored is not None and image.stored.dtype.kind in "iu":
            self._index_source = image.stored
            self._rescale = (image.rescale_slope, image.rescale_intercept)
        else:
            self._index_source = None
            self._rescale = None
        self._offset = 0
        self._size = 0
        self._overlay_masks: dict[int, np.ndarray | None] = {}
        if self._index_source is not None:
            lo = int(self._index_source.min())
            hi = int(self._index_source.max())
            # Index directly (no subtraction pass) when the data are non-negative.
            self._offset = min(lo, 0)
            self._size = hi - self._offset + 1
            if self._size > MAX_LUT_ENTRIES:
                self._index_source = None

    @property
    def uses_lut(self) -> bool:
        """True when renders go through a precomputed LUT."""
        return self._index_source is not None

    def lut_for(self, voi: VOI, invert: bool = False) -> np.ndarray:
        """The uint8 LUT for ``voi`` indexed by ``value - offset`` (cached)."""
        key = (voi, bool(invert))
        lut = self._cache.get(key)
        if lut is not None:
            self._cache.move_to_end(key)
            return lut
        domain = np.arange(self._offset, self._offset + self._size, dtype=np.float64)
        if self._rescale is not None:  # same truncation as _modality_values
            domain = np.trunc(domain * self._rescale[0] + self._rescale[1])
        lut = apply_voi(domain, voi, self.image.voi_luts, display_inverted(self.image, invert))
        self._cache[key] = lut
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return lut

    def render(
        self,
        voi: VOI,
        invert: bool = False,
        frame: int = 0,
        region: tuple[int, int, int, int] | None = None,
        step: int = 1,
        overlays: bool = False,
    ) -> np.ndarray:
        """Render (part of) a frame.

        Parameters
        ----------
        voi
            Window or VOI LUT.
        invert
            The user's invert toggle.
        frame
            0-based frame.
        region
            ``(r0, r1, c0, c1)`` half-open pixel bounds, clipped to the image; None = whole.
        step
            Take every ``step``-th row and column (screen-resolution preview).
        overlays
            Burn the overlay planes in (see :func:`render_display`).

        Returns
        -------
        numpy.ndarray
            uint8 (rows', cols'), C-contiguous.
        """
        step = max(int(step), 1)
        rows, cols = self.image.shape
        if region is None:
            r0, r1, c0, c1 = 0, rows, 0, cols
        else:
            r0, r1, c0, c1 = (int(v) for v in region)
            r0, r1 = max(r0, 0), min(r1, rows)
            c0, c1 = max(c0, 0), min(c1, cols)
            if r1 <= r0 or c1 <= c0:
                return np.zeros((0, 0), np.uint8)
        sl = (frame, slice(r0, r1, step), slice(c0, c1, step))
        if self._index_source is None:
            values = _modality_values(self.image, frame)[sl[1:]]
            out = apply_voi(values, voi, self.image.voi_luts, display_inverted(self.image, invert))
        else:
            out = _gather(self.lut_for(voi, invert), self._index_source[sl], self._offset)
        if overlays and self.image.overlays:
            if frame not in self._overlay_masks:
                self._overlay_masks[frame] = overlay_mask(self.image, frame)
            mask = self._overlay_masks[frame]
            if mask is not None:
                out = np.ascontiguousarray(out)
                out[mask[sl[1:]]] = OVERLAY_VALUE
        return out


#: Elements per gather block: small enough that the block's index conversion stays in cache.
_GATHER_BLOCK = 1 << 16


def _gather(lut: np.ndarray, src: np.ndarray, offset: int) -> np.ndarray:
    """``lut[src - offset]`` in row blocks.

    One big ``lut[src]`` converts the whole uint16 index array to intp (8 bytes per pixel) before
    gathering; doing it block by block keeps that in cache and is about 2x faster at 9 MP.
    ``mode="clip"`` avoids numpy's buffered bounds-checking path (indices are in range anyway).
    """
    out = np.empty(src.shape, np.uint8)
    if src.size == 0:
        return out
    rows_per_block = max(1, _GATHER_BLOCK // max(src.shape[1], 1))
    for r0 in range(0, src.shape[0], rows_per_block):
        block = src[r0 : r0 + rows_per_block]
        if offset:
            block = block.astype(np.int64) - offset
        np.take(lut, block, out=out[r0 : r0 + rows_per_block], mode="clip")
    return out


def pixel_value_at(
    image: ImageData, row: int, col: int, frame: int = 0
) -> tuple[float, float, str]:
    """Stored value, modality value and units at one pixel (for the cursor readout).

    Parameters
    ----------
    image
        The image.
    row, col
        Pixel indices (0-based).
    frame
        0-based frame.

    Returns
    -------
    tuple
        ``(stored, modality_value, units)``; units "" when unknown.

    Raises
    ------
    IndexError
        Outside the image.
    """
    rows, cols = image.shape
    if not (0 <= row < rows and 0 <= col < cols and 0 <= frame < image.num_frames):
        raise IndexError(f"pixel ({row}, {col}) frame {frame} is outside the image")
    value = image.frames[frame, row, col]
    stored = image.stored[frame, row, col] if image.stored is not None else value
    sv = float(stored)
    mv = float(value)
    if image.frames.dtype.kind == "f" and image.stored is not None:
        mv = sv * image.rescale_slope + image.rescale_intercept
    return sv, mv, image.units
