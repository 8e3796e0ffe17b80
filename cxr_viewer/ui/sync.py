"""Synchronisation of viewports (OHIF's sync groups, the idea not the code): zoom/pan and
window/level follow the viewport the user works in, and the cursor position is linked.

* Zoom is synchronised *relative to fit* (a prior with another detector size shows the same
  anatomy at the same size) and pan by the image-relative centre.
* Window/level goes only to images of the same modality (a CR window means nothing on an MR);
  a VOI LUT (a curve of one image) is never copied to another image.
* During a right-drag the other viewports render only their visible region (like the source);
  their full-resolution render follows when the drag stops.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QObject, QPointF, Signal

from cxr_viewer.imaging.window import VOI


def _fit_zoom(view) -> float:
    """Device pixels per image pixel when ``view`` fits its image."""
    rect = view.image_rect_in_view()
    dpr = view._dpr()
    w, h = max(rect.width(), 1e-9), max(rect.height(), 1e-9)
    return min(view.vb.width() * dpr / w, view.vb.height() * dpr / h)


def _relative_center(view) -> tuple[float, float]:
    rows, cols = view.image.shape
    c = view.orient.mapFromParent(view.vb.viewRect().center())
    return c.x() / cols, c.y() / rows


class SyncGroup(QObject):
    """Keeps a set of ImageViews in step (see the module docstring)."""

    cursorMoved = Signal(str)  # the linked readout of every viewport with an image

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.views: list = []
        self.sync_view = True
        self.sync_window = True
        self._busy = False
        self._markers: dict[int, object] = {}
        self.names: dict[int, str] = {}  # id(view) -> "prior" / "current" / "2" ...

    # ---------------------------------------------------------------- membership
    def add(self, view) -> None:
        if view in self.views:
            return
        self.views.append(view)
        view.windowChanged.connect(lambda _voi, v=view: self.window_changed(v))
        view.vb.sigRangeChangedManually.connect(lambda *_a, v=view: self.view_changed(v))
        view.viewChanged.connect(lambda v=view: self._on_view_changed(v))
        view.glw.scene().sigMouseMoved.connect(lambda pos, v=view: self.cursor_moved(v, pos))

    def set_enabled(self, on: bool) -> None:
        self.sync_view = self.sync_window = bool(on)

    def peers(self, source) -> list:
        return [v for v in self.views
                if v is not source and v.image is not None and v.isVisible()]

    # ---------------------------------------------------------------- window/level
    def window_changed(self, source) -> None:
        if self._busy or not self.sync_window or source.image is None or source.voi is None:
            return
        if getattr(source, "loading_image", False):
            return  # an image was just put into ``source``: its default window stays its own
        if source.voi.is_lut:
            return
        live = source._drag_base is not None
        c, w, fn = source.current_window()
        self._busy = True
        try:
            for v in self.peers(source):
                if v.image.modality != source.image.modality:
                    continue
                v.voi = VOI.window(c, w, fn, label=source.preset_label or "Manual")
                v.preset_label = source.preset_label
                if v.invert != source.invert:
                    v.invert = source.invert
                if live:
                    v.render_live()
                    v._refresh_timer.start()
                else:
                    v.render_full()
        finally:
            self._busy = False

    # ---------------------------------------------------------------- zoom / pan
    def _on_view_changed(self, source) -> None:
        # fit / zoom keys / 1:1 come as viewChanged; a range change while another view is being
        # synchronised is that sync's own echo
        if not self._busy:
            self.view_changed(source)

    def view_changed(self, source) -> None:
        if self._busy or not self.sync_view or source.image is None:
            return
        self._busy = True
        try:
            if source._auto_fit:
                for v in self.peers(source):
                    v.fit()
                return
            rel = source.zoom() / max(_fit_zoom(source), 1e-9)
            fx, fy = _relative_center(source)
            for v in self.peers(source):
                rows, cols = v.image.shape
                center = v.orient.mapToParent(QPointF(fx * cols, fy * rows))
                v.set_zoom(rel * _fit_zoom(v), center=center)
        finally:
            self._busy = False

    # ---------------------------------------------------------------- linked cursor
    def cursor_moved(self, source, scene_pos) -> None:
        if source.image is None:
            return
        x, y = source.image_point(scene_pos)
        rows, cols = source.image.shape
        fx, fy = x / cols, y / rows
        parts = []
        for v in self.views:
            if v.image is None or not v.isVisible():
                continue
            r, c = v.image.shape
            col, row = int(math.floor(fx * c)), int(math.floor(fy * r))
            text = v.readout(row, col)
            if v is not source:
                self._place_marker(v, fx * c, fy * r, bool(text))
            else:
                self._hide_marker(v)
            if text:
                name = self.names.get(id(v), "")
                parts.append(f"{name}: {text}" if name else text)
        if len(parts) > 1:
            self.cursorMoved.emit("   |   ".join(parts))

    def _place_marker(self, view, x: float, y: float, inside: bool) -> None:
        import pyqtgraph as pg

        marker = self._markers.get(id(view))
        if marker is None:
            marker = pg.ScatterPlotItem(size=14, symbol="+", pen=pg.mkPen("#40ff60", width=1.5),
                                        brush=None, pxMode=True)
            marker.setZValue(50)
            marker.setParentItem(view.orient)
            self._markers[id(view)] = marker
        marker.setData([x], [y])
        marker.setVisible(inside)

    def _hide_marker(self, view) -> None:
        marker = self._markers.get(id(view))
        if marker is not None:
            marker.setVisible(False)

    def marker_position(self, view) -> tuple[float, float] | None:
        """Where the linked cursor is drawn in ``view`` (image x, y), or None (tests)."""
        marker = self._markers.get(id(view))
        if marker is None or not marker.isVisible():
            return None
        xs, ys = marker.getData()
        return float(xs[0]), float(ys[0])
