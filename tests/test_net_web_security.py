"""DICOMweb with HTTP basic authentication (real Orthanc) and over HTTPS: the password
comes from the secret store (never the settings file), wrong credentials and an untrusted
certificate are refused with a message, a trusted certificate works."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from cxr_viewer.net import client
from cxr_viewer.net.config import NetSettings, Node, NodeStore, SecretStore
from cxr_viewer.net.errors import NetError
from tests.orthanc_fixture import OrthancServer, make_instance
from tests.test_net_listener import _self_signed


def test_basic_auth_password_from_the_secret_store(tmp_path: Path) -> None:
    server = OrthancServer(tmp_path / "o", extra_config={
        "AuthenticationEnabled": True, "RegisteredUsers": {"reader": "Pa55-word"},
    }).start()
    try:
        node = Node("web", dicomweb_url=server.dicomweb, auth="basic", username="reader")
        store = NodeStore(tmp_path / "nodes.json")
        store.put(node)
        store.save()
        secrets = SecretStore(use_keyring=False)
        with pytest.raises(NetError, match="no password for user 'reader'"):
            client.echo(node, NetSettings(), secrets)
        secrets.set("web", "password", "wrong")
        with pytest.raises(NetError, match="HTTP 401 .*wrong credentials"):
            client.echo(node, NetSettings(), secrets)
        secrets.set("web", "password", "Pa55-word")
        assert client.echo(node, NetSettings(), secrets) == "QIDO-RS"
        f = tmp_path / "a.dcm"
        make_instance(generate_uid()).save_as(f, enforce_file_format=True)
        assert client.send(node, [f], NetSettings(), secrets) == (1, "STOW-RS")
        assert len(client.find(node, NetSettings(), secrets)) == 1
        assert "Pa55-word" not in (tmp_path / "nodes.json").read_text()
    finally:
        server.stop()


def test_https_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    """Orthanc 1.10's own HTTPS (Debian build) resets TLS connections after the handshake here,
    so the server is Python's HTTP server behind a real TLS socket with a self-signed
    certificate; what is tested is the client's refusal and its message."""
    pytest.importorskip("cryptography", reason="cryptography makes the test certificates")
    import http.server
    import ssl
    import threading

    cert, key = _self_signed(tmp_path, "server")
    other, _ = _self_signed(tmp_path, "other-ca")

    class Qido(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            body = b"[]"
            self.send_response(200)
            self.send_header("Content-Type", "application/dicom+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Qido)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{httpd.server_address[1]}/dicom-web"
    try:
        untrusted = Node("web", dicomweb_url=url, ca_file=str(other))
        with pytest.raises(NetError, match="TLS certificate refused .*self.signed"):
            client.echo(untrusted, NetSettings())
        system_store = Node("web", dicomweb_url=url)
        with pytest.raises(NetError, match="TLS certificate refused"):
            client.find(system_store, NetSettings())
        trusted = Node("web", dicomweb_url=url, ca_file=str(cert))
        assert client.echo(trusted, NetSettings()) == "QIDO-RS"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
