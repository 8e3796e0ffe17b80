"""Node settings, secrets and the study cache (no network)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cxr_viewer.net.cache import MARKER, StudyCache, safe_name
from cxr_viewer.net.config import NetSettings, Node, NodeStore, SecretStore, parse_node
from cxr_viewer.net.errors import NetError
from tests.conftest import REPO_ROOT


def test_node_validation_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="AE title"):
        Node("a", ae_title="THIS-TITLE-IS-WAY-TOO-LONG", host="h", port=104)
    with pytest.raises(ValueError, match="port"):
        Node("a", ae_title="PACS", host="h", port=70000)
    with pytest.raises(ValueError, match="http"):
        Node("a", dicomweb_url="ftp://pacs/dicom-web")
    with pytest.raises(ValueError, match="host and port"):
        Node("a")
    n = Node("a", ae_title="PACS", host="pacs.local", port=104)
    assert n.retrieve_method == "c-get"
    assert Node("w", dicomweb_url="https://x/dicom-web").retrieve_method == "dicomweb"


def test_parse_node_forms() -> None:
    store = NodeStore(Path("unused.json"), [Node("main", "PACS", "10.0.0.5", 104)])
    assert parse_node("main", store).host == "10.0.0.5"
    adhoc = parse_node("ORTHANC@127.0.0.1:4242", store)
    assert (adhoc.ae_title, adhoc.host, adhoc.port) == ("ORTHANC", "127.0.0.1", 4242)
    web = parse_node("http://127.0.0.1:8042/dicom-web/", store)
    assert web.dicomweb_url == "http://127.0.0.1:8042/dicom-web"
    assert web.retrieve_method == "dicomweb"
    with pytest.raises(NetError, match="not a configured node .*main"):
        parse_node("elsewhere", store)


def test_settings_file_round_trip_and_holds_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "nodes.json"
    store = NodeStore(path, settings=NetSettings(ae_title="MYVIEWER", listener_port=11113))
    store.put(Node("web", dicomweb_url="https://pacs.example/dicom-web", auth="basic",
                   username="reader"))
    store.put(Node("tok", dicomweb_url="https://pacs2.example/dicom-web", auth="bearer"))
    secrets = SecretStore(use_keyring=False)
    secrets.set("web", "password", "S3cret-pa55word")
    secrets.set("tok", "token", "eyJhbGciOiJIUzI1NiJ9.bearer-token")
    store.save()
    text = path.read_text()
    assert "S3cret-pa55word" not in text
    assert "bearer-token" not in text
    assert "reader" in text  # the user name is not a secret
    again = NodeStore.load(path)
    assert again.settings.ae_title == "MYVIEWER" and again.settings.listener_port == 11113
    assert [n.name for n in again.nodes] == ["web", "tok"]
    assert secrets.get("web", "password") == "S3cret-pa55word"
    # no temporary sibling left behind by the atomic write
    assert sorted(p.name for p in path.parent.iterdir()) == ["nodes.json"]


def test_secret_asked_once_per_run_without_keyring() -> None:
    asked = []

    def prompt(node: str, what: str) -> str:
        asked.append((node, what))
        return "typed-once"

    secrets = SecretStore(prompt=prompt, use_keyring=False)
    assert not secrets.persistent
    assert secrets.get("n", "password") == "typed-once"
    assert secrets.get("n", "password") == "typed-once"
    assert asked == [("n", "password")]


def test_missing_settings_file_means_no_nodes(tmp_path: Path) -> None:
    store = NodeStore.load(tmp_path / "absent.json")
    assert store.nodes == [] and store.known_ae_titles() == ()


def test_unreadable_settings_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "nodes.json"
    bad.write_text("{not json")
    with pytest.raises(NetError, match="nodes.json: unreadable node settings"):
        NodeStore.load(bad)


def test_safe_name_blocks_path_tricks() -> None:
    assert safe_name("1.2.840.10008.1") == "1.2.840.10008.1"
    assert "/" not in safe_name("../../etc/passwd") and safe_name("../x").startswith("x")


def _fill(cache: StudyCache, uid: str, n: int, size: int) -> None:
    cache.begin(uid)
    for i in range(n):
        cache.write_instance(uid, f"{uid}.{i}", b"\0" * size)
    cache.finish(uid, ok=True, count=n)


def test_cache_evicts_oldest_first(tmp_path: Path) -> None:
    cache = StudyCache(tmp_path / "studies", limit_bytes=2500)
    _fill(cache, "1.1", 1, 1000)
    time.sleep(0.01)
    _fill(cache, "1.2", 1, 1000)
    time.sleep(0.01)
    _fill(cache, "1.3", 1, 1000)  # 3000 + markers > 2500: the oldest (1.1) goes
    uids = {s.uid for s in cache.studies()}
    assert uids == {"1.2", "1.3"}
    assert cache.total_bytes() <= 2500


def test_cache_incomplete_study_and_delete(tmp_path: Path) -> None:
    cache = StudyCache(tmp_path / "studies")
    cache.begin("1.5")
    cache.write_instance("1.5", "1.5.1", b"x" * 10)
    assert not cache.is_complete("1.5")
    cache.finish("1.5", ok=False)
    assert not (cache.study_dir("1.5") / MARKER).exists()
    assert [s.complete for s in cache.studies()] == [False]
    _fill(cache, "1.6", 2, 10)
    assert cache.is_complete("1.6")
    info = json.loads((cache.study_dir("1.6") / MARKER).read_text())
    assert info["instances"] == 2
    cache.delete("1.5")
    assert [s.uid for s in cache.studies()] == ["1.6"]
    assert cache.delete_all() == 1 and cache.studies() == []


def test_study_being_written_is_not_evicted(tmp_path: Path) -> None:
    cache = StudyCache(tmp_path / "s", limit_bytes=100)
    cache.begin("2.1")
    cache.write_instance("2.1", "2.1.1", b"y" * 500)
    _fill(cache, "2.2", 1, 10)  # trimming after 2.2 must keep the active 2.1
    assert "2.1" in {s.path.name for s in cache.studies()}


def test_net_package_imports_neither_qt_nor_tensorflow() -> None:
    import subprocess
    import sys

    code = (
        "import sys, cxr_viewer.net, cxr_viewer.net.client, cxr_viewer.net.listener, "
        "cxr_viewer.net.analyse\n"
        "bad = [m for m in ('PySide6', 'pyqtgraph', 'tensorflow') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
