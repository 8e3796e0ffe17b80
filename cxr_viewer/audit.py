"""Tamper-evident audit trail: an append-only JSON-lines log, one event per line, hash-chained.

Where: ``<per-user data folder>/audit/audit.jsonl`` (``$CXR_VIEWER_DATA_DIR``, else
``$XDG_DATA_HOME/cxr-viewer``, ``%APPDATA%\\cxr-viewer`` on Windows,
``~/Library/Application Support/cxr-viewer`` on macOS, ``~/.local/share/cxr-viewer``).

Each line is one JSON object (keys sorted, no spaces) with

* ``seq``: 1, 2, 3... (its line number),
* ``prev``: SHA-256 (hex) of the previous line's bytes (64 zeros on the first line),
* ``time`` (UTC, ISO 8601) and ``event`` (our short name),
* the DICOM audit message fields (PS3.15 A.5) where one fits: ``EventID`` and ``EventTypeCode``
  as (code, scheme, meaning), ``EventActionCode`` (C/R/U/D/E), ``EventOutcomeIndicator``
  (0 success, 4 minor, 8 serious, 12 major failure), ``ActiveParticipant`` (the operating-system
  user and host), ``ParticipantObjects`` (Study / SOP Instance UIDs; never patient names or IDs),
* ``details``: what the event is about (model, scores, destination...).

A sidecar ``audit.head`` (written atomically after each append) holds the last ``seq`` and the
SHA-256 of the last line, so that an edited or removed LAST line is detected too.

Writing: one ``write()`` of one complete line (with its newline) on a file opened with
``O_APPEND``, under an exclusive lock (``flock``), then ``fsync``. A crash therefore leaves
either no new line or a complete one; should a line ever end without a newline (a disk full, an
editor), :func:`verify` reports it and the next append starts on a new line after it; nothing is
ever rewritten or repaired.

:func:`verify` recomputes the chain and names every line that was edited, deleted, inserted or
reordered.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import json
import logging
import os
import socket
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxr_viewer.fsutil import atomic_write_text

log = logging.getLogger(__name__)

GENESIS = "0" * 64
LOG_NAME = "audit.jsonl"
HEAD_NAME = "audit.head"

# PS3.15 A.5 / PS3.16 CID 400-403 vocabulary: (code, scheme, meaning).
INSTANCES_ACCESSED = ("110103", "DCM", "DICOM Instances Accessed")
INSTANCES_TRANSFERRED = ("110104", "DCM", "DICOM Instances Transferred")
EXPORT = ("110106", "DCM", "Export")
SECURITY_ALERT = ("110113", "DCM", "Security Alert")
SOFTWARE_CONFIGURATION = ("110131", "DCM", "Software Configuration")
AI_ANALYSIS = ("AI_ANALYSIS", "99CXRV", "AI analysis")  # no PS3.16 event type fits

SUCCESS, MINOR_FAILURE, SERIOUS_FAILURE, MAJOR_FAILURE = 0, 4, 8, 12


def user_data_dir() -> Path:
    """The per-user data folder of the app (see the module docstring)."""
    override = os.environ.get("CXR_VIEWER_DATA_DIR")
    if override:
        return Path(override)
    if sys.platform.startswith("win"):
        base = os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
        return Path(base) / "cxr-viewer"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "cxr-viewer"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cxr-viewer"


def default_log_path() -> Path:
    return user_data_dir() / "audit" / LOG_NAME


def line_hash(line: bytes) -> str:
    """SHA-256 of one line's bytes, without its newline."""
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")


def _coded(code: tuple[str, str, str]) -> dict[str, str]:
    return {"code": code[0], "scheme": code[1], "meaning": code[2]}


def _participant() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError, ImportError):  # no user name (some containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return {"UserID": user, "NetworkAccessPointID": socket.gethostname(), "UserIsRequestor": True}


# ---- locking -------------------------------------------------------------------------------


