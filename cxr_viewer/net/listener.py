"""C-STORE SCP: receive pushed studies (and C-MOVE sub-operations) into a folder.

Each instance is checked before it is stored: a dataset that cannot be parsed, carries no image
(no Pixel Data) or whose native pixel data is shorter than its header says is answered with a
failure status (0xC000 "cannot understand", 0xA900 "does not match SOP class") and its bytes go to
the quarantine folder with a ``.txt`` saying why. Good instances are written atomically to
``<inbox>/<StudyInstanceUID>/<SOPInstanceUID>.dcm``. A handler never raises into pynetdicom, so
bad input never stops the listener. Only the allowed calling AE titles may associate, unless
``accept_any``.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxr_viewer.fsutil import atomic_write_bytes, atomic_write_text
from cxr_viewer.net.cache import StudyCache, safe_name
from cxr_viewer.net.dimse import TRANSFER_SYNTAXES
from cxr_viewer.net.errors import NetError

__all__ = ["StorageListener", "Arrival", "check_instance", "server_ssl_context"]

STATUS_SUCCESS = 0x0000
STATUS_CANNOT_UNDERSTAND = 0xC000
STATUS_NOT_MATCHING_SOP_CLASS = 0xA900
STATUS_OUT_OF_RESOURCES = 0xA700

_NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
           "1.2.840.10008.1.2.1.99"}


@dataclass(frozen=True)
class Arrival:
    """One stored instance."""

    path: Path
    study_uid: str
    sop_uid: str
    modality: str
    calling_ae: str
    received_at: float


def check_instance(ds: Any, transfer_syntax: str) -> tuple[int, str] | None:
    """``None`` when ``ds`` is an image the viewer can store, else ``(status, reason)``."""
    for kw in ("SOPInstanceUID", "StudyInstanceUID"):
        if not str(ds.get(kw, "") or "").strip():
            return STATUS_CANNOT_UNDERSTAND, f"no {kw}"
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        return STATUS_NOT_MATCHING_SOP_CLASS, "not an image (no Pixel Data)"
    if "PixelData" in ds:
        try:
            rows, cols = int(ds.Rows), int(ds.Columns)
            bits = int(ds.BitsAllocated)
            spp = int(ds.get("SamplesPerPixel", 1) or 1)
            frames = int(ds.get("NumberOfFrames", 1) or 1)
        except (AttributeError, TypeError, ValueError) as exc:
            return STATUS_CANNOT_UNDERSTAND, f"image header incomplete or invalid ({exc})"
        if rows <= 0 or cols <= 0 or bits not in (1, 8, 16, 32):
            return STATUS_CANNOT_UNDERSTAND, f"invalid image size {rows}x{cols}, {bits} bits"
        data = ds.PixelData
        if transfer_syntax in _NATIVE:
            need = (rows * cols * spp * frames * bits + 7) // 8
            if len(data) < need:
                return (
                    STATUS_CANNOT_UNDERSTAND,
                    f"pixel data truncated ({len(data)} bytes, header says {need})",
                )
        elif not bytes(data[:4]) == b"\xfe\xff\x00\xe0":
            return STATUS_CANNOT_UNDERSTAND, "compressed pixel data is not encapsulated"
    return None


def server_ssl_context(cert_file: str, key_file: str, ca_file: str = "") -> ssl.SSLContext:
    """TLS for the listener; with ``ca_file`` the callers must present a certificate it signed."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca_file or None)
    ctx.load_cert_chain(cert_file, key_file)
    ctx.verify_mode = ssl.CERT_REQUIRED if ca_file else ssl.CERT_NONE
    return ctx


