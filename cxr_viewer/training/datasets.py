"""Data-set readers: the shared NIH layout, NIH ChestX-ray14 (Data_Entry_2017.csv + BBox list)
and VinDr-CXR / VinBigData (train.csv[.gz] + a folder of DICOMs or PNGs).

Every reader returns ``Record`` objects: one image, its patient, its targets in the model's label
space (``labels.MODEL_LABELS``, -1 = not annotated) and its boxes (in stored-image pixels).
No pandas: the standard ``csv`` module is enough and keeps the installed app small.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cxr_viewer.errors import CxrError
from cxr_viewer.inference.findings import NO_FINDING, VINDR_FINDINGS
from cxr_viewer.training.labels import (
    NIH_BOX_ALIASES,
    NIH_LABELS,
    nih_to_model_targets,
    vindr_to_model_targets,
)


class DatasetError(CxrError):
    """A data set whose files are missing or malformed; the message names the file."""

    def __init__(self, path: str | Path, cause: str) -> None:
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")


@dataclass(frozen=True)
class Box:
    """One box in the pixel space of the image file: (x1, y1) top-left, (x2, y2) bottom-right."""

    finding: str
    x1: float
    y1: float
    x2: float
    y2: float
    source: str = ""


@dataclass(frozen=True)
class Record:
    """One training/evaluation image."""

    image_path: Path
    image_id: str
    patient_id: str
    targets: tuple[float, ...]  # one per labels.MODEL_LABELS; 1, 0 or -1 (not annotated)
    boxes: tuple[Box, ...] = field(default=())
    view: str = ""
    subset: str = ""  # nih-shared: the labels.csv ``subset`` (nih_bbox880, nih_random621, ...)


def _open_text(path: Path) -> io.TextIOBase:
    if not path.is_file():
        raise DatasetError(path, "file not found")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")  # noqa: SIM115


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[dict[str, str]]:
    with _open_text(path) as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(path, f"missing column(s) {', '.join(missing)}")
        yield from reader


# ------------------------------------------------------------------------------------------------
# NIH, shared layout (labels.csv with one 0/1 column per label, boxes.csv with stored corners)
# ------------------------------------------------------------------------------------------------
def read_nih_shared(root: str | Path) -> list[Record]:
    """Read the ``../shared/data/nih-cxr`` layout.

    Parameters
    ----------
    root
        Folder holding ``labels.csv``, ``boxes.csv`` and ``images/``.

    Returns
    -------
    list of Record
        In ``labels.csv`` order; boxes in the stored (512 px) image's pixels.
    """
    root = Path(root)
    boxes: dict[str, list[Box]] = defaultdict(list)
    box_path = root / "boxes.csv"
    if box_path.is_file():
        for row in _rows(box_path, ("file", "finding", "x1_stored", "y1_stored", "x2_stored", "y2_stored")):
            boxes[row["file"]].append(
                Box(
                    finding=NIH_BOX_ALIASES.get(row["finding"], row["finding"]),
                    x1=float(row["x1_stored"]),
                    y1=float(row["y1_stored"]),
                    x2=float(row["x2_stored"]),
                    y2=float(row["y2_stored"]),
                    source=row.get("box_source", ""),
                )
            )
    records = []
    for row in _rows(root / "labels.csv", ("file", "patient_id", *NIH_LABELS)):
        nih = {lab: float(row[lab]) for lab in NIH_LABELS}
        image = root / row["file"]
        records.append(
            Record(
                image_path=image,
                image_id=Path(row["file"]).stem,
                patient_id=str(row["patient_id"]),
                targets=tuple(nih_to_model_targets(nih)),
                boxes=tuple(boxes.get(row["file"], ())),
                view=row.get("view", ""),
                subset=row.get("subset", ""),
            )
        )
    if not records:
        raise DatasetError(root / "labels.csv", "no images listed")
    return records


# ------------------------------------------------------------------------------------------------
# NIH ChestX-ray14 original layout: Data_Entry_2017.csv + BBox_List_2017.csv + images/
# ------------------------------------------------------------------------------------------------
def parse_nih_finding_labels(text: str) -> dict[str, float]:
    """``"Atelectasis|Effusion"`` -> {label: 0/1} over ``NIH_LABELS`` ("No Finding" -> all 0)."""
    names = {t.strip() for t in text.split("|") if t.strip()}
    unknown = names - set(NIH_LABELS) - {"No Finding"}
    if unknown:
        raise ValueError(f"unknown NIH finding label(s) {sorted(unknown)}")
    return {lab: 1.0 if lab in names else 0.0 for lab in NIH_LABELS}


def read_nih_data_entry(
    csv_path: str | Path,
    image_dir: str | Path,
    bbox_csv: str | Path | None = None,
    image_size: tuple[int, int] | None = None,
) -> list[Record]:
    """Read NIH's ``Data_Entry_2017.csv`` (and optionally ``BBox_List_2017.csv``).

    Parameters
    ----------
    csv_path
        ``Data_Entry_2017[_v2020].csv``: columns ``Image Index``, ``Finding Labels``,
        ``Patient ID``, ``View Position``, ``OriginalImage[Width`` ...
    image_dir
        Folder holding the PNGs named by ``Image Index`` (images missing there are skipped).
    bbox_csv
        ``BBox_List_2017.csv``: ``Image Index, Finding Label, Bbox [x, y, w, h]`` (the x,y,w,h
        values sit in the four columns starting at ``Bbox [x``), in the 1024 px NIH space.
    image_size
        (width, height) of the PNGs in ``image_dir`` when they were resized from the 1024 px
        originals; boxes are scaled to it. None: the files are the 1024 px originals.
    """
    csv_path, image_dir = Path(csv_path), Path(image_dir)
    scale_x = scale_y = 1.0
    if image_size is not None:
        scale_x, scale_y = image_size[0] / 1024.0, image_size[1] / 1024.0
    boxes: dict[str, list[Box]] = defaultdict(list)
    if bbox_csv is not None:
        with _open_text(Path(bbox_csv)) as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or "Image Index" not in header:
                raise DatasetError(bbox_csv, "not a BBox_List_2017.csv (no 'Image Index' column)")
            i_img, i_lab = header.index("Image Index"), header.index("Finding Label")
            i_x = next(i for i, h in enumerate(header) if h.startswith("Bbox"))
            for row in reader:
                if len(row) < i_x + 4:
                    continue
                x, y, w, h = (float(v) for v in row[i_x : i_x + 4])
                boxes[row[i_img]].append(
                    Box(
                        finding=NIH_BOX_ALIASES.get(row[i_lab], row[i_lab]),
                        x1=x * scale_x,
                        y1=y * scale_y,
                        x2=(x + w) * scale_x,
                        y2=(y + h) * scale_y,
                        source="NIH_BBox_List_2017",
                    )
                )
    records = []
    for row in _rows(csv_path, ("Image Index", "Finding Labels", "Patient ID")):
        image = image_dir / row["Image Index"]
        if not image.is_file():
            continue
        try:
            nih = parse_nih_finding_labels(row["Finding Labels"])
        except ValueError as exc:
            raise DatasetError(csv_path, f"{row['Image Index']}: {exc}") from exc
        records.append(
            Record(
                image_path=image,
                image_id=image.stem,
                patient_id=str(int(row["Patient ID"])),
                targets=tuple(nih_to_model_targets(nih)),
                boxes=tuple(boxes.get(row["Image Index"], ())),
                view=row.get("View Position", ""),
            )
        )
    if not records:
        raise DatasetError(image_dir, f"none of the images listed in {csv_path.name} is here")
    return records


# ------------------------------------------------------------------------------------------------
# VinDr-CXR / VinBigData: train.csv[.gz] (one row per image x radiologist x finding) + images
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VinDrImageLabels:
    """Aggregated labels of one VinDr-CXR image."""

    image_id: str
    readers: tuple[str, ...]  # rad_ids that read the image
    votes: dict[str, int]  # finding -> number of readers that marked it
    positive: frozenset[str]  # findings positive under the chosen aggregation
    boxes: tuple[Box, ...]  # every reader's boxes (original DICOM pixels)


def aggregate_vindr(
    csv_path: str | Path, rule: str = "any"
) -> dict[str, VinDrImageLabels]:
    """Aggregate VinBigData's per-reader rows into image-level labels.

    Parameters
    ----------
    csv_path
        ``train.csv`` or ``train.csv.gz`` with ``image_id,class_name,class_id,rad_id,x_min,
        y_min,x_max,y_max``.
    rule
        ``"any"``: a finding is positive when at least one reader marked it; ``"majority"``: when
        more than half of the image's readers did (2 of 3).

    Returns
    -------
    dict
        image_id -> ``VinDrImageLabels``; "No finding" is positive only when no finding is.
    """
    if rule not in ("any", "majority"):
        raise ValueError(f"unknown aggregation rule {rule!r} (any | majority)")
    readers: dict[str, set[str]] = defaultdict(set)
    marks: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    boxes: dict[str, list[Box]] = defaultdict(list)
    known = set(VINDR_FINDINGS) | {NO_FINDING}
    cols = ("image_id", "class_name", "rad_id", "x_min", "y_min", "x_max", "y_max")
    for n, row in enumerate(_rows(Path(csv_path), cols), start=2):
        image_id, finding, rad = row["image_id"], row["class_name"], row["rad_id"]
        if finding not in known:
            raise DatasetError(csv_path, f"line {n}: unknown class_name {finding!r}")
        readers[image_id].add(rad)
        if finding == NO_FINDING:
            continue
        marks[image_id][finding].add(rad)
        if row["x_min"] not in ("", "nan"):
            boxes[image_id].append(
                Box(
                    finding=finding,
                    x1=float(row["x_min"]),
                    y1=float(row["y_min"]),
                    x2=float(row["x_max"]),
                    y2=float(row["y_max"]),
                    source=rad,
                )
            )
    out: dict[str, VinDrImageLabels] = {}
    for image_id, rads in readers.items():
        votes = {f: len(r) for f, r in marks[image_id].items()}
        if rule == "any":
            positive = {f for f, v in votes.items() if v >= 1}
        else:
            positive = {f for f, v in votes.items() if v * 2 > len(rads)}
        out[image_id] = VinDrImageLabels(
            image_id=image_id,
            readers=tuple(sorted(rads)),
            votes=votes,
            positive=frozenset(positive),
            boxes=tuple(boxes[image_id]),
        )
    return out


def read_vindr(
    csv_path: str | Path,
    image_dir: str | Path,
    rule: str = "any",
    require_images: bool = True,
) -> list[Record]:
    """Read a VinDr-CXR / VinBigData training set.

    Parameters
    ----------
    csv_path
        ``train.csv[.gz]``.
    image_dir
        Folder of ``<image_id>.dicom`` / ``.dcm`` / ``.png`` files.
    rule
        Reader aggregation, see ``aggregate_vindr``.
    require_images
        Skip image_ids whose file is absent (True) or raise (False is for label-only use: the
        record then points at ``<image_id>.dicom``).

    Notes
    -----
    VinDr-CXR images were read by three radiologists each and carry no patient id; each image is
    treated as its own patient for splitting (the data set's own train/test split is by image).
    Boxes stay in original DICOM pixels; a resized cache must scale them.
    """
    image_dir = Path(image_dir)
    labels = aggregate_vindr(csv_path, rule=rule)
    records = []
    for image_id in sorted(labels):
        lab = labels[image_id]
        image = None
        for ext in (".dicom", ".dcm", ".png"):
            candidate = image_dir / f"{image_id}{ext}"
            if candidate.is_file():
                image = candidate
                break
        if image is None:
            if require_images:
                continue
            image = image_dir / f"{image_id}.dicom"
        records.append(
            Record(
                image_path=image,
                image_id=image_id,
                patient_id=image_id,
                targets=tuple(vindr_to_model_targets(set(lab.positive))),
                boxes=lab.boxes,
            )
        )
    if not records:
        raise DatasetError(image_dir, f"none of the images listed in {Path(csv_path).name} is here")
    return records
