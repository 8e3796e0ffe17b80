"""Headless export pipeline shared by ``cxr-viewer export``, ``cxr-viewer demo`` and the GUI.

``build_request`` turns an image (+ optional model bundle) into an :class:`ExportRequest` the way the
viewer opens it (default window preset, heat map of the top-ranked finding); ``export_to`` composes
and writes PNG, JPEG or DICOM Secondary Capture by the output's extension.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cxr_viewer.export.annotated import ExportError, ExportRequest, compose_annotated, save_image
from cxr_viewer.inference.findings import VINDR_FINDINGS
from cxr_viewer.inference.results import Prediction
from cxr_viewer.io.types import ImageData

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DICOM_SUFFIXES = (".dcm",)
EXPORT_SUFFIXES = IMAGE_SUFFIXES + DICOM_SUFFIXES


def resolve_window(image: ImageData, window: tuple[float, float] | None = None) -> tuple[Any, str]:
    """The VOI the viewer opens the image with (or a manual window) and its label.

    Parameters
    ----------
    image
        The loaded image.
    window
        ``(center, width)`` to override the default preset (the header's VOI LUT Function is
        kept, as ``cxr-viewer render --window`` does).

    Returns
    -------
    tuple
        (VOI, label).
    """
    from cxr_viewer.imaging.presets import ManualWindow, default_preset

    if window:
        # as `cxr-viewer render --window`: keep the header's VOI LUT Function (e.g. SIGMOID)
        function = image.windows[0].function if image.windows else "LINEAR"
        preset = ManualWindow(float(window[0]), float(window[1]), function)
    else:
        preset = default_preset(image)
    voi = preset.resolve(image)
    # the VOI's label names the header window by its explanation (e.g. "LUNG") when it has one
    return voi, str(getattr(voi, "label", "") or preset.label)


def top_finding(prediction: Prediction) -> str | None:
    """The default heat-map finding (``Prediction.heatmap_subject``: the most probable flagged
    one, else the most probable; None when the model scores none)."""
    return prediction.heatmap_subject()


def check_finding(prediction: Prediction, finding: str, source: str) -> str:
    """Return the canonical spelling of ``finding`` (case-insensitive) or raise ExportError."""
    by_lower = {f.lower(): f for f in VINDR_FINDINGS}
    canonical = by_lower.get(finding.strip().lower())
    if canonical is None:
        raise ExportError(
            source, f"unknown finding {finding!r} (one of: {', '.join(VINDR_FINDINGS)})"
        )
    if prediction.score(canonical).probability is None:
        raise ExportError(source, f"the model does not score {canonical!r}")
    return canonical


def build_request(
    image: ImageData,
    *,
    bundle: Any | None = None,
    finding: str | None = None,
    window: tuple[float, float] | None = None,
    include_patient_details: bool = False,
    cam_method: str = "gradcam",
    prediction: Prediction | None = None,
    **overrides: Any,
) -> ExportRequest:
    """Analyse ``image`` with ``bundle`` (when given) and build the export request.

    Parameters
    ----------
    image
        The loaded image.
    bundle
        A model bundle (``cxr_viewer.inference.bundle.load_bundle``); None: no AI (panel says so).
    finding
        Heat-map finding; default: the top-ranked scored finding.
    window
        ``(center, width)``; default: the viewer's default preset.
    include_patient_details
        Burn patient identifiers into the panel.
    cam_method
        Heat-map method passed to ``bundle.cams``.
    prediction
        A prediction already computed for this image (skips ``bundle.predict``).
    **overrides
        Other :class:`ExportRequest` fields (rotation_k, flip_h, overlay_opacity, ...).

    Returns
    -------
    ExportRequest
    """
    voi, label = resolve_window(image, window)
    cams = None
    card = None
    if bundle is not None:
        card = bundle.card
        if prediction is None:
            prediction = bundle.predict(image)
        if finding is not None:
            finding = check_finding(prediction, finding, image.path)
        else:
            finding = top_finding(prediction)
        if finding is not None:
            cams = bundle.cams(image, findings=[finding], method=cam_method)
    elif finding is not None:
        raise ExportError(image.path, "a heat-map finding needs a model (drop --no-ai)")
    return ExportRequest(
        image=image,
        voi=voi,
        window_label=label,
        prediction=prediction,
        cams=cams,
        finding=finding,
        card=card,
        include_patient_details=include_patient_details,
        **overrides,
    )


def export_to(request: ExportRequest, path: str | Path) -> tuple[Path, tuple[int, int]]:
    """Compose ``request`` and write it as PNG, JPEG or DICOM Secondary Capture.

    Parameters
    ----------
    request
        What to export.
    path
        Output file; the extension chooses the format (``.png``, ``.jpg``/``.jpeg``, ``.dcm``).

    Returns
    -------
    tuple
        (written path, (rows, cols) of the composed image).

    Raises
    ------
    ExportError
        Unknown extension, or a DICOM export of a non-DICOM source.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in EXPORT_SUFFIXES:
        raise ExportError(
            str(path), f"unknown export format {ext!r} (use {', '.join(EXPORT_SUFFIXES)})"
        )
    rgb = compose_annotated(request)
    if ext in DICOM_SUFFIXES:
        from cxr_viewer.export.secondary_capture import write_secondary_capture

        write_secondary_capture(rgb, request, path)
    else:
        save_image(rgb, path, request)
    from cxr_viewer import audit

    image = request.image
    audit.exported(
        "DICOM Secondary Capture" if ext in DICOM_SUFFIXES else f"annotated {ext[1:].upper()}",
        str(path),
        study_uid=image.study_uid,
        source_sop_uids=[image.sop_uid] if image.sop_uid else [],
    )
    return path, (int(rgb.shape[0]), int(rgb.shape[1]))


def prediction_to_dict(prediction: Prediction) -> dict[str, Any]:
    """JSON-ready view of a prediction (no patient data)."""
    return {
        "model": {
            "name": prediction.model_name,
            "version": prediction.model_version,
            "weights_sha256": prediction.weights_sha256,
        },
        "findings": [
            {
                "finding": s.finding,
                "probability": s.probability,
                "threshold": s.threshold,
                "flagged": bool(s.flagged),
            }
            for s in prediction.ranked()
        ],
        "no_finding": prediction.no_finding,
        "abnormal": prediction.abnormal,
        "abnormal_flagged": prediction.abnormal_flagged,
        "mode": prediction.mode,
        "extras": {k: float(v) for k, v in prediction.extras.items()},
        "warnings": list(prediction.warnings),
    }
