"""Explicit VR Big Endian files with undefined-length UN sequences (PS3.5 6.2.2, CP-246).

PS3.5 section 6.2.2: a Data Element of VR UN is insensitive to byte ordering, and "in the case
of Undefined Length Sequences, the Value shall remain in Implicit VR form", i.e. Implicit VR
Little Endian whatever the transfer syntax, its Item tags, Item lengths and closing Sequence
Delimitation Item included. Such elements appear when an Implicit VR Little Endian data set is
converted to an explicit transfer syntax by software that does not know a sequence's VR.

pydicom 3.0.2 turns such an element into a sequence, but reads its items with the data set's
own encoding. In Explicit VR Little Endian that happens to work (pydicom notices the implicit
VR inside the items); in Explicit VR Big Endian the first Item tag, ``fe ff 00 e0`` read big
endian, is not an Item tag, its length is garbage, and the read fails ("No tag to read at file
position ..."). dcmtk reads the same value as a sequence in Implicit VR Little Endian (it warns
"Found element ... with VR UN and undefined length, reading a sequence with transfer syntax
LittleEndianImplicit (CP-246)"; ``DcmSequenceOfItems::read`` switches to
``EXS_LittleEndianImplicit`` for a sequence created from such a UN element).

:func:`reencode_un_sequences` does what dcmtk does, and nothing else: only after pydicom's read
failed, only on Explicit VR Big Endian files, and only for a top-level UN element of undefined
length found exactly where pydicom's parse of the data set stopped. Its value is read with
pydicom as an Implicit VR Little Endian sequence up to its (little endian) Sequence Delimitation
Item, and the element is written back as an SQ in the file's own encoding (big endian, explicit
VR), as dcmtk also writes it. Every other byte of the file is unchanged, so the pixel data and
all other attributes are read by pydicom's ordinary strict parser afterwards. Anything else
(another kind of damage, a UN element nested inside a sequence, an Item that is not well formed)
returns ``None``, and the caller refuses the file with pydicom's original error.
"""

from __future__ import annotations

import struct
from typing import Any

#: Do not try on files larger than this (the whole file is held in memory for the rewrite).
MAX_FILE_BYTES = 1024 * 1024 * 1024

#: At most this many UN elements are re-encoded in one file (each one is a fresh parse).
MAX_ELEMENTS = 64

_UNDEFINED = 0xFFFFFFFF
_ITEM_LE = b"\xfe\xff\x00\xe0"
_SEQ_END_LE = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


def reencode_un_sequences(data: bytes) -> tuple[bytes, list[str]] | None:
    """Rewrite undefined-length UN sequences of an Explicit VR Big Endian Part 10 file.

    Parameters
    ----------
    data
        The whole file (preamble, 'DICM', File Meta, data set).

    Returns
    -------
    tuple or None
        ``(new_bytes, descriptions)`` with one description per re-encoded element (its tag and
        name), or ``None`` when the file is not such a case (see the module docstring).
    """
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import _read_file_meta_info, read_preamble
    from pydicom.uid import ExplicitVRBigEndian

    if len(data) > MAX_FILE_BYTES:
        return None
    fp = DicomBytesIO(data)
    try:
        read_preamble(fp, False)
        meta = _read_file_meta_info(fp)
    except Exception:  # noqa: BLE001 - no usable File Meta: not this case
        return None
    if meta.get("TransferSyntaxUID") != ExplicitVRBigEndian:
        return None
    pieces: list[bytes] = []
    done: list[str] = []
    copied, pos = 0, fp.tell()
    encoding: list[str] = ["iso8859"]
    while True:
        stopped, encoding = _parse_until_failure(data, pos, encoding)
        if stopped is None:  # the rest of the data set parses
            break
        if len(done) == MAX_ELEMENTS:
            return None
        fixed = _reencode_at(data, stopped, encoding)
        if fixed is None:
            return None
        element, end, description = fixed
        pieces += [data[copied:stopped], element]
        done.append(description)
        copied = pos = end
    if not done:
        return None  # pydicom's failure was elsewhere (e.g. only in the File Meta)
    return b"".join(pieces) + data[copied:], done


def _parse_until_failure(
    data: bytes, pos: int, encoding: list[str]
) -> tuple[int | None, list[str]]:
    """Walk the top-level elements from ``pos`` with pydicom's own (big endian) parser.

    Returns the offset of the element where the parse failed (``None`` when it reached the end)
    and the Specific Character Set in force there.
    """
    from pydicom.charset import convert_encodings
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import data_element_generator
    from pydicom.values import convert_string

    fp = DicomBytesIO(data)
    fp.seek(pos)
    start = pos
    try:
        for elem in data_element_generator(fp, False, False, defer_size=4096, encoding=encoding):
            if elem.tag == 0x00080005 and isinstance(elem.value, bytes):
                encoding = convert_encodings(convert_string(elem.value, False))
            start = fp.tell()
    except Exception:  # noqa: BLE001 - the element starting at ``start`` is the one
        return start, encoding
    return None, encoding


def _reencode_at(data: bytes, pos: int, encoding: list[str]) -> tuple[bytes, int, str] | None:
    """The element at ``pos`` re-encoded as an explicit big endian SQ, its end, a description."""
    from pydicom.datadict import keyword_for_tag
    from pydicom.dataelem import DataElement
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_sequence
    from pydicom.filewriter import write_data_element
    from pydicom.tag import Tag

    if pos + 12 > len(data):
        return None
    group, elem, vr, reserved, length = struct.unpack(">HH2sHL", data[pos : pos + 12])
    if vr != b"UN" or length != _UNDEFINED or group == 0xFFFE:
        return None
    src = DicomBytesIO(data)
    src.seek(pos + 12)
    try:
        # Implicit VR Little Endian up to the (little endian) Sequence Delimitation Item.
        seq = read_sequence(src, True, True, _UNDEFINED, encoding)
        end = src.tell()
        # pydicom reads an item even when its tag is not an Item tag (it only logs that):
        # demand the structure PS3.5 7.5 prescribes, every item opened by (FFFE,E000) and the
        # value closed by (FFFE,E0DD) with length 0, all little endian.
        if end > len(data) or not seq or data[end - 8 : end] != _SEQ_END_LE:
            return None
        if any(data[item.seq_item_tell : item.seq_item_tell + 4] != _ITEM_LE for item in seq):
            return None
        tag = Tag(group, elem)
        out = DicomBytesIO()
        out.is_little_endian = False
        out.is_implicit_VR = False
        write_data_element(out, DataElement(tag, "SQ", seq), encoding)
        element = out.getvalue()
    except Exception:  # noqa: BLE001 - not a well-formed implicit VR sequence: not this case
        return None
    name = keyword_for_tag(tag) or "private element"
    return element, end, f"({group:04X},{elem:04X}) {name}"


def note(descriptions: list[str], error: Any) -> str:
    """The note shown with an image read this way."""
    what = ", ".join(descriptions)
    return (
        f"{what}: VR UN with undefined length, read as a sequence in Implicit VR Little Endian "
        f"(PS3.5 6.2.2, CP-246) as dcmtk does; the strict read had failed "
        f"({type(error).__name__}: {' '.join(str(error).split())[:120]})"
    )
