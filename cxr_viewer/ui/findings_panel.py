"""FindingsPanel: the model's ranked findings and the heat-map controls.

* Header: model name and version, and "AI second opinion - not for primary diagnosis", always
  visible; a status line (loading / analysing / done / failed).
* "Abnormal" (the triage score, 1 - P(No finding)) as the first result line when the model has
  it; the operating mode (high sensitivity / balanced / high specificity, from the card,
  ``modeChanged``), or one line saying the model has no operating points.
* The 14 VinDr-CXR findings ranked by probability, each with a bar, the percentage and a flag when
  at or above the label's operating threshold; the threshold itself is a tick on the bar and a
  number ("thr 14%"), so a flag on 14 % next to an unflagged 33 % explains itself; "No finding"
  separately when the model has it; findings the model does not score greyed, "not scored by
  this model".  A summary line says "No finding above its threshold" or which ones are.
* An image the model is not meant for (header or pixels, ``inference.applicability``) greys
  every row and says why (:meth:`show_refusal`).
* Clicking a finding selects it (``findingSelected``) and shows its heat map.  On the next image
  the top finding is selected again, unless the reader pinned the finding.
* Heat-map controls: show overlay (the main window binds ``H`` to :meth:`toggle_overlay`),
  method, colormap, opacity, threshold, scale by probability, show below the finding's
  threshold, contours only, pin -> ``overlayChanged(OverlaySettings)``.
* ``header_layout`` holds the header rows (model, disclaimer, status, summary); further rows
  (e.g. an overall score, an operating-mode selector) are inserted there.

Colours come from the palette (dark and light themes); the amber flag / disclaimer accent is
darker on a light palette.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from cxr_viewer.imaging.heatmap import CAM_METHODS, COLORMAPS, OverlaySettings
from cxr_viewer.inference.findings import VINDR_FINDINGS
from cxr_viewer.inference.operating import DEFAULT_MODE, MODE_TITLES, MODES

DISCLAIMER = "AI second opinion - not for primary diagnosis"
NOT_SCORED = "not scored by this model"
ACCENT_ON_DARK = "#e8a33d"  # amber
ACCENT_ON_LIGHT = "#a35f00"  # darker amber: the same contrast on a light background


def accent_colour(widget: QWidget) -> str:
    """The flag / disclaimer colour for the widget's current palette."""
    light = widget.palette().color(QPalette.ColorRole.Window).lightness() > 128
    return ACCENT_ON_LIGHT if light else ACCENT_ON_DARK


NO_FINDING_ABOVE = "No finding above its threshold"


