"""DICOM networking: configured nodes, DIMSE (pynetdicom) and DICOMweb (dicomweb-client) clients,
a local study cache and a C-STORE listener.

No Qt here (the UI calls this package from its workers) and no connection to anything but a node
the user configured or named explicitly on the command line.
"""

from cxr_viewer.net.config import NetSettings, Node, NodeStore, parse_node
from cxr_viewer.net.errors import NetError

__all__ = ["NetError", "NetSettings", "Node", "NodeStore", "parse_node"]
