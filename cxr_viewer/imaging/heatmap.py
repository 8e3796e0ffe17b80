"""Heat-map colouring and blending onto the 8-bit display image (OpenCV colormaps; no Qt).

A heat map (Grad-CAM, saliency) is a float map in [0, 1] at the original image size, 1 being the
strongest attention *in this image*: on its own it says nothing about how sure the model is.  So
the viewer shows a map as it should be read (:func:`overlay_plan`): scaled by the finding's
probability relative to its operating threshold (cardiomegaly at 2 % with a 32 % threshold is a
faint wash, not a red blob; a flagged finding is drawn at full strength even when its calibrated
probability is small, as rare findings' are), not drawn at all below the finding's operating
threshold unless the reader asks, optionally as contours only
(:func:`contour_rgba`), with a colour bar (:func:`colorbar`).  Values below the display threshold
are transparent, so the radiograph shows through where the model paid no attention.
:class:`OverlaySettings` is the one description of how an overlay is shown; the findings panel
emits it and the export composes with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Colormap name -> OpenCV colormap id (the names the UI offers, in menu order).
COLORMAPS: dict[str, int] = {
    "jet": cv2.COLORMAP_JET,
    "turbo": cv2.COLORMAP_TURBO,
    "inferno": cv2.COLORMAP_INFERNO,
    "magma": cv2.COLORMAP_MAGMA,
    "plasma": cv2.COLORMAP_PLASMA,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "hot": cv2.COLORMAP_HOT,
}

#: Heat-map method id -> label for menus ("gradcam" is the fast all-label path).
CAM_METHODS: dict[str, str] = {
    "gradcam": "Grad-CAM (fast)",
    "gradcam++": "Grad-CAM++",
    "scorecam": "Score-CAM",
    "saliency": "Saliency (SmoothGrad)",
}


@dataclass(frozen=True)
class OverlaySettings:
    """How the heat-map overlay is shown.

    Attributes
    ----------
    visible
        Overlay on or off (``H`` in the viewer).
    finding
        VinDr-CXR finding whose map is shown, or None.
    opacity
        0 (invisible) .. 1 (opaque colormap) where the map is at or above ``threshold``.
    colormap
        A key of :data:`COLORMAPS`.
    threshold
        Map values below it are transparent (0 shows everything).
    method
        A key of :data:`CAM_METHODS`.
    scale_by_probability
        Multiply the map by the finding's probability relative to its operating threshold,
        ``min(1, p / threshold)`` (``p`` without a threshold), before colouring (default on).
    below_threshold
        Draw a finding's map even when its probability is below the finding's operating
        threshold (default off: such a map would suggest a finding the model does not flag).
    contour
        Draw iso-contours of the map instead of a filled colour wash.
    pinned
        Keep ``finding`` when paging to another image (default: each image shows its own top
        finding).
    """

    visible: bool = False
    finding: str | None = None
    opacity: float = 0.4
    colormap: str = "jet"
    threshold: float = 0.2
    method: str = "gradcam"
    scale_by_probability: bool = True
    below_threshold: bool = False
    contour: bool = False
    pinned: bool = False


#: Iso-levels of the contour mode (fractions of the colour scale).
CONTOUR_LEVELS = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class OverlayPlan:
    """What to draw for one finding's map, and what to tell the reader.

    Attributes
    ----------
    draw
        False: draw nothing (``reason`` says why).
    gain
        Factor applied to the [0, 1] map before colouring (``min(1, p / threshold)``, ``p``
        without a threshold, or 1 when not scaling).
    reason
        One line for the view when nothing is drawn or the map is faded.
    """

    draw: bool
    gain: float
    reason: str = ""


def overlay_plan(
    probability: float | None, decision_threshold: float | None, settings: OverlaySettings
) -> OverlayPlan:
    """Decide how a finding's map is shown from its probability and operating threshold.

    Parameters
    ----------
    probability
        The finding's probability (None: unknown, e.g. no prediction yet: drawn unscaled).
    decision_threshold
        The finding's operating threshold (None: no threshold known).
    settings
        The overlay settings (scale_by_probability, below_threshold).
    """
    if probability is None:
        return OverlayPlan(True, 1.0, "")
    p = float(min(max(probability, 0.0), 1.0))
    gain = 1.0
    if settings.scale_by_probability:
        # Relative to the operating threshold: calibrated probabilities of rare findings are
        # small (a flagged pleural thickening at 16 %), and scaling by p alone made every
        # flagged map of such a finding fall under the display cut, i.e. invisible.
        if decision_threshold is not None and decision_threshold > 0:
            gain = min(1.0, p / float(decision_threshold))
        else:
            gain = p
    below = decision_threshold is not None and p < decision_threshold
    if below and not settings.below_threshold:
        return OverlayPlan(
            False, gain,
            f"{100 * p:.0f}% is below the threshold {100 * decision_threshold:.0f}%: "
            "heat map not drawn (tick \"Below threshold too\" to see it)")
    reason = "below threshold: shown on request" if below else ""
    return OverlayPlan(True, gain, reason)


def colorbar(colormap: str, length: int = 256, thickness: int = 12) -> np.ndarray:
    """A horizontal colour bar, 0 on the left: RGB uint8 (thickness, length, 3)."""
    ramp = np.round(np.linspace(0, 255, int(length))).astype(np.uint8)[np.newaxis, :]
    bgr = cv2.applyColorMap(np.repeat(ramp, int(thickness), axis=0), _colormap_id(colormap))
    return np.ascontiguousarray(bgr[..., ::-1])


def contour_rgba(
    cam: np.ndarray, colormap: str = "jet", levels: tuple[float, ...] = CONTOUR_LEVELS,
    thickness: int | None = None,
) -> np.ndarray:
    """Iso-contours of a [0, 1] map at ``levels``, each in its colormap colour, on transparent.

    Returns
    -------
    np.ndarray
        RGBA uint8 (rows, cols, 4); alpha 255 on the lines, 0 elsewhere.
    """
    cam = np.nan_to_num(np.asarray(cam, dtype=np.float32), nan=0.0)
    if cam.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {cam.shape}")
    rows, cols = cam.shape
    if thickness is None:
        thickness = max(1, round(max(rows, cols) / 400))
    out = np.zeros((rows, cols, 4), dtype=np.uint8)
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], _colormap_id(colormap))
    for level in levels:
        mask = (cam >= level).astype(np.uint8)
        if not mask.any():
            continue
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        b, g, r = (int(v) for v in lut[round(level * 255), 0])
        cv2.drawContours(out, contours, -1, (r, g, b, 255), int(thickness))
    return out


def render_overlay(
    cam: np.ndarray, settings: OverlaySettings, gain: float = 1.0
) -> np.ndarray:
    """The RGBA overlay of ``cam`` as ``settings`` say (filled or contours), after ``gain``."""
    scaled = np.clip(np.asarray(cam, dtype=np.float32) * np.float32(gain), 0.0, 1.0)
    if settings.contour:
        return contour_rgba(scaled, settings.colormap)
    return colorize(scaled, settings.colormap, max(settings.threshold, 1e-6))


def _colormap_id(colormap: str) -> int:
    try:
        return COLORMAPS[colormap]
    except KeyError:
        raise ValueError(
            f"unknown colormap {colormap!r} (one of {', '.join(COLORMAPS)})"
        ) from None


def cam_to_uint8(cam: np.ndarray) -> np.ndarray:
    """Scale a heat map to 8 bits: 0 = no attention, 255 = the map's maximum.

    Parameters
    ----------
    cam
        2-D non-negative map (NaN refused).

    Returns
    -------
    np.ndarray
        uint8, same shape; all zeros when the map is all zero.
    """
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {cam.shape}")
    if not np.all(np.isfinite(cam)):
        raise ValueError("heat map contains NaN or infinity")
    peak = float(cam.max()) if cam.size else 0.0
    if peak <= 0.0:
        return np.zeros(cam.shape, dtype=np.uint8)
    return np.round(np.clip(cam, 0.0, None) * (255.0 / peak)).astype(np.uint8)


def colorize(cam: np.ndarray, colormap: str = "jet", threshold: float = 0.0) -> np.ndarray:
    """Colour a [0, 1] heat map.

    Parameters
    ----------
    cam
        2-D float map in [0, 1] (values outside are clipped).
    colormap
        A key of :data:`COLORMAPS`.
    threshold
        Pixels with ``cam < threshold`` get alpha 0; the others alpha 255.

    Returns
    -------
    np.ndarray
        RGBA uint8, shape (rows, cols, 4).
    """
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {cam.shape}")
    levels = np.round(np.clip(np.nan_to_num(cam, nan=0.0), 0.0, 1.0) * 255.0).astype(np.uint8)
    bgr = cv2.applyColorMap(levels, _colormap_id(colormap))
    rgba = np.empty(cam.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = bgr[..., ::-1]
    rgba[..., 3] = np.where(cam >= threshold, 255, 0).astype(np.uint8)
    return rgba


def blend(
    display: np.ndarray,
    cam: np.ndarray,
    *,
    colormap: str = "jet",
    opacity: float = 0.4,
    threshold: float = 0.0,
) -> np.ndarray:
    """Blend a heat map onto an 8-bit display image.

    Parameters
    ----------
    display
        uint8 grayscale (rows, cols) or RGB (rows, cols, 3), e.g. ``render_display`` output.
    cam
        [0, 1] map of the same rows x cols.
    colormap, threshold
        As in :func:`colorize`.
    opacity
        Weight of the colormap where shown, in [0, 1].

    Returns
    -------
    np.ndarray
        RGB uint8, shape (rows, cols, 3).
    """
    if display.dtype != np.uint8:
        raise ValueError(f"display must be uint8, not {display.dtype}")
    if display.ndim == 2:
        rgb = np.repeat(display[..., np.newaxis], 3, axis=2)
    elif display.ndim == 3 and display.shape[2] == 3:
        rgb = display
    else:
        raise ValueError(f"display must be (rows, cols) or (rows, cols, 3), not {display.shape}")
    if tuple(cam.shape) != tuple(display.shape[:2]):
        raise ValueError(f"heat map is {cam.shape}, display is {display.shape[:2]}")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity {opacity} is outside [0, 1]")
    rgba = colorize(cam, colormap, threshold)
    weight = (rgba[..., 3:4].astype(np.float32) / 255.0) * np.float32(opacity)
    out = rgb.astype(np.float32) * (1.0 - weight) + rgba[..., :3].astype(np.float32) * weight
    return np.round(out).astype(np.uint8)
