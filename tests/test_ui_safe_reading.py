"""Safe reading (issue 10): TensorFlow on one thread, never the previous patient's image, AI
displays that cannot mislead, and the reading ergonomics, driven through the real window."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from PySide6.QtCore import QPoint, QPointF, Qt

from cxr_viewer.inference import tfthread
from cxr_viewer.inference.findings import VINDR_FINDINGS
from cxr_viewer.inference.results import CamResult, FindingScore, Prediction
from tests.ui_fixtures import *  # noqa: F403 - fixtures
from tests.ui_fixtures import CORPUS_FILES, mouse_drag, wait_for_image, write_png

pytestmark = pytest.mark.gui

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "models" / "default" / "model.json"


def _prediction(image_id: str, probs: dict[str, float], thresholds: float = 0.5) -> Prediction:
    scores = tuple(
        FindingScore(f, probs.get(f, 0.01), thresholds, probs.get(f, 0.01) >= thresholds)
        for f in VINDR_FINDINGS)
    return Prediction(image_id, "test-model", "0", "ab" * 32, scores)


def _cams(image_id: str, shape, method: str = "gradcam") -> CamResult:
    rows, cols = shape
    yy, xx = np.mgrid[0:rows, 0:cols]
    peak = np.exp(-(((yy - rows / 2) / (rows / 5)) ** 2 + ((xx - cols / 2) / (cols / 5)) ** 2))
    return CamResult(image_id, method, {f: peak.astype(np.float32) for f in VINDR_FINDINGS})


def _open(qtbot, win, path):
    win.open_paths([str(path)])
    return wait_for_image(qtbot, win, path)


def _chest_png(tmp_path: Path, name: str, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    img = (rng.integers(0, 30, (300, 280)) + 100).astype(np.uint8)
    return write_png(tmp_path / name, img)


def _dicom_without_pixels(path: Path) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.PatientName = "Second^Patient"
    ds.PatientID = "P2"
    ds.Rows, ds.Columns = 64, 64
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.save_as(path, enforce_file_format=True)
    return path


def _dicom_image(path: Path, photometric: str, pixels: np.ndarray, **tags) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.PatientName = "Test^Patient"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
    ds.PhotometricInterpretation = photometric
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


# =========================================================================== 1-2 TensorFlow thread
class RecordingBundle:
    """A bundle stand-in that records which thread each call runs on (no TensorFlow needed to
    check the threading rule; the real bundle's entry points are checked below)."""

    def __init__(self) -> None:
        from tests.inference_testkit import vindr_card

        self.card = vindr_card(findings=("Cardiomegaly", "Nodule/Mass"))
        self.calls: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def _note(self, what: str) -> None:
        with self.lock:
            self.calls.append((what, threading.get_ident()))

    def warm_up(self, cams: bool = True) -> None:
        self._note("warm_up")

    def predict(self, image):
        from cxr_viewer.inference.predict import build_prediction

        self._note("predict")
        return build_prediction(self.card, np.array([0.7, 0.2]), image.image_id)

    def cams(self, image, findings=None, method="gradcam"):
        self._note(f"cams:{method}")
        names = findings or ("Cardiomegaly", "Nodule/Mass")
        return CamResult(image.image_id, method,
                         {f: np.zeros(image.shape, np.float32) for f in names})


def test_every_model_call_runs_on_the_one_tensorflow_thread_warm_up_first(qtbot):
    from cxr_viewer.ui.analysis import AnalysisController
    from tests.inference_testkit import blob_image, gray_image

    ctl = AnalysisController()
    try:
        fake = RecordingBundle()
        ctl.set_bundle(fake)
        image = gray_image(blob_image((40, 30), (20, 15), 5), path="a.png")
        with qtbot.waitSignal(ctl.camsReady, timeout=20000):
            ctl.analyse(image)
        for method in ("gradcam++", "scorecam", "saliency"):
            with qtbot.waitSignal(ctl.camsReady, timeout=20000):
                ctl.request_cams(method)
        tf_thread = ctl._executor.thread_id
        assert [c[0] for c in fake.calls][:2] == ["warm_up", "predict"]  # traced first
        assert {c[1] for c in fake.calls} == {tf_thread}
        assert tf_thread != threading.get_ident()
        assert [c[0] for c in fake.calls][-3:] == ["cams:gradcam++", "cams:scorecam",
                                                   "cams:saliency"]
    finally:
        ctl.shutdown()
        ctl.deleteLater()


def test_a_slow_method_computes_the_new_images_top_finding_once(qtbot):
    """Paging with Score-CAM: the job computes the top finding; the panel then asks for that
    finding by name, which waits for the job instead of computing the map a second time."""
    from cxr_viewer.ui.analysis import AnalysisController
    from tests.inference_testkit import blob_image, gray_image

    ctl = AnalysisController()
    try:
        fake = RecordingBundle()
        ctl.set_bundle(fake)
        ctl.request_cams("scorecam")
        ctl.predictionReady.connect(
            lambda p: ctl.request_cams("scorecam", p.ranked()[0].finding))
        with qtbot.waitSignal(ctl.camsReady, timeout=20000) as got:
            ctl.analyse(gray_image(blob_image((40, 30), (20, 15), 5), path="b.png"))
        qtbot.waitUntil(lambda: not ctl.is_busy(), timeout=20000)
        assert list(got.args[0].maps) == ["Cardiomegaly"]  # the top finding (70 %)
        assert [c[0] for c in fake.calls].count("cams:scorecam") == 1
    finally:
        ctl.shutdown()
        ctl.deleteLater()


@pytest.mark.slow
def test_tensorflow_entry_points_refuse_any_other_thread(tmp_path):
    """Once the TensorFlow thread runs, a model call from the GUI thread or a QThreadPool
    thread raises WrongThread instead of risking a crash; on the TF thread it works."""
    from PySide6.QtCore import QRunnable, QThreadPool

    from cxr_viewer.inference.bundle import load_bundle
    from tests.inference_testkit import blob_image, cam_model, gray_image, vindr_card, write_bundle

    folder = write_bundle(tmp_path / "b", cam_model(32), vindr_card(32))
    executor = tfthread.acquire_executor()
    try:
        bundle = executor.submit(load_bundle, folder).result(120)
        image = gray_image(blob_image((60, 50), (30, 25), 8))
        with pytest.raises(tfthread.WrongThread, match="ModelBundle.predict"):
            bundle.predict(image)
        errors: list[BaseException] = []

        class Job(QRunnable):
            def run(self) -> None:
                try:
                    bundle.cams(image, method="gradcam++")
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)

        pool = QThreadPool()
        pool.start(Job())
        assert pool.waitForDone(60000)
        assert len(errors) == 1 and isinstance(errors[0], tfthread.WrongThread)
        prediction = executor.submit(bundle.predict, image).result(120)
        assert prediction.image_id == image.image_id
    finally:
        tfthread.release_executor()
    # without an executor (command-line use) the calling thread may use TensorFlow again
    assert tfthread.current_executor() is None
    assert bundle.predict(image).image_id == image.image_id


