"""Read back stored AI results and presentation states: SR -> findings, PM -> heat maps,
GSPS -> the view. Qt-free, and never imports TensorFlow (a stored result needs no model).

Our objects (written by :mod:`cxr_viewer.export.sr`, ``.pm`` and ``.pr``) are recognised by their
content (the TID 1500 groups with our finding codes, the heat-map LUT explanations, the GSPS
content label). Structured reports, presentation states and other non-image objects from other
software are listed as :class:`ForeignObject` (title, class, what they reference) and never raise:
anything unreadable goes to :attr:`StoredResults.errors` with the reason.
"""

from __future__ import annotations

import datetime as _dt
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxr_viewer.export import ai_codes as C
from cxr_viewer.export.ai_report import AiReport, ReportedFinding
from cxr_viewer.export.dicom_common import MANUFACTURER
from cxr_viewer.export.pm import finding_from_explanation
from cxr_viewer.export.pr import CONTENT_LABEL as OUR_PR_LABEL
from cxr_viewer.export.pr import DistanceLine, ViewState
from cxr_viewer.export.sr import CALIBRATED_PARAMETER, MODE_PARAMETER, WEIGHTS_PARAMETER
from cxr_viewer.inference.findings import VINDR_FINDINGS
from cxr_viewer.inference.results import CamResult

PARAMETRIC_MAP = "1.2.840.10008.5.1.4.1.1.30"
GSPS = "1.2.840.10008.5.1.4.1.1.11.1"
#: SR Storage SOP classes (PS3.4 B.5): Basic Text, Enhanced, Comprehensive, Comprehensive 3D,
#: Extensible, Key Object Selection, and the CAD / dose reports, all "1.2.840.10008.5.1.4.1.1.88.x"
SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
#: Presentation states (grayscale, color, pseudo-color, blending, ...): "...1.1.11.x"
PR_PREFIX = "1.2.840.10008.5.1.4.1.1.11."


def is_result_sop_class(sop_class_uid: object) -> bool:
    """True for the non-image (or derived) objects this module reads: SR, PR, Parametric Map."""
    uid = str(sop_class_uid or "")
    return uid == PARAMETRIC_MAP or uid.startswith(SR_PREFIX) or uid.startswith(PR_PREFIX)


@dataclass(frozen=True)
class StoredReport:
    """One of our SRs: the AI findings of one image, with the model that produced them."""

    path: Path
    sop_uid: str
    study_uid: str
    source_sop_uids: tuple[str, ...]
    report: AiReport

    @property
    def created(self) -> _dt.datetime | None:
        return self.report.created


@dataclass(frozen=True)
class StoredHeatmaps:
    """One of our Parametric Maps: heat maps of one image (pixels loaded on demand)."""

    path: Path
    sop_uid: str
    source_sop_uids: tuple[str, ...]
    findings: tuple[str, ...]  # frame order
    method: str
    model_name: str = ""
    model_version: str = ""
    rows: int = 0
    columns: int = 0

    def load(self, image_id: str) -> CamResult:
        """The maps (float32 in [0, 1], source size) as a CamResult for ``image_id``."""
        import pydicom

        ds = pydicom.dcmread(self.path)
        frames = np.asarray(ds.pixel_array)
        if frames.ndim == 2:
            frames = frames[np.newaxis]
        maps: dict[str, np.ndarray] = {}
        for i, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
            rwvm = item.RealWorldValueMappingSequence[0]
            finding = finding_from_explanation(str(rwvm.get("LUTExplanation", "")))
            if finding is None:
                continue
            slope = float(rwvm.get("RealWorldValueSlope", 1.0))
            intercept = float(rwvm.get("RealWorldValueIntercept", 0.0))
            maps[finding] = np.clip(frames[i].astype(np.float32) * slope + intercept, 0.0, 1.0)
        return CamResult(
            image_id=image_id,
            method=self.method,
            maps=maps,
            note=f"stored heat maps ({self.path.name})",
        )


