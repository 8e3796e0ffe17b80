"""`--analyse`: chest radiographs pushed to the listener are analysed on the TensorFlow thread
with the bundled model; the findings JSON is written next to the inbox; other images are not."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from cxr_viewer.io.sample import generate_sample_study
from cxr_viewer.net import dimse
from cxr_viewer.net.analyse import ArrivalAnalyser
from cxr_viewer.net.config import Node
from cxr_viewer.net.listener import Arrival, StorageListener
from tests.conftest import REPO_ROOT


@pytest.mark.slow
def test_pushed_chest_radiograph_is_analysed_on_one_thread(tmp_path: Path) -> None:
    if not (REPO_ROOT / "models" / "default" / "model.json").is_file():
        pytest.fail("models/default is missing: the bundled model is part of the repository")
    cr, dx = generate_sample_study(tmp_path / "sample")
    ct = dcmread(cr)  # the same pixels labelled CT: the model must refuse it
    ct.Modality = "CT"
    ct.SOPInstanceUID = generate_uid()
    ct.file_meta.MediaStorageSOPInstanceUID = ct.SOPInstanceUID
    ct_file = tmp_path / "ct.dcm"
    ct.save_as(ct_file, enforce_file_format=True)

    results: list[tuple[Arrival, dict, str]] = []
    got_all = threading.Event()

    def on_result(a: Arrival, res: dict) -> None:
        results.append((a, res, threading.current_thread().name))
        if len(results) == 2:
            got_all.set()

    analyser = ArrivalAnalyser(tmp_path / "ai", on_result=on_result).start()
    submitted: list[Arrival] = []

    def arrived(a: Arrival) -> None:
        submitted.append(a)
        analyser.submit(a)

    listener = StorageListener(tmp_path / "inbox", "CXRVIEWER", 0, host="127.0.0.1",
                               accept_from=["SENDER"], on_arrival=arrived).start()
    try:
        node = Node("me", "CXRVIEWER", "127.0.0.1", listener.port)
        assert dimse.store_files(node, [cr, Path(ct_file)], "SENDER") == 2
        assert got_all.wait(300), "no AI result"
    finally:
        listener.stop()
        analyser.stop()
    from cxr_viewer.inference.tfthread import THREAD_NAME

    assert {name for _a, _r, name in results} == {THREAD_NAME}
    by_mod = {a.modality: (a, r) for a, r, _n in results}
    cr_arrival, cr_result = by_mod["CR"]
    assert cr_result["model_version"] and len(cr_result["findings"]) >= 5
    assert all(0.0 <= f["probability"] <= 1.0 for f in cr_result["findings"])
    on_disk = json.loads(analyser.result_path(cr_arrival).read_text())
    assert on_disk["findings"] == cr_result["findings"]
    assert "CT" in by_mod["CT"][1]["not_analysed"]
    assert len(submitted) == 2
