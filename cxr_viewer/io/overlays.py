"""Overlay planes (groups 6000-601E, PS3.3 C.9.2) read from a DICOM header, as dcmtk reads them.

Two storage forms:

* separate: Overlay Data (60xx,3000), one bit per pixel, packed little-endian bit order
  (PS3.5 8.1.2), Overlay Bits Allocated 1;
* embedded (retired): the plane lives in a bit of the native Pixel Data that lies outside the
  stored bits (Overlay Bit Position > High Bit, or below the stored range).

As dcmtk does, a plane that cannot be read is skipped with a note: missing Overlay Rows/Columns
or data, Overlay Data shorter than the plane, or an embedded plane whose Overlay Bit Position
falls inside the stored pixel value (dcmtk: "refers to bit position within stored pixel value",
e.g. the corpus's dcmfx file), or an embedded plane in compressed Pixel Data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cxr_viewer.io.types import OverlayPlane

#: Refuse to unpack overlay planes larger than this many pixels in total (all frames).
MAX_OVERLAY_PIXELS = 64 * 1024 * 1024


def _value(ds: Any, group: int, element: int) -> Any:
    try:
        elem = ds.get((group << 16) | element)
    except Exception:  # noqa: BLE001 - a malformed element reads as absent
        return None
    if elem is None:
        return None
    try:
        value = elem.value
    except Exception:  # noqa: BLE001
        return None
    return None if value in (None, "", b"") else value


def _int(value: Any, default: int | None = None) -> int | None:
    if value is None:
        return default
    try:
        if isinstance(value, list | tuple) or hasattr(value, "__len__") and not isinstance(
            value, str | bytes
        ):
            value = list(value)[0]
        return int(value)
    except (TypeError, ValueError, IndexError):
        return default


def read_overlays(
    ds: Any,
    *,
    image_rows: int,
    image_cols: int,
    n_frames: int,
    frame: int | None,
    bits_allocated: int,
    bits_stored: int,
    high_bit: int,
    encapsulated: bool,
    notes: list[str],
) -> tuple[OverlayPlane, ...]:
    """Every readable overlay plane of ``ds``, mapped onto the loaded frames.

    Parameters
    ----------
    ds
        The dataset.
    image_rows, image_cols, n_frames
        Image geometry from the header.
    frame
        The single frame loaded (0-based), or None when all frames are.
    bits_allocated, bits_stored, high_bit
        The image's pixel layout (for embedded planes).
    encapsulated
        Compressed Pixel Data (embedded planes cannot be read from it).
    notes
        Loader notes; a note per skipped plane.
    """
    planes: list[OverlayPlane] = []
    groups = sorted(
        {int(tag.group) for tag in ds.keys() if 0x6000 <= tag.group <= 0x601E and tag.group % 2 == 0}
    )
    for group in groups:
        label = f"overlay plane {group:04X}"
        rows = _int(_value(ds, group, 0x0010))
        cols = _int(_value(ds, group, 0x0011))
        if not rows or not cols or rows <= 0 or cols <= 0:
            if any(_value(ds, group, e) is not None for e in (0x3000, 0x0100, 0x0050)):
                notes.append(f"{label}: no Overlay Rows/Columns; not drawn")
            continue
        origin_raw = _value(ds, group, 0x0050)
        try:
            origin_vals = [int(v) for v in (origin_raw if origin_raw is not None else [1, 1])]
            origin = (origin_vals[0] - 1, origin_vals[1] - 1)  # 1-based in DICOM
        except (TypeError, ValueError, IndexError):
            notes.append(f"{label}: malformed Overlay Origin {origin_raw!r}; not drawn")
            continue
        n_ov = _int(_value(ds, group, 0x0015))
        frame_origin = _int(_value(ds, group, 0x0051), 1) or 1
        all_frames = n_ov is None
        n_ov = max(n_ov or 1, 1)
        kind = str(_value(ds, group, 0x0040) or "G").strip().upper() or "G"
        description = str(
            _value(ds, group, 0x0022) or _value(ds, group, 0x1500) or ""
        ).strip()
        if rows * cols * n_ov > MAX_OVERLAY_PIXELS:
            notes.append(f"{label}: {rows}x{cols}x{n_ov} is too large; not drawn")
            continue
        data = _value(ds, group, 0x3000)
        embedded = data is None
        if not embedded:
            raw = bytes(data) if isinstance(data, bytes | bytearray) else None
            if raw is None:
                notes.append(f"{label}: Overlay Data is not a byte string; not drawn")
                continue
            need = rows * cols * n_ov
            bits = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")
            if bits.size < need:
                notes.append(
                    f"{label}: Overlay Data holds {bits.size} bits, the plane needs {need}; "
                    "not drawn"
                )
                continue
            bitmap = bits[:need].reshape(n_ov, rows, cols).astype(bool)
        else:
            bit_pos = _int(_value(ds, group, 0x0102))
            ov_bits_alloc = _int(_value(ds, group, 0x0100))
            low = high_bit - bits_stored + 1
            if bit_pos is None:
                notes.append(f"{label}: neither Overlay Data nor Overlay Bit Position; not drawn")
                continue
            if low <= bit_pos <= high_bit or not 0 <= bit_pos < bits_allocated:
                notes.append(
                    f"{label}: embedded in bit {bit_pos}, which is inside the stored pixel value "
                    f"(bits {low}-{high_bit}); not drawn"
                    + (f" (Overlay Bits Allocated {ov_bits_alloc})" if ov_bits_alloc else "")
                )
                continue
            if encapsulated or bits_allocated not in (8, 16):
                notes.append(f"{label}: embedded in compressed or unusual Pixel Data; not drawn")
                continue
            if (rows, cols) != (image_rows, image_cols):
                notes.append(f"{label}: embedded plane size differs from the image; not drawn")
                continue
            try:
                pixel_bytes = ds.PixelData
                little = bool(getattr(ds, "is_little_endian", True) in (True, None))
                dtype = np.uint8 if bits_allocated == 8 else np.dtype("<u2" if little else ">u2")
                words = np.frombuffer(pixel_bytes, dtype=dtype)[: n_frames * rows * cols]
                words = words.reshape(n_frames, rows, cols)
            except Exception:  # noqa: BLE001 - pixel data checks happen in the loader
                notes.append(f"{label}: embedded plane unreadable; not drawn")
                continue
            bitmap = ((words >> bit_pos) & 1).astype(bool)
            all_frames = False
            n_ov = n_frames
            frame_origin = 1
        # Map onto the loaded frames (all, or the single frame that was decoded).
        first = frame_origin - 1
        if frame is not None and not all_frames:
            k = frame - first
            if not 0 <= k < bitmap.shape[0]:
                continue  # the plane is not on the loaded frame
            bitmap = bitmap[k : k + 1]
            first = 0
        bitmap = np.ascontiguousarray(bitmap)
        bitmap.setflags(write=False)
        if kind == "R":
            notes.append(f"{label}: region-of-interest overlay drawn as graphics")
        planes.append(
            OverlayPlane(
                group=group,
                bitmap=bitmap,
                origin=origin,
                first_frame=first,
                all_frames=all_frames,
                kind=kind,
                description=description,
                embedded=embedded,
            )
        )
    return tuple(planes)
