"""``cxr-viewer export FILE OUT.(png|jpg|dcm)``: the annotated export, headless."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cxr_viewer.cli import CommandError


def register(subparsers: Any) -> None:
    """Add the ``export`` sub-command."""
    p = subparsers.add_parser(
        "export",
        help="write the annotated export (PNG, JPEG or DICOM Secondary Capture) without a window",
        description="Compose the image with its window/level, the AI heat map and findings panel "
        "(the same composition as Ctrl+E in the viewer) and write it. De-identified by default.",
    )
    p.add_argument("file", help="DICOM, PNG or JPEG image")
    p.add_argument("out", help="output file: .png, .jpg/.jpeg or .dcm (Secondary Capture)")
    p.add_argument("--model", metavar="DIR", help="model bundle folder (default: bundled model)")
    p.add_argument(
        "--finding", metavar="NAME", help="heat-map finding (default: the top-ranked one)"
    )
    p.add_argument(
        "--window",
        nargs=2,
        type=float,
        metavar=("C", "W"),
        help="window center and width (default: the viewer's default preset)",
    )
    p.add_argument(
        "--method",
        default="gradcam",
        choices=("gradcam", "gradcam++", "scorecam", "saliency"),
        help="heat-map method (default: gradcam)",
    )
    p.add_argument("--frame", type=int, default=1, metavar="N", help="frame, 1-based (default 1)")
    p.add_argument("--invert", action="store_true", help="invert on top of the photometric")
    p.add_argument(
        "--include-patient-details",
        action="store_true",
        help="burn patient name/ID/dates into the panel (left out by default)",
    )
    p.add_argument("--no-ai", action="store_true", help="no model: image and provenance only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``cxr-viewer export``; returns the exit status."""
    from cxr_viewer.errors import CxrError
    from cxr_viewer.export.headless import EXPORT_SUFFIXES, build_request, export_to
    from cxr_viewer.io.loader import load_image

    out = Path(args.out)
    if out.suffix.lower() not in EXPORT_SUFFIXES:
        raise CommandError(f"{out}: unknown export format (use {', '.join(EXPORT_SUFFIXES)})")
    if args.no_ai and args.finding:
        raise CommandError("--finding needs the model; drop --no-ai")
    if args.window is not None and args.window[1] <= 0:
        raise CommandError(f"window width must be positive, not {args.window[1]:g}")
    try:
        image = load_image(args.file)
        frame = args.frame - 1
        if not 0 <= frame < image.num_frames:
            raise CommandError(f"{args.file}: no frame {args.frame} (it has {image.num_frames})")
        bundle = None
        if not args.no_ai:
            from cxr_viewer.inference.bundle import load_bundle
            from cxr_viewer.paths import default_model_dir

            bundle = load_bundle(Path(args.model) if args.model else default_model_dir())
        request = build_request(
            image,
            bundle=bundle,
            finding=args.finding,
            window=tuple(args.window) if args.window else None,
            include_patient_details=args.include_patient_details,
            cam_method=args.method,
            invert=args.invert,
            frame=frame,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        path, (rows, cols) = export_to(request, out)
    except CxrError as exc:
        raise CommandError(str(exc)) from exc
    detail = "no AI"
    if request.prediction is not None:
        top = request.prediction.ranked()[0]
        detail = f"heat map {request.finding}; top finding {top.finding}"
        if top.probability is not None:
            detail += f" {100 * top.probability:.1f}%"
    print(f"wrote {path} ({cols} x {rows} px; {detail})")
    return 0
