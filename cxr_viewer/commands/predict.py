"""``cxr-viewer predict PATH... [--model DIR] [--out DIR] [--heatmaps]``: findings, headless.

Writes ``OUT/predictions.json`` and ``OUT/predictions.csv`` (one row per image and finding) and,
with ``--heatmaps``, one 8-bit grayscale PNG per image and scored finding,
``OUT/heatmaps/<image stem>__<finding slug>.png``, at the original image size (0 = no attention,
255 = that finding's strongest attention).  Files or folders (scanned recursively); refused files
are listed in the JSON with the reason.  Exit status: 0 every input was analysed;
:data:`EXIT_SOME_REFUSED` (3) some were analysed and some refused (the results are written);
2 none could be.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from cxr_viewer.cli import CommandError

SCHEMA = "cxr-viewer-predictions/1"
#: Exit status when some inputs were analysed and others refused (see the module docstring).
EXIT_SOME_REFUSED = 3
CSV_COLUMNS = (
    "file",
    "model_name",
    "model_version",
    "finding",
    "probability",
    "threshold",
    "flagged",
    "heatmap",
)


def register(subparsers: Any) -> None:
    """Add the ``predict`` sub-command."""
    p = subparsers.add_parser(
        "predict",
        help="run the model on images or folders; write predictions.json/.csv (and heat maps)",
        description="Rank the 14 VinDr-CXR findings for each image with the local model "
        "(research use: an AI second opinion, not for primary diagnosis).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    p.add_argument(
        "--model",
        metavar="DIR",
        help="model bundle folder, or a bare .keras/.h5 file in the seed project's format "
        "(default: the bundled model)",
    )
    p.add_argument("--out", metavar="DIR", default="out", help="output folder (default: out)")
    p.add_argument(
        "--heatmaps",
        action="store_true",
        help="also write OUT/heatmaps/<image stem>__<finding>.png for every scored finding",
    )
    p.add_argument(
        "--method",
        default="gradcam",
        choices=("gradcam", "gradcam++", "scorecam", "saliency"),
        help="heat-map method (default: gradcam, the fast all-label path)",
    )
    p.add_argument(
        "--dicom-out",
        metavar="DIR",
        help="also write a DICOM Structured Report per DICOM image (and, with --heatmaps, one "
        "Parametric Map of its heat maps) into DIR",
    )
    p.set_defaults(func=run)


class _Progress:
    """A one-line progress bar on stderr (a line per image when stderr is not a terminal)."""

    def __init__(self, total: int, stream: TextIO, enabled: bool) -> None:
        self.total, self.stream, self.enabled = total, stream, enabled
        self.tty = enabled and stream.isatty()
        self.start = time.monotonic()

    def update(self, done: int, name: str) -> None:
        if not self.enabled:
            return
        if self.tty:
            width = 30
            filled = int(width * done / max(1, self.total))
            rate = (time.monotonic() - self.start) / max(1, done)
            bar = "#" * filled + "." * (width - filled)
            self.stream.write(f"\r[{bar}] {done}/{self.total} {rate:.1f} s/image  {name[-40:]:<40}")
        else:
            self.stream.write(f"[{done}/{self.total}] {name}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def collect_inputs(paths: list[str]) -> tuple[list[Path], list[tuple[Path, str]], bool]:
    """Expand files and folders into image files.

    Returns
    -------
    tuple
        (files to analyse, [(path, reason)] refused while scanning, whether a folder was given).
    """
    from cxr_viewer.io.scan import scan_folder

    files: list[Path] = []
    refused: list[tuple[Path, str]] = []
    any_folder = False
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            any_folder = True
            scan = scan_folder(path)
            files += [inst.path for inst in scan.instances]
            refused += list(scan.skipped)
        elif path.is_file():
            files.append(path)
        else:
            refused.append((path, "no such file or folder"))
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, refused, any_folder


def _heatmap_name(stem: str, slug: str, used: set[str]) -> str:
    name = f"{stem}__{slug}.png"
    n = 2
    while name in used:  # two inputs with the same stem (e.g. DICOM files "1" in two folders)
        name = f"{stem}-{n}__{slug}.png"
        n += 1
    used.add(name)
    return name


def _load_model(spec: str | None) -> Any:
    from cxr_viewer.inference.bundle import load_any
    from cxr_viewer.paths import default_model_dir

    return load_any(Path(spec) if spec else default_model_dir())


def run(args: argparse.Namespace) -> int:
    """Run ``cxr-viewer predict``; returns the exit status."""
    import cv2

    from cxr_viewer.errors import CxrError
    from cxr_viewer.imaging.heatmap import cam_to_uint8
    from cxr_viewer.inference.findings import NO_FINDING, finding_slug
    from cxr_viewer.io.loader import load_image

    try:
        bundle = _load_model(args.model)
    except CxrError as exc:
        raise CommandError(str(exc)) from exc
    card = bundle.card
    files, refused_paths, any_folder = collect_inputs(args.paths)
    out = Path(args.out)
    heat_dir = out / "heatmaps"
    out.mkdir(parents=True, exist_ok=True)
    if args.heatmaps:
        heat_dir.mkdir(exist_ok=True)

    images: list[dict[str, Any]] = []
    refused = [{"file": str(p), "reason": reason} for p, reason in refused_paths]
    csv_rows: list[dict[str, Any]] = []
    used_names: set[str] = set()
    progress = _Progress(len(files), sys.stderr, any_folder or len(files) > 1)
    for n, path in enumerate(files, start=1):
        try:
            image = load_image(path)
            pred = bundle.predict(image)
            heatmaps: dict[str, str] = {}
            entry: dict[str, Any] = {"file": str(path)}
            cams = None
            if args.heatmaps:
                cams = bundle.cams(image, method=args.method)
                for finding in cams.maps:
                    name = _heatmap_name(path.stem, finding_slug(finding), used_names)
                    target = heat_dir / name
                    if not cv2.imwrite(str(target), cam_to_uint8(cams.maps[finding])):
                        raise OSError(f"could not write {target}")
                    heatmaps[finding] = str(target.relative_to(out))
                entry["heatmap_method"] = cams.method
                if cams.note:
                    entry["heatmap_note"] = cams.note
            from cxr_viewer.export.dicom_results import after_prediction  # audit + --dicom-out

            entry["dicom"] = after_prediction(image, pred, cams=cams, dicom_out=args.dicom_out)
            if "dicom_refused" in entry["dicom"]:  # PNG/JPEG: analysed, but no DICOM results
                print(f"no DICOM results: {path}: {entry['dicom']['dicom_refused']}", file=sys.stderr)
        except (CxrError, ValueError, OSError) as exc:
            refused.append({"file": str(path), "reason": getattr(exc, "cause", None) or str(exc)})
            progress.update(n, path.name)
            continue
        entry.update(
            {
                "model_name": pred.model_name,
                "model_version": pred.model_version,
                "image_size": list(image.shape),
                "findings": [
                    {
                        "finding": s.finding,
                        "probability": s.probability,
                        "threshold": s.threshold,
                        "flagged": None if s.probability is None else bool(s.flagged),
                        "scored": s.probability is not None,
                    }
                    for s in pred.scores
                ],
                "no_finding": pred.no_finding,
                "warnings": list(pred.warnings),
                "extras": dict(pred.extras),
            }
        )
        if args.heatmaps:
            entry["heatmaps"] = heatmaps
        if image.notes:
            entry["notes"] = list(image.notes)
        images.append(entry)
        for s in pred.scores:
            csv_rows.append(
                {
                    "file": str(path),
                    "model_name": pred.model_name,
                    "model_version": pred.model_version,
                    "finding": s.finding,
                    "probability": "" if s.probability is None else f"{s.probability:.6f}",
                    "threshold": "" if s.threshold is None else f"{s.threshold:g}",
                    "flagged": "" if s.probability is None else ("yes" if s.flagged else "no"),
                    "heatmap": heatmaps.get(s.finding, ""),
                }
            )
        if pred.no_finding is not None:
            nf = card.labels[card.no_finding_index or 0]
            csv_rows.append(
                {
                    "file": str(path),
                    "model_name": pred.model_name,
                    "model_version": pred.model_version,
                    "finding": NO_FINDING,
                    "probability": f"{pred.no_finding:.6f}",
                    "threshold": f"{nf.threshold:g}",
                    "flagged": "yes" if pred.no_finding >= nf.threshold else "no",
                    "heatmap": "",
                }
            )
        progress.update(n, path.name)
    progress.close()

    document = {
        "schema": SCHEMA,
        "model": {
            "name": card.name,
            "version": card.version,
            "architecture": card.architecture,
            "weights_sha256": card.weights_sha256,
            "path": str(bundle.path),
            "not_scored": list(card.not_scored_findings),
        },
        "intended_use": card.intended_use,
        "images": images,
        "refused": refused,
    }
    (out / "predictions.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    with open(out / "predictions.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(csv_rows)

    print(
        f"analysed {len(images)} image(s), refused {len(refused)}; "
        f"wrote {out / 'predictions.json'} and {out / 'predictions.csv'}",
        file=sys.stderr,
    )
    for item in refused:
        print(f"refused: {item['file']}: {item['reason']}", file=sys.stderr)
    if not images:
        return 2
    return EXIT_SOME_REFUSED if refused else 0
