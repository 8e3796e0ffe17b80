"""Annotated export: the image as the radiologist sees it plus a provenance side panel.

One renderer shared by the GUI (``Ctrl+E``, ``Ctrl+Shift+C``), the ``cxr-viewer export`` command,
the demo and the DICOM Secondary Capture. Pure numpy + Pillow: no Qt.

Layout (all sizes scale with the image height so the text stays legible when the export is viewed
fitted to a screen)::

    +-----------------------------+---------------------+
    | image (window/level, invert,| disclaimer banner   |
    | flip/rotation, heat map,    | source / window     |
    | measurements burned in)     | ranked findings     |
    |                             | heat map + legend   |
    |                             | model, hash, date   |
    +-----------------------------+---------------------+

The image region is the top-left ``image_box`` of the canvas; its pixels are exactly
``render_display(image, voi, invert=...)`` (blended with the heat map when one is shown) after the
crop, flips and rotation, except where measurements are drawn.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cxr_viewer import DISCLAIMER, __version__
from cxr_viewer.errors import CxrError
from cxr_viewer.fsutil import atomic_path
from cxr_viewer.imaging.heatmap import blend, colorize
from cxr_viewer.imaging.render import render_display
from cxr_viewer.inference.card import ModelCard
from cxr_viewer.inference.results import CamResult, Prediction
from cxr_viewer.io.types import ImageData

Measurement = tuple[float, float, float, float, float | None]
"""(r0, c0, r1, c1, length_mm or None), in source-image coordinates (see ExportRequest)."""

# Tags shown only when the user asks for patient details (DICOM keywords of ImageData.tags).
PATIENT_TAGS: tuple[tuple[str, str], ...] = (
    ("PatientName", "Patient"),
    ("PatientID", "Patient ID"),
    ("PatientBirthDate", "Birth date"),
    ("PatientSex", "Sex"),
    ("StudyDate", "Study date"),
    ("AccessionNumber", "Accession"),
    ("InstitutionName", "Institution"),
)

METHOD_LABELS = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "scorecam": "Score-CAM",
    "saliency": "Gradient saliency",
}

# Panel palette (dark, like the viewer).
_BG = (24, 26, 30)
_FG = (230, 232, 236)
_DIM = (150, 155, 165)
_RULE = (70, 74, 82)
_FLAG = (255, 120, 90)
_OK = (120, 200, 140)
_BANNER_BG = (250, 196, 40)
_BANNER_FG = (20, 20, 20)
_MEASURE = (255, 230, 0)


class ExportError(CxrError):
    """An export request that cannot be honoured (e.g. results of another image).

    Parameters
    ----------
    path
        The source image or output file concerned.
    cause
        One sentence saying why.
    """

    def __init__(self, path: str, cause: str) -> None:
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")


@dataclass(frozen=True)
class ExportRequest:
    """Everything an annotated export shows; built by the viewer from its state, or by the CLI.

    Geometry conventions
    --------------------
    ``view_region`` is ``(r0, r1, c0, c1)`` (half-open) in source-pixel indexes: the part of the
    source image to export (None: full resolution). It is cropped *before* the flips and the
    rotation. ``flip_h`` (mirror left-right) and ``flip_v`` (mirror top-bottom) are applied next,
    then ``rotation_k`` quarter turns *clockwise* (negative: counter-clockwise).
    ``measurements`` are ``(r0, c0, r1, c1, length_mm or None)`` in continuous source-image
    coordinates (pixel (r, c) spans [r, r+1) x [c, c+1), i.e. pyqtgraph ImageItem coordinates).
    """

    image: ImageData
    voi: Any  # a resolved VOI (VOIWindow, VOILut, ...) as accepted by render_display
    invert: bool = False
    rotation_k: int = 0
    flip_h: bool = False
    flip_v: bool = False
    prediction: Prediction | None = None
    cams: CamResult | None = None
    finding: str | None = None  # heat-map finding shown (None: no overlay)
    overlay_opacity: float = 0.4
    overlay_colormap: str = "jet"
    overlay_threshold: float = 0.2  # as OverlaySettings: CAM below it is transparent
    measurements: tuple[Measurement, ...] = ()
    card: ModelCard | None = None
    include_patient_details: bool = False
    view_region: tuple[int, int, int, int] | None = None
    frame: int = 0
    window_label: str = ""  # the preset's label, e.g. "Header window 1", shown in the panel
    overlay_planes: bool = True  # DICOM overlay planes (60xx) burned in, as shown (dcmtk default)
    created: _dt.datetime | None = None  # export time (None: now, UTC)
    # change since the prior (reading workflow): cxr_viewer.worklist.FindingChange rows, and
    # the prior's caption ("Prior 2023-10-02, 3 months earlier"; no date when de-identified)
    comparison: tuple[Any, ...] = ()
    comparison_caption: str = ""

    def __post_init__(self) -> None:
        # Accept lists (e.g. from the UI) but keep the request hashable/immutable.
        object.__setattr__(self, "measurements", tuple(tuple(m) for m in self.measurements))


@dataclass(frozen=True)
class AnnotatedExport:
    """The composed RGB canvas and where things are on it."""

    rgb: np.ndarray = field(repr=False)  # (H, W, 3) uint8
    image_box: tuple[int, int, int, int]  # (x0, y0, x1, y1), half-open
    panel_box: tuple[int, int, int, int]
    legend_box: tuple[int, int, int, int] | None  # colour bar, when a heat map is shown
    texts: tuple[str, ...]  # every string drawn on the canvas, in drawing order
    created: _dt.datetime


# --------------------------------------------------------------------------------------------
# fonts
# --------------------------------------------------------------------------------------------
_FONT_FILES = {
    False: ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "Arial.ttf", "arial.ttf"),
    True: ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf", "Arial Bold.ttf", "arialbd.ttf"),
}
_FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/share/fonts/truetype/liberation",
    "/usr/local/share/fonts",
    "/Library/Fonts",
    "/System/Library/Fonts/Supplemental",
    "C:/Windows/Fonts",
)
_font_cache: dict[tuple[int, bool], ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}


def load_font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A TrueType font of ``size`` pixels (DejaVu Sans when found), else Pillow's default font.

    Parameters
    ----------
    size
        Font size in pixels.
    bold
        Prefer the bold face.

    Returns
    -------
    PIL font
        Cached per (size, bold).
    """
    key = (int(size), bool(bold))
    if key in _font_cache:
        return _font_cache[key]
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont | None = None
    for name in _FONT_FILES[bold]:
        try:  # Pillow searches the platform font folders itself
            font = ImageFont.truetype(name, key[0])
            break
        except OSError:
            pass
        for folder in _FONT_DIRS:
            candidate = Path(folder) / name
            if candidate.is_file():
                try:
                    font = ImageFont.truetype(str(candidate), key[0])
                    break
                except OSError:
                    pass
        if font is not None:
            break
    if font is None:
        font = ImageFont.load_default(size=key[0])
    _font_cache[key] = font
    return font


