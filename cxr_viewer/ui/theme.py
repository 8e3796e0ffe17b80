"""Themes: Fusion style, the dark palette and ``resources/style/<theme>.qss``.

Its own module so that ``main_window`` (theme menu) and ``app`` (start-up) both use it without
importing each other.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from cxr_viewer.paths import resources_dir

THEMES = ("dark", "light")


def dark_palette() -> QPalette:
    p = QPalette()
    base, window, text = QColor(24, 24, 26), QColor(36, 36, 40), QColor(220, 220, 220)
    p.setColor(QPalette.ColorRole.Window, window)
    p.setColor(QPalette.ColorRole.WindowText, text)
    p.setColor(QPalette.ColorRole.Base, base)
    p.setColor(QPalette.ColorRole.AlternateBase, QColor(32, 32, 36))
    p.setColor(QPalette.ColorRole.ToolTipBase, window)
    p.setColor(QPalette.ColorRole.ToolTipText, text)
    p.setColor(QPalette.ColorRole.Text, text)
    p.setColor(QPalette.ColorRole.Button, window)
    p.setColor(QPalette.ColorRole.ButtonText, text)
    p.setColor(QPalette.ColorRole.BrightText, QColor(255, 80, 80))
    p.setColor(QPalette.ColorRole.Highlight, QColor(42, 110, 180))
    p.setColor(QPalette.ColorRole.HighlightedText, QColor(255, 255, 255))
    p.setColor(QPalette.ColorRole.Link, QColor(90, 160, 230))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 120))
    return p


def apply_theme(app: QApplication, theme: str = "dark") -> None:
    """Fusion style with the dark palette and ``resources/style/<theme>.qss`` when present."""
    app.setStyle("Fusion")
    if theme == "dark":
        app.setPalette(dark_palette())
    else:
        app.setPalette(app.style().standardPalette())
    qss = resources_dir() / "style" / f"{theme}.qss"
    app.setStyleSheet(qss.read_text(encoding="utf-8") if qss.is_file() else "")
