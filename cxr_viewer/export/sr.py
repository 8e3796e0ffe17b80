"""DICOM Structured Report of the AI findings of one image (TID 1500 Measurement Report).

Built with highdicom (``highdicom.sr``), as the IHE AI Results profile asks of an AI result:

* root: TID 1500 "Imaging Measurement Report"; the observer is the device (the model: name,
  version, manufacturer "cxr-viewer", a UID derived from its weights' SHA-256); procedure
  reported LN 43468-8; the source image in the Image Library (TID 1600).
* one TID 1501 measurement group per finding (all 14, in VinDr-CXR order) with
  - Finding = the finding's coded concept (:mod:`cxr_viewer.export.ai_codes`),
  - Algorithm Identification (TID 4019): name, version, parameters ``weights-sha256=<hex>`` and,
    when the result has one, ``operating-mode=<name>``,
  - NUM "Probability" (DCM 122157, unit UCUM "1") and NUM "Threshold Value" (DCM 122411) when
    scored,
  - CODE "Scored by this model" Yes/No and, when scored, "Flagged at the active operating point"
    Yes/No (private 99CXRV concepts, SCT Yes/No values),
  - the source image (Source of Measurement).
* the "Abnormal" score and the "No finding" output, when the result has them, as two more groups.
* the disclaimer as a TEXT "Comment" (DCM 121106) in the TID 1500 Qualitative Evaluations
  container, and as the Series Description.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cxr_viewer import DISCLAIMER
from cxr_viewer.export import ai_codes as C
from cxr_viewer.export.ai_report import AiReport, report_from_prediction
from cxr_viewer.export.annotated import ExportError
from cxr_viewer.export.dicom_common import (
    MANUFACTURER,
    SR_SERIES_DESCRIPTION,
    SR_SERIES_NUMBER,
    from_source_header,
    new_instance,
    require_dicom_source,
    save_dataset,
)
from cxr_viewer.inference.results import Prediction
from cxr_viewer.io.types import ImageData

WEIGHTS_PARAMETER = "weights-sha256="
MODE_PARAMETER = "operating-mode="
CALIBRATED_PARAMETER = "calibrated-probabilities="
QUALITATIVE_EVALUATIONS = C.Concept("C0034375", "UMLS", "Qualitative Evaluations")


def device_uid(report: AiReport) -> str:
    """A UID for the model as an observer device: the same weights give the same UID."""
    from pydicom.uid import generate_uid

    return str(
        generate_uid(
            entropy_srcs=[report.model_name, report.model_version, report.weights_sha256 or "-"]
        )
    )


def _algorithm(report: AiReport) -> Any:
    import highdicom as hd

    params = [f"{WEIGHTS_PARAMETER}{report.weights_sha256 or 'unknown'}"]
    if report.operating_mode:
        params.append(f"{MODE_PARAMETER}{report.operating_mode}")
    if report.calibrated is not None:
        params.append(f"{CALIBRATED_PARAMETER}{'yes' if report.calibrated else 'no'}")
    return hd.sr.AlgorithmIdentification(
        name=report.model_name[:64] or "unknown model",
        version=report.model_version[:64] or "unknown",
        parameters=params,
        manufacturer=MANUFACTURER,
    )


def _yes_no(flag: bool) -> Any:
    return (C.YES if flag else C.NO).coded()


def _group(
    concept: C.Concept,
    label: str,
    report: AiReport,
    source_item: Any,
    *,
    probability: float | None,
    threshold: float | None = None,
    flagged: bool | None = None,
    scored_flag: bool = True,
) -> Any:
    import highdicom as hd

    measurements = []
    evaluations = []
    if scored_flag:
        evaluations.append(
            hd.sr.QualitativeEvaluation(C.SCORED.coded(), _yes_no(probability is not None))
        )
    if probability is not None:
        measurements.append(
            hd.sr.Measurement(
                name=C.PROBABILITY.coded(),
                value=float(probability),
                unit=C.NO_UNITS.coded(),
                referenced_images=None,
            )
        )
        if threshold is not None:
            measurements.append(
                hd.sr.Measurement(
                    name=C.THRESHOLD.coded(), value=float(threshold), unit=C.NO_UNITS.coded()
                )
            )
        if flagged is not None:
            evaluations.append(hd.sr.QualitativeEvaluation(C.FLAGGED.coded(), _yes_no(flagged)))
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"AI: {label}"),
        finding_type=concept.coded(),
        algorithm_id=_algorithm(report),
        measurements=measurements or None,
        qualitative_evaluations=evaluations or None,
        source_images=[source_item],
    )


def library_view(ref: Any) -> Any:
    """The attributes of ``ref`` that the Image Library (TID 1600/1602/1603) describes.

    highdicom describes a projection radiograph by its Patient Orientation and Imager Pixel
    Spacing and fails when either is absent (common in the wild); then only the modality and
    matrix size are described (TID 1603 is conditional on those attributes being known).
    """
    from pydicom.dataset import Dataset

    view = Dataset()
    for keyword in ("SOPClassUID", "SOPInstanceUID", "Rows", "Columns", "Modality"):
        if keyword in ref:
            view[keyword] = ref[keyword]
    if str(ref.get("FrameOfReferenceUID", "") or ""):
        view.FrameOfReferenceUID = ref.FrameOfReferenceUID
    orientation = [str(v) for v in (ref.get("PatientOrientation") or [])]
    spacing = ref.get("ImagerPixelSpacing") or ref.get("PixelSpacing")
    if len(orientation) == 2 and all(orientation) and spacing is not None and len(spacing) == 2:
        view.PatientOrientation = orientation
        view.ImagerPixelSpacing = [float(spacing[0]), float(spacing[1])]
    else:
        view.Modality = "OT"  # read by highdicom only to pick TID 1603; never written out
    return view


def build_sr_content(report: AiReport, ref: Any) -> Any:
    """The TID 1500 content tree (a highdicom MeasurementReport) for ``report`` about ``ref``."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    observer = hd.sr.ObserverContext(
        observer_type=codes.cid270.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device_uid(report),
            name=report.model_name[:64] or "unknown model",
            manufacturer_name=MANUFACTURER,
            model_name=f"{report.model_name} {report.model_version}"[:64],
        ),
    )
    source_item = hd.sr.SourceImageForMeasurementGroup.from_source_image(ref)
    groups = []
    for f in report.findings:
        groups.append(
            _group(
                C.FINDING_CONCEPTS[f.finding],
                f.finding,
                report,
                source_item,
                probability=f.probability,
                threshold=f.threshold,
                flagged=f.flagged,
            )
        )
    if report.abnormal is not None:
        groups.append(
            _group(
                C.ABNORMAL,
                "Abnormal",
                report,
                source_item,
                probability=report.abnormal,
                threshold=report.abnormal_threshold,
                flagged=report.abnormal_flagged,
            )
        )
    if report.no_finding is not None:
        groups.append(
            _group(C.NO_FINDING, "No finding", report, source_item, probability=report.no_finding)
        )
    measurement_report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=C.PROCEDURE.coded(),
        imaging_measurements=groups,
        title=C.REPORT_TITLE.coded(),
        referenced_images=[library_view(ref)],
    )
    # TID 1500 row "Qualitative Evaluations": the disclaimer and any warnings, as free text.
    container = hd.sr.ContainerContentItem(
        name=QUALITATIVE_EVALUATIONS.coded(),
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )
    container.ContentSequence = hd.sr.ContentSequence(
        [
            hd.sr.TextContentItem(
                name=C.COMMENT.coded(),
                value=text[:1024],
                relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
            )
            for text in (f"Research use only. {DISCLAIMER}.", *report.warnings)
        ]
    )
    measurement_report[0].ContentSequence.append(container)
    return measurement_report