@dataclass(frozen=True)
class StoredView:
    """One of our presentation states: the window, orientation and measurements as read."""

    path: Path
    sop_uid: str
    source_sop_uids: tuple[str, ...]
    view: ViewState  # ``invert`` here is the Presentation LUT Shape (True = INVERSE)

    def view_for(self, inverted_display: bool) -> ViewState:
        """The view for an image whose own display is ``inverted_display`` (MONOCHROME1...)."""
        from dataclasses import replace

        return replace(self.view, invert=self.view.invert != bool(inverted_display))


@dataclass(frozen=True)
class ForeignObject:
    """An SR, presentation state or map from other software: listed, not interpreted."""

    path: Path
    sop_class: str  # name, e.g. "Comprehensive SR Storage"
    title: str  # document title / content label / series description
    sop_uid: str
    source_sop_uids: tuple[str, ...]


@dataclass
class StoredResults:
    """What :func:`find_stored_results` found, indexed by the SOP Instance UID referenced."""

    reports: list[StoredReport] = field(default_factory=list)
    heatmaps: list[StoredHeatmaps] = field(default_factory=list)
    views: list[StoredView] = field(default_factory=list)
    foreign: list[ForeignObject] = field(default_factory=list)
    errors: list[tuple[Path, str]] = field(default_factory=list)
    #: SOP Instance UIDs of the images opened with these results (for :meth:`orphans`)
    image_sop_uids: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.reports or self.heatmaps or self.views or self.foreign or self.errors)

    def report_for(self, sop_uid: str) -> StoredReport | None:
        """The newest stored report about ``sop_uid``."""
        found = [r for r in self.reports if sop_uid in r.source_sop_uids]
        found.sort(key=lambda r: r.created or _dt.datetime.min, reverse=True)
        return found[0] if found else None

    def heatmaps_for(self, sop_uid: str) -> StoredHeatmaps | None:
        found = [h for h in self.heatmaps if sop_uid in h.source_sop_uids]
        return found[-1] if found else None

    def view_for(self, sop_uid: str) -> StoredView | None:
        found = [v for v in self.views if sop_uid in v.source_sop_uids]
        return found[-1] if found else None

    def orphans(self, available_sop_uids: Iterable[str] | None = None) -> list[StoredReport]:
        """Reports whose referenced image is not among ``available_sop_uids`` (default: the
        :attr:`image_sop_uids` opened with them); the viewer warns about them."""
        have = set(self.image_sop_uids if available_sop_uids is None else available_sop_uids)
        return [r for r in self.reports if not (set(r.source_sop_uids) & have)]


# ---- helpers ------------------------------------------------------------------------------


def _code(item: Any, keyword: str) -> tuple[str, str]:
    seq = item.get(keyword) or []
    if not seq:
        return "", ""
    value = seq[0].get("CodeValue") or seq[0].get("LongCodeValue") or seq[0].get("URNCodeValue")
    return str(value or ""), str(seq[0].get("CodingSchemeDesignator", "") or "")


def _is(item: Any, concept: C.Concept) -> bool:
    return _code(item, "ConceptNameCodeSequence") == (concept.value, concept.scheme)


def _number(item: Any) -> float | None:
    seq = item.get("MeasuredValueSequence") or []
    if not seq:
        return None
    try:
        return float(seq[0].NumericValue)
    except (AttributeError, TypeError, ValueError):
        return None


def _referenced_sop_uids(ds: Any, limit: int = 10000) -> tuple[str, ...]:
    """Every Referenced SOP Instance UID in the dataset (any depth), in order, unique."""
    found: list[str] = []

    def walk(d: Any, depth: int) -> None:
        if depth > 12 or len(found) > limit:
            return
        for elem in d:
            if elem.VR == "SQ":
                for item in elem.value:
                    walk(item, depth + 1)
            elif elem.keyword == "ReferencedSOPInstanceUID":
                uid = str(elem.value or "")
                if uid and uid not in found:
                    found.append(uid)

    walk(ds, 0)
    return tuple(found)