class StorageListener:
    """A running C-STORE SCP. ``start()``, then ``stop()`` (also a context manager).

    Parameters
    ----------
    inbox
        Folder of received studies.
    ae_title, port, host
        What we listen as; port 0 picks a free port (see :attr:`port` after ``start``).
    accept_from
        Calling AE titles allowed to associate; ``None`` with ``accept_any`` = anyone.
    quarantine
        Folder for refused instances (default ``<inbox>-quarantine`` beside the inbox).
    on_arrival
        Called (on pynetdicom's thread) after each stored instance.
    ssl_context
        TLS (see :func:`server_ssl_context`).
    """

    def __init__(
        self,
        inbox: str | Path,
        ae_title: str = "CXRVIEWER",
        port: int = 11112,
        host: str = "",
        accept_from: tuple[str, ...] | list[str] | None = None,
        accept_any: bool = False,
        quarantine: str | Path | None = None,
        on_arrival: Callable[[Arrival], None] | None = None,
        on_refused: Callable[[str, str], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        cache: StudyCache | None = None,
    ) -> None:
        if not accept_any and not accept_from:
            raise NetError(
                f"listener {ae_title}",
                "no calling AE title is allowed: configure a node, or give --accept-from "
                "AE,... or --accept-any",
            )
        # The sender may delete its copy once we answer Success: every file is fsynced first.
        # (A C-MOVE into the retrieve cache passes its own, non-durable, cache.)
        self.cache = cache if cache is not None else StudyCache(inbox, durable=True)
        self.inbox = Path(inbox)
        self.quarantine = Path(quarantine) if quarantine else self.inbox.with_name(
            self.inbox.name + "-quarantine"
        )
        self.ae_title = ae_title
        self.host = host
        self.port = port
        self.accept_from = None if accept_any else [a.strip() for a in accept_from or ()]
        self.on_arrival = on_arrival
        self.on_refused = on_refused
        self.ssl_context = ssl_context
        self.stored = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._ae: Any = None
        self._server: Any = None

    # -- event handlers (pynetdicom threads): never raise ------------------------------------
    def _quarantine(self, event: Any, reason: str) -> None:
        try:
            name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
            sop = str(getattr(event.request, "AffectedSOPInstanceUID", "") or "")
            if sop:
                name += f"-{safe_name(sop)}"
            try:
                data = event.encoded_dataset()
            except Exception:  # noqa: BLE001 - keep whatever bytes arrived
                data = event.request.DataSet.getvalue()
            atomic_write_bytes(self.quarantine / f"{name}.dcm", data)
            calling = event.assoc.requestor.ae_title
            atomic_write_text(
                self.quarantine / f"{name}.txt", f"from {calling}: {reason}\n"
            )
        except Exception:  # noqa: BLE001 - a full disk must not stop the listener
            pass
        with self._lock:
            self.refused += 1
        if self.on_refused is not None:
            with contextlib.suppress(Exception):
                self.on_refused(str(event.assoc.requestor.ae_title), reason)

    def _on_store(self, event: Any) -> int:
        try:
            ts = str(event.context.transfer_syntax)
            try:
                # pydicom converts element values lazily: checking them is part of decoding.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds = event.dataset
                    problem = check_instance(ds, ts)
                    study_uid = str(ds.get("StudyInstanceUID", ""))
                    sop_uid = str(ds.get("SOPInstanceUID", ""))
                    modality = str(ds.get("Modality", "") or "")
            except Exception as exc:  # noqa: BLE001 - undecodable bytes
                self._quarantine(event, f"undecodable dataset ({type(exc).__name__}: {exc})")
                return STATUS_CANNOT_UNDERSTAND
            if problem is not None:
                self._quarantine(event, problem[1])
                return problem[0]
            if sop_uid != str(event.request.AffectedSOPInstanceUID):
                self._quarantine(event, "SOP Instance UID differs from the C-STORE request's")
                return STATUS_NOT_MATCHING_SOP_CLASS
            try:
                path = self.cache.write_instance(study_uid, sop_uid, event.encoded_dataset())
            except OSError:
                return STATUS_OUT_OF_RESOURCES
            with self._lock:
                self.stored += 1
            if self.on_arrival is not None:
                arrival = Arrival(
                    path, study_uid, sop_uid, modality,
                    str(event.assoc.requestor.ae_title), time.time(),
                )
                with contextlib.suppress(Exception):
                    self.on_arrival(arrival)
            return STATUS_SUCCESS
        except Exception as exc:  # noqa: BLE001 - last resort: answer, keep serving
            with contextlib.suppress(Exception):
                self._quarantine(event, f"internal error ({exc})")
            return STATUS_OUT_OF_RESOURCES

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> StorageListener:
        from pynetdicom import AE, AllStoragePresentationContexts, evt

        ae = AE(ae_title=self.ae_title)
        ae.maximum_pdu_size = 0
        ae.network_timeout = 60
        ae.acse_timeout = 30
        ae.dimse_timeout = 60
        ae.maximum_associations = 16
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(cx.abstract_syntax, TRANSFER_SYNTAXES)
        ae.add_supported_context("1.2.840.10008.1.1")  # Verification (C-ECHO)
        if self.accept_from is not None:
            ae.require_calling_aet = self.accept_from
        self.inbox.mkdir(parents=True, exist_ok=True)
        try:
            self._server = ae.start_server(
                (self.host, self.port),
                block=False,
                ssl_context=self.ssl_context,
                evt_handlers=[(evt.EVT_C_STORE, self._on_store)],
            )
        except OSError as exc:
            ae.shutdown()
            raise NetError(
                f"listener {self.ae_title}",
                f"cannot listen on port {self.port} ({exc.strerror or exc})",
            ) from exc
        self._ae = ae
        self.port = int(self._server.server_address[1])
        return self

    def stop(self) -> None:
        if self._ae is not None:
            self._ae.shutdown()
            self._ae = None
            self._server = None

    @property
    def running(self) -> bool:
        return self._ae is not None

    def __enter__(self) -> StorageListener:
        return self.start() if not self.running else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