class ThresholdBar(QProgressBar):
    """The probability bar with the finding's operating threshold drawn as a tick."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.threshold: float | None = None

    def set_threshold(self, threshold: float | None) -> None:
        self.threshold = threshold
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().paintEvent(event)
        if self.threshold is None:
            return
        painter = QPainter(self)
        x = round(self.threshold * (self.width() - 1))
        pen = QPen(QColor(self.palette().color(QPalette.ColorRole.WindowText)))
        pen.setWidth(2)
        painter.setPen(pen)
        painter.drawLine(x, 0, x, self.height())
        painter.end()


class FindingRow(QFrame):
    """One finding: name, bar, percentage, flag.  Clickable when the model scores it."""

    clicked = Signal(str)

    def __init__(self, finding: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.finding = finding
        self.setObjectName("findingRow")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.name_label = QLabel(finding)
        self.bar = ThresholdBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(10)
        self.threshold_label = QLabel("")
        self.threshold_label.setMinimumWidth(56)
        tfont = self.threshold_label.font()
        tfont.setPointSizeF(max(6.0, tfont.pointSizeF() * 0.85))
        self.threshold_label.setFont(tfont)
        self.bar.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.value_label = QLabel("-")
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.value_label.setMinimumWidth(44)
        self.flag_label = QLabel("")
        self.flag_label.setMinimumWidth(58)
        self.not_scored_label = QLabel(NOT_SCORED)
        small = self.not_scored_label.font()
        small.setItalic(True)
        small.setPointSizeF(max(6.0, small.pointSizeF() * 0.85))
        self.not_scored_label.setFont(small)
        self.not_scored_label.setVisible(False)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.name_label, 1)
        top.addWidget(self.value_label)
        top.addWidget(self.flag_label)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 3, 6, 3)
        lay.setSpacing(2)
        lay.addLayout(top)
        bar_row = QHBoxLayout()
        bar_row.setContentsMargins(0, 0, 0, 0)
        bar_row.addWidget(self.bar, 1)
        bar_row.addWidget(self.threshold_label)
        lay.addLayout(bar_row)
        lay.addWidget(self.not_scored_label)
        self.scored = True
        self.probability: float | None = None
        self.threshold: float | None = None
        self.flagged = False
        self.selected = False

    def set_scored(self, scored: bool) -> None:
        self.scored = scored
        self.setEnabled(scored)
        self.bar.setVisible(scored)
        self.threshold_label.setVisible(scored)
        self.value_label.setVisible(scored)
        self.flag_label.setVisible(scored)
        self.not_scored_label.setVisible(not scored)
        self.setCursor(Qt.CursorShape.PointingHandCursor if scored else Qt.CursorShape.ArrowCursor)
        self.setToolTip("" if scored else f"{self.finding}: {NOT_SCORED}")
        self.set_score(None, None, False)

    def set_score(self, probability: float | None, threshold: float | None, flagged: bool) -> None:
        self.probability, self.flagged, self.threshold = probability, flagged, threshold
        self.bar.set_threshold(threshold if self.scored else None)
        self.threshold_label.setText(
            f"thr {100.0 * threshold:.0f}%" if (self.scored and threshold is not None) else "")
        if not self.scored:
            self.value_label.setText("")
            self.flag_label.setText("")
            return
        if probability is None:
            self.value_label.setText("-")
            self.bar.setValue(0)
            self.flag_label.setText("")
            self.setToolTip(self.finding)
            return
        self.value_label.setText(f"{100.0 * probability:.0f}%")
        self.bar.setValue(round(1000 * probability))
        self.flag_label.setText("FLAG" if flagged else "")
        if threshold is not None:
            state = "at or above" if flagged else "below"
            self.setToolTip(f"{self.finding}: {100.0 * probability:.1f}%, {state} the operating "
                            f"threshold {100.0 * threshold:.0f}%")

    def set_selected(self, selected: bool) -> None:
        self.selected = selected
        self.setFrameShape(QFrame.Shape.Box if selected else QFrame.Shape.NoFrame)
        self.setStyleSheet(
            "#findingRow { border: 1px solid palette(highlight); border-radius: 3px; }"
            if selected else ""
        )
        font = self.name_label.font()
        font.setBold(selected)
        self.name_label.setFont(font)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self.scored and event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.finding)
        super().mousePressEvent(event)


class FindingsPanel(QWidget):
    """Ranked findings + heat-map controls (see the module docstring)."""

    findingSelected = Signal(str)
    overlayChanged = Signal(object)  # OverlaySettings
    modeChanged = Signal(str)  # operating mode chosen by the user (inference.operating.MODES)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(260)
        self._card: Any = None
        self._prediction: Any = None
        self._selected: str | None = None
        self._syncing = False

        self.model_label = QLabel("No model loaded")
        font = self.model_label.font()
        font.setBold(True)
        self.model_label.setFont(font)
        self.model_label.setWordWrap(True)
        self.disclaimer_label = QLabel(DISCLAIMER)
        self.disclaimer_label.setWordWrap(True)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        # What the applicability check says about this image (e.g. body part not stated)
        self.warning_label = QLabel("")
        self.warning_label.setWordWrap(True)
        self.warning_label.setVisible(False)
        self.no_finding_label = QLabel("")
        self.no_finding_label.setVisible(False)
        # model 2.0 cards: Abnormal first, the operating mode; older cards: a one-line note
        self.abnormal_label = QLabel("")
        bold = self.abnormal_label.font()
        bold.setBold(True)
        self.abnormal_label.setFont(bold)
        self.abnormal_label.setVisible(False)
        self.mode_combo = QComboBox()
        for mode in MODES:
            self.mode_combo.addItem(MODE_TITLES[mode], mode)
        self.mode_combo.setCurrentIndex(MODES.index(DEFAULT_MODE))
        self.mode_combo.setToolTip(
            "Operating mode: the flag thresholds the model card states for 80% (high "
            "sensitivity), 90% (balanced) or 95% (high specificity) specificity")
        self.mode_row = QWidget()
        mode_lay = QHBoxLayout(self.mode_row)
        mode_lay.setContentsMargins(0, 0, 0, 0)
        mode_lay.addWidget(QLabel("Mode"))
        mode_lay.addWidget(self.mode_combo, 1)
        self.mode_row.setVisible(False)
        self.operating_note_label = QLabel("")
        self.operating_note_label.setWordWrap(True)
        self.operating_note_label.setVisible(False)
        # "No finding above its threshold" / which findings are above theirs
        self.summary_label = QLabel("")
        self.summary_label.setObjectName("findings_summary")
        self.summary_label.setWordWrap(True)
        sfont = self.summary_label.font()
        sfont.setBold(True)
        self.summary_label.setFont(sfont)
        self.summary_label.setVisible(False)
        # an image the model is not meant for: why, in words
        self.refusal_label = QLabel("")
        self.refusal_label.setObjectName("findings_refusal")
        self.refusal_label.setWordWrap(True)
        self.refusal_label.setFrameShape(QFrame.Shape.Box)
        self.refusal_label.setVisible(False)
        self.refused = False

        self.rows: dict[str, FindingRow] = {}
        rows_widget = QWidget()
        self._rows_layout = QVBoxLayout(rows_widget)
        self._rows_layout.setContentsMargins(0, 0, 0, 0)
        self._rows_layout.setSpacing(1)
        for finding in VINDR_FINDINGS:
            row = FindingRow(finding)
            row.clicked.connect(self.select_finding)
            self.rows[finding] = row
            self._rows_layout.addWidget(row)
        self._rows_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(rows_widget)

        # heat-map controls
        self.overlay_check = QCheckBox("Show heat map (H)")
        self.scale_check = QCheckBox("Scale by probability")
        self.scale_check.setToolTip(
            "Multiply the map by the finding's probability relative to its threshold (at most "
            "1): a finding at 2 % with a 32 % threshold shows a faint wash, a flagged finding "
            "its full map")
        self.below_check = QCheckBox("Below threshold too")
        self.below_check.setToolTip("Draw the map of a finding whose probability is below its "
                                    "operating threshold (off: nothing is drawn for it)")
        self.contour_check = QCheckBox("Contours only")
        self.pin_check = QCheckBox("Pin finding")
        self.pin_check.setToolTip("Keep showing this finding on the next images (off: each "
                                  "image shows its own top finding)")
        self.method_combo = QComboBox()
        for key, label in CAM_METHODS.items():
            self.method_combo.addItem(label, key)
        self.colormap_combo = QComboBox()
        for name in COLORMAPS:
            self.colormap_combo.addItem(name, name)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(0, 100)
        self.opacity_value = QLabel()
        self.threshold_value = QLabel()
        self.cam_note_label = QLabel("")
        self.cam_note_label.setWordWrap(True)
        self.cam_note_label.setVisible(False)
        controls = QGroupBox("Heat map")
        form = QFormLayout(controls)
        form.addRow(self.overlay_check)
        checks = QWidget()
        grid = QHBoxLayout(checks)
        grid.setContentsMargins(0, 0, 0, 0)
        left, right = QVBoxLayout(), QVBoxLayout()
        left.addWidget(self.scale_check)
        left.addWidget(self.below_check)
        right.addWidget(self.contour_check)
        right.addWidget(self.pin_check)
        grid.addLayout(left)
        grid.addLayout(right)
        form.addRow(checks)
        form.addRow("Method", self.method_combo)
        form.addRow("Colormap", self.colormap_combo)
        form.addRow("Opacity", _with_value(self.opacity_slider, self.opacity_value))
        form.addRow("Hide below", _with_value(self.threshold_slider, self.threshold_value))
        form.addRow(self.cam_note_label)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.header_layout = QVBoxLayout()
        self.header_layout.setContentsMargins(0, 0, 0, 0)
        for w in (self.model_label, self.disclaimer_label, self.status_label,
                  self.refusal_label, self.warning_label, self.abnormal_label, self.mode_row,
                  self.operating_note_label, self.summary_label, self.no_finding_label):
            self.header_layout.addWidget(w)
        lay.addLayout(self.header_layout)
        lay.addWidget(scroll, 1)
        lay.addWidget(controls)

        self._apply_accent()
        self.set_overlay(OverlaySettings())
        self.overlay_check.toggled.connect(self._emit_overlay)
        for check in (self.scale_check, self.below_check, self.contour_check, self.pin_check):
            check.toggled.connect(self._emit_overlay)
        self.method_combo.currentIndexChanged.connect(self._emit_overlay)
        self.colormap_combo.currentIndexChanged.connect(self._emit_overlay)
        self.opacity_slider.valueChanged.connect(self._emit_overlay)
        self.threshold_slider.valueChanged.connect(self._emit_overlay)
        self.mode_combo.currentIndexChanged.connect(self._emit_mode)
        self._apply_card(None)

    def _apply_accent(self) -> None:
        colour = accent_colour(self)
        self.disclaimer_label.setStyleSheet(f"color: {colour};")
        self.cam_note_label.setStyleSheet(f"color: {colour};")
        self.warning_label.setStyleSheet(f"color: {colour};")
        self.refusal_label.setStyleSheet(f"color: {colour}; font-weight: bold; padding: 4px;")
        for row in self.rows.values():
            row.flag_label.setStyleSheet(f"color: {colour}; font-weight: bold;")

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_accent()
        super().changeEvent(event)

    # ---- model and results ------------------------------------------------------------------
    def set_card(self, card: Any) -> None:
        """Show the model's name and version; grey out the findings it does not score."""
        self._card = card
        self._apply_card(card)

    def _apply_card(self, card: Any) -> None:
        if card is None:
            self.model_label.setText("No model loaded")
        else:
            self.model_label.setText(f"{card.name} {card.version}")
            self.model_label.setToolTip(card.intended_use)
        scored = set(VINDR_FINDINGS) if card is None else set(card.scored_findings)
        for finding, row in self.rows.items():
            row.set_scored(finding in scored)
        if self._selected is not None and self._selected not in scored:
            self._selected = None
        self.no_finding_label.setVisible(card is not None and card.no_finding_index is not None)
        has_modes = card is not None and bool(getattr(card, "operating_points", None))
        self.mode_row.setVisible(has_modes)
        note = "" if card is None else str(getattr(card, "operating_note", "") or "")
        self.operating_note_label.setText(note)
        self.operating_note_label.setVisible(bool(note))
        self.clear()

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)

    def show_prediction(self, prediction: Any) -> None:
        """Rank the findings by probability; flag those at or above their threshold; select the
        heat map's subject (the most probable flagged finding, else the most probable) unless
        the reader pinned one."""
        self._set_refused("")
        self._prediction = prediction
        warnings = tuple(getattr(prediction, "warnings", ()) or ())
        self.warning_label.setText("\n".join(f"Caution: {w}" for w in warnings))
        self.warning_label.setVisible(bool(warnings))
        for score in prediction.scores:
            self.rows[score.finding].set_score(score.probability, score.threshold, score.flagged)
        self._order([s.finding for s in prediction.ranked()])
        if prediction.no_finding is not None:
            self.no_finding_label.setText(f"No finding: {100.0 * prediction.no_finding:.0f}%")
            self.no_finding_label.setVisible(True)
        self._show_abnormal(prediction)
        flagged = [s for s in prediction.ranked() if s.probability is not None and s.flagged]
        if flagged:
            names = ", ".join(f"{s.finding} {100.0 * s.probability:.0f}%" for s in flagged)
            self.summary_label.setText(f"Above threshold: {names}")
        else:
            self.summary_label.setText(NO_FINDING_ABOVE)
        self.summary_label.setVisible(True)
        scored = [s.finding for s in prediction.ranked() if s.probability is not None]
        pinned = self.pin_check.isChecked() and self._selected in scored
        if scored and not pinned:
            # this image's most probable flagged finding (else its most probable one) becomes
            # the heat map's subject
            self._set_selected(prediction.heatmap_subject() or scored[0])
        if scored:
            self._emit_overlay()

    def _show_abnormal(self, prediction: Any) -> None:
        abnormal = getattr(prediction, "abnormal", None)
        if abnormal is None:
            self.abnormal_label.setVisible(False)
            return
        flagged = bool(getattr(prediction, "abnormal_flagged", False))
        self.abnormal_label.setText(f"Abnormal: {100.0 * abnormal:.0f}%" + ("  FLAG" if flagged
                                                                          else ""))
        self.abnormal_label.setStyleSheet(f"color: {accent_colour(self)};" if flagged else "")
        threshold = getattr(prediction, "abnormal_threshold", None)
        self.abnormal_label.setToolTip(
            "Triage score: probability that the radiograph shows any finding (1 - P(No "
            "finding), calibrated)"
            + ("" if threshold is None else f"; flagged at {100.0 * threshold:.0f}% in this mode"))
        self.abnormal_label.setVisible(True)

    # ---- operating mode -----------------------------------------------------------------
    def operating_mode(self) -> str:
        return str(self.mode_combo.currentData())

    def set_operating_mode(self, mode: str) -> None:
        """Select ``mode`` without emitting ``modeChanged`` (restoring the saved setting)."""
        if mode not in MODES:
            mode = DEFAULT_MODE
        self.mode_combo.blockSignals(True)
        self.mode_combo.setCurrentIndex(MODES.index(mode))
        self.mode_combo.blockSignals(False)

    def _emit_mode(self, *_: Any) -> None:
        self.modeChanged.emit(self.operating_mode())

    def show_cams(self, cams: Any) -> None:
        """Say how the heat maps were made when it is not what was asked (saliency fallback)."""
        note = getattr(cams, "note", "") if cams is not None else ""
        self.cam_note_label.setText(note)
        self.cam_note_label.setVisible(bool(note))

    def show_refusal(self, cause: str) -> None:
        """The model is not meant for this image: grey every finding and say why."""
        self.clear()
        self._set_refused(cause)

    def _set_refused(self, cause: str) -> None:
        self.refused = bool(cause)
        if cause:
            self.status_label.setText("")  # the box below says it, once
        self.refusal_label.setText(f"Not analysed: {cause}" if cause else "")
        self.refusal_label.setVisible(bool(cause))
        for row in self.rows.values():
            row.setEnabled(row.scored and not cause)
        if cause:
            self.summary_label.setVisible(False)

    def clear(self) -> None:
        """Forget the shown prediction (a new image is being analysed); keep the selection."""
        self._set_refused("")
        self.summary_label.setText("")
        self.summary_label.setVisible(False)
        self._prediction = None
        for row in self.rows.values():
            row.set_score(None, None, False)
        scored = [f for f in VINDR_FINDINGS if self.rows[f].scored]
        self._order(scored + [f for f in VINDR_FINDINGS if not self.rows[f].scored])
        self.no_finding_label.setText("No finding: -")
        self.abnormal_label.setText("Abnormal: -")
        self.abnormal_label.setStyleSheet("")
        self.abnormal_label.setVisible(self._card is not None
                                       and self._card.no_finding_index is not None)
        self.cam_note_label.setVisible(False)
        self.warning_label.setVisible(False)
        for finding, row in self.rows.items():
            row.set_selected(finding == self._selected)

    def ranked_findings(self) -> list[str]:
        """Findings in the order shown, top first."""
        items = (self._rows_layout.itemAt(i).widget() for i in range(self._rows_layout.count()))
        return [w.finding for w in items if isinstance(w, FindingRow)]

    def _order(self, findings: list[str]) -> None:
        for finding in findings:
            self._rows_layout.removeWidget(self.rows[finding])
        for i, finding in enumerate(findings):
            self._rows_layout.insertWidget(i, self.rows[finding])

    # ---- selection and overlay --------------------------------------------------------------
    @property
    def selected_finding(self) -> str | None:
        return self._selected

    def select_finding(self, finding: str) -> None:
        """Select a scored finding and show its heat map (as a click does)."""
        row = self.rows.get(finding)
        if row is None or not row.scored:
            return
        self._set_selected(finding)
        self._syncing = True
        self.overlay_check.setChecked(True)
        self._syncing = False
        self.findingSelected.emit(finding)
        self._emit_overlay()

    def _set_selected(self, finding: str | None) -> None:
        self._selected = finding
        for name, row in self.rows.items():
            row.set_selected(name == finding)

    def overlay_settings(self) -> OverlaySettings:
        return OverlaySettings(
            visible=self.overlay_check.isChecked(),
            finding=self._selected,
            opacity=self.opacity_slider.value() / 100.0,
            colormap=str(self.colormap_combo.currentData()),
            threshold=self.threshold_slider.value() / 100.0,
            method=str(self.method_combo.currentData()),
            scale_by_probability=self.scale_check.isChecked(),
            below_threshold=self.below_check.isChecked(),
            contour=self.contour_check.isChecked(),
            pinned=self.pin_check.isChecked(),
        )

    def set_overlay(self, settings: OverlaySettings) -> None:
        """Show ``settings`` in the controls without emitting ``overlayChanged``."""
        self._syncing = True
        try:
            self.overlay_check.setChecked(settings.visible)
            self.method_combo.setCurrentIndex(max(0, self.method_combo.findData(settings.method)))
            self.colormap_combo.setCurrentIndex(
                max(0, self.colormap_combo.findData(settings.colormap))
            )
            self.opacity_slider.setValue(round(settings.opacity * 100))
            self.scale_check.setChecked(settings.scale_by_probability)
            self.below_check.setChecked(settings.below_threshold)
            self.contour_check.setChecked(settings.contour)
            self.pin_check.setChecked(settings.pinned)
            self.threshold_slider.setValue(round(settings.threshold * 100))
            if settings.finding is None or (
                settings.finding in self.rows and self.rows[settings.finding].scored
            ):
                self._set_selected(settings.finding)
        finally:
            self._syncing = False
        self._show_values()

    def toggle_overlay(self) -> None:
        """Show / hide the heat map (the main window's ``H``)."""
        self.overlay_check.setChecked(not self.overlay_check.isChecked())

    def _show_values(self) -> None:
        self.opacity_value.setText(f"{self.opacity_slider.value()}%")
        self.threshold_value.setText(f"{self.threshold_slider.value()}%")

    def _emit_overlay(self, *_: Any) -> None:
        self._show_values()
        if not self._syncing:
            self.overlayChanged.emit(self.overlay_settings())


def _with_value(slider: QSlider, value: QLabel) -> QWidget:
    box = QWidget()
    lay = QHBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(slider, 1)
    value.setMinimumWidth(36)
    lay.addWidget(value)
    return box


__all__ = ["FindingsPanel", "FindingRow", "OverlaySettings", "DISCLAIMER", "NOT_SCORED",
           "NO_FINDING_ABOVE", "ThresholdBar"]
