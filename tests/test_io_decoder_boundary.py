"""Every decoder call is a refusal boundary (cxr_viewer/io/decode.py).

A decoder that raises anything but KeyboardInterrupt/SystemExit, including a ``BaseException``
subclass such as pylibjpeg-rle's ``pyo3_runtime.PanicException``, gives an ``ImageRefused`` that
names the file, the transfer syntax and the decoder: in the library, in ``cxr-viewer info`` and
``render`` (exit 2, one ``error:`` line) and in the GUI's loading worker (reported, app lives).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

from cxr_viewer.errors import ImageRefused
from cxr_viewer.io.loader import load_image
from tests.panicking_decoder import LABEL, MESSAGE, panicking_rle_decoder

REPO = Path(__file__).resolve().parents[1]

#: Byte offset -> value of the 8 flipped bytes that make pylibjpeg-rle panic on the corpus's
#: MR_small_RLE ("index out of bounds: the len is 8192 but the index is 8192"); found by the
#: seeded bit-flip search that tests/test_fuzz.py runs.
RLE_PANIC_FLIPS = {
    3945: 0o35, 5466: 0o335, 5551: 0o50, 5775: 0o70,
    6019: 0o67, 6105: 0o33, 6595: 0o353, 7366: 0o330,
}


def make_rle(path: Path) -> Path:
    """A small 16-bit MONOCHROME2 CR, RLE Lossless (pydicom's own encoder)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.PatientID = "X"
    ds.Rows, ds.Columns = 32, 48
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    arr = (np.arange(32 * 48, dtype=np.uint16).reshape(32, 48) * 2) % 4096
    ds.PixelData = arr.tobytes()
    ds.compress(RLELossless, encoding_plugin="pydicom")
    ds.save_as(path, enforce_file_format=True)
    return path


def _check_refusal_text(text: str, path: Path) -> None:
    assert str(path) in text
    assert "RLE Lossless" in text and "1.2.840.10008.1.2.5" in text  # the transfer syntax
    assert LABEL in text and "DecoderPanic" in text and MESSAGE in text  # the decoder


def test_sanity_the_rle_file_decodes_without_the_panicking_plugin(tmp_path):
    image = load_image(make_rle(tmp_path / "rle.dcm"))
    assert image.shape == (32, 48) and int(image.pixels[1, 0]) == 96


def test_panic_from_a_decoder_plugin_becomes_image_refused(tmp_path):
    path = make_rle(tmp_path / "rle.dcm")
    with panicking_rle_decoder():
        with pytest.raises(ImageRefused) as info:
            load_image(path)
        with pytest.raises(ImageRefused):  # one frame of a multi-frame read too
            load_image(path, frame=0)
    _check_refusal_text(str(info.value), path)
    assert info.value.path == str(path)
    # The plugin is gone again: the file decodes.
    assert load_image(path).shape == (32, 48)


def _cli_with_panicking_decoder(*args: str) -> subprocess.CompletedProcess:
    code = (
        "import sys; import tests.panicking_decoder as p; p.install(); "
        "from cxr_viewer.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("command", ["info", "render"])
def test_cli_panicking_decoder_exit_2_one_error_line(tmp_path, command):
    path = make_rle(tmp_path / "rle.dcm")
    out = tmp_path / "out.png"
    args = [command, str(path)] + ([str(out)] if command == "render" else [])
    r = _cli_with_panicking_decoder(*args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    _check_refusal_text(r.stderr, path)
    assert "Traceback" not in r.stderr and not out.exists()


def _real_panicking_file(corpus_dir: Path, tmp_path: Path) -> Path:
    data = bytearray((corpus_dir / "corpus" / "pydicom__MR_small_RLE.dcm").read_bytes())
    for offset, value in RLE_PANIC_FLIPS.items():
        data[offset] = value
    path = tmp_path / "MR_small_RLE_bitflipped.dcm"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.corpus
@pytest.mark.parametrize("command", ["info", "render"])
def test_cli_real_rust_panic_on_a_bit_flipped_rle_file(corpus_dir, tmp_path, command):
    """The real thing: pylibjpeg-rle panics; the Rust panic text stays off the terminal."""
    path = _real_panicking_file(corpus_dir, tmp_path)
    out = tmp_path / "out.png"
    args = [command, str(path)] + ([str(out)] if command == "render" else [])
    r = subprocess.run([sys.executable, "-m", "cxr_viewer", *args], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert str(path) in r.stderr and "1.2.840.10008.1.2.5" in r.stderr
    assert "pylibjpeg" in r.stderr and "PanicException" in r.stderr
    assert "panicked at" not in r.stderr and not out.exists()


@pytest.mark.corpus
def test_library_real_rust_panic(corpus_dir, tmp_path):
    path = _real_panicking_file(corpus_dir, tmp_path)
    with pytest.raises(ImageRefused, match="PanicException"):
        load_image(path)


def test_refusal_messages_are_one_printable_line(tmp_path):
    """Found by the fuzzer: a garbage SOP Class UID quoted in the cause broke the CLI's one line."""
    exc = ImageRefused(str(tmp_path / "a.dcm"), "no pixel data (1.2\n3\x00\x1b[31m red\r\n)")
    assert "\n" not in str(exc) and "\r" not in str(exc) and "\x00" not in str(exc)
    assert exc.cause == "no pixel data (1.2 3\\x00\\x1b[31m red )"
    assert len(ImageRefused("f", "x" * 5000).cause) <= 603
