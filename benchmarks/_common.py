"""Tiny shared helpers for the benchmark scripts: timing and markdown tables."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


def time_ms(fn: Callable[[int], object], runs: int = 20, warmup: int = 2) -> list[float]:
    """Call ``fn(i)`` ``warmup + runs`` times; return the ``runs`` timings in milliseconds."""
    for i in range(warmup):
        fn(-1 - i)
    out = []
    for i in range(runs):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def time_interleaved(
    cases: dict[str, Callable[[int], object]], runs: int = 20, warmup: int = 2
) -> dict[str, list[float]]:
    """Time several cases round-robin (run i of every case, then run i+1...), in ms.

    Interleaving spreads background load on a shared machine evenly over the cases, so their
    ratios stay meaningful even when the absolute numbers are noisy.
    """
    for i in range(warmup):
        for fn in cases.values():
            fn(-1 - i)
    out: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(runs):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn(i)
            out[name].append((time.perf_counter() - t0) * 1000.0)
    return out


def summary(times: Sequence[float]) -> tuple[float, float, float]:
    """(median, min, max) in ms."""
    return statistics.median(times), min(times), max(times)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render a markdown table (floats with 2 decimals)."""

    def fmt(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def bench_pixels(size: int = 3000):
    """A chest-like ``size`` x ``size`` uint16 image with 12 bits stored (the sample phantom)."""
    import numpy as np

    from cxr_viewer.io.sample import chest_phantom

    atten = chest_phantom(size, size, seed=7)
    return np.clip(np.rint(300.0 + 3200.0 * atten), 0, 4095).astype(np.uint16)


def bench_dataset(pixels, window: tuple[float, float] = (2000.0, 3000.0)):
    """An uncompressed 12-bit MONOCHROME2 DX dataset (synthetic, no patient) holding ``pixels``."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "DX", "BENCH^SYNTHETIC", "BENCH"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = window
    ds.PixelSpacing = [0.14, 0.14]
    ds.PixelData = pixels.tobytes()
    return ds
