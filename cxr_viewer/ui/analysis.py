"""AnalysisController: the model's second opinion, computed off the GUI thread.

Threads: every TensorFlow call (model load, graph tracing, predict, every heat-map method) runs
on the one dedicated TensorFlow thread of :mod:`cxr_viewer.inference.tfthread`, in submission
order, never on a QThreadPool thread (TensorFlow's pybind11 error path crashes on Qt's foreign
threads, and two threads tracing one ``tf.function`` at once crash it too).  Each job's events
come back to the GUI thread through a Qt signal (queued connection: the signal object lives in
the GUI thread, the TensorFlow thread emits it).

* ``load_model(path)`` loads a bundle folder (or a bare ``.keras``/``.h5`` file with a card
  preset) on the TensorFlow thread, then traces the prediction and fast Grad-CAM graphs there,
  *before* the model is announced: every analysis is queued behind the warm-up, none runs
  beside it.  The window is up before TensorFlow is imported.
* ``analyse(image)`` runs predict, then all-label heat maps.  Opening another image makes the
  old job stale: it stops between steps, and anything it still delivers is dropped (generation
  counters, and the image id), never shown on the wrong image.
* ``request_cams(method, finding=None)`` recomputes the heat maps of the current image with
  another method: all findings for the fast Grad-CAM, the finding looked at for the slow
  tf-keras-vis methods (results per method are remembered for the current image).
* Every failure becomes ``failed(str)`` with a message naming the file and the cause, and
  ``statusChanged("Failed: ...")``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from cxr_viewer.inference import tfthread

log = logging.getLogger(__name__)

STATUS_LOADING = "Loading model..."
STATUS_ANALYSING = "Analysing..."
STATUS_HEATMAPS = "Computing heat maps..."
STATUS_DONE = "Done"
STATUS_NO_MODEL = "No model loaded"

Steps = Callable[[], Iterator[tuple[str, Any]]]


def error_message(exc: BaseException) -> str:
    """One line for the user: our errors already name the file and the cause."""
    from cxr_viewer.errors import CxrError

    if isinstance(exc, CxrError):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _JobSignals(QObject):
    # (job kind, generations at submit, event kind, payload); created in the GUI thread
    event = Signal(object)


def _run_job(kind: str, tag: Any, steps: Steps, alive: Callable[[], bool],
             signals: _JobSignals) -> None:
    """Runs on the TensorFlow thread: a generator of (event kind, payload) steps, stopping
    between steps once stale; every event goes to the GUI thread through ``signals``."""
    emit = signals.event.emit
    try:
        if alive():
            for event, payload in steps():
                emit((kind, tag, event, payload))
                if not alive():
                    break
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the GUI thread
        emit((kind, tag, "error", exc))
    finally:
        emit((kind, tag, "done", None))


class AnalysisController(QObject):
    """Loads the model and analyses images in the background (see the module docstring)."""

    statusChanged = Signal(str)
    modelLoaded = Signal(object)  # ModelCard
    predictionReady = Signal(object)  # Prediction
    camsReady = Signal(object)  # CamResult
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # The process's one TensorFlow thread: jobs run one at a time, in submission order.
        self._executor = tfthread.acquire_executor()
        self._released = False
        self._bundle: Any = None
        self._model_gen = 0
        self._image_gen = 0
        self._cams_gen = 0
        self._image: Any = None
        self._method = "gradcam"
        self._prediction: Any = None
        self._focus: str | None = None  # the finding the user looks at (slow methods)
        self._cams: dict[str, Any] = {}  # method -> CamResult of the current image
        self._complete: set[str] = set()  # methods whose maps cover every scored finding
        self._last_cams: Any = None
        self._predicting = False  # a prediction of the current image is queued or running
        # method -> (cams generation, scope) of the job computing it
        self._pending_cams: dict[str, tuple[int, str | None]] = {}
        self._loading = False
        self._live: set[_JobSignals] = set()

    # ---- state ---------------------------------------------------------------------------
    @property
    def bundle(self) -> Any:
        """The loaded ModelBundle, or None."""
        return self._bundle

    @property
    def card(self) -> Any:
        return None if self._bundle is None else self._bundle.card

    @property
    def method(self) -> str:
        return self._method

    @property
    def image(self) -> Any:
        return self._image

    def is_busy(self) -> bool:
        """True while any worker job (load, warm-up, analysis) is queued or running."""
        return bool(self._live)

    # ---- jobs ----------------------------------------------------------------------------
    def _submit(self, kind: str, tag: Any, steps: Steps, alive: Callable[[], bool]) -> None:
        if self._released:
            return
        signals = _JobSignals()  # created here: lives in the GUI thread, so delivery is queued
        signals.event.connect(self._on_event)
        self._live.add(signals)
        future = self._executor.submit(_run_job, kind, tag, steps, alive, signals, owner=self)
        # a job dropped before it started never says "done": forget its signals then
        future.add_done_callback(
            lambda f, s=signals: f.cancelled() and self._live.discard(s))

    @Slot(object)
    def _on_event(self, event: tuple[str, Any, str, Any]) -> None:
        kind, tag, what, payload = event
        if what == "done":
            sender = self.sender()
            self._live.discard(sender)  # type: ignore[arg-type]
            if kind == "analysis" and tag[0] == self._image_gen:
                _, cams_gen, predict, method = tag
                self._predicting = self._predicting and not predict
                if self._pending_cams.get(method, (None,))[0] == cams_gen:
                    del self._pending_cams[method]
            return
        handler = getattr(self, f"_on_{kind}_event")
        handler(tag, what, payload)

    # ---- model ---------------------------------------------------------------------------
    def load_model(self, path: str | Path, card: Any = None) -> None:
        """Load a bundle folder, or a bare ``.keras``/``.h5`` file with ``card`` (default: the
        seed-project preset), in the background.  ``modelLoaded(card)`` follows, or ``failed``."""
        self._model_gen += 1
        gen = self._model_gen
        self._bundle = None
        self._loading = True
        self._forget_results()
        self.statusChanged.emit(STATUS_LOADING)
        target = Path(path)

        def steps() -> Iterator[tuple[str, Any]]:
            from cxr_viewer.inference.bundle import load_any

            bundle = load_any(target, card)
            # trace the prediction and Grad-CAM graphs once, on this thread, before the model
            # is announced: no analysis is accepted before, none runs beside the tracing
            bundle.warm_up(cams=True)
            yield "loaded", bundle

        self._submit("load", gen, steps, lambda: gen == self._model_gen)

    def set_bundle(self, bundle: Any) -> None:
        """Use an already loaded ModelBundle (tests, the self-test); its graphs are traced on the
        TensorFlow thread ahead of any analysis (the queue keeps the order)."""
        self._model_gen += 1
        self._loading = False
        gen = self._model_gen
        self._submit("warm", gen, self._warm_steps(bundle), lambda: gen == self._model_gen)
        self._install(bundle)

    def _on_load_event(self, gen: int, what: str, payload: Any) -> None:
        if gen != self._model_gen:
            return  # a newer load_model() superseded this one
        self._loading = False
        if what == "error":
            self._fail(payload, prefix="Could not load the model: ")
            return
        self._install(payload)

    def _install(self, bundle: Any) -> None:
        self._bundle = bundle
        self._forget_results()
        card = bundle.card
        self.statusChanged.emit(f"Model ready: {card.name} {card.version}")
        self.modelLoaded.emit(card)
        if self._image is not None and self._bundle is bundle:
            self.analyse(self._image)

    @staticmethod
    def _warm_steps(bundle: Any) -> Steps:
        def steps() -> Iterator[tuple[str, Any]]:
            bundle.warm_up()
            yield "warmed", None

        return steps

    def _on_warm_event(self, gen: int, what: str, payload: Any) -> None:
        if gen == self._model_gen and what == "error":
            self._fail(payload, prefix="Heat-map preparation failed: ")

    # ---- analysis ------------------------------------------------------------------------
    def _forget_results(self) -> None:
        self._image_gen += 1
        self._cams_gen += 1
        self._prediction = None
        self._cams = {}
        self._complete = set()
        self._last_cams = None
        self._predicting = False
        self._pending_cams = {}

    def analyse(self, image: Any) -> None:
        """Analyse ``image`` (an ImageData): ``predictionReady`` then ``camsReady``.

        The previous image's job becomes stale.  Asking again for the image already being
        analysed does nothing; asking for an analysed image re-emits its results.
        """
        same = self._image is not None and image.image_id == self._image.image_id
        if not same:
            self._image = image
            self._forget_results()
        if self._bundle is None:
            self.statusChanged.emit(STATUS_LOADING if self._loading else STATUS_NO_MODEL)
            return
        if same and self._prediction is not None:
            self.predictionReady.emit(self._prediction)
            self._last_cams = None  # re-emit the heat maps too
            self.request_cams(self._method)
            return
        if same and self._predicting:
            return  # already on its way
        self._start(predict=True, method=self._method, scope=self._scope(self._method))

    def request_cams(self, method: str, finding: str | None = None) -> None:
        """Heat maps of the current image with ``method``.

        ``gradcam`` (the fast path) computes every finding at once.  The tf-keras-vis methods
        (``gradcam++``, ``scorecam``, ``saliency``) take seconds per finding on a DenseNet, so
        they compute the finding being looked at: ``finding`` (remembered for the next images),
        else the top-ranked one; ask again with another finding to add its map.  Results are
        remembered for the current image; a request already satisfied re-emits nothing new.
        """
        from cxr_viewer.inference.gradcam import METHODS

        if method not in METHODS:
            self.failed.emit(f"unknown heat-map method {method!r}")
            return
        self._method = method
        if finding is not None:
            self._focus = finding
        if self._image is None or self._bundle is None:
            return
        scope = self._scope(method)
        cached = self._cams.get(method)
        if cached is not None and (
            method in self._complete if scope is None else scope in cached.maps
        ):
            self._cams_gen += 1  # an older request must not land after this one
            if cached is not self._last_cams:
                self._last_cams = cached
                self.camsReady.emit(cached)
            self.statusChanged.emit(STATUS_DONE)
            return
        if self._pending_cams.get(method) == (self._cams_gen, scope):
            return  # the latest request is this one, already on its way
        self._start(predict=False, method=method, scope=scope)

    def set_focus(self, finding: str | None) -> None:
        """The finding the reader looks at (the slow methods compute it first); None: the
        top-ranked finding of each image."""
        self._focus = finding

    def _scope(self, method: str) -> str | None:
        """None: every finding; a name: that finding; "": the top-ranked one (after predict)."""
        if method == "gradcam" or self._bundle is None:
            return None
        scored = self._bundle.card.scored_findings
        if self._focus in scored:
            return self._focus
        if self._prediction is not None:
            return self._prediction.heatmap_subject()
        return ""

    def _start(self, predict: bool, method: str, scope: str | None) -> None:
        bundle, image = self._bundle, self._image
        self._cams_gen += 1
        image_gen, cams_gen = self._image_gen, self._cams_gen
        self._pending_cams[method] = (cams_gen, scope)
        self._predicting = self._predicting or predict
        self.statusChanged.emit(STATUS_ANALYSING if predict else STATUS_HEATMAPS)

        def image_alive() -> bool:
            return image_gen == self._image_gen

        def steps() -> Iterator[tuple[str, Any]]:
            prediction = None
            if predict:
                prediction = bundle.predict(image)
                yield "prediction", prediction
            if image_alive() and cams_gen == self._cams_gen:
                findings = None if scope is None else [scope] if scope else None
                if scope == "" and prediction is not None:
                    subject = prediction.heatmap_subject()
                    findings = [subject] if subject else None
                result = bundle.cams(image, findings=findings, method=method)
                yield "cams", (result, findings is None)

        tag = (image_gen, cams_gen, predict, method)
        self._submit("analysis", tag, steps, image_alive)

    def _on_analysis_event(self, tag: tuple[int, int, bool, str], what: str, payload: Any) -> None:
        from cxr_viewer.inference.gradcam import merge_cam_maps
        from cxr_viewer.inference.results import CamResult

        image_gen, cams_gen, _predict, method = tag
        image = self._image
        if image_gen != self._image_gen or image is None:
            return  # stale: the user moved to another image
        if what == "error":
            self._fail(payload)
            return
        result = payload[0] if what == "cams" else payload
        if getattr(result, "image_id", None) != image.image_id:
            return  # belt and braces: never show A's results on B
        if what == "prediction":
            self._prediction = payload
            # a slow-method job asked for "the top finding": say which, so that a request for
            # that finding (the panel selects it) waits for this job instead of repeating it
            subject = payload.heatmap_subject()
            for m, (gen, scope) in list(self._pending_cams.items()):
                if scope == "" and subject:
                    self._pending_cams[m] = (gen, subject)
            self.predictionReady.emit(payload)
            self.statusChanged.emit(STATUS_HEATMAPS)
        elif what == "cams":
            complete = payload[1]
            old = self._cams.get(method)
            if old is not None and not complete:
                result = CamResult(result.image_id, result.method,
                                   merge_cam_maps(old.maps, result.maps), result.note)
            # remembered under the method asked for (a no-conv model answers with saliency)
            self._cams[method] = result
            if complete:
                self._complete.add(method)
            if cams_gen != self._cams_gen:
                return  # a newer heat-map request is on its way
            self._last_cams = result
            self.camsReady.emit(result)
            self.statusChanged.emit(STATUS_DONE)

    def cancel(self) -> None:
        """Forget the current image; whatever its job still delivers is dropped."""
        self._image = None
        self._forget_results()

    # ---- errors and shutdown ---------------------------------------------------------------
    def _fail(self, exc: BaseException, prefix: str = "") -> None:
        from cxr_viewer.errors import CxrError

        if not isinstance(exc, CxrError | ValueError):
            log.error("analysis failed", exc_info=exc)
        from cxr_viewer.inference.applicability import NotApplicable

        message = prefix + error_message(exc)
        if isinstance(exc, NotApplicable):  # a deliberate refusal, not a failure
            self.statusChanged.emit(f"Not analysed: {exc.cause}")
        else:
            self.statusChanged.emit(f"Failed: {message}")
        self.failed.emit(message)

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Drop queued work and wait for the running job (TensorFlow calls cannot be
        interrupted); then let go of the TensorFlow thread (the last user stops it)."""
        self._model_gen += 1
        self._forget_results()
        if self._released:
            return
        self._executor.discard(self)
        self._executor.wait_idle(self, timeout_ms / 1000.0)
        self._released = True
        tfthread.release_executor(timeout_ms / 1000.0)
        self._live.clear()  # dropped jobs never report "done"
