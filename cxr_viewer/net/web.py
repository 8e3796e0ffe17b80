"""DICOMweb client on dicomweb-client: QIDO-RS study search, WADO-RS study retrieve, STOW-RS.

One ``requests.Session`` per operation carries the node's TLS settings (CA file, client
certificate) and authentication (basic: username + password from the keyring; bearer: token
from the keyring). Certificates are always verified.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cxr_viewer.net.config import Node, SecretStore
from cxr_viewer.net.dimse import StudyMatch
from cxr_viewer.net.errors import Cancelled, NetError

__all__ = ["client_for", "search_studies", "retrieve_study", "store_files", "echo"]

#: (connect, read) seconds.
TIMEOUT = (4.0, 60.0)

_STUDY_FIELDS = [
    "StudyInstanceUID", "PatientID", "PatientName", "PatientBirthDate", "AccessionNumber",
    "StudyDate", "StudyTime", "StudyDescription", "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
]


def _session(node: Node, secrets: SecretStore | None) -> Any:
    import requests

    s = requests.Session()
    s.trust_env = False  # no proxy from the environment: connect only to the node itself
    s.verify = node.ca_file or True
    if node.client_cert:
        s.cert = (node.client_cert, node.client_key) if node.client_key else node.client_cert
    if node.auth != "none":
        if secrets is None:
            raise NetError(node.label, f"needs a {node.auth} secret but no secret store was given")
        if node.auth == "basic":
            pw = secrets.get(node.name, "password")
            if pw is None:
                raise NetError(node.label, f"no password for user {node.username!r}")
            s.auth = (node.username, pw)
        else:
            token = secrets.get(node.name, "token")
            if token is None:
                raise NetError(node.label, "no bearer token")
            s.headers["Authorization"] = f"Bearer {token}"
    return s


def client_for(node: Node, secrets: SecretStore | None = None) -> Any:
    """A ``DICOMwebClient`` for the node (no retries: an error is reported at once)."""
    from dicomweb_client.api import DICOMwebClient

    if not node.has_dicomweb:
        raise NetError(node.label, "has no DICOMweb URL")
    client = DICOMwebClient(node.dicomweb_url, session=_session(node, secrets), timeout=TIMEOUT)
    client.set_http_retry_params(retry=False)
    return client


@contextlib.contextmanager
def _opened(node: Node, secrets: SecretStore | None) -> Iterator[Any]:
    """A client whose session (and its pooled sockets) is closed when the operation ends."""
    client = client_for(node, secrets)
    try:
        yield client
    finally:
        client._session.close()


def _explain(node: Node, exc: BaseException, what: str) -> NetError:
    import requests

    if isinstance(exc, NetError):
        return exc
    if isinstance(exc, requests.exceptions.SSLError):
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text:
            cause = "TLS certificate refused (certificate verify failed: " + (
                text.split("certificate verify failed:")[-1].split("(")[0].strip(" )'\"")
                or "untrusted"
            ) + ")"
        else:
            cause = f"TLS error: {text[:200]}"
        return NetError(node.label, f"{what}: {cause}")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return NetError(node.label, f"{what}: no answer within {TIMEOUT[0]:g} s")
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        if "Connection refused" in text or "Errno 111" in text:
            return NetError(
                node.label, f"{what}: connection refused (nothing listening: is the PACS running?)"
            )
        return NetError(node.label, f"{what}: connection failed ({text[:200]})")
    if isinstance(exc, requests.exceptions.HTTPError):
        code = exc.response.status_code if exc.response is not None else "?"
        hint = {401: " (authentication required or wrong credentials)",
                403: " (access denied)", 404: " (not found: no such study, or a wrong DICOMweb URL)"}
        return NetError(node.label, f"{what}: HTTP {code}{hint.get(code, '')}")
    if isinstance(exc, requests.exceptions.RequestException):
        return NetError(node.label, f"{what}: {exc}")
    return NetError(node.label, f"{what}: {type(exc).__name__}: {exc}")


def echo(node: Node, secrets: SecretStore | None = None) -> None:
    """A QIDO-RS request with limit 1: the DICOMweb equivalent of C-ECHO."""
    try:
        with _opened(node, secrets) as client:
            client.search_for_studies(limit=1)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one clear NetError
        raise _explain(node, exc, "QIDO-RS") from exc


def _match_from_json(item: dict[str, Any]) -> StudyMatch:
    from pydicom.dataset import Dataset

    ds = Dataset.from_json(item)
    return StudyMatch.from_dataset(ds)


def search_studies(
    node: Node,
    secrets: SecretStore | None = None,
    patient_id: str = "",
    patient_name: str = "",
    accession: str = "",
    study_date: str = "",
    modality: str = "",
    limit: int = 1000,
) -> list[StudyMatch]:
    """QIDO-RS study search (the same filters as C-FIND)."""
    filters = {
        k: v for k, v in {
            "PatientID": patient_id, "PatientName": patient_name, "AccessionNumber": accession,
            "StudyDate": study_date, "ModalitiesInStudy": modality,
        }.items() if v
    }
    try:
        with _opened(node, secrets) as client:
            found = client.search_for_studies(
                search_filters=filters, fields=_STUDY_FIELDS, limit=limit
            )
    except Exception as exc:  # noqa: BLE001
        raise _explain(node, exc, "QIDO-RS") from exc
    return [_match_from_json(item) for item in found]


def retrieve_study(
    node: Node,
    study_uid: str,
    sink: Callable[[str, str, bytes], None],
    secrets: SecretStore | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    cancel: threading.Event | None = None,
    total: int | None = None,
) -> int:
    """WADO-RS retrieve of a study (as stored: ``transfer-syntax=*``); each instance to ``sink``."""
    from pydicom import dcmread

    done = 0
    stack = contextlib.ExitStack()
    try:
        client = stack.enter_context(_opened(node, secrets))
        # Each part is a whole DICOM file as the server stores it (transfer-syntax=*): written
        # as received, never decoded and re-encoded. dicomweb-client's iter_study would decode
        # every part into a Dataset; its multipart decoder is used on the raw stream instead.
        response = client._session.get(
            f"{node.dicomweb_url}/studies/{study_uid}",
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
            stream=True, timeout=TIMEOUT,
        )
        stack.callback(response.close)
        response.raise_for_status()
        for part in client._decode_multipart_message(response, stream=True):
            if cancel is not None and cancel.is_set():
                response.close()
                raise Cancelled(node.label)
            data = bytes(part)
            head = dcmread(io.BytesIO(data), stop_before_pixels=True,
                           specific_tags=["SOPInstanceUID"])
            sink(study_uid, str(head.SOPInstanceUID), data)
            done += 1
            if progress is not None:
                progress(done, total)
    except Cancelled:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _explain(node, exc, f"WADO-RS retrieve interrupted after {done} instance(s)") from exc
    finally:
        stack.close()
    if done == 0:
        raise NetError(node.label, f"WADO-RS: study {study_uid} not found (no instance)")
    return done


def store_files(
    node: Node,
    files: list[Path],
    secrets: SecretStore | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> int:
    """STOW-RS the files, one request each (so a refusal names the file)."""
    from pydicom import dcmread

    sent = 0
    with _opened(node, secrets) as client:
        for f in files:
            try:
                ds = dcmread(f)
            except Exception as exc:  # noqa: BLE001
                raise NetError(node.label, f"{f}: not a DICOM file ({exc})") from exc
            try:
                resp = client.store_instances([ds])
            except Exception as exc:  # noqa: BLE001
                raise _explain(node, exc, f"STOW-RS of {f.name}") from exc
            failed = resp.get("FailedSOPSequence") if resp is not None else None
            if failed:
                reason = failed[0].get("FailureReason", "?")
                raise NetError(node.label, f"STOW-RS of {f.name} refused (failure reason {reason})")
            sent += 1
            if progress is not None:
                progress(sent, len(files))
    return sent
