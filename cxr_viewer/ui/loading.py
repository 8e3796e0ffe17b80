"""Worker-side helpers of the viewer (no widgets): an image cache, scan-result adaptation and
thumbnails. Everything here runs in worker threads; only plain data goes back to the GUI."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from cxr_viewer.errors import ImageRefused
from cxr_viewer.io.types import ImageData
from cxr_viewer.ui.study_browser import THUMB_SIZE, BrowserEntry


class ImageCache:
    """Thread-safe LRU of loaded images keyed by path (thumbnails and the view share loads)."""

    def __init__(self, capacity: int = 3) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, ImageData] = OrderedDict()
        self.capacity = capacity

    def load(self, path: str) -> ImageData:
        from cxr_viewer.io.loader import load_image

        key = str(path)
        with self._lock:
            image = self._items.get(key)
            if image is not None:
                self._items.move_to_end(key)
                return image
        image = load_image(key)
        with self._lock:
            self._items[key] = image
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return image

    def get(self, path: str) -> ImageData | None:
        """The cached image, without loading."""
        with self._lock:
            return self._items.get(str(path))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _tag(image: ImageData, key: str) -> str:
    return str(image.tags.get(key, "") or "")


def entry_for_image(image: ImageData) -> BrowserEntry:
    """Browser placement of a loaded image (files opened one by one)."""
    name = _tag(image, "PatientName").replace("^", " ").strip()
    date = _tag(image, "StudyDate")
    desc = _tag(image, "StudyDescription")
    study_key = image.study_uid or f"file:{Path(image.path).parent}"
    deid = desc or "Study"  # de-identified: no name, no date
    study_label = " - ".join(t for t in (name, " ".join(t for t in (date, desc) if t)) if t) \
        or Path(image.path).parent.name
    series_key = image.series_uid or study_key
    series_desc = _tag(image, "SeriesDescription")
    series_num = _tag(image, "SeriesNumber")
    series_label = " ".join(t for t in (image.modality, f"#{series_num}" if series_num else "",
                                        series_desc) if t) or "Series"
    inst = f"{image.instance_number}: " if image.instance_number is not None else ""
    return BrowserEntry(image.path, study_key, study_label, series_key, series_label,
                        inst + Path(image.path).name, deid, _tag(image, "PatientID"), date,
                        image.modality)


def entries_from_scan(result: Any) -> tuple[list[BrowserEntry], list[tuple[str, str]]]:
    """Flatten ``cxr_viewer.io.scan.ScanResult`` (studies -> series -> instances, skipped) into
    browser entries and ``(path, reason)`` problems."""
    entries: list[BrowserEntry] = []
    for si, study in enumerate(result.studies):
        name = study.patient_name.replace("^", " ").strip()
        deid = study.description or f"Study {si + 1}"  # de-identified: no name, no date
        dated = " ".join(t for t in (study.date, study.description) if t) or f"Study {si + 1}"
        label = " - ".join(t for t in (name, dated) if t)
        for series in study.series:
            s_label = " ".join(t for t in (
                series.modality, f"#{series.number}" if series.number is not None else "",
                series.description) if t) or "Series"
            for ii, inst in enumerate(series.instances, start=1):
                num = inst.instance_number if inst.instance_number is not None else ii
                entries.append(BrowserEntry(str(inst.path), study.uid, label, series.uid,
                                            s_label, f"{num}: {Path(inst.path).name}", deid,
                                            study.patient_id, study.date,
                                            inst.modality or series.modality))
    problems = [(str(path), f"{path}: {reason}") for path, reason in result.skipped]
    return entries, problems


def scan_paths(folders: list[str]) -> tuple[list[BrowserEntry], list[tuple[str, str]]]:
    """Scan folders recursively (worker)."""
    from cxr_viewer.io.scan import scan_folder

    entries: list[BrowserEntry] = []
    problems: list[tuple[str, str]] = []
    for folder in folders:
        e, p = entries_from_scan(scan_folder(folder))
        entries += e
        problems += p
    return entries, problems


def probe_files(files: list[str], cache: ImageCache) -> tuple[list[BrowserEntry],
                                                              list[tuple[str, str]]]:
    """Load files opened one by one (worker); each failure becomes (path, reason)."""
    entries: list[BrowserEntry] = []
    problems: list[tuple[str, str]] = []
    for f in files:
        try:
            entries.append(entry_for_image(cache.load(f)))
        except ImageRefused as exc:
            problems.append((exc.path, str(exc)))
        except Exception as exc:  # noqa: BLE001 - an unexpected decoder failure is a refusal too
            problems.append((str(f), f"{f}: {type(exc).__name__}: {exc}"))
    return entries, problems


def make_thumbnail(image: ImageData, size: int = THUMB_SIZE) -> np.ndarray:
    """8-bit thumbnail (default window), longest side about ``size``."""
    from cxr_viewer.imaging.presets import default_preset
    from cxr_viewer.imaging.render import DisplayRenderer

    step = max(1, int(np.ceil(max(image.shape) / size)))
    return DisplayRenderer(image).render(default_preset(image).resolve(image), step=step)


def make_thumbnails(paths: list[str], cache: ImageCache, context: Any) -> int:
    """Worker: thumbnails one by one, reported as progress (path, array | reason str)."""
    from cxr_viewer.io.loader import load_image

    done = 0
    for path in paths:
        if context.cancelled:
            break
        try:
            image = cache.get(path) or load_image(path)
            context.progress((path, make_thumbnail(image)))
        except ImageRefused as exc:
            context.progress((path, str(exc)))
        except Exception as exc:  # noqa: BLE001
            context.progress((path, f"{path}: {type(exc).__name__}: {exc}"))
        done += 1
    return done
