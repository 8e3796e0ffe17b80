"""Data-set readers: VinDr-CXR aggregation against the real label file, the NIH layouts, and the
cache/box targets built from generated images."""

from __future__ import annotations

import csv
import gzip
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxr_viewer.inference.findings import NO_FINDING, VINDR_FINDINGS
from cxr_viewer.training.datasets import (
    DatasetError,
    aggregate_vindr,
    parse_nih_finding_labels,
    read_nih_data_entry,
    read_nih_shared,
    read_vindr,
)
from cxr_viewer.training.labels import MODEL_LABEL_NAMES, NIH_LABELS
from cxr_viewer.training.preprocess import box_targets, build_cache, image_shape

# Row counts per class_name documented in ../shared/data/vinbigdata/README.md
README_ROWS = {
    "No finding": 31818, "Aortic enlargement": 7162, "Cardiomegaly": 5427,
    "Pleural thickening": 4842, "Pulmonary fibrosis": 4655, "Nodule/Mass": 2580,
    "Lung Opacity": 2483, "Pleural effusion": 2476, "Other lesion": 2203, "Infiltration": 1247,
    "ILD": 1000, "Calcification": 960, "Consolidation": 556, "Atelectasis": 279,
    "Pneumothorax": 226,
}


def _raw_rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def vindr_rows(vinbig_csv: Path) -> list[dict[str, str]]:
    return _raw_rows(vinbig_csv)


def test_vindr_any_and_majority_match_counts_from_the_csv(vinbig_csv: Path, vindr_rows) -> None:
    assert len(vindr_rows) == 67914
    assert Counter(r["class_name"] for r in vindr_rows) == README_ROWS
    # independent computation: distinct readers per (image, finding) and per image
    marks: dict[tuple[str, str], set[str]] = defaultdict(set)
    readers: dict[str, set[str]] = defaultdict(set)
    for r in vindr_rows:
        readers[r["image_id"]].add(r["rad_id"])
        if r["class_name"] != NO_FINDING:
            marks[(r["image_id"], r["class_name"])].add(r["rad_id"])
    any_counts = Counter(f for (_, f) in marks)
    majority_counts = Counter(f for (i, f), rads in marks.items() if 2 * len(rads) > len(readers[i]))

    agg_any = aggregate_vindr(vinbig_csv, "any")
    agg_maj = aggregate_vindr(vinbig_csv, "majority")
    assert len(agg_any) == len(agg_maj) == 15000
    for finding in VINDR_FINDINGS:
        assert sum(finding in a.positive for a in agg_any.values()) == any_counts[finding]
        assert sum(finding in a.positive for a in agg_maj.values()) == majority_counts[finding]
        assert majority_counts[finding] <= any_counts[finding]
        # every finding row has a box, and every box is kept
        assert sum(
            sum(b.finding == finding for b in a.boxes) for a in agg_any.values()
        ) == README_ROWS[finding]
    assert all(len(a.readers) == 3 for a in agg_any.values())  # three radiologists per image
    no_finding_images = sum(not a.positive for a in agg_any.values())
    assert no_finding_images == sum(
        all((i, f) not in marks for f in VINDR_FINDINGS) for i in readers
    )


def test_vindr_rule_is_checked(vinbig_csv: Path) -> None:
    with pytest.raises(ValueError, match="majority"):
        aggregate_vindr(vinbig_csv, "two")


