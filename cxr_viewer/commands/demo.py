"""``cxr-viewer demo --out DIR``: the bundled model on the generated sample study, end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cxr_viewer.cli import CommandError


def register(subparsers: Any) -> None:
    """Add the ``demo`` sub-command."""
    p = subparsers.add_parser(
        "demo",
        help="run the bundled model on the generated sample study and write exports",
        description="Open the generated synthetic sample study (no patient data), predict, compute "
        "heat maps, and write predictions.json, one annotated PNG and one DICOM Secondary "
        "Capture per image into DIR.",
    )
    p.add_argument("--out", default="out", metavar="DIR", help="output folder (default: out)")
    p.add_argument("--model", metavar="DIR", help="model bundle folder (default: bundled model)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``cxr-viewer demo``; returns the exit status."""
    import time

    from cxr_viewer.errors import CxrError
    from cxr_viewer.export.headless import build_request, export_to, prediction_to_dict
    from cxr_viewer.inference.bundle import load_bundle
    from cxr_viewer.io.loader import load_image
    from cxr_viewer.io.sample import sample_study_dir
    from cxr_viewer.paths import default_model_dir

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        model_dir = Path(args.model) if args.model else default_model_dir()
        bundle = load_bundle(model_dir)
        study = Path(sample_study_dir())
        # the current study (its prior, in prior/, is for the viewer's comparison)
        files = sorted(p for p in study.glob("*") if p.is_file() and p.suffix.lower() == ".dcm")
        if not files:
            raise CommandError(f"{study}: the sample study holds no DICOM file")
        results: list[dict[str, Any]] = []
        for path in files:
            image = load_image(path)
            request = build_request(image, bundle=bundle)
            stem = path.stem
            png, (rows, cols) = export_to(request, out / f"{stem}-annotated.png")
            dcm, _ = export_to(request, out / f"{stem}-ai-sc.dcm")
            if request.prediction is None:  # build_request always predicts with a bundle
                raise CommandError(f"{path}: no prediction")
            entry = {
                "file": path.name,
                "rows": image.shape[0],
                "columns": image.shape[1],
                "heatmap_finding": request.finding,
                "heatmap_method": request.cams.method if request.cams else None,
                "annotated_png": png.name,
                "secondary_capture": dcm.name,
                **prediction_to_dict(request.prediction),
            }
            results.append(entry)
            top = request.prediction.ranked()[0]
            prob = "n/a" if top.probability is None else f"{100 * top.probability:.1f}%"
            flagged = sum(1 for s in request.prediction.scores if s.flagged)
            print(
                f"{path.name}: top {top.finding} {prob}, {flagged} flagged, "
                f"heat map {request.finding} -> {png.name} ({cols} x {rows}), {dcm.name}"
            )
    except CxrError as exc:
        raise CommandError(str(exc)) from exc
    from cxr_viewer import DISCLAIMER
    from cxr_viewer.fsutil import atomic_write_text

    atomic_write_text(
        out / "predictions.json",
        json.dumps({"disclaimer": DISCLAIMER, "images": results}, indent=2) + "\n",
    )
    card = bundle.card
    print(
        f"demo: {len(results)} image(s), model {card.name} {card.version} "
        f"in {time.perf_counter() - t0:.1f} s -> {out}/ (predictions.json, PNG, SC). {DISCLAIMER}"
    )
    return 0