def build_sr(image: ImageData, prediction: Prediction | AiReport) -> Any:
    """Build (without writing) the Comprehensive SR of ``prediction`` about ``image``.

    Parameters
    ----------
    image
        The analysed image; must be DICOM (its header is referenced).
    prediction
        The inference result (mapped by :func:`report_from_prediction`) or a ready AiReport.

    Returns
    -------
    highdicom.sr.ComprehensiveSR

    Raises
    ------
    ExportError
        A non-DICOM source, missing UIDs, or a result of another image.
    """
    import highdicom as hd

    ref = require_dicom_source(image, "Structured Report")
    if isinstance(prediction, Prediction):
        if prediction.image_id != image.image_id:
            raise ExportError(image.path, "the AI result belongs to another image")
        report = report_from_prediction(prediction)
    else:
        report = prediction
    content = build_sr_content(report, ref)
    with from_source_header(image, "referenced by an SR"):
        sr = hd.sr.ComprehensiveSR(
            evidence=[ref],
            content=content,
            **new_instance(SR_SERIES_NUMBER, device=False),
            is_complete=True,
            is_final=False,  # an AI second opinion: never a verified final report
            is_verified=False,
            series_description=SR_SERIES_DESCRIPTION,
        )
    return sr


def write_sr(image: ImageData, prediction: Prediction | AiReport, path: str | Path) -> Path:
    """Write the AI findings of ``image`` as a DICOM Comprehensive SR file (atomically)."""
    return save_dataset(build_sr(image, prediction), path)
