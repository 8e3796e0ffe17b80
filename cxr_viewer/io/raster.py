"""Read PNG / JPEG / TIFF (8 or 16 bit grayscale) into :class:`ImageData`, via Pillow.

Colour files whose channels are all equal are taken as grayscale; true colour is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cxr_viewer.errors import ImageRefused
from cxr_viewer.io.decode import FATAL
from cxr_viewer.io.types import ImageData

#: Same budget as DICOM: refuse before decoding more than this many bytes.
MAX_PIXEL_BYTES = 400 * 1024 * 1024

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
)


def sniff_raster(head: bytes) -> str | None:
    """Return "PNG" / "JPEG" / "TIFF" when ``head`` (the file's first bytes) is one, else None."""
    for sig, fmt in _SIGNATURES:
        if head.startswith(sig):
            return fmt
    return None


def load_raster(path: str | Path) -> ImageData:
    """Load a grayscale PNG, JPEG or TIFF.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    ImageData
        MONOCHROME2, no header windows, ``source_format`` PNG/JPEG/TIFF, one frame (the first
        page of a multi-page TIFF; a note says so).

    Raises
    ------
    ImageRefused
        True colour, unsupported mode, too large, or unreadable.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    p = str(path)
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning: we check size ourselves
            im = Image.open(p)
    except FileNotFoundError as exc:
        raise ImageRefused(p, "file not found") from exc
    except Image.DecompressionBombError as exc:
        # Pillow's own guard (> 2 x MAX_IMAGE_PIXELS) fires on the header, before our budget.
        raise ImageRefused(p, f"absurd dimensions ({exc})") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageRefused(p, f"not a readable image ({exc})") from exc
    except FATAL:
        raise
    except BaseException as exc:  # noqa: BLE001 - a decoder failure is a refusal, never a crash
        raise ImageRefused(p, f"not a readable image ({type(exc).__name__}: {exc})") from exc
    with im:
        fmt = (im.format or "").upper()
        fmt = {"JPEG": "JPEG", "PNG": "PNG", "TIFF": "TIFF", "MPO": "JPEG"}.get(fmt, fmt)
        w, h = im.size
        bands = len(im.getbands())
        bytes_per = 2 if im.mode.startswith("I;16") else 4 if im.mode in ("I", "F") else 1
        if w <= 0 or h <= 0 or w * h * bands * bytes_per > MAX_PIXEL_BYTES:
            raise ImageRefused(p, f"absurd dimensions {w}x{h} ({bands} band(s))")
        if getattr(im, "n_frames", 1) > 1:
            notes.append(f"{im.n_frames} pages/frames; showing the first")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                im.load()
                mode = im.mode
                if mode == "P":
                    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                    mode = im.mode
                if mode == "1":
                    arr = np.asarray(im.convert("L"))
                elif mode in ("L", "I;16", "I;16B", "I;16L", "I;16N", "I"):
                    arr = np.asarray(im)
                elif mode in ("LA", "RGB", "RGBA", "CMYK", "YCbCr"):
                    rgb = np.asarray(im.convert("RGB"))
                    if not (
                        np.array_equal(rgb[..., 0], rgb[..., 1])
                        and np.array_equal(rgb[..., 1], rgb[..., 2])
                    ):
                        raise ImageRefused(
                            p, f"true colour {fmt} ({mode}) is not supported: grayscale only"
                        )
                    arr = rgb[..., 0]
                    if mode != "LA":
                        notes.append(f"{mode} with equal channels read as grayscale")
                else:
                    raise ImageRefused(p, f"{fmt} pixel mode {mode} is not supported")
        except (ImageRefused, *FATAL):
            raise
        except MemoryError as exc:
            raise ImageRefused(p, f"not enough memory to decode the {fmt or 'image'}") from exc
        except BaseException as exc:  # noqa: BLE001 - truncated / corrupt files, decoder panics
            raise ImageRefused(
                p, f"cannot decode {fmt or 'image'} ({type(exc).__name__}: {exc})"
            ) from exc
    arr = np.asarray(arr)
    if arr.dtype == np.int32:  # Pillow 'I' mode: narrow to what the values need
        lo, hi = int(arr.min()), int(arr.max())
        if lo >= 0 and hi <= 65535:
            arr = arr.astype(np.uint16)
    elif arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    frames = np.ascontiguousarray(arr[np.newaxis])
    frames.setflags(write=False)
    bits = 8 if frames.dtype == np.uint8 else 16 if frames.dtype == np.uint16 else 32
    return ImageData(
        path=p,
        frames=frames,
        photometric="MONOCHROME2",
        bits_stored=bits,
        source_format=fmt or "IMAGE",
        transfer_syntax=fmt,
        tags={},
        notes=tuple(notes),
    )