@pytest.mark.slow
def test_vindr_reader_on_generated_images(vinbig_csv: Path, vindr_rows, tmp_path: Path) -> None:
    # a few hundred real image_ids, each with a generated PNG large enough for its boxes
    ids = sorted({r["image_id"] for r in vindr_rows})[:200]
    wanted = set(ids)
    rows = [r for r in vindr_rows if r["image_id"] in wanted]
    sub_csv = tmp_path / "train.csv.gz"
    with gzip.open(sub_csv, "wt", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    extent: dict[str, tuple[float, float]] = defaultdict(lambda: (64.0, 64.0))
    for r in rows:
        if r["x_max"]:
            ex, ey = extent[r["image_id"]]
            extent[r["image_id"]] = (max(ex, float(r["x_max"])), max(ey, float(r["y_max"])))
    images = tmp_path / "images"
    images.mkdir()
    skipped = set(ids[:5])  # these have no image file: skipped by the reader
    for i in ids:
        if i in skipped:
            continue
        ex, ey = extent[i]
        cv2.imwrite(str(images / f"{i}.png"), np.full((int(ey) + 8, int(ex) + 8), 90, np.uint8),
                    [cv2.IMWRITE_PNG_COMPRESSION, 1])
    records = read_vindr(sub_csv, images, rule="any")
    assert [r.image_id for r in records] == [i for i in ids if i not in skipped]
    agg = aggregate_vindr(sub_csv, "any")
    n_boxes = Counter(r["image_id"] for r in rows if r["class_name"] != NO_FINDING)
    for rec in records:
        assert rec.patient_id == rec.image_id
        positives = {MODEL_LABEL_NAMES[j] for j, v in enumerate(rec.targets) if v == 1.0}
        expected = {f for f in agg[rec.image_id].positive if f in MODEL_LABEL_NAMES}
        if not agg[rec.image_id].positive:  # the 16th output: no VinDr-CXR finding at all
            expected = {"No finding"}
        assert positives == expected
        assert len(rec.boxes) == n_boxes[rec.image_id]
        rows_, cols = image_shape(rec.image_path)
        assert all(0 <= b.x1 < b.x2 <= cols and 0 <= b.y1 < b.y2 <= rows_ for b in rec.boxes)
    assert len(read_vindr(sub_csv, images, require_images=False)) == len(ids)
    # the cache letterboxes the generated images; box targets land inside the image content
    few = [r for r in records if r.boxes][:6]
    cache = build_cache(few, 64, tmp_path / "cache")
    assert cache.shape == (6, 64, 64) and cache.dtype == np.uint8 and cache.max() == 90
    masks, weights = box_targets(few, 64, grid=32, sources=None)
    has_box = {
        (k, MODEL_LABEL_NAMES.index(f))
        for k, r in enumerate(few)
        for f in agg[r.image_id].positive
        if f in MODEL_LABEL_NAMES
    }
    for k, j in has_box:
        assert weights[k, j] == 1.0 and masks[k, :, :, j].any()


def test_vindr_unknown_class_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "train.csv"
    p.write_text("image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max\n"
                 "a,Fracture,15,R1,1,1,2,2\n")
    with pytest.raises(DatasetError, match="Fracture"):
        aggregate_vindr(p)


def test_nih_shared_layout_real(nih_dir: Path) -> None:
    records = read_nih_shared(nih_dir)
    assert len(records) == 1091
    assert len({r.patient_id for r in records}) == 959
    assert sum(r.subset == "nih_random621" for r in records) == 452
    with open(nih_dir / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    t = np.array([r.targets for r in records])
    # README counts
    readme = {"Atelectasis": 289, "Cardiomegaly": 176, "Consolidation": 109,
              "Pleural effusion": 285, "Infiltration": 324, "Pneumothorax": 141,
              "Pleural thickening": 84, "Pulmonary fibrosis": 59, "Mass": 156, "Nodule": 196,
              "Edema": 41, "Emphysema": 57, "Hernia": 16, "Pneumonia": 112, "No finding": 76}
    for name, n in readme.items():
        assert int((t[:, MODEL_LABEL_NAMES.index(name)] == 1).sum()) == n, name
    merged = sum(r["Mass"] == "1" or r["Nodule"] == "1" for r in rows)
    assert int((t[:, MODEL_LABEL_NAMES.index("Nodule/Mass")] == 1).sum()) == merged
    assert (t >= 0).all()  # NIH annotates every label
    with open(nih_dir / "boxes.csv", newline="") as fh:
        n_boxes = sum(1 for _ in csv.DictReader(fh))
    assert sum(len(r.boxes) for r in records) == n_boxes
    assert not any(b.finding == "Infiltrate" for r in records for b in r.boxes)
    assert all(r.image_path.is_file() for r in records[:20])


def _write_shared_layout(root: Path) -> None:
    (root / "images").mkdir(parents=True)
    header = ["file", "patient_id", "view", *NIH_LABELS, "No_Finding"]
    rows = [
        ["images/a.png", "7", "PA", *["1" if lab == "Effusion" else "0" for lab in NIH_LABELS], "0"],
        ["images/b.png", "7", "AP", *["1" if lab == "Mass" else "0" for lab in NIH_LABELS], "0"],
        ["images/c.png", "9", "PA", *["0" for _ in NIH_LABELS], "1"],
    ]
    with open(root / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    with open(root / "boxes.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "box_source", "finding", "x1_stored", "y1_stored", "x2_stored",
                    "y2_stored"])
        w.writerow(["images/a.png", "NIH_BBox_List_2017", "Effusion", 10, 40, 30, 60])
        w.writerow(["images/b.png", "NIH_BBox_List_2017", "Infiltrate", 1, 2, 3, 4])
    for name in "abc":
        cv2.imwrite(str(root / "images" / f"{name}.png"), np.zeros((64, 64), np.uint8))


def test_nih_shared_layout_generated(tmp_path: Path) -> None:
    _write_shared_layout(tmp_path)
    recs = read_nih_shared(tmp_path)
    assert [r.patient_id for r in recs] == ["7", "7", "9"]
    a, b, c = recs
    assert a.targets[MODEL_LABEL_NAMES.index("Pleural effusion")] == 1.0
    assert b.targets[MODEL_LABEL_NAMES.index("Nodule/Mass")] == 1.0
    assert sum(c.targets) == 1.0 and c.targets[-1] == 1.0  # only "No finding"
    assert [(x.finding, x.x1, x.y2) for x in a.boxes] == [("Effusion", 10.0, 60.0)]
    assert b.boxes[0].finding == "Infiltration"


def test_nih_shared_layout_missing_column(tmp_path: Path) -> None:
    _write_shared_layout(tmp_path)
    text = (tmp_path / "labels.csv").read_text().replace("Cardiomegaly", "Cardio")
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(DatasetError, match="Cardiomegaly"):
        read_nih_shared(tmp_path)


def test_nih_data_entry_and_bbox_list(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("00000001_000.png", "00000002_000.png"):
        cv2.imwrite(str(images / name), np.zeros((512, 512), np.uint8))
    (tmp_path / "Data_Entry_2017.csv").write_text(
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
        "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"
        "00000001_000.png,Cardiomegaly|Effusion,0,1,58,M,PA,2682,2749,0.143,0.143\n"
        "00000002_000.png,No Finding,0,2,81,M,PA,2500,2048,0.171,0.171\n"
        "00000003_000.png,Hernia,0,3,81,M,PA,2500,2048,0.171,0.171\n"
    )
    (tmp_path / "BBox_List_2017.csv").write_text(
        "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
        "00000001_000.png,Cardiomegaly,200,400,500,300,,,\n"
    )
    recs = read_nih_data_entry(tmp_path / "Data_Entry_2017.csv", images,
                               tmp_path / "BBox_List_2017.csv", image_size=(512, 512))
    assert [r.image_id for r in recs] == ["00000001_000", "00000002_000"]  # 3 has no image
    assert recs[0].patient_id == "1" and recs[0].view == "PA"
    pos = {MODEL_LABEL_NAMES[j] for j, v in enumerate(recs[0].targets) if v == 1}
    assert pos == {"Cardiomegaly", "Pleural effusion"}
    assert sum(recs[1].targets) == 1 and recs[1].targets[-1] == 1  # only "No finding"
    (box,) = recs[0].boxes
    assert (box.x1, box.y1, box.x2, box.y2) == (100.0, 200.0, 350.0, 350.0)  # 1024 -> 512 px


def test_parse_nih_finding_labels() -> None:
    d = parse_nih_finding_labels("Atelectasis|Pleural_Thickening")
    assert d["Atelectasis"] == d["Pleural_Thickening"] == 1.0 and sum(d.values()) == 2.0
    with pytest.raises(ValueError, match="Pneumonitis"):
        parse_nih_finding_labels("Pneumonitis")
