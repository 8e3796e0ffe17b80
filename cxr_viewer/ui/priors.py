"""Compare with prior, beyond the open folders: the local cache and the PACS (issue 14).

When a dated study with a Patient ID is shown, :class:`PriorLookup` runs
:func:`cxr_viewer.net.priors.look_for_prior` on its own worker (never the GUI thread, never the
TensorFlow thread): the local study cache first (a prior there is offered at once), then, when
at least one DICOM node is configured and "Look for priors on the PACS" is on (Reading menu,
setting ``priors/query_pacs``, on by default), a study-level query of every node and the
retrieve of the most recent earlier study into the cache. The reading workflow hangs what is
found on the left (:meth:`ReadingWorkflow.offer_prior`) when it is more recent than a prior from
the open folders.

Results carry the key of the study they were looked up for; one that arrives after the user
moved to another study is dropped (``dropped`` signal) but remembered, so going back to that
study hangs its prior at once. With no node configured nothing connects anywhere.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtGui import QAction

from cxr_viewer.ui.workers import TaskRunner
from cxr_viewer.worklist import StudyRef

log = logging.getLogger(__name__)

SETTING = "priors/query_pacs"


class PriorLookup(QObject):
    """See the module docstring. ``workflow`` is the window's ReadingWorkflow."""

    found = Signal(str, object, str)  # study key, StudyRef (prior with local paths), source
    retrieving = Signal(str, str)  # study key, node label: a newer prior is being retrieved
    dropped = Signal(str)  # study key: its result arrived after the user moved on
    finished = Signal(str, object)  # study key, PriorResult

    def __init__(self, workflow) -> None:
        super().__init__(workflow)
        self.workflow = workflow
        self.window = workflow.window
        self.runner = TaskRunner(self, max_threads=2)
        #: study key -> the prior found outside the open folders (None: looked, none found)
        self.known: dict[str, StudyRef | None] = {}
        self.sources: dict[str, str] = {}
        self.lookups = 0  # how many lookups were started (tests)
        self.pacs_lookups = 0  # ... of which asked a PACS
        self._inflight: set[str] = set()
        self._current: str | None = None
        self._cancel = threading.Event()
        value = str(self.window.settings.value(SETTING, "true")).lower()
        self.query_pacs = value != "false"
        self.window.installEventFilter(self)

    # ------------------------------------------------------------------ menu and setting
    def install(self, menu) -> None:
        act = QAction("Look for priors on the PACS", self.window)
        act.setCheckable(True)
        act.setChecked(self.query_pacs)
        act.setToolTip("When a DICOM node is configured: query it for the patient's earlier "
                       "studies and retrieve the most recent as the prior")
        act.toggled.connect(self.set_query_pacs)
        menu.addAction(act)
        self.action = act

    def set_query_pacs(self, on: bool) -> None:
        self.query_pacs = bool(on)
        self.window.settings.setValue(SETTING, "true" if on else "false")
        # looked-up "no prior" answers may change: look again next time a study is shown
        self.known = {k: v for k, v in self.known.items() if v is not None}

    # ------------------------------------------------------------------ lookup
    def best(self, study: StudyRef | None, prior: StudyRef | None) -> StudyRef | None:
        """The prior to hang now for ``study``: ``prior`` (open folders) or a more recent one
        already found in the cache / on the PACS; starts the lookup the first time the study is
        shown. ``study`` None (no study, or compare off) only records that nothing is wanted."""
        self._current = study.key if study is not None else None
        if study is None or not study.patient_id.strip() or study.date is None:
            return prior  # no Patient ID or no date (PNG, JPEG): never paired, nothing asked
        key = study.key
        if key in self.known:
            ext = self.known[key]
            if ext is not None and not all(Path(p).is_file() for p in ext.paths):
                del self.known[key]  # evicted from the cache since: look again
            else:
                return self._newer(prior, ext)
        if key not in self._inflight:
            self._start(study, prior)
        return prior

    @staticmethod
    def _newer(a: StudyRef | None, b: StudyRef | None) -> StudyRef | None:
        if a is None or b is None:
            return a or b
        if a.key == b.key:
            return a  # the same study open in the browser: its own paths
        return b if (b.date, b.key) > (a.date, a.key) else a

    def _nodes(self) -> tuple[list, Any, Any]:
        """The configured nodes to ask (none when the setting is off or nothing is configured)."""
        if not self.query_pacs:
            return [], None, None
        from cxr_viewer.net.config import NodeStore
        from cxr_viewer.net.errors import NetError

        try:
            store = NodeStore.load()
        except NetError as exc:
            self._say(f"Priors on the PACS: {exc}", 10000)
            return [], None, None
        if not store.nodes:
            return [], store.settings, None
        pacs = getattr(self.window, "pacs", None)
        secrets = getattr(pacs, "secrets", None)
        if secrets is None:
            from cxr_viewer.net.config import SecretStore

            secrets = SecretStore(prompt=None)
        return list(store.nodes), store.settings, secrets

    def _cache(self, settings):
        from cxr_viewer.net.cache import StudyCache, default_cache_dir
        from cxr_viewer.net.config import NetSettings

        limit = (settings or NetSettings()).cache_limit_mb * 1024 * 1024
        folder = default_cache_dir()
        cache = getattr(self, "_study_cache", None)
        if cache is None or cache.folder != folder or cache.limit_bytes != limit:
            # one instance for every lookup: a study being retrieved is never evicted by another
            cache = self._study_cache = StudyCache(folder, limit)
        return cache

    def _start(self, study: StudyRef, prior: StudyRef | None) -> None:
        from cxr_viewer.net.priors import look_for_prior

        nodes, settings, secrets = self._nodes()
        cache = self._cache(settings)
        key = study.key
        self._inflight.add(key)
        self.lookups += 1
        if nodes:
            self.pacs_lookups += 1
        cancel = self._cancel

        def work(context) -> Any:
            return look_for_prior(
                study, cache, nodes, settings, secrets,
                have=prior.date if prior is not None else None,
                report=context.progress, still_wanted=lambda: self._current == key,
                cancel=cancel)

        self.runner.submit(f"prior:{key}", work, with_context=True,
                           on_progress=self._on_event, on_result=self._on_result,
                           on_error=lambda exc, k=key: self._on_error(k, exc))

    # ------------------------------------------------------------------ results (GUI thread)
    def _say(self, text: str, ms: int = 6000) -> None:
        self.window.statusBar().showMessage(text, ms)

    def _on_event(self, event) -> None:
        if event.for_study != self._current:
            return  # about a study no longer shown: nothing to say
        if event.kind == "cache" and event.ref is not None:
            self._offer(event.for_study, event.ref, event.source)
        elif event.kind == "querying":
            self._say(f"Looking for priors on {event.source}...")
        elif event.kind == "retrieving":
            if event.done == 0:
                self.retrieving.emit(event.for_study, event.source)
            total = f"/{event.total}" if event.total else ""
            self._say(f"Retrieving the prior from {event.source}: {event.done}{total} image(s)")
        elif event.kind == "error":
            self._say(f"Prior lookup: {event.text}", 15000)

    def _on_result(self, result) -> None:
        key = result.for_study
        self._inflight.discard(key)
        if not result.skipped and not (result.errors and result.ref is None):
            self.known[key] = result.ref  # a failed node is asked again next time
            if result.ref is not None:
                self.sources[key] = result.source
        self.finished.emit(key, result)
        if key != self._current:
            if result.ref is not None:
                log.info("prior for %s arrived after the user moved on: dropped", key)
                self.dropped.emit(key)
            return
        if result.ref is not None:
            self._offer(key, result.ref, result.source)
            if result.source != "local cache":
                self._say(f"Prior retrieved from {result.source}", 8000)
        elif result.errors:
            self._say(f"Prior lookup failed: {result.errors[0]}", 15000)
        elif result.queried:
            self._say(f"No earlier study on {', '.join(result.queried)}", 5000)

    def _on_error(self, key: str, exc: BaseException) -> None:
        self._inflight.discard(key)
        log.error("prior lookup failed", exc_info=exc)
        if key == self._current:
            self._say(f"Prior lookup failed: {type(exc).__name__}: {exc}", 15000)

    def _offer(self, key: str, ref: StudyRef, source: str) -> None:
        if self.workflow.offer_prior(key, ref):
            if source == "local cache":
                self._say("Prior from the local study cache", 5000)
            self.found.emit(key, ref, source)

    # ------------------------------------------------------------------ shutdown
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if obj is self.window and event.type() == QEvent.Type.Close:
            self.shutdown()
        return False

    def shutdown(self) -> None:
        self._cancel.set()  # a retrieve in progress stops (the study stays incomplete)
        self.runner.shutdown(5000)