# --------------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------------
def apply_orientation(
    arr: np.ndarray, *, flip_h: bool = False, flip_v: bool = False, rotation_k: int = 0
) -> np.ndarray:
    """Flip then rotate an image array (rows, cols[, ch]) as the viewer shows it.

    ``rotation_k`` counts quarter turns clockwise.
    """
    if flip_h:
        arr = arr[:, ::-1]
    if flip_v:
        arr = arr[::-1, :]
    k = rotation_k % 4
    if k:
        arr = np.rot90(arr, k=-k, axes=(0, 1))
    return np.ascontiguousarray(arr)


def orient_point(
    row: float,
    col: float,
    shape: tuple[int, int],
    *,
    flip_h: bool = False,
    flip_v: bool = False,
    rotation_k: int = 0,
) -> tuple[float, float]:
    """Map a continuous (row, col) of an array of ``shape`` through :func:`apply_orientation`."""
    h, w = shape
    r, c = float(row), float(col)
    if flip_h:
        c = w - c
    if flip_v:
        r = h - r
    for _ in range(rotation_k % 4):  # one clockwise turn: (r, c) -> (c, h - r)
        r, c = c, h - r
        h, w = w, h
    return r, c


# --------------------------------------------------------------------------------------------
# composition
# --------------------------------------------------------------------------------------------
def compose_annotated(request: ExportRequest) -> np.ndarray:
    """Compose the annotated export of ``request``.

    Parameters
    ----------
    request
        What to show (see :class:`ExportRequest`).

    Returns
    -------
    numpy.ndarray
        (H, W, 3) uint8 RGB: the image region at the top left, the side panel on the right.

    Raises
    ------
    ExportError
        When the prediction or heat maps belong to another image, the finding has no heat map,
        or the view region is empty.
    """
    return compose_annotated_layout(request).rgb


