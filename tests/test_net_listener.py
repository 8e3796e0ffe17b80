"""The C-STORE listener: bad input is refused and quarantined while it keeps serving, concurrent
pushes lose nothing, only allowed AE titles may send, TLS certificates are checked; and Orthanc
(a real PACS) pushing to it, with dcmtk's storescu as a second real peer."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cxr_viewer.net import client, dimse
from cxr_viewer.net.config import NetSettings, Node
from cxr_viewer.net.errors import NetError
from cxr_viewer.net.listener import Arrival, StorageListener, server_ssl_context
from tests.conftest import REPO_ROOT
from tests.orthanc_fixture import (
    TEST_AE,
    OrthancServer,
    encode,
    free_port,
    make_instance,
    orthanc,  # noqa: F401 - pytest fixture
)

SENDER = "SENDER"


def _listener(tmp_path: Path, **kw) -> StorageListener:
    kw.setdefault("accept_from", [SENDER])
    return StorageListener(tmp_path / "inbox", "CXRVIEWER", 0, host="127.0.0.1", **kw).start()


def _node(listener: StorageListener, **kw) -> Node:
    return Node("me", listener.ae_title, "127.0.0.1", listener.port, **kw)


def _write(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def _send_raw(listener: StorageListener, path: Path, sop_class: str) -> int:
    """C-STORE a file's bytes as they are (pynetdicom sends a path without decoding it)."""
    from pynetdicom import AE, _config

    _config.STORE_SEND_CHUNKED_DATASET = True
    ae = AE(ae_title=SENDER)
    ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", listener.port, ae_title=listener.ae_title)
    assert assoc.is_established
    try:
        status = assoc.send_c_store(path)
        return int(status.Status)
    finally:
        assoc.release()
        ae.shutdown()


def test_malformed_and_non_image_are_refused_quarantined_and_listener_keeps_serving(
    tmp_path: Path,
) -> None:
    listener = _listener(tmp_path)
    try:
        # 1) a dataset whose bytes are garbage after a valid file meta header
        good = make_instance(generate_uid(), seed=1)
        raw = encode(good)
        meta_end = raw.index(b"\x08\x00\x16\x00")  # first dataset element (0008,0016)
        garbage = tmp_path / "garbage.dcm"
        body = b"\x08\x00\x16\x00UI\x1a\x00" + b"1.2.840.10008.5.1.4.1.1.1\x00"
        body += b"\x08\x00\x18\x00ZZ\xff\xff" + os.urandom(64)  # no such VR as ZZ
        garbage.write_bytes(raw[:meta_end] + body)
        status = _send_raw(listener, garbage, good.SOPClassUID)
        assert status == 0xC000
        # 2) pixel data shorter than the header says
        short = make_instance(generate_uid(), seed=2)
        short.PixelData = short.PixelData[:100]
        status = _send_raw(listener, _write(short, tmp_path / "short.dcm"), short.SOPClassUID)
        assert status == 0xC000
        # 3) not an image at all (no Pixel Data)
        sr = make_instance(generate_uid(), seed=3)
        del sr.PixelData
        status = _send_raw(listener, _write(sr, tmp_path / "sr.dcm"), sr.SOPClassUID)
        assert status == 0xA900
        # ...and a good instance right after is stored
        ok = _write(make_instance(generate_uid(), seed=4), tmp_path / "ok.dcm")
        assert dimse.store_files(_node(listener), [ok], SENDER) == 1
    finally:
        listener.stop()
    assert listener.refused == 3 and listener.stored == 1
    reasons = sorted(p.read_text() for p in listener.quarantine.glob("*.txt"))
    assert len(reasons) == 3 and len(list(listener.quarantine.glob("*.dcm"))) == 3
    assert any("undecodable" in r for r in reasons)
    assert any("pixel data truncated" in r for r in reasons)
    assert any("not an image" in r for r in reasons)
    stored = list((tmp_path / "inbox").rglob("*.dcm"))
    assert len(stored) == 1 and dcmread(stored[0]).pixel_array.shape == (64, 64)


def test_200_instances_over_4_concurrent_associations(tmp_path: Path) -> None:
    arrivals: list[Arrival] = []
    lock = threading.Lock()

    def arrived(a: Arrival) -> None:
        with lock:
            arrivals.append(a)

    listener = _listener(tmp_path, on_arrival=arrived)
    study = generate_uid()
    src = tmp_path / "src"
    src.mkdir()
    files = [_write(make_instance(study, number=i, seed=i, size=32), src / f"{i}.dcm")
             for i in range(200)]
    sent_uids = {str(dcmread(f).SOPInstanceUID) for f in files}
    errors: list[BaseException] = []

    def push(chunk: list[Path]) -> None:
        try:
            dimse.store_files(_node(listener), chunk, SENDER)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(files[i::4],)) for i in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        listener.stop()
    assert errors == []
    stored = sorted((tmp_path / "inbox").rglob("*.dcm"))
    assert len(stored) == 200
    assert {str(dcmread(f).SOPInstanceUID) for f in stored} == sent_uids
    assert len(arrivals) == 200 and len({a.sop_uid for a in arrivals}) == 200
    assert listener.stored == 200 and listener.refused == 0


