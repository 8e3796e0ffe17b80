"""Pure helpers behind the image view (no Qt): orientation maths and the window/level drag rule.

Orientation: ``rotation_k`` counts quarter turns COUNTER-clockwise as ``numpy.rot90`` does (``R``
turns clockwise, i.e. ``k - 1``); flips act on what is on screen, after the rotation. So the
displayed array is ``orient_array(a, k, flip_h, flip_v)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Right drag: the window changes by (image value range / WL_PIXELS_FOR_RANGE) per screen pixel, so
# dragging across ~1000 pixels sweeps the whole range whatever the bit depth.
WL_PIXELS_FOR_RANGE = 1000.0


@dataclass(frozen=True)
class Orientation:
    rotation_k: int = 0  # quarter turns counter-clockwise (numpy.rot90 convention), 0..3
    flip_h: bool = False  # mirror left-right, applied after the rotation
    flip_v: bool = False  # mirror top-bottom, applied after the rotation

    def rotated(self, quarter_turns_ccw: int) -> Orientation:
        # Rotating what is on screen after a flip: a flip conjugates the rotation direction.
        k = quarter_turns_ccw if self.flip_h == self.flip_v else -quarter_turns_ccw
        return Orientation((self.rotation_k + k) % 4, self.flip_h, self.flip_v)

    def flipped(self, horizontal: bool) -> Orientation:
        if horizontal:
            return Orientation(self.rotation_k, not self.flip_h, self.flip_v)
        return Orientation(self.rotation_k, self.flip_h, not self.flip_v)


def orient_array(a: np.ndarray, o: Orientation) -> np.ndarray:
    """The array as displayed under orientation ``o``."""
    out = np.rot90(a, o.rotation_k)
    if o.flip_h:
        out = out[:, ::-1]
    if o.flip_v:
        out = out[::-1, :]
    return out


def orient_matrix(rows: int, cols: int, o: Orientation) -> np.ndarray:
    """3x3 affine (column-vector convention) mapping continuous image coordinates (x = column,
    y = row, pixel corners at integers) to displayed coordinates, consistent with
    :func:`orient_array`."""
    m = np.eye(3)
    w, h = float(cols), float(rows)
    for _ in range(o.rotation_k % 4):
        # rot90 counter-clockwise: out[i, j] = a[j, W-1-i]  ->  (x, y) -> (y, W - x)
        step = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, w], [0.0, 0.0, 1.0]])
        m = step @ m
        w, h = h, w
    if o.flip_h:
        m = np.array([[-1.0, 0.0, w], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ m
    if o.flip_v:
        m = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, h], [0.0, 0.0, 1.0]]) @ m
    return m


def wl_step(value_min: float, value_max: float) -> float:
    """Window change per screen pixel of right drag."""
    span = max(float(value_max) - float(value_min), 1.0)
    return span / WL_PIXELS_FOR_RANGE


def dragged_window(center: float, width: float, dx: float, dy: float, step: float,
                   min_width: float = 1.0, inverted: bool = False) -> tuple[float, float]:
    """Window after a right drag of (dx, dy) screen pixels from (center, width).

    On screen, whatever the photometric interpretation: right (+dx) widens the window (less
    contrast) and down (+dy) makes the image darker.  On a normal display that raises the
    centre; on an inverted one (MONOCHROME1, Presentation LUT INVERSE, or the invert toggle)
    raising the centre brightens the screen, so ``inverted`` lowers it instead.
    """
    new_width = max(min_width, width + dx * step)
    new_center = center + (-dy if inverted else dy) * step
    return new_center, new_width


#: Opposite patient directions (PS3.3 C.7.6.1.1.1: A/P, L/R, H/F).
_OPPOSITE = {"A": "P", "P": "A", "L": "R", "R": "L", "H": "F", "F": "H"}


def opposite_direction(label: str) -> str:
    """"AF" -> "PH": each letter of a Patient Orientation value reversed."""
    return "".join(_OPPOSITE.get(ch, ch) for ch in label.upper())


def edge_labels(patient_orientation: tuple[str, str] | None, rows: int, cols: int,
                o: Orientation) -> dict[str, str]:
    """Screen edge -> patient direction ("left", "right", "top", "bottom") after ``o``.

    ``patient_orientation`` is DICOM Patient Orientation (0020,0020): the direction of the
    image's rows (towards increasing column) and of its columns (towards increasing row).
    Returns {} when it is unknown.
    """
    if not patient_orientation or len(patient_orientation) != 2 or not all(patient_orientation):
        return {}
    row_dir, col_dir = (str(v).strip().upper() for v in patient_orientation)
    # image axis unit vectors (x = column, y = row) -> label
    labels = {(1, 0): row_dir, (-1, 0): opposite_direction(row_dir),
              (0, 1): col_dir, (0, -1): opposite_direction(col_dir)}
    m = orient_matrix(rows, cols, o)[:2, :2]  # image -> view, linear part
    inv = np.linalg.inv(m)
    out = {}
    for edge, screen in (("right", (1, 0)), ("left", (-1, 0)), ("bottom", (0, 1)),
                         ("top", (0, -1))):
        v = inv @ np.array(screen, dtype=float)
        key = (int(round(v[0])), int(round(v[1])))
        out[edge] = labels.get(key, "")
    return out


def distance_mm(r0: float, c0: float, r1: float, c1: float, row_mm: float | None,
                col_mm: float | None) -> tuple[float, float | None]:
    """Length of a segment in pixels and in mm (None when uncalibrated)."""
    px = math.hypot(r1 - r0, c1 - c0)
    if row_mm is None or col_mm is None:
        return px, None
    return px, math.hypot((r1 - r0) * row_mm, (c1 - c0) * col_mm)


def export_orientation(o: Orientation) -> tuple[int, bool, bool]:
    """The same display as ``(rotation_k, flip_h, flip_v)`` in the export's convention (flips
    first, then ``rotation_k`` quarter turns CLOCKWISE; ``cxr_viewer.export.annotated``)."""
    probe = np.arange(6).reshape(2, 3)
    target = orient_array(probe, o)
    for k in range(4):
        for fh in (False, True):
            for fv in (False, True):
                a = probe[:, ::-1] if fh else probe
                a = a[::-1, :] if fv else a
                a = np.rot90(a, -k)
                if a.shape == target.shape and np.array_equal(a, target):
                    return k, fh, fv
    raise AssertionError("unreachable: every orientation has an export equivalent")
