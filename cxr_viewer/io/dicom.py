"""Read a DICOM file into :class:`~cxr_viewer.io.types.ImageData`, or refuse it.

Decoding is pydicom's (with the pylibjpeg / pyjpegls plugins). Everything that cannot be shown
correctly is refused with :class:`~cxr_viewer.errors.ImageRefused` *before* large allocations:
the pixel-count limit is checked on the header, and native pixel data is checked for length.
pydicom warnings never escape; the relevant ones become ``ImageData.notes``.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cxr_viewer.errors import ImageRefused
from cxr_viewer.io.decode import FATAL, decode_pixels
from cxr_viewer.io.decode import quiet as _quiet
from cxr_viewer.io.overlays import read_overlays
from cxr_viewer.io.types import ImageData, PixelSpacing, VOILut, VOIWindow

#: Refuse images whose decoded pixel buffer would exceed this many bytes (all frames).
MAX_PIXEL_BYTES = 400 * 1024 * 1024

#: Tags shown by the UI (and ``cxr-viewer info``), by keyword.
DISPLAY_TAGS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "SeriesDescription",
    "SeriesNumber",
    "InstanceNumber",
    "AccessionNumber",
    "ViewPosition",
    "Modality",
    "Laterality",
    "ImageLaterality",
    "BodyPartExamined",
    "InstitutionName",
    "Manufacturer",
    "ManufacturerModelName",
    "SOPClassUID",
    "ReferringPhysicianName",
    "StudyID",
    "ContentDate",
    "AcquisitionDate",
    "PatientOrientation",
)

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _ts_name(ds: Any) -> tuple[str, str]:
    """(UID, name) of the dataset's transfer syntax ("" when unknown)."""
    meta = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if uid is None:
        return "", ""
    name = getattr(uid, "name", str(uid))
    return str(uid), str(name)


def _describe_ts(ds: Any) -> str:
    uid, name = _ts_name(ds)
    if not uid:
        return "transfer syntax unknown (no File Meta)"
    return f"transfer syntax {name} ({uid})" if name != uid else f"transfer syntax {uid}"


def _file_meta_ts(path: str) -> str:
    """ ", transfer syntax NAME (UID)" from the File Meta alone, or "" when unreadable."""
    try:
        from pydicom.filereader import read_file_meta_info

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta = read_file_meta_info(path)
        uid = meta.TransferSyntaxUID
    except Exception:  # noqa: BLE001 - best effort, only used to word a refusal
        return ""
    return f", {_describe_ts_uid(uid)}"


def _describe_ts_uid(uid: Any) -> str:
    name = str(getattr(uid, "name", uid))
    return f"transfer syntax {name} ({uid})" if name != str(uid) else f"transfer syntax {uid}"


