"""Stored results in the viewer: a folder with our SR + PM + GSPS shows them without the model."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from cxr_viewer.export.dicom_results import write_dicom_results
from cxr_viewer.export.pr import ViewState
from cxr_viewer.io.loader import load_image
from cxr_viewer.io.sample import PRIOR_FILE, generate_sample_study
from cxr_viewer.ui.viewstate import orient_array
from tests.dicom_results_kit import ExtendedPrediction, blob_cams
from tests.test_export_annotated import make_prediction
from tests.ui_fixtures import *  # noqa: F403 - fixtures
from tests.ui_fixtures import wait_for_image

pytestmark = pytest.mark.gui

VIEW = ViewState(
    1500.0, 3000.0, rotation_k=1, flip_h=True,
    measurements=((400.0, 300.0, 900.0, 1200.0, 120.0),), explanation="reading window",
)  # fmt: skip


def study_with_results(folder, *, results_elsewhere=None):
    """The sample study, with our SR + PM + GSPS of its first image (in ``folder`` or elsewhere)."""
    paths = generate_sample_study(folder)
    image = load_image(paths[0])
    base = make_prediction(image.image_id, name="stored-cnn")
    pred = ExtendedPrediction(**{**base.__dict__, "abnormal": 0.77, "mode": "balanced"})
    cams = blob_cams(image, ("Cardiomegaly", "Pleural effusion"))
    write_dicom_results(
        image, results_elsewhere or folder, prediction=pred, cams=cams, view=VIEW
    )
    return paths, image, pred, cams


def test_folder_with_stored_results_shows_them_without_the_model(
    qtbot, window, tmp_path, monkeypatch
):
    monkeypatch.setenv("CXR_VIEWER_DATA_DIR", str(tmp_path / "data"))  # this test's own audit log
    paths, source, pred, cams = study_with_results(tmp_path / "study")
    window.open_paths([str(tmp_path / "study")])
    image = wait_for_image(qtbot, window, paths[0], timeout=30000)
    ctl = window.stored
    qtbot.waitUntil(lambda: window.cams is not None, timeout=20000)  # heat maps from the PM
    # no problems listed for our own objects; both images (and the sample's prior) listed
    assert window.browser.problem_paths() == []
    prior = tmp_path / "study" / PRIOR_FILE
    assert sorted(window.browser.image_paths()) == sorted(str(p) for p in [*paths, prior])
    # findings panel: the stored scores, the badge, model/version/date, a re-run button
    assert ctl.banner.isVisible() and ctl.banner.badge.text() == "STORED RESULT"
    assert "stored-cnn 0.3.1" in ctl.banner.text.text() and "analysed 20" in ctl.banner.text.text()
    assert "Abnormal: 77%" in ctl.banner.text.text()
    assert ctl.banner.rerun_button.isVisible()
    assert window.prediction.image_id == image.image_id
    assert [s.probability for s in window.prediction.scores] == [s.probability for s in pred.scores]
    panel = window.findings_panel
    assert panel.ranked_findings()[0] == "Cardiomegaly"
    assert "Stored result" in panel.status_label.text()
    # heat maps from the Parametric Map
    assert window.cams.image_id == image.image_id and set(window.cams.maps) == set(cams.maps)
    np.testing.assert_allclose(window.cams.maps["Cardiomegaly"], cams.maps["Cardiomegaly"], atol=0.5 / 255 + 1e-6)
    # the presentation state applied: window, orientation, measurement
    assert (window.view.voi.center, window.view.voi.width) == (1500.0, 3000.0)
    arr = np.arange(12).reshape(3, 4)
    from cxr_viewer.export.annotated import apply_orientation

    np.testing.assert_array_equal(
        orient_array(arr, window.view.orientation),
        apply_orientation(arr, flip_h=True, rotation_k=1),
    )
    assert len(window.view.measurements) == 1
    m = window.view.measurements[0]
    assert (m.r0, m.c0, m.r1, m.c1) == (400.0, 300.0, 900.0, 1200.0)
    # the tag browser shows the SR's content tree
    trees = window.tags.find_items("Measurement Group")
    assert len(trees) == 16
    assert window.tags.find_items("Probability")

    # the second image has no stored result: the banner goes, the analysis is asked for
    window.show_path(str(paths[1]))
    wait_for_image(qtbot, window, paths[1])
    assert not ctl.banner.isVisible() and ctl.showing is None

    # back to the first, then "Re-run AI": the stored result gives way to an analysis
    window.show_path(str(paths[0]))
    wait_for_image(qtbot, window, paths[0])
    assert ctl.banner.isVisible()
    ctl.banner.rerun_button.click()
    assert not ctl.banner.isVisible() and ctl.showing is None

    # the audit trail recorded the opening and the stored result shown
    from cxr_viewer.audit import AuditLog, verify

    ctl.flush_audit()  # events are written on the audit thread, in order
    events = [r["event"] for _, r, _ in AuditLog().records() if r]
    assert "study-opened" in events and "ai-result-shown" in events
    assert verify().ok


def test_result_without_its_image_is_shown_with_a_warning(qtbot, window, tmp_path):
    study_with_results(tmp_path / "study", results_elsewhere=tmp_path / "results")
    window.open_paths([str(tmp_path / "results")])
    ctl = window.stored
    qtbot.waitUntil(lambda: ctl.banner.isVisible(), timeout=20000)
    assert "not open" in ctl.banner.warning.text()
    sr = next((tmp_path / "results").glob("*_AI-SR.dcm"))
    assert str(sr) in window.browser.problem_paths()  # listed with the warning
    assert window.findings_panel.ranked_findings()[0] == "Cardiomegaly"
    assert window.current_image is None
    # double-clicking the listed SR shows its tags and content tree
    assert ctl.show_object_tags(str(sr))
    assert window.tags.find_items("Measurement Group")
    assert window.tags.find_items("SOP Class UID")


def test_other_softwares_sr_is_listed_and_its_tree_shown(qtbot, window, tmp_path):
    import pydicom

    paths, *_ = study_with_results(tmp_path / "study")
    sr_path = next((tmp_path / "study").glob("*_AI-SR.dcm"))
    ds = pydicom.dcmread(sr_path)
    for group in ds.ContentSequence[-2].ContentSequence:
        for item in group.ContentSequence:
            if item.ConceptNameCodeSequence[0].CodeMeaning == "Finding":
                item.ConceptCodeSequence[0].CodingSchemeDesignator = "99OTHER"
    ds.save_as(sr_path)  # now "another vendor's" SR about the first image
    window.open_paths([str(tmp_path / "study")])
    wait_for_image(qtbot, window, paths[0], timeout=30000)
    assert window.stored.showing is None  # not ours: not shown as our result...
    assert str(sr_path) in window.browser.problem_paths()  # ...but listed
    assert window.tags.find_items("Measurement Group")  # and its tree is in the tag browser


def test_opening_only_a_foreign_result_object_says_so_and_clears_the_view(
    qtbot, window, tmp_path
):
    """A result object opened on its own is no image: it is listed, signalled and the
    previous patient's image does not stay on screen."""
    import pydicom

    paths, *_ = study_with_results(tmp_path / "study")
    sr_path = next((tmp_path / "study").glob("*_AI-SR.dcm"))
    ds = pydicom.dcmread(sr_path)
    for group in ds.ContentSequence[-2].ContentSequence:
        for item in group.ContentSequence:
            if item.ConceptNameCodeSequence[0].CodeMeaning == "Finding":
                item.ConceptCodeSequence[0].CodingSchemeDesignator = "99OTHER"
    ds.save_as(sr_path)  # now "another vendor's" SR
    window.open_paths([paths[0]])
    wait_for_image(qtbot, window, paths[0], timeout=30000)
    listed: list[tuple[str, str]] = []
    window.resultObjectsListed.connect(listed.extend)
    window.open_paths([str(sr_path)])
    qtbot.waitUntil(lambda: bool(listed), timeout=20000)
    (path, text), = listed
    assert path == str(sr_path) and str(sr_path) in text and "not an image" in text
    assert window.browser.problem_paths() == [str(sr_path)]
    assert window.current_image is None and window.view.image is None
    assert "not an image" in window.statusBar().currentMessage()


