"""PACS query/retrieve dialog, the listener toggle and the File-menu hook.

All network work runs on QThreadPool workers (``TaskRunner``): no TensorFlow here. The dialog
calls the Qt-free core (:mod:`cxr_viewer.net.client`); secrets a node needs are asked on the GUI
thread *before* its worker starts (workers never open dialogs).

``install_pacs_menu(window, menu)`` is the only hook in the main window: it adds
"PACS query/retrieve...", "DICOM nodes..." and "Receive pushed studies (listener)" to ``menu``;
retrieved studies open in the study browser like any folder, and studies pushed to the listener
are added to the browser as they arrive.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cxr_viewer.net import client
from cxr_viewer.net.cache import StudyCache, default_cache_dir, default_inbox_dir
from cxr_viewer.net.config import Node, NodeStore, SecretStore
from cxr_viewer.net.dimse import StudyMatch
from cxr_viewer.net.errors import Cancelled, NetError
from cxr_viewer.ui.workers import TaskRunner

log = logging.getLogger(__name__)

COLUMNS = ["Date", "Patient ID", "Patient name", "Birth date", "Accession", "Modality",
           "Description", "Images", "Retrieve", "Study UID"]
# Hidden in de-identified mode: the patient fields and the study date (as the viewer hides
# dates in its corner text, study list and tag browser).
PATIENT_COLUMNS = (0, 1, 2, 3)
PROGRESS_COLUMN = 8
UID_ROLE = Qt.ItemDataRole.UserRole + 1


class _SortItem(QTableWidgetItem):
    """Sorts numbers as numbers."""

    def __lt__(self, other: QTableWidgetItem) -> bool:  # noqa: D105
        a, b = self.data(Qt.ItemDataRole.UserRole), other.data(Qt.ItemDataRole.UserRole)
        if a is not None and b is not None:
            return a < b
        return self.text() < other.text()  # (QTableWidgetItem.__lt__ would recurse here)


def ask_secret(parent: QWidget | None, node: str, what: str) -> str | None:
    """The GUI prompt of the SecretStore (GUI thread only)."""
    text, ok = QInputDialog.getText(parent, "DICOM node", f"{what.capitalize()} for {node}:",
                                    QLineEdit.EchoMode.Password)
    return text if ok else None


class PacsDialog(QDialog):
    """Query a node, list the studies, retrieve the selected ones into the local cache."""

    studyRetrieved = Signal(str)  # the study folder
    message = Signal(str)  # last status line (tests read it)

    def __init__(self, store: NodeStore, secrets: SecretStore, parent: QWidget | None = None,
                 deidentified: bool = False, cache: StudyCache | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS query / retrieve")
        self.resize(1100, 600)
        self.store = store
        self.secrets = secrets
        self.cache = cache or StudyCache(
            default_cache_dir(), store.settings.cache_limit_mb * 1024 * 1024
        )
        self.runner = TaskRunner(self, max_threads=4)
        self.matches: dict[str, StudyMatch] = {}
        self._cancels: dict[str, threading.Event] = {}
        self._bars: dict[str, QProgressBar] = {}

        self.node = QComboBox()
        self.nodes_button = QPushButton("Nodes...")
        self.echo_button = QPushButton("Echo")
        top = QHBoxLayout()
        top.addWidget(QLabel("Node"))
        top.addWidget(self.node, 1)
        top.addWidget(self.echo_button)
        top.addWidget(self.nodes_button)

        self.patient_id = QLineEdit()
        self.patient_name = QLineEdit()
        self.patient_name.setPlaceholderText("DOE^J*")
        self.accession = QLineEdit()
        self.date_from = QLineEdit()
        self.date_from.setPlaceholderText("YYYYMMDD")
        self.date_to = QLineEdit()
        self.date_to.setPlaceholderText("YYYYMMDD")
        self.modality = QLineEdit("CR,DX")
        self.search_button = QPushButton("Search")
        self.search_button.setDefault(True)
        grid = QGridLayout()
        for col, (label, w) in enumerate([("Patient ID", self.patient_id),
                                          ("Patient name", self.patient_name),
                                          ("Accession", self.accession)]):
            grid.addWidget(QLabel(label), 0, 2 * col)
            grid.addWidget(w, 0, 2 * col + 1)
        for col, (label, w) in enumerate([("Study date from", self.date_from),
                                          ("to", self.date_to), ("Modality", self.modality)]):
            grid.addWidget(QLabel(label), 1, 2 * col)
            grid.addWidget(w, 1, 2 * col + 1)
        grid.addWidget(self.search_button, 1, 6)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.doubleClicked.connect(lambda _i: self.retrieve_selected())

        self.retrieve_button = QPushButton("Retrieve selected")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.open_button = QPushButton("Open")
        self.delete_button = QPushButton("Delete local copies")
        self.close_button = QPushButton("Close")
        buttons = QHBoxLayout()
        for b in (self.retrieve_button, self.cancel_button, self.open_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.delete_button)
        buttons.addWidget(self.close_button)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(grid)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        layout.addLayout(buttons)

        self.search_button.clicked.connect(self.search)
        self.echo_button.clicked.connect(self.echo)
        self.nodes_button.clicked.connect(self.edit_nodes)
        self.retrieve_button.clicked.connect(self.retrieve_selected)
        self.cancel_button.clicked.connect(self.cancel_all)
        self.open_button.clicked.connect(self.open_selected)
        self.delete_button.clicked.connect(self.delete_local_copies)
        self.close_button.clicked.connect(self.close)
        self.deidentified = False
        self.set_deidentified(deidentified)
        self._fill_nodes()

    # ------------------------------------------------------------------ helpers
    def _fill_nodes(self) -> None:
        current = self.node.currentText()
        self.node.clear()
        for n in self.store.nodes:
            self.node.addItem(n.name)
        if current:
            self.node.setCurrentText(current)
        has = bool(self.store.nodes)
        for w in (self.search_button, self.echo_button, self.retrieve_button):
            w.setEnabled(has)
        if not has:
            self._say("No DICOM node configured: add one with Nodes... (nothing connects until "
                      "you do).")

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.message.emit(text)

    def current_node(self) -> Node | None:
        return self.store.get(self.node.currentText())

    def _secrets_ready(self, node: Node) -> bool:
        """Ask a missing secret now, on the GUI thread."""
        if node.auth == "none":
            return True
        what = "password" if node.auth == "basic" else "token"
        if self.secrets.get(node.name, what) is not None:
            return True
        value = ask_secret(self, node.name, what)
        if value is None:
            return False
        self.secrets.set(node.name, what, value)
        return True

    def set_deidentified(self, on: bool) -> None:
        """Hide the patient columns (and the study UID) while the viewer is de-identified."""
        self.deidentified = on
        for col in PATIENT_COLUMNS:
            self.table.setColumnHidden(col, on)

    # ------------------------------------------------------------------ actions
    def echo(self) -> None:
        node = self.current_node()
        if node is None or not self._secrets_ready(node):
            return
        self._say(f"Echo {node.label}...")
        settings = self.store.settings
        self.runner.submit(
            "echo", client.echo, node, settings, self.secrets,
            on_result=lambda how: self._say(f"{node.label}: {how} OK"),
            on_error=self._on_error,
        )

    def query_filters(self) -> dict[str, str]:
        d1, d2 = self.date_from.text().strip(), self.date_to.text().strip()
        date = f"{d1}-{d2}" if (d1 or d2) and d1 != d2 else d1
        return {
            "patient_id": self.patient_id.text().strip(),
            "patient_name": self.patient_name.text().strip(),
            "accession": self.accession.text().strip(),
            "study_date": date,
            "modality": self.modality.text().strip().upper(),
        }

    def search(self) -> None:
        node = self.current_node()
        if node is None or not self._secrets_ready(node):
            return
        filters = self.query_filters()
        self._say(f"Searching {node.label}...")
        self.search_button.setEnabled(False)

        def work() -> list[StudyMatch]:
            return client.find(node, self.store.settings, self.secrets, **filters)

        def done(found: list[StudyMatch]) -> None:
            self.search_button.setEnabled(True)
            self.show_matches(found)
            self._say(f"{len(found)} stud{'y' if len(found) == 1 else 'ies'} on {node.name}")

        def failed(exc: BaseException) -> None:
            self.search_button.setEnabled(True)
            self._on_error(exc)

        self.runner.submit("find", work, on_result=done, on_error=failed)

    def show_matches(self, found: list[StudyMatch]) -> None:
        self.table.setSortingEnabled(False)
        self.table.setRowCount(0)
        self._bars.clear()
        self.matches = {m.study_uid: m for m in found}
        for m in found:
            r = self.table.rowCount()
            self.table.insertRow(r)
            values = [m.study_date, m.patient_id, m.patient_name, m.patient_birth_date,
                      m.accession, "/".join(m.modalities), m.description,
                      "" if m.num_instances is None else str(m.num_instances), "", m.study_uid]
            for c, v in enumerate(values):
                item = _SortItem(v)
                if c == 7 and m.num_instances is not None:
                    item.setData(Qt.ItemDataRole.UserRole, m.num_instances)
                item.setData(UID_ROLE, m.study_uid)
                self.table.setItem(r, c, item)
            bar = QProgressBar()
            bar.setRange(0, max(1, m.num_instances or 1))
            bar.setValue(0)
            local = self.cache.is_complete(m.study_uid)
            bar.setFormat("local copy" if local else "")
            if local:
                bar.setValue(bar.maximum())
            self.table.setCellWidget(r, PROGRESS_COLUMN, bar)
            self._bars[m.study_uid] = bar
        self.table.setSortingEnabled(True)
        self.table.sortItems(0, Qt.SortOrder.DescendingOrder)
        self.table.resizeColumnsToContents()

    def selected_uids(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        out = []
        for r in rows:
            item = self.table.item(r, 0)
            if item is not None:
                out.append(str(item.data(UID_ROLE)))
        return out

    def retrieve_selected(self) -> None:
        node = self.current_node()
        uids = self.selected_uids()
        if node is None or not uids or not self._secrets_ready(node):
            if not uids:
                self._say("Select one or more studies to retrieve.")
            return
        for uid in uids:
            if uid in self._cancels:
                continue
            self._start_retrieve(node, uid)
        self.cancel_button.setEnabled(bool(self._cancels))

    def _start_retrieve(self, node: Node, uid: str) -> None:
        cancel = threading.Event()
        self._cancels[uid] = cancel
        match = self.matches.get(uid)
        total = match.num_instances if match else None
        bar = self._bars.get(uid)
        if bar is not None:
            bar.setFormat("%v / %m")
            bar.setValue(0)
        settings = self.store.settings

        def work(context: Any) -> str:
            folder = client.retrieve(
                node, uid, self.cache, settings, self.secrets,
                progress=lambda d, t: context.progress((d, t)), cancel=cancel, total=total,
            )
            return str(folder)

        def progress(value: tuple[int, int | None]) -> None:
            done, tot = value
            b = self._bars.get(uid)
            if b is not None:
                if tot:
                    b.setMaximum(tot)
                b.setValue(min(done, b.maximum()))

        def finished(folder: str) -> None:
            self._cancels.pop(uid, None)
            self.cancel_button.setEnabled(bool(self._cancels))
            b = self._bars.get(uid)
            if b is not None:
                b.setValue(b.maximum())
                b.setFormat("done")
            self._say(f"Retrieved study into {folder}")
            self.studyRetrieved.emit(folder)

        def failed(exc: BaseException) -> None:
            self._cancels.pop(uid, None)
            self.cancel_button.setEnabled(bool(self._cancels))
            b = self._bars.get(uid)
            if b is not None:
                b.setFormat("cancelled" if isinstance(exc, Cancelled) else "failed")
            self._on_error(exc)

        self.runner.submit(f"retrieve:{uid}", work, on_result=finished, on_error=failed,
                           on_progress=progress, with_context=True)

    def cancel_all(self) -> None:
        for ev in self._cancels.values():
            ev.set()
        self._say("Cancelling...")

    def open_selected(self) -> None:
        for uid in self.selected_uids():
            if self.cache.is_complete(uid):
                self.studyRetrieved.emit(str(self.cache.study_dir(uid)))
            else:
                self._say("Not retrieved yet: retrieve the study first.")

    def delete_local_copies(self) -> None:
        n = self.cache.delete_all()
        for bar in self._bars.values():
            if bar.format() in ("local copy", "done"):
                bar.setValue(0)
                bar.setFormat("")
        self._say(f"Deleted {n} local stud{'y' if n == 1 else 'ies'} from {self.cache.folder}")

    def edit_nodes(self) -> None:
        from cxr_viewer.ui.nodes_dialog import NodesDialog

        dlg = NodesDialog(self.store, self.secrets, self)
        if dlg.exec():
            self._fill_nodes()

    def _on_error(self, exc: BaseException) -> None:
        if isinstance(exc, NetError):
            self._say(f"Error: {exc}")
        else:
            log.error("PACS task failed", exc_info=exc)
            self._say(f"Error: {type(exc).__name__}: {exc}")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.cancel_all()
        self.runner.shutdown(5000)
        super().closeEvent(event)


class _ArrivalBridge(QObject):
    """Carries the listener's arrivals (pynetdicom threads) to the GUI thread."""

    arrived = Signal(str)  # study folder
    refused = Signal(str)