def _content_datetime(ds: Any) -> _dt.datetime | None:
    date = str(ds.get("ContentDate", "") or "")
    time = str(ds.get("ContentTime", "") or "").split(".")[0].ljust(6, "0")
    try:
        return _dt.datetime.strptime(date + time, "%Y%m%d%H%M%S")
    except ValueError:
        return None


def _sop_class_name(uid: str) -> str:
    from pydicom.uid import UID

    name = UID(uid).name
    return name if name and name != uid else (uid or "no SOP class")


# ---- SR -----------------------------------------------------------------------------------

_IMAGING_MEASUREMENTS = C.Concept("126010", "DCM", "Imaging Measurements")
_MEASUREMENT_GROUP = C.Concept("125007", "DCM", "Measurement Group")
_FINDING = C.Concept("121071", "DCM", "Finding")
_ALGORITHM_NAME = C.Concept("111001", "DCM", "Algorithm Name")
_ALGORITHM_VERSION = C.Concept("111003", "DCM", "Algorithm Version")
_ALGORITHM_PARAMETERS = C.Concept("111002", "DCM", "Algorithm Parameters")


def _yes(item: Any) -> bool | None:
    value = _code(item, "ConceptCodeSequence")
    if value == (C.YES.value, C.YES.scheme):
        return True
    if value == (C.NO.value, C.NO.scheme):
        return False
    return None


def parse_ai_report(ds: Any) -> AiReport | None:
    """Our AI report from an SR dataset, or None when the SR is not one of ours."""
    root = ds.get("ContentSequence") or []
    groups = []
    for item in root:
        if _is(item, _IMAGING_MEASUREMENTS):
            groups += [g for g in item.get("ContentSequence", []) if _is(g, _MEASUREMENT_GROUP)]
    findings: dict[str, ReportedFinding] = {}
    extra: dict[str, float | None] = {}
    model: dict[str, Any] = {"name": "", "version": "", "sha": "", "mode": None, "cal": None}
    for group in groups:
        code = None
        prob = thr = None
        flagged = scored = None
        for item in group.get("ContentSequence", []):
            if _is(item, _FINDING):
                code = _code(item, "ConceptCodeSequence")
            elif _is(item, C.PROBABILITY):
                prob = _number(item)
            elif _is(item, C.THRESHOLD):
                thr = _number(item)
            elif _is(item, C.FLAGGED):
                flagged = _yes(item)
            elif _is(item, C.SCORED):
                scored = _yes(item)
            elif _is(item, _ALGORITHM_NAME):
                model["name"] = str(item.get("TextValue", ""))
            elif _is(item, _ALGORITHM_VERSION):
                model["version"] = str(item.get("TextValue", ""))
            elif _is(item, _ALGORITHM_PARAMETERS):
                text = str(item.get("TextValue", ""))
                if text.startswith(WEIGHTS_PARAMETER):
                    model["sha"] = text[len(WEIGHTS_PARAMETER) :]
                elif text.startswith(MODE_PARAMETER):
                    model["mode"] = text[len(MODE_PARAMETER) :]
                elif text.startswith(CALIBRATED_PARAMETER):
                    model["cal"] = text[len(CALIBRATED_PARAMETER) :] == "yes"
        if code is None:
            continue
        if code == (C.ABNORMAL.value, C.ABNORMAL.scheme):
            extra["abnormal"] = prob
            extra["abnormal_threshold"] = thr
            continue
        if code == (C.NO_FINDING.value, C.NO_FINDING.scheme):
            extra["no_finding"] = prob
            continue
        finding = C.finding_for_concept(*code)
        if finding is None:
            continue
        if scored is False:
            prob = None
        findings[finding] = ReportedFinding(
            finding=finding,
            probability=prob,
            threshold=thr if prob is not None else None,
            flagged=flagged if prob is not None else None,
        )
    if not findings:
        return None
    warnings_text = []
    for item in root:
        if _code(item, "ConceptNameCodeSequence")[0] == "C0034375":  # Qualitative Evaluations
            for text_item in item.get("ContentSequence", []):
                text = str(text_item.get("TextValue", ""))
                if text and "not for primary diagnosis" not in text:
                    warnings_text.append(text)
    return AiReport(
        model_name=model["name"] or "unknown model",
        model_version=model["version"] or "",
        weights_sha256=model["sha"] if model["sha"] != "unknown" else "",
        findings=tuple(
            findings.get(f, ReportedFinding(f, None, None, None)) for f in VINDR_FINDINGS
        ),
        abnormal=extra.get("abnormal"),
        no_finding=extra.get("no_finding"),
        operating_mode=model["mode"],
        abnormal_threshold=extra.get("abnormal_threshold"),
        calibrated=model["cal"],
        warnings=tuple(warnings_text),
        created=_content_datetime(ds),
    )


