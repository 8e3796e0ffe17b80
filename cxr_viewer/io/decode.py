"""Pixel-data decoding behind one refusal boundary.

Every decoder call goes through :func:`decode_pixels`. Whatever a decoder raises, including
``BaseException`` subclasses that are not ``Exception`` (the Rust RLE decoder in pylibjpeg-rle
panics with ``pyo3_runtime.PanicException`` on a bit-flipped file), becomes an
:class:`~cxr_viewer.errors.ImageRefused` naming the file, the transfer syntax and the decoder.
Only ``KeyboardInterrupt`` and ``SystemExit`` pass through.

Decoders, in order:

0. For JPEG 2000 (.90/.91) whose codestream agrees with the header (grayscale, one component,
   precision = Bits Stored, signedness = Pixel Representation, so none of pydicom's J2K
   corrections applies): imagecodecs' OpenJPEG with one thread per core, which decodes the same
   values faster (benchmarks/bench_display.py). For lossy JPEG (.50/.51) grayscale:
   imagecodecs' libjpeg-turbo, whose IDCT gives dcmtk's values exactly where pylibjpeg's libjpeg
   differs by +-1 on 1-3 % of pixels (corpus README). Any failure there falls through to 1.
1. pydicom's own pipeline with its plugins (pylibjpeg-libjpeg / -openjpeg / -rle, pyjpegls,
   numpy), which applies pydicom's corrections (Bits Stored vs codestream precision, pixel
   representation mismatches).
2. For the JPEG family (DCT, lossless and the retired processes .52-.66), when pydicom has no
   plugin or every plugin failed: imagecodecs' libjpeg-turbo (``jpeg8_decode``, 8/12/16-bit),
   which decodes what dcmtk's IJG-based decoder decodes (retired spectral selection .53, full
   progression .55, 12-bit extended codestreams with a non-zero SOS scan start that libjpeg
   rejects). Every such file in the shared corpus is measured against dcmtk in
   ``tests/test_corpus.py``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np

from cxr_viewer.errors import ImageRefused

T = TypeVar("T")

#: Exceptions that are never turned into a refusal: the user or the interpreter wants out.
FATAL: tuple[type[BaseException], ...] = (KeyboardInterrupt, SystemExit)

#: JPEG processes (PS3.5 A.4.1): baseline .50 ... retired .52-.66, lossless SV1 .70.
JPEG_FAMILY = frozenset({f"1.2.840.10008.1.2.4.{n}" for n in range(50, 67)}) | {
    "1.2.840.10008.1.2.4.70"
}

_MAX_MSG = 300

#: Whether decoder calls hold native stderr (fd 2) aside: see :func:`capture_native_stderr`.
_CAPTURE_NATIVE_STDERR = False


def capture_native_stderr(enabled: bool = True) -> None:
    """Hold fd 2 aside during decoder calls in a single-threaded command-line process.

    A Rust decoder that panics prints the panic (and, with ``RUST_BACKTRACE``, a backtrace) to
    fd 2 before Python sees the exception. The CLI promises one ``error:`` line for a refused
    file, so it enables this: what a decoder writes to fd 2 is kept in an (unlinked) temporary
    file and written out only when the decode succeeded. Not for the GUI, whose worker threads
    share fd 2.
    """
    global _CAPTURE_NATIVE_STDERR
    _CAPTURE_NATIVE_STDERR = bool(enabled)


def native_stderr_capture_enabled() -> bool:
    return _CAPTURE_NATIVE_STDERR


@contextlib.contextmanager
def _native_stderr_held() -> Iterator[list[bool]]:
    """Yield ``[ok]``; the caller sets ``ok[0] = True`` when the decode succeeded.

    Only on the main thread: fd 2 is process-wide, and worker threads must not swap it.
    """
    state = [False]
    if not _CAPTURE_NATIVE_STDERR or threading.current_thread() is not threading.main_thread():
        yield state
        return
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield state
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if state[0]:
                held.seek(0)
                data = held.read()
                if data:
                    os.write(2, data)


def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return msg if len(msg) <= _MAX_MSG else msg[:_MAX_MSG] + "..."


def _ts(ds: Any) -> tuple[str, str]:
    meta = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if uid is None:
        return "", ""
    return str(uid), str(getattr(uid, "name", uid))


def describe_transfer_syntax(ds: Any) -> str:
    """``transfer syntax NAME (UID)`` for messages."""
    uid, name = _ts(ds)
    if not uid:
        return "transfer syntax unknown (no File Meta)"
    return f"transfer syntax {name} ({uid})" if name != uid else f"transfer syntax {uid}"


def _pydicom_plugins(ts_uid: str) -> dict[str, str]:
    """{plugin module: label} of pydicom's available decoder plugins for ``ts_uid``."""
    try:
        from pydicom.pixels.decoders.base import get_decoder

        decoder = get_decoder(ts_uid)
    except Exception:  # noqa: BLE001 - native syntaxes / unknown UIDs: no plugins
        return {}
    available = getattr(decoder, "_available", {}) or {}
    return {getattr(fn, "__module__", ""): label for label, fn in available.items()}


