"""``cxr-viewer train --config configs/nih-default.json``: train a model and write its bundle."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model from a JSON config (CPU, one GPU or several) and write its bundle",
        description="Train, evaluate on the held-out patients, and write models/<name>/ "
        "(model.keras + model.json card) and the report. Re-running the same config resumes "
        "from the last completed epoch. See docs/training.md.",
    )
    p.add_argument("--config", required=True, help="training config (JSON), e.g. "
                   "configs/nih-default.json")
    p.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    p.add_argument("--no-finalize", action="store_true",
                   help="stop after training (write <run_dir>/final.keras, no bundle/report)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from cxr_viewer.cli import CommandError
    from cxr_viewer.training.config import load_config
    from cxr_viewer.training.datasets import DatasetError

    path = Path(args.config)
    if not path.is_file():
        raise CommandError(f"{path}: config file not found")
    try:
        cfg = load_config(path)
    except (ValueError, TypeError) as exc:
        raise CommandError(f"{path}: {exc}") from exc
    if args.epochs is not None:
        cfg = replace(cfg, epochs=args.epochs)
    from cxr_viewer.training.train import run_training

    try:
        out = run_training(cfg, log=True, finalize=not args.no_finalize)
    except DatasetError as exc:
        raise CommandError(str(exc)) from exc
    print(f"done: {out}")
    return 0