def compose_annotated_layout(request: ExportRequest) -> AnnotatedExport:
    """Like :func:`compose_annotated`, also returning the layout and every string drawn.

    Parameters
    ----------
    request
        What to show.

    Returns
    -------
    AnnotatedExport
        The canvas, the image/panel/legend boxes and the drawn strings (for de-identification
        checks and tests).
    """
    image = request.image
    _check_results_belong(request)
    display = render_display(
        image,
        request.voi,
        frame=request.frame,
        invert=request.invert,
        overlays=request.overlay_planes,
    )
    display = np.asarray(display)
    if display.dtype != np.uint8 or display.shape != image.shape:
        raise ExportError(
            image.path,
            f"render_display returned {display.dtype} {display.shape}, expected uint8 {image.shape}",
        )
    cam = _shown_cam(request)
    r0, r1, c0, c1 = _region(request)
    display = display[r0:r1, c0:c1]  # crop first: blending a zoomed view costs only the view
    if cam is not None:
        rgb = np.asarray(
            blend(
                np.ascontiguousarray(display),
                np.ascontiguousarray(cam[r0:r1, c0:c1]),
                colormap=request.overlay_colormap,
                opacity=request.overlay_opacity,
                threshold=request.overlay_threshold,
            )
        )[..., :3]
    else:
        rgb = np.repeat(display[..., None], 3, axis=2)
    crop_shape = (r1 - r0, c1 - c0)
    rgb = apply_orientation(
        rgb, flip_h=request.flip_h, flip_v=request.flip_v, rotation_k=request.rotation_k
    )
    img_h, img_w = rgb.shape[:2]

    created = request.created or _dt.datetime.now(_dt.UTC)
    scale = max(1.0, img_h / 1100.0)
    panel_w = round(420 * scale)
    texts: list[str] = []

    # Panel first (its height may exceed the image's).
    panel, legend_rel = _draw_panel(request, cam is not None, created, scale, panel_w, texts)
    canvas_h = max(img_h, panel.height)
    canvas = Image.new("RGB", (img_w + panel_w, canvas_h), _BG)
    image_part = Image.fromarray(rgb, "RGB")
    if request.measurements:  # drawn on the image alone: clipped to it, never over the panel
        _draw_measurements(image_part, request, (r0, c0), crop_shape, scale, texts)
    canvas.paste(image_part, (0, 0))
    canvas.paste(panel, (img_w, 0))
    legend_box = None
    if legend_rel is not None:
        x0, y0, x1, y1 = legend_rel
        legend_box = (x0 + img_w, y0, x1 + img_w, y1)
    return AnnotatedExport(
        rgb=np.asarray(canvas, dtype=np.uint8).copy(),
        image_box=(0, 0, img_w, img_h),
        panel_box=(img_w, 0, img_w + panel_w, canvas_h),
        legend_box=legend_box,
        texts=tuple(texts),
        created=created,
    )


def _check_results_belong(request: ExportRequest) -> None:
    image_id = request.image.image_id
    if not 0 <= request.frame < request.image.num_frames:
        raise ExportError(request.image.path, f"no frame {request.frame + 1}")
    if request.frame != 0 and (request.prediction is not None or request.cams is not None):
        # the model analyses frame 1 only; its results must not be shown on another frame
        raise ExportError(
            request.image.path,
            f"the AI results are for frame 1, not frame {request.frame + 1}",
        )
    for what, result in (("prediction", request.prediction), ("heat maps", request.cams)):
        if result is not None and result.image_id != image_id:
            raise ExportError(
                request.image.path,
                f"the {what} belong to another image (id {result.image_id}, not {image_id})",
            )


