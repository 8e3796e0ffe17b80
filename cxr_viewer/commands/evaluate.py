"""``cxr-viewer evaluate --model models/default --data nih-shared``: re-measure a bundle on its
held-out patients, write the report, and check the card's numbers are reproduced."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a model bundle on its held-out patients and write the report",
        description="Recompute AUROC (bootstrap CI), AP, sensitivity/specificity at the card's "
        "thresholds, ECE, Brier and heat-map localization on the validation split the card "
        "names (for a 2.0 card also the calibration, operating points and Abnormal score, "
        "refitted on its calibration split); write report.md, metrics.json and roc.png "
        "(and reliability.png); exit 1 when the card's numbers are not reproduced.",
    )
    p.add_argument("--model", default="models/default", help="bundle folder (default: %(default)s)")
    p.add_argument("--data", default="nih-shared", choices=("nih-shared", "nih", "vindr"),
                   help="data layout the bundle was trained on; must match its card "
                   "(default: %(default)s)")
    p.add_argument("--data-root", default=None,
                   help="data folder (default: the one in the card's training config)")
    p.add_argument("--out", default="docs/model-report", help="report folder (default: %(default)s)")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="largest difference to the card still counted as reproduced")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from cxr_viewer.cli import CommandError
    from cxr_viewer.errors import CxrError
    from cxr_viewer.training.evaluate import reproduce

    bundle = Path(args.model)
    if not (bundle / "model.json").is_file():
        raise CommandError(f"{bundle}: no model.json (not a model bundle)")
    from cxr_viewer.inference.card import ModelCard

    try:
        card = ModelCard.load(bundle / "model.json")
    except CxrError as exc:
        raise CommandError(str(exc)) from exc
    kind = card.metrics.get("config", {}).get("data", {}).get("kind")
    if kind is not None and kind != args.data:
        raise CommandError(f"{bundle}: trained on data kind {kind!r}, not {args.data!r}")
    try:
        result, cmp = reproduce(bundle, args.data_root, args.out, args.tolerance, log=False)
    except CxrError as exc:
        raise CommandError(str(exc)) from exc
    print(f"mean AUROC over {len(result['scored_labels'])} scored findings: "
          f"{result['mean_auroc_scored']} (95% CI {result['mean_auroc_scored_ci95']})")
    for name, p in result["per_label"].items():
        print(f"  {name:20s} AUROC {p['auroc']}  AP {p['ap']}  sens {p['sensitivity']}  "
              f"spec {p['specificity']}")
    ab = result.get("abnormal")
    if ab:
        print(f"  Abnormal ({ab['source']}) vs normal: AUROC {ab['auroc']} (95% CI "
              f"{ab['auroc_ci95']}); sensitivity at 80% / 90% specificity "
              f"{ab['sensitivity_at_specificity_80']} / {ab['sensitivity_at_specificity_90']}")
    for mode, ov in (result.get("operating_validation") or {}).items():
        fl = ov["flags_per_normal"]
        print(f"  {mode:17s} flags per normal radiograph {fl['mean']} (95% CI {fl['ci95']}, "
              f"n={fl['n_normal']})")
    if "ece_scored_pooled_uncalibrated" in result:
        print(f"  ECE (9 scored, pooled): {result['ece_scored_pooled']} calibrated, "
              f"{result['ece_scored_pooled_uncalibrated']} before")
    loc = result.get("localization")
    if loc:
        for name, s in loc["per_finding"].items():
            print(f"  pointing game {name:20s} {s['pointing_game']} (prior "
                  f"{s['prior_pointing_game']}), n={s['n']}")
    print(f"report: {args.out}/report.md")
    verdict = "reproduced" if cmp["reproduced"] else "NOT reproduced"
    print(f"card check: {cmp['compared']} numbers, max |diff| {cmp['max_abs_diff']:.3g} "
          f"({cmp['worst']}): {verdict}")
    return 0 if cmp["reproduced"] else 1
