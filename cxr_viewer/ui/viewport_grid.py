"""Viewport layouts (1x1, 1x2, 2x1, 2x2): each viewport is its own ImageView (corner text,
window, zoom, heat map), the active one is outlined, a series or image dragged from the study
browser (or a file from the desktop) is shown in the viewport it is dropped on.

The window's main ``ImageView`` (the image being read, with the AI) is always one of the
viewports (the *primary*); the others are created on demand and kept when the layout shrinks.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout, QWidget

from cxr_viewer.ui.heat_overlay import ViewportAI
from cxr_viewer.ui.image_view import ImageView
from cxr_viewer.ui.study_browser import paths_from_mime
from cxr_viewer.ui.sync import SyncGroup

LAYOUTS: dict[str, tuple[int, int]] = {"1x1": (1, 1), "1x2": (1, 2), "2x1": (2, 1), "2x2": (2, 2)}
ACTIVE_STYLE = "#viewport { border: 2px solid #ffb000; background: black; }"
IDLE_STYLE = "#viewport { border: 2px solid #303030; background: black; }"


def _dropped_path(event) -> str | None:
    """The image a drop brings: a study-browser drag (its paths in the mime data), else the
    first local file of a desktop drag."""
    mime = event.mimeData()
    paths = paths_from_mime(mime)
    if paths:
        return paths[0]
    if mime.hasUrls():
        urls = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        return urls[0] if urls else None
    return None


class Viewport(QFrame):
    """One cell: a title line (e.g. the prior's date and interval) over an ImageView."""

    activated = Signal(object)  # self
    pathDropped = Signal(object, str)  # self, path

    def __init__(self, view: ImageView | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("viewport")
        self.view = view if view is not None else ImageView()
        self.title = QLabel("")
        self.title.setObjectName("viewport_title")
        self.title.setStyleSheet("QLabel { color: #ffd070; background: #202020; padding: 1px 4px;"
                                 " font-weight: bold; }")
        self.title.setVisible(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(0)
        lay.addWidget(self.title)
        lay.addWidget(self.view, 1)
        self.path: str | None = None
        self.ai = ViewportAI()  # this viewport's own prediction, heat maps, overlay
        self.setAcceptDrops(True)
        viewport = self.view.glw.viewport()
        viewport.setAcceptDrops(True)
        viewport.installEventFilter(self)
        self.view.glw.setAcceptDrops(True)
        self.set_active(False)

    def set_title(self, text: str) -> None:
        self.title.setText(text)
        self.title.setVisible(bool(text))

    def set_active(self, on: bool) -> None:
        self.active = on
        self.setStyleSheet(ACTIVE_STYLE if on else IDLE_STYLE)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        t = event.type()
        if t == QEvent.Type.MouseButtonPress:
            self.activated.emit(self)
        elif t in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if _dropped_path(event):
                event.setDropAction(Qt.DropAction.CopyAction)  # the source keeps its item
                event.accept()
                return True
        elif t == QEvent.Type.Drop:
            path = _dropped_path(event)
            if path:
                event.setDropAction(Qt.DropAction.CopyAction)
                event.accept()
                self.activated.emit(self)
                self.pathDropped.emit(self, path)
                return True
        return False


class ViewportGrid(QWidget):
    """Up to four viewports in a grid; ``primary`` wraps the window's main ImageView."""

    layoutChanged = Signal(str)
    activeChanged = Signal(object)  # Viewport
    pathDropped = Signal(object, str)  # Viewport, path
    imageShown = Signal(object, object)  # Viewport (not the primary), ImageData
    measurementsChanged = Signal(object)  # Viewport whose measurements changed

    def __init__(self, primary_view: ImageView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sync = SyncGroup(self)
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(1)
        self.primary = self._make_viewport(primary_view)
        self.viewports: list[Viewport] = [self.primary]
        self.order: list[Viewport] = [self.primary]  # cell i shows order[i]
        self.layout_name = "1x1"
        self.active = self.primary
        self.deidentified = False
        self.annotations_visible = True
        self.loader: Callable[[Viewport, str], None] | None = None
        self.left_mode = "pan"  # pan or measure, the same in every viewport
        self.set_layout("1x1")
        self.set_active(self.primary)

    def _make_viewport(self, view: ImageView | None = None) -> Viewport:
        vp = Viewport(view)
        vp.activated.connect(self.set_active)
        vp.pathDropped.connect(self._on_drop)
        self.sync.add(vp.view)
        vp.view.measurementsChanged.connect(lambda: self.measurementsChanged.emit(vp))
        if view is None:
            vp.view.set_deidentified(getattr(self, "deidentified", False))
            vp.view.set_annotations_visible(getattr(self, "annotations_visible", True))
            vp.view.set_left_mode(getattr(self, "left_mode", "pan"))
        return vp

    def set_left_mode(self, mode: str) -> None:
        """Pan or measure with the left button, in every viewport (a nodule is measured on the
        current image and on the prior alike)."""
        self.left_mode = mode
        for vp in self.viewports:
            vp.view.set_left_mode(mode)

    # ---------------------------------------------------------------- layout
    @property
    def cells(self) -> int:
        rows, cols = LAYOUTS[self.layout_name]
        return rows * cols

    def set_layout(self, name: str, order: list[Viewport] | None = None) -> None:
        """Show ``name`` (a key of :data:`LAYOUTS`); ``order`` puts viewports in cells (the
        primary is always shown; by default it keeps its cell)."""
        rows, cols = LAYOUTS[name]
        n = rows * cols
        while len(self.viewports) < n:
            self.viewports.append(self._make_viewport())
        if order is None:
            order = [vp for vp in self.order if vp in self.viewports]
            order += [vp for vp in self.viewports if vp not in order]
        order = list(order)
        if self.primary not in order[:n]:
            order = [self.primary] + [vp for vp in order if vp is not self.primary]
        self.order = order
        for vp in self.viewports:
            self._grid.removeWidget(vp)
            vp.setVisible(False)
        for i, vp in enumerate(order[:n]):
            self._grid.addWidget(vp, i // cols, i % cols)
            vp.setVisible(True)
        for r in range(2):
            self._grid.setRowStretch(r, 1 if r < rows else 0)
        for c in range(2):
            self._grid.setColumnStretch(c, 1 if c < cols else 0)
        self.layout_name = name
        if not self.active.isVisible() and self.isVisible():
            self.set_active(self.primary)
        self.layoutChanged.emit(name)

    def visible_viewports(self) -> list[Viewport]:
        return self.order[: self.cells]

    def set_active(self, vp: Viewport) -> None:
        for other in self.viewports:
            other.set_active(other is vp)
        changed = vp is not self.active
        self.active = vp
        if changed:
            self.activeChanged.emit(vp)

    def secondary(self, index: int = 0) -> Viewport:
        """The ``index``-th viewport other than the primary (created when missing)."""
        others = [vp for vp in self.viewports if vp is not self.primary]
        while len(others) <= index:
            vp = self._make_viewport()
            self.viewports.append(vp)
            others.append(vp)
        return others[index]

    # ---------------------------------------------------------------- content
    def _on_drop(self, vp: Viewport, path: str) -> None:
        self.pathDropped.emit(vp, path)
        if self.loader is not None and vp is not self.primary:
            self.loader(vp, path)

    def show_in(self, vp: Viewport, image, title: str = "") -> None:
        """Put a loaded image in a (non-primary) viewport, in step with the others."""
        vp.path = image.path
        vp.ai.reset(image.image_id)  # the old image's results are dropped with it
        vp.view.set_placeholder("")
        vp.view.set_image(image)
        vp.set_title(title)
        source = self.primary if self.primary.view.image is not None else None
        if source is not None:
            self.sync.window_changed(source.view)
            self.sync.view_changed(source.view)
        self.imageShown.emit(vp, image)

    def set_deidentified(self, on: bool) -> None:
        self.deidentified = on
        for vp in self.viewports:
            if vp is not self.primary:
                vp.view.set_deidentified(on)

    def set_annotations_visible(self, on: bool) -> None:
        self.annotations_visible = on
        for vp in self.viewports:
            if vp is not self.primary:
                vp.view.set_annotations_visible(on)