def _shown_cam(request: ExportRequest) -> np.ndarray | None:
    if request.finding is None:
        return None
    if request.cams is None or request.finding not in request.cams.maps:
        raise ExportError(request.image.path, f"no heat map computed for {request.finding!r}")
    cam = np.asarray(request.cams.maps[request.finding], dtype=np.float32)
    if cam.shape != request.image.shape:
        raise ExportError(
            request.image.path,
            f"heat map of {request.finding!r} is {cam.shape}, the image is {request.image.shape}",
        )
    return cam


def _region(request: ExportRequest) -> tuple[int, int, int, int]:
    rows, cols = request.image.shape
    if request.view_region is None:
        return 0, rows, 0, cols
    r0, r1, c0, c1 = (int(round(v)) for v in request.view_region)
    r0, r1 = max(0, r0), min(rows, r1)
    c0, c1 = max(0, c0), min(cols, c1)
    if r1 <= r0 or c1 <= c0:
        raise ExportError(request.image.path, f"empty view region {request.view_region}")
    return r0, r1, c0, c1


def _fmt_prob(p: float | None) -> str:
    return "n/a" if p is None else f"{100.0 * p:.1f}%"


def describe_voi(voi: Any, label: str = "") -> str:
    """One line describing a resolved VOI, e.g. ``"Header window 1: C 40 W 400 (LINEAR)"``.

    Parameters
    ----------
    voi
        A :class:`cxr_viewer.imaging.window.VOI` (window or VOI LUT item).
    label
        The preset's label; the VOI's own label when empty.
    """
    label = label or str(getattr(voi, "label", "") or "")
    lut_index = getattr(voi, "lut_index", None)
    center = getattr(voi, "center", None)
    width = getattr(voi, "width", None)
    if lut_index is not None:
        text = f"VOI LUT item {int(lut_index) + 1}"
    elif center is not None and width is not None:
        func = getattr(voi, "function", "") or ""
        text = f"C {float(center):g}  W {float(width):g}" + (f" ({func})" if func else "")
    else:
        text = str(voi)
    return f"{label}: {text}" if label and label != text else text


def summary_lines(request: ExportRequest) -> list[str]:
    """The findings and provenance as plain text lines (PNG metadata, DICOM header, CLI).

    Never contains patient identifiers.
    """
    lines: list[str] = [DISCLAIMER]
    pred = request.prediction
    if pred is None:
        lines.append("AI analysis: not run")
        return lines
    lines.append(f"Model: {pred.model_name} {pred.model_version} sha256:{pred.weights_sha256[:12]}")
    lines += _abnormal_lines(pred)
    for s in pred.ranked():
        if s.probability is None:
            continue
        thr = "" if s.threshold is None else f" (threshold {s.threshold:.2f})"
        flag = " FLAGGED" if s.flagged else ""
        lines.append(f"{s.finding}: {_fmt_prob(s.probability)}{thr}{flag}")
    if pred.no_finding is not None:
        lines.append(f"No finding: {_fmt_prob(pred.no_finding)}")
    lines += [f"Caution: {warning}" for warning in pred.warnings]
    if request.finding is not None and request.cams is not None:
        method = METHOD_LABELS.get(request.cams.method, request.cams.method)
        lines.append(f"Heat map: {request.finding} ({method})")
    return lines


