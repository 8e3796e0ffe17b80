"""Reading workflow, Qt-free: prior pairing (hanging protocol), prior/current change of the AI's
opinion, worklist ordering, read/unread state persisted atomically, and a bounded LRU cache of
decoded images (prefetch).

Rules (issue 14):

* A prior is a study of the *same, non-empty* Patient ID with a *known* study date strictly
  before the current one; the most recent such study wins.  Inputs without a date (PNG, JPEG,
  DICOM without StudyDate) are never paired: a guessed order could put a later image on the
  "prior" side.
* The worklist score is the model's Abnormal score when the prediction has one (``abnormal``
  attribute, a number or an object with ``probability``), else the highest finding probability.
* The read state is a small JSON file written with :mod:`cxr_viewer.fsutil` (temp + rename).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: A probability change at least this large is shown as "up" / "down" (else "same").
CHANGE_EPS = 0.05
#: Default memory limit of the prefetch cache (settings ``prefetch/limit_mb``).
DEFAULT_CACHE_BYTES = 1 << 30


# ===================================================================== prior pairing
@dataclass(frozen=True)
class StudyRef:
    """One study as the hanging protocol sees it."""

    key: str  # Study Instance UID, or "file:..." for a lone raster file
    patient_id: str = ""
    date: dt.date | None = None
    paths: tuple[str, ...] = ()
    modality: str = ""
    label: str = ""


def parse_da(value: str | None) -> dt.date | None:
    """A DICOM DA value (``YYYYMMDD``, also ``YYYY.MM.DD`` and ISO ``YYYY-MM-DD``) or None."""
    if not value:
        return None
    text = str(value).strip().replace(".", "").replace("-", "")
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def find_prior(current: StudyRef, studies: Iterable[StudyRef]) -> StudyRef | None:
    """The most recent earlier study of the same patient, or None.

    Parameters
    ----------
    current
        The study being read.
    studies
        Every study known (open folders, local cache, PACS query); ``current`` may be among them.

    Returns
    -------
    StudyRef or None
        None when ``current`` has no Patient ID or no date, or no dated earlier study of that
        patient exists.
    """
    pid = current.patient_id.strip()
    if not pid or current.date is None:
        return None
    candidates = [s for s in studies
                  if s.key != current.key and s.patient_id.strip() == pid
                  and s.date is not None and s.date < current.date]
    if not candidates:
        return None
    return max(candidates, key=lambda s: (s.date, s.key))


def months_between(earlier: dt.date, later: dt.date) -> int:
    """Whole calendar months from ``earlier`` to ``later`` (rounded to the nearest month)."""
    days = (later - earlier).days
    return int(round(days / 30.4375))


def interval_text(prior: dt.date, current: dt.date) -> str:
    """``"Prior 2025-11-12, 3 months earlier"`` (days under a month, years from two years)."""
    days = (current - prior).days
    if days < 31:
        ago = f"{days} day{'s' if days != 1 else ''}"
    else:
        months = months_between(prior, current)
        if months >= 24:
            years = months // 12
            ago = f"{years} years"
        else:
            ago = f"{months} month{'s' if months != 1 else ''}"
    return f"Prior {prior.isoformat()}, {ago} earlier"


# ===================================================================== change since the prior
@dataclass(frozen=True)
class FindingChange:
    """One row of the comparison: a finding's probability now and on the prior."""

    finding: str
    current: float | None
    prior: float | None
    change: str  # "new flag" | "resolved" | "up" | "down" | "same" | ""


def _scores(prediction: Any) -> dict[str, tuple[float | None, bool]]:
    return {s.finding: (s.probability, bool(s.flagged)) for s in prediction.scores}


def compare_predictions(current: Any, prior: Any, eps: float = CHANGE_EPS) -> list[FindingChange]:
    """Current vs prior probabilities per finding, most changed first.

    ``new flag``: flagged now, not on the prior; ``resolved``: flagged on the prior, not now;
    ``up`` / ``down``: the probability moved by at least ``eps``; ``same`` otherwise.  Findings
    the model does not score are left out.
    """
    now, then = _scores(current), _scores(prior)
    rows = []
    for finding, (p, flag) in now.items():
        q, qflag = then.get(finding, (None, False))
        if p is None and q is None:
            continue
        if p is None or q is None:
            change = ""
        elif flag and not qflag:
            change = "new flag"
        elif qflag and not flag:
            change = "resolved"
        elif p - q >= eps:
            change = "up"
        elif q - p >= eps:
            change = "down"
        else:
            change = "same"
        rows.append(FindingChange(finding, p, q, change))
    rank = {"new flag": 0, "resolved": 1, "up": 2, "down": 3, "same": 4, "": 5}
    rows.sort(key=lambda r: (rank[r.change], -abs((r.current or 0.0) - (r.prior or 0.0))))
    return rows