def _needs_model_and_nih(nih_dir):
    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"the bundled model {DEFAULT_MODEL} is absent")
    return sorted((nih_dir / "images").glob("*.png"))


@pytest.mark.slow
def test_open_a_file_immediately_after_start_up_repeatedly(qtbot, nih_dir, no_widget_leaks):
    """The reported crash: the model warm-up and the first analysis tracing one graph at once.
    Start the window, load the bundled model and open an NIH image in the same breath."""
    from cxr_viewer.ui.main_window import MainWindow

    images = _needs_model_and_nih(nih_dir)
    for i in range(3):
        win = MainWindow()
        win.show()
        win.load_default_model()
        win.open_paths([str(images[i])])
        qtbot.waitUntil(lambda w=win: w.prediction is not None and w.cams is not None,
                        timeout=180000)
        assert win.cams.image_id == win.current_image.image_id
        win.shutdown()
        win.close()
        win.deleteLater()


@pytest.mark.slow
def test_switching_through_every_heat_map_method_shows_that_methods_map(qtbot, window, nih_dir):
    images = _needs_model_and_nih(nih_dir)
    window.load_default_model()
    window.open_paths([str(images[0])])
    qtbot.waitUntil(lambda: window.cams is not None, timeout=180000)
    panel = window.findings_panel
    panel.below_check.setChecked(True)  # draw the top finding even below its threshold
    panel.overlay_check.setChecked(True)
    for i in range(panel.method_combo.count()):
        method = panel.method_combo.itemData(i)
        panel.method_combo.setCurrentIndex(i)
        qtbot.waitUntil(lambda m=method: window.view.heat_method == m, timeout=300000)
        assert window.cams.method == method
        assert window.view.heat_rgba.shape[:2] == window.current_image.shape
        assert window.view.heat_legend["method"] == method