class _PanelWriter:
    """Draws panel text top-down, recording every string."""

    def __init__(self, image: Image.Image, width: int, scale: float, texts: list[str]):
        self.image = image
        self.draw = ImageDraw.Draw(image)
        self.width = width
        self.s = scale
        self.pad = round(16 * scale)
        self.y = self.pad
        self.texts = texts
        self.body = load_font(round(15 * scale))
        self.bold = load_font(round(15 * scale), bold=True)
        self.small = load_font(round(12.5 * scale))
        self.head = load_font(round(17 * scale), bold=True)

    def text(self, x: float, y: float, s: str, font: Any, fill: tuple[int, int, int], **kw: Any):
        self.texts.append(s)
        self.draw.text((x, y), s, font=font, fill=fill, **kw)

    def fit(self, s: str, font: Any, max_w: float) -> str:
        if self.draw.textlength(s, font=font) <= max_w:
            return s
        while s and self.draw.textlength(s + "...", font=font) > max_w:
            s = s[:-1]
        return s + "..."

    def line(self, s: str, font: Any = None, fill: tuple[int, int, int] = _FG, gap: float = 1.35):
        font = font or self.body
        s = self.fit(s, font, self.width - 2 * self.pad)
        self.text(self.pad, self.y, s, font, fill)
        self.y += round(font.size * gap)

    def wrapped(self, s: str, font: Any = None, fill: tuple[int, int, int] = _FG) -> None:
        """Draw ``s`` over as many lines as the panel width needs, breaking at spaces."""
        font = font or self.body
        line = ""
        for word in s.split():
            candidate = f"{line} {word}" if line else word
            if line and self.draw.textlength(candidate, font=font) > self.width - 2 * self.pad:
                self.line(line, font, fill, gap=1.3)
                line = word
            else:
                line = candidate
        if line:
            self.line(line, font, fill)

    def heading(self, s: str) -> None:
        self.y += round(8 * self.s)
        self.draw.line(
            [(self.pad, self.y), (self.width - self.pad, self.y)],
            fill=_RULE,
            width=max(1, round(self.s)),
        )
        self.y += round(8 * self.s)
        self.line(s, self.head, _FG, gap=1.45)


