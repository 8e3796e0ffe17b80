"""A real Orthanc PACS for the networking tests (and the benchmark).

Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``) is started on 127.0.0.1 with free ports, a
temporary storage folder and a config that enables the DICOMweb plugin and declares the test's
own AE (``CXRTEST`` at the test listener's port) as a modality. Fixtures are uploaded through the
REST API, as Orthanc's own orthanc-tests do. Every server is stopped at the end of its test.

Tests that need Orthanc skip with the reason when the binary is not installed (CI installs it).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

ORTHANC_BINARIES = ("/usr/sbin/Orthanc", "Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
TEST_AE = "CXRTEST"
ORTHANC_AE = "ORTHANC"


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies (even by a crash), so no Orthanc
    outlives its test run."""
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def orthanc_binary() -> str | None:
    for b in ORTHANC_BINARIES:
        found = shutil.which(b)
        if found:
            return found
    return None


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OrthancServer:
    """One Orthanc process; ``start()`` waits until its REST API answers."""

    def __init__(self, workdir: Path, listener_port: int | None = None,
                 extra_config: dict[str, Any] | None = None) -> None:
        binary = orthanc_binary()
        if binary is None:
            pytest.skip("Orthanc is not installed (Debian packages orthanc, orthanc-dicomweb)")
        if not DICOMWEB_PLUGIN.is_file():
            pytest.skip(f"Orthanc DICOMweb plugin missing: {DICOMWEB_PLUGIN} (orthanc-dicomweb)")
        self.binary = binary
        self.workdir = workdir
        self.storage = workdir / "storage"
        self.storage.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.listener_port = listener_port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "orthanc.log"
        self.extra_config = extra_config or {}
        self.scheme = "https" if self.extra_config.get("SslEnabled") else "http"

    @property
    def rest(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.rest}/dicom-web"

    def config(self) -> dict[str, Any]:
        return {
            "Name": "cxr-test-orthanc",
            "StorageDirectory": str(self.storage),
            "IndexDirectory": str(self.storage),
            "StorageCompression": False,
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": ORTHANC_AE,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowFind": False,
            "DicomAlwaysAllowGet": False,
            "DicomAlwaysAllowMove": False,
            "DicomModalities": {"cxr": [TEST_AE, "127.0.0.1", self.listener_port]},
            "DicomScuTimeout": 10,
            "DicomScpTimeout": 30,
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
            "HttpTimeout": 10,
            "ConcurrentJobs": 2,
            "SaveJobs": False,
            "LogExportedResources": False,
        } | self.extra_config

    def start(self) -> OrthancServer:
        cfg = self.workdir / "orthanc.json"
        cfg.write_text(json.dumps(self.config(), indent=1))
        self.proc = subprocess.Popen(
            [self.binary, f"--logdir={self.workdir}", str(cfg)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.proc.returncode}; see {self.workdir}")
            try:
                if self.scheme == "http" and not self.extra_config.get("AuthenticationEnabled"):
                    self.get("/system")
                else:
                    socket.create_connection(("127.0.0.1", self.http_port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("Orthanc did not answer within 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """Stop at once (SIGKILL): a server that dies mid-transfer."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    # REST
    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.rest + path, timeout=10) as r:  # noqa: S310 - loopback
            return json.loads(r.read())

    def upload(self, data: bytes) -> dict[str, Any]:
        req = urllib.request.Request(self.rest + "/instances", data=data, method="POST")
        req.add_header("Content-Type", "application/dicom")
        with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - loopback
            return json.loads(r.read())

    def upload_files(self, files: list[Path]) -> None:
        for f in files:
            self.upload(f.read_bytes())

    def instance_uids(self) -> list[str]:
        """SOP Instance UIDs stored in Orthanc."""
        out = []
        for iid in self.get("/instances"):
            out.append(self.get(f"/instances/{iid}/simplified-tags")["SOPInstanceUID"])
        return out


def make_instance(
    study_uid: str,
    series_uid: str | None = None,
    *,
    patient_id: str = "PAT1",
    patient_name: str = "Test^Patient",
    modality: str = "CR",
    number: int = 1,
    size: int = 64,
    seed: int = 0,
    study_date: str = "20240105",
    accession: str = "ACC1",
) -> Dataset:
    """A small, valid 16-bit CR chest instance (real pixel bytes, unique SOP Instance UID)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = study_date
    ds.StudyTime = "101500"
    ds.AccessionNumber = accession
    ds.StudyDescription = "CHEST PA"
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.Modality = modality
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    rng = np.random.default_rng(seed)
    ds.PixelData = rng.integers(0, 4096, (size, size), dtype=np.uint16).tobytes()
    return ds


def encode(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def study_variant(src: Path, **tags: Any) -> Dataset:
    """The DICOM file ``src`` as another study (new Study/Series/SOP UIDs), with ``tags`` set
    (e.g. another StudyDate or PatientID): priors and non-priors for the pairing tests."""
    import pydicom

    ds = pydicom.dcmread(src)
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    for k, v in tags.items():
        setattr(ds, k, v)
    return ds


def cache_put(cache: Any, ds: Dataset, complete: bool = True) -> Path:
    """Put ``ds`` in a :class:`cxr_viewer.net.cache.StudyCache` as a (complete) study."""
    uid = str(ds.StudyInstanceUID)
    cache.begin(uid)
    path = cache.write_instance(uid, str(ds.SOPInstanceUID), encode(ds))
    if complete:
        cache.finish(uid, True, source="test", count=1)
    return path


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[OrthancServer]:
    """A started Orthanc with an empty database; stopped after the test."""
    server = OrthancServer(tmp_path / "orthanc").start()
    try:
        yield server
    finally:
        server.stop()
