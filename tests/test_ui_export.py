"""Export dialog, background export and clipboard copy (Qt, offscreen)."""

from __future__ import annotations

import time

import numpy as np
import pydicom
import pytest
from PIL import Image
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox

from cxr_viewer.export.annotated import ExportRequest, compose_annotated
from cxr_viewer.imaging.render import render_display
from cxr_viewer.io.loader import load_image
from cxr_viewer.ui.export_dialog import (
    ExportDialog,
    copy_to_clipboard,
    export_from_state,
    run_export_dialog,
)
from tests.test_export_annotated import (
    FIXED_TIME,
    PATIENT_ID,
    WINDOW,
    make_dicom,
    make_prediction,
    square_cam,
)

pytestmark = pytest.mark.gui


@pytest.fixture
def request_for(tmp_path):
    image = load_image(make_dicom(tmp_path / "src.dcm"))
    return ExportRequest(
        image=image,
        voi=WINDOW,
        prediction=make_prediction(image.image_id),
        cams=square_cam(image),
        finding="Cardiomegaly",
        created=FIXED_TIME,  # the panel shows the export time: fixed so compositions compare
    )


def test_dialog_defaults_and_options(qtbot, tmp_path):
    dialog = ExportDialog(default_path=tmp_path / "chest.png")
    qtbot.addWidget(dialog)
    assert not dialog.patient_check.isChecked()  # de-identified by default
    assert dialog.full_radio.isChecked()
    assert dialog.format_combo.currentData() == ".png"
    dialog.format_combo.setCurrentIndex(2)  # DICOM SC: the path follows the format
    assert dialog.path_edit.text().endswith("chest.dcm")
    dialog.view_radio.setChecked(True)
    dialog.patient_check.setChecked(True)
    opts = dialog.options()
    assert opts.path == tmp_path / "chest.dcm"
    assert opts.current_view and opts.include_patient_details


def test_dialog_without_dicom_source_disables_sc(qtbot):
    dialog = ExportDialog(default_path="x.jpg", can_dicom=False, has_view_region=False)
    qtbot.addWidget(dialog)
    assert dialog.format_combo.currentData() == ".jpg"
    assert not dialog.format_combo.model().item(2).isEnabled()
    assert not dialog.view_radio.isEnabled()


def test_export_from_state_writes_png_off_the_gui_thread(qtbot, tmp_path, request_for):
    path = tmp_path / "out.png"
    job = export_from_state(None, request_for, path)
    with qtbot.waitSignal(job.finished, timeout=20000) as blocker:
        pass
    assert blocker.args == [str(path)]
    with Image.open(path) as im:
        written = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(written, compose_annotated(request_for))


def test_export_from_state_reports_failure(qtbot, tmp_path, request_for):
    job = export_from_state(None, request_for, tmp_path / "out.tiff")
    # a caller that connects late (after other work, before the event loop runs) still hears
    # the result: the job only starts from the event loop
    time.sleep(0.3)
    with qtbot.waitSignal(job.failed, timeout=20000) as blocker:
        pass
    assert "unknown export format" in blocker.args[0]
    assert not (tmp_path / "out.tiff").exists()


def test_run_export_dialog_current_view_as_dicom(qtbot, tmp_path, request_for, monkeypatch):
    """The whole Ctrl+E path: dialog accepted with "current view" and DICOM SC."""
    target = tmp_path / "view.dcm"

    def fake_exec(dialog: ExportDialog) -> int:
        qtbot.addWidget(dialog)
        dialog.format_combo.setCurrentIndex(2)
        dialog.view_radio.setChecked(True)
        dialog.path_edit.setText(str(target))
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        return dialog.result()

    monkeypatch.setattr(ExportDialog, "exec", fake_exec)
    region = (10, 110, 20, 140)
    job = run_export_dialog(None, request_for, default_path=tmp_path / "x.png", view_region=region)
    assert job is not None
    with qtbot.waitSignal(job.finished, timeout=20000):
        pass
    ds = pydicom.dcmread(target)
    assert ds.BurnedInAnnotation == "YES"
    rgb = ds.pixel_array
    r0, r1, c0, c1 = region
    # the current view only: the region's pixels (no heat map there: CAM box starts at row 50)
    expected = render_display(request_for.image, WINDOW, overlays=True)[r0:40, c0:c1]
    np.testing.assert_array_equal(rgb[: 40 - r0, : c1 - c0, 0], expected)
    # de-identified pixels, but the header keeps the patient so the PACS files it
    assert ds.PatientID == PATIENT_ID


def test_run_export_dialog_cancel(qtbot, request_for, monkeypatch):
    def fake_exec(dialog: ExportDialog) -> int:
        qtbot.addWidget(dialog)
        return QDialog.DialogCode.Rejected

    monkeypatch.setattr(ExportDialog, "exec", fake_exec)
    assert run_export_dialog(None, request_for) is None


def test_copy_to_clipboard(qtbot, request_for):
    rgb = compose_annotated(request_for)
    copy_to_clipboard(rgb)
    image = QApplication.clipboard().image()
    assert (image.width(), image.height()) == (rgb.shape[1], rgb.shape[0])
    colour = image.pixelColor(100, 100)  # inside the heat-map square
    assert (colour.red(), colour.green(), colour.blue()) == tuple(int(v) for v in rgb[100, 100])