@pytest.mark.slow
def test_ten_launches_of_the_real_app_with_an_image_exit_cleanly(nih_dir, tmp_path):
    """The real entry point, offscreen, quitting itself once the findings and the heat map are
    on screen (CXR_VIEWER_QUIT_AFTER_ANALYSIS): status 0 every time, never a signal."""
    image = _needs_model_and_nih(nih_dir)[0]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CXR_VIEWER_QUIT_AFTER_ANALYSIS="1",
               CXR_VIEWER_SETTINGS_DIR=str(tmp_path / "settings"), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=str(REPO))
    statuses = []
    for _ in range(10):
        done = subprocess.run([sys.executable, "-m", "cxr_viewer", str(image)], env=env,
                              capture_output=True, text=True, timeout=600, check=False)
        statuses.append(done.returncode)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "shown:" in done.stdout
    assert statuses == [0] * 10


# =========================================================================== 3 wrong patient
def test_a_failed_load_after_a_good_one_leaves_nothing_of_the_first(qtbot, window, tmp_path):
    good = _dicom_image(tmp_path / "good.dcm", "MONOCHROME2",
                        (np.arange(300 * 280).reshape(300, 280) % 4000),
                        PatientID="P1", StudyDate="20240102")
    shown = _open(qtbot, window, good)
    window.analysis.predictionReady.emit(_prediction(shown.image_id, {"Cardiomegaly": 0.9}))
    window.analysis.camsReady.emit(_cams(shown.image_id, shown.shape))
    window.findings_panel.select_finding("Cardiomegaly")
    window.view.add_measurement(10, 10, 10, 100)
    assert window.view.heatmap_visible() and "Test Patient" in window.view.annotation_texts()["tl"]
    bad = _dicom_without_pixels(tmp_path / "nopixels.dcm")
    window.open_paths([str(bad)])
    qtbot.waitUntil(lambda: window.view.placeholder_text != "", timeout=20000)
    assert window.view.placeholder_text.startswith("could not open: nopixels.dcm: ")
    assert window.view.placeholder.isVisible()
    assert window.view.image is None and window.current_image is None
    assert window.view.image_item.image is None
    assert not window.view.heatmap_visible() and window.view.heat_legend is None
    assert window.view.measurements == [] and window.measure_list.count() == 0
    assert all(t == "" for t in window.view.annotation_texts().values())
    assert "good.dcm" not in window.windowTitle() and "nopixels.dcm" in window.windowTitle()
    assert window.prediction is None and window.cams is None
    assert window.findings_panel.rows["Cardiomegaly"].probability is None
    assert "Test^Patient" not in " ".join(window.tags.values())
    assert "P1" not in " ".join(window.tags.values())
    # the next good file replaces the placeholder
    _open(qtbot, window, good)
    assert window.view.placeholder_text == "" and not window.view.placeholder.isVisible()


