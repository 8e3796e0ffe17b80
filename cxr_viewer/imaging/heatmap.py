"""Heat-map colouring and blending onto the 8-bit display image (OpenCV colormaps; no Qt).

A heat map (Grad-CAM, saliency) is a float map in [0, 1] at the original image size.  Values below
the threshold are transparent, so the radiograph shows through where the model paid no attention.
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
    """

    visible: bool = False
    finding: str | None = None
    opacity: float = 0.4
    colormap: str = "jet"
    threshold: float = 0.2
    method: str = "gradcam"


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
