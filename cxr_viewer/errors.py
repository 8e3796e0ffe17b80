"""Typed errors. Every message names the file (or model) and the cause, so the UI and the CLI
can show it as it is."""

from __future__ import annotations


class CxrError(Exception):
    """Base of every error this package raises on purpose."""


class ImageRefused(CxrError):
    """A file that cannot be shown correctly: refused, never guessed.

    Parameters
    ----------
    path
        The file.
    cause
        One sentence saying why (e.g. "no pixel data (Basic Text SR)").
    """

    def __init__(self, path: str, cause: str) -> None:
        self.path = str(path)
        self.cause = one_line(cause)
        super().__init__(f"{one_line(self.path, limit=None)}: {self.cause}")


def one_line(text: str, limit: int | None = 600) -> str:
    """``text`` as one printable line: control characters escaped, whitespace runs collapsed.

    Causes can quote values read from a broken file (a garbage SOP Class UID, a decoder's
    message); the CLI promises one ``error:`` line and the GUI a readable message.
    """
    cleaned = "".join(
        ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256 else "?"
        for ch in " ".join(str(text).split())
    )
    if limit is not None and len(cleaned) > limit:
        cleaned = cleaned[:limit] + "..."
    return cleaned


class ModelError(CxrError):
    """A model bundle that cannot be used (bad hash, wrong shapes, unsafe layer, bad card...)."""

    def __init__(self, source: str, cause: str) -> None:
        self.source = str(source)
        self.cause = cause
        super().__init__(f"{self.source}: {cause}")
