"""The AI heat maps of one image as ONE DICOM Parametric Map (``highdicom.pm``).

One frame per scored finding (a channel each, in VinDr-CXR order), at the source image's size
(rows x columns), so the map overlays the source pixel for pixel. Stored values are unsigned
16-bit; the Real World Value Mapping of each frame maps them linearly to 0..1 (slope 1/65280),
the normalised attention of the heat-map method, and names the finding in its LUT Explanation
(``"<finding> heat map (<method>)"``), which is how :mod:`cxr_viewer.io.stored_results` reads it
back. The model is named in the Contributing Equipment Sequence. Pixel data are RLE Lossless
compressed when the pylibjpeg-rle encoder is installed (about half the raw size: the low bytes
of a smooth 16-bit map still change from pixel to pixel). The PM IOD allows only 16-bit integer
(or float) pixels, so the maps cannot be stored in 8 bits; they are kept to 1/255 and stored
as ``level * 256`` so that RLE compresses them to a few percent (see :data:`LEVELS`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cxr_viewer import DISCLAIMER
from cxr_viewer.export import ai_codes as C
from cxr_viewer.export.annotated import ExportError
from cxr_viewer.export.dicom_common import (
    PM_SERIES_DESCRIPTION,
    PM_SERIES_NUMBER,
    from_source_header,
    model_equipment,
    new_instance,
    quiet_source_names,
    require_dicom_source,
    save_dataset,
)
from cxr_viewer.export.secondary_capture import _copy_laterality_and_body_part
from cxr_viewer.inference.findings import VINDR_FINDINGS
from cxr_viewer.inference.results import CamResult
from cxr_viewer.io.types import ImageData

#: Heat maps are kept to 1/255 (the display's colour maps have 256 levels) and stored as
#: level * 256: the low byte of every pixel is 0, so RLE Lossless (byte planes) shrinks the
#: maps to a few percent of their raw size and encodes fast. 255 * 256 maps to 1.0.
LEVELS = 255
STEP = 256
STORED_MAX = LEVELS * STEP  # 65280
EXPLANATION_SUFFIX = " heat map"
CONTENT_LABEL = "AI_HEATMAPS"


def heatmap_explanation(finding: str, method: str) -> str:
    return f"{finding}{EXPLANATION_SUFFIX} ({method})"[:64]


def finding_from_explanation(text: str) -> str | None:
    """The finding named by a LUT Explanation written by :func:`heatmap_explanation`."""
    head = str(text).split(" (", 1)[0]
    if head.endswith(EXPLANATION_SUFFIX):
        name = head[: -len(EXPLANATION_SUFFIX)]
        if name in VINDR_FINDINGS:
            return name
    return None


def geometry_source(ref: Any) -> tuple[Any, bool]:
    """A copy of the source header that gives the map a patient coordinate system.

    The Parametric Map IOD requires a Frame of Reference and per-frame plane position,
    orientation and pixel spacing (PS3.3 A.75), which a projection radiograph does not have.
    A source without them gets, in the copy only, a NEW Frame of Reference UID (shared with
    nothing, so no spatial relation to any other object is claimed), the identity orientation
    (rows along +x, columns along +y), position 0\\0\\0 and the source's pixel spacing (Pixel
    Spacing, else Imager Pixel Spacing; nominal 1 mm when it states none). Frames then overlay
    the source pixel for pixel. Returns the copy and whether the spacing was nominal.
    """
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    if str(ref.get("FrameOfReferenceUID", "") or "") and "ImageOrientationPatient" in ref:
        return ref, False
    view = Dataset(ref)  # shallow copy: the source header is not changed
    spacing = ref.get("PixelSpacing") or ref.get("ImagerPixelSpacing")
    nominal = spacing is None or len(spacing) != 2 or not all(float(v) > 0 for v in spacing)
    view.FrameOfReferenceUID = generate_uid()
    view.PositionReferenceIndicator = ""
    view.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    view.ImagePositionPatient = [0, 0, 0]
    view.PixelSpacing = [1.0, 1.0] if nominal else [float(spacing[0]), float(spacing[1])]
    view.SliceThickness = 1.0  # Pixel Measures: Type 1 for a VOLUME map; nominal, one plane
    return view, nominal


def _rle_available() -> bool:
    try:
        import rle  # noqa: F401  (pylibjpeg-rle: fast RLE encoder)
    except ImportError:
        return False
    return True


def build_parametric_map(
    image: ImageData,
    cams: CamResult,
    *,
    model_name: str = "",
    model_version: str = "",
    weights_sha256: str = "",
    compress: bool | None = None,
) -> Any:
    """Build (without writing) the Parametric Map of the heat maps of ``image``.

    Parameters
    ----------
    image
        The analysed image (DICOM; its header is the source image).
    cams
        The heat maps (finding -> float map in [0, 1] at the image size) of this image.
    model_name, model_version, weights_sha256
        The model, named in the Contributing Equipment Sequence.
    compress
        RLE Lossless (default: when the pylibjpeg-rle encoder is installed).

    Returns
    -------
    highdicom.pm.ParametricMap

    Raises
    ------
    ExportError
        A non-DICOM source, missing UIDs, maps of another image or of another size, no maps.
    """
    import highdicom as hd
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless

    ref = require_dicom_source(image, "Parametric Map")
    if cams.image_id != image.image_id:
        raise ExportError(image.path, "the heat maps belong to another image")
    findings = [f for f in VINDR_FINDINGS if f in cams.maps]
    if not findings:
        raise ExportError(image.path, "there are no heat maps to store")
    rows, cols = int(ref.Rows), int(ref.Columns)
    channels = np.empty((1, rows, cols, len(findings)), dtype=np.uint16)
    for i, finding in enumerate(findings):
        cam = np.asarray(cams.maps[finding], dtype=np.float32)
        if cam.shape != (rows, cols):
            raise ExportError(
                image.path,
                f"the {finding} heat map is {cam.shape[1]}x{cam.shape[0]}, the image "
                f"{cols}x{rows}: a Parametric Map must match the source geometry",
            )
        scaled = np.nan_to_num(cam, nan=0.0, posinf=1.0, neginf=0.0)  # a copy, then in place
        np.clip(scaled, 0.0, 1.0, out=scaled)
        scaled *= LEVELS
        scaled += 0.5  # round half up; the cast truncates
        channels[0, :, :, i] = scaled.astype(np.uint16) * STEP
    mappings = [
        [
            hd.pm.RealWorldValueMapping(
                lut_label=f"AI{i + 1:02d}",
                lut_explanation=heatmap_explanation(finding, cams.method),
                unit=C.NO_UNITS.coded(),
                value_range=(0, STORED_MAX),
                slope=1.0 / STORED_MAX,
                intercept=0.0,
                quantity_definition=C.HEATMAP_QUANTITY.coded(),
            )
        ]
        for i, finding in enumerate(findings)
    ]
    equipment = model_equipment(
        model_name, model_version, weights_sha256, f"heat maps ({cams.method}). "
    )
    if compress is None:
        compress = _rle_available()
    with quiet_source_names():
        geometry, nominal = geometry_source(ref)
    with from_source_header(image, "referenced by a Parametric Map"):
        pm = hd.pm.ParametricMap(
            source_images=[geometry],
            pixel_array=channels,
            **new_instance(PM_SERIES_NUMBER),
            contains_recognizable_visual_features=False,
            real_world_value_mappings=mappings,
            transfer_syntax_uid=RLELossless if compress else ExplicitVRLittleEndian,
            content_label=CONTENT_LABEL,
            content_description=f"AI heat maps ({cams.method}); {DISCLAIMER}"[:64],
            contributing_equipment=equipment or None,
            voi_lut_transformations=[
                hd.VOILUTTransformation(window_center=0.5, window_width=1.0)
            ],
            series_description=PM_SERIES_DESCRIPTION,
        )
    _copy_laterality_and_body_part(ref, pm)
    for frame in pm.PerFrameFunctionalGroupsSequence:
        # each frame is one finding: say which, for viewers that list frames by label
        frame.FrameContentSequence[0].FrameLabel = frame.RealWorldValueMappingSequence[
            0
        ].LUTExplanation
    if nominal:
        pm.ImageComments = "The source states no pixel spacing: 1 mm is nominal"
    return pm


def write_parametric_map(
    image: ImageData, cams: CamResult, path: str | Path, **kwargs: Any
) -> Path:
    """Write the heat maps of ``image`` as one Parametric Map file (atomically)."""
    return save_dataset(build_parametric_map(image, cams, **kwargs), path)
