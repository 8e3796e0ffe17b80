"""``cxr-viewer gui [PATH...]`` (also ``cxr-viewer PATH...``): the viewer window."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "gui",
        help="open the viewer (files and/or folders; the generated sample study when none)",
        description="Open the reading-workstation window. Folders are scanned recursively. "
        "With no path, the generated sample study and the bundled model are opened.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="DICOM/PNG/JPEG files or folders")
    p.add_argument("--no-model", action="store_true", help="do not load the AI model")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cxr_viewer.ui.app import run_gui  # Qt is imported only when the GUI is asked for

    return run_gui(list(args.paths), load_model=not args.no_model)
