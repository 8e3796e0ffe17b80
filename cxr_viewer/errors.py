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
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")


class ModelError(CxrError):
    """A model bundle that cannot be used (bad hash, wrong shapes, unsafe layer, bad card...)."""

    def __init__(self, source: str, cause: str) -> None:
        self.source = str(source)
        self.cause = cause
        super().__init__(f"{self.source}: {cause}")
