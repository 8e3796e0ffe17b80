"""Reading workflow core (issue 14): prior pairing, change since the prior, worklist order,
persisted read state, the bounded decode cache. Real images and real files, no mocks."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from cxr_viewer.inference.results import FindingScore, Prediction
from cxr_viewer.io.loader import load_image
from cxr_viewer.io.sample import PATIENT_ID, PRIOR_FILE
from cxr_viewer.io.scan import scan_folder
from cxr_viewer.worklist import (
    LRUImageCache,
    ReadState,
    StudyRef,
    WorklistItem,
    compare_predictions,
    find_prior,
    flag_count,
    image_nbytes,
    interval_text,
    next_unread,
    parse_da,
    sort_worklist,
    worklist_score,
)


def refs_from_scan(folder: Path) -> list[StudyRef]:
    out = []
    for st in scan_folder(folder).studies:
        out.append(StudyRef(st.uid, st.patient_id, parse_da(st.date),
                            tuple(str(i.path) for i in st.instances)))
    return out


def _labels(nih_dir: Path) -> list[dict]:
    with open(nih_dir / "labels.csv", newline="") as fh:
        return list(csv.DictReader(fh))



def test_sample_current_study_is_paired_with_its_prior(sample):
    refs = refs_from_scan(sample)
    assert len(refs) == 2 and {r.patient_id for r in refs} == {PATIENT_ID}
    current = max(refs, key=lambda r: r.date)
    prior = find_prior(current, refs)
    assert prior is not None and prior.paths == (str(sample / PRIOR_FILE),)
    assert interval_text(prior.date, current.date) == "Prior 2023-10-02, 3 months earlier"
    # the prior itself has no earlier study
    assert find_prior(prior, refs) is None


def test_most_recent_prior_wins_and_other_patients_never_pair():
    cur = StudyRef("c", "P1", dt.date(2025, 11, 12))
    refs = [cur, StudyRef("a", "P1", dt.date(2024, 1, 1)), StudyRef("b", "P1", dt.date(2025, 8, 1)),
            StudyRef("later", "P1", dt.date(2026, 1, 1)), StudyRef("x", "P2", dt.date(2025, 10, 1))]
    assert find_prior(cur, refs).key == "b"
    assert find_prior(StudyRef("c", "", dt.date(2025, 11, 12)), refs) is None  # no patient id


def test_undated_png_inputs_are_never_paired(tmp_path, nih_dir):
    """NIH PNGs carry no patient id nor date in the file: the scan makes each its own study,
    and the pairing never matches them, even for a follow-up of the same patient."""
    rows = _labels(nih_dir)
    by_patient: dict[str, list[dict]] = {}
    for r in rows:
        by_patient.setdefault(r["patient_id"], []).append(r)
    pid, pair = next((p, rs) for p, rs in by_patient.items() if len(rs) >= 2)
    files = [nih_dir / r["file"] for r in pair[:2]]
    if not all(f.is_file() for f in files):
        pytest.skip(f"NIH images of patient {pid} are absent")
    refs = []
    for f in files:
        refs += refs_from_scan(f)
    assert len(refs) == 2 and all(r.date is None and r.patient_id == "" for r in refs)
    assert all(find_prior(r, refs) is None for r in refs)
    # even told the patient id (labels.csv), without dates they are never paired
    named = [StudyRef(r.key, pid, None, r.paths) for r in refs]
    assert all(find_prior(r, named) is None for r in named)


def test_nih_follow_up_pair_pairs_through_the_core_api_with_dates_supplied(nih_dir):
    """The real pair: NIH follow-up numbers order one patient's images; with dates supplied
    (the data set has none: one month per follow-up step here) the later is paired with the
    earlier one and both decode as comparable chest images."""
    rows = _labels(nih_dir)
    by_patient: dict[str, list[dict]] = {}
    for r in rows:
        by_patient.setdefault(r["patient_id"], []).append(r)
    pid, pair = next((p, rs) for p, rs in by_patient.items() if len(rs) >= 2)
    pair = sorted(pair, key=lambda r: int(r["follow_up"]))[:2]
    base = dt.date(2020, 1, 1)
    refs = [StudyRef(r["file"], pid, base + dt.timedelta(days=31 * int(r["follow_up"])),
                     (str(nih_dir / r["file"]),)) for r in pair]
    prior = find_prior(refs[1], refs)
    assert prior is not None and prior.key == pair[0]["file"]
    if not all(Path(p).is_file() for r in refs for p in r.paths):
        pytest.skip("NIH images absent")
    a, b = (load_image(r.paths[0]) for r in refs)
    assert a.shape == b.shape


def _prediction(probs: dict[str, float], thr: float = 0.5, abnormal=None) -> Prediction:
    scores = tuple(FindingScore(f, p, thr, p >= thr) for f, p in probs.items())
    pred = Prediction("id", "m", "1", "", scores)
    if abnormal is not None:
        object.__setattr__(pred, "abnormal", abnormal)
    return pred


def test_change_column_new_resolved_up_down_same():
    cur = _prediction({"Pleural effusion": 0.8, "Cardiomegaly": 0.2, "Nodule/Mass": 0.4,
                       "Aortic enlargement": 0.1, "Atelectasis": 0.3})
    pri = _prediction({"Pleural effusion": 0.1, "Cardiomegaly": 0.7, "Nodule/Mass": 0.2,
                       "Aortic enlargement": 0.3, "Atelectasis": 0.31})
    rows = {r.finding: r.change for r in compare_predictions(cur, pri)}
    assert rows == {"Pleural effusion": "new flag", "Cardiomegaly": "resolved",
                    "Nodule/Mass": "up", "Aortic enlargement": "down", "Atelectasis": "same"}
    assert compare_predictions(cur, pri)[0].finding == "Pleural effusion"


def test_worklist_score_prefers_abnormal_then_max_probability():
    plain = _prediction({"A": 0.3, "B": 0.6})
    assert worklist_score(plain) == pytest.approx(0.6) and flag_count(plain) == 1
    assert worklist_score(_prediction({"A": 0.3}, abnormal=0.9)) == pytest.approx(0.9)


def test_sort_and_next_unread_most_abnormal_first():
    items = [WorklistItem("a", score=0.2, order=0), WorklistItem("b", score=None, order=1),
             WorklistItem("c", score=0.9, order=2, read=True), WorklistItem("d", score=0.5, order=3)]
    assert [i.key for i in sort_worklist(items)] == ["c", "d", "a", "b"]
    assert next_unread(items).key == "d"
    assert next_unread(items, current="d").key == "a"
    for i in items:
        i.read = True
    assert next_unread(items) is None


def test_read_state_persists_atomically(tmp_path):
    path = tmp_path / "state" / "read-state.json"
    state = ReadState(path)
    state.set_read("1.2.3")
    state.set_read("file:/x.png")
    state.set_read("file:/x.png", False)
    again = ReadState(path)
    assert again.is_read("1.2.3") and not again.is_read("file:/x.png")
    assert set(json.loads(path.read_text())["read"]) == {"1.2.3"}
    assert [p.name for p in path.parent.iterdir()] == ["read-state.json"]  # no temp leftovers
    path.write_text("{not json")
    broken = ReadState(path)
    assert broken.keys() == set() and "read state ignored" in broken.error


def test_lru_cache_is_bounded_by_memory(sample):
    paths = [str(p) for p in sorted(sample.rglob("*.dcm"))]
    sizes = [image_nbytes(load_image(p)) for p in paths]
    cache = LRUImageCache(max_bytes=max(sizes) + min(sizes) - 1)
    for p in paths:
        cache.load(p)
    assert cache.nbytes <= cache.max_bytes and len(cache.keys()) < len(paths)
    assert cache.keys()[-1] == paths[-1]  # the most recent stays
    assert cache.load(paths[-1]) is cache.get(paths[-1]) and cache.hits == 1
    cache.set_limit(0)
    assert cache.keys() == [] and cache.nbytes == 0
