"""A pydicom decoder plugin that panics, for the refusal-boundary tests.

``DecoderPanic`` derives from ``BaseException`` (not ``Exception``), like
``pyo3_runtime.PanicException`` that pylibjpeg-rle's Rust decoder raises on a bit-flipped file.
:func:`panicking_rle_decoder` registers the plugin through pydicom's own mechanism
(``Decoder.add_plugin``) as the only RLE Lossless plugin, and restores pydicom's plugins after.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pydicom.uid import RLELossless

LABEL = "panic-test"
MESSAGE = "index out of bounds: the len is 8192 but the index is 8192 (injected)"

#: pydicom's RLE Lossless plugins, in its own order (pydicom/pixels/decoders/base.py).
_PYDICOM_RLE_PLUGINS = [
    ("pylibjpeg", ("pydicom.pixels.decoders.pylibjpeg", "_decode_frame")),
    ("pydicom", ("pydicom.pixels.decoders.rle", "_decode_frame")),
]

DECODER_DEPENDENCIES = {RLELossless: ()}


class DecoderPanic(BaseException):  # noqa: N818 - named like the Rust panic it stands for
    """Not an ``Exception``: ``except Exception`` does not catch it."""


def is_available(uid: str) -> bool:
    return uid == RLELossless


def _decode_frame(src: bytes, runner: Any) -> bytes:
    raise DecoderPanic(MESSAGE)


def install() -> None:
    """Make the panicking plugin the only RLE Lossless decoder (for subprocess CLI tests)."""
    from pydicom.pixels.decoders.base import get_decoder

    decoder = get_decoder(RLELossless)
    for label, _ in _PYDICOM_RLE_PLUGINS:
        with contextlib.suppress(ValueError):  # not registered (e.g. pylibjpeg-rle absent)
            decoder.remove_plugin(label)
    decoder.add_plugin(LABEL, (__name__, "_decode_frame"))


def uninstall() -> None:
    from pydicom.pixels.decoders.base import get_decoder

    decoder = get_decoder(RLELossless)
    decoder.remove_plugin(LABEL)
    for label, path in _PYDICOM_RLE_PLUGINS:
        with contextlib.suppress(ValueError):
            decoder.add_plugin(label, path)


@contextlib.contextmanager
def panicking_rle_decoder() -> Iterator[None]:
    install()
    try:
        yield
    finally:
        uninstall()