class _Lock:
    """Exclusive lock on an open file descriptor (flock on POSIX, msvcrt on Windows)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> _Lock:
        if os.name == "posix":
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_EX)
        else:  # pragma: no cover - Windows
            import msvcrt

            os.lseek(self.fd, 0, os.SEEK_SET)
            msvcrt.locking(self.fd, msvcrt.LK_LOCK, 1)
        return self

    def __exit__(self, *exc: object) -> None:
        if os.name == "posix":
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_UN)
        else:  # pragma: no cover - Windows
            import msvcrt

            os.lseek(self.fd, 0, os.SEEK_SET)
            msvcrt.locking(self.fd, msvcrt.LK_UNLCK, 1)


TAIL_BYTES = 1 << 16


def _read_range(fd: int, start: int, length: int) -> bytes:
    os.lseek(fd, start, os.SEEK_SET)
    data = b""
    while len(data) < length:
        chunk = os.read(fd, length - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _tail(fd: int) -> tuple[int, bytes, bool]:
    """(sequence number of the last line, its bytes without newline, whether the file ends in
    \\n), reading only the end of the file: an append costs the same on a year-old log.

    The sequence number is that of the last line that parses, plus the lines after it (a line
    cut short by a crash counts as a line: the next one chains onto it as it stands). Only when
    the tail holds no parseable line is the whole file counted.
    """
    size = os.fstat(fd).st_size
    if size == 0:
        return 0, b"", True
    start = max(0, size - TAIL_BYTES)
    data = _read_range(fd, start, size - start)
    ends_newline = data.endswith(b"\n")
    lines = data.split(b"\n")
    if ends_newline:
        lines = lines[:-1]
    if start > 0:
        lines = lines[1:]  # the first piece may be the end of a longer line
    last = lines[-1] if lines else b""
    for back, raw in enumerate(reversed(lines)):
        try:
            seq = json.loads(raw.decode("utf-8")).get("seq")
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            continue
        if isinstance(seq, int):
            return seq + back, last, ends_newline
    whole = _read_range(fd, 0, size)  # no parseable line near the end: count them all
    count = whole.count(b"\n") + (0 if ends_newline else 1)
    return count, whole.rstrip(b"\n").rsplit(b"\n", 1)[-1], ends_newline


# ---- writing -------------------------------------------------------------------------------


class AuditLog:
    """One audit log file (and its head record)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_log_path()

    @property
    def head_path(self) -> Path:
        return self.path.with_name(HEAD_NAME)

    def append(
        self,
        event: str,
        *,
        event_id: tuple[str, str, str],
        action: str,
        outcome: int = SUCCESS,
        event_type: tuple[str, str, str] | None = None,
        objects: Sequence[Mapping[str, Any]] = (),
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one event; returns the record written.

        Raises
        ------
        OSError
            The log cannot be written (full disk, permissions).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            with _Lock(fd):
                count, last, ends_newline = _tail(fd)
                record: dict[str, Any] = {
                    "seq": count + 1,
                    "prev": line_hash(last) if count else GENESIS,
                    "time": _now(),
                    "event": event,
                    "EventID": _coded(event_id),
                    "EventActionCode": action,
                    "EventOutcomeIndicator": int(outcome),
                    "ActiveParticipant": _participant(),
                    "ParticipantObjects": [dict(o) for o in objects],
                    "details": dict(details or {}),
                }
                if event_type is not None:
                    record["EventTypeCode"] = _coded(event_type)
                line = json.dumps(
                    record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
                ).encode("utf-8")
                # A previous line that lost its newline is left as it is (verify reports it);
                # this line starts on a line of its own.
                data = (b"" if ends_newline else b"\n") + line + b"\n"
                written = 0
                while written < len(data):  # one write() in practice; loop for safety
                    written += os.write(fd, data[written:])
                os.fsync(fd)
                atomic_write_text(
                    self.head_path,
                    json.dumps({"seq": record["seq"], "sha256": line_hash(line)}) + "\n",
                )
        finally:
            os.close(fd)
        return record

    def records(self) -> Iterator[tuple[int, dict[str, Any] | None, bytes]]:
        """(line number, parsed record or None when not JSON, raw bytes) for every line."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        if data.endswith(b"\n"):
            lines = lines[:-1]
        for n, raw in enumerate(lines, start=1):
            try:
                rec = json.loads(raw.decode("utf-8"))
                yield n, rec if isinstance(rec, dict) else None, raw
            except (UnicodeDecodeError, json.JSONDecodeError):
                yield n, None, raw


# ---- verification --------------------------------------------------------------------------


@dataclass
class VerifyResult:
    path: Path
    lines: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line number, what)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(path: str | os.PathLike[str] | None = None) -> VerifyResult:
    """Check the hash chain, the sequence numbers and the head record; never changes the file.

    Every problem names the line concerned:

    * line k edited (not the last): line k+1's ``prev`` is not the hash of line k;
    * line k deleted: the line now at k has ``seq`` k+1 (and its ``prev`` does not match);
    * lines reordered / inserted: ``seq`` out of order;
    * the last line edited or removed: it does not match ``audit.head``;
    * a line without a final newline (an interrupted write) or not JSON: reported as such.
    """
    audit = AuditLog(path)
    result = VerifyResult(audit.path)
    if not audit.path.exists():
        result.notes.append("no audit log yet")
        return result
    data = audit.path.read_bytes()
    if data and not data.endswith(b"\n"):
        n_lines = data.count(b"\n") + 1
        result.problems.append(
            (n_lines, f"line {n_lines} is incomplete (no newline at the end: an interrupted write)")
        )
    prev_seq = 0  # the highest sequence number seen so far
    hash_of: dict[int, tuple[int, str]] = {}  # seq -> (line number, hash of that line)
    last_raw = b""
    count = 0
    incomplete_last = bool(data) and not data.endswith(b"\n")
    for n, rec, raw in audit.records():
        count = n
        last_raw = raw
        if rec is None:
            if not (incomplete_last and n == data.count(b"\n") + 1):
                result.problems.append(
                    (n, f"line {n} is not a valid JSON record (edited, or a write was cut short)")
                )
            prev_seq += 1  # the next line chains onto this one as it stands
            hash_of[prev_seq] = (n, line_hash(raw))
            continue
        seq = rec.get("seq")
        if not isinstance(seq, int) or seq != prev_seq + 1:
            if isinstance(seq, int) and seq > prev_seq + 1:
                missing = f"{prev_seq + 1}" if seq == prev_seq + 2 else f"{prev_seq + 1}..{seq - 1}"
                what = f"entry {missing} is missing (deleted, or moved)"
            else:
                what = "out of order (lines reordered, or a line inserted)"
            result.problems.append(
                (n, f"line {n} has sequence number {seq} after {prev_seq}: {what}")
            )
        else:
            before = hash_of.get(seq - 1)
            expected_prev = GENESIS if seq == 1 else (before[1] if before else None)
            if expected_prev is not None and rec.get("prev") != expected_prev:
                if before is None:
                    result.problems.append((n, f"line {n} does not start the chain"))
                else:
                    result.problems.append(
                        (
                            before[0],
                            f"line {before[0]} was changed after it was written "
                            f"(line {n} holds a different hash of it)",
                        )
                    )
        if isinstance(seq, int):
            hash_of.setdefault(seq, (n, line_hash(raw)))
            prev_seq = max(prev_seq, seq)
    result.lines = count
    head = audit.head_path
    if count:
        try:
            head_rec = json.loads(head.read_text(encoding="utf-8"))
            head_seq, head_sha = int(head_rec["seq"]), str(head_rec["sha256"])
        except FileNotFoundError:
            result.problems.append((count, f"the head record {head.name} is missing"))
        except (ValueError, KeyError, TypeError):
            result.problems.append((count, f"the head record {head.name} is not valid"))
        else:
            if incomplete_last:
                pass  # the cut-short last line is reported above; it cannot match the head
            elif head_seq == prev_seq and head_sha != line_hash(last_raw):
                result.problems.append(
                    (count, f"line {count} (the last) was changed after it was written")
                )
            elif head_seq > prev_seq:
                result.problems.append(
                    (count, f"entries {prev_seq + 1}..{head_seq} were removed from the end")
                )
            elif head_seq == prev_seq - 1:
                result.notes.append(
                    f"the head record lags the last line {count} (interrupted after the append)"
                )
            elif head_seq < prev_seq:
                result.problems.append(
                    (count, f"entries {head_seq + 1}..{prev_seq} were not written by the app")
                )
    return result


# ---- events ----------------------------------------------------------------------------------


def _objects(
    study_uid: str | None = None, sop_uids: Iterable[str] = (), role: str = ""
) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    if study_uid:
        objects.append({"ParticipantObjectIDTypeCode": "StudyInstanceUID", "ID": study_uid})
    for uid in sop_uids:
        if uid:
            item = {"ParticipantObjectIDTypeCode": "SOPInstanceUID", "ID": uid}
            if role:
                item["role"] = role
            objects.append(item)
    return objects


def _safe(append: Any, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
    """Append, logging (not raising) a failure: auditing never breaks reading an image."""
    try:
        return append(*args, **kwargs)
    except OSError as exc:
        log.error("audit log not written: %s", exc)
        return None


def study_opened(
    study_uid: str, sop_uids: Sequence[str], *, source: str = "file", log_: AuditLog | None = None
) -> dict[str, Any] | None:
    """A study (or some of its images) was opened for reading. UIDs only: no names."""
    return _safe(
        (log_ or AuditLog()).append,
        "study-opened",
        event_id=INSTANCES_ACCESSED,
        action="R",
        objects=_objects(study_uid, sop_uids),
        details={"source": source, "images": len(sop_uids)},
    )


def ai_analysis(
    *,
    model_name: str,
    model_version: str,
    weights_sha256: str,
    input_sop_uid: str,
    study_uid: str = "",
    abnormal: float | None = None,
    flagged: Sequence[str] = (),
    operating_mode: str | None = None,
    stored: bool = False,
    outcome: int = SUCCESS,
    log_: AuditLog | None = None,
) -> dict[str, Any] | None:
    """The AI analysed an image (or a stored result of it was shown, ``stored=True``)."""
    return _safe(
        (log_ or AuditLog()).append,
        "ai-analysis" if not stored else "ai-result-shown",
        event_id=INSTANCES_ACCESSED,
        event_type=AI_ANALYSIS,
        action="E" if not stored else "R",
        outcome=outcome,
        objects=_objects(study_uid, [input_sop_uid], role="input"),
        details={
            "model_name": model_name,
            "model_version": model_version,
            "weights_sha256": weights_sha256,
            "abnormal": abnormal,
            "flagged": list(flagged),
            "operating_mode": operating_mode,
        },
    )


def ai_analysis_from_report(
    report: Any, input_sop_uid: str, study_uid: str = "", **kwargs: Any
) -> dict[str, Any] | None:
    """:func:`ai_analysis` from an :class:`~cxr_viewer.export.ai_report.AiReport`."""
    return ai_analysis(
        model_name=report.model_name,
        model_version=report.model_version,
        weights_sha256=report.weights_sha256,
        input_sop_uid=input_sop_uid,
        study_uid=study_uid,
        abnormal=report.abnormal,
        flagged=report.flagged,
        operating_mode=report.operating_mode,
        **kwargs,
    )


def exported(
    object_type: str,
    destination: str,
    *,
    study_uid: str = "",
    source_sop_uids: Sequence[str] = (),
    created_sop_uids: Sequence[str] = (),
    outcome: int = SUCCESS,
    log_: AuditLog | None = None,
) -> dict[str, Any] | None:
    """Something was written out of the app (PNG, SC, SR, PM, GSPS...)."""
    return _safe(
        (log_ or AuditLog()).append,
        "export",
        event_id=EXPORT,
        action="R",
        outcome=outcome,
        objects=_objects(study_uid, source_sop_uids, role="source")
        + _objects(None, created_sop_uids, role="created"),
        details={"object_type": object_type, "destination": destination},
    )


def sent(
    object_type: str,
    destination: str,
    *,
    study_uid: str = "",
    sop_uids: Sequence[str] = (),
    outcome: int = SUCCESS,
    log_: AuditLog | None = None,
) -> dict[str, Any] | None:
    """Objects were sent to a DICOM node (C-STORE / STOW)."""
    return _safe(
        (log_ or AuditLog()).append,
        "send",
        event_id=INSTANCES_TRANSFERRED,
        action="R",
        outcome=outcome,
        objects=_objects(study_uid, sop_uids),
        details={"object_type": object_type, "destination": destination},
    )


def setting_changed(
    key: str, old: Any, new: Any, *, log_: AuditLog | None = None
) -> dict[str, Any] | None:
    """A setting changed (never pass secrets: they live in the keyring)."""
    return _safe(
        (log_ or AuditLog()).append,
        "settings-changed",
        event_id=SECURITY_ALERT,
        event_type=SOFTWARE_CONFIGURATION,
        action="U",
        details={"key": key, "old": old, "new": new},
    )


def parse_time(text: str) -> _dt.datetime:
    """An ISO date or date-time; naive values are UTC."""
    value = _dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    return value


def describe(record: Mapping[str, Any]) -> str:
    """One human line for ``audit show``."""
    objects = record.get("ParticipantObjects") or []
    uids = ", ".join(f"{o.get('ParticipantObjectIDTypeCode', '?')}={o.get('ID')}" for o in objects)
    details = record.get("details") or {}
    detail = ", ".join(f"{k}={v}" for k, v in details.items() if v not in (None, "", []))
    user = (record.get("ActiveParticipant") or {}).get("UserID", "?")
    outcome = record.get("EventOutcomeIndicator", 0)
    status = "" if outcome == 0 else f" [outcome {outcome}]"
    return (
        f"{record.get('seq', '?'):>5} {record.get('time', '?')} {user} "
        f"{record.get('event', '?')}{status}: {detail}" + (f" [{uids}]" if uids else "")
    )
