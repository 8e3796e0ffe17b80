"""``cxr-viewer info FILE``: what the file is and what the viewer will show."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``info`` sub-command."""
    p = subparsers.add_parser(
        "info",
        help="print a summary of an image file (tags, windows, transfer syntax, spacing)",
        description="Print the tags the viewer shows, the header windows and VOI LUTs, the "
        "transfer syntax, the pixel spacing and the window the viewer opens with.",
    )
    p.add_argument("file", help="DICOM, PNG, JPEG or TIFF image")
    p.set_defaults(func=run)


def describe(image: Any) -> list[str]:
    """Summary lines for an :class:`~cxr_viewer.io.types.ImageData`."""
    import numpy as np

    from cxr_viewer.imaging.presets import default_preset, presets_for

    rows, cols = image.shape
    lines = [f"File:               {image.path}"]
    lines.append(
        f"Format:             {image.source_format}"
        + (f", {image.transfer_syntax}" if image.transfer_syntax else "")
    )
    for key, value in image.tags.items():
        lines.append(f"{key + ':':<20}{value}")
    lines.append(f"Size:               {cols} x {rows} px, {image.num_frames} frame(s)")
    lines.append(
        f"Pixels:             {image.photometric}, {image.bits_stored} bits stored, "
        f"{'signed' if image.is_signed else 'unsigned'}, values {image.frames.dtype} "
        f"{np.min(image.frames):g}..{np.max(image.frames):g}"
        + (f" {image.units}" if image.units else "")
    )
    if image.rescale_slope != 1.0 or image.rescale_intercept != 0.0:
        lines.append(
            f"Rescale:            slope {image.rescale_slope:g}, "
            f"intercept {image.rescale_intercept:g}"
        )
    if image.presentation_lut_shape:
        lines.append(f"Presentation LUT:   {image.presentation_lut_shape}")
    lines.append(
        f"Display:            {'inverted' if image.inverted_display else 'not inverted'}"
        " (MONOCHROME1 / Presentation LUT Shape)"
    )
    if image.spacing is not None:
        s = image.spacing
        lines.append(
            f"Spacing:            {s.row_mm:g} x {s.col_mm:g} mm ({s.source})"
            + (f", {s.note}" if s.note else "")
        )
    else:
        lines.append("Spacing:         unknown (measurements in pixels)")
    for i, w in enumerate(image.windows, 1):
        lines.append(
            f"{f'Window {i}:':<20}C {w.center:g} W {w.width:g} {w.function}"
            + (f" ({w.explanation})" if w.explanation else "")
        )
    for i, lut in enumerate(image.voi_luts, 1):
        lines.append(
            f"{f'VOI LUT {i}:':<20}{lut.data.size} entries from {lut.first_mapped}, "
            f"{lut.bits} bits" + (f" ({lut.explanation})" if lut.explanation else "")
        )
    for plane in getattr(image, "overlays", ()):
        frames, rows, cols = plane.bitmap.shape
        lines.append(
            f"{f'Overlay {plane.group:04X}:':<20}{cols} x {rows} at row {plane.origin[0] + 1}, "
            f"column {plane.origin[1] + 1}, type {plane.kind}"
            + (", embedded" if plane.embedded else "")
            + (f", {frames} frame(s)" if not plane.all_frames else "")
            + (f" ({plane.description})" if plane.description else "")
            + "; drawn (hide: render --no-overlays, viewer key O)"
        )
    voi = default_preset(image).resolve(image)
    shown = voi.label or "window"
    if not voi.is_lut:
        shown += f" = C {voi.center:g} W {voi.width:g} {voi.function}"
    lines.append(f"Shown with:         {shown}")
    lines.append(
        "Presets:            "
        + ", ".join(
            p.label_for(image) if hasattr(p, "label_for") else p.label for p in presets_for(image)
        )
    )
    for note in image.notes:
        lines.append(f"Note:               {note}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Run ``cxr-viewer info``; returns the exit status."""
    from cxr_viewer.io.loader import load_image

    image = load_image(args.file)
    print("\n".join(describe(image)))
    return 0
