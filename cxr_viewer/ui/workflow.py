"""The reading workflow of the main window (issue 14): viewport layouts with sync, the
compare-with-prior hanging protocol with the change column, the AI-sorted worklist with a
low-priority background pass, read/unread state, and prefetch of the next studies.

The science (pairing, change, ordering, read state, the memory-bounded cache) is in the Qt-free
:mod:`cxr_viewer.worklist`; this module only wires it to widgets.  The main window calls four
hooks: ``ReadingWorkflow(window)`` after making its ImageView, ``handlers()`` for the shortcut
actions, ``install()`` once menus and docks exist, and ``first_path(paths)`` after a scan.

Background pass, never delaying the image being read: the pass submits *one* prediction at a
time to the process's single TensorFlow thread, and only while that thread has nothing else
queued or running; the reader's own analysis therefore waits for at most one background
prediction (measured in ``benchmarks/bench_ui.py``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from cxr_viewer.ui.viewport_grid import LAYOUTS, Viewport, ViewportGrid
from cxr_viewer.worklist import (
    DEFAULT_CACHE_BYTES,
    LRUImageCache,
    ReadState,
    StudyRef,
    WorklistItem,
    compare_predictions,
    default_read_state_path,
    find_prior,
    flag_count,
    interval_text,
    next_unread,
    parse_da,
    sort_worklist,
    worklist_score,
)

log = logging.getLogger(__name__)

POLL_MS = 120  # how often the background pass looks for an idle TensorFlow thread
#: pass results arriving within this time share one study-list and progress update (every
#: Python -> Qt call of the GUI thread may wait for the GIL the TensorFlow thread holds)
PASS_REFRESH_MS = 250
PREFETCH_COUNT = 2
#: view actions that act on the active viewport (the window's own handler for the primary)
ROUTED_ACTIONS = {
    "zoom_in": lambda v: v.zoom_by(1.25),
    "zoom_out": lambda v: v.zoom_by(0.8),
    "fit": lambda v: v.fit(),
    "actual_size": lambda v: v.actual_size(),
    "rotate_cw": lambda v: v.rotate(True),
    "rotate_ccw": lambda v: v.rotate(False),
    "flip_h": lambda v: v.flip(True),
    "flip_v": lambda v: v.flip(False),
    "invert": lambda v: v.set_invert(not v.invert),
    "next_frame": lambda v: v.set_frame(v.frame + 1),
    "prev_frame": lambda v: v.set_frame(v.frame - 1),
    "reset_window": lambda v: v.reset_window(),
    "reset_view": lambda v: (v.reset_view(), v.reset_window()),
    "overlay_planes": lambda v: v.set_overlay_planes(not v.show_overlay_planes),
    **{f"preset_{n}": (lambda v, n=n: v.apply_preset(n)) for n in range(1, 10)},
}
CHANGE_COLOURS = {"new flag": "#ff6060", "resolved": "#60d060", "up": "#ffb060",
                  "down": "#80c0ff", "same": "#b0b0b0", "": "#808080"}


class _PassSignals(QObject):
    done = Signal(str, object)  # path, Prediction | Exception
    # a viewport's image analysed: path, image id, (Prediction, CamResult) | Exception
    viewDone = Signal(str, str, object)


class ComparisonTable(QTableWidget):
    """Current vs prior probability per finding with the change (new flag / resolved / up /
    down / same); shown in the findings panel while a prior is on screen."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 4, parent)
        self.setObjectName("prior_comparison")
        self.setHorizontalHeaderLabels(["Finding", "Current", "Prior", "Change"])
        self.verticalHeader().hide()
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, header.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, header.ResizeMode.ResizeToContents)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setMinimumHeight(150)
        self.rows: list = []
        self.caption = ""

    def show_rows(self, rows: list, caption: str = "") -> None:
        self.rows = list(rows)
        self.caption = caption
        self.setRowCount(0)
        for r in rows:
            i = self.rowCount()
            self.insertRow(i)
            cells = [r.finding,
                     "-" if r.current is None else f"{100 * r.current:.0f}%",
                     "-" if r.prior is None else f"{100 * r.prior:.0f}%",
                     r.change]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j == 3:
                    item.setForeground(QBrush(QColor(CHANGE_COLOURS.get(r.change, "#808080"))))
                    if r.change in ("new flag", "resolved"):
                        f = item.font()
                        f.setBold(True)
                        item.setFont(f)
                self.setItem(i, j, item)
        self.setVisible(bool(rows))

    def changes(self) -> dict[str, str]:
        return {r.finding: r.change for r in self.rows}


