"""Reading stored results back: SR -> findings, PM -> heat maps, GSPS -> view; foreign objects."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pydicom
import pytest

from cxr_viewer.export.ai_report import report_from_prediction
from cxr_viewer.export.dicom_results import write_dicom_results
from cxr_viewer.export.pr import ViewState
from cxr_viewer.io.loader import load_image
from cxr_viewer.io.scan import scan_folder
from cxr_viewer.io.stored_results import ForeignObject, find_stored_results, read_result_file
from tests.dicom_results_kit import ExtendedPrediction, blob_cams
from tests.test_export_annotated import make_dicom, make_prediction

VIEW = ViewState(
    1800.0,
    2600.0,
    rotation_k=1,
    flip_v=True,
    measurements=((250.0, 20.0, 250.0, 200.0, 45.0), (10.0, 10.0, 40.0, 50.0, None)),
    explanation="Header window 1",
)


@pytest.fixture
def study(tmp_path):
    """A folder with a source image and our SR + PM + GSPS of it."""
    folder = tmp_path / "study"
    folder.mkdir()
    image = load_image(make_dicom(folder / "chest.dcm"))
    base = make_prediction(image.image_id)
    pred = ExtendedPrediction(
        **{
            **base.__dict__,
            "abnormal": 0.83,
            "abnormal_threshold": 0.6,
            "mode": "balanced",
            "calibrated": True,
        }
    )
    cams = blob_cams(image, ("Cardiomegaly", "Pleural effusion"))
    written = write_dicom_results(image, folder, prediction=pred, cams=cams, view=VIEW)
    assert len(written.paths) == 3
    return folder, image, pred, cams


def test_everything_written_is_read_back(study):
    folder, image, pred, cams = study
    results = find_stored_results([folder])
    assert results.errors == [] and results.foreign == []
    stored = results.report_for(image.sop_uid)
    assert stored is not None and stored.study_uid == image.study_uid
    expected = report_from_prediction(pred)
    assert dataclasses.replace(stored.report, created=None) == expected
    assert stored.report.abnormal == pytest.approx(0.83)
    assert stored.report.operating_mode == "balanced"
    assert stored.report.abnormal_threshold == pytest.approx(0.6) and stored.report.calibrated
    assert stored.report.abnormal_flagged is True
    assert stored.report.flagged == (
        "Cardiomegaly",
        "Other lesion",
        "Pleural effusion",
        "Pleural thickening",
        "Pneumothorax",
    )
    assert stored.created is not None
    # as a Prediction for the findings panel
    as_pred = stored.report.to_prediction(image.image_id)
    assert [s.probability for s in as_pred.scores] == [s.probability for s in pred.scores]
    assert as_pred.model_name == "tiny-cnn" and as_pred.no_finding == pytest.approx(0.12)

    maps = results.heatmaps_for(image.sop_uid)
    assert maps.findings == ("Cardiomegaly", "Pleural effusion") and maps.method == "gradcam"
    assert maps.model_name == "tiny-cnn"
    loaded = maps.load(image.image_id)
    assert loaded.image_id == image.image_id
    for finding, cam in cams.maps.items():
        np.testing.assert_allclose(
            loaded.maps[finding], cam, atol=0.5 / 255 + 1e-6
        )  # kept to 1/255 (export.pm.LEVELS)

    view = results.view_for(image.sop_uid)
    assert view.view.window_center == 1800.0 and view.view.window_width == 2600.0
    assert view.view.explanation == "Header window 1"
    assert [(m.r0, m.c0, m.r1, m.c1, m.length_mm) for m in view.view.measurements] == [
        (250.0, 20.0, 250.0, 200.0, 45.0),
        (10.0, 10.0, 40.0, 50.0, None),
    ]
    # the same picture: R^1 V == H R^-1 ... compare what is shown
    from cxr_viewer.export.annotated import apply_orientation

    arr = np.arange(12).reshape(3, 4)
    v = view.view_for(image.inverted_display)
    np.testing.assert_array_equal(
        apply_orientation(arr, flip_h=v.flip_h, flip_v=v.flip_v, rotation_k=v.rotation_k),
        apply_orientation(arr, flip_h=False, flip_v=True, rotation_k=1),
    )
    assert v.invert is False


def test_scan_lists_the_image_only_and_our_map_as_a_stored_result(study):
    folder, image, _, _ = study
    scan = scan_folder(folder)
    assert [i.sop_uid for i in scan.instances] == [image.sop_uid]
    reasons = sorted(reason for _, reason in scan.skipped)
    assert "stored result (AI heat maps, Parametric Map)" in reasons
    assert sum("Comprehensive SR" in r or "Presentation State" in r for r in reasons) == 2


def test_report_whose_image_is_absent_is_an_orphan(study, tmp_path):
    folder, image, _, _ = study
    (folder / "chest.dcm").unlink()
    results = find_stored_results([folder])
    assert results.orphans([]) == results.reports and len(results.reports) == 1
    assert results.orphans([image.sop_uid]) == []


def test_foreign_objects_are_listed_and_broken_ones_reported(study, tmp_path, corpus_dir):
    folder, image, _, _ = study
    other = tmp_path / "other"
    other.mkdir()
    # an SR from "other software": our SR with its findings coded under another scheme
    sr_path = next(folder.glob("*_AI-SR.dcm"))
    ds = pydicom.dcmread(sr_path)
    for group in ds.ContentSequence[-2].ContentSequence:
        for item in group.ContentSequence:
            if item.ConceptNameCodeSequence[0].CodeMeaning == "Finding":
                item.ConceptCodeSequence[0].CodingSchemeDesignator = "99OTHER"
    ds.save_as(other / "foreign_sr.dcm")
    # a presentation state of other software
    pr = pydicom.dcmread(next(folder.glob("*_GSPS.dcm")))
    pr.ContentLabel = "THEIRS"
    pr.save_as(other / "foreign_pr.dcm")
    # the corpus's float Parametric Map (pydicom-data) and a truncated SR
    shutil.copy(corpus_dir / "corpus" / "pydicom-data__parametric_map_float.dcm", other / "pm.dcm")
    (other / "broken_sr.dcm").write_bytes(sr_path.read_bytes()[:700])
    (other / "notes.txt").write_text("not DICOM")
    results = find_stored_results([other])
    assert results.reports == [] and results.views == [] and results.heatmaps == []
    foreign = {f.path.name: f for f in results.foreign}
    errors = {p.name: reason for p, reason in results.errors}
    # a cut-short file is listed either way (pydicom may read what is there), never raised
    assert set(foreign) | {"broken_sr.dcm"} == {
        "foreign_sr.dcm", "foreign_pr.dcm", "pm.dcm", "broken_sr.dcm"
    }  # fmt: skip
    assert ("broken_sr.dcm" in foreign) != ("broken_sr.dcm" in errors)
    assert foreign["foreign_sr.dcm"].title == "Imaging Measurement Report"
    assert foreign["foreign_sr.dcm"].sop_class == "Comprehensive SR Storage"
    assert image.sop_uid in foreign["foreign_pr.dcm"].source_sop_uids
    assert isinstance(read_result_file(other / "pm.dcm"), ForeignObject)
    assert set(errors) - {"broken_sr.dcm"} == {"notes.txt"}
    assert "not DICOM" in errors["notes.txt"]


def test_reading_stored_results_never_imports_tensorflow(study):
    folder, image, _, _ = study
    code = textwrap.dedent(
        f"""
        import sys
        from cxr_viewer.io.loader import load_image
        from cxr_viewer.io.stored_results import find_stored_results
        image = load_image({str(folder / "chest.dcm")!r})
        results = find_stored_results([{str(folder)!r}])
        pred = results.report_for(image.sop_uid).report.to_prediction(image.image_id)
        cams = results.heatmaps_for(image.sop_uid).load(image.image_id)
        assert len(pred.scores) == 14 and len(cams.maps) == 2
        assert "tensorflow" not in sys.modules, "tensorflow was imported"
        assert "keras" not in sys.modules, "keras was imported"
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_sr_content_tree_for_the_tag_browser(study):
    from cxr_viewer.io.stored_results import sr_content_tree

    folder, image, _, _ = study
    ds = pydicom.dcmread(next(folder.glob("*_AI-SR.dcm")))
    tree = sr_content_tree(ds)
    assert tree.text == "CONTAINER Imaging Measurement Report"
    measurements = next(c for c in tree.children if "Imaging Measurements" in c.text)
    assert len(measurements.children) == 16
    cardio = next(
        g for g in measurements.children if any("Cardiomegaly" in c.text for c in g.children)
    )
    texts = [c.text for c in cardio.children]
    assert "contains NUM Probability = 0.91 1" in texts
    assert 'contains CODE Finding = (287272002, SCT, "Cardiomegaly")' in texts
    assert sr_content_tree(pydicom.dcmread(folder / "chest.dcm", stop_before_pixels=True)) is None
