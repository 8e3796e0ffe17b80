"""The one error type of the networking package: its message names the node and the cause."""

from __future__ import annotations

from cxr_viewer.errors import CxrError


class NetError(CxrError):
    """A network operation failed; the message says which node and why (one line).

    Parameters
    ----------
    node
        The node's label (``NAME (AE@host:port)`` or the DICOMweb URL).
    cause
        One sentence: "connection refused", "association rejected by the peer (called AE title
        not recognised)", "TLS certificate verification failed: ...".
    """

    def __init__(self, node: str, cause: str) -> None:
        self.node = node
        self.cause = cause
        super().__init__(f"{node}: {cause}")


class Cancelled(NetError):
    """The user cancelled the operation."""

    def __init__(self, node: str) -> None:
        super().__init__(node, "cancelled")
