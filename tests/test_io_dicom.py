"""DICOM loading in the pydicom style: tiny generated datasets, pinned values, every refusal."""

from __future__ import annotations

import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    generate_uid,
)

from cxr_viewer.errors import ImageRefused
from cxr_viewer.imaging.presets import default_preset
from cxr_viewer.imaging.render import pixel_value_at, render_display
from cxr_viewer.imaging.window import VOI
from cxr_viewer.io.loader import load_image


def make_dataset(
    pixels: np.ndarray | None,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    **attrs,
) -> Dataset:
    """A minimal grayscale image dataset (Explicit VR Little Endian)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = "1.2.3.4.5"
    ds.PatientName = "TEST^PATIENT"
    ds.PatientID = "T1"
    ds.Modality = "OT"
    if pixels is not None:
        arr = np.asarray(pixels)
        frames = arr.shape[0] if arr.ndim == 3 else 1
        ds.Rows, ds.Columns = arr.shape[-2:]
        if frames > 1:
            ds.NumberOfFrames = frames
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated = arr.dtype.itemsize * 8
        ds.BitsStored = bits_stored or arr.dtype.itemsize * 8
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = 1 if arr.dtype.kind == "i" else 0
        ds.PixelData = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def write(tmp_path: Path, ds: Dataset, name: str = "im.dcm", **kw) -> Path:
    path = tmp_path / name
    dcmwrite(path, ds, enforce_file_format=kw.pop("enforce_file_format", True), **kw)
    return path


def lut_item(descriptor: list[int], data: list[int], explanation: str = "") -> Dataset:
    item = Dataset()
    item.add_new("LUTDescriptor", "US", descriptor)
    item.add_new("LUTData", "US", data)
    if explanation:
        item.LUTExplanation = explanation
    return item


# ---- Modality LUT stage --------------------------------------------------------------------


def test_integer_rescale_keeps_integer_values_and_stored(tmp_path):
    px = np.array([[0, 1], [2, 4095]], np.uint16)
    ds = make_dataset(
        px, bits_stored=12, RescaleSlope="2", RescaleIntercept="-1024", RescaleType="HU"
    )
    image = load_image(write(tmp_path, ds))
    assert image.frames.dtype.kind == "i"
    assert image.pixels.tolist() == [[-1024, -1022], [-1020, 7166]]
    assert image.stored is not None and image.stored[0].tolist() == px.tolist()
    assert pixel_value_at(image, 1, 1) == (4095.0, 7166.0, "HU")
    assert image.bits_stored == 12 and not image.is_signed


def test_fractional_rescale_gives_float32(tmp_path):
    px = np.array([[0, 1, 3]], np.uint16)
    ds = make_dataset(px, RescaleSlope="0.5", RescaleIntercept="1")
    image = load_image(write(tmp_path, ds))
    assert image.frames.dtype == np.float32
    assert image.pixels.tolist() == [[1.0, 1.5, 2.5]]
    assert (image.rescale_slope, image.rescale_intercept) == (0.5, 1.0)
    assert pixel_value_at(image, 0, 2)[:2] == (3.0, 2.5)


def test_modality_lut_sequence_wins_over_rescale(tmp_path):
    px = np.array([[0, 1, 2, 3, 5]], np.uint16)
    ds = make_dataset(px, RescaleSlope="3", RescaleIntercept="7")
    ds.ModalityLUTSequence = Sequence([lut_item([4, 0, 16], [100, 200, 300, 400])])
    ds.ModalityLUTSequence[0].ModalityLUTType = "US"
    image = load_image(write(tmp_path, ds))
    assert image.pixels.tolist() == [[100, 200, 300, 400, 400]]
    assert any("using the LUT" in n for n in image.notes)


def test_modality_lut_signed_first_mapped(tmp_path):
    px = np.array([[-2, -1, 0, 1]], np.int16)
    ds = make_dataset(px)
    ds.ModalityLUTSequence = Sequence([lut_item([4, 65534, 16], [10, 20, 30, 40])])
    image = load_image(write(tmp_path, ds))
    assert image.pixels.tolist() == [[10, 20, 30, 40]]


def test_empty_modality_lut_item_is_skipped_with_a_note(tmp_path):
    px = np.array([[0, 10]], np.uint16)
    ds = make_dataset(px, RescaleSlope="1", RescaleIntercept="-5")
    ds.ModalityLUTSequence = Sequence([Dataset()])
    image = load_image(write(tmp_path, ds))
    assert image.pixels.tolist() == [[-5, 5]]  # rescale used instead
    assert any("Modality LUT item 1 is empty" in n for n in image.notes)


# ---- VOI attributes ------------------------------------------------------------------------


def test_multi_valued_windows_with_explanations_and_function(tmp_path):
    ds = make_dataset(
        np.zeros((2, 2), np.uint16),
        WindowCenter=["40", "300"],
        WindowWidth=["400", "1500"],
        WindowCenterWidthExplanation=["SOFT", "BONE"],
        VOILUTFunction="SIGMOID",
    )
    image = load_image(write(tmp_path, ds))
    assert [(w.center, w.width, w.explanation, w.function) for w in image.windows] == [
        (40.0, 400.0, "SOFT", "SIGMOID"),
        (300.0, 1500.0, "BONE", "SIGMOID"),
    ]
    assert default_preset(image).resolve(image) == VOI.window(40, 400, "SIGMOID", label="SOFT")


def test_voi_lut_sequence_items_parsed_and_applied(tmp_path):
    px = np.array([[5, 10, 11, 12, 13, 100]], np.uint16)
    ds = make_dataset(px)
    ds.VOILUTSequence = Sequence([Dataset(), lut_item([4, 10, 8], [0, 64, 128, 255], "HARD")])
    image = load_image(write(tmp_path, ds))
    assert len(image.voi_luts) == 1  # the empty first item is skipped, as dcmtk does
    lut = image.voi_luts[0]
    assert (lut.first_mapped, lut.bits, lut.explanation) == (10, 8, "HARD")
    assert lut.data.tolist() == [0, 64, 128, 255]
    assert any("VOI LUT item 1 is empty" in n for n in image.notes)
    assert render_display(image, VOI.lut(0)).tolist() == [[0, 0, 64, 128, 255, 255]]


def test_monochrome1_is_displayed_inverted(tmp_path):
    px = np.arange(256, dtype=np.uint8).reshape(16, 16)
    ds = make_dataset(px, photometric="MONOCHROME1", WindowCenter="128", WindowWidth="256")
    image = load_image(write(tmp_path, ds))
    out = render_display(image, default_preset(image).resolve(image))
    np.testing.assert_array_equal(out, 255 - px)
    # The user's invert toggle undoes it.
    np.testing.assert_array_equal(render_display(image, VOI.window(128, 256), invert=True), px)


@pytest.mark.parametrize(
    ("photometric", "shape", "inverted"),
    [
        ("MONOCHROME2", "INVERSE", True),
        ("MONOCHROME1", "INVERSE", True),
        ("MONOCHROME2", "IDENTITY", False),
        ("MONOCHROME1", "IDENTITY", True),
    ],
)
def test_presentation_lut_shape(tmp_path, photometric, shape, inverted):
    px = np.array([[0, 100, 255]], np.uint8)
    ds = make_dataset(px, photometric=photometric, PresentationLUTShape=shape)
    image = load_image(write(tmp_path, ds))
    assert image.presentation_lut_shape == shape
    assert image.inverted_display is inverted
    out = render_display(image, VOI.window(128, 256))
    assert out.tolist() == ([[255, 155, 0]] if inverted else [[0, 100, 255]])


def test_spacing_prefers_pixel_spacing_and_says_which(tmp_path):
    ds = make_dataset(np.zeros((2, 2), np.uint8), ImagerPixelSpacing=["0.2", "0.3"])
    s = load_image(write(tmp_path, ds, "a.dcm")).spacing
    assert (s.row_mm, s.col_mm, s.source) == (0.2, 0.3, "ImagerPixelSpacing") and s.note
    ds.PixelSpacing = ["0.14", "0.15"]
    s = load_image(write(tmp_path, ds, "b.dcm")).spacing
    assert (s.row_mm, s.col_mm, s.source) == (0.14, 0.15, "PixelSpacing")
    del ds.PixelSpacing, ds.ImagerPixelSpacing
    assert load_image(write(tmp_path, ds, "c.dcm")).spacing is None


def test_tags_uids_and_header_without_pixels(tmp_path):
    ds = make_dataset(
        np.zeros((2, 2), np.uint8), ViewPosition="PA", InstanceNumber="7", StudyDate="20240102"
    )
    image = load_image(write(tmp_path, ds))
    assert image.tags["PatientName"] == "TEST^PATIENT" and image.tags["ViewPosition"] == "PA"
    assert (image.study_uid, image.series_uid, image.instance_number) == ("1.2.3.4", "1.2.3.4.5", 7)
    assert "PixelData" not in image.header and image.header.PatientID == "T1"
    assert image.transfer_syntax == "Explicit VR Little Endian"
    assert not image.frames.flags.writeable


def test_bad_header_values_become_notes_not_warnings(tmp_path):
    # pytest runs with filterwarnings=error: a leaking pydicom warning would fail this test.
    ds = make_dataset(np.zeros((2, 2), np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # writing it warns too; that is the test's own doing
        ds.add_new("StationName", "SH", "X" * 40)  # SH max 16
        path = write(tmp_path, ds)
    image = load_image(path)
    assert any("exceeds the maximum length" in n for n in image.notes)


def test_file_without_file_meta_is_read(tmp_path):
    ds = make_dataset(np.array([[1, 2], [3, 4]], np.uint16))
    del ds.file_meta
    path = tmp_path / "bare.dcm"
    ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=False)
    image = load_image(path)
    assert image.pixels.tolist() == [[1, 2], [3, 4]]
    assert any("Implicit VR Little Endian" in n for n in image.notes)


def test_multiframe_all_and_single(tmp_path):
    px = np.arange(3 * 2 * 4, dtype=np.uint16).reshape(3, 2, 4)
    path = write(tmp_path, make_dataset(px))
    image = load_image(path)
    assert image.num_frames == 3 and image.shape == (2, 4)
    np.testing.assert_array_equal(image.frames, px)
    one = load_image(path, frame=2)
    assert one.num_frames == 1 and one.pixels.tolist() == px[2].tolist()
    with pytest.raises(ImageRefused, match="frame 4 requested"):
        load_image(path, frame=3)


# ---- refusals ------------------------------------------------------------------------------


def test_refuses_no_pixel_data(tmp_path):
    ds = make_dataset(None)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    with pytest.raises(ImageRefused, match=r"no pixel data \(Basic Text SR Storage\)") as e:
        load_image(write(tmp_path, ds))
    assert e.value.path.endswith("im.dcm")


def test_refuses_colour(tmp_path):
    ds = make_dataset(np.zeros((2, 2), np.uint8), photometric="RGB")
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.PixelData = bytes(12)
    with pytest.raises(ImageRefused, match=r"colour image \(RGB\) is not supported"):
        load_image(write(tmp_path, ds))


def test_refuses_absurd_dimensions_before_allocating(tmp_path):
    ds = make_dataset(np.zeros((2, 2), np.uint16))
    ds.Rows = ds.Columns = 46341
    ds.PixelData = bytes(9000)
    path = write(tmp_path, ds)
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(ImageRefused, match="absurd dimensions 46341x46341"):
        load_image(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 2**20 and time.perf_counter() - t0 < 5


def test_refuses_short_pixel_data(tmp_path):
    ds = make_dataset(np.zeros((8, 8), np.uint16))
    ds.PixelData = bytes(100)
    with pytest.raises(ImageRefused, match=r"shorter than the header says \(100 of 128 bytes\)"):
        load_image(write(tmp_path, ds))


def test_refuses_corrupt_codestream_naming_the_transfer_syntax(tmp_path):
    ds = make_dataset(np.zeros((8, 8), np.uint16))
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(60)])
    ds["PixelData"].VR = "OB"
    with pytest.raises(
        ImageRefused,
        match=r"cannot decode .*JPEG 2000 Image Compression "
        r"\(Lossless Only\) \(1\.2\.840\.10008\.1\.2\.4\.90\)",
    ):
        load_image(write(tmp_path, ds))


def test_refuses_empty_dataset(tmp_path):
    ds = make_dataset(None)
    for tag in list(ds.keys()):
        del ds[tag]
    with pytest.raises(ImageRefused, match="empty DICOM dataset"):
        load_image(write(tmp_path, ds, enforce_file_format=False))


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (b"", "empty file"),
        (b"hello, this is not an image\n" * 20, "not a"),
        (b"\x89PNG\r\n\x1a\n" + bytes(40), "not a readable image"),
    ],
)
def test_refuses_non_images(tmp_path, content, cause):
    path = tmp_path / "file.bin"
    path.write_bytes(content)
    with pytest.raises(ImageRefused, match=cause):
        load_image(path)


def test_refuses_missing_file(tmp_path):
    with pytest.raises(ImageRefused, match="file not found"):
        load_image(tmp_path / "nope.dcm")


def test_implicit_vr_file_meta_roundtrip(tmp_path):
    ds = make_dataset(np.array([[7]], np.uint8))
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    assert load_image(write(tmp_path, ds)).pixels.tolist() == [[7]]