def test_only_allowed_calling_ae_titles(tmp_path: Path) -> None:
    listener = _listener(tmp_path)
    f = _write(make_instance(generate_uid()), tmp_path / "x.dcm")
    try:
        with pytest.raises(NetError, match="association rejected.*Calling AE title not recognised"):
            dimse.store_files(_node(listener), [f], "INTRUDER")
        assert dimse.store_files(_node(listener), [f], SENDER) == 1
    finally:
        listener.stop()
    with pytest.raises(NetError, match="no calling AE title is allowed"):
        StorageListener(tmp_path / "inbox2", "CXRVIEWER", 0)


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        ), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    return cert_file, key_file


def test_bad_tls_certificate_is_refused_with_a_message(tmp_path: Path) -> None:
    pytest.importorskip("cryptography", reason="cryptography makes the test certificates")
    server_cert, server_key = _self_signed(tmp_path, "listener")
    other_ca, _ = _self_signed(tmp_path, "some-other-ca")
    listener = _listener(tmp_path, ssl_context=server_ssl_context(str(server_cert),
                                                                  str(server_key)))
    try:
        untrusted = _node(listener, tls=True, ca_file=str(other_ca))
        with pytest.raises(NetError, match="TLS certificate refused: self.signed certificate"):
            dimse.echo(untrusted, SENDER)
        system_store = _node(listener, tls=True)  # self-signed: not in the system store either
        with pytest.raises(NetError, match="TLS certificate refused"):
            dimse.echo(system_store, SENDER)
        no_tls = _node(listener)  # plain DICOM to a TLS port: an error, not a hang or success
        with pytest.raises(NetError):
            dimse.echo(no_tls, SENDER)
        trusted = _node(listener, tls=True, ca_file=str(server_cert))
        dimse.echo(trusted, SENDER)
        f = _write(make_instance(generate_uid()), tmp_path / "tls.dcm")
        assert dimse.store_files(trusted, [f], SENDER) == 1
    finally:
        listener.stop()
    assert listener.stored == 1


def test_orthanc_pushes_to_the_listener(orthanc: OrthancServer, tmp_path: Path) -> None:  # noqa: F811
    """C-MOVE from Orthanc's side: Orthanc (real PACS) is the C-STORE SCU."""
    study = generate_uid()
    uids = set()
    for i in range(3):
        ds = make_instance(study, number=i, seed=i)
        orthanc.upload(encode(ds))
        uids.add(str(ds.SOPInstanceUID))
    listener = StorageListener(tmp_path / "inbox", TEST_AE, orthanc.listener_port,
                               host="127.0.0.1", accept_from=["ORTHANC"]).start()
    try:
        import json
        import urllib.request

        req = urllib.request.Request(
            f"{orthanc.rest}/modalities/cxr/store",
            data=json.dumps({"Resources": [orthanc.get("/studies")[0]], "Synchronous": True})
            .encode(), method="POST",
        )
        with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310 - loopback
            result = json.loads(r.read())
    finally:
        listener.stop()
    assert result["InstancesCount"] == 3 and result["FailedInstancesCount"] == 0
    assert {str(dcmread(f).SOPInstanceUID) for f in (tmp_path / "inbox").rglob("*.dcm")} == uids


def test_dcmtk_storescu_pushes_to_the_listener(tmp_path: Path) -> None:
    if shutil.which("storescu") is None:
        pytest.skip("dcmtk storescu is not installed (Debian package dcmtk)")
    listener = _listener(tmp_path)
    f = _write(make_instance(generate_uid(), seed=5), tmp_path / "d.dcm")
    try:
        out = subprocess.run(
            ["storescu", "-aet", SENDER, "-aec", listener.ae_title, "127.0.0.1",
             str(listener.port), str(f)], capture_output=True, text=True, timeout=60,
        )
    finally:
        listener.stop()
    assert out.returncode == 0, out.stderr
    assert listener.stored == 1


def test_cli_listen_stores_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    inbox = tmp_path / "inbox"
    env = os.environ | {
        "CXR_VIEWER_SETTINGS_DIR": str(tmp_path / "settings"),
        "CXR_VIEWER_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxr_viewer", "listen", "--port", str(port), "--ae", "LISTENER",
         "--host", "127.0.0.1", "--accept-from", SENDER, "--inbox", str(inbox)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "listening as LISTENER" in first, first + (proc.stderr.read() if proc.poll() else "")
        node = Node("cli", "LISTENER", "127.0.0.1", port)
        f = _write(make_instance(generate_uid(), seed=6), tmp_path / "c.dcm")
        assert client.send(node, [f], NetSettings(ae_title=SENDER)) == (1, "C-STORE")
        line = proc.stdout.readline()
        assert line.startswith("stored ") and str(inbox) in line
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "1 stored, 0 refused" in err
    assert len(list(inbox.rglob("*.dcm"))) == 1


def test_cli_listen_refuses_to_accept_nobody(tmp_path: Path) -> None:
    env = os.environ | {
        "CXR_VIEWER_SETTINGS_DIR": str(tmp_path / "settings"),
        "CXR_VIEWER_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    out = subprocess.run([sys.executable, "-m", "cxr_viewer", "listen", "--port", "0"],
                         capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60)
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "--accept-any" in out.stderr
