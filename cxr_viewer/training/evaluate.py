"""Evaluation of a trained model on held-out patients, the model card and the report.

``evaluate_split`` measures, on the validation side of the seeded patient split:

- per label: AUROC with a patient-bootstrap 95% CI, average precision, the operating threshold
  (Youden's J on this set, or the card's), sensitivity/specificity at it, ECE and Brier score;
- heat-map localization against radiologist boxes: pointing-game hit rate and mIoU of the CAM
  thresholded at half its maximum, each beside the same score of a location prior (a fixed map
  peaking where that finding's *training* boxes overlap most).

``finalize_bundle`` turns a trained ``.keras`` file into ``models/<name>/`` (weights + card) and
writes the report (markdown, JSON, ROC PNG). ``reproduce`` re-runs the evaluation of a bundle and
compares it with the numbers stored on its card.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from cxr_viewer.inference.card import InputSpec, LabelSpec, ModelCard
from cxr_viewer.training import metrics as M
from cxr_viewer.training.config import TrainConfig
from cxr_viewer.training.labels import (
    MODEL_LABEL_NAMES,
    MODEL_LABELS,
    NIH_TO_VINDR,
    NOT_SCORED_BY_NIH,
)
from cxr_viewer.training.measure import (  # noqa: F401 - re-exported: the evaluate API
    CAM_IOU_THRESHOLD,
    LOCALIZATION_BOX_SOURCES,
    N_BOOT,
    POOL_EXCLUDE,
    SCORED,
    _box_groups,
    _GradCam,
    _image_shape,
    _model_input,
    _r,
    classification_metrics,
    load_keras_model,
    localization,
    predict_probabilities,
    sha256_file,
)
from cxr_viewer.training.report_header import report_header


def evaluate_split(
    cfg: TrainConfig,
    model: Any,
    cam_layer: str | None,
    thresholds: dict[str, float] | None = None,
    log: bool = False,
) -> dict[str, Any]:
    """Evaluate ``model`` on the validation side of ``cfg``'s seeded patient split."""
    from cxr_viewer.training.data import prepare_data

    data = prepare_data(replace(cfg, tuning=False), log=log)
    t0 = time.perf_counter()
    m = cfg.model
    probs = predict_probabilities(model, data.val_images, m.normalization, m.channels)
    result = classification_metrics(
        data.val_targets, probs, [r.patient_id for r in data.val], thresholds, seed=cfg.seed
    )
    result["split"] = {
        "data": cfg.data.kind,
        "root": cfg.data.root,
        "seed": cfg.seed,
        "val_fraction": cfg.val_fraction,
        "train_images": len(data.train),
        "train_patients": len({r.patient_id for r in data.train}),
        "val_images": len(data.val),
        "val_patients": len({r.patient_id for r in data.val}),
        "val_ids_sha256": hashlib.sha256(
            "\n".join(r.image_id for r in data.val).encode()
        ).hexdigest(),
    }
    if cam_layer:
        result["localization"] = localization(
            model, cam_layer, data.train, data.val, data.val_images, m.normalization, m.channels
        )
    result["eval_seconds"] = round(time.perf_counter() - t0, 1)
    result["_probs"] = probs
    result["_targets"] = data.val_targets
    return result


# ------------------------------------------------------------------------------------------------
# Card, bundle and report
# ------------------------------------------------------------------------------------------------
def _card_metrics(result: dict[str, Any], timing: dict[str, Any] | None) -> dict[str, Any]:
    split = result["split"]
    metrics = {
        "measured_on": (
            f"held-out validation split of {split['root']} "
            f"({'VinDr-CXR' if split['data'] == 'vindr' else 'NIH ChestX-ray14'}): "
            f"{split['val_images']} images of {split['val_patients']} patients never used for "
            f"training (patient-level split, seed {split['seed']}, {split['val_fraction']:.0%} of "
            "images); the final epoch's weights are kept (no early stopping or model selection "
            "on this set). Thresholds are chosen on this same set (Youden's J), so sensitivity "
            "and specificity at them are optimistic; AUROC and AP do not depend on them."
        ),
        "split": split,
        "mean_auroc_scored": result["mean_auroc_scored"],
        "mean_auroc_scored_ci95": result["mean_auroc_scored_ci95"],
        "scored_labels": result["scored_labels"],
        "per_label": result["per_label"],
        "ece_scored_pooled": result["ece_scored_pooled"],
        "brier_scored_pooled": result["brier_scored_pooled"],
        "bootstrap": f"{N_BOOT} resamples of validation patients (percentile 95% CI)",
    }
    if "localization" in result:
        metrics["localization"] = result["localization"]
    if timing:
        metrics["training"] = timing
    return metrics


