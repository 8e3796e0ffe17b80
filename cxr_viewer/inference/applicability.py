"""Is this image something the model was made for? Refuse what is clearly not.

The bundled model (and any model this viewer ships) reads frontal chest radiographs. Running it on
a hip radiograph, a CT slice or a lateral view gives numbers that look like findings and mean
nothing, so such images are refused with a message that names the file and the reason, and images
whose header does not say what they are get a warning that travels with the prediction.

The header is not enough (a dental panoramic CR without Body Part Examined, a DX that is almost
white under its own window, a PNG), so the pixels are checked too (:func:`content_check`): the
8-bit rendering the model would see, reduced to 64 x 64, must look like a frontal chest
radiograph by robust rules on intensity statistics and the lung-field pattern:

* not almost uniform (standard deviation, near-white and near-black fractions);
* the frame is filled: no broad empty (black) band of rows or columns, as around a dental
  panoramic, a mammogram or a CT slice;
* an aspect ratio a chest detector can have;
* the lung-field pattern: the mediastinal column and the lower zone are brighter than the two
  lung fields (false for an inverted chest, a limb, a skull, most cross-sections).

The thresholds sit outside the range of all 1,091 shared NIH chest radiographs but two (whose
mediastinum is darker than their lungs); ``benchmarks/bench_applicability.py`` measures the
false-refusal rate on them and the refusal rate on the corpus's non-chest images
(benchmarks/RESULTS.md).  Images smaller than :data:`MIN_CONTENT_SIDE` pixels cannot be judged
this way: they are analysed with a warning.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from cxr_viewer.errors import CxrError
from cxr_viewer.io.types import ImageData

#: DICOM Modality defined terms for projection radiographs (PS3.3 C.7.3.1.1.1).
RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "RG"})
#: Body Part Examined values that describe the chest (PS3.16 CID 4031 code meanings as used in
#: the attribute, plus common vendor spellings).
CHEST_BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG", "CHEST_LAT", "CHESTPA", "TORAX", "THX"})
#: View Position values of lateral and decubitus projections (the model saw PA/AP only).
NON_FRONTAL_VIEWS = frozenset({"LL", "RL", "LATERAL", "LAT", "LLD", "RLD", "XTABLE"})


class NotApplicable(CxrError):
    """The model is not meant for this image (wrong modality, body part or view)."""

    def __init__(self, path: str, cause: str) -> None:
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{self.path}: not analysed: {cause}")


#: Below this many pixels on the short side the content is not judged (warning instead):
#: every radiograph is larger; synthetic test pictures and thumbnails are smaller.
MIN_CONTENT_SIDE = 256
#: Grid the content rules work on.
CONTENT_GRID = 64
#: Rule thresholds (see the module docstring and benchmarks/RESULTS.md for the measurements).
MIN_STD = 0.06  # NIH minimum 0.109
MAX_WHITE_FRACTION = 0.8  # NIH maximum 0.697
MAX_BLACK_FRACTION = 0.8  # NIH maximum 0.681
MAX_EMPTY_BAND = 0.4  # NIH maximum 0.31 (rows), 0.30 (columns)
ASPECT_RANGE = (0.6, 1.55)  # width / height; detectors are 0.8 .. 1.25
MIN_LUNG_PATTERN = -0.08  # NIH: 2 of 1,091 below


@dataclass(frozen=True)
class ContentCheck:
    """The pixel-content measurements and the verdict.

    Attributes
    ----------
    reasons
        Why the image does not look like a frontal chest radiograph (empty: it does).
    std, white, black
        Grey-level standard deviation and near-white (> 0.9) / near-black (< 0.1) fractions of
        the 8-bit display, scaled to [0, 1].
    empty_rows, empty_cols
        Fractions of grid rows / columns with nothing brighter than 0.15 (95th percentile).
    aspect
        Width / height.
    lung_pattern
        (mediastinum - lungs) + (lower zone - lungs), mean grey levels in fixed boxes.
    """

    reasons: tuple[str, ...]
    std: float
    white: float
    black: float
    empty_rows: float
    empty_cols: float
    aspect: float
    lung_pattern: float

    @property
    def is_chest(self) -> bool:
        return not self.reasons


def content_features(display: np.ndarray) -> ContentCheck:
    """Apply the content rules to an 8-bit display rendering (grey or RGB)."""
    import cv2

    arr = np.asarray(display)
    if arr.ndim == 3:
        arr = arr[..., :3].mean(axis=2)
    rows, cols = arr.shape
    g = cv2.resize(arr.astype(np.float32), (CONTENT_GRID, CONTENT_GRID),
                   interpolation=cv2.INTER_AREA) / np.float32(255.0)
    n = CONTENT_GRID
    std = float(g.std())
    white = float((g > 0.9).mean())
    black = float((g < 0.1).mean())
    empty_rows = float((np.percentile(g, 95, axis=1) < 0.15).mean())
    empty_cols = float((np.percentile(g, 95, axis=0) < 0.15).mean())
    aspect = cols / rows

    def box(r0: float, r1: float, c0: float, c1: float) -> float:
        return float(g[round(r0 * n):round(r1 * n), round(c0 * n):round(c1 * n)].mean())

    lungs = (box(0.25, 0.66, 0.125, 0.41) + box(0.25, 0.66, 0.59, 0.875)) / 2
    mediastinum = box(0.25, 0.66, 0.44, 0.56)
    lower = box(0.75, 0.94, 0.125, 0.875)
    pattern = (mediastinum - lungs) + (lower - lungs)
    reasons = []
    if std < MIN_STD or white > MAX_WHITE_FRACTION or black > MAX_BLACK_FRACTION:
        tone = "white" if white > 0.5 or g.mean() > 0.5 else "black"
        reasons.append(f"the image is almost uniformly {tone} under its own window "
                       f"(contrast {std:.2f}): nothing a chest model can read")
    if max(empty_rows, empty_cols) > MAX_EMPTY_BAND:
        reasons.append(f"{100 * max(empty_rows, empty_cols):.0f}% of the frame is an empty "
                       "band: the anatomy does not fill it as a chest radiograph does "
                       "(dental panoramic, mammogram, cross-section?)")
    if not ASPECT_RANGE[0] <= aspect <= ASPECT_RANGE[1]:
        reasons.append(f"aspect ratio {aspect:.2f} (width/height) is not a chest radiograph's")
    if not reasons and pattern < MIN_LUNG_PATTERN:
        reasons.append("no lung-field pattern (mediastinum and lower zone brighter than two "
                       "darker lung fields): not a frontal chest radiograph as displayed")
    return ContentCheck(tuple(reasons), std, white, black, empty_rows, empty_cols, aspect,
                        pattern)


_cache_lock = threading.Lock()
_last: tuple[str, ContentCheck] | None = None


def content_check(image: ImageData) -> ContentCheck | None:
    """The content rules on the image's default display (what the model sees); None when the
    image is too small to judge.  The last result is remembered by image id."""
    global _last
    if min(image.shape) < MIN_CONTENT_SIDE:
        return None
    with _cache_lock:
        if _last is not None and _last[0] == image.image_id:
            return _last[1]
    from cxr_viewer.inference.preprocess import render_default_display

    check = content_features(render_default_display(image))
    with _cache_lock:
        _last = (image.image_id, check)
    return check


def assess(image: ImageData) -> tuple[str, ...]:
    """Check that a frontal-chest-radiograph model may read ``image``.

    Parameters
    ----------
    image
        A loaded image.

    Returns
    -------
    tuple of str
        Warnings to show with the results (e.g. the header does not name the body part).

    Raises
    ------
    NotApplicable
        The header says it is another modality, another body part, or a lateral view; or the
        pixels do not look like a frontal chest radiograph (:func:`content_check`).
    """
    warnings = _assess_header(image)
    check = content_check(image)
    if check is None:
        return (*warnings, f"image smaller than {MIN_CONTENT_SIDE} px: its content was not "
                "checked")
    if check.reasons:
        raise NotApplicable(image.path, "; ".join(check.reasons))
    return warnings


def _assess_header(image: ImageData) -> tuple[str, ...]:
    if image.source_format != "DICOM":
        return ("no DICOM header: the model assumes a frontal chest radiograph",)
    warnings: list[str] = []
    modality = (image.modality or "").strip().upper()
    if modality and modality not in RADIOGRAPH_MODALITIES:
        raise NotApplicable(
            image.path, f"modality {modality}; the model reads chest radiographs (CR/DX)"
        )
    body_part = str(image.tags.get("BodyPartExamined", "") or "").strip().upper()
    if body_part and body_part not in CHEST_BODY_PARTS:
        raise NotApplicable(
            image.path, f"body part {body_part}; the model reads chest radiographs"
        )
    view = str(image.tags.get("ViewPosition", "") or "").strip().upper()
    if view in NON_FRONTAL_VIEWS:
        raise NotApplicable(
            image.path, f"view position {view}; the model was trained on frontal (PA/AP) views"
        )
    if not modality:
        warnings.append("modality not stated: the model assumes a chest radiograph")
    if not body_part:
        warnings.append("body part not stated: the model assumes a chest radiograph")
    if image.num_frames > 1:
        warnings.append(f"only frame 1 of {image.num_frames} is analysed")
    return tuple(warnings)
