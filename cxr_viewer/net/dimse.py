"""DIMSE client on pynetdicom: C-ECHO, Study Root C-FIND, C-GET, C-MOVE and C-STORE.

Every function opens one association to the node, does its work and releases it. Failures become
a :class:`~cxr_viewer.net.errors.NetError` whose message says what happened: connection refused or
timed out, the association rejected (and the peer's reason, e.g. "called AE title not
recognised"), aborted, a TLS certificate refused, or the peer's failure status.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from cxr_viewer.net.config import Node
from cxr_viewer.net.errors import Cancelled, NetError

__all__ = [
    "DimseTimeouts",
    "StudyMatch",
    "echo",
    "find_studies",
    "get_study",
    "move_study",
    "store_files",
    "client_ssl_context",
    "STORAGE_SOP_CLASSES",
    "TRANSFER_SYNTAXES",
]

#: Transfer syntaxes we propose and accept: everything the viewer can decode.
TRANSFER_SYNTAXES = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
]

#: Storage SOP classes requested for C-GET (one presentation context per class and transfer
#: syntax, so the peer can send each file as stored: at most 128 contexts in an association).
STORAGE_SOP_CLASSES = [
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray, for presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray, for processing
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame grayscale byte SC
    "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame grayscale word SC
    "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame true colour SC
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR (AI results)
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.30",  # Parametric Map
]
_NATIVE_ONLY = {
    "1.2.840.10008.5.1.4.1.1.88.22",
    "1.2.840.10008.5.1.4.1.1.88.33",
    "1.2.840.10008.5.1.4.1.1.11.1",
    "1.2.840.10008.5.1.4.1.1.30",
}

_FIND_MODEL = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Q/R Find
_GET_MODEL = "1.2.840.10008.5.1.4.1.2.2.3"
_MOVE_MODEL = "1.2.840.10008.5.1.4.1.2.2.2"
_VERIFICATION = "1.2.840.10008.1.1"


@dataclass(frozen=True)
class DimseTimeouts:
    """Seconds: TCP connect, association negotiation, each DIMSE message, socket idle."""

    connect: float = 4.0
    acse: float = 10.0
    dimse: float = 60.0
    network: float = 60.0


DEFAULT_TIMEOUTS = DimseTimeouts()


@dataclass(frozen=True)
class StudyMatch:
    """One study found by C-FIND or QIDO-RS."""

    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    accession: str = ""
    study_date: str = ""
    study_time: str = ""
    description: str = ""
    modalities: tuple[str, ...] = ()
    num_series: int | None = None
    num_instances: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "StudyInstanceUID": self.study_uid,
            "PatientID": self.patient_id,
            "PatientName": self.patient_name,
            "PatientBirthDate": self.patient_birth_date,
            "AccessionNumber": self.accession,
            "StudyDate": self.study_date,
            "StudyTime": self.study_time,
            "StudyDescription": self.description,
            "ModalitiesInStudy": list(self.modalities),
            "NumberOfStudyRelatedSeries": self.num_series,
            "NumberOfStudyRelatedInstances": self.num_instances,
        }

    @classmethod
    def from_dataset(cls, ds: Dataset) -> StudyMatch:
        def s(kw: str) -> str:
            v = ds.get(kw, "")
            return "" if v is None else str(v)

        def n(kw: str) -> int | None:
            v = ds.get(kw, None)
            try:
                return int(v) if v not in (None, "") else None
            except (TypeError, ValueError):
                return None

        mods = ds.get("ModalitiesInStudy", "")
        if isinstance(mods, str):
            mods_t = tuple(m for m in mods.split("\\") if m)
        else:
            mods_t = tuple(str(m) for m in mods if m)
        return cls(
            study_uid=s("StudyInstanceUID"),
            patient_id=s("PatientID"),
            patient_name=s("PatientName"),
            patient_birth_date=s("PatientBirthDate"),
            accession=s("AccessionNumber"),
            study_date=s("StudyDate"),
            study_time=s("StudyTime"),
            description=s("StudyDescription"),
            modalities=mods_t,
            num_series=n("NumberOfStudyRelatedSeries"),
            num_instances=n("NumberOfStudyRelatedInstances"),
        )


# --------------------------------------------------------------------------------------------
# TLS


def client_ssl_context(node: Node) -> ssl.SSLContext:
    """A verifying TLS client context for ``node`` (its CA file, optional client certificate)."""
    try:
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=node.ca_file or None
        )
        if node.client_cert:
            ctx.load_cert_chain(node.client_cert, node.client_key or None)
    except (OSError, ssl.SSLError) as exc:
        raise NetError(node.label, f"TLS setup failed: {exc}") from exc
    return ctx


def _diagnose_connect(node: Node, timeouts: DimseTimeouts) -> str | None:
    """After a failed association: find out why by connecting once more (and shaking hands).
    ``None`` when the connection (and TLS handshake) works."""
    try:
        sock = socket.create_connection((node.host, node.port), timeout=timeouts.connect)
    except TimeoutError:
        return f"no answer within {timeouts.connect:g} s (host down or port filtered)"
    except ConnectionRefusedError:
        return "connection refused (nothing listening on that port: is the PACS running?)"
    except socket.gaierror as exc:
        return f"unknown host {node.host!r} ({exc.strerror or exc})"
    except OSError as exc:
        return f"cannot connect ({exc.strerror or exc})"
    with contextlib.closing(sock):
        if node.tls:
            try:
                ctx = client_ssl_context(node)
                with ctx.wrap_socket(sock, server_hostname=node.host):
                    pass
            except ssl.SSLCertVerificationError as exc:
                return f"TLS certificate refused: {exc.verify_message or exc.reason}"
            except (ssl.SSLError, OSError) as exc:
                return f"TLS handshake failed: {exc}"
    return None


# --------------------------------------------------------------------------------------------
# Associations


def _make_ae(local_ae: str, timeouts: DimseTimeouts) -> Any:
    from pynetdicom import AE, _config

    # Send files by path without decoding them first (streamed in chunks, as stored).
    _config.STORE_SEND_CHUNKED_DATASET = True
    ae = AE(ae_title=local_ae)
    ae.connection_timeout = timeouts.connect
    ae.acse_timeout = timeouts.acse
    ae.dimse_timeout = timeouts.dimse
    ae.network_timeout = timeouts.network
    ae.maximum_pdu_size = 0  # unlimited: fewer, larger P-DATA PDUs
    return ae


@contextlib.contextmanager
def _associate(
    node: Node,
    local_ae: str,
    contexts: list[Any],
    timeouts: DimseTimeouts,
    ext_neg: list[Any] | None = None,
    evt_handlers: list[Any] | None = None,
) -> Iterator[Any]:
    if not node.has_dimse:
        raise NetError(node.label, "has no DIMSE address (AE title, host, port)")
    # Connect (and shake hands) once first: the cause of a failure is then known exactly, and
    # pynetdicom's failed-connect path (which leaks its socket) is not taken.
    cause = _diagnose_connect(node, timeouts)
    if cause is not None:
        raise NetError(node.label, cause)
    ae = _make_ae(local_ae, timeouts)
    tls_args = (client_ssl_context(node), node.host) if node.tls else None
    # pynetdicom (3.0) drops its socket without closing it when the shutdown of a connection
    # that the peer already closed fails; keep a handle to close it ourselves.
    sockets: list[Any] = []
    create = ae._create_socket

    def tracked_socket(*args: Any, **kwargs: Any) -> Any:
        sock = create(*args, **kwargs)
        sockets.append(sock.socket)
        return sock

    ae._create_socket = tracked_socket
    try:
        yield from _run_association(
            ae, node, local_ae, contexts, timeouts, ext_neg, evt_handlers, tls_args
        )
    finally:
        ae.shutdown()
        for raw in sockets:
            with contextlib.suppress(Exception):
                raw.close()


#: Extra association attempts when the peer's answer was lost to an abort (see below).
REJECT_RETRIES = 2


def _run_association(
    ae: Any,
    node: Node,
    local_ae: str,
    contexts: list[Any],
    timeouts: DimseTimeouts,
    ext_neg: list[Any] | None,
    evt_handlers: list[Any] | None,
    tls_args: Any,
) -> Iterator[Any]:
    def associate() -> Any:
        return ae.associate(
            node.host,
            int(node.port),
            contexts=contexts,
            ae_title=node.ae_title,
            ext_neg=ext_neg,
            tls_args=tls_args,
            evt_handlers=evt_handlers,
            max_pdu=0,
        )

    assoc = associate()
    # A peer that rejects the association (A-ASSOCIATE-RJ) and closes the socket at once is
    # sometimes seen as an abort: the connection closed before the reject PDU was taken in
    # (seen with Orthanc on a loaded machine). Asking again gives the peer's real answer, and
    # with it the reason the user needs ("called AE title not recognised").
    for _ in range(REJECT_RETRIES):
        if assoc.is_established or assoc.is_rejected or not assoc.is_aborted:
            break
        if _diagnose_connect(node, timeouts) is not None:
            break
        time.sleep(0.2)
        assoc = associate()
    if not assoc.is_established:
        if assoc.is_rejected:
            rsp = assoc.acceptor.primitive
            reason = getattr(rsp, "reason_str", "") or "no reason given"
            raise NetError(
                node.label,
                f"association rejected by the peer ({reason}; "
                f"we called AE title {node.ae_title!r} as {local_ae!r})",
            )
        # A failed connect also ends as "aborted": connect again to tell the cases apart.
        cause = _diagnose_connect(node, timeouts)
        if cause is None:
            cause = (
                "association aborted by the peer during negotiation (a PACS does this when it "
                f"does not accept the called AE title {node.ae_title!r} or our AE title "
                f"{local_ae!r})"
            ) if assoc.is_aborted else (
                "the peer closed the connection during association (not DICOM, or expects TLS?)"
            )
        raise NetError(node.label, cause)
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def _context(abstract: str, syntaxes: list[str] | None = None) -> Any:
    from pynetdicom.presentation import build_context

    return build_context(abstract, syntaxes or [ExplicitVRLittleEndian, ImplicitVRLittleEndian])


def _status_text(status: Dataset | None) -> str:
    if status is None or "Status" not in status:
        return "no response (timed out or connection lost)"
    code = int(status.Status)
    comment = str(status.get("ErrorComment", "") or "")
    return f"status 0x{code:04X}" + (f" ({comment})" if comment else "")


def echo(node: Node, local_ae: str = "CXRVIEWER", timeouts: DimseTimeouts = DEFAULT_TIMEOUTS) -> None:
    """C-ECHO ``node``; returns when it answered Success, raises :class:`NetError` otherwise."""
    with _associate(node, local_ae, [_context(_VERIFICATION)], timeouts) as assoc:
        status = assoc.send_c_echo()
        if status is None or "Status" not in status or int(status.Status) != 0:
            raise NetError(node.label, f"C-ECHO failed: {_status_text(status)}")


def study_query(
    patient_id: str = "",
    patient_name: str = "",
    accession: str = "",
    study_date: str = "",
    modality: str = "",
    study_uid: str = "",
) -> Dataset:
    """A Study Root STUDY-level identifier with the return keys the dialog shows."""
    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    q.StudyInstanceUID = study_uid
    q.PatientID = patient_id
    q.PatientName = patient_name
    q.PatientBirthDate = ""
    q.AccessionNumber = accession
    q.StudyDate = study_date
    q.StudyTime = ""
    q.StudyDescription = ""
    q.ModalitiesInStudy = modality
    q.NumberOfStudyRelatedSeries = ""
    q.NumberOfStudyRelatedInstances = ""
    return q


def find_studies(
    node: Node,
    query: Dataset,
    local_ae: str = "CXRVIEWER",
    timeouts: DimseTimeouts = DEFAULT_TIMEOUTS,
    limit: int = 1000,
) -> list[StudyMatch]:
    """Study Root C-FIND; at most ``limit`` matches (the rest is cancelled)."""
    out: list[StudyMatch] = []
    with _associate(node, local_ae, [_context(_FIND_MODEL)], timeouts) as assoc:
        for status, ident in assoc.send_c_find(query, _FIND_MODEL):
            if status is None or "Status" not in status:
                raise NetError(node.label, f"C-FIND failed: {_status_text(status)}")
            code = int(status.Status)
            if code in (0xFF00, 0xFF01):
                if ident is not None:
                    out.append(StudyMatch.from_dataset(ident))
                if len(out) >= limit:
                    assoc.abort()
                    break
            elif code == 0:
                break
            else:
                raise NetError(node.label, f"C-FIND failed: {_status_text(status)}")
    return out


def _retrieve_identifier(study_uid: str) -> Dataset:
    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    q.StudyInstanceUID = study_uid
    return q


#: ``sink(study_uid, sop_uid, encoded_file_bytes) -> None`` writes one instance (atomically).
Sink = Callable[[str, str, bytes], None]
#: ``progress(done, total_or_None)``
Progress = Callable[[int, "int | None"], None]


def get_study(
    node: Node,
    study_uid: str,
    sink: Sink,
    local_ae: str = "CXRVIEWER",
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    timeouts: DimseTimeouts = DEFAULT_TIMEOUTS,
) -> int:
    """C-GET a study; each instance goes to ``sink`` as it arrives. Returns the count received.

    Raises :class:`NetError` when the peer fails, the connection drops (the instances already
    written are complete files; the caller does not mark the study complete) or on ``cancel``.
    """
    from pynetdicom import evt
    from pynetdicom.pdu_primitives import SCP_SCU_RoleSelectionNegotiation

    contexts = [_context(_GET_MODEL)]
    for sop in STORAGE_SOP_CLASSES:
        syntaxes = TRANSFER_SYNTAXES[:2] if sop in _NATIVE_ONLY else TRANSFER_SYNTAXES
        for ts in syntaxes:
            if len(contexts) < 128:
                contexts.append(_context(sop, [ts]))
    roles = []
    for sop in STORAGE_SOP_CLASSES:
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid = sop
        role.scu_role = False
        role.scp_role = True
        roles.append(role)

    received = 0
    total: int | None = None
    errors: list[str] = []
    lock = threading.Lock()

    def on_store(event: Any) -> int:
        nonlocal received
        if cancel is not None and cancel.is_set():
            return 0xA700  # out of resources: the peer stops sending
        try:
            sop_uid = str(event.request.AffectedSOPInstanceUID)
            data = event.encoded_dataset()
            sink(study_uid, sop_uid, data)
        except Exception as exc:  # noqa: BLE001 - reported as the store status and the error
            with lock:
                errors.append(str(exc))
            return 0xA700
        with lock:
            received += 1
            done = received
        if progress is not None:
            progress(done, total)
        return 0x0000

    with _associate(
        node, local_ae, contexts, timeouts, ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    ) as assoc:
        final = None
        for status, _ident in assoc.send_c_get(_retrieve_identifier(study_uid), _GET_MODEL):
            if cancel is not None and cancel.is_set():
                assoc.abort()
                raise Cancelled(node.label)
            if status is None or "Status" not in status:
                raise NetError(
                    node.label,
                    f"C-GET interrupted after {received} instance(s): connection lost or timed out",
                )
            code = int(status.Status)
            if code == 0xFF00:
                rem = status.get("NumberOfRemainingSuboperations")
                comp = status.get("NumberOfCompletedSuboperations")
                if rem is not None and comp is not None:
                    failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
                    warned = int(status.get("NumberOfWarningSuboperations", 0) or 0)
                    total = int(rem) + int(comp) + failed + warned
                    if progress is not None:
                        progress(received, total)
                continue
            final = status
            break
        if not assoc.is_established and final is None:
            raise NetError(node.label, f"C-GET interrupted after {received} instance(s)")
    if cancel is not None and cancel.is_set():
        raise Cancelled(node.label)
    if errors:
        raise NetError(node.label, f"C-GET: could not store an instance ({errors[0]})")
    if final is None:
        raise NetError(node.label, f"C-GET interrupted after {received} instance(s)")
    code = int(final.Status)
    failed = int(final.get("NumberOfFailedSuboperations", 0) or 0)
    if code not in (0x0000, 0xB000) or failed:
        hint = f" (study {study_uid} not found?)" if received == 0 and not failed else ""
        raise NetError(
            node.label,
            f"C-GET finished with {_status_text(final)}: {received} received, {failed} failed"
            + hint,
        )
    if received == 0:
        raise NetError(node.label, f"C-GET: study {study_uid} not found (no instance sent)")
    return received


def move_study(
    node: Node,
    study_uid: str,
    destination_ae: str,
    local_ae: str = "CXRVIEWER",
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    timeouts: DimseTimeouts = DEFAULT_TIMEOUTS,
) -> int:
    """C-MOVE a study to ``destination_ae`` (our listener, already running). Returns the number
    of completed sub-operations reported by the peer."""
    with _associate(node, local_ae, [_context(_MOVE_MODEL)], timeouts) as assoc:
        final = None
        for status, _ident in assoc.send_c_move(
            _retrieve_identifier(study_uid), destination_ae, _MOVE_MODEL
        ):
            if cancel is not None and cancel.is_set():
                assoc.abort()
                raise Cancelled(node.label)
            if status is None or "Status" not in status:
                raise NetError(node.label, "C-MOVE interrupted: connection lost or timed out")
            code = int(status.Status)
            if code == 0xFF00:
                comp = int(status.get("NumberOfCompletedSuboperations", 0) or 0)
                rem = status.get("NumberOfRemainingSuboperations")
                if progress is not None:
                    progress(comp, comp + int(rem) if rem is not None else None)
                continue
            final = status
            break
    if final is None:
        raise NetError(node.label, "C-MOVE interrupted: connection lost")
    code = int(final.Status)
    completed = int(final.get("NumberOfCompletedSuboperations", 0) or 0)
    failed = int(final.get("NumberOfFailedSuboperations", 0) or 0)
    if code == 0xA801:
        raise NetError(
            node.label, f"C-MOVE refused: the peer does not know destination AE {destination_ae!r}"
        )
    if code not in (0x0000, 0xB000) or failed:
        raise NetError(node.label, f"C-MOVE finished with {_status_text(final)}, {failed} failed")
    if completed == 0:
        raise NetError(node.label, f"C-MOVE: study {study_uid} not found (nothing sent)")
    return completed


def store_files(
    node: Node,
    files: list[Path],
    local_ae: str = "CXRVIEWER",
    progress: Progress | None = None,
    timeouts: DimseTimeouts = DEFAULT_TIMEOUTS,
) -> int:
    """C-STORE DICOM files to ``node`` (as stored: their transfer syntax is proposed)."""
    from pydicom import dcmread

    metas: list[tuple[Path, str, str]] = []
    for f in files:
        try:
            meta = dcmread(f, stop_before_pixels=True, specific_tags=["SOPClassUID"])
            sop_class = str(meta.file_meta.MediaStorageSOPClassUID)
            ts = str(meta.file_meta.TransferSyntaxUID)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is refused by name
            raise NetError(node.label, f"{f}: not a DICOM file ({exc})") from exc
        metas.append((f, sop_class, ts))
    pairs = sorted({(c, t) for _, c, t in metas})
    contexts = [_context(c, [t]) for c, t in pairs][:128]
    sent = 0
    with _associate(node, local_ae, contexts, timeouts) as assoc:
        for f, _c, _t in metas:
            status = assoc.send_c_store(f)
            if status is None or "Status" not in status:
                raise NetError(node.label, f"C-STORE of {f.name}: {_status_text(status)}")
            code = int(status.Status)
            if code != 0 and not (0xB000 <= code <= 0xBFFF):
                raise NetError(node.label, f"C-STORE of {f.name} refused: {_status_text(status)}")
            sent += 1
            if progress is not None:
                progress(sent, len(metas))
    return sent
