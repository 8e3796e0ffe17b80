"""The viewer's keyboard shortcuts: the single source for the actions, Help -> Shortcuts and the
README table (``python -m cxr_viewer.ui.shortcuts`` prints it as Markdown).

Conventions follow Weasis/RadiAnt/OHIF where they do not clash: ``H`` is the heat-map toggle (AI
issue), so flips are ``Shift+H`` (horizontal) and ``V`` (vertical); keys 1-9 are presets, so 1:1 is
``0``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shortcut:
    action: str  # the action id used by MainWindow (self.actions[action])
    keys: tuple[str, ...]  # QKeySequence strings, first is the primary one
    text: str  # what it does (menu text / help)
    group: str  # help section


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("open_files", ("Ctrl+O",), "Open file(s)...", "File"),
    Shortcut("open_folder", ("Ctrl+Shift+O",), "Open folder (recursive scan)...", "File"),
    Shortcut("export", ("Ctrl+E",), "Export annotated image...", "File"),
    Shortcut("copy_export", ("Ctrl+Shift+C",), "Copy the annotated image to the clipboard", "File"),
    Shortcut("quit", ("Ctrl+Q",), "Quit", "File"),
    Shortcut("next_image", ("PgDown", "N"), "Next image", "Navigate"),
    Shortcut("prev_image", ("PgUp", "B"), "Previous image", "Navigate"),
    Shortcut("next_frame", (".",), "Next frame (multi-frame images)", "Navigate"),
    Shortcut("prev_frame", (",",), "Previous frame (multi-frame images)", "Navigate"),
    Shortcut("preset_1", ("1",), "Window preset 1 of the active viewport's image (header windows first, then auto, full range)", "Window/level"),
    Shortcut("preset_2", ("2",), "Window preset 2", "Window/level"),
    Shortcut("preset_3", ("3",), "Window preset 3", "Window/level"),
    Shortcut("preset_4", ("4",), "Window preset 4", "Window/level"),
    Shortcut("preset_5", ("5",), "Window preset 5", "Window/level"),
    Shortcut("preset_6", ("6",), "Window preset 6", "Window/level"),
    Shortcut("preset_7", ("7",), "Window preset 7", "Window/level"),
    Shortcut("preset_8", ("8",), "Window preset 8", "Window/level"),
    Shortcut("preset_9", ("9",), "Window preset 9", "Window/level"),
    Shortcut("invert", ("I",), "Invert grey scale (active viewport)", "Window/level"),
    Shortcut("reset_window", ("W",), "Reset the active viewport's window/level to its default preset", "Window/level"),
    Shortcut("zoom_in", ("+", "Ctrl++"), "Zoom in (also: mouse wheel)", "View"),
    Shortcut("zoom_out", ("-", "Ctrl+-"), "Zoom out (also: mouse wheel)", "View"),
    Shortcut("fit", ("=", "F"), "Fit image to window", "View"),
    Shortcut("actual_size", ("0",), "1:1 (one image pixel per screen pixel)", "View"),
    Shortcut("rotate_cw", ("R",), "Rotate 90 degrees clockwise", "View"),
    Shortcut("rotate_ccw", ("L",), "Rotate 90 degrees counter-clockwise", "View"),
    Shortcut("flip_h", ("Shift+H",), "Flip horizontally (H is the heat map)", "View"),
    Shortcut("flip_v", ("V",), "Flip vertically", "View"),
    Shortcut("reset_view", ("Esc",), "Reset view (fit, no rotation/flip, default window)", "View"),
    Shortcut("annotations", ("Space",), "Show/hide corner annotations", "View"),
    Shortcut("overlay_planes", ("O",), "Show/hide DICOM overlay planes (60xx)", "View"),
    Shortcut("deidentify", ("Ctrl+D",), "De-identified mode (hide patient identifiers everywhere)", "View"),
    Shortcut("pan_mode", ("P",), "Left drag pans (default)", "Tools"),
    Shortcut("measure_mode", ("M",), "Left drag measures a distance (mm), in every viewport", "Tools"),
    Shortcut("delete_measurement", ("Del",), "Delete the selected measurement (of the active viewport)", "Tools"),
    Shortcut("clear_measurements", ("Shift+Del",), "Delete all measurements (of the active viewport)", "Tools"),
    Shortcut("heatmap", ("H",), "Show/hide the AI heat-map overlay of the active viewport (each viewport has its own)", "AI"),
    Shortcut("layout_1x1", ("Ctrl+1",), "Layout 1x1 (one viewport)", "Reading"),
    Shortcut("layout_1x2", ("Ctrl+2",), "Layout 1x2 (side by side)", "Reading"),
    Shortcut("layout_2x1", ("Ctrl+3",), "Layout 2x1 (one above the other)", "Reading"),
    Shortcut("layout_2x2", ("Ctrl+4",), "Layout 2x2", "Reading"),
    Shortcut("sync", ("S",), "Synchronise zoom/pan and window/level across viewports (same modality)", "Reading"),
    Shortcut("compare_prior", ("C",), "Compare with the prior (prior left, current right)", "Reading"),
    Shortcut("next_unread", ("U",), "Next unread study, most abnormal first", "Reading"),
    Shortcut("toggle_read", ("Ctrl+U",), "Mark the current study read / unread", "Reading"),
    Shortcut("worklist_pass", ("Ctrl+Shift+W",), "AI worklist: analyse every open study in the background", "Reading"),
    Shortcut("sort_worklist", ("Ctrl+Shift+S",), "Sort the study list by AI score (most abnormal first)", "Reading"),
    Shortcut("shortcuts", ("F1",), "This list of shortcuts", "Help"),
)

MOUSE: tuple[tuple[str, str], ...] = (
    ("Right drag", "Window/level (live): right = wider window (less contrast), down = darker; "
                   "the same on screen for MONOCHROME1 and MONOCHROME2"),
    ("Wheel", "Zoom around the cursor"),
    ("Middle drag", "Pan"),
    ("Left drag", "Pan (pan mode) or measure (measure mode, M)"),
    ("Left drag on a measurement end", "Move that end (any mode); the length follows"),
    ("Drop files/folders", "Open them"),
    ("Drag an image/series from Studies onto a viewport", "Show it in that viewport"),
    ("Click a viewport", "Make it the active (outlined) viewport: view, window/level, preset and "
                         "heat-map keys act on it (W/L follows in the others while sync is on)"),
    ("Click a row of the change table", "Show that finding's heat map on the current image and "
                                        "on the prior"),
)


def by_action() -> dict[str, Shortcut]:
    """Shortcuts keyed by action id."""
    return {s.action: s for s in SHORTCUTS}


def markdown_table() -> str:
    """The README table of keys and mouse gestures (generated from :data:`SHORTCUTS`)."""
    lines = ["| Keys | Action |", "| --- | --- |"]
    for s in SHORTCUTS:
        keys = " / ".join(f"`{k}`" for k in s.keys)
        lines.append(f"| {keys} | {s.text} |")
    for gesture, text in MOUSE:
        lines.append(f"| {gesture} | {text} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
