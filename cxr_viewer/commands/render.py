"""``cxr-viewer render FILE OUT.png``: the displayed image as an 8-bit grayscale PNG."""

from __future__ import annotations

import argparse
from typing import Any

from cxr_viewer.cli import CommandError


def register(subparsers: Any) -> None:
    """Add the ``render`` sub-command."""
    p = subparsers.add_parser(
        "render",
        help="write the displayed image (window/level applied) as an 8-bit grayscale PNG",
        description="Render FILE as the viewer shows it (dcmtk-compatible window/level, "
        "MONOCHROME1 and Presentation LUT Shape handled) at the image's own size. Default: the "
        "header's first window with its VOI LUT Function, else a min-max window.",
    )
    p.add_argument("file", help="DICOM, PNG, JPEG or TIFF image")
    p.add_argument("out", help="output PNG")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--window",
        nargs=2,
        type=float,
        metavar=("CENTER", "WIDTH"),
        help="window center and width (keeps the header's VOI LUT Function)",
    )
    group.add_argument(
        "--voi-lut", type=int, metavar="N", help="use the N-th (1-based) VOI LUT Sequence item"
    )
    p.add_argument(
        "--frame", type=int, default=1, metavar="N", help="frame to render, 1-based (default 1)"
    )
    p.add_argument("--invert", action="store_true", help="invert on top of the photometric")
    p.add_argument(
        "--overlays",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="burn the DICOM overlay planes (60xx) in, as dcmtk does (default: on)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``cxr-viewer render``; returns the exit status."""
    from pathlib import Path

    from PIL import Image

    from cxr_viewer.fsutil import atomic_path
    from cxr_viewer.imaging.presets import default_preset
    from cxr_viewer.imaging.render import render_display
    from cxr_viewer.imaging.window import VOI
    from cxr_viewer.io.loader import load_image

    if args.frame < 1:
        raise CommandError(f"--frame {args.frame}: frames are numbered from 1")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise CommandError(f"{out}: the output must be a .png file")
    if not out.parent.is_dir():
        raise CommandError(f"{out.parent}: output folder does not exist")
    image = load_image(args.file, frame=args.frame - 1)
    if args.voi_lut is not None:
        if not 1 <= args.voi_lut <= len(image.voi_luts):
            raise CommandError(
                f"{args.file}: --voi-lut {args.voi_lut} requested; the file has "
                f"{len(image.voi_luts)} usable VOI LUT item(s)"
            )
        voi = VOI.lut(args.voi_lut - 1)
    elif args.window is not None:
        center, width = args.window
        if width <= 0:
            raise CommandError(f"--window width must be > 0 (got {width:g})")
        function = image.windows[0].function if image.windows else "LINEAR"
        voi = VOI.window(center, width, function)
    else:
        voi = default_preset(image).resolve(image)
    pixels = render_display(image, voi, frame=0, invert=args.invert, overlays=args.overlays)
    try:
        with atomic_path(out) as tmp:
            Image.fromarray(pixels, mode="L").save(tmp, format="PNG")
    except OSError as exc:
        raise CommandError(f"{out}: cannot write ({exc})") from exc
    return 0
