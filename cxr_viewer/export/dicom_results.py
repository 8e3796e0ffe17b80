"""Write the DICOM results of one image (SR + Parametric Map + presentation state) into a folder.

The one entry point the CLI (``cxr-viewer predict --dicom-out``) and the export dialog call.
Each object goes to its own file, written atomically; every write is recorded in the audit trail.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxr_viewer import audit
from cxr_viewer.export.annotated import ExportError
from cxr_viewer.export.dicom_common import require_dicom_source, save_dataset
from cxr_viewer.export.pm import build_parametric_map
from cxr_viewer.export.pr import ViewState, build_presentation_state
from cxr_viewer.export.sr import build_sr
from cxr_viewer.inference.results import CamResult, Prediction
from cxr_viewer.io.types import ImageData


@dataclass
class DicomResults:
    """What :func:`write_dicom_results` wrote (paths) and why something was not written."""

    sr: Path | None = None
    pm: Path | None = None
    pr: Path | None = None
    skipped: list[str] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return [p for p in (self.sr, self.pm, self.pr) if p is not None]


def results_stem(image: ImageData) -> str:
    """File-name stem for the results of ``image``: its name plus a short hash of its SOP UID
    (two sources named "1.dcm" in two folders do not overwrite each other's results)."""
    stem = Path(image.path).stem or "image"
    tag = hashlib.sha1(image.sop_uid.encode("ascii", "replace")).hexdigest()[:8]
    return f"{stem}-{tag}"


def check_dicom_results_possible(image: ImageData) -> None:
    """Raise ExportError (with the reason) when ``image`` cannot get DICOM results (PNG, JPEG)."""
    require_dicom_source(image, "result object")


def write_dicom_results(
    image: ImageData,
    out_dir: str | Path,
    *,
    prediction: Prediction | None = None,
    cams: CamResult | None = None,
    view: ViewState | None = None,
    audit_log: audit.AuditLog | None = None,
) -> DicomResults:
    """Write the SR (when ``prediction``), the Parametric Map (when ``cams``) and the GSPS (when
    ``view``) of ``image`` into ``out_dir``.

    Raises
    ------
    ExportError
        The image cannot carry DICOM results (PNG/JPEG, no UIDs), or nothing was given.
    """
    check_dicom_results_possible(image)
    if prediction is None and cams is None and view is None:
        raise ExportError(image.path, "nothing to write: no AI result, heat maps or view")
    out = Path(out_dir)
    stem = results_stem(image)
    written = DicomResults()
    objects = []
    if prediction is not None:
        objects.append(("sr", "SR", build_sr(image, prediction), f"{stem}_AI-SR.dcm"))
    if cams is not None:
        if cams.maps:
            pm = build_parametric_map(
                image,
                cams,
                model_name=prediction.model_name if prediction else "",
                model_version=prediction.model_version if prediction else "",
                weights_sha256=prediction.weights_sha256 if prediction else "",
            )
            objects.append(("pm", "Parametric Map", pm, f"{stem}_AI-heatmaps-PM.dcm"))
        else:
            written.skipped.append("no heat maps to store")
    if view is not None:
        objects.append(("pr", "GSPS", build_presentation_state(image, view), f"{stem}_GSPS.dcm"))
    for attr, kind, ds, name in objects:
        path = save_dataset(ds, out / name)
        setattr(written, attr, path)
        audit.exported(
            f"DICOM {kind}",
            str(path),
            study_uid=image.study_uid,
            source_sop_uids=[image.sop_uid],
            created_sop_uids=[str(ds.SOPInstanceUID)],
            log_=audit_log,
        )
    return written


def write_dicom_results_for_request(request: Any, out_dir: str | Path) -> DicomResults:
    """The viewer's export: SR (when analysed), PM (when heat maps), GSPS (always) of what an
    :class:`~cxr_viewer.export.annotated.ExportRequest` shows."""
    from cxr_viewer.export.pr import view_state_from_request

    prediction = request.prediction
    if prediction is not None and prediction.image_id != request.image.image_id:
        prediction = None  # a stale result is never filed under this image
    cams = request.cams
    if cams is not None and (cams.image_id != request.image.image_id or not cams.maps):
        cams = None
    return write_dicom_results(
        request.image,
        out_dir,
        prediction=prediction,
        cams=cams,
        view=view_state_from_request(request),
    )


def after_prediction(
    image: ImageData,
    prediction: Prediction,
    *,
    cams: CamResult | None = None,
    dicom_out: str | Path | None = None,
    audit_log: audit.AuditLog | None = None,
) -> dict[str, str]:
    """What the headless ``predict`` does after each analysis: record it in the audit trail and,
    with ``dicom_out``, write the SR (and the Parametric Map when ``cams``).

    Returns
    -------
    dict
        ``{"sr": path, "pm": path}`` as written, or ``{"dicom_refused": reason}`` for a source
        that cannot carry DICOM results (PNG/JPEG): a clear message, not a failed analysis.
    """
    from cxr_viewer.export.ai_report import report_from_prediction

    audit.ai_analysis_from_report(
        report_from_prediction(prediction),
        input_sop_uid=image.sop_uid or f"file:{Path(image.path).name}",
        study_uid=image.study_uid,
        log_=audit_log,
    )
    if dicom_out is None:
        return {}
    try:
        written = write_dicom_results(
            image, dicom_out, prediction=prediction, cams=cams, audit_log=audit_log
        )
    except ExportError as exc:
        return {"dicom_refused": exc.cause}
    out: dict[str, str] = {}
    if written.sr is not None:
        out["sr"] = str(written.sr)
    if written.pm is not None:
        out["pm"] = str(written.pm)
    return out
