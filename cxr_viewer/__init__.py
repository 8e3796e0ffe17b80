"""cxr-viewer: a chest radiograph reading workstation with a local CNN second opinion.

Research use only: the AI output is a second opinion, not for primary diagnosis.
"""

__version__ = "0.1.0"

DISCLAIMER = "AI second opinion - not for primary diagnosis"
