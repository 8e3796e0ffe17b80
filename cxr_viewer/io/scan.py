"""Group a folder's files into studies -> series -> instances, reading headers only.

DICOM files are grouped by Study / Series Instance UID and ordered by Instance Number (then
path); PNG/JPEG/TIFF files each become their own one-image "study". Everything else is listed in
``ScanResult.skipped`` with the reason, never silently dropped.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from cxr_viewer.errors import ImageRefused

#: Names never worth opening (DICOMDIR is an index, not an image).
_IGNORED_NAMES = {"DICOMDIR", ".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class Instance:
    """One image file."""

    path: Path
    sop_uid: str = ""
    instance_number: int | None = None
    modality: str = ""
    view_position: str = ""
    rows: int = 0
    columns: int = 0
    frames: int = 1
    source_format: str = "DICOM"


@dataclass
class Series:
    """Instances sharing a Series Instance UID, in instance-number order."""

    uid: str
    number: int | None = None
    description: str = ""
    modality: str = ""
    instances: list[Instance] = field(default_factory=list)


@dataclass
class Study:
    """Series sharing a Study Instance UID, plus the patient/study tags shown in the browser."""

    uid: str
    patient_name: str = ""
    patient_id: str = ""
    date: str = ""
    description: str = ""
    accession_number: str = ""
    series: list[Series] = field(default_factory=list)

    @property
    def instances(self) -> list[Instance]:
        """All instances, series by series."""
        return [i for s in self.series for i in s.instances]


@dataclass
class ScanResult:
    """What :func:`scan_folder` found."""

    studies: list[Study]
    skipped: list[tuple[Path, str]]

    @property
    def instances(self) -> list[Instance]:
        return [i for s in self.studies for i in s.instances]


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def scan_folder(path: str | Path, recursive: bool = True) -> ScanResult:
    """Scan a folder (or one file) and group what can be shown.

    Parameters
    ----------
    path
        Folder (scanned recursively by default) or a single file.
    recursive
        Descend into sub-folders.

    Returns
    -------
    ScanResult
        ``studies`` (sorted by date, then UID) and ``skipped`` as ``(path, reason)``.
    """
    from cxr_viewer.io.dicom import read_dataset
    from cxr_viewer.io.raster import sniff_raster

    root = Path(path)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        it = root.rglob("*") if recursive else root.glob("*")
        files = sorted(p for p in it if p.is_file())
    else:
        return ScanResult([], [(root, "does not exist")])

    studies: dict[str, Study] = {}
    series: dict[tuple[str, str], Series] = {}
    skipped: list[tuple[Path, str]] = []
    # Header values convert lazily and pydicom warns on odd ones; a scan shows no warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in files:
            if f.name in _IGNORED_NAMES or f.name.startswith("."):
                skipped.append((f, "ignored (index or hidden file)"))
                continue
            try:
                with open(f, "rb") as fh:
                    head = fh.read(132)
            except OSError as exc:
                skipped.append((f, f"unreadable ({exc.strerror or exc})"))
                continue
            fmt = sniff_raster(head)
            if fmt is not None and head[128:132] != b"DICM":
                uid = f"file:{f.resolve()}"
                inst = Instance(path=f, source_format=fmt)
                st = Study(uid=uid, description=f.name)
                st.series.append(Series(uid=uid, description=fmt, instances=[inst]))
                studies[uid] = st
                continue
            try:
                ds, _ = read_dataset(f, stop_before_pixels=True)
            except ImageRefused as exc:
                skipped.append((f, exc.cause))
                continue
            if str(ds.get("ContentLabel", "")) == "AI_HEATMAPS":  # our Parametric Map
                skipped.append((f, "stored result (AI heat maps, Parametric Map)"))
                continue
            if "PixelData" not in ds and "Rows" not in ds:
                sop = ds.get("SOPClassUID")
                skipped.append((f, f"no image ({getattr(sop, 'name', sop) or 'no SOP class'})"))
                continue
            study_uid = str(ds.get("StudyInstanceUID", "") or f"nostudy:{f.parent}")
            series_uid = str(ds.get("SeriesInstanceUID", "") or f"noseries:{study_uid}")
            st = studies.get(study_uid)
            if st is None:
                st = Study(
                    uid=study_uid,
                    patient_name=str(ds.get("PatientName", "") or ""),
                    patient_id=str(ds.get("PatientID", "") or ""),
                    date=str(ds.get("StudyDate", "") or ""),
                    description=str(ds.get("StudyDescription", "") or ""),
                    accession_number=str(ds.get("AccessionNumber", "") or ""),
                )
                studies[study_uid] = st
            se = series.get((study_uid, series_uid))
            if se is None:
                se = Series(
                    uid=series_uid,
                    number=_int_or_none(ds.get("SeriesNumber")),
                    description=str(ds.get("SeriesDescription", "") or ""),
                    modality=str(ds.get("Modality", "") or ""),
                )
                series[(study_uid, series_uid)] = se
                st.series.append(se)
            se.instances.append(
                Instance(
                    path=f,
                    sop_uid=str(ds.get("SOPInstanceUID", "") or ""),
                    instance_number=_int_or_none(ds.get("InstanceNumber")),
                    modality=str(ds.get("Modality", "") or ""),
                    view_position=str(ds.get("ViewPosition", "") or ""),
                    rows=_int_or_none(ds.get("Rows")) or 0,
                    columns=_int_or_none(ds.get("Columns")) or 0,
                    frames=_int_or_none(ds.get("NumberOfFrames")) or 1,
                )
            )

    big = 1 << 30
    for st in studies.values():
        for se in st.series:
            se.instances.sort(
                key=lambda i: (
                    i.instance_number if i.instance_number is not None else big,
                    str(i.path),
                )
            )
        st.series.sort(key=lambda s: (s.number if s.number is not None else big, s.uid))
    ordered = sorted(studies.values(), key=lambda s: (s.date, s.uid))
    return ScanResult(ordered, skipped)
