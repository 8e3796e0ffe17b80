"""AnalysisController: background load/analysis, stale-result dropping, cancellation, errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cxr_viewer.errors import ImageRefused
from cxr_viewer.inference.predict import build_prediction
from cxr_viewer.inference.results import CamResult
from cxr_viewer.ui.analysis import STATUS_ANALYSING, STATUS_DONE, STATUS_LOADING, AnalysisController
from tests.inference_testkit import blob_image, cam_model, gray_image, vindr_card, write_bundle

pytestmark = pytest.mark.gui

SCORED = ("Cardiomegaly", "Nodule/Mass")


class FakeBundle:
    """Stands in for a ModelBundle; ``gate`` makes a chosen image's prediction wait."""

    def __init__(self, fail_for: str | None = None) -> None:
        self.card = vindr_card(findings=SCORED)
        self.calls: list[tuple] = []  # (what, image path, method[, findings])
        self.lock = threading.Lock()
        self.gate: dict[str, threading.Event] = {}
        self.started: dict[str, threading.Event] = {}
        self.fail_for = fail_for
        self.warmed = threading.Event()

    def hold(self, path: str) -> tuple[threading.Event, threading.Event]:
        self.gate[path], self.started[path] = threading.Event(), threading.Event()
        return self.started[path], self.gate[path]

    def warm_up(self, cams: bool = True) -> None:
        self.warmed.set()

    def predict(self, image):
        with self.lock:
            self.calls.append(("predict", image.path, ""))
        if image.path in self.started:
            self.started[image.path].set()
            assert self.gate[image.path].wait(10)
        if image.path == self.fail_for:
            raise ImageRefused(image.path, "pixel data is truncated")
        return build_prediction(self.card, np.array([0.7, 0.2]), image.image_id)

    def cams(self, image, findings=None, method="gradcam"):
        with self.lock:
            self.calls.append(("cams", image.path, method, tuple(findings or ())))
        maps = {f: np.zeros(image.shape, np.float32) for f in findings or SCORED}
        return CamResult(image.image_id, method, maps)


@pytest.fixture
def controller(qtbot):
    ctl = AnalysisController()
    yield ctl
    ctl.shutdown()
    qtbot.waitUntil(lambda: not ctl.is_busy(), timeout=10000)
    ctl.deleteLater()


def _record(ctl):
    got = {"prediction": [], "cams": [], "status": [], "failed": []}
    ctl.predictionReady.connect(lambda p: got["prediction"].append(p))
    ctl.camsReady.connect(lambda c: got["cams"].append(c))
    ctl.statusChanged.connect(lambda s: got["status"].append(s))
    ctl.failed.connect(lambda m: got["failed"].append(m))
    return got


