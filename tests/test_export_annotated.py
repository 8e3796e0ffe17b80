"""Annotated export (PNG/JPEG): size, pixels, heat map, panel, de-identification.

Uses small DICOM files generated here (fake patient "DOE^JANE") and hand-made Prediction/CamResult
objects; the helpers are shared with the other test_export_* modules.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cxr_viewer import DISCLAIMER
from cxr_viewer.export.annotated import (
    ExportError,
    ExportRequest,
    apply_orientation,
    compose_annotated,
    compose_annotated_layout,
    export_metadata,
    orient_point,
    save_image,
    summary_lines,
)
from cxr_viewer.imaging.render import render_display
from cxr_viewer.imaging.window import VOI
from cxr_viewer.inference.findings import VINDR_FINDINGS
from cxr_viewer.inference.results import CamResult, FindingScore, Prediction
from cxr_viewer.io.loader import load_image

PATIENT_NAME = "DOE^JANE"
PATIENT_ID = "PID-48213"
BIRTH_DATE = "19610314"
ACCESSION = "ACC-77120"
SECRETS = ("DOE", "JANE", PATIENT_ID, BIRTH_DATE, ACCESSION)


def make_dicom(
    path: Path, rows: int = 300, cols: int = 240, *, photometric: str = "MONOCHROME2"
) -> Path:
    """A small 12-bit CR chest-like DICOM: horizontal ramp plus a bright disc."""
    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = BIRTH_DATE
    ds.PatientSex = "F"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101010"
    ds.AccessionNumber = ACCESSION
    ds.StudyID = "1"
    ds.ReferringPhysicianName = ""
    ds.Modality = "CR"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ["L", "F"]
    ds.BodyPartExamined = "CHEST"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    yy, xx = np.mgrid[0:rows, 0:cols]
    arr = (xx * 4095 // max(cols - 1, 1)).astype(np.uint16)
    arr[(yy - rows / 2) ** 2 + (xx - cols / 2) ** 2 < (min(rows, cols) / 5) ** 2] = 3500
    ds.PixelData = arr.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def make_prediction(image_id: str, *, name: str = "tiny-cnn", top: str = "Cardiomegaly"):
    """Hand-made prediction: ``top`` at 0.91 (flagged), others spread, two not scored."""
    scores = []
    for i, finding in enumerate(VINDR_FINDINGS):
        if finding in ("ILD", "Pulmonary fibrosis"):
            scores.append(FindingScore(finding, None, None, False))
            continue
        p = 0.91 if finding == top else round(0.05 + 0.05 * i, 2)
        scores.append(FindingScore(finding, p, 0.5, p >= 0.5))
    return Prediction(
        image_id=image_id,
        model_name=name,
        model_version="0.3.1",
        weights_sha256="0123456789abcdef" * 4,
        scores=tuple(scores),
        no_finding=0.12,
    )


def square_cam(image, finding: str = "Cardiomegaly", box=(50, 150, 60, 160)) -> CamResult:
    """CAM = 1 inside ``box`` (r0, r1, c0, c1), 0 elsewhere, at the image size."""
    cam = np.zeros(image.shape, np.float32)
    r0, r1, c0, c1 = box
    cam[r0:r1, c0:c1] = 1.0
    return CamResult(image_id=image.image_id, method="gradcam", maps={finding: cam})


@pytest.fixture
def dicom_image(tmp_path):
    return load_image(make_dicom(tmp_path / "DOE_JANE_chest.dcm"))


WINDOW = VOI.window(1800.0, 2600.0, label="test window")
FIXED_TIME = dt.datetime(2025, 3, 4, 5, 6, 7, tzinfo=dt.UTC)


def test_size_and_image_region_match_render_display(dicom_image):
    request = ExportRequest(image=dicom_image, voi=WINDOW, created=FIXED_TIME)
    out = compose_annotated_layout(request)
    rows, cols = dicom_image.shape
    x0, y0, x1, y1 = out.image_box
    assert (x0, y0, x1, y1) == (0, 0, cols, rows)
    px0, _, px1, py1 = out.panel_box
    assert px0 == cols and px1 == out.rgb.shape[1] and py1 == out.rgb.shape[0]
    assert out.rgb.shape == (max(rows, py1), cols + (px1 - px0), 3)
    assert out.rgb.dtype == np.uint8
    expected = render_display(dicom_image, WINDOW)
    region = out.rgb[:rows, :cols]
    for ch in range(3):
        np.testing.assert_array_equal(region[..., ch], expected)
    # the same through the public one-call API
    np.testing.assert_array_equal(compose_annotated(request), out.rgb)


def test_invert_and_window_change_the_pixels(dicom_image):
    rows, cols = dicom_image.shape
    plain = compose_annotated(ExportRequest(image=dicom_image, voi=WINDOW))
    inverted = compose_annotated(ExportRequest(image=dicom_image, voi=WINDOW, invert=True))
    np.testing.assert_array_equal(
        inverted[:rows, :cols, 0], render_display(dicom_image, WINDOW, invert=True)
    )
    # inversion really happened (dark <-> bright, up to dcmtk's rounding)
    diff = inverted[:rows, :cols, 0].astype(int) - (255 - plain[:rows, :cols, 0].astype(int))
    assert np.abs(diff).max() <= 1
    narrow = VOI.window(1000.0, 200.0)
    other = compose_annotated(ExportRequest(image=dicom_image, voi=narrow))
    np.testing.assert_array_equal(other[:rows, :cols, 1], render_display(dicom_image, narrow))


@pytest.mark.parametrize("k", [0, 1, 2, 3, -1])
def test_region_flip_rotation(dicom_image, k):
    region = (20, 220, 30, 200)  # r0, r1, c0, c1
    request = ExportRequest(
        image=dicom_image, voi=WINDOW, view_region=region, flip_h=True, rotation_k=k
    )
    out = compose_annotated_layout(request)
    r0, r1, c0, c1 = region
    crop = render_display(dicom_image, WINDOW)[r0:r1, c0:c1][:, ::-1]
    expected = np.rot90(crop, k=-k)  # clockwise quarter turns
    h, w = expected.shape
    assert out.image_box == (0, 0, w, h)
    np.testing.assert_array_equal(out.rgb[:h, :w, 2], expected)


def test_orient_point_follows_apply_orientation():
    arr = np.zeros((5, 7), np.uint8)
    arr[1, 2] = 1
    for flip_h in (False, True):
        for flip_v in (False, True):
            for k in range(4):
                moved = apply_orientation(arr, flip_h=flip_h, flip_v=flip_v, rotation_k=k)
                # centre of pixel (1, 2) is the continuous point (1.5, 2.5)
                r, c = orient_point(1.5, 2.5, arr.shape, flip_h=flip_h, flip_v=flip_v, rotation_k=k)
                assert moved[int(r), int(c)] == 1


def test_heat_map_colours_where_cam_is_high(dicom_image):
    pred = make_prediction(dicom_image.image_id)
    cams = square_cam(dicom_image)
    request = ExportRequest(
        image=dicom_image,
        voi=WINDOW,
        prediction=pred,
        cams=cams,
        finding="Cardiomegaly",
        overlay_opacity=0.7,
        overlay_colormap="jet",
        overlay_threshold=0.5,
    )
    out = compose_annotated_layout(request)
    rgb = out.rgb.astype(int)
    hot = rgb[60:140, 70:150]  # inside the CAM square: jet at 1.0 is dark red
    assert np.all(hot[..., 0] - hot[..., 2] > 40), "high CAM should be red"
    assert np.all(hot[..., 0] - hot[..., 1] > 40)
    cold = rgb[200:290, 10:230]  # CAM 0 < threshold: untouched grey
    assert np.all(cold[..., 0] == cold[..., 1]) and np.all(cold[..., 1] == cold[..., 2])
    np.testing.assert_array_equal(
        cold[..., 0], render_display(dicom_image, WINDOW)[200:290, 10:230]
    )
    # the colormap legend: blue at its low end, red at its high end
    assert out.legend_box is not None
    lx0, ly0, lx1, ly1 = out.legend_box
    mid = (ly0 + ly1) // 2
    low = rgb[mid, lx0 + 2]
    high = rgb[mid, lx1 - 3]
    assert high[0] > high[2] + 60
    assert low[2] >= low[0]
    assert "Cardiomegaly (Grad-CAM)" in out.texts


def test_panel_lists_ranked_findings_and_provenance(dicom_image):
    pred = make_prediction(dicom_image.image_id, top="Pleural effusion")
    out = compose_annotated_layout(
        ExportRequest(image=dicom_image, voi=WINDOW, prediction=pred, created=FIXED_TIME)
    )
    texts = list(out.texts)
    assert texts[0] == DISCLAIMER
    ranked = [s.finding for s in pred.ranked() if s.probability is not None]
    positions = [texts.index(f) for f in ranked]
    assert positions == sorted(positions), "findings must be drawn in ranked order"
    assert texts[positions[0] + 1] == "91.0%"
    assert "0.50" in texts
    assert "tiny-cnn  v0.3.1" in texts
    assert "weights sha256 0123456789abcdef" in texts
    assert "2025-03-04 05:06:07 UTC" in texts
    assert "ILD, Pulmonary fibrosis" in texts  # not scored, listed as such
    assert "not shown on this image" in texts  # no heat map in this request
    # the panel is really drawn: the yellow stamp banner and light text on dark background
    x0, y0, x1, y1 = out.panel_box
    panel = out.rgb[y0:y1, x0:x1].astype(int)
    banner = (panel[..., 0] > 240) & (panel[..., 1] > 180) & (panel[..., 2] < 80)
    assert banner.sum() > 0.5 * (x1 - x0) * 20
    assert (panel.sum(axis=2) > 600).sum() > 500  # text pixels


def test_abnormal_score_and_operating_mode_in_panel_and_text(dicom_image):
    from dataclasses import replace

    pred = replace(make_prediction(dicom_image.image_id), abnormal=0.88, abnormal_threshold=0.6,
                   mode="high-specificity")
    req = ExportRequest(image=dicom_image, voi=WINDOW, prediction=pred, created=FIXED_TIME)
    texts = list(compose_annotated_layout(req).texts)
    assert "Abnormal: 88.0% FLAGGED" in texts
    assert texts.index("Abnormal: 88.0% FLAGGED") < texts.index("Cardiomegaly")  # first line
    assert "Operating mode: High specificity" in texts
    lines = summary_lines(req)
    assert "Abnormal: 88.0% FLAGGED" in lines and "Operating mode: High specificity" in lines
    # a model without operating points says so in one line
    old = replace(make_prediction(dicom_image.image_id), operating_note="no operating points")
    old_req = ExportRequest(image=dicom_image, voi=WINDOW, prediction=old, created=FIXED_TIME)
    assert "no operating points" in summary_lines(old_req)
    assert not any(t.startswith("Abnormal") for t in summary_lines(old_req))


def test_applicability_warnings_are_burned_in_and_summarised(dicom_image):
    from dataclasses import replace

    from cxr_viewer.export.annotated import summary_lines

    pred = replace(make_prediction(dicom_image.image_id),
                   warnings=("body part not stated: the model assumes a chest radiograph",))
    request = ExportRequest(image=dicom_image, voi=WINDOW, prediction=pred, created=FIXED_TIME)
    caution = "Caution: body part not stated: the model assumes a chest radiograph"
    assert caution in " ".join(compose_annotated_layout(request).texts)  # wrapped to the panel
    assert caution in summary_lines(request)


def test_no_ai_panel_says_so(dicom_image):
    out = compose_annotated_layout(ExportRequest(image=dicom_image, voi=WINDOW))
    assert "AI analysis not run" in out.texts
    assert DISCLAIMER in out.texts


def _png_metadata_text(blob: bytes) -> str:
    """Every non-pixel PNG chunk as text: tEXt as is, zTXt and compressed iTXt decompressed.

    The pixel data (IDAT) are left out on purpose: they are compressed image bytes in which a
    short string such as "DOE" turns up by chance (the old byte search failed ~1 run in 100).
    """
    import struct
    import zlib

    assert blob[:8] == b"\x89PNG\r\n\x1a\n"
    pos, parts = 8, []
    while pos < len(blob):
        (length,) = struct.unpack(">I", blob[pos : pos + 4])
        ctype = blob[pos + 4 : pos + 8]
        data = blob[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if ctype == b"tEXt":
            parts.append(data.decode("latin-1"))
        elif ctype == b"zTXt":
            key, _, rest = data.partition(b"\0")
            parts.append(key.decode("latin-1") + zlib.decompress(rest[1:]).decode("latin-1"))
        elif ctype == b"iTXt":
            key, _, rest = data.partition(b"\0")
            compressed, rest = rest[0], rest[2:]
            _lang, _, rest = rest.partition(b"\0")
            _tkey, _, text = rest.partition(b"\0")
            text = zlib.decompress(text) if compressed else text
            parts.append(key.decode("latin-1") + text.decode("utf-8"))
        elif ctype not in (b"IDAT", b"IHDR", b"IEND"):
            parts.append(data.decode("latin-1"))
    return "\n".join(parts)


#: Identifiers long and specific enough that finding them anywhere in the file's bytes, pixel
#: data included, cannot happen by chance (8+ given characters: < 1e-12 per export).
LONG_IDENTIFIERS = (PATIENT_ID, ACCESSION, BIRTH_DATE)


def test_deidentified_by_default(dicom_image, tmp_path):
    """No patient identifier is drawn, in the PNG text chunks, or anywhere in the bytes.

    Deterministic: what is drawn is checked through the exporter's own list of drawn strings,
    the metadata through the decoded text chunks, and only long identifiers through the raw
    bytes (the pixel data are compressed noise in which "DOE" can occur by chance).
    """
    assert dicom_image.tags.get("PatientID") == PATIENT_ID  # the source does carry them
    pred = make_prediction(dicom_image.image_id)

    def request(details: bool) -> ExportRequest:
        return ExportRequest(
            image=dicom_image,
            voi=WINDOW,
            prediction=pred,
            cams=square_cam(dicom_image),
            finding="Cardiomegaly",
            include_patient_details=details,
        )

    out = compose_annotated_layout(request(False))
    drawn = "\n".join(out.texts)
    assert "Cardiomegaly" in drawn  # the list holds what is drawn
    for secret in (*SECRETS, "DOE_JANE_chest", "DOE JANE"):
        assert secret not in drawn
    png = save_image(out.rgb, tmp_path / "export.png", request(False))
    with Image.open(png) as im:
        meta = dict(im.text)
    assert meta["Disclaimer"] == DISCLAIMER
    assert meta["Software"].startswith("cxr-viewer")
    assert "tiny-cnn 0.3.1" in meta["Model"]
    blob = png.read_bytes()
    chunks = _png_metadata_text(blob)
    assert DISCLAIMER in chunks  # the chunk reader sees the metadata
    for secret in SECRETS:
        assert secret not in "\n".join(meta.values())
        assert secret not in chunks
    for identifier in LONG_IDENTIFIERS:
        assert identifier.encode() not in blob

    # Control: with patient details asked for, the same checks do find them (not vacuous).
    shown = save_image(
        compose_annotated_layout(request(True)).rgb, tmp_path / "named.png", request(True)
    )
    named_chunks = _png_metadata_text(shown.read_bytes())
    assert PATIENT_ID in named_chunks and "DOE" in named_chunks
    assert PATIENT_ID.encode() in shown.read_bytes()


def test_patient_details_when_asked(dicom_image, tmp_path):
    request = ExportRequest(image=dicom_image, voi=WINDOW, include_patient_details=True)
    out = compose_annotated_layout(request)
    drawn = "\n".join(out.texts)
    assert PATIENT_ID in drawn and "DOE" in drawn and ACCESSION in drawn
    meta = export_metadata(request)
    assert meta["Patient ID"] == PATIENT_ID


def test_measurements_burned_in(dicom_image):
    rows, cols = dicom_image.shape
    request = ExportRequest(
        image=dicom_image,
        voi=WINDOW,
        measurements=((250.0, 20.0, 250.0, 200.0, 45.25), [30.0, 20.0, 120.0, 20.0, None]),
    )
    out = compose_annotated_layout(request)
    assert "45.2 mm" in out.texts or "45.3 mm" in out.texts
    assert "90.0 px (uncalibrated)" in out.texts
    rgb = out.rgb[:rows, :cols].astype(int)
    yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 180) & (rgb[..., 2] < 80)
    assert yellow[249:252, 40:180].any(axis=0).all(), "the horizontal line is drawn"
    assert yellow[50:100, 18:23].any(axis=1).all(), "the vertical line is drawn"
    assert not yellow[150:200, 120:200].any(), "nothing drawn away from the measurements"


def test_results_of_another_image_are_refused(dicom_image):
    pred = make_prediction("some-other-image")
    with pytest.raises(ExportError, match="another image"):
        compose_annotated(ExportRequest(image=dicom_image, voi=WINDOW, prediction=pred))
    with pytest.raises(ExportError, match="no heat map"):
        compose_annotated(
            ExportRequest(
                image=dicom_image,
                voi=WINDOW,
                prediction=make_prediction(dicom_image.image_id),
                finding="Pneumothorax",
                cams=square_cam(dicom_image),
            )
        )
    with pytest.raises(ExportError, match="no frame 2"):
        compose_annotated(ExportRequest(image=dicom_image, voi=WINDOW, frame=1))
    two_frames = dataclasses.replace(
        dicom_image, frames=np.stack([dicom_image.pixels, dicom_image.pixels[::-1]])
    )
    with pytest.raises(ExportError, match="AI results are for frame 1"):
        compose_annotated(
            ExportRequest(
                image=two_frames,
                voi=WINDOW,
                prediction=make_prediction(two_frames.image_id),
                frame=1,
            )
        )
    # without AI results, frame 2 exports as rendered
    rgb = compose_annotated(ExportRequest(image=two_frames, voi=WINDOW, frame=1))
    rows, cols = two_frames.shape
    np.testing.assert_array_equal(rgb[:rows, :cols, 0], render_display(two_frames, WINDOW, frame=1))
    with pytest.raises(ExportError, match="empty view region"):
        compose_annotated(ExportRequest(image=dicom_image, voi=WINDOW, view_region=(5, 5, 0, 9)))


def test_jpeg_export(dicom_image, tmp_path):
    request = ExportRequest(image=dicom_image, voi=WINDOW)
    rgb = compose_annotated(request)
    path = save_image(rgb, tmp_path / "export.jpg", request)
    with Image.open(path) as im:
        assert im.format == "JPEG"
        assert im.size == (rgb.shape[1], rgb.shape[0])
        comment = im.info.get("comment", b"").decode()
    assert DISCLAIMER in comment
    assert PATIENT_ID not in comment
    with pytest.raises(ExportError, match="unknown image format"):
        save_image(rgb, tmp_path / "export.bmp", request)


def test_large_image_scales_the_panel(tmp_path):
    image = load_image(make_dicom(tmp_path / "big.dcm", rows=2400, cols=2000))
    out = compose_annotated_layout(ExportRequest(image=image, voi=WINDOW))
    assert out.rgb.shape[0] == 2400
    small = compose_annotated_layout(
        ExportRequest(image=load_image(make_dicom(tmp_path / "s.dcm")), voi=WINDOW)
    )
    panel_w = out.panel_box[2] - out.panel_box[0]
    small_w = small.panel_box[2] - small.panel_box[0]
    assert panel_w > 1.8 * small_w  # text grows with the image so it stays legible


def test_measurement_outside_the_view_stays_off_the_panel(dicom_image):
    base = dict(image=dicom_image, voi=WINDOW, created=FIXED_TIME, view_region=(0, 300, 0, 120))
    plain = compose_annotated_layout(ExportRequest(**base))
    # from inside the view to far right of it (into where the panel sits on the canvas)
    marked = compose_annotated_layout(
        ExportRequest(**base, measurements=((100.0, 10.0, 100.0, 239.0, 30.0),))
    )
    x0, y0, x1, y1 = marked.panel_box
    np.testing.assert_array_equal(marked.rgb[y0:y1, x0:x1], plain.rgb[y0:y1, x0:x1])
    assert not np.array_equal(marked.rgb[:300, :120], plain.rgb[:300, :120])


def test_killed_export_leaves_no_partial_file(tmp_path):
    """SIGKILL an export while it is writing: the target keeps its old, complete content.

    A child process writes a large annotated PNG over an existing export; the parent waits until
    the bytes are streaming into the temporary sibling, kills the child, and checks that the
    target is the old file, unchanged, and that no file under the target's name is partial.
    """
    import os
    import signal
    import subprocess
    import sys
    import time

    if not hasattr(signal, "SIGKILL"):
        pytest.skip("needs SIGKILL (POSIX)")
    target = tmp_path / "export.png"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(target)
    old = target.read_bytes()
    code = (
        "import sys, numpy as np\n"
        "from cxr_viewer.export.annotated import ExportRequest, save_image\n"
        "from cxr_viewer.io.types import ImageData\n"
        "from cxr_viewer.imaging.window import VOI\n"
        "rgb = np.random.default_rng(0).integers(0, 256, (4000, 4000, 3), dtype=np.uint8)\n"
        "img = ImageData(path='x', frames=np.zeros((1, 2, 2), np.uint8))\n"
        "print('start', flush=True)\n"
        "save_image(rgb, sys.argv[1], ExportRequest(image=img, voi=VOI.window(128, 256)))\n"
        "print('done', flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(target)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "start"
        deadline = time.monotonic() + 120
        partial: list[Path] = []
        while time.monotonic() < deadline and child.poll() is None:
            partial = [p for p in tmp_path.iterdir() if p.name != "export.png"]
            if partial and any(p.stat().st_size > 100_000 for p in partial):
                break
            time.sleep(0.002)
        assert child.poll() is None, "the export finished before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    assert partial, "never saw the temporary file being written"
    assert target.read_bytes() == old  # the old export, complete and unchanged
    with Image.open(target) as im:
        im.load()
    # What is left is only the hidden temporary sibling, never a file under the target's name.
    for leftover in tmp_path.iterdir():
        if leftover != target:
            assert leftover.name.startswith(".export.png.") and ".part" in leftover.name


def test_overlay_planes_burned_into_the_export_when_shown(tmp_path):
    from tests.test_io_overlays import make, packed, plane

    bits = plane((6, 8), [(2, 3), (4, 5)])
    image = load_image(make(tmp_path / "o.dcm", OverlayRows=6, OverlayColumns=8,
                            OverlayOrigin=[1, 1], OverlayBitsAllocated=1, OverlayBitPosition=0,
                            OverlayType="G", OverlayData=packed(bits)))
    voi = VOI.window(2048, 4096)
    shown = ExportRequest(image=image, voi=voi)  # default: shown, as in the viewer
    hidden = dataclasses.replace(shown, overlay_planes=False)
    assert shown.overlay_planes
    a, b = compose_annotated(shown), compose_annotated(hidden)
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_panel_shows_the_change_since_the_prior(dicom_image):
    from cxr_viewer.worklist import compare_predictions

    current = make_prediction(dicom_image.image_id)
    prior = make_prediction(dicom_image.image_id, top="Pleural effusion")
    rows = tuple(compare_predictions(current, prior))
    request = ExportRequest(image=dicom_image, voi=WINDOW, created=FIXED_TIME,
                            prediction=current, comparison=rows,
                            comparison_caption="Prior, 3 months earlier")
    texts = list(compose_annotated_layout(request).texts)
    assert "Change since the prior" in texts and "Prior, 3 months earlier" in texts
    changed = [t for t in texts if t.endswith(("new flag", "resolved", "up", "down"))]
    assert changed and any(t.startswith(rows[0].finding) for t in changed)
