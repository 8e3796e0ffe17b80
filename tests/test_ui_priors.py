"""Compare with prior beyond the open folders (issue 14): a prior in the local study cache, a
prior found by a PACS query on a real Orthanc and retrieved in the background (C-GET, C-MOVE,
DICOMweb), a prior that arrives after the user moved on (dropped), a node that is down, and the
setting that turns the PACS lookup off. The generated sample's current + prior pair is the data.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from cxr_viewer.io.sample import PRIOR_FILE
from cxr_viewer.net.cache import StudyCache, default_cache_dir
from cxr_viewer.net.config import NetSettings, Node, NodeStore
from tests.orthanc_fixture import (
    ORTHANC_AE,
    TEST_AE,
    OrthancServer,
    cache_put,
    make_instance,
    orthanc,  # noqa: F401 - pytest fixture
    study_variant,
)
from tests.ui_fixtures import *  # noqa: F403 - fixtures
from tests.ui_fixtures import wait_for_image

pytestmark = pytest.mark.gui

CURRENT_FILES = ("IM0001_CR.dcm", "IM0002_DX.dcm")
TITLE = "Prior 2023-10-02, 3 months earlier"



def _current_only(sample: Path, folder: Path) -> Path:
    """The sample's current study without its prior (the prior must come from elsewhere)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in CURRENT_FILES:
        shutil.copy(sample / name, folder / name)
    return folder


def _configure(server: OrthancServer, **node_kw) -> NodeStore:
    """A node in the (isolated) user settings, as File > DICOM nodes saves it."""
    store = NodeStore(NodeStore.default_path(),
                      settings=NetSettings(ae_title=TEST_AE, listener_port=server.listener_port))
    if node_kw.get("retrieve") == "dicomweb":
        store.put(Node("orthanc", dicomweb_url=server.dicomweb, retrieve="dicomweb"))
    else:
        store.put(Node("orthanc", ORTHANC_AE, "127.0.0.1", server.dicom_port, **node_kw))
    store.save()
    return store


def _left(window):
    return window.workflow.grid.visible_viewports()[0]


def test_prior_in_the_local_cache_hangs_left(qtbot, window, sample, tmp_path):
    cache = StudyCache(default_cache_dir())
    prior_file = sample / PRIOR_FILE
    prior = pydicom.dcmread(prior_file)
    expected = cache_put(cache, prior)
    # not priors: older than the one expected, later than the current, another patient
    cache_put(cache, study_variant(prior_file, StudyDate="20230101"))
    cache_put(cache, study_variant(prior_file, StudyDate="20240601"))
    cache_put(cache, study_variant(prior_file, StudyDate="20231201", PatientID="SOMEONE-ELSE"))
    folder = _current_only(sample, tmp_path / "current")
    wf = window.workflow
    with qtbot.waitSignal(wf.priors.found, timeout=30000) as found:
        window.open_paths([str(folder)])
    assert found.args[0] == str(pydicom.dcmread(folder / CURRENT_FILES[0]).StudyInstanceUID)
    assert found.args[2] == "local cache"
    wait_for_image(qtbot, window, folder / CURRENT_FILES[0])
    grid = wf.grid
    left, right = grid.visible_viewports()
    assert grid.layout_name == "1x2" and right is grid.primary
    qtbot.waitUntil(lambda: left.view.image is not None, timeout=20000)
    assert left.view.image.path == str(expected)
    assert left.title.text() == TITLE and right.title.text() == "Current 2024-01-01"
    assert TITLE in wf.comparison_label.text()
    assert wf.priors.pacs_lookups == 0  # no node configured: nothing asked on any network
    # de-identified: no dates in the titles
    window.actions["deidentify"].trigger()
    assert right.title.text() == "Current"
    qtbot.waitUntil(lambda: left.title.text() == "Prior", timeout=20000)  # set once reloaded
    window.actions["deidentify"].trigger()
    # the second image of the same study keeps the prior without a second lookup
    lookups = wf.priors.lookups
    window.show_path(str(folder / CURRENT_FILES[1]))
    wait_for_image(qtbot, window, folder / CURRENT_FILES[1])
    assert wf.prior is not None and wf.prior.paths[0] == str(expected)
    assert wf.priors.lookups == lookups


def test_undated_pngs_ask_no_cache_and_no_pacs(qtbot, window, tmp_path):
    import numpy as np

    from tests.ui_fixtures import write_png

    a = write_png(tmp_path / "a.png", np.zeros((64, 64), np.uint8))
    window.open_paths([str(a)])
    wait_for_image(qtbot, window, a)
    assert window.workflow.priors.lookups == 0 and window.workflow.prior is None


