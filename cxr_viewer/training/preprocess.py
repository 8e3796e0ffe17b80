"""Model-input preprocessing for training, identical to the app's inference path:
8-bit display rendering -> letterbox to the card's input size -> (later) / 255.

Decoded, resized images are cached once as one uint8 ``.npy`` under ``.cache/`` (gitignored), so
an epoch reads memory, not PNG/DICOM files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cxr_viewer.errors import ImageRefused
from cxr_viewer.training.datasets import Record

CACHE_VERSION = 1


def letterbox(display: np.ndarray, size: int) -> np.ndarray:
    """Letterbox an 8-bit (rows, cols) display image to (size, size) uint8.

    Uses the app's own geometry (``cxr_viewer.imaging.geometry``: area interpolation when
    shrinking, bilinear when enlarging, centred, padded with 0), so training sees exactly what
    inference feeds the model.
    """
    from cxr_viewer.imaging.geometry import fit_transform

    if display.ndim != 2 or display.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 display image, got {display.dtype} {display.shape}")
    return fit_transform(display.shape, (size, size), "letterbox").apply(display, pad_value=0)


def display_image(path: str | Path) -> np.ndarray:
    """The 8-bit display rendering the app shows (and the model sees) for one file.

    8-bit grayscale PNG/JPEG files are used as stored. Anything else (DICOM, 16-bit PNG) goes
    through the viewer's loader and its default window (``cxr_viewer.io`` / ``cxr_viewer.imaging``).
    """
    import cv2

    path = Path(path)
    if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
        arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise ImageRefused(str(path), "cannot be decoded as an image")
        if arr.ndim == 3:
            raise ImageRefused(str(path), "colour image; a grayscale radiograph is expected")
        if arr.dtype == np.uint8:
            return arr
    from cxr_viewer.inference.preprocess import render_default_display
    from cxr_viewer.io.loader import load_image

    return render_default_display(load_image(str(path)))


def cache_key(records: Sequence[Record], size: int) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([CACHE_VERSION, size]).encode())
    for r in records:
        h.update(str(r.image_path).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def build_cache(
    records: Sequence[Record], size: int, cache_dir: str | Path, log: bool = False
) -> np.ndarray:
    """Decode and letterbox every record once; return (N, size, size) uint8 (memory-mapped).

    The array is stored as ``<cache_dir>/images-<size>-<key>.npy``; a later call with the same
    records and size reuses it.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"images-{size}-{cache_key(records, size)}.npy"
    if path.is_file():
        arr = np.load(path, mmap_mode="r")
        if arr.shape == (len(records), size, size):
            return arr
    out = np.zeros((len(records), size, size), np.uint8)
    for i, rec in enumerate(records):
        out[i] = letterbox(display_image(rec.image_path), size)
        if log and (i + 1) % 100 == 0:
            print(f"cache: {i + 1}/{len(records)} images", flush=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, out)
    tmp.replace(path)
    return out


def image_shape(path: str | Path) -> tuple[int, int]:
    """(rows, cols) of an image file without decoding its pixels."""
    path = Path(path)
    if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff"):
        from PIL import Image

        with Image.open(path) as im:
            return int(im.size[1]), int(im.size[0])
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return int(ds.Rows), int(ds.Columns)


def box_targets(
    records: Sequence[Record],
    size: int,
    grid: int = 64,
    sources: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Box masks on the letterboxed model-input grid, for box-supervised training.

    Parameters
    ----------
    records
        Training records (boxes in their image file's pixels).
    size
        Model input side; masks are drawn at ``grid`` x ``grid`` covering the same extent.
    sources
        Box sources to use (None: all).

    Returns
    -------
    (masks, weights)
        masks (N, grid, grid, L) uint8 1 inside a box of that model label; weights (N, L):
        1 where the map is supervised (the label has boxes on the image, or the label is a known
        negative: an all-zero map), 0 otherwise (positive without a box, or not annotated).
    """
    from cxr_viewer.imaging.geometry import fit_transform
    from cxr_viewer.training.labels import MODEL_LABEL_NAMES, model_label_for_box
    from cxr_viewer.training.metrics import boxes_mask

    n_labels = len(MODEL_LABEL_NAMES)
    masks = np.zeros((len(records), grid, grid, n_labels), np.uint8)
    weights = np.zeros((len(records), n_labels), np.float32)
    k = grid / size
    for i, rec in enumerate(records):
        targets = np.asarray(rec.targets)
        weights[i] = (targets == 0).astype(np.float32)
        boxes = [b for b in rec.boxes if sources is None or b.source in sources]
        if not boxes:
            continue
        geo = fit_transform(image_shape(rec.image_path), (size, size), "letterbox")
        per_label: dict[int, list[tuple[float, float, float, float]]] = {}
        for b in boxes:
            label = model_label_for_box(b.finding)
            if label is None:
                continue
            j = MODEL_LABEL_NAMES.index(label)
            if targets[j] != 1:
                continue  # a box for a label the image-level labels deny: do not trust either
            r1, c1 = geo.to_target(b.y1, b.x1)
            r2, c2 = geo.to_target(b.y2, b.x2)
            per_label.setdefault(j, []).append((c1 * k, r1 * k, c2 * k, r2 * k))
        for j, bxs in per_label.items():
            masks[i, :, :, j] = boxes_mask((grid, grid), bxs)
            weights[i, j] = 1.0
    return masks, weights