def _draw_panel(
    request: ExportRequest,
    has_overlay: bool,
    created: _dt.datetime,
    scale: float,
    width: int,
    texts: list[str],
) -> tuple[Image.Image, tuple[int, int, int, int] | None]:
    # Draw on a tall scratch canvas, then crop to the used height.
    scratch = Image.new("RGB", (width, round(2400 * scale)), _BG)
    w = _PanelWriter(scratch, width, scale, texts)
    draw = w.draw
    pad = w.pad

    # Disclaimer banner (the stamp).
    banner_font = load_font(round(15 * scale), bold=True)
    banner_h = round(banner_font.size * 2.4)
    draw.rectangle([0, 0, width, banner_h], fill=_BANNER_BG)
    stamp = w.fit(DISCLAIMER, banner_font, width - 2 * pad)
    w.text(width / 2, banner_h / 2, stamp, banner_font, _BANNER_FG, anchor="mm")
    w.y = banner_h + round(12 * scale)

    w.line(f"cxr-viewer {__version__}", w.bold)
    image = request.image
    rows, cols = image.shape
    source = f"{image.modality or image.source_format}  {cols} x {rows} px"
    if image.num_frames > 1:
        source += f"  frame {request.frame + 1}/{image.num_frames}"
    w.line(source, w.small, _DIM)
    w.line("Window " + describe_voi(request.voi, request.window_label), w.small, _DIM)
    view: list[str] = []
    if request.invert:
        view.append("inverted")
    if request.flip_h:
        view.append("flipped L-R")
    if request.flip_v:
        view.append("flipped T-B")
    if request.rotation_k % 4:
        view.append(f"rotated {90 * (request.rotation_k % 4)} deg clockwise")
    if request.view_region is not None:
        r0, r1, c0, c1 = _region(request)
        view.append(f"region rows {r0}-{r1}, cols {c0}-{c1}")
    if view:
        w.line("View: " + ", ".join(view), w.small, _DIM)

    if request.include_patient_details:
        w.heading("Patient")
        for key, label in PATIENT_TAGS:
            value = str(image.tags.get(key, "") or "")
            if value:
                w.line(f"{label}: {value}", w.body)
        w.line(f"File: {Path(image.path).name}", w.small, _DIM)

    pred = request.prediction
    w.heading("AI findings (ranked)")
    if pred is None:
        w.line("AI analysis not run", w.body, _DIM)
    else:
        _draw_findings_table(w, pred, request.finding if has_overlay else None)
    if request.comparison:
        w.heading("Change since the prior")
        if request.comparison_caption:
            w.line(request.comparison_caption, w.small, _DIM)
        for row in request.comparison:
            w.line(f"{row.finding}: {_fmt_prob(row.current)} (prior {_fmt_prob(row.prior)})"
                   + (f"  {row.change}" if row.change else ""), w.body)

    legend_box = None
    if has_overlay and request.cams is not None and request.finding is not None:
        w.heading("Heat map")
        method = METHOD_LABELS.get(request.cams.method, request.cams.method)
        w.line(f"{request.finding} ({method})", w.bold)
        detail = f"opacity {100 * request.overlay_opacity:.0f}%"
        if request.overlay_threshold > 0:
            detail += f", shown where CAM >= {request.overlay_threshold:.2f}"
        w.line(detail, w.small, _DIM)
        if request.cams.note:
            w.line(request.cams.note, w.small, _DIM)
        legend_box = _draw_legend(w, request)
    elif pred is not None:
        w.heading("Heat map")
        w.line("not shown on this image", w.small, _DIM)

    w.heading("Model")
    card = request.card
    if pred is not None or card is not None:
        name = pred.model_name if pred is not None else card.name  # type: ignore[union-attr]
        version = pred.model_version if pred is not None else card.version  # type: ignore[union-attr]
        sha = pred.weights_sha256 if pred is not None else card.weights_sha256  # type: ignore[union-attr]
        w.line(f"{name}  v{version}", w.body)
        if card is not None:
            if card.architecture:  # its summary, before any ": details"
                w.line(card.architecture.split(":")[0].strip(), w.small, _DIM)
            w.line(f"input {card.input.width} x {card.input.height} px", w.small, _DIM)
        w.line(f"weights sha256 {sha[:16] or 'unknown'}", w.small, _DIM)
    else:
        w.line("none", w.body, _DIM)

    w.heading("Exported")
    w.line(created.astimezone(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"), w.body)
    w.line(
        "Research use only." if request.include_patient_details else "De-identified export.",
        w.small,
        _DIM,
    )
    w.y += pad
    return scratch.crop((0, 0, width, min(scratch.height, w.y))), legend_box


def _abnormal_lines(pred: Prediction) -> list[str]:
    """"Abnormal: 83% (flagged)" and the operating mode (or the no-operating-points note)."""
    out = []
    if pred.abnormal is not None:
        flag = " FLAGGED" if pred.abnormal_flagged else ""
        out.append(f"Abnormal: {_fmt_prob(pred.abnormal)}{flag}")
    if pred.mode is not None:
        from cxr_viewer.inference.operating import MODE_TITLES

        out.append(f"Operating mode: {MODE_TITLES.get(pred.mode, pred.mode)}")
    elif pred.operating_note:
        out.append(pred.operating_note)
    return out


def _draw_findings_table(w: _PanelWriter, pred: Prediction, shown: str | None = None) -> None:
    s, pad, draw = w.s, w.pad, w.draw
    for k, text in enumerate(_abnormal_lines(pred)):
        if k == 0 and pred.abnormal is not None:
            w.line(text, w.bold, _FLAG if pred.abnormal_flagged else _FG)
        else:
            w.wrapped(text, w.small, _DIM)
    x_thr = w.width - pad  # right edge of threshold column
    x_prob = x_thr - round(58 * s)  # right edge of probability column
    bar_w = round(70 * s)
    x_bar1 = x_prob - round(62 * s)
    x_bar0 = x_bar1 - bar_w
    name_max = x_bar0 - pad - round(8 * s)
    w.text(pad, w.y, "Finding", w.small, _DIM)
    w.text(x_prob, w.y, "prob.", w.small, _DIM, anchor="ra")
    w.text(x_thr, w.y, "thr.", w.small, _DIM, anchor="ra")
    w.y += round(w.small.size * 1.5)
    row_h = round(w.body.size * 1.45)
    for score in pred.ranked():
        if score.probability is None:
            continue
        p = float(score.probability)
        flagged = bool(score.flagged)
        colour = _FLAG if flagged else _FG
        font = w.bold if flagged else w.body
        if score.finding == shown:  # the row whose heat map is on the image
            draw.rectangle(
                [pad // 3, w.y - round(2 * s), w.width - pad // 3, w.y + row_h - round(3 * s)],
                fill=(52, 58, 72),
            )
        name = w.fit(score.finding, font, name_max)
        w.text(pad, w.y, name, font, colour)
        # probability bar with the threshold tick
        by0 = w.y + round(row_h * 0.22)
        by1 = w.y + round(row_h * 0.62)
        draw.rectangle([x_bar0, by0, x_bar1, by1], outline=_RULE, fill=(40, 43, 50))
        fill_to = x_bar0 + round(bar_w * min(max(p, 0.0), 1.0))
        if fill_to > x_bar0:
            draw.rectangle([x_bar0, by0, fill_to, by1], fill=_FLAG if flagged else (110, 140, 190))
        if score.threshold is not None:
            tx = x_bar0 + round(bar_w * float(score.threshold))
            draw.line(
                [(tx, by0 - round(2 * s)), (tx, by1 + round(2 * s))],
                fill=_FG,
                width=max(1, round(s)),
            )
        w.text(x_prob, w.y, _fmt_prob(p), font, colour, anchor="ra")
        thr = "" if score.threshold is None else f"{score.threshold:.2f}"
        w.text(x_thr, w.y, thr, w.small, _DIM, anchor="ra")
        w.y += row_h
    flagged_n = sum(1 for sc in pred.scores if sc.flagged)
    if flagged_n:
        w.line(f"{flagged_n} finding(s) at or above threshold (flagged)", w.small, _FLAG)
    else:
        w.line("no finding at or above its threshold", w.small, _OK)
    if pred.no_finding is not None:
        w.line(f"No finding: {_fmt_prob(pred.no_finding)}", w.small, _DIM)
    for warning in pred.warnings:
        w.wrapped(f"Caution: {warning}", w.small, _FLAG)
    not_scored = [sc.finding for sc in pred.scores if sc.probability is None]
    if not_scored:
        w.line("Not scored by this model:", w.small, _DIM, gap=1.3)
        # wrap the list over as many lines as needed
        line = ""
        for name in not_scored:
            candidate = f"{line}, {name}" if line else name
            if w.draw.textlength(candidate, font=w.small) > w.width - 2 * w.pad and line:
                w.line(line + ",", w.small, _DIM, gap=1.3)
                line = name
            else:
                line = candidate
        if line:
            w.line(line, w.small, _DIM)


def _draw_legend(w: _PanelWriter, request: ExportRequest) -> tuple[int, int, int, int]:
    s, pad = w.s, w.pad
    x0, x1 = pad, w.width - pad
    y0 = w.y + round(4 * s)
    y1 = y0 + round(16 * s)
    ramp = np.linspace(0.0, 1.0, x1 - x0, dtype=np.float32)[None, :].repeat(y1 - y0, axis=0)
    rgba = np.asarray(colorize(ramp, colormap=request.overlay_colormap, threshold=0.0))
    bar = rgba[..., :3].astype(np.float32)
    if request.overlay_threshold > 0:  # below the threshold nothing is overlaid: dim that part
        below = ramp < request.overlay_threshold
        bar[below] = bar[below] * 0.3 + np.asarray(_BG, np.float32) * 0.7
    w.image.paste(Image.fromarray(bar.astype(np.uint8), "RGB"), (x0, y0))
    w.draw.rectangle([x0 - 1, y0 - 1, x1, y1], outline=_RULE)
    if request.overlay_threshold > 0:
        tx = x0 + round((x1 - x0) * request.overlay_threshold)
        w.draw.line(
            [(tx, y0 - round(3 * s)), (tx, y1 + round(3 * s))], fill=_FG, width=max(1, round(s))
        )
    ty = y1 + round(4 * s)
    w.text(x0, ty, "0 (low)", w.small, _DIM, anchor="la")
    w.text((x0 + x1) / 2, ty, "0.5", w.small, _DIM, anchor="ma")
    w.text(x1, ty, "1 (high)", w.small, _DIM, anchor="ra")
    w.y = ty + round(w.small.size * 1.6)
    return x0, y0, x1, y1


def _draw_measurements(
    canvas: Image.Image,
    request: ExportRequest,
    offset: tuple[int, int],
    crop_shape: tuple[int, int],
    scale: float,
    texts: list[str],
) -> None:
    draw = ImageDraw.Draw(canvas)
    font = load_font(round(16 * scale), bold=True)
    width = max(2, round(2 * scale))
    radius = max(3, round(4 * scale))
    for meas in request.measurements:
        r0, c0, r1, c1, mm = meas
        pts = [
            orient_point(
                r - offset[0],
                c - offset[1],
                crop_shape,
                flip_h=request.flip_h,
                flip_v=request.flip_v,
                rotation_k=request.rotation_k,
            )
            for r, c in ((r0, c0), (r1, c1))
        ]
        (ya, xa), (yb, xb) = pts
        draw.line([(xa, ya), (xb, yb)], fill=_MEASURE, width=width)
        for x, y in ((xa, ya), (xb, yb)):
            draw.ellipse(
                [x - radius, y - radius, x + radius, y + radius], outline=_MEASURE, width=width
            )
        if mm is not None:
            label = f"{float(mm):.1f} mm"
        else:
            label = f"{math.hypot(r1 - r0, c1 - c0):.1f} px (uncalibrated)"  # as the viewer
        texts.append(label)
        # Beside the line: above a mostly horizontal one, to the right of a steeper one.
        mx, my = (xa + xb) / 2, (ya + yb) / 2
        if abs(xb - xa) >= abs(yb - ya):
            pos, anchor = (mx, my - 2 * radius), "mb"
        else:
            pos, anchor = (mx + 2 * radius, my), "lm"
        draw.text(
            pos,
            label,
            font=font,
            fill=_MEASURE,
            anchor=anchor,
            stroke_width=max(1, round(2 * scale)),
            stroke_fill=(0, 0, 0),
        )


# --------------------------------------------------------------------------------------------
# saving
# --------------------------------------------------------------------------------------------
def export_metadata(request: ExportRequest) -> dict[str, str]:
    """Text metadata for PNG/JPEG files: software, model, disclaimer, findings summary.

    Patient identifiers are added only when ``request.include_patient_details`` is set.
    """
    meta = {
        "Software": f"cxr-viewer {__version__}",
        "Disclaimer": DISCLAIMER,
        "Description": "\n".join(summary_lines(request)),
    }
    pred = request.prediction
    if pred is not None:
        meta["Model"] = f"{pred.model_name} {pred.model_version} sha256:{pred.weights_sha256}"
    elif request.card is not None:
        meta["Model"] = (
            f"{request.card.name} {request.card.version} sha256:{request.card.weights_sha256}"
        )
    if request.include_patient_details:
        for key, label in PATIENT_TAGS:
            value = str(request.image.tags.get(key, "") or "")
            if value:
                meta[label] = value
    return meta


def save_image(rgb: np.ndarray, path: str | Path, request: ExportRequest) -> Path:
    """Write the composed export as PNG or JPEG (chosen by the file extension).

    Parameters
    ----------
    rgb
        (H, W, 3) uint8 from :func:`compose_annotated`.
    path
        ``.png``, ``.jpg`` or ``.jpeg``.
    request
        The request the image was composed from (for the metadata).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ExportError
        Unknown extension or wrong array shape.
    """
    path = Path(path)
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ExportError(
            str(path), f"expected an (H, W, 3) uint8 image, got {arr.dtype} {arr.shape}"
        )
    meta = export_metadata(request)
    img = Image.fromarray(arr, "RGB")
    ext = path.suffix.lower()
    if ext == ".png":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        for key, value in meta.items():
            info.add_itxt(key, value)
        with atomic_path(path) as tmp:  # a killed export leaves no partial file
            img.save(tmp, format="PNG", pnginfo=info, optimize=False, compress_level=6)
    elif ext in (".jpg", ".jpeg"):
        comment = "\n".join(f"{k}: {v}" for k, v in meta.items())
        with atomic_path(path) as tmp:
            img.save(
                tmp, format="JPEG", quality=95, subsampling=0, comment=comment.encode("utf-8")
            )
    else:
        raise ExportError(str(path), f"unknown image format {ext!r} (use .png, .jpg or .jpeg)")
    return path