class PacsController(QObject):
    """The menu actions, the PACS dialog and the listener of one main window."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.store: NodeStore | None = None
        self.secrets = SecretStore(prompt=None)
        self.dialog: PacsDialog | None = None
        self.listener: Any = None
        self.runner = TaskRunner(self, max_threads=1)
        self._pending: set[str] = set()
        self._bridge = _ArrivalBridge()
        self._bridge.arrived.connect(self._on_arrival)
        self._bridge.refused.connect(
            lambda why: window.statusBar().showMessage(f"Listener refused an instance: {why}",
                                                       8000))
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(800)
        self._debounce.timeout.connect(self._add_arrived_studies)
        window.installEventFilter(self)

    def _load_store(self) -> NodeStore | None:
        try:
            self.store = NodeStore.load()
        except NetError as exc:
            QMessageBox.warning(self.window, "DICOM nodes", str(exc))
            return None
        return self.store

    # ------------------------------------------------------------------ dialogs
    def open_dialog(self) -> PacsDialog | None:
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            return self.dialog
        store = self._load_store()
        if store is None:
            return None
        self.dialog = PacsDialog(store, self.secrets, self.window,
                                 deidentified=bool(getattr(self.window, "deidentified", False)))
        self.dialog.studyRetrieved.connect(lambda folder: self.window.open_paths([folder]))
        act = getattr(self.window, "actions", {}).get("deidentify")
        if act is not None:
            act.toggled.connect(self.dialog.set_deidentified)
        self.dialog.show()
        return self.dialog

    def edit_nodes(self) -> None:
        from cxr_viewer.ui.nodes_dialog import NodesDialog

        store = self._load_store()
        if store is not None:
            NodesDialog(store, self.secrets, self.window).exec()

    # ------------------------------------------------------------------ listener
    def set_listening(self, on: bool) -> None:
        from cxr_viewer.net.listener import StorageListener

        if not on:
            if self.listener is not None:
                self.listener.stop()
                self.listener = None
                self.window.statusBar().showMessage("Listener stopped", 5000)
            return
        store = self._load_store()
        if store is None:
            self.listen_action.setChecked(False)
            return
        s = store.settings
        try:
            self.listener = StorageListener(
                default_inbox_dir(), s.ae_title, s.listener_port,
                accept_from=store.known_ae_titles(), accept_any=s.accept_any,
                on_arrival=lambda a: self._bridge.arrived.emit(str(a.path.parent)),
                on_refused=lambda _ae, why: self._bridge.refused.emit(why),
            ).start()
        except NetError as exc:
            self.listener = None
            self.listen_action.setChecked(False)
            QMessageBox.warning(self.window, "Listener", str(exc))
            return
        self.window.statusBar().showMessage(
            f"Listening as {s.ae_title} on port {self.listener.port}; inbox "
            f"{default_inbox_dir()}", 8000)

    def _on_arrival(self, folder: str) -> None:
        self._pending.add(folder)
        self._debounce.start()  # add the studies once the burst of arrivals pauses

    def _add_arrived_studies(self) -> None:
        from cxr_viewer.ui.loading import scan_paths

        folders, self._pending = sorted(self._pending), set()
        self.runner.submit(
            f"arrivals:{','.join(folders)}", scan_paths, folders,
            on_result=self._on_arrivals_scanned,
            on_error=lambda exc: log.warning("scanning arrivals failed: %s", exc),
        )

    def _on_arrivals_scanned(self, result) -> None:
        """Pushed studies join the browser like opened ones: the worklist (score column, a
        running background pass) and prior pairing see them through ``scanFinished``."""
        self.window.browser.add_entries(result[0])
        self.window.scanFinished.emit()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if obj is self.window and event.type() == QEvent.Type.Close:
            self.shutdown()
        return False

    def shutdown(self) -> None:
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
        if self.dialog is not None:
            self.dialog.close()
        self.runner.shutdown(5000)


def install_pacs_menu(window: Any, menu: Any) -> PacsController:
    """Add the PACS actions to ``menu`` (the main window's File menu)."""
    controller = PacsController(window)
    menu.addSeparator()
    q = QAction("&PACS query / retrieve...", window)
    q.setShortcut("Ctrl+Shift+P")
    q.triggered.connect(controller.open_dialog)
    menu.addAction(q)
    n = QAction("DICOM &nodes...", window)
    n.triggered.connect(controller.edit_nodes)
    menu.addAction(n)
    listen = QAction("Receive pushed studies (listener)", window)
    listen.setCheckable(True)
    listen.toggled.connect(controller.set_listening)
    menu.addAction(listen)
    controller.listen_action = listen
    window.pacs = controller
    return controller