def _training_data_statement(cfg: TrainConfig, split: dict[str, Any]) -> str:
    n_images = split["train_images"] + split["val_images"]
    split_text = (
        f"patient-level split: {split['train_images']} images / {split['train_patients']} "
        f"patients for training, {split['val_images']} images / {split['val_patients']} "
        "patients held out for validation"
    )
    init = ("ImageNet initialisation from a local weights file" if cfg.model.imagenet_weights
            else "trained from scratch (no pretrained weights)")
    boxes = (f"; radiologist boxes of the training images ({', '.join(cfg.box_sources)}) also "
             "supervise the class activation map" if cfg.box_supervision > 0 else "")
    if cfg.data.kind == "vindr":
        return (
            f"{n_images} VinDr-CXR images ({cfg.data.root}), image labels aggregated over the "
            f"three readers ({cfg.data.vindr_rule}); each image treated as its own patient; "
            f"{split_text}; {init}{boxes}."
        )
    label_map = "; ".join(f"{k} -> {v}" for k, v in NIH_TO_VINDR.items())
    return (
        f"{n_images} NIH ChestX-ray14 images ({cfg.data.root}: frontal PA/AP radiographs; the "
        "NIH box-annotated subset, so nearly every image has a finding - not a screening "
        f"population); {split_text}. Labels text-mined from reports by NIH (>90% accurate per "
        f"NIH). Label map NIH -> VinDr-CXR: {label_map} (Mass and Nodule merged into one "
        f"output); {init}{boxes}."
    )


def build_card(
    cfg: TrainConfig,
    result: dict[str, Any],
    cam_layer: str | None,
    weights_sha256: str,
    timing: dict[str, Any] | None = None,
    architecture: str = "",
) -> ModelCard:
    """The model card of a trained NIH model from its evaluation result."""
    per = result["per_label"]
    labels = tuple(
        LabelSpec(name=name, finding=finding, threshold=float(per[name]["threshold"]))
        for name, finding in MODEL_LABELS
    )
    split = result["split"]
    n_images = split["train_images"] + split["val_images"]
    nih = cfg.data.kind != "vindr"
    dataset = "NIH ChestX-ray14" if nih else "VinDr-CXR"
    return ModelCard(
        name=cfg.name,
        version=cfg.version,
        architecture=architecture,
        labels=labels,
        input=InputSpec(
            height=cfg.model.input_size,
            width=cfg.model.input_size,
            channels=cfg.model.channels,
            normalization=cfg.model.normalization,
            resize="letterbox",
        ),
        weights="model.keras",
        weights_sha256=weights_sha256,
        gradcam_layer=cam_layer,
        training_data=_training_data_statement(cfg, split),
        intended_use=(
            "Research use only. Not validated for clinical use, not for primary diagnosis: an AI "
            f"second opinion trained on {n_images} {dataset} images. "
            + (f"{len(NOT_SCORED_BY_NIH)} VinDr-CXR findings are not scored: "
               + ", ".join(NOT_SCORED_BY_NIH) + "." if nih else "")
        ),
        metrics=_card_metrics(result, timing),
        notes=(
            "Outputs after the nine scored findings are NIH extras (Edema, Emphysema, Hernia, "
            "Pneumonia, and Mass and Nodule separately) that the viewer does not rank. Hernia "
            "has a single positive image in the data: its output is meaningless. Thresholds: "
            "Youden's J on the validation split. Heat maps: Grad-CAM on layer "
            f"{cam_layer!r} (1/16 of the input resolution)."
            + (f" {cfg.card_notes}" if cfg.card_notes else "")
        ),
    )