def _image(name: str, shape=(40, 30)):
    return gray_image(blob_image(shape, (shape[0] // 2, shape[1] // 2), 5), path=name)


@pytest.mark.slow
def test_real_bundle_loads_in_background_and_analyses(controller, qtbot, tmp_path):
    folder = write_bundle(tmp_path / "bundle", cam_model(32), vindr_card(32))
    got = _record(controller)
    with qtbot.waitSignal(controller.modelLoaded, timeout=60000) as loaded:
        controller.load_model(str(folder))
        assert got["status"] == [STATUS_LOADING]  # said at once, before TensorFlow works
    assert loaded.args[0].name == "Tiny test model"
    image = _image("a.png", (70, 50))
    with qtbot.waitSignal(controller.camsReady, timeout=60000):
        controller.analyse(image)
    [pred], [cams] = got["prediction"], got["cams"]
    assert pred.image_id == cams.image_id == image.image_id
    assert len(cams.maps) == 14 and cams.maps["ILD"].shape == (70, 50)
    assert got["status"][-3:] == [STATUS_ANALYSING, "Computing heat maps...", STATUS_DONE]
    assert not got["failed"]


def test_switching_image_drops_the_old_results_and_skips_its_heat_maps(controller, qtbot):
    fake = FakeBundle()
    controller.set_bundle(fake)
    got = _record(controller)
    a, b = _image("A"), _image("B")
    started, release = fake.hold("A")
    controller.analyse(a)
    qtbot.waitUntil(started.is_set, timeout=5000)  # A's prediction is running
    controller.analyse(b)  # the user moved on
    release.set()
    qtbot.waitUntil(lambda: len(got["cams"]) == 1 and not controller.is_busy(), timeout=10000)
    assert [p.image_id for p in got["prediction"]] == [b.image_id]
    assert [c.image_id for c in got["cams"]] == [b.image_id]
    # A's job stopped after its (uninterruptible) prediction: no heat maps computed for A
    assert not [c for c in fake.calls if c[0] == "cams" and c[1] == "A"]
    assert ("predict", "B", "") in fake.calls and ("cams", "B", "gradcam", ()) in fake.calls


def test_cancel_drops_whatever_is_in_flight(controller, qtbot):
    fake = FakeBundle()
    controller.set_bundle(fake)
    got = _record(controller)
    started, release = fake.hold("A")
    controller.analyse(_image("A"))
    qtbot.waitUntil(started.is_set, timeout=5000)
    controller.cancel()
    release.set()
    qtbot.waitUntil(lambda: not controller.is_busy(), timeout=10000)
    assert got["prediction"] == [] and got["cams"] == []


def test_errors_become_a_failed_message(controller, qtbot):
    controller.set_bundle(FakeBundle(fail_for="broken.dcm"))
    got = _record(controller)
    with qtbot.waitSignal(controller.failed, timeout=10000) as failed:
        controller.analyse(_image("broken.dcm"))
    assert failed.args[0] == "broken.dcm: pixel data is truncated"
    assert got["status"][-1] == "Failed: broken.dcm: pixel data is truncated"
    assert got["prediction"] == []


def test_stale_error_is_dropped(controller, qtbot):
    fake = FakeBundle(fail_for="A")
    controller.set_bundle(fake)
    got = _record(controller)
    started, release = fake.hold("A")
    controller.analyse(_image("A"))
    qtbot.waitUntil(started.is_set, timeout=5000)
    b = _image("B")
    controller.analyse(b)
    release.set()
    qtbot.waitUntil(lambda: len(got["cams"]) == 1 and not controller.is_busy(), timeout=10000)
    assert got["failed"] == []
    assert got["cams"][0].image_id == b.image_id


def test_bad_model_path_fails_with_the_reason(controller, qtbot, tmp_path):
    with qtbot.waitSignal(controller.failed, timeout=60000) as failed:
        controller.load_model(str(tmp_path / "nowhere"))
    assert "model bundle not found" in failed.args[0] and "nowhere" in failed.args[0]
    assert controller.bundle is None


def test_image_opened_before_the_model_is_analysed_once_when_it_arrives(controller, qtbot):
    """The main window also calls analyse() from modelLoaded: still one prediction."""
    fake = FakeBundle()
    got = _record(controller)
    image = _image("early")
    controller.analyse(image)
    assert got["status"][-1] == "No model loaded"
    controller.modelLoaded.connect(lambda _card: controller.analyse(image))
    controller.set_bundle(fake)
    qtbot.waitUntil(lambda: len(got["cams"]) == 1 and not controller.is_busy(), timeout=10000)
    assert [c for c in fake.calls if c[0] == "predict"] == [("predict", "early", "")]
    assert fake.warmed.is_set()


def test_other_methods_are_computed_once_and_remembered(controller, qtbot):
    fake = FakeBundle()
    controller.set_bundle(fake)
    got = _record(controller)
    image = _image("x")
    controller.analyse(image)
    qtbot.waitUntil(lambda: len(got["cams"]) == 1 and not controller.is_busy(), timeout=10000)
    assert set(got["cams"][0].maps) == set(SCORED)  # the fast path: every finding at once
    # a slow method: the top-ranked finding only (Cardiomegaly, 0.7)
    with qtbot.waitSignal(controller.camsReady, timeout=10000) as cams:
        controller.request_cams("scorecam")
    assert cams.args[0].method == "scorecam" and cams.args[0].image_id == image.image_id
    assert list(cams.args[0].maps) == ["Cardiomegaly"]
    qtbot.waitUntil(lambda: not controller.is_busy(), timeout=10000)
    # another finding is added to what the method already has
    with qtbot.waitSignal(controller.camsReady, timeout=10000) as more:
        controller.request_cams("scorecam", "Nodule/Mass")
    assert set(more.args[0].maps) == {"Cardiomegaly", "Nodule/Mass"}
    qtbot.waitUntil(lambda: not controller.is_busy(), timeout=10000)
    with qtbot.assertNotEmitted(controller.camsReady, wait=100):
        controller.request_cams("scorecam", "Cardiomegaly")  # already shown: nothing new
    with qtbot.waitSignal(controller.camsReady, timeout=1000) as again:
        controller.request_cams("gradcam")  # remembered: no new work
    assert again.args[0].method == "gradcam"
    assert [c for c in fake.calls if c[0] == "cams"] == [
        ("cams", "x", "gradcam", ()),
        ("cams", "x", "scorecam", ("Cardiomegaly",)),
        ("cams", "x", "scorecam", ("Nodule/Mass",)),
    ]
    with qtbot.waitSignal(controller.failed, timeout=1000):
        controller.request_cams("lime")


def test_slow_method_follows_the_focused_finding_on_the_next_image(controller, qtbot):
    fake = FakeBundle()
    controller.set_bundle(fake)
    got = _record(controller)
    controller.request_cams("gradcam++", "Nodule/Mass")  # no image yet: remembered
    controller.analyse(_image("y"))
    qtbot.waitUntil(lambda: len(got["cams"]) == 1 and not controller.is_busy(), timeout=10000)
    assert list(got["cams"][0].maps) == ["Nodule/Mass"]
    assert ("cams", "y", "gradcam++", ("Nodule/Mass",)) in fake.calls
