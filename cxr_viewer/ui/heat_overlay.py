"""Drawing one viewport's heat map as it should be read (shared by the main viewport and the
other viewports of the reading workflow): the selected finding's map scaled by the finding's
probability, not drawn below its operating threshold unless asked, contours on request, with the
finding, its probability and threshold and a colour bar in the view.

Each viewport owns a :class:`ViewportAI` (its image id, prediction, heat maps and overlay
settings); a result whose image id is not the viewport's image is never stored or drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass
class ViewportAI:
    """The AI state of one viewport (the prior's, a dragged image's): results of ITS image."""

    image_id: str | None = None
    prediction: Any = None  # Prediction of image_id
    cams: Any = None  # CamResult of image_id
    overlay: Any = None  # OverlaySettings (own finding and visibility)
    error: str = ""  # why the image was not analysed

    def reset(self, image_id: str | None) -> None:
        """A new image is in the viewport: nothing of the old one's results stays (the same
        image shown again keeps its results)."""
        if image_id is not None and image_id == self.image_id:
            return
        self.image_id = image_id
        self.prediction = None
        self.cams = None
        self.error = ""
        if self.overlay is not None:
            self.overlay = replace(self.overlay, finding=None)

    def accepts(self, result: Any) -> bool:
        """Whether ``result`` (Prediction / CamResult) belongs to this viewport's image."""
        return self.image_id is not None and getattr(result, "image_id", None) == self.image_id


def top_finding(prediction: Any) -> str | None:
    """The default heat-map finding of ``prediction`` (``Prediction.heatmap_subject``: the most
    probable flagged one, else the most probable; None when nothing is scored)."""
    return None if prediction is None else prediction.heatmap_subject()


def draw_heatmap(view: Any, image: Any, prediction: Any, cams: Any, ov: Any) -> bool:
    """Show ``ov.finding``'s map of ``cams`` on ``view`` (or hide it, with the legend saying
    why).  Returns False when the heat maps are still being computed."""
    from cxr_viewer.imaging.heatmap import CAM_METHODS, overlay_plan, render_overlay

    finding = ov.finding if ov is not None else None
    if ov is None or not ov.visible or finding is None or image is None:
        view.set_heatmap(None)
        return True
    if cams is not None and getattr(cams, "image_id", None) != image.image_id:
        cams = None  # never one image's map on another image
    if prediction is not None and getattr(prediction, "image_id", None) != image.image_id:
        prediction = None
    score = prediction.score(finding) if prediction is not None else None
    p = score.probability if score is not None else None
    thr = score.threshold if score is not None else None
    title = finding + (f"  {100 * p:.0f}%" if p is not None else "")
    if score is not None and score.flagged:
        title += "  FLAG"
    parts = []
    if thr is not None:
        parts.append(f"threshold {100 * thr:.0f}%")
    method_id = cams.method if cams is not None else ov.method
    parts.append(CAM_METHODS.get(method_id, method_id))
    if ov.pinned:
        parts.append("pinned finding")
    legend = {"title": title, "detail": " | ".join(parts), "method": method_id}
    if cams is None or finding not in cams.maps:
        view.set_heatmap(None, legend=dict(legend, note="heat map: computing..."))
        return cams is not None
    plan = overlay_plan(p, thr, ov)
    if not plan.draw:
        view.set_heatmap(None, legend=dict(legend, note=plan.reason))
        return True
    rgba = render_overlay(cams.maps[finding], ov, plan.gain)
    if not ov.scale_by_probability or p is None:
        scale = "0 .. 1: attention (not scaled)"
    elif thr:
        scale = "0 .. 1: attention x probability / threshold (max 1)"
    else:
        scale = "0 .. 1: attention x probability"
    legend.update(colormap=ov.colormap, scale=scale, note=plan.reason)
    opacity = max(ov.opacity, 0.9) if ov.contour else ov.opacity
    method = CAM_METHODS.get(cams.method, cams.method)
    view.set_heatmap(rgba, opacity, f"{finding} ({method})", legend=legend)
    return True
