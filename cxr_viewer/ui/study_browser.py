"""Study browser: studies -> series -> images, with thumbnails made in a worker, and the list of
files that could not be opened (with the reason)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QByteArray, QMimeData, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QDrag, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

PATH_ROLE = Qt.ItemDataRole.UserRole + 1
THUMB_SIZE = 96
#: drag-and-drop format of the study browser: the image path(s) of the dragged items, one a line
#: (an image item: its path; a series or study: its first image)
PATHS_MIME = "application/x-cxr-viewer-paths"


@dataclass(frozen=True)
class BrowserEntry:
    """One image file in the browser."""

    path: str
    study_key: str
    study_label: str
    series_key: str
    series_label: str
    image_label: str
    study_label_deid: str = ""  # label without patient identifiers
    patient_id: str = ""  # for the prior pairing (reading workflow)
    study_date: str = ""  # DICOM DA, "" when unknown (PNG/JPEG: never paired)
    modality: str = ""


def thumbnail_icon(gray: np.ndarray) -> QIcon:
    gray = np.ascontiguousarray(gray, dtype=np.uint8)
    h, w = gray.shape
    qimg = QImage(gray.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    return QIcon(QPixmap.fromImage(qimg))


def first_image_path(item: QTreeWidgetItem | None) -> str | None:
    """The image path of ``item``, or of the first image under a series/study item."""
    while item is not None and not item.data(0, PATH_ROLE):
        item = item.child(0) if item.childCount() else None
    return item.data(0, PATH_ROLE) if item is not None else None


def paths_from_mime(mime) -> list[str]:
    """The image paths a study-browser drag carries (empty for any other drag)."""
    if mime is None or not mime.hasFormat(PATHS_MIME):
        return []
    text = bytes(mime.data(PATHS_MIME)).decode("utf-8")
    return [p for p in text.split("\n") if p]


class StudyTree(QTreeWidget):
    """The browser's tree; a drag carries the dragged images' paths (:data:`PATHS_MIME`), so a
    viewport knows what was dropped whoever started the drag."""

    def mimeTypes(self) -> list[str]:  # noqa: N802 - Qt API
        return [*super().mimeTypes(), PATHS_MIME]

    def mimeData(self, items) -> QMimeData:  # noqa: N802 - Qt API
        mime = super().mimeData(items)
        paths = [p for p in (first_image_path(i) for i in items) if p]
        mime.setData(PATHS_MIME, QByteArray("\n".join(paths).encode("utf-8")))
        return mime

    def startDrag(self, supported_actions) -> None:  # noqa: N802 - Qt API
        """A copy, never a move: Qt's default would remove the dragged items from the tree
        when a viewport accepted a move."""
        items = [i for i in self.selectedItems() if first_image_path(i)]
        if not items:
            return
        drag = QDrag(self)
        drag.setMimeData(self.mimeData(items))
        icon = items[0].icon(0)
        if not icon.isNull():
            drag.setPixmap(icon.pixmap(THUMB_SIZE // 2, THUMB_SIZE // 2))
        drag.exec(Qt.DropAction.CopyAction, Qt.DropAction.CopyAction)


class StudyBrowser(QWidget):
    imageActivated = Signal(str)  # path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = StudyTree()
        self.tree.setHeaderHidden(True)
        self.tree.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.problems_label = QLabel("Could not open: none")
        self.problems = QListWidget()
        self.problems.setWordWrap(True)
        lower = self.problems_box = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(self.problems_label)
        lower_layout.addWidget(self.problems)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.tree)
        split.addWidget(lower)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(split)
        self._studies: dict[str, QTreeWidgetItem] = {}
        self._series: dict[tuple[str, str], QTreeWidgetItem] = {}
        self._images: dict[str, QTreeWidgetItem] = {}
        self._entries: dict[str, BrowserEntry] = {}
        self.deidentified = False
        self.tree.itemActivated.connect(self._on_activated)
        self.tree.itemClicked.connect(self._on_activated)

    # -------------------------------------------------------------- content
    def clear(self) -> None:
        self.tree.clear()
        self._studies.clear()
        self._series.clear()
        self._images.clear()
        self._entries.clear()
        self.problems.clear()
        self._update_problem_label()

    def add_entries(self, entries: list[BrowserEntry]) -> None:
        for e in entries:
            if e.path in self._images:
                continue
            study = self._studies.get(e.study_key)
            if study is None:
                study = QTreeWidgetItem([self._study_text(e)])
                study.setData(0, PATH_ROLE, None)
                study.setData(0, Qt.ItemDataRole.UserRole + 2, e)
                self.tree.addTopLevelItem(study)
                study.setExpanded(True)
                self._studies[e.study_key] = study
            skey = (e.study_key, e.series_key)
            series = self._series.get(skey)
            if series is None:
                series = QTreeWidgetItem([e.series_label])
                study.addChild(series)
                series.setExpanded(True)
                self._series[skey] = series
            item = QTreeWidgetItem([e.image_label])
            item.setData(0, PATH_ROLE, e.path)
            item.setToolTip(0, e.path)
            series.addChild(item)
            self._images[e.path] = item
            self._entries[e.path] = e

    def _study_text(self, e: BrowserEntry) -> str:
        return (e.study_label_deid or "Study") if self.deidentified else e.study_label

    def set_deidentified(self, on: bool) -> None:
        self.deidentified = on
        for study in self._studies.values():
            e = study.data(0, Qt.ItemDataRole.UserRole + 2)
            study.setText(0, self._study_text(e))
        for path, item in self._images.items():
            item.setToolTip(0, "" if on else path)

    def set_thumbnail(self, path: str, gray: np.ndarray) -> None:
        item = self._images.get(path)
        if item is not None:
            item.setIcon(0, thumbnail_icon(gray))

    def mark_failed(self, path: str, reason: str) -> None:
        item = self._images.get(path)
        if item is not None:
            item.setForeground(0, QBrush(QColor("#ff7070")))
            item.setToolTip(0, reason)
        self.add_problem(path, reason)

    def add_problem(self, path: str, reason: str) -> None:
        for i in range(self.problems.count()):
            if self.problems.item(i).data(PATH_ROLE) == path:
                return
        item = QListWidgetItem(reason if path in reason else f"{path}: {reason}")
        item.setData(PATH_ROLE, path)
        item.setForeground(QBrush(QColor("#ff9090")))
        self.problems.addItem(item)
        self._update_problem_label()

    def _update_problem_label(self) -> None:
        n = self.problems.count()
        self.problems_box.setVisible(n > 0)
        self.problems_label.setText(f"Could not open: {n} file(s)" if n else "Could not open: none")

    def problem_paths(self) -> list[str]:
        return [self.problems.item(i).data(PATH_ROLE) for i in range(self.problems.count())]

    def image_paths(self) -> list[str]:
        """Image paths in tree order."""
        out: list[str] = []
        for i in range(self.tree.topLevelItemCount()):
            study = self.tree.topLevelItem(i)
            for j in range(study.childCount()):
                series = study.child(j)
                for k in range(series.childCount()):
                    out.append(series.child(k).data(0, PATH_ROLE))
        return out

    def has_thumbnail(self, path: str) -> bool:
        item = self._images.get(path)
        return item is not None and not item.icon(0).isNull()

    # -------------------------------------------------------------- selection
    def select_path(self, path: str) -> None:
        item = self._images.get(path)
        if item is not None:
            self.tree.blockSignals(True)
            self.tree.setCurrentItem(item)
            self.tree.blockSignals(False)

    def neighbour(self, path: str | None, offset: int) -> str | None:
        paths = self.image_paths()
        if not paths:
            return None
        if path not in paths:
            return paths[0]
        i = paths.index(path) + offset
        return paths[i] if 0 <= i < len(paths) else None

    def _on_activated(self, item: QTreeWidgetItem, _col: int = 0) -> None:
        path = item.data(0, PATH_ROLE)
        if path:
            self.imageActivated.emit(path)
