"""Resize an image to a model's input grid (letterbox, stretch or crop) and map results back.

One :class:`Transform` describes the mapping between a *source* image (rows x cols, the original
radiograph) and a *target* grid (the model input).  Coordinates are continuous with pixel ``i``
covering ``[i, i + 1)``, so the mapping is a pure scale + offset per axis::

    target = source * scale + offset

The same transform resizes the image for the model (:meth:`Transform.apply`) and brings anything the
model produced on its input grid -- a Grad-CAM at the conv layer's resolution, a saliency map at the
input's -- back onto the original pixels (:meth:`Transform.invert_map`), undoing the letterbox
padding, the crop or the anisotropic stretch.  Pure numpy + OpenCV, no Qt, no TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

POLICIES = ("letterbox", "stretch", "crop")

Box = tuple[int, int, int, int]  # (row0, row1, col0, col1), half-open


@dataclass(frozen=True)
class Transform:
    """Mapping between a source image and a target grid (see the module docstring).

    Attributes
    ----------
    source_shape, target_shape
        (rows, cols) of the original image and of the model input.
    policy
        ``"letterbox"`` (keep aspect, pad with 0), ``"stretch"`` (anisotropic resize) or
        ``"crop"`` (keep aspect, fill the target, cut the centre).
    scale, offset
        Per axis (row, col): ``target = source * scale + offset``.
    source_box
        Part of the source that is visible in the target (the whole image unless cropped).
    target_box
        Part of the target covered by image content (the whole grid unless letterboxed).
    """

    source_shape: tuple[int, int]
    target_shape: tuple[int, int]
    policy: str
    scale: tuple[float, float]
    offset: tuple[float, float]
    source_box: Box
    target_box: Box

    # ---- forward: image -> model input -----------------------------------------------------
    def apply(self, image: np.ndarray, pad_value: float = 0.0) -> np.ndarray:
        """Resize ``image`` (rows x cols [x channels]) onto the target grid.

        Parameters
        ----------
        image
            Array whose first two axes equal ``source_shape``.
        pad_value
            Value of the letterbox padding.

        Returns
        -------
        np.ndarray
            Same dtype, first two axes ``target_shape``.  Shrinking uses area averaging
            (no aliasing), enlarging bilinear interpolation.
        """
        if tuple(image.shape[:2]) != self.source_shape:
            raise ValueError(
                f"image is {image.shape[:2]}, this transform was fitted to {self.source_shape}"
            )
        r0, r1, c0, c1 = self.source_box
        src = np.ascontiguousarray(image[r0:r1, c0:c1])
        t0, t1, u0, u1 = self.target_box
        rows, cols = t1 - t0, u1 - u0
        shrinking = rows * cols < src.shape[0] * src.shape[1]
        interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        resized = cv2.resize(src, (cols, rows), interpolation=interp)
        if resized.ndim < image.ndim:  # cv2 drops a trailing channel axis of size 1
            resized = resized[..., np.newaxis]
        if (rows, cols) == self.target_shape:
            return resized
        out = np.full(self.target_shape + image.shape[2:], pad_value, dtype=image.dtype)
        out[t0:t1, u0:u1] = resized
        return out

    # ---- inverse: model grid -> original pixels --------------------------------------------
    def invert_map(
        self, cam: np.ndarray, original_shape: tuple[int, int] | None = None
    ) -> np.ndarray:
        """Bring a map defined on the target grid back to the original image's pixels.

        Parameters
        ----------
        cam
            2-D map covering the whole target grid at any resolution (e.g. a 7x7 Grad-CAM of a
            224x224 input, or a 224x224 saliency map).
        original_shape
            Optional check: must equal ``source_shape``.

        Returns
        -------
        np.ndarray
            float32, ``source_shape``, bilinear.  Source pixels outside ``source_box`` (cut away by
            a crop) are 0: the model never saw them.
        """
        if cam.ndim != 2:
            raise ValueError(f"expected a 2-D map, got shape {cam.shape}")
        if original_shape is not None and tuple(original_shape) != self.source_shape:
            raise ValueError(
                f"original shape {tuple(original_shape)} differs from the fitted {self.source_shape}"
            )
        (tr, tc), (mr, mc) = self.target_shape, cam.shape
        kr, kc = mr / tr, mc / tc
        t0, t1, u0, u1 = self.target_box
        # Keep the map cells whose centres lie on image content, not on letterbox padding;
        # the replicated border then extends the nearest content cell instead of blending in
        # what the model made of the padding.
        i0, i1 = _inside_cells(t0 * kr, t1 * kr, mr)
        j0, j1 = _inside_cells(u0 * kc, u1 * kc, mc)
        cam = np.ascontiguousarray(cam[i0:i1, j0:j1], dtype=np.float32)
        # 1. the map onto the content part of the target grid (small: at most the model input);
        #    cam index of the centre of content pixel y: (y + .5 + t0) k - .5 - i0
        matrix = np.array(
            [[kc, 0.0, (0.5 + u0) * kc - 0.5 - j0], [0.0, kr, (0.5 + t0) * kr - 0.5 - i0]],
            dtype=np.float64,
        )
        content = cv2.warpAffine(
            cam,
            matrix,
            (u1 - u0, t1 - t0),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        # 2. the content is exactly the source box resized: resize it back (a plain resize is
        #    ~5x faster than warping straight to a multi-megapixel radiograph)
        r0, r1, c0, c1 = self.source_box
        shrinking = (r1 - r0) * (c1 - c0) < content.size
        back = cv2.resize(
            content,
            (c1 - c0, r1 - r0),
            interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
        )
        rows, cols = self.source_shape
        if (r0, r1, c0, c1) == (0, rows, 0, cols):
            return back
        out = np.zeros(self.source_shape, dtype=np.float32)
        out[r0:r1, c0:c1] = back
        return out

    # ---- points ----------------------------------------------------------------------------
    def to_target(self, row: float, col: float) -> tuple[float, float]:
        """Continuous source coordinates -> target coordinates."""
        return row * self.scale[0] + self.offset[0], col * self.scale[1] + self.offset[1]

    def to_source(self, row: float, col: float) -> tuple[float, float]:
        """Continuous target coordinates -> source coordinates."""
        return (row - self.offset[0]) / self.scale[0], (col - self.offset[1]) / self.scale[1]


def _inside_cells(lo: float, hi: float, n: int) -> tuple[int, int]:
    """Cells (of ``n``) whose centres ``j + 0.5`` lie in ``[lo, hi)``; at least the nearest one."""
    first = max(0, math.ceil(lo - 0.5))
    last = min(n, math.ceil(hi - 0.5))
    if last <= first:
        nearest = min(n - 1, max(0, int((lo + hi) / 2)))
        return nearest, nearest + 1
    return first, last


def fit_transform(
    shape: tuple[int, int], target: tuple[int, int], policy: str = "letterbox"
) -> Transform:
    """Fit the transform that puts an image of ``shape`` onto a ``target`` grid.

    Parameters
    ----------
    shape
        (rows, cols) of the source image.
    target
        (rows, cols) of the model input.
    policy
        ``"letterbox"``: scale to fit inside, centre, pad;  ``"stretch"``: resize each axis
        independently;  ``"crop"``: scale to cover, keep the centre.

    Returns
    -------
    Transform
    """
    rows, cols = (int(shape[0]), int(shape[1]))
    trows, tcols = (int(target[0]), int(target[1]))
    if min(rows, cols, trows, tcols) < 1:
        raise ValueError(f"empty shape: source {shape}, target {target}")
    if policy == "stretch":
        return Transform(
            (rows, cols),
            (trows, tcols),
            policy,
            (trows / rows, tcols / cols),
            (0.0, 0.0),
            (0, rows, 0, cols),
            (0, trows, 0, tcols),
        )
    if policy == "letterbox":
        s = min(trows / rows, tcols / cols)
        nr = min(trows, max(1, round(rows * s)))
        nc = min(tcols, max(1, round(cols * s)))
        top, left = (trows - nr) // 2, (tcols - nc) // 2
        return Transform(
            (rows, cols),
            (trows, tcols),
            policy,
            (nr / rows, nc / cols),
            (float(top), float(left)),
            (0, rows, 0, cols),
            (top, top + nr, left, left + nc),
        )
    if policy == "crop":
        s = max(trows / rows, tcols / cols)
        br = min(rows, max(1, round(trows / s)))
        bc = min(cols, max(1, round(tcols / s)))
        r0, c0 = (rows - br) // 2, (cols - bc) // 2
        sr, sc = trows / br, tcols / bc
        return Transform(
            (rows, cols),
            (trows, tcols),
            policy,
            (sr, sc),
            (-r0 * sr, -c0 * sc),
            (r0, r0 + br, c0, c0 + bc),
            (0, trows, 0, tcols),
        )
    raise ValueError(f"unknown resize policy {policy!r} (one of {', '.join(POLICIES)})")