@pytest.mark.parametrize("method", ["c-get", "c-move", "dicomweb"])
def test_prior_on_the_pacs_is_retrieved_and_hung(qtbot, window, sample, tmp_path, method,
                                                 orthanc):  # noqa: F811
    for name in (*CURRENT_FILES, PRIOR_FILE):
        orthanc.upload((sample / name).read_bytes())
    prior_uid = str(pydicom.dcmread(sample / PRIOR_FILE).StudyInstanceUID)
    _configure(orthanc, retrieve=method)
    folder = _current_only(sample, tmp_path / "current")
    wf = window.workflow
    cache = StudyCache(default_cache_dir())
    if method == "c-get":
        # "Look for priors on the PACS" off: a configured node is not asked
        wf.priors.action.setChecked(False)
        assert window.settings.value("priors/query_pacs") == "false"
        with qtbot.waitSignal(wf.priors.finished, timeout=30000):
            window.open_paths([str(folder)])
        wait_for_image(qtbot, window, folder / CURRENT_FILES[0])
        assert wf.priors.pacs_lookups == 0 and wf.prior is None
        assert wf.grid.layout_name == "1x1" and not cache.is_complete(prior_uid)
        wf.priors.action.setChecked(True)
    with qtbot.waitSignal(wf.priors.found, timeout=60000) as found:
        window.open_paths([str(folder)])
    assert found.args[2].startswith("orthanc")
    assert cache.is_complete(prior_uid)  # retrieved into the local cache
    left = _left(window)
    qtbot.waitUntil(lambda: left.view.image is not None, timeout=20000)
    assert Path(left.view.image.path).parent == cache.study_dir(prior_uid)
    assert left.title.text() == TITLE
    assert wf.grid.primary.title.text() == "Current 2024-01-01"
    assert TITLE in wf.comparison_label.text()
    assert "Prior retrieved from orthanc" in window.statusBar().currentMessage()
    assert wf.priors.pacs_lookups >= 1


def test_a_prior_that_arrives_after_the_user_moved_on_is_dropped(qtbot, window, sample,
                                                                 tmp_path, orthanc):  # noqa: F811
    orthanc.upload((sample / PRIOR_FILE).read_bytes())
    prior_uid = str(pydicom.dcmread(sample / PRIOR_FILE).StudyInstanceUID)
    _configure(orthanc)
    folder = _current_only(sample, tmp_path / "current")
    other = folder / "other.dcm"
    make_instance(generate_uid(), patient_id="OTHER-PATIENT", study_date="20240301",
                  size=128).save_as(other, enforce_file_format=True)
    window.cache.load(str(other))  # decoded already: showing it takes no worker round trip
    wf = window.workflow
    current = str(folder / CURRENT_FILES[0])
    sample_key = str(pydicom.dcmread(current).StudyInstanceUID)

    def move_on(key: str, _source: str) -> None:
        # the retrieve of this patient's prior has started: the user opens another patient
        if key == sample_key and window.current_path == current:
            window.show_path(str(other))

    wf.priors.retrieving.connect(move_on)
    with qtbot.waitSignal(wf.priors.dropped, timeout=60000) as dropped:
        window.open_paths([str(folder)])
    wf.priors.retrieving.disconnect(move_on)
    assert dropped.args == [sample_key]
    assert window.current_image.path == str(other)
    assert wf.prior is None and wf.grid.layout_name == "1x1"
    assert all(vp.view.image is None or vp.view.image.path == str(other)
               for vp in wf.grid.visible_viewports())
    assert cache_complete(prior_uid)  # kept for later, not thrown away
    # back to the first patient: its prior (remembered) hangs at once
    lookups = wf.priors.lookups
    window.show_path(current)
    wait_for_image(qtbot, window, current)
    assert wf.priors.lookups == lookups
    assert wf.prior is not None and wf.prior.key == prior_uid
    left = _left(window)
    qtbot.waitUntil(lambda: left.view.image is not None, timeout=20000)
    assert left.title.text() == TITLE


def cache_complete(uid: str) -> bool:
    return StudyCache(default_cache_dir()).is_complete(uid)


def test_a_node_that_is_down_is_reported_and_the_gui_goes_on(qtbot, window, sample, tmp_path):
    server = OrthancServer(tmp_path / "o")  # never started: its ports are closed
    _configure(server)
    folder = _current_only(sample, tmp_path / "current")
    wf = window.workflow
    messages: list[str] = []
    window.statusBar().messageChanged.connect(messages.append)
    with qtbot.waitSignal(wf.priors.finished, timeout=30000) as done:
        window.open_paths([str(folder)])
    result = done.args[1]
    assert result.ref is None and result.errors
    assert "connection refused" in result.errors[0] and "orthanc" in result.errors[0]
    assert any(m.startswith("Prior lookup") and "connection refused" in m for m in messages)
    wait_for_image(qtbot, window, folder / CURRENT_FILES[0])
    assert wf.prior is None and wf.grid.layout_name == "1x1"
    # a failed node is asked again the next time the study is shown
    key = result.for_study
    assert key not in wf.priors.known


def test_a_more_recent_prior_in_the_cache_replaces_the_one_in_the_open_folder(
    qtbot, window, sample, tmp_path
):
    """The open folder has the 2023-10-02 prior; the cache a later one of the same patient
    (2023-12-01): the most recent prior hangs, whichever source holds it."""
    cache = StudyCache(default_cache_dir())
    newer = cache_put(cache, study_variant(sample / PRIOR_FILE, StudyDate="20231201"))
    wf = window.workflow
    with qtbot.waitSignal(wf.priors.finished, timeout=30000):
        window.open_paths([str(sample)])
    wait_for_image(qtbot, window, sample / CURRENT_FILES[0])
    qtbot.waitUntil(lambda: wf.prior is not None and wf.prior.paths[0] == str(newer),
                    timeout=20000)
    left = _left(window)
    qtbot.waitUntil(lambda: left.view.image is not None and left.view.image.path == str(newer),
                    timeout=20000)
    assert left.title.text() == "Prior 2023-12-01, 1 month earlier"
