"""Priors from outside the open folders (issue 14): the local study cache and a PACS query.

The hanging protocol pairs the study being read with the most recent earlier study of the same
Patient ID (:func:`cxr_viewer.worklist.find_prior`, same rules everywhere: a non-empty Patient ID,
known study dates, strictly earlier). The study browser's own studies are paired in the UI; this
module, Qt-free and run on a worker thread, adds two more sources:

* the **local cache** of retrieved studies (:class:`cxr_viewer.net.cache.StudyCache`): complete
  studies only (with their marker), one header read per study to learn its patient and date;
* a **PACS query** of every configured node (C-FIND at study level, or QIDO-RS for a DICOMweb
  node, through :func:`cxr_viewer.net.client.find`) for the patient's CR/DX studies; the most
  recent one dated before the current study is retrieved into the cache (C-GET, C-MOVE or
  WADO-RS, :func:`cxr_viewer.net.client.retrieve`) unless the cache already holds it complete.

Nothing here connects anywhere unless it is given nodes: with no node configured the lookup is the
cache alone. Results carry the key of the study they were looked up for (``for_study``), so the
caller can drop one that arrives after the user moved on.
"""

from __future__ import annotations

import datetime as dt
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from cxr_viewer.net import client
from cxr_viewer.net.cache import StudyCache
from cxr_viewer.net.config import NetSettings, Node, SecretStore
from cxr_viewer.net.dimse import StudyMatch
from cxr_viewer.net.errors import NetError
from cxr_viewer.worklist import StudyRef, find_prior, parse_da

__all__ = [
    "PRIOR_MODALITIES",
    "PriorEvent",
    "PriorResult",
    "cached_studies",
    "find_cached_prior",
    "look_for_prior",
    "query_prior",
    "study_paths",
]

#: Chest radiographs: the PACS query asks for these modalities only (a CT of the same patient is
#: no prior for a radiograph, and its hundreds of images are not worth retrieving).
PRIOR_MODALITIES = "CR,DX"
_LATERAL = {"LL", "RL", "LATERAL", "LAT"}
#: study UID -> [lock, number of lookups holding or waiting for it]; an entry is removed when
#: its last user leaves, so the table holds only the retrieves in progress.
_retrieve_locks: dict[str, list] = {}
_locks_guard = threading.Lock()


@dataclass(frozen=True)
class PriorEvent:
    """Progress of a lookup, for the status bar.

    ``kind``: ``"cache"`` (a prior found in the local cache, ``ref`` set: it can hang at once),
    ``"querying"`` (asking ``source``), ``"retrieving"`` (a newer prior on ``source``; ``done`` /
    ``total`` images), ``"error"`` (``text`` says what failed on ``source``).
    """

    for_study: str
    kind: str
    source: str = ""
    ref: StudyRef | None = None
    done: int = 0
    total: int | None = None
    text: str = ""


@dataclass(frozen=True)
class PriorResult:
    """What a lookup found for study ``for_study``: the prior (``ref``, with local paths) and
    where it came from (``"local cache"`` or the node's label), or none; ``errors`` name each
    node that could not be asked or retrieved from; ``skipped`` when the caller no longer wanted
    it before the network was asked."""

    for_study: str
    ref: StudyRef | None = None
    source: str = ""
    errors: tuple[str, ...] = ()
    queried: tuple[str, ...] = field(default=())
    skipped: bool = False


def _read_header(path: Path):
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(
            path, stop_before_pixels=True,
            specific_tags=["PatientID", "StudyDate", "StudyInstanceUID", "Modality",
                           "StudyDescription"],
        )


def cached_studies(cache: StudyCache, patient_id: str) -> list[StudyRef]:
    """The complete studies of ``patient_id`` in ``cache`` (paths not filled in).

    One header is read per study (the studies of a cache are whole studies of one patient each);
    unreadable files are passed over: the cache is a convenience, never a source of errors.
    """
    pid = patient_id.strip()
    out: list[StudyRef] = []
    if not pid:
        return out
    for s in cache.studies():
        if not s.complete:
            continue
        first = next(iter(sorted(p for p in s.path.glob("*.dcm") if not p.name.startswith("."))),
                     None)
        if first is None:
            continue
        try:
            ds = _read_header(first)
        except Exception:  # noqa: BLE001 - a damaged cached file is simply not a candidate
            continue
        if str(ds.get("PatientID", "") or "").strip() != pid:
            continue
        uid = str(ds.get("StudyInstanceUID", "") or s.uid)
        out.append(StudyRef(uid, pid, parse_da(str(ds.get("StudyDate", "") or "")), (),
                            str(ds.get("Modality", "") or ""),
                            str(ds.get("StudyDescription", "") or "")))
    return out


def study_paths(folder: str | Path, study_uid: str) -> tuple[str, ...]:
    """The images of one study in ``folder`` in reading order: frontal views first, then series
    and instance order (as the study browser lists them)."""
    from cxr_viewer.io.scan import scan_folder

    result = scan_folder(folder, recursive=False)
    for st in result.studies:
        if st.uid == study_uid:
            inst = st.instances
            ordered = sorted(range(len(inst)),
                             key=lambda i: (inst[i].view_position.upper() in _LATERAL, i))
            return tuple(str(inst[i].path) for i in ordered)
    return ()


def find_cached_prior(cache: StudyCache, current: StudyRef) -> StudyRef | None:
    """The most recent earlier study of ``current``'s patient in the cache, with its paths."""
    prior = find_prior(current, cached_studies(cache, current.patient_id))
    if prior is None:
        return None
    paths = study_paths(cache.study_dir(prior.key), prior.key)
    return replace(prior, paths=paths) if paths else None


