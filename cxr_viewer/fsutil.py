"""Atomic file writes: every file the app writes goes through here.

A file is written to a temporary sibling in the same folder (same file system), flushed and
fsynced, then renamed over the target with :func:`os.replace`, which is atomic on POSIX and on
Windows. A crash or a kill at any moment leaves either the old file or the complete new one,
never a half-written file; the temporary file is removed on any error.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "atomic_open", "TMP_PREFIX"]

#: Prefix of the temporary siblings (``.<name>.<random>.part``), so leftovers are recognisable.
TMP_PREFIX = "."
TMP_SUFFIX = ".part"


def _final_mode(target: Path) -> int:
    """Mode the finished file gets: the existing target's, else 0666 less the umask.

    ``mkstemp`` creates its file 0600; an export into a shared folder must not end up
    unreadable to the colleagues it was written for, nor wider than the user's umask allows.
    """
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_current_umask()


def _current_umask() -> int:
    # Linux reports it without changing it; elsewhere os.umask must be set and restored, which
    # is process-wide, so that short window is taken only where there is no other way.
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable; not possible (nor needed) on Windows.
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed over ``target``.

    For writers that want a file name (``cv2.imwrite``, ``Dataset.save_as``, ``keras.Model.save``).
    The writer must close the file before the block ends. On an exception the temporary file is
    removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f"{TMP_PREFIX}{target.name}.", suffix=TMP_SUFFIX + target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, _final_mode(target))
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_open(
    target: str | os.PathLike[str], mode: str = "wb", encoding: str | None = None
) -> Iterator[IO]:
    """Open a temporary sibling of ``target`` for writing; rename it over ``target`` on success."""
    if not any(m in mode for m in "wax") or "+" in mode or "r" in mode:
        raise ValueError(f"atomic_open is for writing, not mode {mode!r}")
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    with atomic_path(target) as tmp:
        with open(tmp, mode.replace("x", "w").replace("a", "w"), encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically and return the target path."""
    with atomic_open(target, "wb") as fh:
        fh.write(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``target`` atomically and return the target path."""
    return atomic_write_bytes(target, text.encode(encoding))
