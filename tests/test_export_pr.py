"""Grayscale Softcopy Presentation State: window, inversion, rotation/flip, measurements."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pydicom
import pytest

from cxr_viewer.export.annotated import ExportError, apply_orientation
from cxr_viewer.export.pr import (
    ViewState,
    build_presentation_state,
    dicom_spatial_transform,
    write_presentation_state,
)
from cxr_viewer.io.loader import load_image
from cxr_viewer.io.sample import generate_sample_study
from cxr_viewer.io.stored_results import viewer_transform
from tests.dicom_results_kit import CORPUS_CHESTS, dciodvfy_errors
from tests.test_export_annotated import make_dicom

GSPS = "1.2.840.10008.5.1.4.1.1.11.1"
LINES = ((250.0, 20.0, 250.0, 200.0, 45.0), (10.0, 10.0, 40.0, 50.0, None))


def dicom_display(arr: np.ndarray, degrees: int, flip: bool) -> np.ndarray:
    """PS3.3 C.10.6: rotate clockwise first, then flip horizontally."""
    out = np.rot90(arr, k=-(degrees // 90))
    return out[:, ::-1] if flip else out


@pytest.mark.parametrize(
    ("k", "flip_h", "flip_v"), list(itertools.product(range(-1, 4), (False, True), (False, True)))
)
def test_spatial_transform_shows_what_the_viewer_showed(k, flip_h, flip_v):
    arr = np.arange(12).reshape(3, 4)
    viewer = apply_orientation(arr, flip_h=flip_h, flip_v=flip_v, rotation_k=k)
    degrees, flip = dicom_spatial_transform(k, flip_h, flip_v)
    assert degrees in (0, 90, 180, 270)
    np.testing.assert_array_equal(dicom_display(arr, degrees, flip), viewer)
    # and back: the reader's viewer transform shows the same
    k2, h2, v2 = viewer_transform(degrees, flip)
    np.testing.assert_array_equal(
        apply_orientation(arr, flip_h=h2, flip_v=v2, rotation_k=k2), viewer
    )


@pytest.mark.parametrize(
    ("k", "flip_h", "flip_v"),
    [(0, False, False), (1, True, False), (3, False, True), (2, True, True)],
)
def test_gsps_round_trip_and_dciodvfy(tmp_path, k, flip_h, flip_v):
    image = load_image(make_dicom(tmp_path / "s.dcm"))
    view = ViewState(1800.0, 2600.0, invert=True, rotation_k=k, flip_h=flip_h, flip_v=flip_v,
                     measurements=LINES, explanation="Header window 1")  # fmt: skip
    path = write_presentation_state(image, view, tmp_path / "pr.dcm")
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == GSPS
    ref = ds.ReferencedSeriesSequence[0]
    assert ref.SeriesInstanceUID == image.series_uid
    assert ref.ReferencedImageSequence[0].ReferencedSOPInstanceUID == image.sop_uid
    voi = ds.SoftcopyVOILUTSequence[0]
    assert float(voi.WindowCenter) == 1800.0 and float(voi.WindowWidth) == 2600.0
    assert voi.WindowCenterWidthExplanation == "Header window 1"
    assert ds.PresentationLUTShape == "INVERSE"  # MONOCHROME2 source shown inverted
    assert (int(ds.ImageRotation), ds.ImageHorizontalFlip == "Y") == dicom_spatial_transform(
        k, flip_h, flip_v
    )
    annotation = ds.GraphicAnnotationSequence[0]
    assert annotation.GraphicLayer == "MEASUREMENTS"
    polylines = [list(g.GraphicData) for g in annotation.GraphicObjectSequence]
    assert polylines == [[20.0, 250.0, 200.0, 250.0], [10.0, 10.0, 50.0, 40.0]]  # (col, row)
    assert all(g.GraphicType == "POLYLINE" for g in annotation.GraphicObjectSequence)
    texts = [t.UnformattedTextValue for t in annotation.TextObjectSequence]
    assert texts == ["45.0 mm", "50.0 px"]


def test_monochrome1_source_is_inverse_unless_the_user_inverted(corpus_dir, tmp_path):
    image = load_image(corpus_dir / "corpus" / CORPUS_CHESTS[0])  # CR MONOCHROME1
    assert image.inverted_display
    plain = build_presentation_state(image, ViewState(550.0, 1024.0))
    assert plain.PresentationLUTShape == "INVERSE"
    inverted = build_presentation_state(image, ViewState(550.0, 1024.0, invert=True))
    assert inverted.PresentationLUTShape == "IDENTITY"


def test_sample_and_corpus_gsps_pass_dciodvfy(corpus_dir, tmp_path):
    sources = generate_sample_study(tmp_path / "study") + [
        corpus_dir / "corpus" / n for n in CORPUS_CHESTS
    ]
    for n, src in enumerate(sources):
        image = load_image(src)
        rows, cols = image.shape
        view = ViewState(1000.0, 2000.0, rotation_k=n, flip_h=n % 2 == 1,
                         measurements=((rows / 4, cols / 4, rows / 2, cols / 2, 12.5),))  # fmt: skip
        out = write_presentation_state(image, view, tmp_path / f"pr{n}.dcm")
        assert dciodvfy_errors(out) == [], src.name


def test_bad_view_is_refused(tmp_path):
    image = load_image(make_dicom(tmp_path / "s.dcm"))
    with pytest.raises(ExportError, match="not a finite number"):
        build_presentation_state(image, ViewState(float("nan"), 100.0))
    with pytest.raises(ExportError, match="unknown VOI LUT function"):
        build_presentation_state(image, ViewState(100.0, 100.0, voi_function="CUBIC"))


def test_the_viewers_export_request_becomes_the_view(tmp_path):
    from cxr_viewer.export.annotated import ExportRequest
    from cxr_viewer.export.dicom_results import write_dicom_results_for_request
    from cxr_viewer.export.pr import view_state_from_request
    from cxr_viewer.imaging.window import VOI

    image = load_image(make_dicom(tmp_path / "s.dcm"))
    request = ExportRequest(
        image=image, voi=VOI.window(1800.0, 2600.0, label="test"), invert=True, rotation_k=3,
        flip_h=True, measurements=LINES, window_label="Header window 1",
    )  # fmt: skip
    view = view_state_from_request(request)
    assert (view.window_center, view.window_width, view.invert) == (1800.0, 2600.0, True)
    assert (view.rotation_k, view.flip_h, view.flip_v) == (3, True, False)
    assert view.explanation == "Header window 1" and len(view.measurements) == 2
    # a VOI LUT display: the GSPS keeps the image's own VOI (copied by highdicom)
    lut_view = view_state_from_request(dataclasses.replace(request, voi=VOI(lut_index=0)))
    assert lut_view.window_center is None
    pr = build_presentation_state(image, lut_view)
    assert float(pr.SoftcopyVOILUTSequence[0].WindowCenter) == 2048.0  # the header's window
    # no analysis: the export writes the GSPS only
    written = write_dicom_results_for_request(request, tmp_path / "out")
    assert written.sr is None and written.pm is None and written.pr is not None
    assert dciodvfy_errors(written.pr) == []
