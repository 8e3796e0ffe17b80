"""The reading-workstation main window: image view in the centre, study browser, findings, DICOM
tags and measurements in docks, pixel readout in the status bar. Holds no science: every pixel
comes from the core (``cxr_viewer.io``, ``cxr_viewer.imaging``); every slow step runs in a worker.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QByteArray, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cxr_viewer.ui import shortcuts as sc
from cxr_viewer.ui.image_view import ImageView
from cxr_viewer.ui.loading import (
    ImageCache,
    make_thumbnails,
    probe_files,
    scan_paths,
)
from cxr_viewer.ui.settings import make_settings, push_recent, recent_files
from cxr_viewer.ui.study_browser import StudyBrowser
from cxr_viewer.ui.tag_browser import TagBrowser
from cxr_viewer.ui.workers import TaskRunner

log = logging.getLogger(__name__)

APP_TITLE = "cxr-viewer"
DISCLAIMER = "Research use only - AI second opinion, not for primary diagnosis"


class ShortcutsDialog(QDialog):
    """Keys and mouse gestures grouped under their section; the window presets named as the
    current image names them (header window explanations, VOI LUT names, auto, full range)."""

    def __init__(self, parent: QWidget | None = None,
                 preset_names: list[str] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        table = QTableWidget(0, 2)
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        table.horizontalHeader().setStretchLastSection(True)
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        self.table = table
        self.groups: list[str] = []
        self.set_presets(preset_names or [])
        self.resize(720, 640)

    def set_presets(self, preset_names: list[str]) -> None:
        """(Re)fill the table; ``preset_names[i]`` names key ``i + 1``."""
        from PySide6.QtGui import QFont

        table = self.table
        table.setRowCount(0)
        groups: dict[str, list[tuple[str, str]]] = {}
        for s in sc.SHORTCUTS:
            text = s.text
            if s.action.startswith("preset_"):
                n = int(s.action.split("_")[1])
                text = (f"Window preset {n}: {preset_names[n - 1]}" if n <= len(preset_names)
                        else f"Window preset {n} (none for this image)")
            groups.setdefault(s.group, []).append((" / ".join(s.keys), text))
        groups["Mouse"] = list(sc.MOUSE)
        self.groups = list(groups)
        bold = QFont(table.font())
        bold.setBold(True)
        for group, rows in groups.items():
            r = table.rowCount()
            table.insertRow(r)
            title = QTableWidgetItem(group)
            title.setFont(bold)
            table.setItem(r, 0, title)
            table.setSpan(r, 0, 1, 2)
            for keys, text in rows:
                r = table.rowCount()
                table.insertRow(r)
                table.setItem(r, 0, QTableWidgetItem(keys))
                table.setItem(r, 1, QTableWidgetItem(text))
        table.resizeColumnToContents(0)


class MainWindow(QMainWindow):
    """The viewer window. ``open_paths`` accepts files and folders; ``current_image`` is what is
    shown; ``imageShown`` fires once an image is on screen."""

    imageShown = Signal(object)  # ImageData
    problemsReported = Signal(list)  # [(path, reason)]
    resultObjectsListed = Signal(list)  # [(path, text)]: SR/PR/PM taken out of a scan
    scanFinished = Signal()

    def __init__(self, parent: QWidget | None = None, *, load_default_model: bool = False,
                 settings=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else make_settings()
        self.runner = TaskRunner(self, max_threads=2)
        self.cache = ImageCache()
        self.current_path: str | None = None
        self.current_image = None
        self.prediction = None
        self.cams = None
        self.card = None
        self.overlay = None  # OverlaySettings
        self.deidentified = False
        self._shortcuts_dialog: ShortcutsDialog | None = None

        self.view = ImageView(self)
        self.workflow = self._make_workflow()  # viewport grid (central widget), worklist
        self._build_docks()
        self._build_status_bar()
        self.actions: dict[str, QAction] = {}
        self._build_actions()
        self._build_menus()
        self._wire_analysis()
        from cxr_viewer.ui.stored_results_ui import StoredResultsController

        self.stored = StoredResultsController(self)  # stored SR/PM/GSPS, audit (dicom-results)
        if self.workflow is not None:
            self.workflow.install()
        self.view.windowChanged.connect(lambda _voi: self._update_status())
        self.view.viewChanged.connect(self._update_status)
        self.view.pixelHovered.connect(self.pixel_label.setText)
        if self.workflow is None:
            self.view.measurementsChanged.connect(self._refresh_measurements)
        self.browser.imageActivated.connect(self.show_path)
        self._restore_settings()
        if load_default_model:
            self.load_default_model()

    # ================================================================== construction
    def _dock(self, title: str, name: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        left = Qt.DockWidgetArea.LeftDockWidgetArea
        right = Qt.DockWidgetArea.RightDockWidgetArea
        self.browser = StudyBrowser()
        self.browser_dock = self._dock("Studies", "studies_dock", self.browser, left)
        self.findings_panel = self._make_findings_panel()
        self.findings_dock = self._dock("AI findings", "findings_dock", self.findings_panel, right)
        self.tags = TagBrowser()
        self.tags_dock = self._dock("DICOM tags", "tags_dock", self.tags, right)
        self.tabifyDockWidget(self.findings_dock, self.tags_dock)
        self.findings_dock.raise_()
        meas = QWidget()
        self.measure_list = QListWidget()
        delete = QPushButton("Delete")
        clear = QPushButton("Delete all")
        delete.clicked.connect(self.delete_selected_measurement)
        clear.clicked.connect(self.clear_measurements)
        self.measure_spacing_label = QLabel("")
        self.measure_spacing_label.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(delete)
        buttons.addWidget(clear)
        lay = QVBoxLayout(meas)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.measure_spacing_label)
        lay.addWidget(self.measure_list)
        lay.addLayout(buttons)
        self.measure_list.currentRowChanged.connect(
            lambda row: self.measured_view().select_measurement(row))
        self.measure_dock = self._dock("Measurements", "measurements_dock", meas, left)
        self.resize(1500, 950)
        self.resizeDocks([self.browser_dock, self.findings_dock], [270, 330],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.browser_dock, self.measure_dock], [640, 220],
                         Qt.Orientation.Vertical)

    def _make_workflow(self):
        """Layouts, sync, compare with prior, worklist (cxr_viewer.ui.workflow)."""
        try:
            from cxr_viewer.ui.workflow import ReadingWorkflow
        except ImportError as exc:
            if exc.name != "cxr_viewer.ui.workflow":
                raise
            self.setCentralWidget(self.view)
            return None
        return ReadingWorkflow(self)

    def _make_findings_panel(self) -> QWidget:
        try:
            from cxr_viewer.ui.findings_panel import FindingsPanel
        except ImportError as exc:
            if exc.name != "cxr_viewer.ui.findings_panel":
                raise
            label = QLabel("AI findings\n\n(the findings panel is not available in this build)\n\n"
                           + DISCLAIMER)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setWordWrap(True)
            label.setObjectName("findings_placeholder")
            self.has_findings_panel = False
            return label
        self.has_findings_panel = True
        return FindingsPanel()

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.pixel_label = QLabel("")
        self.wl_label = QLabel("")
        self.zoom_label = QLabel("")
        self.analysis_label = QLabel("")
        self.pixel_label.setMinimumWidth(380)
        bar.addWidget(self.pixel_label, 1)
        bar.addPermanentWidget(self.wl_label)
        bar.addPermanentWidget(self.zoom_label)
        bar.addPermanentWidget(self.analysis_label)

    def _handlers(self) -> dict[str, Any]:
        v = self.view
        h: dict[str, Any] = {
            "open_files": self.open_files_dialog,
            "open_folder": self.open_folder_dialog,
            "export": self.export_current,
            "copy_export": self.copy_export,
            "quit": self.close,
            "next_image": lambda: self.step_image(1),
            "prev_image": lambda: self.step_image(-1),
            "next_frame": lambda: v.set_frame(v.frame + 1),
            "prev_frame": lambda: v.set_frame(v.frame - 1),
            "invert": lambda: v.set_invert(not v.invert),
            "reset_window": self.reset_window,
            "zoom_in": lambda: v.zoom_by(1.25),
            "zoom_out": lambda: v.zoom_by(0.8),
            "fit": v.fit,
            "actual_size": v.actual_size,
            "rotate_cw": lambda: v.rotate(True),
            "rotate_ccw": lambda: v.rotate(False),
            "flip_h": lambda: v.flip(True),
            "flip_v": lambda: v.flip(False),
            "reset_view": self.reset_view,
            "annotations": lambda: self.set_annotations_visible(not v.annotations_visible),
            "overlay_planes": lambda: v.set_overlay_planes(not v.show_overlay_planes),
            "deidentify": lambda: self.set_deidentified(not self.deidentified),
            "pan_mode": lambda: self.set_left_mode("pan"),
            "measure_mode": lambda: self.set_left_mode("measure"),
            "delete_measurement": self.delete_selected_measurement,
            "clear_measurements": self.clear_measurements,
            "heatmap": self.toggle_heatmap,
            "shortcuts": self.show_shortcuts,
        }
        for i in range(1, 10):
            h[f"preset_{i}"] = lambda _=False, n=i: self.apply_preset(n)
        if self.workflow is not None:
            h.update(self.workflow.handlers())
        return h

    def _build_actions(self) -> None:
        handlers = self._handlers()
        for s in sc.SHORTCUTS:
            act = QAction(s.text, self)
            act.setShortcuts([QKeySequence(k) for k in s.keys])
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            act.triggered.connect(lambda _=False, f=handlers[s.action]: f())
            self.addAction(act)
            self.actions[s.action] = act
        for name in ("annotations", "deidentify", "invert", "heatmap", "overlay_planes"):
            self.actions[name].setCheckable(True)
        self.actions["annotations"].setChecked(True)
        self.actions["overlay_planes"].setChecked(True)
        group = QActionGroup(self)
        for name in ("pan_mode", "measure_mode"):
            self.actions[name].setCheckable(True)
            group.addAction(self.actions[name])
        self.actions["pan_mode"].setChecked(True)

    def _build_menus(self) -> None:
        a = self.actions
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        file_menu.addAction(a["open_files"])
        file_menu.addAction(a["open_folder"])
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addSeparator()
        file_menu.addAction(a["export"])
        file_menu.addAction(a["copy_export"])
        from cxr_viewer.ui.pacs_dialog import install_pacs_menu  # PACS: query/retrieve, listener

        install_pacs_menu(self, file_menu)
        file_menu.addSeparator()
        file_menu.addAction(a["quit"])
        view_menu = mb.addMenu("&View")
        for name in ("fit", "actual_size", "zoom_in", "zoom_out", None, "rotate_cw", "rotate_ccw",
                     "flip_h", "flip_v", "reset_view", None, "annotations", "overlay_planes", "deidentify", None,
                     "next_image", "prev_image", "next_frame", "prev_frame"):
            if name is None:
                view_menu.addSeparator()
            else:
                view_menu.addAction(a[name])
        view_menu.addSeparator()
        theme_menu = view_menu.addMenu("Theme")
        theme_group = QActionGroup(self)
        current = str(self.settings.value("theme", "dark"))
        for theme in ("dark", "light"):
            act = theme_menu.addAction(theme.capitalize())
            act.setCheckable(True)
            act.setChecked(theme == current)
            theme_group.addAction(act)
            act.triggered.connect(lambda _=False, t=theme: self.set_theme(t))
        docks = view_menu.addMenu("Panels")
        for dock in (self.browser_dock, self.findings_dock, self.tags_dock, self.measure_dock):
            docks.addAction(dock.toggleViewAction())
        wl_menu = mb.addMenu("&Window/level")
        self.preset_menu = wl_menu.addMenu("Presets")
        wl_menu.addAction(a["invert"])
        wl_menu.addAction(a["reset_window"])
        tools = mb.addMenu("&Tools")
        for name in ("pan_mode", "measure_mode", "delete_measurement", "clear_measurements"):
            tools.addAction(a[name])
        model_menu = mb.addMenu("&Model")
        model_menu.addAction(a["heatmap"])
        choose = model_menu.addAction("Load model bundle (folder)...")
        choose.triggered.connect(self.choose_model_bundle)
        load_file = model_menu.addAction("Load model file (.keras / .h5)...")
        load_file.triggered.connect(self.choose_model_file)
        help_menu = mb.addMenu("&Help")
        help_menu.addAction(a["shortcuts"])
        about = help_menu.addAction("About")
        about.triggered.connect(lambda: QMessageBox.about(
            self, APP_TITLE, f"{APP_TITLE}\nChest radiograph viewer with a local CNN second "
            f"opinion.\n\n{DISCLAIMER}"))
        self._rebuild_recent_menu()
        self._rebuild_preset_menu()

    # ================================================================== settings
    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray | bytes):
            self.restoreGeometry(QByteArray(geometry))
        state = s.value("window/state")
        if isinstance(state, QByteArray | bytes):
            self.restoreState(QByteArray(state))
        self.set_annotations_visible(str(s.value("view/annotations", "true")).lower() == "true")
        self.set_deidentified(str(s.value("view/deidentified", "false")).lower() == "true")

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("view/annotations", "true" if self.view.annotations_visible else "false")
        s.setValue("view/deidentified", "true" if self.deidentified else "false")
        s.sync()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.save_settings()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop background work (called on close; tests call it too)."""
        self.runner.shutdown()
        controller = getattr(self, "analysis", None)
        if controller is not None and hasattr(controller, "shutdown"):
            controller.shutdown()

    # ================================================================== opening
    def open_files_dialog(self) -> None:
        start = str(self.settings.value("last_folder", str(Path.home())))
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open images", start,
            "Images (*.dcm *.DCM *.dicom *.png *.jpg *.jpeg *.tif *.tiff);;All files (*)")
        if files:
            self.open_paths(files)

    def open_folder_dialog(self) -> None:
        start = str(self.settings.value("last_folder", str(Path.home())))
        folder = QFileDialog.getExistingDirectory(self, "Open folder", start)
        if folder:
            self.open_paths([folder])

    def open_paths(self, paths: list[str]) -> None:
        """Open files and/or folders (folders are scanned recursively in a worker)."""
        files, folders, problems = [], [], []
        for p in paths:
            path = Path(p).expanduser()
            if path.is_dir():
                folders.append(str(path))
            elif path.is_file():
                files.append(str(path))
            else:
                problems.append((str(path), f"{path}: no such file or folder"))
        if not (files or folders):
            self._report_problems(problems)
            if problems:
                self.show_failure(*problems[0])
            return
        self.browser.clear()
        self._report_problems(problems)
        first = folders[0] if folders else str(Path(files[0]).parent)
        self.settings.setValue("last_folder", first)
        for p in folders + files:
            self._add_recent(p)
        self.statusBar().showMessage("Scanning..." if folders else "Opening...")
        cache = self.cache

        def work(files=files, folders=folders):
            entries, probs = scan_paths(folders) if folders else ([], [])
            e2, p2 = probe_files(files, cache) if files else ([], [])
            from cxr_viewer.ui.stored_results_ui import split_stored_results

            stored, rest = split_stored_results(  # our SR/PM/GSPS are not problems
                probs + p2, [e.path for e in entries + e2])
            return entries + e2, rest, stored

        self.runner.submit("scan", work, on_result=self._on_scanned,
                           on_error=lambda exc: self._report_problems(
                               [(", ".join(folders + files),
                                 f"{', '.join(folders + files)}: scan failed: {exc}")]))

    def _on_scanned(self, result) -> None:
        entries, problems, stored = result
        self.browser.add_entries(entries)
        self.stored.set_results(stored)
        self._report_problems(problems)
        listed = self.stored.listed()
        paths = [e.path for e in entries]
        self.statusBar().showMessage(
            f"{len(paths)} image(s)" + (f", {len(problems)} could not be opened" if problems else "")
            + (f", {len(listed)} result object(s) listed under Studies (not images)"
               if listed else ""),
            8000)
        if listed:
            self.browser_dock.show()
            self.resultObjectsListed.emit(listed)
        self.scanFinished.emit()
        if not paths and problems:
            # nothing opened: the previous patient's image must not stay on screen
            self.show_failure(*problems[0])
        elif not paths and listed:
            # only result objects (e.g. another software's Parametric Map): no image to show,
            # and the previous patient's image must not stay on screen; the view says why
            self.show_failure(*listed[0])
            orphans = self.stored.results.orphans()
            if orphans:  # our report without its image: its findings, with the warning
                self.stored.show_orphan(orphans[0])
        if paths:
            self.show_path(self.workflow.first_path(paths) if self.workflow else paths[0])
            self.runner.submit("thumbs", make_thumbnails, paths, self.cache,
                               on_progress=self._on_thumbnail, with_context=True,
                               on_error=lambda exc: log.warning("thumbnails failed: %s", exc))

    def _on_thumbnail(self, item) -> None:
        path, value = item
        if isinstance(value, str):
            self.browser.mark_failed(path, value)
            self.problemsReported.emit([(path, value)])
        else:
            self.browser.set_thumbnail(path, value)

    def _report_problems(self, problems: list[tuple[str, str]]) -> None:
        for path, reason in problems:
            self.browser.add_problem(path, reason)
        if problems:
            self.browser_dock.show()
            self.statusBar().showMessage(
                f"{len(problems)} file(s) could not be opened (listed under Studies)", 8000)
            self.problemsReported.emit(list(problems))

    def show_path(self, path: str) -> None:
        """Load (worker) and show one image; a newer request makes this one stale."""
        self.current_path = path
        self.browser.select_path(path)
        cached = self.cache.get(path)
        if cached is not None:  # prefetched or seen: no worker round trip (reading workflow)
            self.runner.cancel("open")
            self.show_image(cached)
            return
        self.statusBar().showMessage(f"Loading {self._display_name(path)}...")
        self.runner.submit("open", self.cache.load, path,
                           on_result=self.show_image,
                           on_error=lambda exc, p=path: self._on_load_failed(p, exc))

    def _on_load_failed(self, path: str, exc: BaseException) -> None:
        reason = str(exc) if path in str(exc) else f"{path}: {exc}"
        self.browser.mark_failed(path, reason)
        self.problemsReported.emit([(path, reason)])
        if path == self.current_path:
            self.show_failure(path, reason)

    def show_failure(self, path: str, reason: str) -> None:
        """A load failed: nothing of the previous image may stay on screen (pixels, title,
        corner text, tags, findings, heat map, measurements); the view says why instead."""
        self.current_path = path
        self.current_image = None
        self.prediction = None
        self.cams = None
        if self.analysis is not None:
            self.analysis.cancel()
        if self.has_findings_panel:
            self.findings_panel.clear()
            self.findings_panel.set_status("")
        self.analysis_label.setText("")
        name = self._display_name(path)
        cause = reason
        for prefix in (f"{path}: ", f"{Path(path).name}: "):
            if cause.startswith(prefix):
                cause = cause[len(prefix):]
        self.view.clear()
        self.view.set_placeholder(f"could not open: {name}: {cause}")
        self.tags.set_header(None, "(nothing open: the last file could not be opened)")
        self._rebuild_preset_menu()
        self._refresh_measurements()
        self._update_status()
        self.setWindowTitle(f"{APP_TITLE} - could not open {name}")
        self.statusBar().showMessage(f"Could not open: {name}: {cause}", 10000)

    def show_image(self, image) -> None:
        """Put a loaded ImageData on screen (GUI thread)."""
        if self.current_path is not None and image.path != self.current_path:
            return  # a stale load
        self.current_path = image.path
        self.current_image = image
        self.prediction = None
        self.cams = None
        self.view.set_placeholder("")
        self.view.set_image(image)
        self.tags.set_header(image.header, notes=image.notes)
        self._rebuild_preset_menu()
        self._update_title()
        self._update_status()
        self._refresh_measurements()
        if image.notes:  # what the reader tolerated is said, never silent (all in DICOM tags)
            n = len(image.notes)
            self.statusBar().showMessage(
                f"{Path(image.path).name}: {n} reading note{'s' if n > 1 else ''} "
                f"(DICOM tags): {image.notes[0]}",
                20000,
            )
        else:
            self.statusBar().showMessage("", 1)
        if not self.stored.show_for(image):  # a stored result is shown without the model
            self._start_analysis(image)
        self.imageShown.emit(image)

    def step_image(self, offset: int) -> None:
        path = self.browser.neighbour(self.current_path, offset)
        if path and path != self.current_path:
            self.show_path(path)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    def _add_recent(self, path: str) -> None:
        push_recent(self.settings, path)
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        items = recent_files(self.settings)
        for p in items:
            act = self.recent_menu.addAction(p)
            act.triggered.connect(lambda _=False, path=p: self.open_paths([path]))
        self.recent_menu.setEnabled(bool(items))

    # ================================================================== window/level
    def presets(self) -> list:
        if self.current_image is None:
            return []
        from cxr_viewer.imaging.presets import presets_for

        return presets_for(self.current_image)[:9]

    def apply_preset(self, n: int) -> None:
        """Key ``n`` (1-based): header windows by their explanation first, then auto, full range."""
        if not self.view.apply_preset(n):
            self.statusBar().showMessage(f"No preset {n} for this image", 3000)

    def reset_window(self) -> None:
        if self.current_image is not None:
            self.view.reset_window()

    def _rebuild_preset_menu(self) -> None:
        self.preset_menu.clear()
        for i, preset in enumerate(self.presets(), start=1):
            label = preset.label_for(self.current_image) if hasattr(preset, "label_for") else preset.label
            act = self.preset_menu.addAction(f"&{i}  {label}")
            # through the key's action: the reading workflow routes it to the active viewport
            act.triggered.connect(self.actions[f"preset_{i}"].trigger)
        self.preset_menu.setEnabled(bool(self.presets()))

    def reset_view(self) -> None:
        self.view.reset_view()
        self.reset_window()

    # ================================================================== modes and display
    def set_theme(self, theme: str) -> None:
        """Apply and remember the theme (dark by default: reading rooms are dark)."""
        from PySide6.QtWidgets import QApplication

        from cxr_viewer.ui.theme import apply_theme

        apply_theme(QApplication.instance(), theme)
        self.settings.setValue("theme", theme)

    def set_left_mode(self, mode: str) -> None:
        if self.workflow is not None:
            self.workflow.grid.set_left_mode(mode)  # every viewport, the main one included
        else:
            self.view.set_left_mode(mode)
        self.actions["measure_mode" if mode == "measure" else "pan_mode"].setChecked(True)

    def set_annotations_visible(self, visible: bool) -> None:
        self.view.set_annotations_visible(visible)
        if "annotations" in getattr(self, "actions", {}):
            self.actions["annotations"].setChecked(visible)

    def set_deidentified(self, on: bool) -> None:
        self.deidentified = bool(on)
        self.view.set_deidentified(self.deidentified)
        self.tags.set_deidentified(self.deidentified)
        if hasattr(self, "stored"):  # SR content trees again; the change is audited
            self.stored.deidentified_changed(self.deidentified)
        self.browser.set_deidentified(self.deidentified)
        if "deidentify" in getattr(self, "actions", {}):
            self.actions["deidentify"].setChecked(self.deidentified)
        self._update_title()

    def _display_name(self, path: str) -> str:
        return "image" if self.deidentified else Path(path).name

    def _update_title(self) -> None:
        if self.current_image is None:
            self.setWindowTitle(APP_TITLE)
            return
        paths = self.browser.image_paths()
        pos = f" ({paths.index(self.current_path) + 1}/{len(paths)})" if self.current_path in paths else ""
        if self.deidentified:
            self.setWindowTitle(f"{APP_TITLE} - de-identified{pos}")
        else:
            self.setWindowTitle(f"{APP_TITLE} - {Path(self.current_image.path).name}{pos}")

    def _update_status(self) -> None:
        v = self.view
        if v.image is None:
            self.wl_label.setText("")
            self.zoom_label.setText("")
            return
        if v.voi is not None and v.voi.is_lut:
            from cxr_viewer.ui.image_view import lut_text

            self.wl_label.setText(lut_text(v.voi, v.preset_label) + ("  inv" if v.invert else ""))
        else:
            try:
                c, w, _fn = v.current_window()
                self.wl_label.setText(f"W {w:g} L {c:g}" + ("  inv" if v.invert else ""))
            except Exception:  # noqa: BLE001
                self.wl_label.setText(v.preset_label)
        self.zoom_label.setText(f"{v.zoom() * 100:.0f}%")
        self.actions["invert"].setChecked(v.invert)

    # ================================================================== measurements
    def measured_view(self) -> ImageView:
        """The view whose measurements the panel lists and Del / Shift+Del act on: the active
        viewport (the main view unless another viewport with an image is active)."""
        if self.workflow is not None:
            return self.workflow.measured_view()
        return self.view

    def _refresh_measurements(self) -> None:
        v = self.measured_view()
        self.measure_list.clear()
        for i, m in enumerate(v.measurements, start=1):
            self.measure_list.addItem(f"{i}. {m.text()}")
        img = v.image
        caption = self.workflow.measured_caption() if self.workflow is not None else ""
        where = f"{caption}: " if caption else ""
        if img is None:
            self.measure_spacing_label.setText("")
        elif img.spacing is None:
            self.measure_spacing_label.setText(
                f"{where}Uncalibrated: no pixel spacing in the file (px)")
        else:
            sp = img.spacing
            note = f"; {sp.note}" if sp.note else ""
            self.measure_spacing_label.setText(
                f"{where}mm from {sp.source} ({sp.row_mm:g} x {sp.col_mm:g} mm){note}")

    def clear_measurements(self) -> None:
        self.measured_view().clear_measurements()

    def delete_selected_measurement(self) -> None:
        v = self.measured_view()
        row = self.measure_list.currentRow()
        if row < 0 and v.measurements:
            row = len(v.measurements) - 1
        if 0 <= row < len(v.measurements):
            v.remove_measurement(row)

    # ================================================================== AI analysis
    def _wire_analysis(self) -> None:
        self.analysis = None
        try:
            from cxr_viewer.ui.analysis import AnalysisController
        except ImportError as exc:
            if exc.name != "cxr_viewer.ui.analysis":
                raise
            self.analysis_label.setText("AI: not available")
            return
        self.analysis = AnalysisController(self)
        self.analysis.statusChanged.connect(self._on_analysis_status)
        self.analysis.modelLoaded.connect(self._on_model_loaded)
        self.analysis.predictionReady.connect(self._on_prediction)
        self.analysis.camsReady.connect(self._on_cams)
        self.analysis.failed.connect(self._on_analysis_failed)
        if self.has_findings_panel:
            self.findings_panel.findingSelected.connect(self._on_finding_selected)
            self.findings_panel.overlayChanged.connect(self._on_overlay_changed)
            # operating mode (model 2.0 cards): remembered in the settings
            self.findings_panel.set_operating_mode(str(self.settings.value("ai/operating_mode",
                                                                           "balanced")))
            self.findings_panel.modeChanged.connect(self._on_mode_changed)

    def load_default_model(self) -> None:
        from cxr_viewer.paths import default_model_dir

        model = default_model_dir()
        if self.analysis is None:
            return
        if not model.exists():
            self._on_analysis_status(f"AI: no model at {model}")
            return
        self.analysis.load_model(str(model))

    def load_model(self, path: str) -> None:
        if self.analysis is not None:
            self.analysis.load_model(str(path))

    def choose_model_bundle(self) -> None:
        from cxr_viewer.paths import models_dir

        folder = QFileDialog.getExistingDirectory(self, "Model bundle", str(models_dir()))
        if folder:
            self.load_model(folder)

    def choose_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", str(Path.home()),
                                              "Keras models (*.keras *.h5)")
        if path:
            self.load_model(path)

    def _start_analysis(self, image) -> None:
        from dataclasses import replace

        if self.has_findings_panel:
            self.findings_panel.clear()
        ov = self._overlay_settings()
        if not ov.pinned:
            # this image's own top finding will be shown, never the previous image's choice
            self.overlay = replace(ov, finding=None)
        if self.analysis is not None:
            self.analysis.set_focus(ov.finding if ov.pinned else None)
            self.analysis.analyse(image)

    def _on_analysis_status(self, text: str) -> None:
        self.analysis_label.setText(text)
        if self.has_findings_panel:
            self.findings_panel.set_status(text)

    def _on_model_loaded(self, card) -> None:
        self.card = card
        if self.has_findings_panel:
            self.findings_panel.set_card(card)

    def _on_analysis_failed(self, message: str) -> None:
        # NotApplicable (inference.applicability) reads "<file>: not analysed: <cause>"
        _, sep, cause = message.partition(": not analysed: ")
        self._on_analysis_status(f"Not analysed: {cause}" if sep else f"AI failed: {message}")
        if sep and self.has_findings_panel:
            # greyed with the reason: no number may suggest a finding on such an image
            self.findings_panel.show_refusal(cause)
            self.prediction = None
            self.cams = None
            self._update_heatmap()

    def _current_id(self) -> str | None:
        return self.current_image.image_id if self.current_image is not None else None

    def _with_mode(self, prediction):
        """The prediction flagged at the panel's operating mode (no model call)."""
        card = getattr(self, "card", None)
        if not self.has_findings_panel or card is None or prediction is None:
            return prediction
        from cxr_viewer.inference.predict import apply_mode

        return apply_mode(card, prediction, self.findings_panel.operating_mode())

    def _on_mode_changed(self, mode: str) -> None:
        old = self.settings.value("ai/operating_mode", "")
        self.settings.setValue("ai/operating_mode", mode)
        if hasattr(self, "stored") and old != mode:
            from cxr_viewer import audit

            self.stored.audit_later(audit.setting_changed, "ai/operating_mode", old, mode)
        if self.prediction is not None:
            self.prediction = self._with_mode(self.prediction)
            self.findings_panel.show_prediction(self.prediction)
            self._update_heatmap()

    def _on_prediction(self, prediction) -> None:
        if prediction.image_id != self._current_id():
            return  # stale: belongs to another image
        prediction = self._with_mode(prediction)
        self.prediction = prediction
        self.stored.audit_prediction(prediction)
        if self.has_findings_panel:
            self.findings_panel.show_prediction(prediction)
        self._update_heatmap()

    def _on_cams(self, cams) -> None:
        if cams.image_id != self._current_id():
            return
        self.cams = cams
        if self.has_findings_panel:
            self.findings_panel.show_cams(cams)
        self._update_heatmap()

    def _overlay_settings(self):
        if self.overlay is None:
            from cxr_viewer.imaging.heatmap import OverlaySettings

            self.overlay = OverlaySettings()
        return self.overlay

    def _on_finding_selected(self, finding: str) -> None:
        from dataclasses import replace

        old = self._overlay_settings()
        self.overlay = replace(old, finding=finding, visible=True)
        if self.analysis is not None:
            self.analysis.set_focus(finding)
        # The slow methods (Grad-CAM++, Score-CAM, saliency) compute only the finding on show.
        if old.method != "gradcam" and finding != old.finding and self.analysis is not None:
            self.analysis.request_cams(old.method, finding)
        self._update_heatmap()

    def _on_overlay_changed(self, settings) -> None:
        old = self._overlay_settings()
        self.overlay = settings
        changed = settings.method != old.method or (
            settings.method != "gradcam" and settings.finding != old.finding
        )
        if changed and self.analysis is not None:
            self.analysis.request_cams(settings.method, settings.finding)
        self._update_heatmap()

    def toggle_heatmap(self) -> None:
        """``H``: the findings panel owns the overlay settings when present."""
        from dataclasses import replace

        if self.has_findings_panel:
            self.findings_panel.toggle_overlay()
            return
        ov = self._overlay_settings()
        finding = ov.finding
        if finding is None and self.prediction is not None:
            finding = self.prediction.heatmap_subject()
        self.overlay = replace(ov, visible=not ov.visible, finding=finding)
        self._update_heatmap()

    def _update_heatmap(self) -> None:
        """Draw the selected finding's map as it should be read (``ui.heat_overlay``)."""
        from cxr_viewer.ui.heat_overlay import draw_heatmap

        ov = self._overlay_settings()
        self.actions["heatmap"].setChecked(ov.visible)
        if not draw_heatmap(self.view, self.current_image, self.prediction, self.cams, ov):
            self.statusBar().showMessage("Heat map: waiting for the analysis", 3000)

    # ================================================================== export / help
    def view_state(self) -> dict[str, Any]:
        """What the radiologist sees, for the export (image, window, orientation, AI, marks)."""
        v = self.view
        ov = self._overlay_settings() if self.current_image is not None else None
        region = None
        if v.image is not None:
            region, _step = v.visible_region()
        return {
            "image": self.current_image,
            "voi": v.voi,
            "invert": v.invert,
            "rotation_k": v.orientation.rotation_k,
            "flip_h": v.orientation.flip_h,
            "flip_v": v.orientation.flip_v,
            "prediction": self.prediction,
            "cams": self.cams,
            "overlay": ov,
            # Only a heat map that is computed (and so on screen) goes into the export.
            "finding": ov.finding
            if (ov is not None and ov.visible and self.cams is not None
                and ov.finding in self.cams.maps)
            else None,
            "measurements": [(m.r0, m.c0, m.r1, m.c1, m.mm) for m in v.measurements],
            "card": self.card,
            "include_patient_details": False,
            "deidentified": self.deidentified,
            "view_region": region,
        }

    def export_request(self):
        """An ``ExportRequest`` of what is on screen (export engineer's composition)."""
        from cxr_viewer.export.annotated import ExportRequest
        from cxr_viewer.ui.viewstate import export_orientation

        st = self.view_state()
        k, fh, fv = export_orientation(self.view.orientation)
        ov = st["overlay"]
        cams, finding = st["cams"], st["finding"]
        if finding is not None and cams is not None:
            # the map exactly as drawn on screen: scaled by the probability, or none at all
            # below the finding's threshold
            from cxr_viewer.imaging.heatmap import overlay_plan
            from cxr_viewer.inference.results import CamResult

            score = self.prediction.score(finding) if self.prediction is not None else None
            plan = overlay_plan(score.probability if score else None,
                                score.threshold if score else None, ov)
            if not plan.draw:
                finding = None
            else:
                scaled = np.clip(cams.maps[finding] * np.float32(plan.gain), 0.0, 1.0)
                cams = CamResult(cams.image_id, cams.method, {finding: scaled}, cams.note)
        return ExportRequest(
            image=st["image"], voi=st["voi"], invert=st["invert"], rotation_k=k, flip_h=fh,
            flip_v=fv, prediction=st["prediction"], cams=cams, finding=finding,
            overlay_opacity=ov.opacity if ov else 0.4,
            overlay_colormap=ov.colormap if ov else "jet",
            overlay_threshold=ov.threshold if ov else 0.0,
            measurements=st["measurements"], card=st["card"],
            include_patient_details=False, frame=self.view.frame,
            window_label=self.view.preset_label, overlay_planes=self.view.show_overlay_planes)

    def export_current(self) -> None:
        if self.current_image is None:
            self.statusBar().showMessage("Nothing to export: open an image first", 4000)
            return
        try:
            from cxr_viewer.ui import export_dialog
        except ImportError as exc:
            if exc.name != "cxr_viewer.ui.export_dialog":
                raise
            self.statusBar().showMessage("Export is not available in this build", 4000)
            return
        region, _step = self.view.visible_region()
        stem = "export" if self.deidentified else Path(self.current_image.path).stem
        folder = Path(str(self.settings.value("last_export_folder", str(Path.home()))))
        job = export_dialog.run_export_dialog(
            self, self.export_request(), default_path=folder / f"{stem}-annotated.png",
            view_region=region)
        if job is not None:
            job.finished.connect(lambda p: (
                self.settings.setValue("last_export_folder", str(Path(p).parent)),
                self.statusBar().showMessage(f"Exported {p}", 8000)))
            job.failed.connect(lambda m: QMessageBox.warning(self, "Export failed", m))
            job.sent.connect(lambda m: self.statusBar().showMessage(m, 8000))

    def copy_export(self) -> None:
        if self.current_image is None:
            return
        from cxr_viewer.ui import export_dialog

        export_dialog.copy_request_to_clipboard(self.export_request())
        self.statusBar().showMessage("Annotated image copied to the clipboard", 4000)

    def preset_names(self) -> list[str]:
        """The current image's window presets, named as the menu names them."""
        return [p.label_for(self.current_image) if hasattr(p, "label_for") else p.label
                for p in self.presets()]

    def show_shortcuts(self) -> None:
        if self._shortcuts_dialog is None:
            self._shortcuts_dialog = ShortcutsDialog(self, self.preset_names())
        else:
            self._shortcuts_dialog.set_presets(self.preset_names())
        self._shortcuts_dialog.show()
        self._shortcuts_dialog.raise_()

