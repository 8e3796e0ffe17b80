"""What the reader saw, as a DICOM Grayscale Softcopy Presentation State (``highdicom.pr``).

The GSPS references the source image and stores

* the window (Softcopy VOI LUT: centre, width, VOI LUT Function) in the units after the
  source's Modality LUT, which highdicom copies into the GSPS;
* grey-scale inversion as the Presentation LUT Shape (INVERSE when the viewer shows the image
  inverted, counting MONOCHROME1 as the viewer does);
* rotation and flips (Spatial Transformation module): DICOM has only a horizontal flip applied
  before a clockwise rotation, and a vertical flip equals a horizontal flip plus a half turn;
* the distance measurements: one POLYLINE (two points) and one TEXT ("123.4 mm") per line, on a
  graphic layer "MEASUREMENTS", in image pixel units (PS3.3 C.10.5: 0\\0 is the top-left corner
  of the top-left pixel, so the viewer's continuous coordinates are stored unchanged).

The core takes a plain :class:`ViewState` so the UI only has to describe its view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxr_viewer.export.annotated import ExportError
from cxr_viewer.export.dicom_common import (
    PR_SERIES_DESCRIPTION,
    PR_SERIES_NUMBER,
    from_source_header,
    new_instance,
    require_dicom_source,
    save_dataset,
)
from cxr_viewer.export.secondary_capture import _copy_laterality_and_body_part
from cxr_viewer.io.types import ImageData

MEASUREMENT_LAYER = "MEASUREMENTS"
CONTENT_LABEL = "CXRVIEWER_VIEW"
VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


@dataclass(frozen=True)
class DistanceLine:
    """A distance measurement in continuous source-image coordinates (row, column)."""

    r0: float
    c0: float
    r1: float
    c1: float
    length_mm: float | None = None  # None: the image states no pixel spacing

    @property
    def length_px(self) -> float:
        return float(np.hypot(self.r1 - self.r0, self.c1 - self.c0))

    def label(self) -> str:
        if self.length_mm is not None:
            return f"{self.length_mm:.1f} mm"
        return f"{self.length_px:.1f} px"


@dataclass(frozen=True)
class ViewState:
    """How the image was shown: the state a presentation state records.

    ``rotation_k`` counts quarter turns clockwise, applied after the flips (as
    :func:`cxr_viewer.export.annotated.apply_orientation`).
    """

    window_center: float | None  # None (with width None): the image's own VOI (e.g. a VOI LUT)
    window_width: float | None
    voi_function: str = "LINEAR"
    invert: bool = False  # the user's inversion, on top of the image's own (MONOCHROME1)
    rotation_k: int = 0
    flip_h: bool = False
    flip_v: bool = False
    measurements: tuple[DistanceLine, ...] = field(default_factory=tuple)
    explanation: str = ""  # e.g. the preset's label

    def __post_init__(self) -> None:
        lines = tuple(
            m if isinstance(m, DistanceLine) else DistanceLine(*m) for m in self.measurements
        )
        object.__setattr__(self, "measurements", lines)


def dicom_spatial_transform(rotation_k: int, flip_h: bool, flip_v: bool) -> tuple[int, bool]:
    """(Image Rotation in degrees clockwise, Image Horizontal Flip) for the viewer's transform.

    The viewer flips, then turns ``rotation_k`` quarter turns clockwise. DICOM rotates first and
    then flips horizontally (PS3.3 C.10.6; there is no vertical flip). With R a clockwise quarter
    turn and H the horizontal flip: a vertical flip is ``H R^2``, and ``R^k H = H R^-k``, so the
    viewer's ``R^k V^v H^h`` is ``R^(k+2v)`` when not mirrored and ``H R^(2v-k)`` when mirrored
    (``h xor v``).
    """
    mirrored = bool(flip_h) != bool(flip_v)
    quarter_turns = (2 * int(flip_v) - rotation_k) if mirrored else (rotation_k + 2 * int(flip_v))
    return (90 * quarter_turns) % 360, mirrored


def displayed_corners(
    rows: int, cols: int, degrees: int, flip: bool
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Image pixels ((column, row), 1-based) shown top-left and bottom-right after the transform.

    PS3.3 C.10.4: the Displayed Area corners are given in the image before the spatial
    transformation, as the corners of what is displayed after it (dciodvfy checks this).
    """
    corners = np.empty((2, 2), dtype=object)
    corners[0, 0], corners[0, 1] = (1, 1), (cols, 1)
    corners[1, 0], corners[1, 1] = (1, rows), (cols, rows)
    corners = np.rot90(corners, k=-(degrees // 90) % 4)  # rotation first,
    if flip:
        corners = corners[:, ::-1]  # then the horizontal flip
    return corners[0, 0], corners[1, 1]


def build_presentation_state(image: ImageData, view: ViewState) -> Any:
    """Build (without writing) the GSPS of ``view`` on ``image``.

    Returns
    -------
    highdicom.pr.GrayscaleSoftcopyPresentationState

    Raises
    ------
    ExportError
        A non-DICOM source, missing UIDs, an invalid window or VOI function.
    """
    import highdicom as hd

    ref = require_dicom_source(image, "presentation state")
    has_window = view.window_center is not None and view.window_width is not None
    if has_window:
        if not (np.isfinite(view.window_center) and np.isfinite(view.window_width)):
            raise ExportError(image.path, "the window is not a finite number")
        if view.window_width < 1 and view.voi_function != "LINEAR_EXACT":
            raise ExportError(image.path, f"window width {view.window_width} < 1 is not valid")
    if view.voi_function not in VOI_FUNCTIONS:
        raise ExportError(image.path, f"unknown VOI LUT function {view.voi_function!r}")
    layer = hd.pr.GraphicLayer(
        layer_name=MEASUREMENT_LAYER, order=1, description="Distance measurements"
    )
    annotations = []
    if view.measurements:
        graphics = []
        texts = []
        for line in view.measurements:
            points = np.array([[line.c0, line.r0], [line.c1, line.r1]], dtype=np.float64)
            graphics.append(
                hd.pr.GraphicObject(graphic_type="POLYLINE", graphic_data=points, units="PIXEL")
            )
            texts.append(
                hd.pr.TextObject(
                    text_value=line.label(),
                    units="PIXEL",
                    anchor_point=(float(points[:, 0].mean()), float(points[:, 1].mean())),
                    anchor_point_visible=False,
                )
            )
        annotations.append(
            hd.pr.GraphicAnnotation(
                referenced_images=[ref],
                graphic_layer=layer,
                graphic_objects=graphics,
                text_objects=texts,
            )
        )
    voi = None
    if has_window:
        voi = hd.pr.SoftcopyVOILUTTransformation(
            # lists: highdicom 0.28 would store a bare string explanation character by character
            window_center=[float(view.window_center)],  # type: ignore[arg-type]
            window_width=[float(view.window_width)],  # type: ignore[arg-type]
            window_explanation=[(view.explanation or "cxr-viewer window")[:64]],
            voi_lut_function=view.voi_function,
        )
    inverse = bool(image.inverted_display) != bool(view.invert)
    presentation = hd.PresentationLUTTransformation(
        presentation_lut_shape="INVERSE" if inverse else "IDENTITY"
    )
    with from_source_header(image, "referenced by a presentation state"):
        pr = hd.pr.GrayscaleSoftcopyPresentationState(
            referenced_images=[ref],
            **new_instance(PR_SERIES_NUMBER),
            content_label=CONTENT_LABEL,
            content_description="Window, orientation and measurements as read",
            graphic_annotations=annotations or None,
            graphic_layers=[layer] if annotations else None,
            # None: highdicom copies the image's own VOI LUT / window
            voi_lut_transformations=[voi] if voi is not None else None,
            presentation_lut_transformation=presentation,
            series_description=PR_SERIES_DESCRIPTION,
        )
    degrees, flip = dicom_spatial_transform(view.rotation_k, view.flip_h, view.flip_v)
    pr.ImageRotation = degrees
    pr.ImageHorizontalFlip = "Y" if flip else "N"
    # The displayed area's corners are those seen top-left / bottom-right after the transform.
    tlhc, brhc = displayed_corners(int(ref.Rows), int(ref.Columns), degrees, flip)
    for item in pr.DisplayedAreaSelectionSequence:
        item.DisplayedAreaTopLeftHandCorner = list(tlhc)
        item.DisplayedAreaBottomRightHandCorner = list(brhc)
    _copy_laterality_and_body_part(ref, pr)
    return pr


def view_state_from_request(request: Any) -> ViewState:
    """The :class:`ViewState` of an :class:`~cxr_viewer.export.annotated.ExportRequest` (the
    viewer describes its view that way already: same orientation convention, same lines)."""
    voi = request.voi
    center = getattr(voi, "center", None)
    width = getattr(voi, "width", None)
    is_lut = getattr(voi, "lut_index", None) is not None
    return ViewState(
        window_center=None if is_lut else center,
        window_width=None if is_lut else width,
        voi_function=str(getattr(voi, "function", "LINEAR") or "LINEAR"),
        invert=bool(request.invert),
        rotation_k=int(request.rotation_k),
        flip_h=bool(request.flip_h),
        flip_v=bool(request.flip_v),
        measurements=tuple(DistanceLine(*m) for m in request.measurements),
        explanation=str(getattr(request, "window_label", "") or getattr(voi, "label", "") or ""),
    )


def write_presentation_state(image: ImageData, view: ViewState, path: str | Path) -> Path:
    """Write the view of ``image`` as a GSPS file (atomically)."""
    return save_dataset(build_presentation_state(image, view), path)
