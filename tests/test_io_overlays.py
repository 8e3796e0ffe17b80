"""Overlay planes (60xx): reading (separate and embedded) and drawing, on tiny generated files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cxr_viewer.imaging.render import OVERLAY_VALUE, DisplayRenderer, render_display
from cxr_viewer.imaging.window import VOI
from cxr_viewer.io.loader import load_image

VOI_FULL = VOI.window(2048, 4096)


def make(path: Path, *, frames: int = 1, pixels: np.ndarray | None = None,
         photometric: str = "MONOCHROME2", **overlay: object) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.Rows, ds.Columns = 6, 8
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    arr = pixels if pixels is not None else np.full((frames, 6, 8), 1000, np.uint16)
    ds.PixelData = arr.astype("<u2").tobytes()
    elements = {  # keyword -> (element in group 6000, VR)
        "OverlayRows": (0x0010, "US"), "OverlayColumns": (0x0011, "US"),
        "NumberOfFramesInOverlay": (0x0015, "IS"), "OverlayType": (0x0040, "CS"),
        "OverlayOrigin": (0x0050, "SS"), "ImageFrameOrigin": (0x0051, "US"),
        "OverlayBitsAllocated": (0x0100, "US"), "OverlayBitPosition": (0x0102, "US"),
        "OverlayData": (0x3000, "OW"),
    }
    for keyword, value in overlay.items():
        element, vr = elements[keyword]
        ds.add_new((0x6000 << 16) | element, vr, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def packed(bits: np.ndarray) -> bytes:
    data = np.packbits(bits.astype(np.uint8).ravel(), bitorder="little").tobytes()
    return data + b"\0" * (len(data) % 2)


def plane(shape: tuple[int, ...], cells: list[tuple[int, ...]]) -> np.ndarray:
    bits = np.zeros(shape, bool)
    for c in cells:
        bits[c] = True
    return bits


def test_separate_plane_with_negative_origin_is_clipped(tmp_path):
    bits = plane((3, 3), [(0, 0), (1, 1), (2, 2)])
    path = make(tmp_path / "o.dcm", OverlayRows=3, OverlayColumns=3, OverlayType="G",
                OverlayOrigin=[0, 0], OverlayBitsAllocated=1, OverlayBitPosition=0,
                OverlayData=packed(bits))
    image = load_image(path)
    assert len(image.overlays) == 1 and image.overlays[0].origin == (-1, -1)
    off = render_display(image, VOI_FULL)
    on = render_display(image, VOI_FULL, overlays=True)
    assert (off != OVERLAY_VALUE).all()
    # Plane pixel (1, 1) lands on image (0, 0); (2, 2) on (1, 1); (0, 0) is outside.
    assert np.argwhere(on == OVERLAY_VALUE).tolist() == [[0, 0], [1, 1]]
    r = DisplayRenderer(image)
    np.testing.assert_array_equal(r.render(VOI_FULL, overlays=True), on)
    np.testing.assert_array_equal(r.render(VOI_FULL), off)
    # Region + step (the viewer's screen-resolution path) subsample the mask the same way.
    np.testing.assert_array_equal(
        r.render(VOI_FULL, overlays=True, region=(0, 6, 0, 8), step=2), on[::2, ::2]
    )


def test_overlay_is_white_on_inverted_monochrome1(tmp_path):
    bits = plane((6, 8), [(5, 7)])
    path = make(tmp_path / "m1.dcm", photometric="MONOCHROME1", OverlayRows=6,
                OverlayColumns=8, OverlayOrigin=[1, 1], OverlayBitsAllocated=1,
                OverlayBitPosition=0, OverlayType="G", OverlayData=packed(bits))
    on = render_display(load_image(path), VOI_FULL, overlays=True)
    assert on[5, 7] == 255 and on[0, 0] != 255


def test_multiframe_overlay_follows_its_frames(tmp_path):
    bits = plane((2, 6, 8), [(0, 1, 1), (1, 2, 2)])
    path = make(tmp_path / "mf.dcm", frames=3, OverlayRows=6, OverlayColumns=8,
                OverlayOrigin=[1, 1], OverlayBitsAllocated=1, OverlayBitPosition=0,
                OverlayType="G", NumberOfFramesInOverlay=2, ImageFrameOrigin=2,
                OverlayData=packed(bits))
    image = load_image(path)
    hits = [np.argwhere(render_display(image, VOI_FULL, frame=f, overlays=True) == 255).tolist()
            for f in range(3)]
    assert hits == [[], [[1, 1]], [[2, 2]]]
    one = load_image(path, frame=2)  # a single decoded frame keeps its own plane frame
    assert np.argwhere(render_display(one, VOI_FULL, overlays=True) == 255).tolist() == [[2, 2]]


def test_embedded_plane_in_a_high_bit(tmp_path):
    px = np.full((1, 6, 8), 1000, np.uint16)
    px[0, 3, 4] |= 1 << 15  # overlay bit 15, above High Bit 11
    path = make(tmp_path / "emb.dcm", pixels=px, OverlayRows=6, OverlayColumns=8,
                OverlayOrigin=[1, 1], OverlayBitsAllocated=16, OverlayBitPosition=15,
                OverlayType="G")
    image = load_image(path)
    assert image.overlays and image.overlays[0].embedded
    assert int(image.pixels.max()) == 1000  # the overlay bit is not part of the pixel value
    on = render_display(image, VOI_FULL, overlays=True)
    assert np.argwhere(on == 255).tolist() == [[3, 4]]


def test_unreadable_planes_are_skipped_with_a_note(tmp_path):
    # Embedded in a bit inside the stored value (dcmtk refuses it too) ...
    inside = load_image(make(tmp_path / "in.dcm", OverlayRows=6, OverlayColumns=8,
                             OverlayOrigin=[1, 1], OverlayBitsAllocated=1,
                             OverlayBitPosition=0, OverlayType="G"))
    assert inside.overlays == ()
    assert any("inside the stored pixel value" in n for n in inside.notes)
    # ... and Overlay Data too short for the plane.
    short = load_image(make(tmp_path / "short.dcm", OverlayRows=6, OverlayColumns=8,
                            OverlayOrigin=[1, 1], OverlayBitsAllocated=1,
                            OverlayBitPosition=0, OverlayType="G", OverlayData=b"\xff\x00"))
    assert short.overlays == () and any("the plane needs 48" in n for n in short.notes)
