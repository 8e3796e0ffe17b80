"""Local study cache: ``<folder>/<StudyInstanceUID>/<SOPInstanceUID>.dcm``.

Each instance is written atomically (temp sibling + rename, :mod:`cxr_viewer.fsutil`), so a file
with a ``.dcm`` name is always complete. A study is *complete* only once its retrieve finished and
the hidden marker ``.complete.json`` was written; an interrupted retrieve leaves complete files but
no marker, and a retry fills in the rest. Total size is kept under a limit by deleting whole
studies, oldest retrieve first (the study being written is never evicted).

A study folder is a plain folder of DICOM files: the study browser opens it like any other.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cxr_viewer.fsutil import TMP_PREFIX, TMP_SUFFIX, atomic_write_bytes, atomic_write_text
from cxr_viewer.net.config import user_data_dir

__all__ = ["StudyCache", "CachedStudy", "default_cache_dir", "default_inbox_dir", "safe_name"]

MARKER = ".complete.json"
_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def default_cache_dir() -> Path:
    """Retrieved studies."""
    return user_data_dir() / "studies"


def default_inbox_dir() -> Path:
    """Studies pushed to the listener."""
    return user_data_dir() / "inbox"


def safe_name(uid: str) -> str:
    """A file-name-safe form of a UID: the UID itself when it is a proper UID, else a hash
    (a peer must not be able to write outside the cache with a crafted 'UID')."""
    uid = uid.strip().rstrip("\x00")
    if _UID_RE.match(uid) and len(uid) <= 64:
        return uid
    return "x" + hashlib.sha256(uid.encode("utf-8", "replace")).hexdigest()[:32]


@dataclass(frozen=True)
class CachedStudy:
    uid: str
    path: Path
    size_bytes: int
    files: int
    complete: bool
    stored_at: float  # when the last retrieve finished (or the newest file, when incomplete)


class StudyCache:
    """Studies under ``folder``, with a size limit (bytes; ``None`` = unlimited)."""

    def __init__(
        self, folder: str | Path, limit_bytes: int | None = None, durable: bool = False
    ) -> None:
        self.folder = Path(folder)
        self.durable = durable
        self.limit_bytes = limit_bytes
        self._lock = threading.Lock()
        self._active: set[str] = set()

    def study_dir(self, study_uid: str) -> Path:
        return self.folder / safe_name(study_uid)

    def instance_path(self, study_uid: str, sop_uid: str) -> Path:
        return self.study_dir(study_uid) / f"{safe_name(sop_uid)}.dcm"

    def write_instance(self, study_uid: str, sop_uid: str, data: bytes) -> Path:
        """Write one encoded DICOM file atomically (temp sibling + rename); returns its path.

        With ``durable`` (the listener's inbox: the sender may delete its copy once we answer
        Success) the file is fsynced before the rename. A retrieve's cache is not: the PACS
        keeps the original, so the files are fsynced together by :meth:`finish` before the
        study is marked complete, and the network transfer never waits for the disk.
        """
        target = self.instance_path(study_uid, sop_uid)
        if self.durable:
            return atomic_write_bytes(target, data)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f"{TMP_PREFIX}{target.name}.", suffix=TMP_SUFFIX, dir=target.parent
        )
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        return target

    def _sync_study(self, study_uid: str) -> None:
        for f in self.instances(study_uid):
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if os.name == "posix":
            fd = os.open(self.study_dir(study_uid), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    # -- retrieve bookkeeping --------------------------------------------------------------
    def begin(self, study_uid: str) -> Path:
        """A retrieve starts: the study is incomplete (marker removed) and not evictable."""
        d = self.study_dir(study_uid)
        d.mkdir(parents=True, exist_ok=True)
        (d / MARKER).unlink(missing_ok=True)
        with self._lock:
            self._active.add(safe_name(study_uid))
        return d

    def finish(self, study_uid: str, ok: bool, source: str = "", count: int = 0) -> None:
        """A retrieve ended; on success the study gets its marker, then the cache is trimmed."""
        d = self.study_dir(study_uid)
        if ok:
            if not self.durable:
                self._sync_study(study_uid)
            atomic_write_text(
                d / MARKER,
                json.dumps({"study_uid": study_uid, "source": source, "instances": count,
                            "stored_at": time.time()}) + "\n",
            )
        with self._lock:
            self._active.discard(safe_name(study_uid))
        if not ok:
            with contextlib.suppress(OSError):
                d.rmdir()  # only when nothing arrived: a study that does not exist leaves no trace
        if ok:
            self.evict()

    def is_complete(self, study_uid: str) -> bool:
        return (self.study_dir(study_uid) / MARKER).is_file()

    def instances(self, study_uid: str) -> list[Path]:
        """The complete instance files of a study (temporary siblings are not listed)."""
        d = self.study_dir(study_uid)
        if not d.is_dir():
            return []
        return sorted(p for p in d.glob("*.dcm") if not p.name.startswith("."))

    # -- listing, eviction, deletion -------------------------------------------------------
    def studies(self) -> list[CachedStudy]:
        out = []
        if not self.folder.is_dir():
            return out
        for d in self.folder.iterdir():
            if not d.is_dir():
                continue
            files = [p for p in d.iterdir() if p.is_file()]
            size = sum(p.stat().st_size for p in files)
            marker = d / MARKER
            uid = d.name
            stored = 0.0
            if marker.is_file():
                try:
                    info = json.loads(marker.read_text(encoding="utf-8"))
                    uid = str(info.get("study_uid", uid))
                    stored = float(info.get("stored_at", 0.0))
                except (OSError, ValueError):
                    stored = marker.stat().st_mtime
            elif files:
                stored = max(p.stat().st_mtime for p in files)
            n = sum(1 for p in files if p.suffix == ".dcm" and not p.name.startswith("."))
            out.append(CachedStudy(uid, d, size, n, marker.is_file(), stored))
        return sorted(out, key=lambda s: s.stored_at)

    def total_bytes(self) -> int:
        return sum(s.size_bytes for s in self.studies())

    def evict(self) -> list[Path]:
        """Delete whole studies, oldest first, until the cache fits its limit. Returns them."""
        if self.limit_bytes is None:
            return []
        studies = self.studies()
        total = sum(s.size_bytes for s in studies)
        removed = []
        with self._lock:
            active = set(self._active)
        for s in studies:
            if total <= self.limit_bytes:
                break
            if s.path.name in active:
                continue
            shutil.rmtree(s.path, ignore_errors=True)
            total -= s.size_bytes
            removed.append(s.path)
        return removed

    def delete(self, study_uid: str) -> None:
        """Delete the local copy of one study."""
        shutil.rmtree(self.study_dir(study_uid), ignore_errors=True)

    def delete_all(self) -> int:
        """"Delete local copies": every study not being written. Returns how many went."""
        with self._lock:
            active = set(self._active)
        n = 0
        for s in self.studies():
            if s.path.name not in active:
                shutil.rmtree(s.path, ignore_errors=True)
                n += 1
        return n

    def leftovers(self) -> list[Path]:
        """Temporary siblings left by a crash (never shown: their names start with a dot)."""
        if not self.folder.is_dir():
            return []
        return [p for p in self.folder.rglob(f"*{TMP_SUFFIX}*") if p.is_file()]