class ReadingWorkflow(QObject):
    """See the module docstring."""

    comparisonShown = Signal()
    passProgress = Signal(int, int)  # done, total

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        s = window.settings
        limit_mb = int(s.value("prefetch/limit_mb", DEFAULT_CACHE_BYTES >> 20))
        # the window's image cache becomes the memory-bounded LRU the prefetch fills
        window.cache = LRUImageCache(max_bytes=limit_mb << 20)
        self.grid = ViewportGrid(window.view)
        self.grid.loader = self.load_into
        window.setCentralWidget(self.grid)
        # beside the settings file (tests isolate both with CXR_VIEWER_SETTINGS_DIR)
        settings_file = Path(s.fileName()) if s.fileName() else None
        default_state = (settings_file.parent / "read-state.json" if settings_file
                         else default_read_state_path())
        self.read_state = ReadState(s.value("worklist/read_state_path", str(default_state)))
        self.predictions: dict[str, Any] = {}  # path -> Prediction (current image or pass)
        self.failures: dict[str, str] = {}  # path -> why the pass could not analyse it
        self.prior_vp: Viewport | None = None
        self.prior: StudyRef | None = None
        self.current_study: StudyRef | None = None
        self.protocol_layout = False  # the layout was chosen by the hanging protocol
        self.compare_enabled = True
        self.sort_by_score = False
        self._queue: list[str] = []  # paths waiting for the background pass
        self._pass_total = 0
        self._pass_done = 0
        self._pass_armed = False  # new studies join the pass until it is cancelled
        self._running: str | None = None
        # images shown in the other viewports, waiting for their prediction + heat maps
        self._view_queue: list[tuple[Viewport, Any]] = []
        self._running_view: str | None = None  # image id of the viewport job on the TF thread
        self._select_everywhere = False  # a change-table row: every viewport shows its finding
        self._signals = _PassSignals()
        self._signals.done.connect(self._on_pass_done)
        self._signals.viewDone.connect(self._on_view_done)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._pump)
        # pass results: one coalesced update of the study list and the progress
        self._pass_refresh = QTimer(self)
        self._pass_refresh.setSingleShot(True)
        self._pass_refresh.setInterval(PASS_REFRESH_MS)
        self._pass_refresh.timeout.connect(self._flush_pass_results)
        # study key -> (score text, bold, tree node) as shown in the browser
        self._shown: dict[str, tuple[str, bool, Any]] = {}

    # ================================================================== hooks
    def handlers(self) -> dict[str, Any]:
        h: dict[str, Any] = {f"layout_{n}": (lambda n=n: self.set_layout(n)) for n in LAYOUTS}
        h.update({
            "sync": lambda: self.set_sync(not self.grid.sync.sync_view),
            "compare_prior": lambda: self.set_compare(not self.compare_enabled),
            "next_unread": self.open_next_unread,
            "toggle_read": self.toggle_read,
            "worklist_pass": self.start_pass,
            "sort_worklist": lambda: self.set_sort(not self.sort_by_score),
        })
        return h

    def install(self) -> None:
        w = self.window
        a = w.actions
        for name in ("sync", "compare_prior", "sort_worklist"):
            a[name].setCheckable(True)
        a["sync"].setChecked(True)
        a["compare_prior"].setChecked(True)
        menu = w.menuBar().addMenu("&Reading")
        for name in [f"layout_{n}" for n in LAYOUTS] + [None, "sync", "compare_prior", None,
                                                        "worklist_pass", "sort_worklist",
                                                        "next_unread", "toggle_read"]:
            if name is None:
                menu.addSeparator()
            else:
                menu.addAction(a[name])
        menu.addSeparator()
        limit = menu.addAction("Prefetch memory limit...")
        limit.triggered.connect(self.ask_cache_limit)
        self.reading_menu = menu
        # priors from the local study cache and a PACS query (cxr_viewer.ui.priors)
        from cxr_viewer.ui.priors import PriorLookup

        self.priors = PriorLookup(self)
        self.priors.install(menu)
        # zoom, rotate, flip, invert, frames, presets 1-9, W, Esc, overlay planes, heat map:
        # on the active (outlined) viewport
        own = w._handlers()
        for name in [*ROUTED_ACTIONS, "heatmap"]:
            act = a.get(name)
            if act is None:
                continue
            act.triggered.disconnect()
            act.triggered.connect(lambda _=False, n=name, f=own[name]: self._route(n, f))
        # browser: drag images/series into viewports; a column with the AI score and flags
        tree = w.browser.tree
        tree.setDragEnabled(True)
        tree.setColumnCount(2)
        tree.header().setStretchLastSection(False)
        tree.header().setSectionResizeMode(0, tree.header().ResizeMode.Stretch)
        tree.header().setSectionResizeMode(1, tree.header().ResizeMode.ResizeToContents)
        # background pass progress and Cancel, under the study list
        bar = QWidget()
        row = QHBoxLayout(bar)
        row.setContentsMargins(0, 0, 0, 0)
        self.pass_label = QLabel("AI worklist: not run")
        # its text changes with every result: no relayout of the dock for that
        self.pass_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.pass_bar = QProgressBar()
        self.pass_bar.setMaximumHeight(14)
        self.pass_bar.setTextVisible(False)
        self.pass_cancel = QPushButton("Cancel")
        self.pass_cancel.clicked.connect(self.cancel_pass)
        self.pass_cancel.setEnabled(False)
        row.addWidget(self.pass_bar, 1)
        row.addWidget(self.pass_cancel)
        w.browser.layout().addWidget(self.pass_label)  # its own line: the whole dock width
        w.browser.layout().addWidget(bar)
        # the change since the prior, in the findings panel
        self.comparison = ComparisonTable()
        self.comparison.setVisible(False)
        self.comparison_label = QLabel("")
        self.comparison_label.setObjectName("prior_comparison_label")
        self.comparison_label.setWordWrap(True)
        self.comparison_label.setVisible(False)
        panel = w.findings_panel
        host = getattr(panel, "header_layout", None) or panel.layout()
        host.addWidget(self.comparison_label)
        host.addWidget(self.comparison)
        # follow the window
        w.imageShown.connect(self.on_image_shown)
        w.scanFinished.connect(self.on_scanned)
        if w.analysis is not None:
            w.analysis.predictionReady.connect(self._on_current_prediction)
        a["deidentify"].toggled.connect(self._on_deidentified)
        a["annotations"].toggled.connect(self.grid.set_annotations_visible)
        self.grid.sync.cursorMoved.connect(w.pixel_label.setText)
        # the export includes the change since the prior while a comparison is on screen
        window_export_request = w.export_request
        w.export_request = lambda: self.with_comparison(window_export_request())
        self._install_viewport_ai()
        self._timer.start()

    def first_path(self, paths: list[str]) -> str:
        """After a scan: the newest study that has a prior is read first (its prior hangs
        beside it), else the first image."""
        refs = self.study_refs()
        with_prior = [r for r in refs if find_prior(r, refs) is not None]
        if with_prior:
            newest = max(with_prior, key=lambda r: (r.date, r.key))
            if newest.paths:
                return newest.paths[0]
        return paths[0]

    def on_scanned(self) -> None:
        """New studies in the browser (opened or received): their score column and unread
        marks; while a pass is on (started, not cancelled) they join it."""
        if self._pass_armed:
            self.start_pass()
        self._refresh_browser()

    # ================================================================== layouts and sync
    def set_layout(self, name: str) -> None:
        self.protocol_layout = False
        self.grid.set_layout(name)
        if name == "1x1":
            self._hide_comparison()

    def _other_active(self) -> Viewport | None:
        """The active viewport when it is not the primary and shows an image."""
        active = self.grid.active
        if active is self.grid.primary or not active.isVisible() or active.view.image is None:
            return None
        return active

    def measured_view(self):
        """The view the measurements panel follows: the active viewport's when it shows an
        image, else the main view."""
        active = self._other_active()
        return active.view if active is not None else self.grid.primary.view

    def measured_caption(self) -> str:
        """Which image the measurements panel lists when it is not the main one: the viewport's
        title (e.g. the prior's date; none when de-identified), else "Other viewport"."""
        active = self._other_active()
        if active is None:
            return ""
        return active.title.text() if active.title.isVisible() else "Other viewport"

    def _on_measurements_changed(self, vp: Viewport) -> None:
        if self.window.measured_view() is vp.view:
            self.window._refresh_measurements()

    def _route(self, name: str, primary_handler) -> None:
        active = self._other_active()
        if active is None:
            primary_handler()
        elif name == "heatmap":
            self.toggle_viewport_heatmap(active)
        else:
            ROUTED_ACTIONS[name](active.view)

    def set_sync(self, on: bool) -> None:
        self.grid.sync.set_enabled(on)
        self.window.actions["sync"].setChecked(on)
        if on and self.grid.primary.view.image is not None:
            self.grid.sync.window_changed(self.grid.primary.view)
            self.grid.sync.view_changed(self.grid.primary.view)

    def load_into(self, vp: Viewport, path: str, title: str = "") -> None:
        """Load (worker) and show ``path`` in a non-primary viewport."""
        w = self.window
        w.runner.submit(f"viewport-{id(vp)}", w.cache.load, path,
                        on_result=lambda image: self.grid.show_in(vp, image, title or
                                                                  self._title_for(image.path)),
                        on_error=lambda exc: vp.view.set_placeholder(
                            f"could not open: {Path(path).name}: {exc}"))

    def _title_for(self, path: str) -> str:
        e = self.window.browser._entries.get(path)
        if e is None or self.window.deidentified:
            return ""
        return e.study_date and f"{parse_da(e.study_date) or e.study_date}"

    # ================================================================== studies
    def study_refs(self) -> list[StudyRef]:
        """Every study in the browser (open folders, files, received studies)."""
        studies: dict[str, dict] = {}
        for path in self.window.browser.image_paths():
            e = self.window.browser._entries[path]
            st = studies.setdefault(e.study_key, {"e": e, "paths": []})
            st["paths"].append(path)
        return [StudyRef(k, v["e"].patient_id, parse_da(v["e"].study_date), tuple(v["paths"]),
                         v["e"].modality, v["e"].study_label) for k, v in studies.items()]

    def study_of(self, path: str) -> StudyRef | None:
        e = self.window.browser._entries.get(path)
        if e is None:
            return None
        return next((r for r in self.study_refs() if r.key == e.study_key), None)

    # ================================================================== compare with prior
    def set_compare(self, on: bool) -> None:
        self.compare_enabled = bool(on)
        self.window.actions["compare_prior"].setChecked(self.compare_enabled)
        image = self.window.current_image
        if not on:
            self.prior = None
            self._hide_comparison()
            if self.protocol_layout:
                self.grid.set_layout("1x1")
                self.protocol_layout = False
        elif image is not None:
            self.on_image_shown(image)

    def on_image_shown(self, image) -> None:
        study = self.study_of(image.path)
        self.current_study = study
        if study is not None:
            self.read_state.set_read(study.key)
            self._refresh_browser()
        self.prefetch()
        refs = self.study_refs()
        prior = find_prior(study, refs) if (study is not None and self.compare_enabled) else None
        if hasattr(self, "priors"):  # a more recent prior already found in the cache / on the PACS
            prior = self.priors.best(study if self.compare_enabled else None, prior)
        self.prior = prior
        if prior is None:
            self._hide_comparison()
            self.grid.primary.set_title("")
            if self.protocol_layout:
                self.grid.set_layout("1x1")
                self.protocol_layout = False
            return
        self._hang_prior(study, prior)

    def offer_prior(self, study_key: str, prior: StudyRef) -> bool:
        """A prior found outside the open folders (local cache, PACS) for ``study_key``: hung
        when that study is still the one being read and the prior is more recent than the one on
        screen; a result for another study (the user moved on) is dropped. Returns whether it
        was hung."""
        study = self.current_study
        if study is None or study.key != study_key or not self.compare_enabled:
            return False
        if self.prior is not None and (self.prior.key == prior.key
                                       or (self.prior.date, self.prior.key) >= (prior.date,
                                                                                prior.key)):
            return False
        self.prior = prior
        self._hang_prior(study, prior)
        return True

    def _hang_prior(self, study: StudyRef, prior: StudyRef) -> None:
        # the hanging protocol: the most recent prior left, the current right
        vp = self.prior_vp or self.grid.secondary(0)
        self.prior_vp = vp
        order = [vp, self.grid.primary] + [v for v in self.grid.viewports
                                           if v not in (vp, self.grid.primary)]
        self.grid.set_layout("1x2", order)
        self.protocol_layout = True
        self.grid.sync.names = {id(vp.view): "prior", id(self.grid.primary.view): "current"}
        caption = interval_text(prior.date, study.date)
        deid = self.grid.deidentified  # (the window's flag follows the toggle later)
        self.prior_caption = caption
        self.grid.primary.set_title("Current" if deid else f"Current {study.date.isoformat()}")
        self.load_into(vp, prior.paths[0], "Prior" if deid else caption)
        self.request_prediction(prior.paths[0], urgent=True)
        self._update_comparison()

    def _hide_comparison(self) -> None:
        if hasattr(self, "comparison"):
            self.comparison.show_rows([])
            self.comparison_label.setVisible(False)
        if self.prior_vp is not None:
            self.prior_vp.set_title("")

    def _update_comparison(self) -> None:
        if not hasattr(self, "comparison") or self.prior is None:
            return
        cur_path = self.window.current_path
        cur = self.predictions.get(cur_path) if cur_path else None
        pri = self.predictions.get(self.prior.paths[0])
        caption = "Prior" if self.grid.deidentified else self.prior_caption
        self.comparison_label.setVisible(True)
        if cur is None or pri is None:
            why = self.failures.get(self.prior.paths[0])
            self.comparison_label.setText(
                f"Compared with {caption}: " + (f"prior not analysed ({why})" if why
                                                 else "waiting for the analysis..."))
            self.comparison.show_rows([])
            return
        self.comparison_label.setText(f"Change since the prior ({caption})")
        self.comparison.show_rows(compare_predictions(cur, pri), caption)
        self.comparisonShown.emit()

    def _on_current_prediction(self, prediction) -> None:
        image = self.window.current_image
        if image is None or prediction.image_id != image.image_id:
            return
        self.predictions[image.path] = prediction
        self._refresh_browser()
        self._update_comparison()

    def _on_deidentified(self, on: bool) -> None:
        self.grid.set_deidentified(on)
        if self.window.current_image is not None:
            self.on_image_shown(self.window.current_image)

    def with_comparison(self, request):
        """``request`` (an ExportRequest) with the comparison rows shown in the panel; the
        caption keeps no date (exports are de-identified by default), only the interval."""
        from dataclasses import replace

        if self.prior is None or not hasattr(self, "comparison") or not self.comparison.rows:
            return request
        caption = self.prior_caption
        if not request.include_patient_details:
            caption = "Prior, " + caption.split(", ", 1)[-1]
        return replace(request, comparison=tuple(self.comparison.rows),
                       comparison_caption=caption)

    # ================================================================== heat maps per viewport
    def _install_viewport_ai(self) -> None:
        """Every viewport shows its own image's heat map: the other viewports' images (the
        prior, a dragged image) are analysed (prediction + Grad-CAM) on the TensorFlow thread by
        the same idle-time pump as the worklist pass; results carry the image id and only land
        on the viewport still showing that image.

        The findings panel stays on the image being read (the current study) with the change
        since the prior, as a radiologist reads: a finding chosen there is shown on the current
        image and, side by side, on every other viewport whose heat map is on; a row of the
        change table shows that finding on the current image and the prior at once.  ``H``
        toggles the active viewport's own map (on another viewport: the finding shown on the
        current image, else that image's own top finding)."""
        w = self.window
        self.grid.imageShown.connect(self._on_viewport_image)
        self.grid.activeChanged.connect(self._on_active_changed)
        # the measurements panel lists the active viewport's measurements (M measures in all)
        self.grid.measurementsChanged.connect(self._on_measurements_changed)
        self.grid.activeChanged.connect(lambda _vp: w._refresh_measurements())
        self.grid.imageShown.connect(lambda _vp, _image: w._refresh_measurements())
        self.grid.layoutChanged.connect(lambda _name: self._request_visible())
        # the Presets menu names the active viewport's presets (its keys act there)
        self.grid.activeChanged.connect(lambda _vp: self._rebuild_preset_menu())
        self.grid.imageShown.connect(lambda _vp, _image: self._rebuild_preset_menu())
        w.imageShown.connect(lambda _image: self._rebuild_preset_menu())
        window_preset_names = w.preset_names  # Help -> Shortcuts names the active one's too
        w.preset_names = lambda: (self._preset_labels(self._other_active().view.image)
                                  if self._other_active() is not None else window_preset_names())
        self.comparison.cellClicked.connect(
            lambda row, _col: self.show_finding_everywhere(self.comparison.rows[row].finding))
        if w.analysis is not None:
            w.analysis.modelLoaded.connect(self._on_model_loaded)
        if w.has_findings_panel and w.analysis is not None:
            panel = w.findings_panel
            panel.findingSelected.connect(self._on_panel_finding)
            panel.overlayChanged.connect(lambda _ov: self._draw_others())
            panel.modeChanged.connect(lambda _m: self._reapply_mode())

    def others(self) -> list[Viewport]:
        """The visible viewports other than the primary that show an image."""
        return [vp for vp in self.grid.visible_viewports()
                if vp is not self.grid.primary and vp.view.image is not None]

    def _on_viewport_image(self, vp: Viewport, image) -> None:
        if vp.ai.overlay is not None and vp.ai.overlay.visible:
            vp.ai.overlay = replace(vp.ai.overlay, finding=self._follow_finding(vp))
        self.request_view_analysis(vp)
        self.draw_viewport(vp)

    def request_view_analysis(self, vp: Viewport) -> None:
        """Queue the prediction + heat maps of ``vp``'s image (once per image)."""
        image = vp.view.image
        if image is None or vp.ai.cams is not None or vp.ai.error:
            return
        if image.image_id == self._running_view:
            return
        if any(v is vp and i is image for v, i in self._view_queue):
            return
        self._view_queue = [(v, i) for v, i in self._view_queue if v is not vp]
        self._view_queue.append((vp, image))

    def _request_visible(self) -> None:
        for vp in self.others():
            self.request_view_analysis(vp)

    def _on_model_loaded(self, _card) -> None:
        """Another model: the other viewports' results of the old one are dropped."""
        for vp in self.grid.viewports:
            if vp is not self.grid.primary:
                vp.ai.reset(None)
                vp.ai.image_id = vp.view.image.image_id if vp.view.image is not None else None
                self.draw_viewport(vp)
        self._view_queue.clear()
        self._request_visible()

    def _on_view_done(self, path: str, image_id: str, result) -> None:
        self._running_view = None
        targets = [vp for vp in self.grid.viewports
                   if vp is not self.grid.primary and vp.ai.image_id == image_id
                   and vp.view.image is not None and vp.view.image.image_id == image_id]
        if isinstance(result, BaseException):
            from cxr_viewer.ui.analysis import error_message

            message = error_message(result)
            _, sep, cause = message.partition(": not analysed: ")
            for vp in targets:
                vp.ai.error = f"not analysed: {cause}" if sep else f"AI failed: {message}"
                self.draw_viewport(vp)
            if path not in self.predictions and path not in self.failures:
                self.failures[path] = message
                self._after_result(path)
            return
        prediction, cams = result
        if path not in self.predictions:  # the worklist and the change column use it too
            self.predictions[path] = prediction
            self._after_result(path)
        for vp in targets:  # none left: the viewport shows another image now; dropped
            vp.ai.prediction = self.window._with_mode(prediction)
            vp.ai.cams = cams
            ov = vp.ai.overlay
            if ov is not None and ov.visible and ov.finding is None:
                vp.ai.overlay = replace(ov, finding=self._follow_finding(vp))
            self.draw_viewport(vp)

    def _after_result(self, path: str) -> None:
        self._refresh_browser()
        if self.prior is not None and path == self.prior.paths[0]:
            self._update_comparison()

    def _follow_finding(self, vp: Viewport) -> str | None:
        """The finding a viewport shows when none was chosen for it: the one shown on the
        image being read (side-by-side comparison), else its own top-ranked finding."""
        from cxr_viewer.ui.heat_overlay import top_finding

        primary = self.window.overlay
        if primary is not None and primary.finding is not None:
            return primary.finding
        return top_finding(vp.ai.prediction)

    def _base_overlay(self):
        """The panel's display settings (colour map, opacity, threshold, scaling...), gradcam."""
        from cxr_viewer.imaging.heatmap import OverlaySettings

        w = self.window
        base = (w.findings_panel.overlay_settings() if w.has_findings_panel
                else w._overlay_settings())
        return replace(base if isinstance(base, OverlaySettings) else OverlaySettings(),
                       method="gradcam", pinned=False)

    def viewport_overlay(self, vp: Viewport):
        """``vp``'s own finding and visibility on the panel's display settings."""
        own = vp.ai.overlay
        base = self._base_overlay()
        if own is None:
            return replace(base, visible=False, finding=None)
        return replace(base, visible=own.visible, finding=own.finding)

    def set_viewport_finding(self, vp: Viewport, finding: str | None, visible: bool = True) -> None:
        own = vp.ai.overlay or self._base_overlay()
        vp.ai.overlay = replace(own, finding=finding, visible=visible)
        self.request_view_analysis(vp)
        self.draw_viewport(vp)

    def toggle_viewport_heatmap(self, vp: Viewport) -> None:
        """``H`` while ``vp`` (not the primary) is active: its own map on / off."""
        ov = self.viewport_overlay(vp)
        visible = not ov.visible
        finding = ov.finding or (self._follow_finding(vp) if visible else None)
        self.set_viewport_finding(vp, finding, visible)
        self.window.actions["heatmap"].setChecked(visible)

    def draw_viewport(self, vp: Viewport) -> None:
        from cxr_viewer.ui.heat_overlay import draw_heatmap

        ov = self.viewport_overlay(vp)
        if vp.ai.error and ov.visible:
            vp.view.set_heatmap(None, legend={"title": ov.finding or "Heat map",
                                              "note": vp.ai.error})
            return
        draw_heatmap(vp.view, vp.view.image, vp.ai.prediction, vp.ai.cams, ov)
        if vp is self.grid.active:
            self.window.actions["heatmap"].setChecked(ov.visible)

    def _draw_others(self) -> None:
        for vp in self.grid.viewports:
            if vp is not self.grid.primary and vp.view.image is not None:
                self.draw_viewport(vp)

    def _reapply_mode(self) -> None:
        for vp in self.grid.viewports:
            if vp is not self.grid.primary and vp.ai.prediction is not None:
                vp.ai.prediction = self.window._with_mode(vp.ai.prediction)
        self._draw_others()

    @staticmethod
    def _preset_labels(image) -> list[str]:
        from cxr_viewer.imaging.presets import presets_for

        return [p.label_for(image) if hasattr(p, "label_for") else p.label
                for p in presets_for(image)[:9]]

    def _rebuild_preset_menu(self) -> None:
        w = self.window
        active = self._other_active()
        if active is None:
            w._rebuild_preset_menu()
            return
        labels = self._preset_labels(active.view.image)
        w.preset_menu.clear()
        for i, label in enumerate(labels, start=1):
            act = w.preset_menu.addAction(f"&{i}  {label}")
            act.triggered.connect(w.actions[f"preset_{i}"].trigger)
        w.preset_menu.setEnabled(bool(labels))

    def _on_active_changed(self, vp: Viewport) -> None:
        on = (self.window._overlay_settings().visible if vp is self.grid.primary
              else self.viewport_overlay(vp).visible)
        self.window.actions["heatmap"].setChecked(on)

    def _on_panel_finding(self, finding: str) -> None:
        """A finding chosen in the panel (for the current image): the other viewports whose map
        is on show the same finding, side by side."""
        for vp in self.others():
            if self._select_everywhere or self.viewport_overlay(vp).visible:
                self.set_viewport_finding(vp, finding)

    def show_finding_everywhere(self, finding: str) -> None:
        """A row of the change table: that finding's map on the current image and the prior."""
        w = self.window
        if not w.has_findings_panel:
            return
        self._select_everywhere = True
        try:
            w.findings_panel.select_finding(finding)
        finally:
            self._select_everywhere = False

    # ================================================================== background pass
    def request_prediction(self, path: str, urgent: bool = False) -> None:
        if path in self.predictions or path in self.failures or path == self._running:
            return
        if path in self._queue:
            self._queue.remove(path)
        if urgent:
            self._queue.insert(0, path)
        else:
            self._queue.append(path)

    def start_pass(self) -> None:
        """Analyse the first image of every study in the browser, in the background."""
        todo = [r.paths[0] for r in self.study_refs()
                if r.paths and r.paths[0] not in self.predictions
                and r.paths[0] not in self.failures]
        self._pass_armed = True
        for p in todo:
            self.request_prediction(p)
        self._pass_total = self._pass_done + len(self._queue) + (1 if self._running else 0)
        self.pass_cancel.setEnabled(bool(self._queue))
        self._show_pass_progress()

    def cancel_pass(self) -> None:
        self._pass_armed = False
        self._queue.clear()
        self._pass_total = self._pass_done + (1 if self._running else 0)
        self.pass_cancel.setEnabled(False)
        self.pass_label.setText(f"AI worklist: cancelled ({self._pass_done} analysed)")

    def pass_pending(self) -> int:
        return len(self._queue) + (1 if self._running else 0)

    def _show_pass_progress(self) -> None:
        total = max(self._pass_total, 1)
        self.pass_bar.setRange(0, total)
        self.pass_bar.setValue(self._pass_done)
        left = self.pass_pending()
        self.pass_label.setText(f"AI worklist: {self._pass_done}/{self._pass_total}"
                                if left else f"AI worklist: {self._pass_done} analysed")
        self.passProgress.emit(self._pass_done, self._pass_total)

    def _pump(self) -> None:
        analysis = self.window.analysis
        if (self._running is not None or self._running_view is not None
                or not (self._queue or self._view_queue) or analysis is None):
            return
        bundle = analysis.bundle
        executor = getattr(analysis, "_executor", None)
        if bundle is None or executor is None or executor.busy():
            return  # the reader's own work (load, predict, heat maps) always goes first
        if self._pump_viewport(bundle, executor):
            return
        if not self._queue:
            return
        path = self._queue.pop(0)
        self._running = path
        cache, signals = self.window.cache, self._signals

        def job() -> None:  # on the TensorFlow thread
            try:
                image = cache.load(path)
                result: Any = bundle.predict(image)
            except BaseException as exc:  # noqa: BLE001 - reported in the GUI, never a crash
                result = exc
            signals.done.emit(path, result)

        executor.submit(job, owner=self)

    def _pump_viewport(self, bundle, executor) -> bool:
        """Start the next viewport job (the images on screen go before the worklist)."""
        signals = self._signals
        while self._view_queue:
            vp, image = self._view_queue.pop(0)
            if vp.view.image is not image or not vp.isVisible():
                continue  # the viewport shows another image now (or is hidden): dropped
            known = self.predictions.get(image.path)
            if getattr(known, "image_id", None) != image.image_id:
                known = None  # another load of that file: predicted again for this image id
            self._running_view = image.image_id

            def job(image=image, known=known) -> None:  # on the TensorFlow thread
                try:
                    prediction = known if known is not None else bundle.predict(image)
                    result: Any = (prediction, bundle.cams(image, method="gradcam"))
                except BaseException as exc:  # noqa: BLE001 - reported in the viewport
                    result = exc
                signals.viewDone.emit(image.path, image.image_id, result)

            executor.submit(job, owner=self)
            return True
        return False

    def _on_pass_done(self, path: str, result) -> None:
        self._running = None
        self._pass_done += 1
        if isinstance(result, BaseException):
            from cxr_viewer.ui.analysis import error_message

            self.failures[path] = error_message(result)
        else:
            self.predictions[path] = result
        if self.prior is not None and path == self.prior.paths[0]:
            self._update_comparison()
        if self.pass_pending():
            # more to come: the study list and progress follow in one update per
            # PASS_REFRESH_MS, not one per result (the reader's drag keeps the GUI thread)
            if not self._pass_refresh.isActive():
                self._pass_refresh.start()
        else:
            self._flush_pass_results()  # the pass is over: its final state at once

    def _flush_pass_results(self) -> None:
        self._pass_refresh.stop()
        if not self._queue:
            self.pass_cancel.setEnabled(False)
        self._show_pass_progress()
        self._refresh_browser()

    # ================================================================== worklist
    def worklist(self) -> list[WorklistItem]:
        items = []
        for i, r in enumerate(self.study_refs()):
            preds = [self.predictions[p] for p in r.paths if p in self.predictions]
            scores = [s for s in (worklist_score(p) for p in preds) if s is not None]
            items.append(WorklistItem(
                r.key, r.label, max(scores) if scores else None,
                max((flag_count(p) for p in preds), default=0),
                self.read_state.is_read(r.key), i))
        return items

    def set_sort(self, on: bool) -> None:
        self.sort_by_score = bool(on)
        self.window.actions["sort_worklist"].setChecked(self.sort_by_score)
        self._refresh_browser()

    def _refresh_browser(self) -> None:
        """Score, flags and unread (bold) per study in the browser; sorted when asked.  Only
        what changed touches the tree (each change repaints it), and it is re-ordered only
        when the order changed."""
        browser = self.window.browser
        tree = browser.tree
        items = self.worklist()
        by_key = {i.key: i for i in items}
        for key, node in browser._studies.items():
            item = by_key.get(key)
            if item is None:
                continue
            text = ""
            if item.score is not None:
                text = f"{100 * item.score:.0f}%"
                text += f"  {item.flags} flag{'s' if item.flags != 1 else ''}" if item.flags else ""
            shown = self._shown.get(key)
            if shown is not None and shown[2] is node and shown[:2] == (text, not item.read):
                continue
            if shown is None or shown[2] is not node:
                node.setToolTip(1, "AI worklist: Abnormal score (or the highest finding "
                                   "probability) and findings at or above threshold")
            if shown is None or shown[2] is not node or shown[0] != text:
                node.setText(1, text)
            if shown is None or shown[2] is not node or shown[1] != (not item.read):
                f = QFont(node.font(0))
                f.setBold(not item.read)
                node.setFont(0, f)
            self._shown[key] = (text, not item.read, node)
        if len(self._shown) > len(browser._studies):  # the browser was cleared / refilled
            self._shown = {k: v for k, v in self._shown.items() if k in browser._studies}
        if self.sort_by_score:
            order = [i.key for i in sort_worklist(items)]
            nodes = [browser._studies[k] for k in order if k in browser._studies]
            now = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
            if nodes == now[: len(nodes)]:
                return  # already in that order: no re-sort, no repaint
            current = tree.currentItem()
            tree.blockSignals(True)
            for node in nodes:
                tree.takeTopLevelItem(tree.indexOfTopLevelItem(node))
            for node in nodes:
                tree.addTopLevelItem(node)
                node.setExpanded(True)
                for j in range(node.childCount()):
                    node.child(j).setExpanded(True)
            if current is not None:
                tree.setCurrentItem(current)
            tree.blockSignals(False)

    def open_next_unread(self) -> None:
        cur = self.current_study.key if self.current_study is not None else None
        item = next_unread(self.worklist(), cur)
        if item is None:
            self.window.statusBar().showMessage("Worklist: every study is read", 4000)
            return
        ref = next(r for r in self.study_refs() if r.key == item.key)
        self.window.show_path(ref.paths[0])

    def toggle_read(self) -> None:
        if self.current_study is None:
            return
        key = self.current_study.key
        self.read_state.set_read(key, not self.read_state.is_read(key))
        self._refresh_browser()

    # ================================================================== prefetch
    def set_cache_limit_mb(self, mb: int) -> None:
        """Memory limit of the decoded-image cache (setting ``prefetch/limit_mb``)."""
        mb = max(64, int(mb))
        self.window.cache.set_limit(mb << 20)
        self.window.settings.setValue("prefetch/limit_mb", mb)

    def ask_cache_limit(self) -> None:
        from PySide6.QtWidgets import QInputDialog

        current = self.window.cache.max_bytes >> 20
        mb, ok = QInputDialog.getInt(self.window, "Prefetch memory limit",
                                     "Decoded images kept in memory (MB):", current, 64, 65536, 64)
        if ok:
            self.set_cache_limit_mb(mb)

    def prefetch_paths(self) -> list[str]:
        """The next studies' first images in worklist order (unread first when sorted)."""
        items = sort_worklist(self.worklist()) if self.sort_by_score else self.worklist()
        cur = self.current_study.key if self.current_study is not None else None
        refs = {r.key: r for r in self.study_refs()}
        keys = [i.key for i in items]
        start = keys.index(cur) + 1 if cur in keys else 0
        out = []
        for k in keys[start:] + keys[:start]:
            if k != cur and refs[k].paths:
                out.append(refs[k].paths[0])
            if len(out) >= PREFETCH_COUNT:
                break
        if self.prior is not None:
            out.insert(0, self.prior.paths[0])
        return out

    def prefetch(self) -> None:
        paths = [p for p in self.prefetch_paths() if p not in self.window.cache]
        if not paths:
            return
        cache = self.window.cache

        def work(context) -> int:
            n = 0
            for p in paths:
                if context.cancelled:
                    break
                try:
                    cache.load(p)
                    n += 1
                except Exception as exc:  # noqa: BLE001 - the viewer reports it when opened
                    log.info("prefetch of %s failed: %s", p, exc)
            return n

        self.window.runner.submit("prefetch", work, with_context=True)