def read_dataset(path: str | Path, *, stop_before_pixels: bool = False) -> tuple[Any, list[str]]:
    """Read a DICOM dataset (with or without preamble / File Meta) or refuse the file.

    Parameters
    ----------
    path
        The file.
    stop_before_pixels
        Read the header only (folder scanning).

    Returns
    -------
    tuple
        ``(dataset, notes)``.

    Raises
    ------
    ImageRefused
        Not DICOM, unreadable, or an empty dataset.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    notes: list[str] = []
    p = str(path)
    # Large values (the pixel data) are read only when used, i.e. after the size checks.
    opts = {"stop_before_pixels": stop_before_pixels, "defer_size": "16 MB"}
    try:
        try:
            ds = _quiet(lambda: pydicom.dcmread(p, **opts), notes)
        except InvalidDicomError:
            # No preamble/'DICM': try as a bare dataset (files without File Meta).
            ds = _quiet(lambda: pydicom.dcmread(p, force=True, **opts), notes)
            notes.append("no DICOM preamble / File Meta; read as a bare dataset")
    except FileNotFoundError as exc:
        raise ImageRefused(p, "file not found") from exc
    except IsADirectoryError as exc:
        raise ImageRefused(p, "is a folder, not a file") from exc
    except FATAL:
        raise
    except BaseException as exc:  # noqa: BLE001 - pydicom raises many types on garbage input
        ds = _read_cp246(p, exc, stop_before_pixels, notes)
        if ds is None:
            raise ImageRefused(
                p, f"not a readable DICOM file{_file_meta_ts(p)} ({type(exc).__name__}: {exc})"
            ) from exc
    if len(ds) == 0:
        if getattr(ds, "file_meta", None) is not None and len(ds.file_meta):
            raise ImageRefused(
                p, "empty DICOM dataset: only the File Meta could be read (truncated or corrupt)"
            )
        raise ImageRefused(p, "not a DICOM file (no DICOM data elements could be read)")
    # A forced read of a non-DICOM file yields a few garbage elements: demand something sane.
    try:
        has_known = any(
            k in ds
            for k in (
                "SOPClassUID",
                "Modality",
                "Rows",
                "PatientID",
                "StudyInstanceUID",
                "SOPInstanceUID",
                "PixelData",
            )
        )
    except Exception:  # noqa: BLE001 - garbage elements can fail to decode
        has_known = False
    if not has_known:
        raise ImageRefused(p, "not a DICOM file (no recognisable DICOM attributes)")
    return ds, notes


def _read_cp246(p: str, error: BaseException, stop_before_pixels: bool, notes: list[str]) -> Any:
    """The one tolerant re-read, after pydicom's strict read of ``p`` failed with ``error``.

    Explicit VR Big Endian files whose undefined-length UN elements hold their sequence in
    Implicit VR Little Endian, as PS3.5 6.2.2 requires and dcmtk reads (see io/cp246.py).
    ``None`` (the caller refuses the file with ``error``) for anything else.
    """
    import io

    import pydicom

    from cxr_viewer.io.cp246 import MAX_FILE_BYTES, note, reencode_un_sequences

    try:
        if Path(p).stat().st_size > MAX_FILE_BYTES:
            return None
        fixed = reencode_un_sequences(Path(p).read_bytes())
        if fixed is None:
            return None
        data, described = fixed
        ds = _quiet(
            lambda: pydicom.dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels),
            notes,
        )
    except FATAL:
        raise
    except BaseException:  # noqa: BLE001 - the tolerant read failed too: refuse as before
        return None
    notes.append(note(described, error))
    return ds


def _get(ds: Any, keyword: str, default: Any = None) -> Any:
    """Dataset value or ``default``; malformed values read as ``default``."""
    try:
        value = ds.get(keyword, default)
    except Exception:  # noqa: BLE001 - a malformed element must not kill the whole load
        return default
    return default if value is None or value == "" else value


def _multi(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | bytes):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def _lut_from_item(
    item: Any, pixel_signed: bool, kind: str, index: int, notes: list[str]
) -> VOILut | None:
    """Parse one Modality/VOI LUT item; ``None`` (with a note) when it is empty or invalid."""
    desc = _get(item, "LUTDescriptor")
    data_elem = item["LUTData"] if "LUTData" in item else None
    explanation = str(_get(item, "LUTExplanation", "") or "")
    if desc is None or data_elem is None or data_elem.value in (None, b"", []):
        notes.append(f"{kind} item {index + 1} is empty (no LUT Descriptor or LUT Data); skipped")
        return None
    desc = [int(v) for v in _multi(desc)]
    if len(desc) != 3:
        notes.append(f"{kind} item {index + 1} has a malformed LUT Descriptor {desc}; skipped")
        return None
    n_entries, first, bits = desc
    n_entries = n_entries or 65536
    if pixel_signed and first > 32767:
        first -= 65536  # descriptor value 2 is signed when pixel data are signed (C.11.1.1.1)
    raw = data_elem.value
    if isinstance(raw, bytes | bytearray):
        little = getattr(item, "is_little_endian", True)
        if little is None:
            little = True
        data = np.frombuffer(raw, dtype="<u2" if little else ">u2").astype(np.uint16)
    else:
        data = np.asarray([int(v) for v in _multi(raw)], dtype=np.int64)
        data = data.astype(np.uint16) if data.min(initial=0) >= 0 else data.astype(np.int32)
    if bits == 8 and data.size == n_entries // 2 and data.dtype == np.uint16:
        # 8-bit entries packed two per 16-bit word (seen in the wild).
        data = data.view(np.uint8).astype(np.uint16)
    if data.size < n_entries:
        notes.append(
            f"{kind} item {index + 1}: LUT Data has {data.size} entries, descriptor says "
            f"{n_entries}; skipped"
        )
        return None
    data = np.ascontiguousarray(data[:n_entries])
    if bits <= 0 or bits > 16:
        notes.append(f"{kind} item {index + 1}: LUT bit depth {bits} invalid; skipped")
        return None
    data.setflags(write=False)
    return VOILut(first_mapped=first, bits=bits, data=data, explanation=explanation)


def _expected_native_bytes(rows: int, cols: int, frames: int, bits_alloc: int, spp: int) -> int:
    n = rows * cols * frames * spp
    if bits_alloc == 1:
        return (n + 7) // 8
    return n * (bits_alloc // 8)


def _narrow_int(arr: np.ndarray) -> np.ndarray:
    """Smallest of int16/uint16/int32 (or the input dtype) that holds ``arr`` exactly."""
    lo, hi = int(arr.min()), int(arr.max())
    for dt in (np.uint8, np.uint16, np.int16, np.int32):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return arr.astype(dt, copy=False)
    return arr.astype(np.int64, copy=False)


def _spacing(ds: Any, notes: list[str]) -> PixelSpacing | None:
    for keyword, note in (
        ("PixelSpacing", ""),
        ("ImagerPixelSpacing", "at the detector plane; not corrected for geometric magnification"),
        ("NominalScannedPixelSpacing", "nominal scanner spacing (digitised film)"),
    ):
        value = _get(ds, keyword)
        if value is None:
            continue
        vals = _multi(value)
        try:
            row_mm, col_mm = float(vals[0]), float(vals[1] if len(vals) > 1 else vals[0])
        except (TypeError, ValueError, IndexError):
            notes.append(f"{keyword} {value!r} is malformed; ignored")
            continue
        if not (row_mm > 0 and col_mm > 0 and np.isfinite(row_mm) and np.isfinite(col_mm)):
            notes.append(f"{keyword} {value!r} is not positive; ignored")
            continue
        return PixelSpacing(row_mm=row_mm, col_mm=col_mm, source=keyword, note=note)
    return None


def _windows(ds: Any, notes: list[str]) -> tuple[VOIWindow, ...]:
    centers = _multi(_get(ds, "WindowCenter"))
    widths = _multi(_get(ds, "WindowWidth"))
    if not centers or not widths:
        return ()
    explanations = [str(e) for e in _multi(_get(ds, "WindowCenterWidthExplanation"))]
    function = str(_get(ds, "VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        notes.append(f"unknown VOI LUT Function {function!r}; using LINEAR")
        function = "LINEAR"
    if len(centers) != len(widths):
        notes.append(
            f"{len(centers)} Window Center values but {len(widths)} Window Width values; "
            "using the pairs present in both"
        )
    out = []
    for i, (c, w) in enumerate(zip(centers, widths, strict=False)):
        try:
            cf, wf = float(c), float(w)
        except (TypeError, ValueError):
            notes.append(f"window {i + 1} ({c!r}/{w!r}) is not numeric; ignored")
            continue
        if (
            not (np.isfinite(cf) and np.isfinite(wf))
            or wf <= 0
            or (function != "SIGMOID" and function != "LINEAR_EXACT" and wf < 1)
        ):
            notes.append(f"window {i + 1} (C={cf:g} W={wf:g}) is invalid; ignored")
            continue
        expl = explanations[i] if i < len(explanations) else ""
        out.append(VOIWindow(center=cf, width=wf, explanation=expl, function=function))
    return tuple(out)


def _tags(ds: Any) -> dict[str, str]:
    from pydicom.multival import MultiValue

    tags: dict[str, str] = {}
    for kw in DISPLAY_TAGS:
        value = _get(ds, kw)
        if value is None:
            continue
        if kw == "SOPClassUID":
            value = getattr(value, "name", value)
        if isinstance(value, MultiValue | list | tuple):
            value = "\\".join(str(v) for v in value)
        tags[kw] = str(value)
    return tags


def _header_without_pixels(ds: Any, notes: list[str]) -> Any:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.tag import Tag

    pixel_tags = {Tag(k) for k in _PIXEL_KEYWORDS}
    hdr = Dataset()
    for tag in list(ds.keys()):
        if tag in pixel_tags:
            continue
        try:
            hdr.add(ds[tag])
        except Exception as exc:  # noqa: BLE001 - one bad element must not refuse the image
            notes.append(f"element {tag} unreadable ({exc}); left out of the header")
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        hdr.file_meta = FileMetaDataset(meta)
    hdr.preamble = getattr(ds, "preamble", None)
    return hdr


def load_dicom(path: str | Path, frame: int | None = None) -> ImageData:
    """Load a grayscale DICOM image (all frames, or one) after the Modality LUT.

    Parameters
    ----------
    path
        The DICOM file (Part 10, or a bare dataset without File Meta).
    frame
        ``None`` to decode every frame; a 0-based index to decode only that frame (the result
        then holds one frame; ``notes`` says which).

    Returns
    -------
    ImageData

    Raises
    ------
    ImageRefused
        For anything that cannot be shown correctly (see module docstring).
    """
    notes: list[str] = []
    # pydicom warns lazily (value conversion on first access), so capture around everything.
    p = str(path)
    try:
        image = _quiet(lambda: _load_dicom(p, frame, notes), notes)
    except ImageRefused:
        raise
    except MemoryError as exc:
        raise ImageRefused(p, "not enough memory to load the image") from exc
    except FATAL:
        raise
    except BaseException as exc:  # noqa: BLE001 - a refusal boundary (see decode.py)
        msg = " ".join(str(exc).split())[:300]
        raise ImageRefused(p, f"malformed DICOM ({type(exc).__name__}: {msg})") from exc
    return dataclasses.replace(image, notes=tuple(notes))


def _ensure_transfer_syntax(ds: Any, notes: list[str]) -> None:
    """Give a dataset read without File Meta the transfer syntax it was actually encoded in."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None:
        return
    if implicit:
        uid = ImplicitVRLittleEndian
    else:
        uid = ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    if meta is None:
        meta = FileMetaDataset()
        ds.file_meta = meta
    meta.TransferSyntaxUID = uid
    notes.append(f"no Transfer Syntax UID in the file; assumed {uid.name} (how it was encoded)")


