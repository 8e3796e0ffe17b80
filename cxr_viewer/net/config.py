"""DICOM nodes and the local network settings, kept in ``nodes.json`` in the per-user config folder.

The file holds no secret: DICOMweb passwords and bearer tokens go to the OS keyring (``keyring``)
when one is available; otherwise they live in memory for this run only and are asked again next
run (:class:`SecretStore`). The file is written atomically (:mod:`cxr_viewer.fsutil`).

The config folder is ``$CXR_VIEWER_SETTINGS_DIR`` when set (tests, portable installs), else the
platform's per-user config folder. The cache (retrieved studies, the listener's inbox) lives in
the per-user data folder, ``$CXR_VIEWER_DATA_DIR`` when set.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cxr_viewer.fsutil import atomic_write_text
from cxr_viewer.net.errors import NetError

__all__ = [
    "Node",
    "NetSettings",
    "NodeStore",
    "SecretStore",
    "parse_node",
    "user_config_dir",
    "user_data_dir",
    "AUTH_KINDS",
    "RETRIEVE_METHODS",
]

AUTH_KINDS = ("none", "basic", "bearer")
#: How studies are fetched from a node: DICOMweb (QIDO-RS + WADO-RS) or DIMSE C-FIND + C-GET /
#: C-MOVE (to our listener). ``auto`` = DICOMweb when the node has a URL, else C-GET.
RETRIEVE_METHODS = ("auto", "dicomweb", "c-get", "c-move")
_AE_RE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # PS3.5 AE VR: 16 chars, no backslash


def user_config_dir() -> Path:
    """Per-user config folder (``nodes.json``)."""
    override = os.environ.get("CXR_VIEWER_SETTINGS_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "cxr-viewer"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "cxr-viewer"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "cxr-viewer"


def user_data_dir() -> Path:
    """Per-user data folder (the study cache and the listener inbox)."""
    override = os.environ.get("CXR_VIEWER_DATA_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "cxr-viewer"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "cxr-viewer" / "data"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "cxr-viewer"


def check_ae_title(title: str, what: str = "AE title") -> str:
    """Return ``title`` stripped, or raise ``ValueError`` when it is not a valid AE title."""
    title = title.strip()
    if not _AE_RE.match(title):
        raise ValueError(f"{what} {title!r} must be 1-16 printable characters without a backslash")
    return title


@dataclass(frozen=True)
class Node:
    """A remote DICOM node (PACS, archive, modality).

    Attributes
    ----------
    name
        The user's name for it; ``cxr-viewer pacs echo NAME``.
    ae_title, host, port
        The DIMSE peer (empty host = no DIMSE).
    dicomweb_url
        DICOMweb base URL (``https://pacs/dicom-web``); empty = no DICOMweb.
    retrieve
        One of :data:`RETRIEVE_METHODS`.
    tls
        DIMSE over TLS (DICOMweb uses TLS when the URL is https).
    ca_file
        PEM bundle the peer's certificate must chain to (empty = the system store).
    client_cert, client_key
        Optional client certificate (PEM) for mutual TLS.
    auth
        DICOMweb authentication: ``none``, ``basic`` (username + password in the keyring) or
        ``bearer`` (token in the keyring).
    username
        For ``basic``; the password is never stored here.
    """

    name: str
    ae_title: str = ""
    host: str = ""
    port: int = 0
    dicomweb_url: str = ""
    retrieve: str = "auto"
    tls: bool = False
    ca_file: str = ""
    client_cert: str = ""
    client_key: str = ""
    auth: str = "none"
    username: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a node needs a name")
        if self.retrieve not in RETRIEVE_METHODS:
            raise ValueError(f"node {self.name}: retrieve must be one of {RETRIEVE_METHODS}")
        if self.auth not in AUTH_KINDS:
            raise ValueError(f"node {self.name}: auth must be one of {AUTH_KINDS}")
        if self.host:
            check_ae_title(self.ae_title, f"node {self.name}: AE title")
            if not 0 < int(self.port) < 65536:
                raise ValueError(f"node {self.name}: port {self.port} is not 1-65535")
        if self.dicomweb_url and urlparse(self.dicomweb_url).scheme not in ("http", "https"):
            raise ValueError(f"node {self.name}: DICOMweb URL must start with http:// or https://")
        if not self.host and not self.dicomweb_url:
            raise ValueError(f"node {self.name}: give a host and port, a DICOMweb URL, or both")

    @property
    def has_dimse(self) -> bool:
        return bool(self.host)

    @property
    def has_dicomweb(self) -> bool:
        return bool(self.dicomweb_url)

    @property
    def retrieve_method(self) -> str:
        """The effective retrieve method (``auto`` resolved)."""
        if self.retrieve != "auto":
            return self.retrieve
        return "dicomweb" if self.has_dicomweb else "c-get"

    @property
    def label(self) -> str:
        """``NAME (AE@host:port)`` / the URL: how errors name the node."""
        where = []
        if self.has_dimse:
            where.append(f"{self.ae_title}@{self.host}:{self.port}")
        if self.has_dicomweb:
            where.append(self.dicomweb_url)
        addr = ", ".join(where)
        return addr if self.name in (addr, *where) else f"{self.name} ({addr})"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Node:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class NetSettings:
    """Local side: our AE title, the listener, the cache limit."""

    ae_title: str = "CXRVIEWER"
    listener_port: int = 11112
    #: Calling AE titles the listener accepts; empty = only the configured nodes' AE titles.
    accept_from: tuple[str, ...] = ()
    accept_any: bool = False
    cache_limit_mb: int = 4096
    analyse_on_arrival: bool = False

    def __post_init__(self) -> None:
        check_ae_title(self.ae_title, "local AE title")
        if not 0 < int(self.listener_port) < 65536:
            raise ValueError(f"listener port {self.listener_port} is not 1-65535")
        if self.cache_limit_mb < 1:
            raise ValueError("the cache limit must be at least 1 MB")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["accept_from"] = list(self.accept_from)
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NetSettings:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in data.items() if k in known}
        if "accept_from" in d:
            d["accept_from"] = tuple(d["accept_from"])
        return cls(**d)


class SecretStore:
    """Node secrets: the OS keyring when available, else this run's memory.

    ``prompt(node, what) -> str | None`` is asked once per run for a secret that the keyring
    does not hold (the CLI uses ``getpass``, the UI a password dialog); ``None`` = no prompt.
    """

    SERVICE = "cxr-viewer"

    def __init__(self, prompt: Callable[[str, str], str | None] | None = None,
                 use_keyring: bool = True) -> None:
        self.prompt = prompt
        self._memory: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._use_keyring = use_keyring
        self._resolved = False
        self._backend: Any = None

    @property
    def _keyring(self) -> Any:
        # Resolved on first use, not at start-up: finding a backend may talk to D-Bus.
        if not self._resolved:
            self._resolved = True
            if self._use_keyring:
                try:
                    import keyring
                    from keyring.backends import fail

                    kr = keyring.get_keyring()
                    if not isinstance(kr, fail.Keyring):
                        self._backend = kr
                except Exception:  # noqa: BLE001 - no usable keyring: memory for this run
                    self._backend = None
        return self._backend

    @property
    def persistent(self) -> bool:
        """True when secrets survive this run (an OS keyring is available)."""
        return self._keyring is not None

    def set(self, node: str, what: str, value: str) -> None:
        with self._lock:
            self._memory[(node, what)] = value
        if self._keyring is not None:
            try:
                self._keyring.set_password(self.SERVICE, f"{node}:{what}", value)
            except Exception:  # noqa: BLE001 - keyring locked/refused: kept for this run
                pass

    def get(self, node: str, what: str) -> str | None:
        with self._lock:
            if (node, what) in self._memory:
                return self._memory[(node, what)]
        value = None
        if self._keyring is not None:
            try:
                value = self._keyring.get_password(self.SERVICE, f"{node}:{what}")
            except Exception:  # noqa: BLE001
                value = None
        if value is None and self.prompt is not None:
            value = self.prompt(node, what)
        if value is not None:
            with self._lock:
                self._memory[(node, what)] = value
        return value

    def delete(self, node: str, what: str) -> None:
        with self._lock:
            self._memory.pop((node, what), None)
        if self._keyring is not None:
            try:
                self._keyring.delete_password(self.SERVICE, f"{node}:{what}")
            except Exception:  # noqa: BLE001 - nothing stored
                pass


@dataclass
class NodeStore:
    """The nodes and the local settings, loaded from / saved to ``nodes.json``."""

    path: Path
    nodes: list[Node] = field(default_factory=list)
    settings: NetSettings = field(default_factory=NetSettings)

    @classmethod
    def default_path(cls) -> Path:
        return user_config_dir() / "nodes.json"

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> NodeStore:
        """Read the file; a missing file = no nodes (no network at all)."""
        p = Path(path) if path is not None else cls.default_path()
        if not p.is_file():
            return cls(p)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            nodes = [Node.from_json(n) for n in data.get("nodes", [])]
            settings = NetSettings.from_json(data.get("local", {}))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise NetError(str(p), f"unreadable node settings ({exc})") from exc
        return cls(p, nodes, settings)

    def save(self) -> Path:
        data = {
            "version": 1,
            "local": self.settings.to_json(),
            "nodes": [n.to_json() for n in self.nodes],
        }
        try:
            before = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            before = {}
        written = atomic_write_text(self.path, json.dumps(data, indent=2) + "\n")
        if before.get("local") != data["local"] or before.get("nodes") != data["nodes"]:
            from cxr_viewer import audit

            # The file holds no secret (they live in the keyring), so old and new can be logged.
            audit.setting_changed(
                "dicom-nodes",
                {"local": before.get("local"), "nodes": before.get("nodes")},
                {"local": data["local"], "nodes": data["nodes"]},
            )
        return written

    def get(self, name: str) -> Node | None:
        for n in self.nodes:
            if n.name == name:
                return n
        return None

    def put(self, node: Node) -> None:
        """Add or replace (by name)."""
        self.nodes = [n for n in self.nodes if n.name != node.name] + [node]

    def remove(self, name: str) -> None:
        self.nodes = [n for n in self.nodes if n.name != name]

    def known_ae_titles(self) -> tuple[str, ...]:
        """The calling AE titles the listener accepts by default."""
        titles = {n.ae_title for n in self.nodes if n.ae_title}
        titles.update(self.settings.accept_from)
        return tuple(sorted(titles))


_ADHOC_DIMSE = re.compile(r"^(?P<ae>[^@]{1,16})@(?P<host>\[[^\]]+\]|[^:@]+):(?P<port>\d{1,5})$")


def parse_node(spec: str, store: NodeStore | None = None) -> Node:
    """Resolve a NODE argument: a configured name, ``AE@host:port`` or a DICOMweb URL.

    Raises
    ------
    NetError
        The spec is none of these.
    """
    spec = spec.strip()
    if store is not None:
        node = store.get(spec)
        if node is not None:
            return node
    if spec.startswith(("http://", "https://")):
        return Node(name=spec, dicomweb_url=spec.rstrip("/"), retrieve="dicomweb")
    m = _ADHOC_DIMSE.match(spec)
    if m:
        try:
            return Node(
                name=spec, ae_title=m["ae"], host=m["host"].strip("[]"), port=int(m["port"])
            )
        except ValueError as exc:
            raise NetError(spec, str(exc)) from exc
    names = ", ".join(n.name for n in store.nodes) if store and store.nodes else "none"
    raise NetError(
        spec,
        "not a configured node (configured: " + names + "), nor AE@host:port, "
        "nor an http(s)://.../dicom-web URL",
    )


def with_changes(node: Node, **changes: Any) -> Node:
    """``dataclasses.replace`` that re-validates."""
    return replace(node, **changes)