# ---- PM -----------------------------------------------------------------------------------


def parse_heatmaps(ds: Any, path: Path) -> StoredHeatmaps | None:
    findings = []
    method = ""
    for item in ds.get("PerFrameFunctionalGroupsSequence", []):
        rwvm = (item.get("RealWorldValueMappingSequence") or [None])[0]
        explanation = str(getattr(rwvm, "LUTExplanation", "") or "")
        finding = finding_from_explanation(explanation)
        if finding is None:
            return None
        findings.append(finding)
        match = re.search(r"\(([^)]*)\)\s*$", explanation)
        method = method or (match.group(1) if match else "")
    if not findings:
        return None
    name = version = ""
    for eq in ds.get("ContributingEquipmentSequence", []):
        # ours (the model); highdicom adds itself as another item
        if eq.get("Manufacturer") == MANUFACTURER and eq.get("ManufacturerModelName"):
            name = str(eq.ManufacturerModelName)
            versions = eq.get("SoftwareVersions") or []
            versions = [versions] if isinstance(versions, str) else list(versions)
            version = str(versions[0]) if versions else ""
    return StoredHeatmaps(
        path=path,
        sop_uid=str(ds.get("SOPInstanceUID", "")),
        source_sop_uids=_referenced_sop_uids(ds),
        findings=tuple(findings),
        method=method or "stored",
        model_name=name,
        model_version=version,
        rows=int(ds.get("Rows", 0) or 0),
        columns=int(ds.get("Columns", 0) or 0),
    )


# ---- GSPS ---------------------------------------------------------------------------------


