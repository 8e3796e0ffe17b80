"""Command line entry point: ``cxr-viewer [gui|info|render|predict|export|train|evaluate|demo|
pacs|listen]``.

Each sub-command lives in ``cxr_viewer/commands/<name>.py`` and exposes
``register(subparsers) -> None``, which adds its parser and sets ``func`` (called with the parsed
arguments, returning an exit status). Command modules import heavy packages (TensorFlow, Qt)
inside ``func`` only, so ``cxr-viewer --help`` and ``cxr-viewer info`` stay fast.

Exit statuses: 0 success, 2 the input was refused or the command is unknown (one
``error: ...`` line on stderr, no traceback), 3 ``predict`` analysed some inputs and refused
others, 1 anything else.

``cxr-viewer PATH...`` opens the viewer; a first word that is neither a command nor an existing
or path-like name (``cxr-viewer predcit x``) is an unknown command, not a file to open.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from cxr_viewer import __version__

COMMANDS = ("gui", "info", "render", "predict", "export", "train", "evaluate", "demo", "audit",
            "pacs", "listen")


class CommandError(Exception):
    """An input was refused; the message is printed as ``error: <message>`` with exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxr-viewer",
        description="Chest radiograph viewer with a local AI second opinion "
        "(research use, not for primary diagnosis).",
    )
    parser.add_argument("--version", action="version", version=f"cxr-viewer {__version__}")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="load the model, open the generated sample, predict, compute heat maps, export, "
        "print a one-line summary and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"cxr_viewer.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"cxr_viewer.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def looks_like_path(word: str) -> bool:
    """An existing file or folder, or a name with a folder separator or a suffix."""
    return Path(word).expanduser().exists() or "/" in word or "\\" in word or (
        "." in word.strip("."))


def unknown_command(word: str, commands: Sequence[str]) -> int:
    """``error: unknown command 'predcit'`` with the list of commands; exit status 2."""
    close = difflib.get_close_matches(word, commands, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    print(f"error: unknown command {word!r}{hint}\n"
          f"commands: {', '.join(commands)}\n"
          "(to open an image, give its path: cxr-viewer FILE...)", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    commands = list(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    # Bare paths open the GUI: `cxr-viewer FILE...` == `cxr-viewer gui FILE...`.
    if args_list and args_list[0] not in commands and not args_list[0].startswith("-"):
        if not looks_like_path(args_list[0]):
            return unknown_command(args_list[0], commands)
    if not args_list or (
        args_list[0] not in commands
        and not args_list[0].startswith("-")
    ):
        args_list = ["gui", *args_list]
    args = parser.parse_args(args_list)
    if args.self_test:
        from cxr_viewer.selftest import run_self_test

        return run_self_test()
    if args.command is None:
        parser.print_help()
        return 0
    from cxr_viewer.io.decode import capture_native_stderr, native_stderr_capture_enabled

    captured_before = native_stderr_capture_enabled()
    # One-thread commands: a decoder's native panic message stays off the terminal.
    capture_native_stderr(args.command != "gui")
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # Refusals from the library (ImageRefused, ModelError) are input errors, not crashes.
        from cxr_viewer.errors import CxrError

        if not isinstance(exc, CxrError):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        capture_native_stderr(captured_before)


if __name__ == "__main__":
    raise SystemExit(main())