def query_prior(
    nodes: Sequence[Node],
    settings: NetSettings,
    secrets: SecretStore | None,
    current: StudyRef,
    on_query: Callable[[Node], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> tuple[tuple[Node, StudyMatch, StudyRef] | None, list[str]]:
    """Ask every node for the patient's CR/DX studies; the most recent one before ``current``.

    Returns ``((node, match, ref), errors)`` (``None`` when no node has one); a node that fails
    is named in ``errors`` and the others are still asked. Only studies whose returned Patient ID
    equals the current one count (a PACS may match wildcards).
    """
    errors: list[str] = []
    best: tuple[Node, StudyMatch, StudyRef] | None = None
    pid = current.patient_id.strip()
    if not pid or current.date is None:
        return None, errors
    for node in nodes:
        if on_query is not None:
            on_query(node)
        try:
            matches = client.find(node, settings, secrets, patient_id=pid,
                                  modality=PRIOR_MODALITIES)
        except Exception as exc:  # noqa: BLE001 - one node's fault must not stop the others
            why = str(exc) if isinstance(exc, NetError) else (
                f"{node.label}: {type(exc).__name__}: {exc}")
            errors.append(why)
            if on_error is not None:
                on_error(why)
            continue
        refs = {m.study_uid: StudyRef(m.study_uid, m.patient_id, parse_da(m.study_date), (),
                                      "/".join(m.modalities), m.description)
                for m in matches}
        prior = find_prior(current, refs.values())
        if prior is None:
            continue
        if best is None or (prior.date, prior.key) > (best[2].date, best[2].key):
            match = next(m for m in matches if m.study_uid == prior.key)
            best = (node, match, prior)
    return best, errors


@contextmanager
def _study_lock(study_uid: str) -> Iterator[None]:
    """One retrieve per study at a time, however many lookups want it."""
    with _locks_guard:
        entry = _retrieve_locks.setdefault(study_uid, [threading.Lock(), 0])
        entry[1] += 1
    try:
        with entry[0]:
            yield
    finally:
        with _locks_guard:
            entry[1] -= 1
            if entry[1] == 0:
                del _retrieve_locks[study_uid]


def look_for_prior(
    current: StudyRef,
    cache: StudyCache,
    nodes: Sequence[Node] = (),
    settings: NetSettings | None = None,
    secrets: SecretStore | None = None,
    *,
    have: dt.date | None = None,
    report: Callable[[PriorEvent], None] | None = None,
    still_wanted: Callable[[], bool] = lambda: True,
    cancel: threading.Event | None = None,
) -> PriorResult:
    """The most recent prior of ``current`` in the cache and, when ``nodes`` are given, on the
    PACS (retrieved into the cache). Worker thread; never raises for a network fault (the
    result's ``errors`` say what failed).

    Parameters
    ----------
    current
        The study being read (a Patient ID and a date, else nothing is looked up).
    cache
        The local study cache; retrieved priors go there.
    nodes
        The configured nodes to query; empty = no network at all.
    have
        The date of a prior the caller already shows (from the open folders): only a more
        recent one is worth finding or retrieving.
    report
        Called with :class:`PriorEvent` as the lookup goes (a cache prior is reported at once).
    still_wanted
        Checked before each network step: False (the user moved on) skips the query and the
        retrieve; a retrieve already started is finished (the study stays in the cache).
    cancel
        Set to stop a retrieve (application shutdown).
    """
    key = current.key

    def tell(kind: str, **kw) -> None:
        if report is not None:
            report(PriorEvent(key, kind, **kw))

    if not current.patient_id.strip() or current.date is None:
        return PriorResult(key)
    found: StudyRef | None = None
    source = ""
    cached = find_cached_prior(cache, current)
    if cached is not None and (have is None or cached.date > have):
        found, source = cached, "local cache"
        tell("cache", source=source, ref=cached)
    if not nodes:
        return PriorResult(key, found, source)
    if not still_wanted():
        return PriorResult(key, found, source, skipped=True)
    settings = settings or NetSettings()
    floor = max((d for d in (have, found.date if found else None) if d is not None),
                default=None)
    best, errors = query_prior(nodes, settings, secrets, current,
                               on_query=lambda n: tell("querying", source=n.label),
                               on_error=lambda e: tell("error", text=e))
    queried = tuple(n.label for n in nodes)
    if best is None:
        return PriorResult(key, found, source, tuple(errors), queried)
    node, match, ref = best
    if floor is not None and ref.date <= floor:
        return PriorResult(key, found, source, tuple(errors), queried)  # nothing newer remotely
    if not still_wanted():
        return PriorResult(key, found, source, tuple(errors), queried, skipped=True)
    with _study_lock(ref.key):  # one retrieve per study, however many lookups want it
        if not cache.is_complete(ref.key):
            tell("retrieving", source=node.label, total=match.num_instances)
            try:
                client.retrieve(
                    node, ref.key, cache, settings, secrets,
                    progress=lambda d, t: tell("retrieving", source=node.label, done=d,
                                               total=t or match.num_instances),
                    cancel=cancel, total=match.num_instances,
                )
            except Exception as exc:  # noqa: BLE001 - reported, never a crash
                why = str(exc) if isinstance(exc, NetError) else (
                    f"{node.label}: retrieve of the prior failed: {type(exc).__name__}: {exc}")
                errors.append(why)
                tell("error", text=why)
                return PriorResult(key, found, source, tuple(errors), queried)
    paths = study_paths(cache.study_dir(ref.key), ref.key)
    if not paths:
        why = f"{node.label}: the retrieved prior study {ref.key} holds no image that can be shown"
        errors.append(why)
        return PriorResult(key, found, source, tuple(errors), queried)
    return PriorResult(key, replace(ref, paths=paths), node.label, tuple(errors), queried)
