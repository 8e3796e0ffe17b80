"""Render every dcmtk reference of the shared corpus with cxr-viewer, for the corpus's compare.py.

    python tools/render_corpus.py ../shared/data/dicom-corpus OUT_DIR
    python ../shared/data/dicom-corpus/compare.py OUT_DIR --tol 1

Uses the window in ``reference/windows.csv`` for ``ww``/``mm``/``ovl`` (keeping the header VOI
LUT Function, as the corpus README asks) and the first VOI LUT item for ``wl1``. ``ovl`` is
rendered with the overlay planes burned in, the others without (as dcmtk made them). Refused
files are listed with their reason.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from cxr_viewer.errors import ImageRefused
from cxr_viewer.fsutil import atomic_path
from cxr_viewer.imaging.render import render_display
from cxr_viewer.imaging.window import VOI
from cxr_viewer.io.loader import load_image


def main(corpus: Path, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    with open(corpus / "reference" / "windows.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["variant"] in ("ww", "mm", "wl1", "ovl")]
    loaded: dict[str, object] = {}
    written = refused = 0
    for row in rows:
        name = row["file"]
        if name not in loaded:
            try:
                loaded[name] = load_image(corpus / "corpus" / name)
            except ImageRefused as exc:
                loaded[name] = exc
        image = loaded[name]
        if isinstance(image, ImageRefused):
            print(f"refused {row['png']}: {image.cause}")
            refused += 1
            continue
        if row["variant"] == "wl1" and not image.voi_luts:
            # Its only VOI LUT item is empty: dcmtk skips it and applies no VOI transform, which
            # is the full bit range window (the loader noted the skipped item).
            voi = VOI.window(2 ** (image.bits_stored - 1), 2**image.bits_stored)
        elif row["variant"] == "wl1":
            voi = VOI.lut(0)
        else:
            function = image.windows[0].function if image.windows else "LINEAR"
            voi = VOI.window(float(row["center"]), float(row["width"]), function)
        pixels = render_display(image, voi, overlays=row["variant"] == "ovl")
        with atomic_path(out / row["png"]) as tmp:
            Image.fromarray(np.ascontiguousarray(pixels)).save(tmp, format="PNG")
        written += 1
    print(f"{written} written, {refused} refused")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1]), Path(sys.argv[2])))
