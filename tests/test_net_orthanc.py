"""Query/retrieve/send against a real Orthanc (C-ECHO, C-FIND, C-GET, C-MOVE, QIDO/WADO/STOW-RS)
and the faults: server down, wrong called AE, a retrieve interrupted midway."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from cxr_viewer import audit
from cxr_viewer.net import client
from cxr_viewer.net.cache import StudyCache
from cxr_viewer.net.config import NetSettings, Node
from cxr_viewer.net.dimse import DEFAULT_TIMEOUTS
from cxr_viewer.net.errors import NetError
from tests.conftest import REPO_ROOT
from tests.orthanc_fixture import (
    ORTHANC_AE,
    TEST_AE,
    OrthancServer,
    encode,
    make_instance,
    orthanc,  # noqa: F401 - pytest fixture
)


def _settings(server: OrthancServer) -> NetSettings:
    return NetSettings(ae_title=TEST_AE, listener_port=server.listener_port)


def _dimse(server: OrthancServer, method: str = "c-get") -> Node:
    return Node("orthanc", ORTHANC_AE, "127.0.0.1", server.dicom_port, retrieve=method)


def _web(server: OrthancServer) -> Node:
    return Node("orthanc-web", dicomweb_url=server.dicomweb)


def _upload_study(server: OrthancServer, n: int, **kw) -> tuple[str, list[str]]:
    study, series = generate_uid(), generate_uid()
    sops = []
    for i in range(n):
        ds = make_instance(study, series, number=i + 1, seed=i, **kw)
        server.upload(encode(ds))
        sops.append(str(ds.SOPInstanceUID))
    return study, sops


def test_echo_dimse_and_dicomweb(orthanc: OrthancServer) -> None:  # noqa: F811
    s = _settings(orthanc)
    assert client.echo(_dimse(orthanc), s) == "C-ECHO"
    assert client.echo(_web(orthanc), s) == "QIDO-RS"


@pytest.mark.parametrize("kind", ["dimse", "web"])
def test_find_filters(orthanc: OrthancServer, kind: str) -> None:  # noqa: F811
    s = _settings(orthanc)
    cr_study, _ = _upload_study(orthanc, 2, patient_id="P-CR", accession="A100",
                                study_date="20240301")
    ct_study, _ = _upload_study(orthanc, 1, patient_id="P-CT", modality="CT",
                                study_date="20240302")
    node = _dimse(orthanc) if kind == "dimse" else _web(orthanc)
    every = client.find(node, s)
    assert {m.study_uid for m in every} == {cr_study, ct_study}
    crdx = client.find(node, s, modality="CR\\DX")
    assert [m.study_uid for m in crdx] == [cr_study]
    assert crdx[0].patient_id == "P-CR" and crdx[0].accession == "A100"
    assert crdx[0].num_instances == 2 and crdx[0].modalities == ("CR",)
    assert [m.study_uid for m in client.find(node, s, patient_id="P-CT")] == [ct_study]
    ranged = client.find(node, s, study_date="20240302-20240310")
    assert [m.study_uid for m in ranged] == [ct_study]


@pytest.mark.parametrize("method", ["c-get", "c-move", "dicomweb"])
def test_retrieve_lands_complete_in_cache(
    orthanc: OrthancServer, tmp_path: Path, method: str  # noqa: F811
) -> None:
    study, sops = _upload_study(orthanc, 4)
    node = dataclasses.replace(_dimse(orthanc, method), dicomweb_url=orthanc.dicomweb)
    cache = StudyCache(tmp_path / "cache")
    seen: list[tuple[int, int | None]] = []
    folder = client.retrieve(node, study, cache, _settings(orthanc),
                             progress=lambda d, t: seen.append((d, t)))
    assert cache.is_complete(study)
    files = cache.instances(study)
    assert {str(dcmread(f).SOPInstanceUID) for f in files} == set(sops)
    for f in files:
        assert f.parent == folder
        assert dcmread(f).pixel_array.shape == (64, 64)
    assert seen and seen[-1][0] == 4
    assert cache.leftovers() == []


def test_send_by_cstore_and_stow(orthanc: OrthancServer, tmp_path: Path) -> None:  # noqa: F811
    s = _settings(orthanc)
    a = make_instance(generate_uid(), seed=1)
    b = make_instance(generate_uid(), seed=2)
    fa, fb = tmp_path / "a.dcm", tmp_path / "b.dcm"
    a.save_as(fa, enforce_file_format=True)
    b.save_as(fb, enforce_file_format=True)
    assert client.send(_dimse(orthanc), [fa], s) == (1, "C-STORE")
    assert client.send(_web(orthanc), [fb], s) == (1, "STOW-RS")
    assert set(orthanc.instance_uids()) == {str(a.SOPInstanceUID), str(b.SOPInstanceUID)}
    # Each send is one audit event naming the destination, the method and the SOP instance.
    events = [json.loads(line) for line in audit.default_log_path().read_bytes().splitlines()]
    sends = [e for e in events if e.get("event") == "send"]
    assert len(sends) >= 2
    text = json.dumps(sends[-2:])
    assert "C-STORE" in text and "STOW-RS" in text
    assert str(a.SOPInstanceUID) in text and str(b.SOPInstanceUID) in text
    assert audit.verify().ok


def test_server_down_is_a_clear_error(tmp_path: Path) -> None:
    server = OrthancServer(tmp_path / "o").start()
    s = _settings(server)
    server.stop()  # the ports are now closed
    with pytest.raises(NetError, match="connection refused.*is the PACS running"):
        client.echo(_dimse(server), s)
    with pytest.raises(NetError, match="connection refused.*is the PACS running"):
        client.find(_web(server), s)
    with pytest.raises(NetError, match="connection refused"):
        client.retrieve(_dimse(server), "1.2.3", StudyCache(tmp_path / "c"), s)
    # A host that never answers is bounded by the connect timeout (the 5 s budget of the spec).
    assert DEFAULT_TIMEOUTS.connect < 5


def test_wrong_called_ae_is_reported_as_rejection(orthanc: OrthancServer) -> None:  # noqa: F811
    node = Node("wrong", "NOTORTHANC", "127.0.0.1", orthanc.dicom_port)
    with pytest.raises(NetError) as err:
        client.echo(node, _settings(orthanc))
    msg = str(err.value)
    # Orthanc answers A-ASSOCIATE-RJ; the client asks again when the reject was lost to an
    # abort (socket closed first), so the user nearly always reads the peer's own reason. If
    # every attempt lost it, the message still says the association failed and names the AE.
    assert "NOTORTHANC" in msg
    assert ("association rejected" in msg and "Called AE title not recognised" in msg) or (
        "association aborted by the peer during negotiation" in msg
        and "does not accept the called AE title" in msg
    ), msg


def test_unknown_calling_ae_cannot_query(orthanc: OrthancServer) -> None:  # noqa: F811
    # Orthanc only answers C-FIND from declared modalities: the failure says so, no crash.
    s = NetSettings(ae_title="STRANGER", listener_port=orthanc.listener_port)
    with pytest.raises(NetError, match="orthanc"):
        client.find(_dimse(orthanc), s)


def test_interrupted_retrieve_leaves_only_complete_files_and_retry_completes(
    tmp_path: Path,
) -> None:
    server = OrthancServer(tmp_path / "o").start()
    try:
        study, sops = _upload_study(server, 12, size=256)
        cache = StudyCache(tmp_path / "cache")
        s = _settings(server)

        def kill_after_three(done: int, total: int | None) -> None:
            if done == 3:
                server.kill()

        with pytest.raises(NetError, match="interrupted|connection|aborted"):
            client.retrieve(_dimse(server), study, cache, s, progress=kill_after_three)
        assert not cache.is_complete(study)
        partial = cache.instances(study)
        assert 3 <= len(partial) < 12
        for f in partial:  # every visible file is a whole, decodable instance
            assert dcmread(f).pixel_array.shape == (256, 256)
        assert cache.leftovers() == []
        assert [s.complete for s in cache.studies()] == [False]

        server.start()  # same storage folder: the study is still there
        client.retrieve(_dimse(server), study, cache, s)
        assert cache.is_complete(study)
        assert {str(dcmread(f).SOPInstanceUID) for f in cache.instances(study)} == set(sops)
    finally:
        server.stop()


def _cli(args: list[str], env_dir: Path) -> subprocess.CompletedProcess[str]:
    import os

    env = os.environ | {
        "CXR_VIEWER_SETTINGS_DIR": str(env_dir / "settings"),
        "CXR_VIEWER_DATA_DIR": str(env_dir / "data"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    return subprocess.run([sys.executable, "-m", "cxr_viewer", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=REPO_ROOT)


def test_cli_echo_find_get_send(orthanc: OrthancServer, tmp_path: Path) -> None:  # noqa: F811
    study, sops = _upload_study(orthanc, 3, patient_id="CLI1")
    add = _cli(["pacs", "add-node", "orth", "--ae", ORTHANC_AE, "--host", "127.0.0.1",
                "--port", str(orthanc.dicom_port), "--url", orthanc.dicomweb], tmp_path)
    assert add.returncode == 0, add.stderr
    # our AE title must be the one Orthanc knows
    cfg = tmp_path / "settings" / "nodes.json"
    data = json.loads(cfg.read_text())
    data["local"]["ae_title"] = TEST_AE
    cfg.write_text(json.dumps(data))

    echo = _cli(["pacs", "echo", "orth"], tmp_path)
    assert echo.returncode == 0 and "QIDO-RS OK" in echo.stdout, echo.stderr
    echo2 = _cli(["pacs", "echo", f"{ORTHANC_AE}@127.0.0.1:{orthanc.dicom_port}"], tmp_path)
    assert echo2.returncode == 0 and "C-ECHO OK" in echo2.stdout, echo2.stderr

    found = _cli(["pacs", "find", f"{ORTHANC_AE}@127.0.0.1:{orthanc.dicom_port}",
                  "--patient-id", "CLI1", "--json"], tmp_path)
    assert found.returncode == 0, found.stderr
    rows = json.loads(found.stdout)
    assert [r["StudyInstanceUID"] for r in rows] == [study]
    assert rows[0]["NumberOfStudyRelatedInstances"] == 3

    out = tmp_path / "got"
    got = _cli(["pacs", "get", "orth", study, "--out", str(out)], tmp_path)
    assert got.returncode == 0, got.stderr
    assert "3 instance(s)" in got.stdout
    files = sorted((out / study).glob("*.dcm"))
    assert {str(dcmread(f).SOPInstanceUID) for f in files} == set(sops)

    new = make_instance(generate_uid(), seed=9)
    f = tmp_path / "new.dcm"
    new.save_as(f, enforce_file_format=True)
    sent = _cli(["pacs", "send", orthanc.dicomweb, str(f)], tmp_path)
    assert sent.returncode == 0 and "by STOW-RS" in sent.stdout, sent.stderr
    assert str(new.SOPInstanceUID) in orthanc.instance_uids()

    # the settings file holds the node but no secret, and failures are one error line, exit 2
    bad = _cli(["pacs", "get", "orth", "1.2.3.4.5"], tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and bad.stderr.startswith("error: ")
    assert "not found" in bad.stderr
