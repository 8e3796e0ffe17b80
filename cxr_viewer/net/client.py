"""One entry point per operation, whatever the node speaks: echo, find, retrieve, send.

A node whose retrieve method is ``dicomweb`` is queried by QIDO-RS, retrieved by WADO-RS and sent
to by STOW-RS; any other node uses DIMSE (C-FIND, C-GET or C-MOVE to our listener, C-STORE).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from cxr_viewer.net import dimse, web
from cxr_viewer.net.cache import StudyCache
from cxr_viewer.net.config import NetSettings, Node, SecretStore
from cxr_viewer.net.dimse import StudyMatch
from cxr_viewer.net.errors import NetError

__all__ = ["echo", "find", "retrieve", "send", "StudyMatch"]

Progress = Callable[[int, "int | None"], None]


def _uses_web(node: Node) -> bool:
    return node.retrieve_method == "dicomweb" or not node.has_dimse


def echo(node: Node, settings: NetSettings, secrets: SecretStore | None = None) -> str:
    """Check the node answers; returns what was done ("C-ECHO" / "QIDO-RS")."""
    if _uses_web(node):
        web.echo(node, secrets)
        return "QIDO-RS"
    dimse.echo(node, settings.ae_title)
    return "C-ECHO"


def find(
    node: Node,
    settings: NetSettings,
    secrets: SecretStore | None = None,
    *,
    patient_id: str = "",
    patient_name: str = "",
    accession: str = "",
    study_date: str = "",
    modality: str = "",
    limit: int = 1000,
) -> list[StudyMatch]:
    """Study-level search (C-FIND or QIDO-RS). ``modality`` may be ``CR\\DX`` (any of)."""
    if _uses_web(node):
        mods = [m for m in modality.replace(",", "\\").split("\\") if m]
        if len(mods) <= 1:
            return web.search_studies(
                node, secrets, patient_id=patient_id, patient_name=patient_name,
                accession=accession, study_date=study_date, modality=modality, limit=limit,
            )
        # QIDO-RS has no list matching on ModalitiesInStudy everywhere: one query per modality.
        seen: dict[str, StudyMatch] = {}
        for m in mods:
            for s in web.search_studies(
                node, secrets, patient_id=patient_id, patient_name=patient_name,
                accession=accession, study_date=study_date, modality=m, limit=limit,
            ):
                seen.setdefault(s.study_uid, s)
        return list(seen.values())
    q = dimse.study_query(
        patient_id=patient_id, patient_name=patient_name, accession=accession,
        study_date=study_date, modality=modality.replace(",", "\\"),
    )
    return dimse.find_studies(node, q, settings.ae_title, limit=limit)


def retrieve(
    node: Node,
    study_uid: str,
    cache: StudyCache,
    settings: NetSettings,
    secrets: SecretStore | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    total: int | None = None,
) -> Path:
    """Fetch a study into ``cache``; returns its folder once complete.

    An interruption leaves only complete files (atomic writes) and no completion marker; calling
    again completes the study.
    """
    folder = cache.begin(study_uid)
    method = node.retrieve_method if node.has_dimse or node.has_dicomweb else "dicomweb"
    ok = False
    count = 0
    try:
        if method == "dicomweb":
            count = web.retrieve_study(
                node, study_uid, cache.write_instance, secrets, progress, cancel, total
            )
        elif method == "c-get":
            count = dimse.get_study(
                node, study_uid, cache.write_instance, settings.ae_title, progress, cancel
            )
        elif method == "c-move":
            count = _move_into(node, study_uid, cache, settings, progress, cancel)
        else:  # pragma: no cover - Node validates the method
            raise NetError(node.label, f"unknown retrieve method {method!r}")
        ok = True
    finally:
        cache.finish(study_uid, ok, source=node.label, count=count)
    return folder


def _move_into(
    node: Node,
    study_uid: str,
    cache: StudyCache,
    settings: NetSettings,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> int:
    """C-MOVE to our own AE title, received by a listener running for the move's duration."""
    from cxr_viewer.net.listener import Arrival, StorageListener

    got = 0
    lock = threading.Lock()

    def arrived(a: Arrival) -> None:
        nonlocal got
        with lock:
            got += 1
            n = got
        if progress is not None:
            progress(n, None)

    listener = StorageListener(
        cache.folder, settings.ae_title, settings.listener_port, host="",
        accept_from=[node.ae_title], on_arrival=arrived, cache=cache,
    )
    with listener:
        completed = dimse.move_study(
            node, study_uid, settings.ae_title, settings.ae_title, None, cancel
        )
    if got < completed:
        raise NetError(node.label, f"C-MOVE: {completed} sent but {got} stored")
    return got


def send(
    node: Node,
    files: list[Path],
    settings: NetSettings,
    secrets: SecretStore | None = None,
    progress: Progress | None = None,
) -> tuple[int, str]:
    """Send DICOM files (STOW-RS or C-STORE); returns (count, how)."""
    for f in files:
        if not Path(f).is_file():
            raise NetError(node.label, f"{f}: no such file")
    paths = [Path(f) for f in files]
    try:
        if _uses_web(node):
            result = web.store_files(node, paths, secrets, progress), "STOW-RS"
        else:
            result = dimse.store_files(node, paths, settings.ae_title, progress), "C-STORE"
    except NetError:
        _audit_send(node, paths, "", failed=True)
        raise
    _audit_send(node, paths, result[1])
    return result


def _audit_send(node: Node, paths: list[Path], how: str, failed: bool = False) -> None:
    """One audit event per send (object types, study and SOP UIDs; never patient names)."""
    import pydicom

    from cxr_viewer import audit

    kinds: set[str] = set()
    studies: set[str] = set()
    sops: list[str] = []
    for path in paths:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True,
                                 specific_tags=["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID"])
        except Exception:  # noqa: BLE001 - the audit names what it can; the send already happened
            continue
        kinds.add(getattr(getattr(ds, "SOPClassUID", None), "name", "") or "DICOM")
        studies.add(str(getattr(ds, "StudyInstanceUID", "")))
        sops.append(str(getattr(ds, "SOPInstanceUID", "")))
    audit.sent(
        ", ".join(sorted(kinds)) or "DICOM",
        f"{node.label}{f' by {how}' if how else ''}",
        study_uid=next(iter(studies)) if len(studies) == 1 else "",
        sop_uids=[s for s in sops if s],
        outcome=audit.MAJOR_FAILURE if failed else audit.SUCCESS,
    )
