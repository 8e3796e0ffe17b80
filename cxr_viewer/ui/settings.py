"""QSettings for the viewer. ``CXR_VIEWER_SETTINGS_DIR`` redirects them to an INI file in that folder
(tests use it so they never touch the user's real settings)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

ORGANIZATION = "cxr-viewer"
APPLICATION = "cxr-viewer"
MAX_RECENT = 10


def make_settings() -> QSettings:
    override = os.environ.get("CXR_VIEWER_SETTINGS_DIR")
    if override:
        Path(override).mkdir(parents=True, exist_ok=True)
        return QSettings(str(Path(override) / "cxr-viewer.ini"), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def recent_files(settings: QSettings) -> list[str]:
    value = settings.value("recent_files", [])
    if isinstance(value, str):
        value = [value] if value else []
    return [str(v) for v in (value or [])]


def push_recent(settings: QSettings, path: str) -> list[str]:
    items = [p for p in recent_files(settings) if p != path]
    items.insert(0, path)
    items = items[:MAX_RECENT]
    settings.setValue("recent_files", items)
    return items
