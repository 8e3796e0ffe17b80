"""The PACS dialog against a real Orthanc: search, sortable results, de-identified columns,
retrieve with progress into the cache and open in the browser; errors shown, GUI never blocked;
the listener started from the File menu adds pushed studies to the study browser."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from cxr_viewer.net import dimse
from cxr_viewer.net.cache import StudyCache
from cxr_viewer.net.config import NetSettings, Node, NodeStore, SecretStore
from tests.orthanc_fixture import (
    ORTHANC_AE,
    TEST_AE,
    OrthancServer,
    encode,
    free_port,
    make_instance,
    orthanc,  # noqa: F401 - pytest fixture
)
from tests.ui_fixtures import *  # noqa: F403 - fixtures

pytestmark = pytest.mark.gui


def _store(tmp_path: Path, server: OrthancServer, **node_kw) -> NodeStore:
    store = NodeStore(tmp_path / "nodes.json",
                      settings=NetSettings(ae_title=TEST_AE, listener_port=server.listener_port))
    store.put(Node("orthanc", ORTHANC_AE, "127.0.0.1", server.dicom_port, **node_kw))
    return store


@pytest.fixture
def dialog(qtbot, no_widget_leaks):  # noqa: F811
    made = []

    def make(store: NodeStore, cache: StudyCache, deidentified: bool = False):
        from cxr_viewer.ui.pacs_dialog import PacsDialog

        dlg = PacsDialog(store, SecretStore(use_keyring=False), deidentified=deidentified,
                         cache=cache)
        qtbot.addWidget(dlg)
        dlg.show()
        made.append(dlg)
        return dlg

    yield make
    for d in made:
        d.close()


def test_search_sort_deidentify_and_retrieve(
    qtbot, dialog, orthanc: OrthancServer, tmp_path: Path  # noqa: F811
) -> None:
    uids = {}
    for pid, date, n in [("P1", "20240101", 2), ("P2", "20240301", 3)]:
        study, series = generate_uid(), generate_uid()
        for i in range(n):
            orthanc.upload(encode(make_instance(study, series, patient_id=pid, study_date=date,
                                                number=i, seed=i)))
        uids[pid] = study
    orthanc.upload(encode(make_instance(generate_uid(), modality="CT")))  # filtered out: CR/DX
    cache = StudyCache(tmp_path / "cache")
    dlg = dialog(_store(tmp_path, orthanc), cache)
    assert dlg.modality.text() == "CR,DX"
    dlg.search()
    qtbot.waitUntil(lambda: dlg.table.rowCount() == 2, timeout=20000)
    assert "2 studies" in dlg.status.text()
    # newest first; sortable by a click on a header
    assert [dlg.table.item(r, 1).text() for r in range(2)] == ["P2", "P1"]
    dlg.table.sortItems(0)
    assert [dlg.table.item(r, 1).text() for r in range(2)] == ["P1", "P2"]
    dlg.table.sortItems(7)  # "Images" sorts numerically
    assert [dlg.table.item(r, 7).text() for r in range(2)] == ["2", "3"]
    # de-identified: patient columns hidden
    assert not dlg.table.isColumnHidden(1)
    dlg.set_deidentified(True)
    assert all(dlg.table.isColumnHidden(c) for c in (0, 1, 2, 3))  # date, ID, name, birth date
    # retrieve the 3-image study
    row = [r for r in range(2) if dlg.table.item(r, 9).text() == uids["P2"]][0]
    dlg.table.selectRow(row)
    with qtbot.waitSignal(dlg.studyRetrieved, timeout=30000) as sig:
        dlg.retrieve_selected()
    folder = Path(sig.args[0])
    assert folder == cache.study_dir(uids["P2"]) and len(list(folder.glob("*.dcm"))) == 3
    bar = dlg._bars[uids["P2"]]
    assert bar.value() == bar.maximum() == 3 and bar.format() == "done"
    dlg.delete_local_copies()
    assert cache.studies() == []


def test_server_down_shows_error_and_gui_stays_responsive(
    qtbot, dialog, tmp_path: Path
) -> None:
    server = OrthancServer(tmp_path / "o")  # never started: its ports are closed
    dlg = dialog(_store(tmp_path, server), StudyCache(tmp_path / "c"))
    ticks = []
    from PySide6.QtCore import QTimer

    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    dlg.search()
    assert dlg.status.text().startswith("Searching")  # returned at once: work is off-thread
    qtbot.waitUntil(lambda: dlg.status.text().startswith("Error"), timeout=10000)
    timer.stop()
    assert "connection refused" in dlg.status.text()
    assert dlg.search_button.isEnabled()
    assert ticks  # the event loop kept running while the worker connected


def test_no_node_configured_means_nothing_to_press(qtbot, dialog, tmp_path: Path) -> None:
    dlg = dialog(NodeStore(tmp_path / "none.json"), StudyCache(tmp_path / "c"))
    assert not dlg.search_button.isEnabled() and not dlg.retrieve_button.isEnabled()
    assert "No DICOM node configured" in dlg.status.text()


def test_file_menu_listener_adds_pushed_study_to_browser(
    qtbot, window, tmp_path: Path, monkeypatch  # noqa: F811
) -> None:
    monkeypatch.setenv("CXR_VIEWER_DATA_DIR", str(tmp_path / "data"))
    port = free_port()
    store = NodeStore.load()  # the isolated settings folder
    store.settings = NetSettings(ae_title="VIEWER", listener_port=port)
    store.put(Node("modality", "SENDER", "127.0.0.1", 104))
    store.save()
    titles = [a.text() for a in window.menuBar().actions()[0].menu().actions()]
    assert "&PACS query / retrieve..." in titles and "Receive pushed studies (listener)" in titles
    window.pacs.listen_action.setChecked(True)
    try:
        assert window.pacs.listener is not None and window.pacs.listener.port == port
        f = tmp_path / "push.dcm"
        make_instance(generate_uid(), seed=3).save_as(f, enforce_file_format=True)
        dimse.store_files(Node("me", "VIEWER", "127.0.0.1", port), [f], "SENDER")
        qtbot.waitUntil(lambda: len(window.browser.image_paths()) == 1, timeout=15000)
        assert str(tmp_path / "data" / "inbox") in window.browser.image_paths()[0]
    finally:
        window.pacs.listen_action.setChecked(False)
    assert window.pacs.listener is None


def test_cancel_stops_a_retrieve_and_leaves_it_incomplete(
    qtbot, dialog, orthanc: OrthancServer, tmp_path: Path  # noqa: F811
) -> None:
    study, series = generate_uid(), generate_uid()
    for i in range(30):
        orthanc.upload(encode(make_instance(study, series, number=i, seed=i, size=256)))
    cache = StudyCache(tmp_path / "cache")
    dlg = dialog(_store(tmp_path, orthanc), cache)
    dlg.search()
    qtbot.waitUntil(lambda: dlg.table.rowCount() == 1, timeout=20000)
    dlg.table.selectRow(0)
    dlg.retrieve_selected()
    assert dlg.cancel_button.isEnabled()
    dlg.cancel_all()  # before the first instance can arrive
    qtbot.waitUntil(lambda: dlg._bars[study].format() == "cancelled", timeout=30000)
    assert "cancelled" in dlg.status.text()
    assert not cache.is_complete(study)
    assert len(cache.instances(study)) < 30
    assert not dlg.cancel_button.isEnabled()


def test_nodes_dialog_edits_the_core_store_and_keeps_secrets_out_of_it(
    qtbot, no_widget_leaks, tmp_path: Path, monkeypatch  # noqa: F811
) -> None:
    from cxr_viewer.ui.nodes_dialog import NodesDialog

    path = tmp_path / "cfg" / "nodes.json"
    store = NodeStore(path)
    store.put(Node("web", dicomweb_url="https://pacs.example/dicom-web"))
    secrets = SecretStore(use_keyring=False)
    dlg = NodesDialog(store, secrets)
    qtbot.addWidget(dlg)
    assert dlg.name.text() == "web"
    dlg.auth.setCurrentText("basic")
    dlg.username.setText("reader")
    dlg.secret.setText("Hunter2-secret")
    dlg.local_ae.setText("READING1")
    dlg.save()
    assert dlg.result() == dlg.DialogCode.Accepted
    text = path.read_text()
    assert "Hunter2-secret" not in text and "READING1" in text and '"basic"' in text
    assert secrets.get("web", "password") == "Hunter2-secret"
    again = NodeStore.load(path)
    assert again.get("web").username == "reader" and again.settings.ae_title == "READING1"
    # an invalid value is refused by the core's validation, not saved
    dlg2 = NodesDialog(again, secrets)
    qtbot.addWidget(dlg2)
    dlg2.local_ae.setText("A-WAY-TOO-LONG-AE-TITLE")
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda *a, **k: shown.append(a[2])))
    dlg2.save()
    assert shown and "local AE title" in shown[0]
    assert NodeStore.load(path).settings.ae_title == "READING1"


def test_export_dialog_sends_a_dicom_export_to_a_configured_node(
    qtbot, orthanc, tmp_path, monkeypatch  # noqa: F811
):
    """Export dialog -> DICOM Secondary Capture written, then sent to the chosen node (C-STORE);
    the send choice exists only for DICOM formats and only when a node is configured."""
    import pydicom

    from cxr_viewer.export.annotated import ExportRequest
    from cxr_viewer.io.loader import load_image
    from cxr_viewer.ui.export_dialog import ExportDialog, configured_node_names, export_from_state
    from tests.test_export_annotated import FIXED_TIME, WINDOW, make_dicom, make_prediction

    monkeypatch.setenv("CXR_VIEWER_SETTINGS_DIR", str(tmp_path / "settings"))
    assert configured_node_names() == []  # nothing configured: nothing offered
    bare = ExportDialog(default_path=tmp_path / "x.dcm")
    qtbot.addWidget(bare)
    assert bare.send_combo.count() == 1 and bare.options().send_to is None

    store = _store(tmp_path, orthanc)
    store.path = NodeStore.default_path()
    store.save()
    assert configured_node_names() == ["orthanc"]
    dialog = ExportDialog(default_path=tmp_path / "chest.dcm", nodes=configured_node_names())
    qtbot.addWidget(dialog)
    dialog.send_combo.setCurrentIndex(1)
    dialog.format_combo.setCurrentIndex(2)  # DICOM Secondary Capture
    options = dialog.options()
    assert options.send_to == "orthanc" and options.path.suffix == ".dcm"
    dialog.format_combo.setCurrentIndex(0)  # PNG: nothing to send
    assert dialog.options().send_to is None

    image = load_image(make_dicom(tmp_path / "src.dcm"))
    request = ExportRequest(image=image, voi=WINDOW, prediction=make_prediction(image.image_id),
                            created=FIXED_TIME)
    job = export_from_state(None, request, options.path, send_to=options.send_to)
    failures: list[str] = []
    job.failed.connect(failures.append)
    with qtbot.waitSignal(job.sent, timeout=60000) as sent:
        pass
    assert failures == []
    assert "orthanc" in sent.args[0] and "C-STORE" in sent.args[0]
    written = pydicom.dcmread(options.path, stop_before_pixels=True)
    assert str(written.SOPInstanceUID) in orthanc.instance_uids()