def _report_markdown(card: ModelCard, result: dict[str, Any], reproduced: str = "") -> str:
    m = card.metrics
    lines = report_header(card, reproduced)
    mean, ci = result["mean_auroc_scored"], result["mean_auroc_scored_ci95"]
    lines += [
        f"**Mean AUROC over the {len(result['scored_labels'])} scored VinDr-CXR findings: "
        f"{mean:.3f}** (95% CI {ci[0]:.3f}-{ci[1]:.3f}; target 0.80). Pooled over them: ECE "
        f"{result['ece_scored_pooled']:.3f}, Brier {result['brier_scored_pooled']:.3f}.",
        "",
        "| output | VinDr-CXR finding | n pos / n | AUROC (95% CI) | AP | threshold | sens | spec "
        "| ECE | Brier |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def f(v: Any) -> str:
        return "-" if v is None else f"{v:.3f}"

    for name, finding in MODEL_LABELS:
        p = result["per_label"][name]
        ci_l = p["auroc_ci95"]
        auc = f"{f(p['auroc'])} ({f(ci_l[0])}-{f(ci_l[1])})"
        lines.append(
            f"| {name} | {finding or 'extra (not ranked)'} | {p['n_pos']} / {p['n']} | {auc} | "
            f"{f(p['ap'])} | {f(p['threshold'])} | {f(p['sensitivity'])} | "
            f"{f(p['specificity'])} | {f(p['ece'])} | {f(p['brier'])} |"
        )
    loc = result.get("localization")
    if loc:
        lines += [
            "",
            "## Heat-map localization",
            "",
            f"Boxes: {loc['boxes']}. CAM: {loc['cam']}. IoU: {loc['iou_threshold']}. "
            f"Prior: {loc['prior']}.",
            "",
            "| finding | pairs | pointing game (Grad-CAM) | pointing game (prior) | mIoU "
            "(Grad-CAM) | mIoU (prior) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        rows = list(loc["per_finding"].items()) + [
            ("pooled, excl. " + " & ".join(POOL_EXCLUDE), loc["pooled_other_except_cardiomegaly"])
        ]
        for name, s in rows:
            lines.append(
                f"| {name} | {s['n']} | {f(s['pointing_game'])} | {f(s['prior_pointing_game'])} "
                f"| {f(s['miou'])} | {f(s['prior_miou'])} |"
            )
    tr = m.get("training")
    if tr:
        lines += ["", "## Training", "", "```", json.dumps(tr, indent=2), "```"]
    lines += ["", "ROC curves: `roc.png`. All numbers: `metrics.json`.", ""]
    return "\n".join(lines)


def roc_png(result: dict[str, Any], path: str | Path, title: str = "") -> None:
    """Draw one ROC panel per scored label (3 columns) with OpenCV and save it as PNG."""
    import cv2

    probs, targets = result["_probs"], result["_targets"]
    panel, margin = 260, 36
    cols = 3
    n = len(SCORED)
    rows = (n + cols - 1) // cols
    img = np.full((rows * panel + 40, cols * panel, 3), 255, np.uint8)
    if title:
        cv2.putText(img, title, (10, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for k, j in enumerate(SCORED):
        r, c = divmod(k, cols)
        x0, y0 = c * panel + margin, 40 + r * panel + 10
        side = panel - margin - 14
        cv2.rectangle(img, (x0, y0), (x0 + side, y0 + side), (0, 0, 0), 1)
        cv2.line(img, (x0, y0 + side), (x0 + side, y0), (180, 180, 180), 1, cv2.LINE_AA)
        keep = targets[:, j] >= 0
        fpr, tpr, _ = M.roc_curve(targets[keep, j], probs[keep, j])
        pts = np.stack([x0 + fpr * side, y0 + side - tpr * side], axis=1).round().astype(np.int32)
        cv2.polylines(img, [pts], False, (200, 60, 0), 2, cv2.LINE_AA)
        auc = result["per_label"][MODEL_LABEL_NAMES[j]]["auroc"]
        label = f"{MODEL_LABEL_NAMES[j]}  AUC {auc:.2f}" if auc is not None else MODEL_LABEL_NAMES[j]
        cv2.putText(img, label, (x0 + 4, y0 + side - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                    (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, "FPR", (x0 + side // 2 - 10, y0 + side + 13), cv2.FONT_HERSHEY_SIMPLEX,
                    0.35, (80, 80, 80), 1, cv2.LINE_AA)
        cv2.putText(img, "TPR", (x0 - 30, y0 + side // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (80, 80, 80), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def write_report(
    card: ModelCard, result: dict[str, Any], out_dir: str | Path, reproduced: str = ""
) -> Path:
    """Write ``report.md``, ``metrics.json`` and ``roc.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    (out / "metrics.json").write_text(json.dumps(public, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(_report_markdown(card, result, reproduced), encoding="utf-8")
    roc_png(result, out / "roc.png", f"{card.name} {card.version}: ROC on held-out patients")
    return out


def describe_architecture(model: Any, cfg: TrainConfig) -> str:
    """One-line architecture description for the card."""
    m = cfg.model
    if m.architecture == "compact" and len(cfg.ensemble_seeds) > 1:
        n = len(cfg.ensemble_seeds)
        return (
            f"ensemble of {n} compact residual CNNs ({model.count_params():,} parameters in "
            f"all; seeds {list(cfg.ensemble_seeds)}, same training split) averaged inside one "
            "keras model: each member has a stride-2 conv stem (2 convs), 6 residual "
            "depthwise-separable blocks with BatchNorm (last two dilated) and global average "
            "pooling; the members' last feature maps are concatenated as the Grad-CAM layer "
            f"'cam_features' ({m.input_size // 16}x{m.input_size // 16}) and one dense sigmoid "
            f"layer x {len(MODEL_LABELS)} averages the members' logits; input {m.input_size} px "
            "1-channel. Chosen for a 2-core CPU and 639 training images: few parameters, fast "
            f"epochs, a {m.input_size // 16}x{m.input_size // 16} map for heat maps, dilation for "
            "the receptive field the heart and pleura need, and an ensemble to reduce the "
            "variance of from-scratch training."
        )
    if m.architecture == "compact":
        return (
            f"compact residual CNN ({model.count_params():,} parameters): stride-2 conv stem "
            "(2 convs), 6 residual depthwise-separable blocks with BatchNorm (last two dilated), "
            f"Grad-CAM layer 'cam_features' at {m.input_size // 16}x{m.input_size // 16}, global "
            f"average pooling, dense sigmoid x {len(MODEL_LABELS)}; input {m.input_size} px "
            f"1-channel. Chosen for a 2-core CPU and 639 training images: few parameters, fast "
            f"epochs, a {m.input_size // 16}x{m.input_size // 16} map for useful heat maps, "
            "dilation for the receptive field the heart and pleura need."
        )
    return f"{m.architecture} ({model.count_params():,} parameters), input {m.input_size} px"


def build_card_v2(
    cfg: TrainConfig,
    result: dict[str, Any],
    cam_layer: str | None,
    weights_sha256: str,
    timing: dict[str, Any] | None,
    architecture: str,
) -> ModelCard:
    """The card of a 2.0-style bundle: balanced thresholds on the labels, calibration,
    operating points and the Abnormal score from the calibration split."""
    from cxr_viewer.training.evaluate_v2 import card_metrics_v2

    ops = result["operating_points"]
    labels = tuple(
        LabelSpec(name=name, finding=finding,
                  threshold=float(ops["balanced"]["thresholds"][name]))
        for name, finding in MODEL_LABELS
    )
    split = result["split"]
    n_images = split["train_images"] + split["calibration_images"] + split["val_images"]
    label_map = "; ".join(f"{k} -> {v}" for k, v in NIH_TO_VINDR.items())
    boxes = (f" Radiologist boxes of the inner-training images ({', '.join(cfg.box_sources)}) "
             "also supervise the class activation map." if cfg.box_supervision > 0 else "")
    training_data = (
        f"{n_images} NIH ChestX-ray14 images of {split['train_patients'] + split['calibration_patients'] + split['val_patients']} "
        f"patients ({cfg.data.root}): 639 images NIH chose for box annotation (nearly all "
        "abnormal) and 452 images of randomly sampled NIH patients (nih_random621, with 75 normal "
        f"radiographs). Patient-level split ({cfg.split}, seed {split['seed']}): weights fitted "
        f"on {split['train_images']} images / {split['train_patients']} patients; calibration "
        f"split {split['calibration_images']} images / {split['calibration_patients']} training "
        "patients (recipe selection, calibration, operating points); validation "
        f"{split['val_images']} images / {split['val_patients']} patients. Labels text-mined "
        f"from reports by NIH (>90% accurate per NIH). Label map NIH -> VinDr-CXR: {label_map} "
        "(Mass and Nodule merged); a 16th output 'No finding' (none of the 14 NIH labels). "
        f"Trained from scratch: no pretrained weights exist here.{boxes}"
    )
    return ModelCard(
        name=cfg.name,
        version=cfg.version,
        architecture=architecture,
        labels=labels,
        input=InputSpec(height=cfg.model.input_size, width=cfg.model.input_size,
                        channels=cfg.model.channels, normalization=cfg.model.normalization,
                        resize="letterbox"),
        weights="model.keras",
        weights_sha256=weights_sha256,
        gradcam_layer=cam_layer,
        training_data=training_data,
        intended_use=(
            "Research use only. Not validated for clinical use, not for primary diagnosis: an AI "
            f"second opinion trained on NIH ChestX-ray14 images. {len(NOT_SCORED_BY_NIH)} "
            "VinDr-CXR findings are not scored: " + ", ".join(NOT_SCORED_BY_NIH) + "."
        ),
        metrics=card_metrics_v2(result, timing),
        notes=(
            "Probabilities are Platt-calibrated per output (calibration) on the calibration "
            "split; flags use the active operating mode's thresholds (operating_points: "
            "high-sensitivity = 80%, balanced = 90%, high-specificity = 95% specificity on the "
            "calibration split). Abnormal = " + result["abnormal"]["source"] + " of the "
            "calibrated outputs, Platt-scaled into P(abnormal) on the calibration split "
            "(abnormal.calibration). "
            "Outputs after the nine scored findings are NIH extras (Edema, Emphysema, Hernia, "
            "Pneumonia, and Mass and Nodule separately) that the viewer does not rank, then No "
            "finding. Hernia has very few positives: its output is meaningless. Heat maps: "
            f"Grad-CAM on layer {cam_layer!r} (1/16 of the input resolution)."
            + (f" {cfg.card_notes}" if cfg.card_notes else "")
        ),
        calibration=result["calibration"],
        operating_points=ops,
        default_mode="balanced",
        abnormal={"source": result["abnormal"]["source"],
                  "calibration": result["abnormal"]["calibration"],
                  "thresholds": result["abnormal"]["thresholds"]},
        tta=result.get("tta", []),
    )


def write_report_v2(
    card: ModelCard, result: dict[str, Any], out_dir: str | Path, reproduced: str = ""
) -> Path:
    """``report.md``, ``metrics.json``, ``roc.png`` and ``reliability.png`` of a 2.0 card; the
    1.1.0 numbers on the same patients come from ``baseline-1.1.0.json`` when present."""
    from cxr_viewer.training.evaluate_v2 import reliability_png, report_markdown_v2

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    from cxr_viewer.fsutil import atomic_write_text

    atomic_write_text(out / "metrics.json", json.dumps(public, indent=2) + "\n")
    base_path = out / "baseline-1.1.0.json"
    baseline = json.loads(base_path.read_text()) if base_path.is_file() else None
    if baseline and baseline.get("val_ids_sha256") != result["split"]["val_ids_sha256"]:
        baseline = None  # measured on other patients: not comparable
    atomic_write_text(out / "report.md", report_markdown_v2(card, result, baseline, reproduced))
    roc_png(result, out / "roc.png", f"{card.name} {card.version}: ROC on validation patients")
    reliability_png(result, out / "reliability.png",
                    f"{card.name} {card.version}: reliability, 9 scored findings pooled")
    return out


def finalize_bundle(
    cfg: TrainConfig, model_path: str | Path, cam_layer: str | None, log: bool = False
) -> Path:
    """Evaluate a trained model and write the bundle (``model.keras`` + ``model.json``) and the
    report into ``cfg.bundle_dir`` and ``cfg.report_dir``."""
    model = load_keras_model(model_path)
    if cfg.calibration_fraction > 0:  # a 2.0 card: calibration, operating points, Abnormal
        from cxr_viewer.training.evaluate_v2 import evaluate_v2

        result = evaluate_v2(cfg, model, cam_layer, log=log)
        build, write = build_card_v2, write_report_v2
    else:
        result = evaluate_split(cfg, model, cam_layer, thresholds=None, log=log)
        build, write = build_card, write_report
    bundle = Path(cfg.bundle_dir)
    bundle.mkdir(parents=True, exist_ok=True)
    weights = bundle / "model.keras"
    if Path(model_path).resolve() != weights.resolve():
        shutil.copyfile(model_path, weights)
    timing_path = Path(cfg.run_dir) / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.is_file() else None
    card = build(cfg, result, cam_layer, sha256_file(weights), timing,
                 describe_architecture(model, cfg))
    card.metrics["config"] = cfg.to_dict()
    card.save(bundle / "model.json")
    ModelCard.load(bundle / "model.json")  # the card we wrote must pass validation
    if cfg.report_dir:
        write(card, result, cfg.report_dir)
    if log:
        print(f"bundle written: {bundle} (mean AUROC {result['mean_auroc_scored']})", flush=True)
    return bundle


def _flatten_numbers(d: Any, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten_numbers(v, f"{prefix}{k}."))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out.update(_flatten_numbers(v, f"{prefix}{i}."))
    elif isinstance(d, (int, float)) and not isinstance(d, bool):
        out[prefix.rstrip(".")] = float(d)
    return out


#: Card metric sections that ``reproduce`` recomputes and compares.
COMPARED_SECTIONS = (
    "mean_auroc_scored",
    "mean_auroc_scored_ci95",
    "per_label",
    "ece_scored_pooled",
    "brier_scored_pooled",
    "localization",
)


def compare_with_card(
    card: ModelCard, result: dict[str, Any], sections: tuple[str, ...] = COMPARED_SECTIONS
) -> dict[str, Any]:
    """Largest absolute difference between the card's numbers and a new evaluation."""
    old = _flatten_numbers({k: card.metrics.get(k) for k in sections})
    new = _flatten_numbers({k: result.get(k) for k in sections})
    keys = sorted(set(old) | set(new))
    diffs = {}
    missing = []
    for k in keys:
        if k in old and k in new:
            diffs[k] = abs(old[k] - new[k])
        else:
            missing.append(k)
    worst = max(diffs.items(), key=lambda kv: kv[1]) if diffs else ("", 0.0)
    return {"compared": len(diffs), "max_abs_diff": worst[1], "worst": worst[0],
            "missing": missing}


def reproduce(
    bundle_dir: str | Path,
    data_root: str | Path | None = None,
    out_dir: str | Path | None = None,
    tolerance: float = 1e-3,
    log: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Re-evaluate a bundle trained by this pipeline and compare with its card.

    Parameters
    ----------
    bundle_dir
        ``models/<name>/`` whose card holds the training config (``metrics.config``).
    data_root
        Override of the data folder recorded in the config.
    out_dir
        Where to write the report (None: no report).
    tolerance
        Largest absolute difference still counted as reproduced.

    Returns
    -------
    (result, comparison)
        ``comparison["reproduced"]`` is True when every compared number agrees within
        ``tolerance`` and none is missing.
    """
    from cxr_viewer.errors import ModelError
    from cxr_viewer.training.config import config_from_dict

    bundle = Path(bundle_dir)
    card = ModelCard.load(bundle / "model.json")
    if "config" not in card.metrics:
        raise ModelError(str(bundle), "the card holds no training config: not a bundle this "
                         "pipeline trained, nothing to reproduce")
    cfg = config_from_dict(card.metrics["config"])
    if data_root is not None:
        cfg = replace(cfg, data=replace(cfg.data, root=str(data_root)))
    weights = bundle / card.weights
    if not weights.is_file():
        raise ModelError(str(weights), "weights file not found")
    digest = sha256_file(weights)
    if card.weights_sha256 and digest != card.weights_sha256:
        raise ModelError(str(weights), "SHA-256 differs from the card's weights_sha256")
    model = load_keras_model(weights)
    if cfg.calibration_fraction > 0:
        return _reproduce_v2(card, cfg, model, bundle, out_dir, tolerance, log)
    thresholds = {lab.name: lab.threshold for lab in card.labels}
    result = evaluate_split(cfg, model, card.gradcam_layer, thresholds, log=log)
    _same_split_or_raise(card, result, bundle)
    comparison = compare_with_card(card, result)
    _judge(comparison, tolerance)
    if out_dir is not None:
        line = _reproduction_line(comparison)
        write_report(card, result, out_dir, line)
    return result, comparison


def _same_split_or_raise(card: ModelCard, result: dict[str, Any], bundle: Path) -> None:
    from cxr_viewer.errors import ModelError

    if result["split"]["val_ids_sha256"] != card.metrics["split"]["val_ids_sha256"]:
        raise ModelError(str(bundle), "the validation split differs from the card's (other data "
                         "or another split seed): the numbers are not comparable")


def _judge(comparison: dict[str, Any], tolerance: float) -> None:
    comparison["reproduced"] = bool(
        comparison["max_abs_diff"] <= tolerance and not comparison["missing"]
    )
    comparison["tolerance"] = tolerance


def _reproduction_line(comparison: dict[str, Any]) -> str:
    return (
        f"Reproduction check against the card: {comparison['compared']} numbers compared, "
        f"largest absolute difference {comparison['max_abs_diff']:.2g} "
        f"({'reproduced' if comparison['reproduced'] else 'NOT reproduced'}, tolerance "
        f"{comparison['tolerance']:g})."
    )


def _reproduce_v2(
    card: ModelCard,
    cfg: TrainConfig,
    model: Any,
    bundle: Path,
    out_dir: str | Path | None,
    tolerance: float,
    log: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Re-run the whole 2.0 procedure (calibration, operating points, Abnormal source on the
    calibration split; every metric on validation) and compare with the card, including the
    card's calibration and thresholds themselves."""
    from cxr_viewer.training.evaluate_v2 import COMPARED_SECTIONS_V2, evaluate_v2

    result = evaluate_v2(cfg, model, card.gradcam_layer, log=log)
    _same_split_or_raise(card, result, bundle)
    comparison = compare_with_card(card, result, COMPARED_SECTIONS_V2)
    stated = _flatten_numbers({"calibration": card.calibration,
                               "operating_points": card.operating_points})
    found = _flatten_numbers({"calibration": result["calibration"],
                              "operating_points": result["operating_points"]})
    extra = [abs(stated[k] - found[k]) for k in stated if k in found]
    if len(stated) != len(found):
        comparison["missing"].append("card calibration/operating_points")
    if extra and max(extra) > comparison["max_abs_diff"]:
        comparison["max_abs_diff"], comparison["worst"] = max(extra), "card operating fields"
    comparison["compared"] += len(extra)
    _judge(comparison, tolerance)
    if out_dir is not None:
        line = _reproduction_line(comparison)
        write_report_v2(card, result, out_dir, line)
    return result, comparison