# ===================================================================== worklist
def worklist_score(prediction: Any) -> float | None:
    """The Abnormal score when the model has one, else the highest finding probability."""
    abnormal = getattr(prediction, "abnormal", None)
    if abnormal is not None:
        value = getattr(abnormal, "probability", abnormal)
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    probs = [s.probability for s in prediction.scores if s.probability is not None]
    return max(probs) if probs else None


def flag_count(prediction: Any) -> int:
    """How many findings are at or above their operating threshold."""
    return sum(1 for s in prediction.scores if s.flagged)


@dataclass
class WorklistItem:
    """One study in the worklist."""

    key: str
    label: str = ""
    score: float | None = None  # None: not analysed (yet)
    flags: int = 0
    read: bool = False
    order: int = 0  # position in the open order (tie-break, keeps the sort stable)


def sort_worklist(items: Sequence[WorklistItem]) -> list[WorklistItem]:
    """Most abnormal first; studies not analysed yet after the analysed ones, in open order."""
    return sorted(items, key=lambda i: (i.score is None, -(i.score or 0.0), i.order))


def next_unread(items: Sequence[WorklistItem], current: str | None = None) -> WorklistItem | None:
    """The most abnormal unread study other than ``current`` (the key "next unread")."""
    for item in sort_worklist(items):
        if not item.read and item.key != current:
            return item
    return None


class ReadState:
    """Read/unread per study key, persisted as JSON (atomic write on every change)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._read: dict[str, str] = {}  # key -> ISO time it was marked read
        self.error = ""
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._read = {str(k): str(v) for k, v in data.get("read", {}).items()}
            except (OSError, ValueError, AttributeError) as exc:
                # a damaged file must not stop the viewer: start empty and say why
                self.error = f"{self.path}: read state ignored ({exc})"

    def is_read(self, key: str) -> bool:
        return key in self._read

    def set_read(self, key: str, read: bool = True) -> None:
        if read == self.is_read(key):
            return
        if read:
            self._read[key] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        else:
            self._read.pop(key, None)
        self.save()

    def keys(self) -> set[str]:
        return set(self._read)

    def save(self) -> None:
        from cxr_viewer.fsutil import atomic_write_text

        atomic_write_text(self.path, json.dumps({"version": 1, "read": self._read}, indent=1))


def default_read_state_path() -> Path:
    """``user_cache_dir() / "read-state.json"``."""
    from cxr_viewer.paths import user_cache_dir

    return user_cache_dir() / "read-state.json"


# ===================================================================== prefetch cache
def image_nbytes(image: Any) -> int:
    """Memory held by a decoded ImageData (frames plus the stored values when kept)."""
    n = int(image.frames.nbytes)
    stored = getattr(image, "stored", None)
    if stored is not None:
        n += int(stored.nbytes)
    return n


@dataclass
class LRUImageCache:
    """Thread-safe LRU of decoded images bounded by memory (bytes), not by count.

    An image larger than the whole limit is not kept.  ``load`` decodes on a miss (worker
    threads call it for prefetch, the viewer for the image to show).
    """

    max_bytes: int = DEFAULT_CACHE_BYTES
    loader: Callable[[str], Any] | None = None
    _items: OrderedDict[str, tuple[Any, int]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    nbytes: int = 0
    hits: int = 0
    misses: int = 0

    def get(self, key: str) -> Any | None:
        with self._lock:
            item = self._items.get(str(key))
            if item is None:
                return None
            self._items.move_to_end(str(key))
            return item[0]

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return str(key) in self._items

    def put(self, key: str, image: Any) -> None:
        size = image_nbytes(image)
        key = str(key)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.nbytes -= old[1]
            if size > self.max_bytes:
                return
            self._items[key] = (image, size)
            self.nbytes += size
            while self.nbytes > self.max_bytes and self._items:
                _k, (_img, s) = self._items.popitem(last=False)
                self.nbytes -= s

    def load(self, key: str) -> Any:
        image = self.get(key)
        if image is not None:
            self.hits += 1
            return image
        self.misses += 1
        if self.loader is None:
            from cxr_viewer.io.loader import load_image

            image = load_image(str(key))
        else:
            image = self.loader(str(key))
        self.put(key, image)
        return image

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def set_limit(self, max_bytes: int) -> None:
        with self._lock:
            self.max_bytes = int(max_bytes)
            while self.nbytes > self.max_bytes and self._items:
                _k, (_img, s) = self._items.popitem(last=False)
                self.nbytes -= s

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.nbytes = 0
