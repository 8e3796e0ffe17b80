"""Export dialog (Ctrl+E), background export and clipboard copy (Ctrl+Shift+C).

The composition itself is :mod:`cxr_viewer.export` (no Qt, shared with the CLI); this module only
asks the user where and how, and runs the composition off the GUI thread.

Typical use from the main window::

    request = ExportRequest(image=..., voi=..., ...)          # from the viewer's state
    job = run_export_dialog(self, request, has_view_region=True, view_region=(r0, r1, c0, c1))
    if job is not None:
        job.finished.connect(lambda path: self.statusBar().showMessage(f"Exported {path}"))
        job.failed.connect(self.show_error)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from cxr_viewer import DISCLAIMER
from cxr_viewer.export.annotated import ExportRequest

#: (label, extension) per format, in menu order.
FORMATS: tuple[tuple[str, str], ...] = (
    ("PNG image", ".png"),
    ("JPEG image", ".jpg"),
    ("DICOM Secondary Capture", ".dcm"),
    # a folder: SR (findings) + Parametric Map (heat maps) + GSPS (window, orientation, lines)
    ("DICOM results (SR + heat maps + presentation state)", ""),
)
DICOM_RESULTS = ""  # the "extension" of the DICOM results format: a folder


@dataclass(frozen=True)
class ExportOptions:
    """What the user chose in the dialog."""

    path: Path
    current_view: bool = False  # False: full resolution
    include_patient_details: bool = False
    dicom_results: bool = False  # ``path`` is a folder for the SR + PM + GSPS
    send_to: str | None = None  # name of a configured DICOM node to send the DICOM export to

    def apply_to(
        self, request: ExportRequest, view_region: tuple[int, int, int, int] | None
    ) -> ExportRequest:
        """The request with these options (region, patient details) applied."""
        return dataclasses.replace(
            request,
            include_patient_details=self.include_patient_details,
            view_region=view_region if self.current_view else None,
        )


class ExportDialog(QDialog):
    """Format, full resolution vs current view, patient details (off by default), path."""

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        default_path: str | Path = "export.png",
        can_dicom: bool = True,
        has_view_region: bool = True,
        nodes: list[str] | tuple[str, ...] = (),
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export annotated image")
        default_path = Path(default_path)

        self.format_combo = QComboBox()
        for label, ext in FORMATS:
            self.format_combo.addItem(f"{label} ({ext})", ext)
        if not can_dicom:  # e.g. a PNG source: no study to file a Secondary Capture into
            for index in (2, 3):  # Secondary Capture, DICOM results
                item = self.format_combo.model().item(index)  # type: ignore[attr-defined]
                item.setEnabled(False)
                item.setToolTip("needs a DICOM source image (Study/Series/SOP UIDs)")

        self.full_radio = QRadioButton("Full resolution")
        self.view_radio = QRadioButton("Current view (zoomed region)")
        self.full_radio.setChecked(True)
        self.view_radio.setEnabled(has_view_region)
        self._region_group = QButtonGroup(self)
        self._region_group.addButton(self.full_radio)
        self._region_group.addButton(self.view_radio)

        self.patient_check = QCheckBox("Include patient details (name, ID, dates)")
        self.patient_check.setChecked(False)

        self.path_edit = QLineEdit(str(default_path))
        self.browse_button = QPushButton("Browse...")
        self.browse_button.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)

        region_row = QHBoxLayout()
        region_row.addWidget(self.full_radio)
        region_row.addWidget(self.view_radio)

        # DICOM exports can go on to a configured node (C-STORE or STOW-RS, as the node says);
        # with no node configured the choice is not offered and nothing connects anywhere.
        self.send_combo = QComboBox()
        self.send_combo.addItem("Do not send", None)
        for name in nodes:
            self.send_combo.addItem(f"Send to {name}", name)

        form = QFormLayout()
        form.addRow("Format", self.format_combo)
        form.addRow("Image", region_row)
        form.addRow("", self.patient_check)
        form.addRow("File", path_row)
        form.addRow("PACS", self.send_combo)
        self.send_combo.setVisible(bool(nodes))
        form.labelForField(self.send_combo).setVisible(bool(nodes))

        note = QLabel(
            f"The export keeps the current window/level, heat map and measurements, and is "
            f"stamped \u201c{DISCLAIMER}\u201d."
        )
        note.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)

        ext = default_path.suffix.lower()
        for i, (_, fmt_ext) in enumerate(FORMATS):
            if ext == fmt_ext or (ext == ".jpeg" and fmt_ext == ".jpg"):
                self.format_combo.setCurrentIndex(i)
        self.format_combo.currentIndexChanged.connect(self._format_changed)

    def _format_changed(self, _index: int) -> None:
        ext = self.format_combo.currentData()
        text = self.path_edit.text().strip()
        if text:
            path = Path(text)
            if ext == DICOM_RESULTS:  # a folder beside the file: <stem>-dicom
                path = path.with_name(f"{path.stem}-dicom") if path.suffix else path
            elif not path.suffix and path.name.endswith("-dicom"):
                path = path.with_name(path.name[: -len("-dicom")] + ext)
            else:
                path = path.with_suffix(ext)
            self.path_edit.setText(str(path))

    def _browse(self) -> None:
        ext = self.format_combo.currentData()
        if ext == DICOM_RESULTS:
            folder = QFileDialog.getExistingDirectory(
                self, "Folder for the DICOM results", self.path_edit.text()
            )
            if folder:
                self.path_edit.setText(folder)
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Export annotated image", self.path_edit.text(), f"*{ext}"
        )
        if path:
            self.path_edit.setText(str(Path(path).with_suffix(ext)))

    def options(self) -> ExportOptions:
        """The user's choices; the path's extension always matches the chosen format."""
        ext = self.format_combo.currentData()
        text = self.path_edit.text().strip() or "export"
        results = ext == DICOM_RESULTS
        path = Path(text) if results else Path(text).with_suffix(ext)
        return ExportOptions(
            path=path,
            current_view=self.view_radio.isChecked(),
            include_patient_details=self.patient_check.isChecked(),
            dicom_results=results,
            send_to=self.send_combo.currentData() if ext in (".dcm", DICOM_RESULTS) else None,
        )


class ExportJob(QObject):
    """One export running in the thread pool; signals arrive on the GUI thread."""

    finished = Signal(str)  # written path
    failed = Signal(str)  # one-line message (names the file and the cause)
    sent = Signal(str)  # one line: what was sent where, and how (after ``finished``)


class _ExportTask(QRunnable):
    def __init__(
        self,
        job: ExportJob,
        request: ExportRequest,
        path: Path,
        dicom_results: bool = False,
        send_to: str | None = None,
    ) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._dicom_results = dicom_results
        self._send_to = send_to
        self._job = job
        self._request = request
        self._path = path

    def run(self) -> None:  # worker thread
        from cxr_viewer.export.dicom_results import write_dicom_results_for_request
        from cxr_viewer.export.headless import export_to

        try:
            if self._dicom_results:
                write_dicom_results_for_request(self._request, self._path)
                path = self._path  # the folder holding the SR, PM and GSPS
            else:
                path, _shape = export_to(self._request, self._path)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the GUI thread
            self._job.failed.emit(str(exc))
            return
        self._job.finished.emit(str(path))
        if self._send_to:
            try:
                self._job.sent.emit(send_export(Path(path), self._send_to))
            except Exception as exc:  # noqa: BLE001 - reported; the export itself is written
                self._job.failed.emit(f"{path} was written, but sending it failed: {exc}")


def send_export(path: Path, node_name: str) -> str:
    """Send a written DICOM export (a file, or the folder of DICOM results) to a configured node
    (worker thread); returns one line for the status bar. Raises NetError with the node and cause.
    """
    from cxr_viewer.net import client
    from cxr_viewer.net.config import NodeStore, SecretStore
    from cxr_viewer.net.errors import NetError

    store = NodeStore.load()
    node = store.get(node_name)
    if node is None:
        raise NetError(node_name, "no such DICOM node in the settings (removed meanwhile?)")
    files = sorted(path.glob("*.dcm")) if path.is_dir() else [path]
    # No prompt from a worker thread: a secret the keyring lacks makes the send fail, said so.
    count, how = client.send(node, files, store.settings, SecretStore(prompt=None))
    return f"Sent {count} object(s) to {node.label} by {how}"


_running: set[ExportJob] = set()  # keeps jobs alive until they report


def export_from_state(
    parent: QObject | None,
    request: ExportRequest,
    path: str | Path,
    *,
    dicom_results: bool = False,
    send_to: str | None = None,
) -> ExportJob:
    """Compose and write ``request`` to ``path`` (PNG/JPEG/DICOM by extension) off the GUI thread.

    Connect to the returned job's ``finished(str path)`` and ``failed(str message)``. The work
    starts when control returns to the event loop, so slots connected right after this call
    never miss a fast result. ``dicom_results``: ``path`` is a folder that gets the SR, the
    Parametric Map and the GSPS (``cxr_viewer.export.dicom_results``). ``send_to``: the name of
    a configured DICOM node that gets the written DICOM object(s) afterwards (``sent`` signal).
    """
    job = ExportJob(parent)
    _running.add(job)
    job.finished.connect(lambda _p: _running.discard(job))
    job.failed.connect(lambda _m: _running.discard(job))
    task = _ExportTask(job, request, Path(path), dicom_results, send_to)
    QTimer.singleShot(0, job, lambda: QThreadPool.globalInstance().start(task))
    return job


def run_export_dialog(
    parent: QWidget | None,
    request: ExportRequest,
    *,
    default_path: str | Path = "export.png",
    view_region: tuple[int, int, int, int] | None = None,
) -> ExportJob | None:
    """Ask the user (modal dialog) and start the export; None when cancelled."""
    dialog = ExportDialog(
        parent,
        default_path=default_path,
        can_dicom=request.image.source_format == "DICOM" and request.image.header is not None,
        has_view_region=view_region is not None,
        nodes=configured_node_names(),
    )
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    options = dialog.options()
    return export_from_state(
        parent,
        options.apply_to(request, view_region),
        options.path,
        dicom_results=options.dicom_results,
        send_to=options.send_to,
    )


def configured_node_names() -> list[str]:
    """Names of the DICOM nodes in the settings (reads a file; opens no connection)."""
    try:
        from cxr_viewer.net.config import NodeStore
        from cxr_viewer.net.errors import NetError
    except ImportError:  # a build without networking
        return []
    try:
        return [n.name for n in NodeStore.load().nodes]
    except NetError:
        return []


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """A deep-copied QImage (RGB888) of an (H, W, 3) uint8 array."""
    arr = np.ascontiguousarray(rgb, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8, got {arr.shape}")
    h, w = arr.shape[:2]
    return QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def copy_to_clipboard(rgb: np.ndarray) -> QImage:
    """Put the composed export on the system clipboard (Ctrl+Shift+C); returns the QImage."""
    image = rgb_to_qimage(rgb)
    QGuiApplication.clipboard().setImage(image)
    return image


def copy_request_to_clipboard(request: ExportRequest) -> QImage:
    """Compose ``request`` (current view as given) and copy it to the clipboard."""
    from cxr_viewer.export.annotated import compose_annotated

    return copy_to_clipboard(compose_annotated(request))
