"""Where the bundled resources and models live.

The same code runs from the source tree (``pip install -e .``), from a PyInstaller bundle
(``sys._MEIPASS``) and with an override in ``CXR_VIEWER_HOME``; nothing depends on the current
directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def app_root() -> Path:
    """Return the folder that holds ``models/`` and ``resources/``."""
    override = os.environ.get("CXR_VIEWER_HOME")
    if override:
        return Path(override)
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle)
    return Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    """Folder of model bundles (one sub-folder per bundle)."""
    return app_root() / "models"


def default_model_dir() -> Path:
    """The bundled default model."""
    return models_dir() / "default"


def resources_dir() -> Path:
    """Icons, the .desktop file, stylesheets."""
    return app_root() / "resources"


def user_cache_dir() -> Path:
    """Per-user cache (generated sample study, thumbnails)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cxr-viewer"
