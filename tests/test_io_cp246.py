"""The CP-246 re-read (cxr_viewer/io/cp246.py): taken only where it applies, refused elsewhere.

The source is the corpus's GH177 file: Explicit VR Big Endian whose (0008,2112) Source Image
Sequence is a UN element of undefined length holding Implicit VR Little Endian items (PS3.5
6.2.2). Its match against dcmtk's render is in tests/test_corpus.py; here are the boundaries:
damaged copies of it stay refused with pydicom's original error, and no note is made for files
pydicom reads itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cxr_viewer.errors import ImageRefused
from cxr_viewer.io.cp246 import reencode_un_sequences
from cxr_viewer.io.dicom import read_dataset
from cxr_viewer.io.loader import load_image
from cxr_viewer.io.types import ImageData

pytestmark = pytest.mark.corpus

GH177 = "fo-dicom__GH177_D_CLUNIE_CT1_IVRLE_BigEndian_undefined_length.dcm"
ITEM_LE = b"\xfe\xff\x00\xe0"
SEQ_END_LE = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


@pytest.fixture(scope="module")
def gh177(corpus_dir: Path) -> bytes:
    return (corpus_dir / "corpus" / GH177).read_bytes()


def test_the_un_element_is_rewritten_as_a_big_endian_sq_and_nothing_else(gh177):
    fixed = reencode_un_sequences(gh177)
    assert fixed is not None
    data, described = fixed
    assert described == ["(0008,2112) SourceImageSequence"]
    at = gh177.index(b"\x00\x08\x21\x12UN\x00\x00\xff\xff\xff\xff")
    end = gh177.index(SEQ_END_LE) + len(SEQ_END_LE)
    assert data[:at] == gh177[:at]  # preamble, File Meta and 30 elements unchanged
    tail = len(gh177) - end
    assert data[-tail:] == gh177[end:]  # private groups, pixel data, padding unchanged
    # (0008,2112) SQ with an explicit length, one big endian item of the original 0x58 bytes.
    new = data[at : len(data) - tail]
    assert new[:8] == b"\x00\x08\x21\x12SQ\x00\x00"
    assert int.from_bytes(new[8:12], "big") == len(new) - 12
    assert new[12:16] == b"\xff\xfe\xe0\x00" and int.from_bytes(new[16:20], "big") == 0x58


def test_read_dataset_notes_the_tolerant_read(corpus_dir):
    ds, notes = read_dataset(corpus_dir / "corpus" / GH177, stop_before_pixels=True)
    assert "PixelData" not in ds and ds.Rows == 512
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID.endswith("20031208063649.855")
    assert len([n for n in notes if "CP-246" in n]) == 1


@pytest.mark.parametrize(
    "damage",
    [
        "sequence delimiter removed",
        "sequence delimiter big endian",
        "item tag wrong",
        "cut inside the sequence",
        "transfer syntax says little endian",
    ],
)
def test_damaged_copies_stay_refused(gh177, tmp_path, damage):
    """Only the structure PS3.5 prescribes is accepted; pydicom alone reads "item tag wrong"."""
    data = {
        "sequence delimiter removed": gh177.replace(SEQ_END_LE, b"", 1),
        "sequence delimiter big endian": gh177.replace(SEQ_END_LE, b"\xff\xfe\xe0\xdd" + 4 * b"\0"),
        "item tag wrong": gh177.replace(ITEM_LE, b"\xfe\xff\x00\xe1", 1),
        "cut inside the sequence": gh177[: gh177.index(SEQ_END_LE) - 20],
        "transfer syntax says little endian": gh177.replace(
            b"1.2.840.10008.1.2.2\x00", b"1.2.840.10008.1.2.1\x00", 1
        ),
    }[damage]
    assert data != gh177
    assert reencode_un_sequences(data) is None
    path = tmp_path / "damaged.dcm"
    path.write_bytes(data)
    with pytest.raises(ImageRefused) as info:
        load_image(path)
    assert "CP-246" not in info.value.cause


def test_files_pydicom_reads_get_no_cp246_note(corpus_dir):
    """The re-read runs only after a strict failure: a big endian file pydicom reads is untouched."""
    image = load_image(corpus_dir / "corpus" / "pydicom__MR_small_bigendian.dcm")
    assert isinstance(image, ImageData)
    assert not any("CP-246" in n for n in image.notes)
    # And the rewrite itself finds nothing to do there.
    assert reencode_un_sequences((corpus_dir / "corpus" / "pydicom__MR_small_bigendian.dcm")
                                 .read_bytes()) is None
