"""Priors beyond the open folders, headless (``cxr_viewer.net.priors``): the local cache's
candidates and the PACS query + retrieve against a real Orthanc, with the generated sample's
current and prior studies."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from cxr_viewer.io.sample import PRIOR_FILE
from cxr_viewer.net import priors
from cxr_viewer.net.cache import StudyCache
from cxr_viewer.net.config import NetSettings, Node
from cxr_viewer.net.priors import (
    cached_studies,
    find_cached_prior,
    look_for_prior,
    study_paths,
)
from cxr_viewer.worklist import StudyRef, parse_da
from tests.orthanc_fixture import (
    ORTHANC_AE,
    TEST_AE,
    OrthancServer,
    cache_put,
    encode,
    free_port,
    make_instance,
    orthanc,  # noqa: F401 - pytest fixture
    study_variant,
)

CURRENT = "IM0001_CR.dcm"



def _ref(path: Path) -> StudyRef:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return StudyRef(str(ds.StudyInstanceUID), str(ds.PatientID), parse_da(str(ds.StudyDate)),
                    (str(path),))


def test_cache_candidates_follow_the_pairing_rules(sample: Path, tmp_path: Path) -> None:
    cache = StudyCache(tmp_path / "cache")
    prior_src = sample / PRIOR_FILE
    expected = cache_put(cache, pydicom.dcmread(prior_src))
    cache_put(cache, study_variant(prior_src, StudyDate="20230101"))  # older
    cache_put(cache, study_variant(prior_src, StudyDate="20240601"))  # after the current
    cache_put(cache, study_variant(prior_src, StudyDate="20231201", PatientID="OTHER"))
    cache_put(cache, study_variant(prior_src, StudyDate="20231215"), complete=False)  # unfinished
    current = _ref(sample / CURRENT)
    found = cached_studies(cache, current.patient_id)
    assert sorted(str(r.date) for r in found) == ["2023-01-01", "2023-10-02", "2024-06-01"]
    prior = find_cached_prior(cache, current)
    assert prior is not None and prior.paths == (str(expected),)
    assert prior.date == dt.date(2023, 10, 2)
    # no Patient ID or no date (a PNG, an undated file): never paired
    assert find_cached_prior(cache, StudyRef("x", "", current.date)) is None
    assert find_cached_prior(cache, StudyRef("x", current.patient_id, None)) is None
    # without nodes the lookup is the cache alone; a prior the caller already has that is newer
    # than the cached one wins
    events = []
    result = look_for_prior(current, cache, report=events.append)
    assert result.ref == prior and result.source == "local cache" and result.for_study == current.key
    assert [e.kind for e in events] == ["cache"]
    assert look_for_prior(current, cache, have=dt.date(2023, 12, 1)).ref is None


def test_study_paths_put_the_frontal_view_first(tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    lateral = make_instance(study, series, number=1)
    lateral.ViewPosition = "LL"
    frontal = make_instance(study, series, number=2)
    for name, ds in (("a.dcm", lateral), ("b.dcm", frontal)):
        ds.save_as(tmp_path / name, enforce_file_format=True)
    assert study_paths(tmp_path, study) == (str(tmp_path / "b.dcm"), str(tmp_path / "a.dcm"))


def test_pacs_prior_is_queried_retrieved_once_and_a_down_node_named(
    sample: Path, tmp_path: Path, orthanc: OrthancServer  # noqa: F811
) -> None:
    for name in (CURRENT, PRIOR_FILE):
        orthanc.upload((sample / name).read_bytes())
    current = _ref(sample / CURRENT)
    prior_uid = str(pydicom.dcmread(sample / PRIOR_FILE).StudyInstanceUID)
    # a CT of the same patient, later than the CR prior: no prior for a radiograph
    orthanc.upload(encode(make_instance(generate_uid(), patient_id=current.patient_id,
                                        modality="CT", study_date="20231115")))
    down = Node("down", "NOBODY", "127.0.0.1", free_port())
    node = Node("orthanc", ORTHANC_AE, "127.0.0.1", orthanc.dicom_port)
    settings = NetSettings(ae_title=TEST_AE, listener_port=orthanc.listener_port)
    cache = StudyCache(tmp_path / "cache")
    events = []
    result = look_for_prior(current, cache, [down, node], settings, report=events.append)
    assert result.ref is not None and result.ref.key == prior_uid
    assert result.ref.date == dt.date(2023, 10, 2) and result.source == node.label
    assert Path(result.ref.paths[0]).parent == cache.study_dir(prior_uid)
    assert cache.is_complete(prior_uid)
    assert len(result.errors) == 1 and result.errors[0].startswith(down.label)
    assert "connection refused" in result.errors[0]
    kinds = [e.kind for e in events]
    assert kinds[:3] == ["querying", "error", "querying"] and "retrieving" in kinds
    assert all(e.for_study == current.key for e in events)
    # already in the cache: found there first, nothing retrieved again
    events.clear()
    again = look_for_prior(current, cache, [node], settings, report=events.append)
    assert again.ref is not None and again.ref.key == prior_uid
    assert "retrieving" not in [e.kind for e in events] and events[0].kind == "cache"
    assert priors._retrieve_locks == {}  # no lock left behind per retrieved study


def test_nothing_is_retrieved_when_a_newer_prior_is_at_hand_or_the_user_moved_on(
    sample: Path, tmp_path: Path, orthanc: OrthancServer  # noqa: F811
) -> None:
    orthanc.upload((sample / PRIOR_FILE).read_bytes())
    current = _ref(sample / CURRENT)
    prior_uid = str(pydicom.dcmread(sample / PRIOR_FILE).StudyInstanceUID)
    node = Node("orthanc", ORTHANC_AE, "127.0.0.1", orthanc.dicom_port)
    settings = NetSettings(ae_title=TEST_AE, listener_port=orthanc.listener_port)
    cache = StudyCache(tmp_path / "cache")
    newer = look_for_prior(current, cache, [node], settings, have=dt.date(2023, 12, 1))
    assert newer.ref is None and newer.queried == (node.label,) and not newer.errors
    moved = look_for_prior(current, cache, [node], settings, still_wanted=lambda: False)
    assert moved.skipped and moved.ref is None and moved.queried == ()
    assert not cache.is_complete(prior_uid) and cache.studies() == []


def test_one_retrieve_per_study_at_a_time_and_no_lock_kept_afterwards() -> None:
    order: list[str] = []
    inside, release = threading.Event(), threading.Event()

    def first() -> None:
        with priors._study_lock("1.2.3"):
            order.append("first in")
            inside.set()
            release.wait(10)
            order.append("first out")

    def second() -> None:
        inside.wait(10)
        with priors._study_lock("1.2.3"):
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    assert inside.wait(10)
    deadline = time.monotonic() + 10
    while priors._retrieve_locks["1.2.3"][1] < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert priors._retrieve_locks["1.2.3"][1] == 2  # the second lookup waits on the same study
    with priors._study_lock("4.5.6"):  # another study is not held up
        order.append("other")
    assert order == ["first in", "other"]
    release.set()
    for t in threads:
        t.join(10)
    assert order == ["first in", "other", "first out", "second in"]
    assert priors._retrieve_locks == {}