def pydicom_decoder_name(exc: BaseException, ts_uid: str) -> str:
    """Which pydicom plugin raised ``exc`` (from its traceback), e.g. ``pylibjpeg (rle.utils)``.

    Falls back to the list of available plugins when the traceback does not tell (pydicom's
    "all plugins failed" error lists each plugin's message itself).
    """
    plugins = _pydicom_plugins(ts_uid) if ts_uid else {}
    label = None
    inner = None
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module in plugins:
            label = plugins[module]
        elif label is not None and module and not module.startswith("pydicom"):
            inner = module
        tb = tb.tb_next
    if label is not None:
        return f"pydicom plugin {label}" + (f" ({inner})" if inner else "")
    if plugins:
        return "pydicom plugins " + ", ".join(sorted(set(plugins.values())))
    return "pydicom"


def quiet(fn: Callable[[], T], notes: list[str]) -> T:
    """Run ``fn`` with warnings captured; append their messages (deduplicated) to ``notes``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    for w in caught:
        msg = " ".join(str(w.message).split())
        if msg and msg not in notes:
            notes.append(msg)
    return result


def _decode_pydicom(ds: Any, frame: int | None, notes: list[str]) -> np.ndarray:
    if frame is None:
        return np.asarray(quiet(lambda: ds.pixel_array, notes))
    from pydicom.pixels import pixel_array

    return np.asarray(quiet(lambda: pixel_array(ds, index=frame), notes))


def _int_attr(ds: Any, keyword: str, default: int) -> int:
    try:
        value = ds.get(keyword, default)
        return int(value) if value not in (None, "") else default
    except Exception:  # noqa: BLE001
        return default


def _decode_imagecodecs_jpeg(ds: Any, frame: int | None, n_frames: int) -> np.ndarray:
    """Decode JPEG-family frames with libjpeg-turbo (imagecodecs), as pydicom would shape them."""
    import imagecodecs
    from pydicom.encaps import get_frame

    rows, cols = _int_attr(ds, "Rows", 0), _int_attr(ds, "Columns", 0)
    bits_alloc = _int_attr(ds, "BitsAllocated", 16)
    bits_stored = _int_attr(ds, "BitsStored", bits_alloc)
    signed = _int_attr(ds, "PixelRepresentation", 0) == 1
    indices = range(n_frames) if frame is None else [frame]
    out = np.empty((len(indices), rows, cols), np.uint8 if bits_alloc == 8 else np.uint16)
    data = ds.PixelData
    for k, index in enumerate(indices):
        codestream = get_frame(data, index, number_of_frames=n_frames)
        arr = np.asarray(imagecodecs.jpeg8_decode(codestream))
        if arr.ndim != 2 or arr.shape != (rows, cols):
            raise ValueError(f"frame {index + 1} decodes to {arr.shape}, header says {rows}x{cols}")
        if arr.dtype.itemsize > out.dtype.itemsize:
            raise ValueError(f"frame {index + 1} decodes to {arr.dtype}, Bits Allocated {bits_alloc}")
        out[k] = arr
    if 0 < bits_stored < out.dtype.itemsize * 8:
        # Keep Bits Stored bits, as dcmtk and GDCM do: a lossy 12-bit codestream can overshoot a
        # 10-bit range (WG04 RG3_JPLY), and dcmtk shows those pixels wrapped, not clipped.
        out &= (1 << bits_stored) - 1
    if signed and 0 < bits_stored <= 16:
        # Two's complement in Bits Stored bits, as pydicom's JPEG plugins return it.
        wide = out.astype(np.int32)
        wide[wide >= 1 << (bits_stored - 1)] -= 1 << bits_stored
        return wide.astype(np.int8 if bits_alloc == 8 else np.int16)
    return out


#: JPEG 2000 transfer syntaxes decoded with threaded OpenJPEG when the codestream agrees.
J2K = frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"})


def j2k_siz(codestream: bytes) -> tuple[int, int, int, int, bool] | None:
    """(rows, cols, components, precision, signed) from a raw J2K codestream's SIZ marker.

    None for anything else (a JP2 box file, a truncated header): the caller then uses pydicom.
    """
    if len(codestream) < 45 or codestream[:4] != b"\xff\x4f\xff\x51":
        return None
    import struct

    xsiz, ysiz, xo, yo = struct.unpack(">IIII", codestream[8:24])
    (csiz,) = struct.unpack(">H", codestream[40:42])
    if csiz < 1 or len(codestream) < 42 + 3 * csiz:
        return None
    ssiz = codestream[42]
    return ysiz - yo, xsiz - xo, csiz, (ssiz & 0x7F) + 1, bool(ssiz & 0x80)


def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _decode_imagecodecs_j2k(ds: Any, frame: int | None, n_frames: int) -> np.ndarray | None:
    """Threaded OpenJPEG, or None when the codestream does not agree with the header."""
    import imagecodecs
    from pydicom.encaps import get_frame

    rows, cols = _int_attr(ds, "Rows", 0), _int_attr(ds, "Columns", 0)
    bits_alloc = _int_attr(ds, "BitsAllocated", 16)
    bits_stored = _int_attr(ds, "BitsStored", bits_alloc)
    signed = _int_attr(ds, "PixelRepresentation", 0) == 1
    if bits_alloc not in (8, 16) or _int_attr(ds, "SamplesPerPixel", 1) != 1:
        return None
    indices = range(n_frames) if frame is None else [frame]
    dtype = np.dtype(("i" if signed else "u") + str(bits_alloc // 8))
    out = np.empty((len(indices), rows, cols), dtype)
    data = ds.PixelData
    for k, index in enumerate(indices):
        codestream = get_frame(data, index, number_of_frames=n_frames)
        if j2k_siz(codestream) != (rows, cols, 1, bits_stored, signed):
            return None
        arr = np.asarray(imagecodecs.jpeg2k_decode(codestream, numthreads=_threads()))
        if arr.shape != (rows, cols) or arr.dtype.itemsize > dtype.itemsize:
            return None
        out[k] = arr
    return out


#: Lossy JPEG processes decoded first with libjpeg-turbo (dcmtk's values, see module docstring).
LOSSY_JPEG = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"})


def _decode_imagecodecs_lossy_jpeg(
    ds: Any, frame: int | None, n_frames: int
) -> np.ndarray | None:
    """libjpeg-turbo for grayscale lossy JPEG; None (pydicom decides) for anything else."""
    if _int_attr(ds, "SamplesPerPixel", 1) != 1:
        return None
    if _int_attr(ds, "BitsAllocated", 16) not in (8, 16):
        return None
    return _decode_imagecodecs_jpeg(ds, frame, n_frames)


def _preferred_for(ts_uid: str) -> Callable[[Any, int | None, int], Any] | None:
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        return None
    if ts_uid in J2K:
        return _decode_imagecodecs_j2k
    if ts_uid in LOSSY_JPEG:
        return _decode_imagecodecs_lossy_jpeg
    return None


def _fallback_for(ts_uid: str) -> tuple[str, Callable[[Any, int | None, int], np.ndarray]] | None:
    if ts_uid in JPEG_FAMILY:
        try:
            import imagecodecs  # noqa: F401
        except ImportError:
            return None
        return "imagecodecs libjpeg-turbo", _decode_imagecodecs_jpeg
    return None


def decode_pixels(
    ds: Any, path: str, frame: int | None, n_frames: int, notes: list[str]
) -> np.ndarray:
    """Decode all frames (``frame=None``) or one frame of ``ds``; refuse on any failure.

    Parameters
    ----------
    ds
        The pydicom dataset (header already checked for size and photometric).
    path
        The file, for messages.
    frame
        0-based frame index, or None for all.
    n_frames
        Number of Frames from the header.
    notes
        Loader notes; a note says when the fallback decoder was used.

    Returns
    -------
    numpy.ndarray
        The stored values as decoded (2-D or 3-D).

    Raises
    ------
    ImageRefused
        Naming the file, the transfer syntax and the decoder(s) that failed.
    """
    ts_uid, _ = _ts(ds)
    ts_text = describe_transfer_syntax(ds)
    if frame is not None and n_frames == 1:
        # pydicom's one-frame path parses fragments differently from its whole-image path and
        # refuses some files the latter reads (fuzzer, seed 2 case 207): frame 1 of 1 is the image.
        frame = None
    preferred = _preferred_for(ts_uid)
    if preferred is not None:
        try:
            with _native_stderr_held() as ok:
                fast = quiet(lambda: preferred(ds, frame, n_frames), notes)
                ok[0] = True
        except FATAL:
            raise
        except BaseException:  # noqa: BLE001 - pydicom's pipeline decides below
            fast = None
        if fast is not None:
            return fast
    try:
        with _native_stderr_held() as ok:
            arr = _decode_pydicom(ds, frame, notes)
            ok[0] = True
        return arr
    except FATAL:
        raise
    except MemoryError as exc:
        raise ImageRefused(path, f"not enough memory to decode ({ts_text})") from exc
    except BaseException as exc:  # noqa: BLE001 - the refusal boundary (module docstring)
        primary = exc
    primary_text = (
        f"{pydicom_decoder_name(primary, ts_uid)}: {type(primary).__name__}: "
        f"{_one_line(primary)}"
    )
    fallback = _fallback_for(ts_uid)
    if fallback is None:
        raise ImageRefused(
            path, f"cannot decode the pixel data ({ts_text}); decoder {primary_text}"
        ) from primary
    name, decode = fallback
    try:
        with _native_stderr_held() as ok:
            arr = quiet(lambda: decode(ds, frame, n_frames), notes)
            ok[0] = True
    except FATAL:
        raise
    except MemoryError as exc:
        raise ImageRefused(path, f"not enough memory to decode ({ts_text})") from exc
    except BaseException as exc:  # noqa: BLE001 - the refusal boundary
        raise ImageRefused(
            path,
            f"cannot decode the pixel data ({ts_text}); decoder {primary_text}; "
            f"fallback decoder {name}: {type(exc).__name__}: {_one_line(exc)}",
        ) from exc
    notes.append(f"decoded with {name} (pydicom could not: {type(primary).__name__})")
    return arr
