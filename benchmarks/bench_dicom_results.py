"""DICOM results benchmark: write the SR + Parametric Map (+ GSPS) of a 2000x2000 radiograph.

    python benchmarks/bench_dicom_results.py [--runs 5]

Source: a synthetic 2000x2000 12-bit DX (no patient) written to a temporary folder and loaded.
Result: 14 findings (9 scored, as the bundled model) and 9 smooth heat maps at 2000x2000, as
Grad-CAM gives after upsampling. Timed: building + writing (atomic, fsync) each object, the PM
with RLE Lossless (the default when pylibjpeg-rle is installed) and uncompressed; reading back
(SR findings; PM maps).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for p in (str(REPO), str(Path(__file__).resolve().parent)):
    if p not in sys.path:
        sys.path.insert(0, p)
os.environ.setdefault("CXR_VIEWER_DATA_DIR", tempfile.mkdtemp(prefix="bench-audit-"))

import numpy as np  # noqa: E402
from _common import bench_dataset, bench_pixels, markdown_table, summary, time_ms  # noqa: E402

SIZE = 2000
SCORED = (
    "Atelectasis", "Cardiomegaly", "Consolidation", "Infiltration", "Nodule/Mass",
    "Pleural effusion", "Pleural thickening", "Pneumothorax", "Pulmonary fibrosis",
)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from cxr_viewer.export.pm import write_parametric_map
    from cxr_viewer.export.pr import ViewState, write_presentation_state
    from cxr_viewer.export.sr import write_sr
    from cxr_viewer.inference.findings import VINDR_FINDINGS
    from cxr_viewer.inference.results import CamResult, FindingScore, Prediction
    from cxr_viewer.io.loader import load_image
    from cxr_viewer.io.stored_results import read_result_file

    tmp = Path(tempfile.mkdtemp(prefix="bench-dicom-results-"))
    src = tmp / "source.dcm"
    bench_dataset(bench_pixels(SIZE)).save_as(src, enforce_file_format=True)
    image = load_image(src)
    rng = np.random.default_rng(0)
    scores = tuple(
        FindingScore(f, float(p), 0.5, p >= 0.5)
        if f in SCORED
        else FindingScore(f, None, None, False)
        for f, p in zip(VINDR_FINDINGS, rng.uniform(0, 1, len(VINDR_FINDINGS)), strict=True)
    )
    pred = Prediction(image.image_id, "bench model", "1.0", "ab" * 32, scores, no_finding=0.2)
    yy, xx = np.mgrid[0:16, 0:16].astype(np.float32)
    maps = {}
    for i, f in enumerate(SCORED):  # a 16x16 CAM upsampled to the image, as Grad-CAM gives
        cam = np.exp(-(((yy - 3 - i) / 4) ** 2 + ((xx - 8) / 5) ** 2))
        import cv2

        up = cv2.resize(cam, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
        maps[f] = (up / up.max()).astype(np.float32)
    cams = CamResult(image.image_id, "gradcam", maps)
    view = ViewState(2000.0, 3000.0, rotation_k=1, measurements=((100, 100, 900, 1200, 150.0),))
    kw = dict(model_name="bench model", model_version="1.0", weights_sha256="ab" * 32)

    cases = {
        "SR (14 findings) build + write": lambda i: write_sr(image, pred, tmp / "sr.dcm"),
        "PM (9 frames, RLE) build + write": lambda i: write_parametric_map(
            image, cams, tmp / "pm.dcm", **kw
        ),
        "PM (9 frames, uncompressed) build + write": lambda i: write_parametric_map(
            image, cams, tmp / "pm_raw.dcm", compress=False, **kw
        ),
        "GSPS build + write": lambda i: write_presentation_state(image, view, tmp / "pr.dcm"),
        "read back SR findings": lambda i: read_result_file(tmp / "sr.dcm"),
        "read back PM maps": lambda i: read_result_file(tmp / "pm.dcm").load(image.image_id),
    }
    rows = []
    results = {}
    for name, fn in cases.items():
        t = time_ms(fn, runs=args.runs, warmup=1)
        results[name] = summary(t)
        rows.append((name, *summary(t)))
    print(f"bench_dicom_results: {SIZE}x{SIZE} source, {len(SCORED)} heat maps, "
          f"median of {args.runs} runs")  # fmt: skip
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPU(s), {platform.machine()}\n")  # fmt: skip
    print(markdown_table(("operation", "median ms", "min ms", "max ms"), rows))
    sizes = {
        n: (tmp / n).stat().st_size / 2**20 for n in ("sr.dcm", "pm.dcm", "pm_raw.dcm", "pr.dcm")
    }
    print("\nfile sizes: " + ", ".join(f"{n} {s:.2f} MiB" for n, s in sizes.items()))
    total = (
        results["SR (14 findings) build + write"][0]
        + results["PM (9 frames, RLE) build + write"][0]
    )
    print(f"SR + PM (RLE) of one {SIZE}x{SIZE} image: {total:.0f} ms (median sum)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