def viewer_transform(degrees: int, flip: bool) -> tuple[int, bool, bool]:
    """(rotation_k, flip_h, flip_v) of the viewer for a DICOM rotation + horizontal flip.

    Inverse of :func:`cxr_viewer.export.pr.dicom_spatial_transform` (flips expressed as
    horizontal only: ``H R^d`` is the viewer's ``R^-d H``).
    """
    quarter = (int(degrees) // 90) % 4
    if flip:
        return (-quarter) % 4, True, False
    return quarter, False, False


def _first_float(value: Any) -> float:
    from pydicom.multival import MultiValue

    if isinstance(value, (MultiValue, list, tuple)):
        value = value[0]
    return float(value)


_MM = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*mm")


def parse_view(ds: Any) -> ViewState | None:
    from pydicom.dataset import Dataset
    from pydicom.multival import MultiValue

    voi_seq = ds.get("SoftcopyVOILUTSequence") or []
    voi = voi_seq[0] if voi_seq else Dataset()
    center = width = None  # None: the image's own VOI (the GSPS has none, or a VOI LUT)
    if "WindowCenter" in voi and "WindowWidth" in voi:
        center, width = _first_float(voi.WindowCenter), _first_float(voi.WindowWidth)
    function = str(voi.get("VOILUTFunction", "LINEAR") or "LINEAR")
    explanation = voi.get("WindowCenterWidthExplanation", "")
    if isinstance(explanation, MultiValue):
        explanation = str(explanation[0]) if len(explanation) else ""
    lines = []
    for annotation in ds.get("GraphicAnnotationSequence", []):
        texts = [
            (np.array(t.AnchorPoint, dtype=float), str(t.get("UnformattedTextValue", "")))
            for t in annotation.get("TextObjectSequence", [])
            if "AnchorPoint" in t
        ]
        for g in annotation.get("GraphicObjectSequence", []):
            if g.get("GraphicType") != "POLYLINE" or int(g.get("NumberOfGraphicPoints", 0)) != 2:
                continue
            if g.get("GraphicAnnotationUnits") != "PIXEL":
                continue
            (c0, r0, c1, r1) = (float(v) for v in g.GraphicData)
            mid = np.array([(c0 + c1) / 2, (r0 + r1) / 2])
            length_mm = None
            if texts:
                anchor, text = min(texts, key=lambda t: float(np.hypot(*(t[0] - mid))))
                match = _MM.search(text)
                if match and float(np.hypot(*(anchor - mid))) < 1.0:
                    length_mm = float(match.group(1))
            lines.append(DistanceLine(r0, c0, r1, c1, length_mm))
    k, flip_h, flip_v = viewer_transform(
        int(ds.get("ImageRotation", 0) or 0), str(ds.get("ImageHorizontalFlip", "N")) == "Y"
    )
    return ViewState(
        window_center=center,
        window_width=width,
        voi_function=function if function in ("LINEAR", "LINEAR_EXACT", "SIGMOID") else "LINEAR",
        invert=str(ds.get("PresentationLUTShape", "IDENTITY")) == "INVERSE",
        rotation_k=k,
        flip_h=flip_h,
        flip_v=flip_v,
        measurements=tuple(lines),
        explanation=explanation,
    )


# ---- entry points -------------------------------------------------------------------------

ResultObject = StoredReport | StoredHeatmaps | StoredView | ForeignObject


def read_result_file(path: str | Path) -> ResultObject | None:
    """Read one file; None when it is not an SR / PR / Parametric Map (e.g. an image).

    Raises
    ------
    OSError, ValueError
        Unreadable or not DICOM (the caller lists it with the reason).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except InvalidDicomError as exc:
            raise ValueError(f"not DICOM ({exc})") from exc
        sop_class = str(ds.get("SOPClassUID", "") or "")
        if not is_result_sop_class(sop_class):
            return None
        sop_uid = str(ds.get("SOPInstanceUID", "") or "")
        refs = _referenced_sop_uids(ds)
        if sop_class.startswith(SR_PREFIX):
            report = parse_ai_report(ds)
            if report is not None:
                return StoredReport(
                    path=path,
                    sop_uid=sop_uid,
                    study_uid=str(ds.get("StudyInstanceUID", "") or ""),
                    source_sop_uids=refs,
                    report=report,
                )
            title_seq = ds.get("ConceptNameCodeSequence") or []
            title = str(title_seq[0].get("CodeMeaning", "")) if title_seq else ""
        elif sop_class == PARAMETRIC_MAP:
            maps = parse_heatmaps(ds, path)
            if maps is not None:
                return maps
            title = str(ds.get("ContentLabel", "") or "")
        else:
            if sop_class == GSPS and str(ds.get("ContentLabel", "")) == OUR_PR_LABEL:
                view = parse_view(ds)
                if view is not None:
                    return StoredView(path=path, sop_uid=sop_uid, source_sop_uids=refs, view=view)
            title = str(ds.get("ContentLabel", "") or ds.get("ContentDescription", "") or "")
        return ForeignObject(
            path=path,
            sop_class=_sop_class_name(sop_class),
            title=title or str(ds.get("SeriesDescription", "") or ""),
            sop_uid=sop_uid,
            source_sop_uids=refs,
        )


def find_stored_results(paths: Iterable[str | Path]) -> StoredResults:
    """Read every SR / PR / Parametric Map among ``paths`` (files; folders are walked).

    Never raises for a bad file: it goes to ``errors`` with the reason.
    """
    results = StoredResults()
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            files.append(p)
    for f in files:
        try:
            obj = read_result_file(f)
        except Exception as exc:  # noqa: BLE001 - any damaged file (pydicom raises e.g.
            # NotImplementedError for an unknown VR) is that file's problem, not the scan's
            results.errors.append((f, f"unreadable result object: {exc}"))
            continue
        if isinstance(obj, StoredReport):
            results.reports.append(obj)
        elif isinstance(obj, StoredHeatmaps):
            results.heatmaps.append(obj)
        elif isinstance(obj, StoredView):
            results.views.append(obj)
        elif isinstance(obj, ForeignObject):
            results.foreign.append(obj)
    return results


# ---- SR content tree (for the tag browser) ------------------------------------------------


@dataclass(frozen=True)
class ContentNode:
    """One SR content item: relationship, value type, concept name, value (as text)."""

    name: str
    value_type: str = ""
    relation: str = ""
    value: str = ""
    children: tuple[ContentNode, ...] = ()

    @property
    def text(self) -> str:
        """``"<relationship> <VALUE TYPE> <name> = <value>"``."""
        text = " ".join(p for p in (self.relation, self.value_type, self.name) if p)
        return f"{text} = {self.value}" if self.value else text


def _item_value(item: Any) -> str:
    vt = str(item.get("ValueType", ""))
    if vt == "NUM":
        seq = item.get("MeasuredValueSequence") or []
        if not seq:
            return "(no value)"
        units = seq[0].get("MeasurementUnitsCodeSequence") or []
        unit = str(units[0].get("CodeValue", "")) if units else ""
        return f"{seq[0].get('NumericValue', '')} {unit}".strip()
    if vt == "CODE":
        seq = item.get("ConceptCodeSequence") or []
        if not seq:
            return "(no code)"
        value, scheme = _code(item, "ConceptCodeSequence")
        return f'({value}, {scheme}, "{seq[0].get("CodeMeaning", "")}")'
    if vt in ("TEXT", "UIDREF", "PNAME", "DATE", "TIME", "DATETIME"):
        keyword = {
            "TEXT": "TextValue",
            "UIDREF": "UID",
            "PNAME": "PersonName",
            "DATE": "Date",
            "TIME": "Time",
            "DATETIME": "DateTime",
        }[vt]
        return str(item.get(keyword, ""))[:200]
    if vt in ("IMAGE", "COMPOSITE", "WAVEFORM"):
        seq = item.get("ReferencedSOPSequence") or []
        return f"SOP {seq[0].get('ReferencedSOPInstanceUID', '?')}" if seq else "(no reference)"
    if vt == "CONTAINER":
        return ""
    return "(value not shown)"


def sr_content_tree(ds: Any, max_items: int = 5000) -> ContentNode | None:
    """The content tree of an SR dataset as text nodes, or None when ``ds`` is not an SR.

    Tolerant of any SR (ours or not): a malformed item becomes a node saying so.
    """
    if not str(ds.get("SOPClassUID", "")).startswith(SR_PREFIX) or "ValueType" not in ds:
        return None
    count = 0

    def node(item: Any, depth: int) -> ContentNode:
        nonlocal count
        count += 1
        try:
            names = item.get("ConceptNameCodeSequence") or []
            name = str(names[0].get("CodeMeaning", "")) if names else ""
            relation = str(item.get("RelationshipType", "") or "").lower()
            value = _item_value(item)
            value_type = str(item.get("ValueType", "") or "")
        except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
            return ContentNode(f"(unreadable content item: {exc})")
        children: list[ContentNode] = []
        if depth < 20:
            for sub in item.get("ContentSequence", []) or []:
                if count >= max_items:
                    children.append(ContentNode("(more items not shown)"))
                    break
                children.append(node(sub, depth + 1))
        return ContentNode(name, value_type, relation, value, tuple(children))

    return node(ds, 0)