def _load_dicom(p: str, frame: int | None, notes: list[str]) -> ImageData:
    ds, read_notes = read_dataset(p)
    notes.extend(read_notes)
    _ensure_transfer_syntax(ds, notes)

    # ---- what is this? -------------------------------------------------------------------
    sop = _get(ds, "SOPClassUID")
    sop_name = str(getattr(sop, "name", sop)) if sop is not None else "unknown SOP class"
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise ImageRefused(p, f"float pixel data ({sop_name}) is not supported for display")
        raise ImageRefused(p, f"no pixel data ({sop_name})")
    photometric = str(_get(ds, "PhotometricInterpretation", "") or "").strip().upper()
    spp = int(_get(ds, "SamplesPerPixel", 1) or 1)
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        if not photometric:
            raise ImageRefused(
                p, "Photometric Interpretation is missing; cannot tell how to show it"
            )
        raise ImageRefused(
            p, f"colour image ({photometric}) is not supported: the viewer shows grayscale only"
        )
    if spp != 1:
        raise ImageRefused(p, f"{spp} samples per pixel with {photometric}: not grayscale")

    # ---- sizes, before anything is decoded or allocated ------------------------------------
    try:
        rows = int(_get(ds, "Rows", 0))
        cols = int(_get(ds, "Columns", 0))
        n_frames = int(_get(ds, "NumberOfFrames", 1) or 1)
        bits_alloc = int(_get(ds, "BitsAllocated", 0))
        bits_stored = int(_get(ds, "BitsStored", bits_alloc) or bits_alloc)
        pixel_rep = int(_get(ds, "PixelRepresentation", 0) or 0)
    except (TypeError, ValueError) as exc:
        raise ImageRefused(p, f"malformed image attributes ({exc})") from exc
    if rows <= 0 or cols <= 0 or n_frames <= 0:
        raise ImageRefused(p, f"invalid dimensions {rows}x{cols}, {n_frames} frame(s)")
    if bits_alloc not in (1, 8, 16, 32):
        raise ImageRefused(p, f"Bits Allocated {bits_alloc} is not supported")
    decoded_bytes = rows * cols * n_frames * max(bits_alloc // 8, 1)
    if decoded_bytes > MAX_PIXEL_BYTES:
        raise ImageRefused(
            p,
            f"absurd dimensions {rows}x{cols}x{n_frames} frame(s) at {bits_alloc} bits "
            f"({decoded_bytes / 2**20:.0f} MiB > {MAX_PIXEL_BYTES // 2**20} MiB limit)",
        )
    if frame is not None and not 0 <= frame < n_frames:
        raise ImageRefused(p, f"frame {frame + 1} requested; the image has {n_frames} frame(s)")

    ts_uid, ts_name = _ts_name(ds)
    elem = ds["PixelData"]
    if elem.value is None or len(elem.value) == 0:
        raise ImageRefused(p, f"no pixel data (the Pixel Data element is empty; {sop_name})")
    ts = ds.file_meta.TransferSyntaxUID if ts_uid else None
    if ts is not None and not ts.is_transfer_syntax:
        raise ImageRefused(
            p, f"unsupported transfer syntax {ts_uid} (unknown to the decoders available)"
        )
    encapsulated = bool(ts is not None and ts.is_encapsulated)
    if not encapsulated:
        value = elem.value
        have = len(value) if isinstance(value, bytes | bytearray) else None
        need = _expected_native_bytes(rows, cols, n_frames, bits_alloc, spp)
        if have is not None and have < need:
            raise ImageRefused(
                p, f"pixel data shorter than the header says ({have} of {need} bytes)"
            )

    # ---- decode ---------------------------------------------------------------------------
    arr = decode_pixels(ds, p, frame, n_frames, notes)
    arr = np.asarray(arr)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3 or arr.shape[1:] != (rows, cols):
        raise ImageRefused(
            p, f"decoded pixel array has shape {arr.shape}, expected frames x {rows} x {cols}"
        )
    if arr.dtype.kind == "f":
        raise ImageRefused(p, "floating-point pixel data is not supported for display")
    if frame is not None:
        notes.append(f"frame {frame + 1} of {n_frames} decoded")
    stored = arr
    try:
        high_bit = int(_get(ds, "HighBit", bits_stored - 1))
    except (TypeError, ValueError):
        high_bit = bits_stored - 1
    overlays = read_overlays(
        ds,
        image_rows=rows,
        image_cols=cols,
        n_frames=n_frames,
        frame=frame,
        bits_allocated=bits_alloc,
        bits_stored=bits_stored,
        high_bit=high_bit,
        encapsulated=encapsulated,
        notes=notes,
    )

    # ---- Modality LUT stage (PS3.3 C.11.1) -------------------------------------------------
    signed = pixel_rep == 1
    slope = _get(ds, "RescaleSlope")
    intercept = _get(ds, "RescaleIntercept")
    modality_lut: VOILut | None = None
    for i, item in enumerate(_get(ds, "ModalityLUTSequence", []) or []):
        modality_lut = _lut_from_item(item, signed, "Modality LUT", i, notes)
        if modality_lut is not None:
            break
    rescale_slope, rescale_intercept = 1.0, 0.0
    if modality_lut is not None:
        if slope is not None or intercept is not None:
            notes.append("both Modality LUT Sequence and Rescale Slope/Intercept; using the LUT")
        idx = np.clip(
            stored.astype(np.int64) - modality_lut.first_mapped, 0, modality_lut.data.size - 1
        )
        values = np.asarray(modality_lut.data)[idx]
        values = _narrow_int(values)
    else:
        try:
            rescale_slope = float(slope) if slope is not None else 1.0
            rescale_intercept = float(intercept) if intercept is not None else 0.0
        except (TypeError, ValueError):
            notes.append(f"Rescale Slope/Intercept {slope!r}/{intercept!r} malformed; ignored")
            rescale_slope, rescale_intercept = 1.0, 0.0
        if rescale_slope == 0:
            notes.append("Rescale Slope 0 is invalid; using 1")
            rescale_slope = 1.0
        if rescale_slope == 1.0 and rescale_intercept == 0.0:
            values = stored
        elif rescale_slope.is_integer() and rescale_intercept.is_integer():
            values = _narrow_int(
                stored.astype(np.int64) * int(rescale_slope) + int(rescale_intercept)
            )
        else:
            values = (stored.astype(np.float64) * rescale_slope + rescale_intercept).astype(
                np.float32
            )
    values = np.ascontiguousarray(values)
    values.setflags(write=False)
    stored_kept: np.ndarray | None = None
    if values is not stored:
        stored_kept = np.ascontiguousarray(stored)
        stored_kept.setflags(write=False)

    # ---- VOI ------------------------------------------------------------------------------
    windows = _windows(ds, notes)
    voi_luts = []
    for i, item in enumerate(_get(ds, "VOILUTSequence", []) or []):
        lut = _lut_from_item(item, signed, "VOI LUT", i, notes)
        if lut is not None:
            voi_luts.append(lut)

    pls = _get(ds, "PresentationLUTShape")
    pls = str(pls).strip().upper() if pls is not None else None
    if pls not in (None, "IDENTITY", "INVERSE"):
        notes.append(f"Presentation LUT Shape {pls!r} unknown; ignored")
        pls = None

    units = str(_get(ds, "RescaleType", "") or "")
    if (
        not units
        and str(_get(ds, "Modality", "")) == "CT"
        and modality_lut is None
        and (slope is not None or intercept is not None)
    ):
        units = "HU"
    if units.upper() == "US":
        units = ""  # "unspecified"

    instance = _get(ds, "InstanceNumber")
    try:
        instance_number = int(instance) if instance is not None else None
    except (TypeError, ValueError):
        instance_number = None

    return ImageData(
        path=p,
        frames=values,
        photometric=photometric,
        presentation_lut_shape=pls,
        windows=windows,
        voi_luts=tuple(voi_luts),
        spacing=_spacing(ds, notes),
        modality=str(_get(ds, "Modality", "") or ""),
        units=units,
        bits_stored=bits_stored,
        is_signed=signed,
        transfer_syntax=ts_name or ("(no File Meta)" if not ts_uid else ts_uid),
        source_format="DICOM",
        tags=_tags(ds),
        study_uid=str(_get(ds, "StudyInstanceUID", "") or ""),
        series_uid=str(_get(ds, "SeriesInstanceUID", "") or ""),
        sop_uid=str(_get(ds, "SOPInstanceUID", "") or ""),
        instance_number=instance_number,
        stored=stored_kept,
        header=_header_without_pixels(ds, notes),
        rescale_slope=rescale_slope,
        rescale_intercept=rescale_intercept,
        overlays=overlays,
    )