# =========================================================================== 4 refusal greyed
def test_the_corpus_dental_panoramic_is_refused_and_greyed(qtbot, window, corpus_dir, tmp_path):
    from tests.inference_testkit import cam_model, vindr_card, write_bundle

    folder = write_bundle(tmp_path / "bundle", cam_model(32), vindr_card(32))
    with qtbot.waitSignal(window.analysis.modelLoaded, timeout=120000):
        window.load_model(str(folder))
    dental = corpus_dir / "corpus" / "fo-dicom__CR-ModalitySequenceLUT.dcm"
    with qtbot.waitSignal(window.analysis.failed, timeout=120000) as failed:
        window.open_paths([str(dental)])
    assert "not analysed" in failed.args[0] and "empty band" in failed.args[0]
    panel = window.findings_panel
    qtbot.waitUntil(lambda: panel.refused)
    assert panel.refusal_label.isVisible()
    assert panel.refusal_label.text().startswith("Not analysed: ")
    assert not any(row.isEnabled() for row in panel.rows.values())
    assert window.prediction is None and not window.view.heatmap_visible()


# =========================================================================== 5-7 AI display
@pytest.fixture
def analysed(qtbot, window, tmp_path):
    path = _chest_png(tmp_path, "a.png")
    image = _open(qtbot, window, path)
    return image


def test_a_low_probability_findings_map_is_not_drawn_unless_asked_then_faded(qtbot, window,
                                                                             analysed):
    pred = _prediction(analysed.image_id, {"Cardiomegaly": 0.02, "Nodule/Mass": 0.9})
    window.analysis.predictionReady.emit(pred)
    window.analysis.camsReady.emit(_cams(analysed.image_id, analysed.shape))
    panel = window.findings_panel
    panel.select_finding("Cardiomegaly")
    assert not window.view.heatmap_visible()
    legend = window.view.heat_legend
    assert legend["title"].startswith("Cardiomegaly  2%")
    assert "below the threshold 50%" in legend["note"]
    panel.below_check.setChecked(True)
    assert window.view.heatmap_visible()
    faint = window.view.heat_rgba
    panel.select_finding("Nodule/Mass")
    strong = window.view.heat_rgba
    # the same attention map: 2 % shows (almost) nothing, 90 % a full-strength map
    assert (faint[..., 3] > 0).sum() < (strong[..., 3] > 0).sum() / 10
    assert window.view.legend.isVisible() and window.view.legend_bar.pixmap() is not None
    assert "attention x probability" in window.view.legend_scale.text()
    # contour-only: lines, no filled wash
    panel.contour_check.setChecked(True)
    lines = window.view.heat_rgba
    assert 0 < (lines[..., 3] > 0).sum() < (strong[..., 3] > 0).sum() / 3


def test_paging_shows_each_images_top_finding_unless_pinned(qtbot, window, tmp_path):
    a_path, b_path = _chest_png(tmp_path, "a.png", 0), _chest_png(tmp_path, "b.png", 1)
    window.open_paths([str(a_path), str(b_path)])
    a = wait_for_image(qtbot, window, a_path)
    window.analysis.predictionReady.emit(_prediction(a.image_id, {"Cardiomegaly": 0.9}))
    window.analysis.camsReady.emit(_cams(a.image_id, a.shape))
    window.findings_panel.overlay_check.setChecked(True)
    assert window.overlay.finding == "Cardiomegaly" and window.view.heatmap_visible()
    window.step_image(1)
    b = wait_for_image(qtbot, window, b_path)
    assert not window.view.heatmap_visible()  # nothing of A's map on B
    window.analysis.predictionReady.emit(_prediction(b.image_id, {"Pleural effusion": 0.8}))
    window.analysis.camsReady.emit(_cams(b.image_id, b.shape))
    assert window.overlay.finding == "Pleural effusion"
    assert window.view.heat_legend["title"].startswith("Pleural effusion")
    # pinned: the finding stays, and the view says so
    window.findings_panel.select_finding("Cardiomegaly")
    window.findings_panel.below_check.setChecked(True)
    window.findings_panel.pin_check.setChecked(True)
    window.step_image(-1)
    a2 = wait_for_image(qtbot, window, a_path)
    window.analysis.predictionReady.emit(_prediction(a2.image_id, {"Atelectasis": 0.95}))
    window.analysis.camsReady.emit(_cams(a2.image_id, a2.shape))
    assert window.overlay.finding == "Cardiomegaly"
    assert "pinned finding" in window.view.heat_legend["detail"]


