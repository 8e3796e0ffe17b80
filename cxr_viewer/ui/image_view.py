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
    orient_matrix,
    wl_step,
)

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

#: DICOM keywords shown in the corner annotations that identify the patient.
PATIENT_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge")

LIVE_REFRESH_MS = 150  # full-resolution render this long after the last drag move


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

    def __init__(self) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.left_mode = "pan"
        self.setBackgroundColor(QColor(0, 0, 0))

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802 - pyqtgraph API
        phase = 0 if ev.isStart() else (2 if ev.isFinish() else 1)
        if ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            d = ev.screenPos() - ev.buttonDownScreenPos()
            self.wlDragged.emit(float(d.x()), float(d.y()), phase)
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

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(LIVE_REFRESH_MS)
        self._refresh_timer.timeout.connect(self._finish_live)

        self.vb.wlDragged.connect(self._on_wl_drag)
        self.vb.measureDragged.connect(self._on_measure_drag)
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
        self.glw.installEventFilter(self)

    # ------------------------------------------------------------------ image and window
    def set_image(self, image: ImageData, voi=None, preset_label: str = "") -> None:
        from cxr_viewer.imaging.presets import default_preset
        from cxr_viewer.imaging.render import DisplayRenderer

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
        self.clear_measurements()
        self.set_heatmap(None)
        self._apply_orientation()
        self.render_full()
        self.fit()
        self.windowChanged.emit(self.voi)

    def clear(self) -> None:
        self.image = None
        self._renderer = None
        self.image_item.clear()
        self.set_heatmap(None)
        self.clear_measurements()
        self.displayed = None
        self._update_annotations()

    def set_voi(self, voi: VOI, label: str = "") -> None:
        if self.image is None:
            return
        self.voi = voi
        self.preset_label = label or voi.label
        self.render_full()
        self.windowChanged.emit(voi)

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
        c, w = dragged_window(c0, w0, dx, dy, self._wl_step)
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
    def set_heatmap(self, rgba: np.ndarray | None, opacity: float = 0.4, label: str = "") -> None:
        """Show an RGBA heat map over the image (None hides it); ``label`` goes in a corner."""
        self.heat_rgba = rgba
        self.heat_label = label if rgba is not None else ""
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
        self.measurementsChanged.emit()
        return m

    def remove_measurement(self, index: int) -> None:
        m = self.measurements.pop(index)
        for item in (m.line, m.label):
            if item is not None and item.scene() is not None:
                item.scene().removeItem(item)
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
        study = " ".join(t for t in (str(tags.get("StudyDate", "")), str(tags.get("StudyDescription", ""))) if t)
        view = " ".join(t for t in (img.modality, str(tags.get("ViewPosition", "")),
                                    str(tags.get("BodyPartExamined", ""))) if t)
        try:
            c, w, fn = self.current_window()
            wl = f"W {w:g}  L {c:g}" + (f" {fn}" if fn != "LINEAR" else "")
        except Exception:  # noqa: BLE001 - a LUT preset without a window equivalent
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
        return {"tl": patient, "tr": study + ("\n" + view if view else ""), "bl": wl, "br": br}

    def _update_annotations(self) -> None:
        texts = self.annotation_texts()
        for corner, label in self._corners.items():
            label.setText(texts[corner])
            label.setVisible(self.annotations_visible and bool(texts[corner]))
            label.resize(label.sizeHint())
        self._place_annotations()

    def _place_annotations(self) -> None:
        w, h = self.glw.width(), self.glw.height()
        margin = 8
        for corner, label in self._corners.items():
            x = margin if corner.endswith("l") else w - label.width() - margin
            y = margin if corner.startswith("t") else h - label.height() - margin
            label.move(max(0, x), max(0, y))

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if obj is self.glw and event.type() == QEvent.Type.Resize:
            self._place_annotations()
        return super().eventFilter(obj, event)
