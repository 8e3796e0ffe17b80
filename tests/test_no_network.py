"""A reading workstation holds patient data: the app opens no network connection.

The whole main job runs in a fresh interpreter with a ``sys.addaudithook`` that records every
socket connect / sendto / name lookup to a non-local address family (AF_UNIX IPC to the X server
or D-Bus is local and allowed). This sees every connection made through Python's socket module
(urllib, requests, http.client, keras' downloaders); C++ code that opens sockets itself would not
be seen, so the same run also sets no proxy and asserts that nothing tried a name lookup.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

GUARD = r"""
import json, socket, sys
attempts = []
def hook(event, args):
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock = args[0]
        if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6):
            attempts.append([event, repr(args[1] if len(args) > 1 else None)])
    elif event in ("socket.getaddrinfo", "socket.gethostbyname", "urllib.Request"):
        attempts.append([event, repr(args[:2])])
sys.addaudithook(hook)
"""

JOB = r"""
import os, tempfile
from pathlib import Path
from cxr_viewer.cli import main
from cxr_viewer.io.sample import sample_study_dir
out = Path(tempfile.mkdtemp())
sample = sorted(str(p) for p in sample_study_dir().iterdir() if p.suffix == ".dcm")
assert main(["predict", *sample, "--out", str(out / "pred"), "--heatmaps"]) == 0
assert main(["export", sample[0], str(out / "export.png")]) == 0
assert main(["export", sample[0], str(out / "export.dcm")]) == 0

from PySide6.QtCore import QEventLoop, QTimer
from cxr_viewer.ui.app import make_app
from cxr_viewer.ui.main_window import MainWindow
app = make_app()
win = MainWindow(load_default_model=True)
win.show()
loop = QEventLoop()
got = []
win.analysis.camsReady.connect(lambda c: (got.append(c), loop.quit()))
win.analysis.failed.connect(lambda m: (got.append(m), loop.quit()))
win.open_paths(sample[:1])
QTimer.singleShot(240_000, loop.quit)
loop.exec()
# the prior lookup (local cache; a PACS only when a node is configured) has run too
lookup = win.workflow.priors
while lookup.lookups and lookup._inflight:
    app.processEvents()
print("prior lookups:", lookup.lookups, "of which PACS:", lookup.pacs_lookups)
win.shutdown(); win.close()
assert got and not isinstance(got[0], str), got
print("GUI analysed:", type(got[0]).__name__)
"""

PRIOR_JOB = r"""
import os, shutil, tempfile
from pathlib import Path
from PySide6.QtCore import QEventLoop, QTimer
from cxr_viewer.io.sample import PRIOR_FILE, generate_sample_study
from cxr_viewer.net.cache import StudyCache, default_cache_dir
sample = Path(tempfile.mkdtemp()) / "sample"
generate_sample_study(sample)
current = Path(tempfile.mkdtemp()) / "current"
current.mkdir()
for name in ("IM0001_CR.dcm", "IM0002_DX.dcm"):
    shutil.copy(sample / name, current / name)
import pydicom
prior = pydicom.dcmread(sample / PRIOR_FILE)
cache = StudyCache(default_cache_dir())
cache.begin(prior.StudyInstanceUID)
cache.write_instance(prior.StudyInstanceUID, prior.SOPInstanceUID, (sample / PRIOR_FILE).read_bytes())
cache.finish(prior.StudyInstanceUID, True)

from cxr_viewer.ui.app import make_app
from cxr_viewer.ui.main_window import MainWindow
app = make_app()
win = MainWindow()
win.show()
loop = QEventLoop()
done = []
win.workflow.priors.finished.connect(lambda key, result: (done.append(result), loop.quit()))
win.open_paths([str(current)])
QTimer.singleShot(60_000, loop.quit)
loop.exec()
lookup = win.workflow.priors
assert done and done[0].ref is not None, done
assert win.workflow.prior is not None and win.workflow.prior.key == prior.StudyInstanceUID
print("prior from", done[0].source, "lookups", lookup.lookups, "pacs", lookup.pacs_lookups)
assert lookup.pacs_lookups == 0
win.shutdown(); win.close()
"""


def _run_guarded(job: str, tmp_path: Path, timeout: int, **env_extra: str):
    """Run ``job`` under the connection GUARD in a fresh interpreter with the user's folders in
    ``tmp_path``; returns the finished process (rc checked) and the attempts it recorded."""
    code = GUARD + job + "\nprint('ATTEMPTS=' + json.dumps(attempts))\n"
    env = {
        k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")
    } | {
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "CXR_VIEWER_SETTINGS_DIR": str(tmp_path / "settings"),
        "HOME": str(tmp_path),
    } | env_extra
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    line = [x for x in out.stdout.splitlines() if x.startswith("ATTEMPTS=")][-1]
    return out, json.loads(line.removeprefix("ATTEMPTS="))


@pytest.mark.slow
def test_main_job_opens_no_network_connection(tmp_path) -> None:
    if not (REPO_ROOT / "models" / "default" / "model.json").is_file():
        pytest.fail("models/default is missing: the bundled model is part of the repository")
    out, attempts = _run_guarded(JOB, tmp_path, 600)
    assert "GUI analysed: CamResult" in out.stdout
    assert attempts == [], f"network activity: {attempts}"


def test_prior_lookup_opens_no_connection_without_a_node(tmp_path) -> None:
    """Opening a dated study runs the prior lookup (issue 14); with no node configured it reads
    the local cache (and finds the prior there) and touches no network."""
    out, attempts = _run_guarded(
        PRIOR_JOB, tmp_path, 300, CXR_VIEWER_DATA_DIR=str(tmp_path / "data")
    )
    assert "prior from local cache" in out.stdout
    assert attempts == [], f"network activity: {attempts}"


def test_guard_sees_a_connection_attempt() -> None:
    """The guard itself works: a connect to a closed local port is recorded."""
    code = GUARD + (
        "import socket\n"
        "s = socket.socket()\n"
        "try:\n    s.connect(('127.0.0.1', 9))\nexcept OSError:\n    pass\n"
        "print('ATTEMPTS=' + json.dumps(attempts))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    line = [x for x in out.stdout.splitlines() if x.startswith("ATTEMPTS=")][-1]
    attempts = json.loads(line.removeprefix("ATTEMPTS="))
    assert attempts and attempts[0][0] == "socket.connect"