def test_png_source_cannot_export_dicom_results(qtbot, tmp_path):
    from cxr_viewer.ui.export_dialog import FORMATS, ExportDialog

    dialog = ExportDialog(None, default_path=tmp_path / "x.png", can_dicom=False)
    model = dialog.format_combo.model()
    labels = [label for label, _ in FORMATS]
    index = labels.index("DICOM results (SR + heat maps + presentation state)")
    assert not model.item(index).isEnabled()
    dialog.deleteLater()


def test_export_dialog_writes_dicom_results(qtbot, window, tmp_path):
    from cxr_viewer.ui.export_dialog import ExportDialog, export_from_state

    paths, *_ = study_with_results(tmp_path / "study")
    window.open_paths([str(paths[1])])  # no stored result: the GSPS only
    wait_for_image(qtbot, window, paths[1])
    dialog = ExportDialog(window, default_path=tmp_path / "out" / "x-annotated.png")
    dialog.format_combo.setCurrentIndex(3)
    options = dialog.options()
    assert options.dicom_results and options.path == tmp_path / "out" / "x-annotated-dicom"
    dialog.deleteLater()
    job = export_from_state(window, window.export_request(), options.path, dicom_results=True)
    with qtbot.waitSignal(job.finished, timeout=20000) as blocker:
        pass
    folder = tmp_path / "out" / "x-annotated-dicom"
    assert blocker.args == [str(folder)]
    written = sorted(p.name for p in folder.iterdir())
    assert len(written) == 1 and written[0].endswith("_GSPS.dcm")


def test_reopening_a_study_with_stored_results_never_imports_tensorflow(tmp_path):
    paths, *_ = study_with_results(tmp_path / "study")
    code = textwrap.dedent(
        f"""
        import sys
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from cxr_viewer.ui.main_window import MainWindow
        win = MainWindow()
        win.show()
        win.open_paths([{str(tmp_path / "study")!r}])
        import time
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (win.cams is None or win.stored.showing is None):
            app.processEvents()
            time.sleep(0.01)
        assert win.stored.showing is not None, "stored result not shown"
        assert win.cams is not None, "stored heat maps not shown"
        assert "tensorflow" not in sys.modules, "tensorflow was imported"
        win.shutdown()
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")