def test_the_panel_shows_each_threshold_and_a_no_finding_above_state(qtbot, window, analysed):
    from cxr_viewer.ui.findings_panel import NO_FINDING_ABOVE

    panel = window.findings_panel
    pred = _prediction(analysed.image_id, {"Cardiomegaly": 0.33}, thresholds=0.5)
    window.analysis.predictionReady.emit(pred)
    row = panel.rows["Cardiomegaly"]
    assert row.threshold_label.text() == "thr 50%" and row.bar.threshold == 0.5
    assert row.flag_label.text() == "" and panel.summary_label.text() == NO_FINDING_ABOVE
    assert panel.summary_label.isVisible()
    flagged = _prediction(analysed.image_id, {"Cardiomegaly": 0.14}, thresholds=0.1)
    window.analysis.predictionReady.emit(flagged)
    assert row.flag_label.text() == "FLAG" and row.threshold_label.text() == "thr 10%"
    assert panel.summary_label.text().startswith("Above threshold: Cardiomegaly 14%")


# =========================================================================== 8-12 ergonomics
def _screen_mean(win) -> float:
    return float(win.view.displayed.mean())


@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
def test_right_drag_down_darkens_the_screen_for_both_photometrics(qtbot, window, tmp_path,
                                                                  photometric):
    ramp = (np.arange(200 * 200).reshape(200, 200) % 4096).astype(np.uint16)
    path = _dicom_image(tmp_path / f"{photometric}.dcm", photometric, ramp)
    _open(qtbot, window, path)
    before = _screen_mean(window)
    vp = window.view.glw.viewport()
    start = QPoint(vp.width() // 2, vp.height() // 2)
    mouse_drag(vp, start, start + QPoint(0, 80), Qt.MouseButton.RightButton, steps=5)
    after_down = _screen_mean(window)
    assert after_down < before - 5  # darker on screen, whatever the photometric
    qtbot.wait(800)  # not a double click
    mouse_drag(vp, start, start + QPoint(0, -160), Qt.MouseButton.RightButton, steps=5)
    assert _screen_mean(window) > after_down + 5


def test_deidentified_mode_hides_dates_in_corner_text_study_list_and_tags(qtbot, window,
                                                                          tmp_path):
    path = _dicom_image(tmp_path / "d.dcm", "MONOCHROME2",
                        np.arange(300 * 280).reshape(300, 280) % 4000,
                        StudyDate="20240102", PatientBirthDate="19500607",
                        StudyDescription="CHEST PA")
    _open(qtbot, window, path)
    texts = " ".join(window.view.annotation_texts().values())
    assert "20240102" in texts
    window.set_deidentified(True)
    texts = " ".join(window.view.annotation_texts().values())
    assert "20240102" not in texts and "CHEST PA" in texts
    values = " ".join(window.tags.values())
    assert "20240102" not in values and "19500607" not in values
    study_texts = [window.browser.tree.topLevelItem(i).text(0)
                   for i in range(window.browser.tree.topLevelItemCount())]
    assert study_texts and not any("2024" in t for t in study_texts)
    window.set_deidentified(False)
    assert "20240102" in " ".join(window.tags.values())


def test_measurements_belong_to_their_image_and_their_ends_can_be_dragged(qtbot, window,
                                                                          tmp_path):
    a_path, b_path = _chest_png(tmp_path, "a.png", 0), _chest_png(tmp_path, "b.png", 1)
    window.open_paths([str(a_path), str(b_path)])
    wait_for_image(qtbot, window, a_path)
    window.view.add_measurement(50, 40, 50, 140)
    window.step_image(1)
    wait_for_image(qtbot, window, b_path)
    assert window.view.measurements == []
    window.step_image(-1)
    wait_for_image(qtbot, window, a_path)
    [m] = window.view.measurements
    assert (m.r0, m.c0, m.r1, m.c1) == (50, 40, 50, 140) and window.measure_list.count() == 1
    # drag the end point with the mouse (pan mode: grabbing an end still moves it)
    vp = window.view.glw.viewport()

    def to_vp(col: float, row: float) -> QPointF:
        scene = window.view.orient.mapToScene(QPointF(col, row))
        return QPointF(window.view.glw.mapFromScene(scene))

    mouse_drag(vp, to_vp(140, 50), to_vp(140, 150), Qt.MouseButton.LeftButton, steps=6)
    [m] = window.view.measurements
    assert (m.r0, m.c0) == (50, 40)
    assert abs(m.r1 - 150) < 3 and abs(m.c1 - 140) < 3
    assert m.px == pytest.approx(np.hypot(m.r1 - 50, m.c1 - 40))
    assert window.measure_list.item(0).text().startswith("1. ")


def test_orientation_labels_follow_rotate_and_flip(qtbot, window, tmp_path):
    path = _dicom_image(tmp_path / "o.dcm", "MONOCHROME2",
                        np.arange(300 * 280).reshape(300, 280) % 4000,
                        PatientOrientation=["L", "F"], ImageLaterality="L")
    _open(qtbot, window, path)
    view = window.view
    assert view.orientation_labels() == {"right": "L", "left": "R", "bottom": "F", "top": "H"}
    assert view._edges["right"].text() == "L" and view._edges["right"].isVisible()
    assert "Laterality L" in view.annotation_texts()["tr"]
    qtbot.keyClick(window, Qt.Key.Key_H, Qt.KeyboardModifier.ShiftModifier)  # flip horizontally
    assert view.orientation_labels()["right"] == "R" and view._edges["left"].text() == "L"
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.keyClick(window, Qt.Key.Key_R)  # rotate clockwise: the top edge shows the old left
    assert view.orientation_labels() == {"top": "R", "right": "H", "bottom": "L", "left": "F"}


def test_tag_browser_shows_values_without_horizontal_scrolling(qtbot, window, corpus_dir):
    path = corpus_dir / "corpus" / CORPUS_FILES["two_windows"]
    _open(qtbot, window, path)
    window.tags_dock.raise_()
    tree = window.tags.tree
    qtbot.waitUntil(tree.isVisible)
    assert tree.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    header = tree.header()
    total = sum(header.sectionSize(i) for i in range(4))
    assert total <= tree.viewport().width() + 1
    assert header.sectionSize(3) >= 80  # the Value column keeps real width


def test_voi_lut_presets_are_named_not_a_made_up_window(qtbot, window, corpus_dir):
    path = corpus_dir / "corpus" / "pydicom-data__vlut_04.dcm"
    image = _open(qtbot, window, path)
    luts = [i for i, p in enumerate(window.presets(), 1) if type(p).__name__ == "HeaderVOILut"]
    assert luts, "the file has a VOI LUT Sequence"
    window.apply_preset(luts[0])
    bl = window.view.annotation_texts()["bl"]
    assert bl.startswith("VOI LUT: ") and "W " not in bl
    assert window.wl_label.text().startswith("VOI LUT: ")
    assert image.voi_luts


def test_shortcut_dialog_is_grouped_and_names_the_presets(qtbot, window, corpus_dir):
    path = corpus_dir / "corpus" / CORPUS_FILES["two_windows"]
    _open(qtbot, window, path)
    window.show_shortcuts()
    dialog = window._shortcuts_dialog
    table = dialog.table
    assert dialog.groups[:3] == ["File", "Navigate", "Window/level"] and "Mouse" in dialog.groups
    titles = [table.item(r, 0).text() for r in range(table.rowCount())
              if table.columnSpan(r, 0) == 2]
    assert titles == dialog.groups
    texts = [table.item(r, 1).text() for r in range(table.rowCount()) if table.item(r, 1)]
    assert "Window preset 1: WINDOW1" in texts and "Window preset 2: WINDOW2" in texts
    dialog.close()


# =========================================================================== 13 command line
def test_a_mistyped_command_is_an_unknown_command_with_status_2(capsys):
    from cxr_viewer.cli import main

    assert main(["predcit", "x"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'predcit'" in err and "did you mean 'predict'" in err
    assert "gui, info, render, predict" in err

