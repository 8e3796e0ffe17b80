"""The central image view: pyqtgraph GraphicsLayoutWidget + ViewBox + ImageItem (row-major).

The ImageItem only ever receives 8-bit images rendered by the core's ``DisplayRenderer`` (a
precomputed LUT), never 16-bit data with ``setLevels`` (pyqtgraph issue #1590). During a right-drag
window/level only the visible region is rendered, subsampled to screen resolution; the full-resolution
image is rendered again when the drag stops.

All image-space items (image, heat map, measurements) are children of one ``orient`` group whose
transform carries rotation and flips, so their coordinates stay image pixels (x = column, y = row).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPen, QTransform
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsLineItem,
    QGraphicsRectItem,
    QGraphicsSimpleTextItem,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from cxr_viewer.imaging.window import VOI
from cxr_viewer.io.types import ImageData
from cxr_viewer.ui.viewstate import (
    Orientation,
    distance_mm,
    dragged_window,
    edge_labels,
    orient_matrix,
    wl_step,
)

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

#: DICOM keywords shown in the corner annotations that identify the patient.
PATIENT_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge")
#: Screen distance (device-independent px) within which a press grabs a measurement endpoint.
HANDLE_GRAB_PX = 8.0

LIVE_REFRESH_MS = 150  # full-resolution render this long after the last drag move
#: images at least this large are first painted at screen resolution (reading workflow)
FIRST_PAINT_LIVE_PIXELS = 6_000_000


#: grey level -> opaque RGB32 pixel (0xFFgggggg)
_GRAY_TO_RGB32 = np.uint32(0xFF000000) | (np.arange(256, dtype=np.uint32) * np.uint32(0x010101))


class DisplayImageItem(pg.ImageItem):
    """ImageItem for 8-bit display images that paints them as Format_RGB32.

    pyqtgraph hands a 2-D uint8 image to Qt as Grayscale8 (or Indexed8 when levels are set);
    QPainter's scaled blit of those formats converts every paint and is ~4x slower than RGB32
    (measured 4.5 ms vs 0.6 ms for 750x750 -> 960x960 here). One uint32 gather makes the RGB32
    buffer. Anything else (levels, LUT, colour) goes through pyqtgraph's own path.
    """

    def render(self):
        image = self.image
        if (image is None or image.ndim != 2 or image.dtype != np.uint8 or self.lut is not None
                or self.levels is not None or self.autoDownsample or self.axisOrder != "row-major"):
            return super().render()
        # kept alive: the QImage shares the buffer; "clip" skips the bounds check (uint8 < 256)
        self._rgb32 = _GRAY_TO_RGB32.take(image, mode="clip")
        h, w = image.shape
        self.qimage = QImage(self._rgb32.data, w, h, 4 * w, QImage.Format.Format_RGB32)
        # pyqtgraph's render() bookkeeping (pinned pyqtgraph 0.14.x)
        self._renderRequired = False
        self._unrenderable = False


@dataclass
class Measurement:
    r0: float
    c0: float
    r1: float
    c1: float
    px: float
    mm: float | None
    line: QGraphicsLineItem | None = None
    label: QGraphicsRectItem | None = None

    def text(self) -> str:
        if self.mm is None:
            return f"{self.px:.1f} px (uncalibrated)"
        return f"{self.mm:.1f} mm"


class _ViewBox(pg.ViewBox):
    """ViewBox whose right drag is window/level and whose left drag pans or measures."""

    wlDragged = Signal(float, float, int)  # total dx, dy in screen px; phase 0 start 1 move 2 end
    measureDragged = Signal(object, object, int)  # start, current (view coords); phase
    handleDragged = Signal(object, object, int)  # handle key, current (view coords); phase

    def __init__(self) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.left_mode = "pan"
        self.setBackgroundColor(QColor(0, 0, 0))
        self.find_handle = None  # callable(scene pos) -> handle key or None (set by ImageView)
        self._handle = None

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802 - pyqtgraph API
        phase = 0 if ev.isStart() else (2 if ev.isFinish() else 1)
        if ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            d = ev.screenPos() - ev.buttonDownScreenPos()
            self.wlDragged.emit(float(d.x()), float(d.y()), phase)
            return
        if ev.button() == Qt.MouseButton.LeftButton:
            if phase == 0:
                self._handle = (self.find_handle(ev.buttonDownScenePos())
                                if self.find_handle is not None else None)
            if self._handle is not None:  # dragging a measurement's endpoint, in any mode
                ev.accept()
                handle = self._handle
                if phase == 2:
                    self._handle = None
                self.handleDragged.emit(handle, self.mapSceneToView(ev.scenePos()), phase)
                return
        if ev.button() == Qt.MouseButton.LeftButton and self.left_mode == "measure":
            ev.accept()
            start = self.mapSceneToView(ev.buttonDownScenePos())
            cur = self.mapSceneToView(ev.scenePos())
            self.measureDragged.emit(start, cur, phase)
            return
        if ev.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            super().mouseDragEvent(ev, axis)
            return
        ev.ignore()


class ImageView(QWidget):
    """Displays one ImageData with window/level, orientation, zoom, heat map and measurements."""

    windowChanged = Signal(object)  # the VOI now displayed
    viewChanged = Signal()  # zoom / orientation changed
    pixelHovered = Signal(str)  # status-bar readout
    measurementsChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground("k")
        self.glw.ci.setContentsMargins(0, 0, 0, 0)
        self.vb = _ViewBox()
        self.vb.disableAutoRange()
        self.glw.addItem(self.vb)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.glw)

        self.orient = pg.ItemGroup()
        self.vb.addItem(self.orient, ignoreBounds=True)
        self.image_item = DisplayImageItem(axisOrder="row-major")
        self.image_item.setParentItem(self.orient)
        self.heat_item = pg.ImageItem(axisOrder="row-major")
        self.heat_item.setParentItem(self.orient)
        self.heat_item.setZValue(10)
        self.heat_item.hide()

        self.image: ImageData | None = None
        self.frame = 0
        self.voi = None
        self.loading_image = False  # True while set_image announces the new image's window
        self.preset_label = ""
        self.invert = False
        self.orientation = Orientation()
        self.measurements: list[Measurement] = []
        self.deidentified = False
        self.annotations_visible = True
        self.show_overlay_planes = True  # DICOM overlay planes (60xx), on as in dcmtk
        self._renderer = None
        self._wl_step = 1.0
        self._drag_base: tuple[float, float, str] | None = None
        self._measure_live: tuple[QGraphicsLineItem, QPointF] | None = None
        self.displayed: np.ndarray | None = None  # the last 8-bit array given to the ImageItem
        self.displayed_region: tuple[tuple[int, int, int, int], int] | None = None
        self.heat_rgba: np.ndarray | None = None
        self.heat_label = ""
        self.heat_method = ""  # method id of the map on screen ("" when none)
        self.heat_legend: dict | None = None  # what the in-view legend says (tests read it)
        self.placeholder_text = ""
        # image id -> [(r0, c0, r1, c1)]: measurements belong to their image
        self._saved_measurements: dict[str, list[tuple[float, float, float, float]]] = {}

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(LIVE_REFRESH_MS)
        self._refresh_timer.timeout.connect(self._finish_live)

        self.vb.wlDragged.connect(self._on_wl_drag)
        self.vb.measureDragged.connect(self._on_measure_drag)
        self.vb.handleDragged.connect(self._on_handle_drag)
        self.vb.find_handle = self._find_handle
        self.vb.sigRangeChanged.connect(lambda *_: self._on_range_changed())
        self.vb.sigRangeChangedManually.connect(self._on_manual_range)
        self.vb.sigResized.connect(self._on_resized)
        self._auto_fit = True  # keep fitting on resize until the user zooms or pans
        self.glw.scene().sigMouseMoved.connect(self._on_mouse_moved)

        self._corners: dict[str, QLabel] = {}
        for corner in ("tl", "tr", "bl", "br"):
            label = QLabel(self.glw)
            label.setObjectName(f"annotation_{corner}")
            label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            label.setStyleSheet(
                "QLabel { color: #e8e8c8; background: rgba(0, 0, 0, 110); padding: 1px 3px; }")
            font = QFont("monospace")
            font.setStyleHint(QFont.StyleHint.Monospace)
            font.setPointSizeF(9.5)
            label.setFont(font)
            align = Qt.AlignmentFlag.AlignRight if corner.endswith("r") else Qt.AlignmentFlag.AlignLeft
            label.setAlignment(align | (Qt.AlignmentFlag.AlignBottom if corner.startswith("b") else Qt.AlignmentFlag.AlignTop))
            self._corners[corner] = label
        # patient-direction labels at the middle of each edge (Patient Orientation)
        self._edges: dict[str, QLabel] = {}
        for edge in ("left", "right", "top", "bottom"):
            label = QLabel(self.glw)
            label.setObjectName(f"orientation_{edge}")
            label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            label.setStyleSheet("QLabel { color: #f0f0a0; background: rgba(0, 0, 0, 110); "
                                "padding: 1px 4px; font-weight: bold; }")
            label.setVisible(False)
            self._edges[edge] = label
        self.placeholder = QLabel(self.glw)
        self.placeholder.setObjectName("load_failure_placeholder")
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setStyleSheet("QLabel { color: #ff9a7a; background: rgba(40, 10, 10, 200);"
                                       " border: 1px solid #ff9a7a; padding: 12px; }")
        self.placeholder.setVisible(False)
        # in-view heat-map legend: finding, probability, threshold, method, colour bar
        self.legend = QFrame(self.glw)
        self.legend.setObjectName("heatmap_legend")
        self.legend.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.legend.setStyleSheet("#heatmap_legend { background: rgba(0, 0, 0, 170); } "
                                  "QLabel { color: #f0f0f0; background: transparent; }")
        legend_layout = QVBoxLayout(self.legend)
        legend_layout.setContentsMargins(6, 4, 6, 4)
        legend_layout.setSpacing(2)
        self.legend_text = QLabel()
        self.legend_bar = QLabel()
        self.legend_scale = QLabel()
        small = self.legend_scale.font()
        small.setPointSizeF(max(6.0, small.pointSizeF() * 0.85))
        self.legend_scale.setFont(small)
        for w in (self.legend_text, self.legend_bar, self.legend_scale):
            legend_layout.addWidget(w)
        self.legend.setVisible(False)
        self.glw.installEventFilter(self)

    # ------------------------------------------------------------------ image and window
    def set_image(self, image: ImageData, voi=None, preset_label: str = "") -> None:
        from cxr_viewer.imaging.presets import default_preset
        from cxr_viewer.imaging.render import DisplayRenderer

        self._store_measurements()
        self.image = image
        self.frame = 0
        self._renderer = DisplayRenderer(image)
        frames = image.frames
        self._wl_step = wl_step(float(np.min(frames)), float(np.max(frames)))
        if voi is None:
            voi = default_preset(image).resolve(image)
        preset_label = preset_label or voi.label
        self.voi = voi
        self.preset_label = preset_label
        self.invert = False
        self.orientation = Orientation()
        self._drop_measurement_items()
        for r0, c0, r1, c1 in self._saved_measurements.get(image.image_id, []):
            self.add_measurement(r0, c0, r1, c1)
        self.set_heatmap(None)
        self._apply_orientation()
        if image.shape[0] * image.shape[1] >= FIRST_PAINT_LIVE_PIXELS:
            # a large image's first frame at screen resolution (like a live drag), the full
            # resolution LIVE_REFRESH_MS later: the next image is on screen sooner
            self.fit()
            self.render_live()
            self._refresh_timer.start()
        else:
            self.render_full()
            self.fit()
        # A new image's own window is announced (status, presets) but is not a user's change:
        # synchronised viewports must not take it over (see ui/sync.py).
        self.loading_image = True
        try:
            self.windowChanged.emit(self.voi)
        finally:
            self.loading_image = False

    def clear(self) -> None:
        """Show nothing (a failed load): no pixels, no heat map, no marks, no corner text."""
        self._store_measurements()
        self.image = None
        self._renderer = None
        self.image_item.clear()
        self.set_heatmap(None)
        self._drop_measurement_items()
        self.displayed = None
        self.displayed_region = None
        self.voi = None
        self.preset_label = ""
        self._update_annotations()

    def set_placeholder(self, text: str) -> None:
        """An inline message in the middle of the view ("" hides it)."""
        self.placeholder_text = text
        self.placeholder.setText(text)
        self.placeholder.setVisible(bool(text))
        self._place_annotations()

    # ---- measurements belong to their image -------------------------------------------
    def _store_measurements(self) -> None:
        if self.image is not None:
            self._saved_measurements[self.image.image_id] = [
                (m.r0, m.c0, m.r1, m.c1) for m in self.measurements]

    def _drop_measurement_items(self) -> None:
        """Remove the measurement items from the scene without forgetting them."""
        for m in self.measurements:
            for item in (m.line, m.label):
                if item is not None and item.scene() is not None:
                    item.scene().removeItem(item)
        had = bool(self.measurements)
        self.measurements = []
        if had:
            self.measurementsChanged.emit()

    def set_voi(self, voi: VOI, label: str = "") -> None:
        if self.image is None:
            return
        self.voi = voi
        self.preset_label = label or voi.label
        self.render_full()
        self.windowChanged.emit(voi)

    def apply_preset(self, n: int) -> bool:
        """Window preset key ``n`` (1-based) of this view's image: header windows by their
        explanation first, then auto, full range. False when the image has no such preset."""
        from cxr_viewer.imaging.presets import presets_for

        if self.image is None:
            return False
        presets = presets_for(self.image)[:9]
        if not (1 <= n <= len(presets)):
            return False
        voi = presets[n - 1].resolve(self.image)
        self.set_voi(voi, voi.label)
        return True

    def reset_window(self) -> None:
        """Back to the image's default window, not inverted."""
        from cxr_viewer.imaging.presets import default_preset

        if self.image is None:
            return
        voi = default_preset(self.image).resolve(self.image)
        self.set_invert(False)
        self.set_voi(voi, voi.label)

    def set_invert(self, invert: bool) -> None:
        self.invert = bool(invert)
        if self.image is not None:
            self.render_full()
            self.windowChanged.emit(self.voi)

    def set_overlay_planes(self, visible: bool) -> None:
        """Show or hide the image's DICOM overlay planes (burned into exports when shown)."""
        self.show_overlay_planes = bool(visible)
        if self.image is not None:
            self.render_full()
            self.viewChanged.emit()

    def set_frame(self, frame: int) -> None:
        """Show another frame of a multi-frame image (clamped); window and view are kept."""
        if self.image is None:
            return
        frame = min(max(int(frame), 0), self.image.num_frames - 1)
        if frame != self.frame:
            self.frame = frame
            self.render_full()
            self.viewChanged.emit()

    def current_window(self) -> tuple[float, float, str]:
        """(center, width, function) of the displayed VOI; a LUT is replaced by the auto window."""
        voi = self.voi
        if voi is None or voi.is_lut:
            from cxr_viewer.imaging.presets import AutoWindow

            voi = AutoWindow().resolve(self.image)
        return float(voi.center), float(voi.width), str(getattr(voi, "function", "LINEAR"))

    def render_full(self) -> None:
        if self.image is None or self._renderer is None:
            return
        arr = self._renderer.render(self.voi, invert=self.invert, frame=self.frame,
                                    overlays=self.show_overlay_planes)
        rows, cols = self.image.shape
        self._show(arr, (0, rows, 0, cols), 1)

    def render_live(self) -> None:
        """Render only what is visible, at screen resolution (used while dragging)."""
        if self.image is None or self._renderer is None:
            return
        region, step = self.visible_region()
        arr = self._renderer.render(self.voi, invert=self.invert, frame=self.frame,
                                    region=region, step=step, overlays=self.show_overlay_planes)
        self._show(arr, region, step)

    def visible_region(self) -> tuple[tuple[int, int, int, int], int]:
        rows, cols = self.image.shape
        view = self.orient.mapRectFromParent(self.vb.viewRect())
        r0 = max(0, int(math.floor(view.top())))
        r1 = min(rows, int(math.ceil(view.bottom())))
        c0 = max(0, int(math.floor(view.left())))
        c1 = min(cols, int(math.ceil(view.right())))
        if r1 <= r0 or c1 <= c0:
            r0, r1, c0, c1 = 0, rows, 0, cols
        # Never more samples than device pixels: ceil, with a tolerance so that a fitted image at
        # 1.0x-1.05x is not halved.
        step = max(1, math.ceil(self.image_pixels_per_device_pixel() - 0.05))
        return (r0, r1, c0, c1), step

    def _show(self, arr: np.ndarray, region: tuple[int, int, int, int], step: int) -> None:
        r0, _r1, c0, _c1 = region
        self.image_item.setImage(arr, autoLevels=False)  # 8-bit display values, no levels
        self.image_item.setRect(QRectF(c0, r0, arr.shape[1] * step, arr.shape[0] * step))
        self.displayed = arr
        self.displayed_region = (region, step)
        self._update_annotations()

    # ------------------------------------------------------------------ drag window/level
    def _on_wl_drag(self, dx: float, dy: float, phase: int) -> None:
        if self.image is None:
            return
        if phase == 0 or self._drag_base is None:
            self._drag_base = self.current_window()
        c0, w0, function = self._drag_base
        from cxr_viewer.imaging.render import display_inverted

        # the same on screen for MONOCHROME1 and MONOCHROME2: down darker, right less contrast
        c, w = dragged_window(c0, w0, dx, dy, self._wl_step,
                              inverted=display_inverted(self.image, self.invert))
        self.voi = VOI.window(c, w, function, label="Manual")
        self.preset_label = "Manual"
        if phase == 2:
            self._drag_base = None
            self._refresh_timer.stop()
            self.render_full()
        else:
            self.render_live()
            self._refresh_timer.start()
        self.windowChanged.emit(self.voi)

    def _finish_live(self) -> None:
        if self.image is None or self.displayed_region is None:
            return
        full = ((0, self.image.shape[0], 0, self.image.shape[1]), 1)
        if self.displayed_region != full:
            self.render_full()

    @property
    def wl_step(self) -> float:
        return self._wl_step

    # ------------------------------------------------------------------ geometry
    def _apply_orientation(self) -> None:
        if self.image is None:
            return
        rows, cols = self.image.shape
        m = orient_matrix(rows, cols, self.orientation)
        self.orient.setTransform(QTransform(m[0, 0], m[1, 0], m[0, 1], m[1, 1], m[0, 2], m[1, 2]))

    def set_orientation(self, o: Orientation) -> None:
        self.orientation = o
        self._apply_orientation()
        self.fit()
        self._update_annotations()
        self.viewChanged.emit()

    def rotate(self, clockwise: bool) -> None:
        self.set_orientation(self.orientation.rotated(-1 if clockwise else 1))

    def flip(self, horizontal: bool) -> None:
        self.set_orientation(self.orientation.flipped(horizontal))

    def image_rect_in_view(self) -> QRectF:
        rows, cols = self.image.shape if self.image is not None else (1, 1)
        return self.orient.mapRectToParent(QRectF(0, 0, cols, rows))

    def fit(self) -> None:
        if self.image is None:
            return
        self._auto_fit = True
        self.vb.setRange(rect=self.image_rect_in_view(), padding=0.0)
        self.viewChanged.emit()

    def _on_manual_range(self, *_args) -> None:
        self._auto_fit = False

    def _on_resized(self, *_args) -> None:
        if self._auto_fit and self.image is not None:
            self.vb.setRange(rect=self.image_rect_in_view(), padding=0.0)

    def _dpr(self) -> float:
        return float(self.devicePixelRatioF() or 1.0)

    def zoom(self) -> float:
        """Device pixels per image pixel."""
        vps = self.vb.viewPixelSize()[0]
        return self._dpr() / vps if vps > 0 else 1.0

    def image_pixels_per_device_pixel(self) -> float:
        return 1.0 / max(self.zoom(), 1e-9)

    def set_zoom(self, zoom: float, center: QPointF | None = None) -> None:
        if self.image is None:
            return
        if center is None:
            center = self.vb.viewRect().center()
        self._auto_fit = False
        w = self.vb.width() * self._dpr() / zoom
        h = self.vb.height() * self._dpr() / zoom
        self.vb.setRange(xRange=(center.x() - w / 2, center.x() + w / 2),
                         yRange=(center.y() - h / 2, center.y() + h / 2), padding=0.0)
        self.viewChanged.emit()

    def zoom_by(self, factor: float) -> None:
        self.set_zoom(self.zoom() * factor)

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def reset_view(self) -> None:
        self.set_orientation(Orientation())

    def _on_range_changed(self) -> None:
        self._update_annotations()
        self.viewChanged.emit()

    # ------------------------------------------------------------------ heat map
    def set_heatmap(self, rgba: np.ndarray | None, opacity: float = 0.4, label: str = "",
                    legend: dict | None = None) -> None:
        """Show an RGBA heat map over the image (None hides it); ``label`` goes in a corner.

        ``legend`` (also without a map, to say why none is drawn): ``title`` (finding and
        probability), ``detail`` (threshold, method, scaling, pinned), ``colormap`` (draws the
        colour bar when a map is shown), ``note`` (e.g. why nothing is drawn).
        """
        self.heat_rgba = rgba
        self.heat_label = label if rgba is not None else ""
        self.heat_method = (legend or {}).get("method", "") if rgba is not None else ""
        self._set_legend(legend, rgba is not None)
        self._update_annotations()
        if rgba is None:
            self.heat_item.clear()
            self.heat_item.hide()
            return
        self.heat_item.setImage(rgba, autoLevels=False, levels=(0, 255))
        rows, cols = rgba.shape[:2]
        self.heat_item.setRect(QRectF(0, 0, cols, rows))
        self.heat_item.setOpacity(float(opacity))
        self.heat_item.show()

    def _set_legend(self, legend: dict | None, drawn: bool) -> None:
        self.heat_legend = dict(legend) if legend else None
        if not legend:
            self.legend.setVisible(False)
            return
        import html

        lines = [f"<b>{html.escape(legend.get('title', ''))}</b>"]
        if legend.get("detail"):
            lines.append(html.escape(legend["detail"]))
        if legend.get("note"):
            lines.append(f"<span style='color:#ffcf70'>{html.escape(legend['note'])}</span>")
        bar = None
        colormap = legend.get("colormap")
        if drawn and colormap:
            bar = _colorbar_pixmap(colormap)
        self.legend_text.setText("<br>".join(lines))
        self.legend_bar.setVisible(bar is not None)
        self.legend_scale.setVisible(bar is not None)
        if bar is not None:
            self.legend_bar.setPixmap(bar)
            self.legend_scale.setText(legend.get("scale", "0 .. 1"))
        self.legend.setVisible(True)
        self.legend.adjustSize()
        self._place_annotations()

    def heatmap_visible(self) -> bool:
        return self.heat_rgba is not None and self.heat_item.isVisible()

    # ------------------------------------------------------------------ measurements
    def set_left_mode(self, mode: str) -> None:
        self.vb.left_mode = mode
        cursor = Qt.CursorShape.CrossCursor if mode == "measure" else Qt.CursorShape.OpenHandCursor
        self.glw.viewport().setCursor(cursor)

    def _on_measure_drag(self, start, cur, phase: int) -> None:
        if self.image is None:
            return
        p0 = self.orient.mapFromParent(start)
        p1 = self.orient.mapFromParent(cur)
        if phase == 2:
            if self._measure_live is not None:
                self.orient.scene().removeItem(self._measure_live[0])
                self._measure_live = None
            if math.hypot(p1.x() - p0.x(), p1.y() - p0.y()) >= 1.0:  # not a stray click
                self.add_measurement(p0.y(), p0.x(), p1.y(), p1.x())
            return
        if self._measure_live is None:
            line = QGraphicsLineItem(self.orient)
            line.setPen(self._measure_pen())
            line.setZValue(20)
            self._measure_live = (line, p0)
        self._measure_live[0].setLine(p0.x(), p0.y(), p1.x(), p1.y())

    @staticmethod
    def _measure_pen(selected: bool = False) -> QPen:
        pen = QPen(QColor("#ffd400") if not selected else QColor("#00e5ff"))
        pen.setCosmetic(True)
        pen.setWidthF(2.0)
        return pen

    def add_measurement(self, r0: float, c0: float, r1: float, c1: float) -> Measurement:
        """Add a distance measurement between two points in image pixel coordinates."""
        spacing = self.image.spacing if self.image is not None else None
        px, mm = distance_mm(r0, c0, r1, c1, spacing.row_mm if spacing else None,
                             spacing.col_mm if spacing else None)
        m = Measurement(r0, c0, r1, c1, px, mm)
        m.line = QGraphicsLineItem(c0, r0, c1, r1, self.orient)
        m.line.setPen(self._measure_pen())
        m.line.setZValue(20)
        # label: upright, constant size, on a dark plate so it reads on bright bone
        m.label = QGraphicsRectItem(self.orient)
        m.label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        m.label.setPen(QPen(Qt.PenStyle.NoPen))
        m.label.setBrush(QColor(0, 0, 0, 170))
        text = QGraphicsSimpleTextItem(m.text(), m.label)
        text.setBrush(QColor("#ffd400"))
        text.setPos(8, 4)
        m.label.setRect(text.boundingRect().translated(8, 4).adjusted(-3, -1, 3, 1))
        m.label.setPos(c1, r1)
        m.label.setZValue(21)
        self.measurements.append(m)
        self._store_measurements()
        self.measurementsChanged.emit()
        return m

    def _find_handle(self, scene_pos) -> tuple[int, int] | None:
        """(measurement index, 0 start / 1 end) of the endpoint under ``scene_pos``, if any."""
        if self.image is None or not self.measurements:
            return None
        best, best_d = None, HANDLE_GRAB_PX
        for i, m in enumerate(self.measurements):
            for end, (r, c) in enumerate(((m.r0, m.c0), (m.r1, m.c1))):
                p = self.orient.mapToScene(QPointF(c, r))
                d = math.hypot(p.x() - scene_pos.x(), p.y() - scene_pos.y())
                if d <= best_d:
                    best, best_d = (i, end), d
        return best

    def _on_handle_drag(self, handle: tuple[int, int], cur, phase: int) -> None:
        i, end = handle
        if self.image is None or not 0 <= i < len(self.measurements):
            return
        p = self.orient.mapFromParent(cur)
        self.move_endpoint(i, end, p.y(), p.x())

    def move_endpoint(self, index: int, end: int, row: float, col: float) -> Measurement:
        """Move one endpoint (0 start, 1 end) of measurement ``index``; the length follows."""
        m = self.measurements[index]
        if end == 0:
            m.r0, m.c0 = row, col
        else:
            m.r1, m.c1 = row, col
        spacing = self.image.spacing if self.image is not None else None
        m.px, m.mm = distance_mm(m.r0, m.c0, m.r1, m.c1, spacing.row_mm if spacing else None,
                                 spacing.col_mm if spacing else None)
        m.line.setLine(m.c0, m.r0, m.c1, m.r1)
        text = m.label.childItems()[0]
        text.setText(m.text())
        m.label.setRect(text.boundingRect().translated(8, 4).adjusted(-3, -1, 3, 1))
        m.label.setPos(m.c1, m.r1)
        self._store_measurements()
        self.measurementsChanged.emit()
        return m

    def remove_measurement(self, index: int) -> None:
        m = self.measurements.pop(index)
        for item in (m.line, m.label):
            if item is not None and item.scene() is not None:
                item.scene().removeItem(item)
        self._store_measurements()
        self.measurementsChanged.emit()

    def clear_measurements(self) -> None:
        while self.measurements:
            self.remove_measurement(len(self.measurements) - 1)

    def select_measurement(self, index: int) -> None:
        for i, m in enumerate(self.measurements):
            if m.line is not None:
                m.line.setPen(self._measure_pen(i == index))

    # ------------------------------------------------------------------ readout and annotations
    def image_point(self, scene_pos: QPointF) -> tuple[float, float]:
        p = self.orient.mapFromScene(scene_pos)
        return p.x(), p.y()

    def _on_mouse_moved(self, scene_pos) -> None:
        if self.image is None:
            return
        x, y = self.image_point(scene_pos)
        self.pixelHovered.emit(self.readout(int(math.floor(y)), int(math.floor(x))))

    def readout(self, row: int, col: int) -> str:
        rows, cols = self.image.shape
        if not (0 <= row < rows and 0 <= col < cols):
            return ""
        from cxr_viewer.imaging.render import pixel_value_at

        stored, value, units = pixel_value_at(self.image, row, col, frame=self.frame)
        units_text = f" {units}" if units else ""
        return f"x {col}  y {row}   stored {stored:g}   value {value:g}{units_text}"

    def set_annotations_visible(self, visible: bool) -> None:
        self.annotations_visible = visible
        self._update_annotations()

    def set_deidentified(self, on: bool) -> None:
        self.deidentified = on
        self._update_annotations()

    def annotation_texts(self) -> dict[str, str]:
        img = self.image
        if img is None:
            return {"tl": "", "tr": "", "bl": "", "br": ""}
        tags = img.tags
        if self.deidentified:
            patient = "(de-identified)"
        else:
            name = str(tags.get("PatientName", "")).replace("^", " ").strip()
            pid = str(tags.get("PatientID", ""))
            patient = "\n".join(t for t in (name, f"ID {pid}" if pid else "") if t)
        date = "" if self.deidentified else str(tags.get("StudyDate", ""))
        study = " ".join(t for t in (date, str(tags.get("StudyDescription", ""))) if t)
        view = " ".join(t for t in (img.modality, str(tags.get("ViewPosition", "")),
                                    str(tags.get("BodyPartExamined", ""))) if t)
        if self.voi is not None and self.voi.is_lut:
            # a VOI LUT has no window: name it, never show a made-up W/L
            wl = lut_text(self.voi, self.preset_label)
        else:
            try:
                c, w, fn = self.current_window()
                wl = f"W {w:g}  L {c:g}" + (f" {fn}" if fn != "LINEAR" else "")
            except Exception:  # noqa: BLE001 - a preset without a window equivalent
                wl = ""
            if self.preset_label:
                wl += f"  [{self.preset_label}]"
        if self.invert:
            wl += "  inverted"
        rows, cols = img.shape
        o = self.orientation
        orient = []
        if o.rotation_k:
            orient.append(f"rot {(-90 * o.rotation_k) % 360}\N{DEGREE SIGN}")
        if o.flip_h:
            orient.append("flip H")
        if o.flip_v:
            orient.append("flip V")
        br = f"Zoom {self.zoom() * 100:.0f}%  {cols}x{rows}"
        if img.num_frames > 1:
            br = f"Frame {self.frame + 1}/{img.num_frames}\n" + br
        if orient:
            br += "\n" + " ".join(orient)
        if self.heat_label:
            wl = f"Heat map: {self.heat_label}\n" + wl
        laterality = str(tags.get("ImageLaterality", "") or tags.get("Laterality", "") or "")
        if laterality.strip():
            view = (view + "  " if view else "") + f"Laterality {laterality.strip()}"
        return {"tl": patient, "tr": study + ("\n" + view if view else ""), "bl": wl, "br": br}

    def orientation_labels(self) -> dict[str, str]:
        """Screen edge -> patient direction from Patient Orientation, after rotate/flip."""
        img = self.image
        if img is None:
            return {}
        value = img.tags.get("PatientOrientation")
        if isinstance(value, str):
            value = value.replace("\\", "/").split("/") if value else None
        try:
            pair = tuple(str(v) for v in value) if value else None
        except TypeError:
            pair = None
        rows, cols = img.shape
        return edge_labels(pair if pair and len(pair) == 2 else None, rows, cols,
                           self.orientation)

    def _update_annotations(self) -> None:
        texts = self.annotation_texts()
        for corner, label in self._corners.items():
            label.setText(texts[corner])
            label.setVisible(self.annotations_visible and bool(texts[corner]))
            label.resize(label.sizeHint())
        edges = self.orientation_labels()
        for edge, label in self._edges.items():
            text = edges.get(edge, "")
            label.setText(text)
            label.setVisible(self.annotations_visible and bool(text))
            label.resize(label.sizeHint())
        self._place_annotations()

    def _place_annotations(self) -> None:
        w, h = self.glw.width(), self.glw.height()
        margin = 8
        for corner, label in self._corners.items():
            # at most half the view each, wrapped: narrow viewports (1x2, 2x2 layouts) must not
            # overlap the left and right corner texts
            half = max(80, (w - 3 * margin) // 2)
            if label.wordWrap():
                label.setWordWrap(False)
                label.setMinimumWidth(0)
                label.setMaximumWidth(16777215)
                label.adjustSize()
            if label.width() > half:
                label.setWordWrap(True)
                label.setFixedWidth(half)
                label.resize(half, label.heightForWidth(half))
            x = margin if corner.endswith("l") else w - label.width() - margin
            y = margin if corner.startswith("t") else h - label.height() - margin
            label.move(max(0, x), max(0, y))
        for edge, label in self._edges.items():
            if edge in ("left", "right"):
                x = 2 if edge == "left" else w - label.width() - 2
                label.move(max(0, x), max(0, (h - label.height()) // 2))
            else:
                y = 2 if edge == "top" else h - label.height() - 2
                label.move(max(0, (w - label.width()) // 2), max(0, y))
        if self.placeholder.isVisible():
            self.placeholder.setFixedWidth(max(200, min(w - 40, 640)))
            self.placeholder.adjustSize()
            self.placeholder.move(max(0, (w - self.placeholder.width()) // 2),
                                  max(0, (h - self.placeholder.height()) // 2))
        if self.legend.isVisible():
            tr = self._corners["tr"]
            y = margin + (tr.height() + 6 if tr.isVisible() else 0)
            self.legend.move(max(0, w - self.legend.width() - margin), y)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if obj is self.glw and event.type() == QEvent.Type.Resize:
            self._place_annotations()
        return super().eventFilter(obj, event)


def lut_text(voi, label: str = "") -> str:
    """How a VOI LUT preset is named on screen: its explanation, never a made-up W/L."""
    name = (label or getattr(voi, "label", "") or "").removesuffix(" (LUT)").strip()
    return f"VOI LUT: {name or 'from the header'}"


def _colorbar_pixmap(colormap: str, length: int = 180, thickness: int = 10):
    """The colormap's colour bar (0 left, 1 right) as a QPixmap."""
    from PySide6.QtGui import QPixmap

    from cxr_viewer.imaging.heatmap import colorbar

    rgb = colorbar(colormap, length, thickness)
    qimg = QImage(rgb.data, rgb.shape[1], rgb.shape[0], 3 * rgb.shape[1],
                  QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(qimg)
