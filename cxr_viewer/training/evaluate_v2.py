"""Evaluation of a 2.0-style bundle: calibration, operating points and the Abnormal score are
fitted on the calibration split of TRAINING patients; the validation patients are used once.

Splits (``TrainConfig.calibration_fraction > 0``, see ``train.split_records``):

- inner-train: the model was fitted on it;
- calibration: training patients the model did not fit; Platt scaling per output, operating
  thresholds per mode, the Abnormal score's source and recipe selection are chosen here;
- validation: patients no bundled model has trained on; every number on the card.

Everything here is deterministic given the weights and the data, so ``reproduce`` re-runs the
whole procedure and compares every number with the card.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cxr_viewer.inference.operating import MODE_SPECIFICITY, MODES
from cxr_viewer.training import metrics as M
from cxr_viewer.training.config import TrainConfig
from cxr_viewer.training.datasets import Record
from cxr_viewer.training.labels import MODEL_LABEL_NAMES, NO_FINDING_INDEX, SCORED_INDICES
from cxr_viewer.training.operating import (
    calibrate_columns,
    fit_platt,
    sens_spec_counts,
    sensitivity_at_specificity,
    threshold_for_specificity,
    wilson_interval,
)

N_BOOT = 1000
NIH_BOXES = ("NIH_BBox_List_2017",)
CHESTX_DET_BOXES = ("ChestX-Det10", "ChestX-Det13_mapped")
#: How the Abnormal score is made; chosen on the calibration split (``choose_abnormal``).
ABNORMAL_SOURCES = ("1 - No finding", "max scored finding")
#: Test-time augmentation copies (scale, dx, dy) when the config sets ``tta``: the image, a 5%
#: zoom out and in, and 3% shifts each way (no flips: chest anatomy is lateralised).
TTA_COPIES = [[1.0, 0.0, 0.0], [0.95, 0.0, 0.0], [1.05, 0.0, 0.0], [1.0, 0.03, 0.0],
              [1.0, -0.03, 0.0], [1.0, 0.0, 0.03], [1.0, 0.0, -0.03]]


@dataclass
class EvalData:
    inner: list[Record]
    calib: list[Record]
    val: list[Record]
    calib_images: np.ndarray
    val_images: np.ndarray
    calib_targets: np.ndarray
    val_targets: np.ndarray


def prepare_eval_data(cfg: TrainConfig, log: bool = False) -> EvalData:
    """Records of the three splits and the uint8 caches of calibration and validation."""
    from cxr_viewer.training.data import split_records
    from cxr_viewer.training.preprocess import build_cache

    inner, calib, val = split_records(cfg)
    if val is None:
        raise ValueError("calibration_fraction must be > 0 for a 2.0-style evaluation")
    size = cfg.model.input_size
    return EvalData(
        inner=inner,
        calib=calib,
        val=val,
        calib_images=np.asarray(build_cache(calib, size, cfg.cache_dir, log=log)),
        val_images=np.asarray(build_cache(val, size, cfg.cache_dir, log=log)),
        calib_targets=np.array([r.targets for r in calib], np.float32),
        val_targets=np.array([r.targets for r in val], np.float32),
    )


def _r(v: float | None, nd: int = 4) -> float | None:
    if v is None or not np.isfinite(v):
        return None
    return round(float(v), nd)


def mean_scored_auroc(targets: np.ndarray, probs: np.ndarray) -> float:
    vals = []
    for j in SCORED_INDICES:
        keep = targets[:, j] >= 0
        v = M.auroc(targets[keep, j], probs[keep, j])
        if np.isfinite(v):
            vals.append(v)
    return float(np.mean(vals)) if vals else float("nan")


def max_scored(probs: np.ndarray) -> np.ndarray:
    return np.max(probs[:, list(SCORED_INDICES)], axis=1)


def abnormal_scores(
    probs: np.ndarray, source: str, calibration: list[float] | None = None
) -> np.ndarray:
    """Abnormal score per image from calibrated outputs (see ``ABNORMAL_SOURCES``), then, with
    ``calibration`` [a, b], Platt-scaled into a calibrated P(abnormal) (monotone: the ranking,
    hence AUROC, does not change)."""
    if source == "1 - No finding":
        score = 1.0 - probs[:, NO_FINDING_INDEX]
    elif source == "max scored finding":
        score = max_scored(probs)
    else:
        raise ValueError(f"unknown abnormal source {source!r}")
    if calibration:
        from cxr_viewer.inference.operating import apply_platt

        score = apply_platt(score, calibration[0], calibration[1])
    return score


def fit_abnormal_calibration(targets: np.ndarray, probs: np.ndarray, source: str) -> list[float]:
    """Platt (a, b) turning the Abnormal source score into P(abnormal), fitted on the
    calibration split (normal vs abnormal radiographs)."""
    y = abnormal_targets(targets)
    keep = y >= 0
    a, b = fit_platt(y[keep], abnormal_scores(probs, source)[keep])
    return [round(a, 6), round(b, 6)]


def abnormal_targets(targets: np.ndarray) -> np.ndarray:
    """1 abnormal, 0 normal (NIH No Finding), -1 unknown."""
    nf = targets[:, NO_FINDING_INDEX]
    return np.where(nf < 0, -1.0, 1.0 - nf)


def fit_calibration(targets: np.ndarray, probs: np.ndarray) -> dict[str, list[float]]:
    """Platt (a, b) per output on the calibration split (identity with too few examples)."""
    out = {}
    for j, name in enumerate(MODEL_LABEL_NAMES):
        a, b = fit_platt(targets[:, j], probs[:, j])
        out[name] = [round(a, 6), round(b, 6)]
    return out


def fit_operating_points(targets: np.ndarray, probs: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per mode, per output: the threshold for the mode's specificity on the calibration split
    (rounded to 6 decimals: the card states them and inference uses them as stated)."""
    ops = {}
    for mode in MODES:
        spec = MODE_SPECIFICITY[mode]
        thr = {}
        for j, name in enumerate(MODEL_LABEL_NAMES):
            keep = targets[:, j] >= 0
            thr[name] = round(threshold_for_specificity(targets[keep, j], probs[keep, j], spec), 6)
        ops[mode] = {"target_specificity": spec, "thresholds": thr}
    return ops


def _boot_mean_ci(values: np.ndarray, seed: int, n_boot: int = N_BOOT) -> list[float | None]:
    if values.size == 0:
        return [None, None]
    rng = np.random.default_rng(seed)
    means = [values[rng.integers(0, values.size, values.size)].mean() for _ in range(n_boot)]
    lo, hi = np.quantile(means, [0.025, 0.975])
    return [_r(lo), _r(hi)]


def flags_per_normal(
    targets: np.ndarray, probs: np.ndarray, thresholds: list[float], seed: int = 0
) -> dict[str, Any]:
    """Mean number of the scored findings flagged on a normal radiograph (NIH No Finding)."""
    normal = targets[:, NO_FINDING_INDEX] == 1
    idx = list(SCORED_INDICES)
    thr = np.asarray([thresholds[j] for j in idx])
    counts = (probs[normal][:, idx] >= thr).sum(axis=1).astype(np.float64)
    return {
        "n_normal": int(normal.sum()),
        "mean": _r(float(counts.mean())) if counts.size else None,
        "ci95": _boot_mean_ci(counts, seed),
        "share_with_any_flag": _r(float((counts > 0).mean())) if counts.size else None,
    }


def operating_point_metrics(
    targets: np.ndarray, probs: np.ndarray, thresholds: list[float]
) -> dict[str, Any]:
    """Per output: sensitivity and specificity (Wilson 95% CI) at the given thresholds."""
    out = {}
    for j, name in enumerate(MODEL_LABEL_NAMES):
        c = sens_spec_counts(targets[:, j], probs[:, j], thresholds[j])
        n_pos, n_neg = c["tp"] + c["fn"], c["tn"] + c["fp"]
        s_ci = wilson_interval(c["tp"], n_pos)
        p_ci = wilson_interval(c["tn"], n_neg)
        out[name] = {
            "threshold": thresholds[j],
            "n_pos": n_pos,
            "n_neg": n_neg,
            "sensitivity": _r(c["tp"] / n_pos) if n_pos else None,
            "sensitivity_ci95": [_r(v) for v in s_ci] if s_ci else [None, None],
            "specificity": _r(c["tn"] / n_neg) if n_neg else None,
            "specificity_ci95": [_r(v) for v in p_ci] if p_ci else [None, None],
        }
    return out


def abnormal_metrics(
    targets: np.ndarray,
    probs: np.ndarray,
    patients: list[str],
    source: str,
    thresholds: dict[str, float] | None,
    seed: int = 0,
    calibration: list[float] | None = None,
) -> dict[str, Any]:
    """Normal vs abnormal: AUROC (patient bootstrap CI), sensitivity at 80% / 90% specificity,
    and sensitivity/specificity at the card's Abnormal thresholds."""
    y = abnormal_targets(targets)
    keep = y >= 0
    s = abnormal_scores(probs, source, calibration)
    y, s, g = y[keep], s[keep], np.asarray(patients)[keep]
    lo, hi, _ = M.bootstrap_ci(M.auroc, y, s, g, n_boot=N_BOOT, seed=seed + 77)

    def sens_at(spec: float) -> Any:
        return lambda yy, ss: sensitivity_at_specificity(yy, ss, spec)

    out: dict[str, Any] = {
        "source": source,
        "calibration": calibration or [],
        "ece": _r(M.expected_calibration_error(y, s)),
        "n_abnormal": int(y.sum()),
        "n_normal": int((y == 0).sum()),
        "auroc": _r(M.auroc(y, s)),
        "auroc_ci95": [_r(lo), _r(hi)],
    }
    for spec in (0.80, 0.90):
        key = f"sensitivity_at_specificity_{int(spec * 100)}"
        a, b, _ = M.bootstrap_ci(sens_at(spec), y, s, g, n_boot=N_BOOT, seed=seed + int(spec * 100))
        out[key] = _r(sensitivity_at_specificity(y, s, spec))
        out[key + "_ci95"] = [_r(a), _r(b)]
    if thresholds:
        modes = {}
        for mode, t in thresholds.items():
            c = sens_spec_counts(y, s, t)
            n_pos, n_neg = c["tp"] + c["fn"], c["tn"] + c["fp"]
            s_ci, p_ci = wilson_interval(c["tp"], n_pos), wilson_interval(c["tn"], n_neg)
            modes[mode] = {
                "threshold": t,
                "sensitivity": _r(c["tp"] / n_pos) if n_pos else None,
                "sensitivity_ci95": [_r(v) for v in s_ci] if s_ci else [None, None],
                "specificity": _r(c["tn"] / n_neg) if n_neg else None,
                "specificity_ci95": [_r(v) for v in p_ci] if p_ci else [None, None],
            }
        out["operating_points"] = modes
    return out


def choose_abnormal(targets: np.ndarray, probs: np.ndarray) -> tuple[str, dict[str, float | None]]:
    """The Abnormal source with the higher AUROC on the calibration split (ties: 1 - No
    finding, the model's own normal output)."""
    y = abnormal_targets(targets)
    keep = y >= 0
    aucs = {src: _r(M.auroc(y[keep], abnormal_scores(probs, src)[keep])) for src in ABNORMAL_SOURCES}
    best = max(ABNORMAL_SOURCES, key=lambda src: (aucs[src] or 0.0, src == ABNORMAL_SOURCES[0]))
    return best, aucs


def abnormal_thresholds(
    targets: np.ndarray, probs: np.ndarray, source: str, calibration: list[float] | None = None
) -> dict[str, float]:
    """Abnormal threshold per mode: the mode's specificity among the calibration split's
    normal radiographs."""
    y = abnormal_targets(targets)
    keep = y >= 0
    s = abnormal_scores(probs, source, calibration)
    return {
        mode: round(threshold_for_specificity(y[keep], s[keep], MODE_SPECIFICITY[mode]), 6)
        for mode in MODES
    }


def reliability_bins(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> list[dict[str, Any]]:
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    out = []
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            out.append({"bin": b, "n": int(sel.sum()), "mean_p": _r(float(p[sel].mean())),
                        "frac_pos": _r(float(y[sel].mean()))})
    return out


def _pooled(targets: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ys = np.concatenate([targets[:, j] for j in SCORED_INDICES])
    ps = np.concatenate([probs[:, j] for j in SCORED_INDICES])
    ok = ys >= 0
    return ys[ok], ps[ok]


def evaluate_v2(
    cfg: TrainConfig, model: Any, cam_layer: str | None, log: bool = False
) -> dict[str, Any]:
    """Fit calibration/operating points on the calibration split, measure on validation."""
    from cxr_viewer.training.measure import classification_metrics, localization
    from cxr_viewer.training.measure import predict_probabilities as predict

    t0 = time.perf_counter()
    data = prepare_eval_data(cfg, log=log)
    m = cfg.model
    tta = TTA_COPIES if cfg.tta else None
    raw_cal = predict(model, data.calib_images, m.normalization, m.channels, tta=tta)
    raw_val = predict(model, data.val_images, m.normalization, m.channels, tta=tta)
    raw_cal, raw_val = raw_cal.astype(np.float64), raw_val.astype(np.float64)
    calibration = fit_calibration(data.calib_targets, raw_cal)
    cal = calibrate_columns(raw_cal, list(MODEL_LABEL_NAMES), calibration)
    val = calibrate_columns(raw_val, list(MODEL_LABEL_NAMES), calibration)
    ops = fit_operating_points(data.calib_targets, cal)
    source, source_aucs = choose_abnormal(data.calib_targets, cal)
    ab_cal = fit_abnormal_calibration(data.calib_targets, cal, source)
    ab_thr = abnormal_thresholds(data.calib_targets, cal, source, ab_cal)
    balanced = [ops["balanced"]["thresholds"][n] for n in MODEL_LABEL_NAMES]
    patients = [r.patient_id for r in data.val]
    result = classification_metrics(
        data.val_targets, val, patients, dict(zip(MODEL_LABEL_NAMES, balanced, strict=True)),
        seed=cfg.seed,
    )
    yv, pv_raw = _pooled(data.val_targets, raw_val)
    _, pv = _pooled(data.val_targets, val)
    result["ece_scored_pooled_uncalibrated"] = _r(M.expected_calibration_error(yv, pv_raw))
    result["reliability"] = {
        "uncalibrated": reliability_bins(yv, pv_raw),
        "calibrated": reliability_bins(yv, pv),
    }
    result["calibration"] = calibration
    result["tta"] = tta or []
    result["operating_points"] = ops
    result["operating_validation"] = {}
    for mode in MODES:
        thr = [ops[mode]["thresholds"][n] for n in MODEL_LABEL_NAMES]
        result["operating_validation"][mode] = {
            "per_label": operating_point_metrics(data.val_targets, val, thr),
            "flags_per_normal": flags_per_normal(data.val_targets, val, thr, seed=cfg.seed),
        }
    result["abnormal"] = abnormal_metrics(
        data.val_targets, val, patients, source, ab_thr, seed=cfg.seed, calibration=ab_cal
    )
    result["abnormal"]["thresholds"] = ab_thr
    result["abnormal"]["calibration_split_auroc_by_source"] = source_aucs
    result["inner_split"] = {
        "calibration_images": len(data.calib),
        "calibration_patients": len({r.patient_id for r in data.calib}),
        "calibration_normals": int((data.calib_targets[:, NO_FINDING_INDEX] == 1).sum()),
        "mean_auroc_scored_calibration_split": _r(mean_scored_auroc(data.calib_targets, raw_cal)),
        "abnormal_auroc_calibration_split": source_aucs.get(source),
    }
    result["split"] = {
        "data": cfg.data.kind,
        "root": cfg.data.root,
        "kind": cfg.split,
        "seed": cfg.split_seed_value,
        "val_fraction": cfg.val_fraction,
        "calibration_fraction": cfg.calibration_fraction,
        "train_images": len(data.inner),
        "train_patients": len({r.patient_id for r in data.inner}),
        "calibration_images": len(data.calib),
        "calibration_patients": len({r.patient_id for r in data.calib}),
        "val_images": len(data.val),
        "val_patients": len({r.patient_id for r in data.val}),
        "val_normals": int((data.val_targets[:, NO_FINDING_INDEX] == 1).sum()),
        "val_ids_sha256": hashlib.sha256(
            "\n".join(r.image_id for r in data.val).encode()
        ).hexdigest(),
        "val_ids": [r.image_id for r in data.val],
    }
    if cam_layer:
        train_side = data.inner + data.calib
        result["localization"] = localization(
            model, cam_layer, train_side, data.val, data.val_images, m.normalization,
            m.channels, sources=NIH_BOXES,
        )
        result["localization_chestx_det"] = localization(
            model, cam_layer, train_side, data.val, data.val_images, m.normalization,
            m.channels, sources=CHESTX_DET_BOXES,
        )
    result["eval_seconds"] = round(time.perf_counter() - t0, 1)
    result["_probs"] = val
    result["_probs_uncalibrated"] = raw_val
    result["_targets"] = data.val_targets
    return result


def evaluate_baseline(
    cfg: TrainConfig, bundle_dir: str | Path, log: bool = False
) -> dict[str, Any]:
    """An older bundle (1.1.0: 15 outputs, Youden thresholds, no calibration) on the SAME
    validation patients as ``cfg``: per-label AUROC (CI), ECE, flags per normal radiograph at
    its card's thresholds, max-finding "abnormal" proxy, localization (NIH and ChestX-Det)."""
    from cxr_viewer.inference.card import ModelCard
    from cxr_viewer.training.measure import load_keras_model, localization
    from cxr_viewer.training.measure import predict_probabilities as predict

    bundle = Path(bundle_dir)
    card = ModelCard.load(bundle / "model.json")
    model = load_keras_model(bundle / card.weights)
    data = prepare_eval_data(cfg, log=log)
    probs = predict(model, data.val_images, card.input.normalization, card.input.channels)
    n_out = probs.shape[1]
    targets = data.val_targets
    patients = np.asarray([r.patient_id for r in data.val])
    per_label = {}
    for j in range(n_out):
        name = MODEL_LABEL_NAMES[j]
        keep = targets[:, j] >= 0
        y, p = targets[keep, j], probs[keep, j]
        lo, hi, _ = M.bootstrap_ci(M.auroc, y, p, patients[keep], n_boot=N_BOOT, seed=cfg.seed + j)
        thr = card.labels[j].threshold
        sens, spec = M.sensitivity_specificity(y, p, thr)
        per_label[name] = {"auroc": _r(M.auroc(y, p)), "auroc_ci95": [_r(lo), _r(hi)],
                           "threshold": thr, "sensitivity": _r(sens), "specificity": _r(spec),
                           "ece": _r(M.expected_calibration_error(y, p))}
    full = np.zeros((len(probs), len(MODEL_LABEL_NAMES)))
    full[:, :n_out] = probs
    thresholds = [card.labels[j].threshold if j < n_out else 2.0 for j in range(len(full[0]))]
    aucs = [per_label[MODEL_LABEL_NAMES[j]]["auroc"] for j in SCORED_INDICES]
    yv, pv = _pooled(targets, full)
    proxy = abnormal_metrics(targets, full, list(patients), "max scored finding", None, cfg.seed)
    result: dict[str, Any] = {
        "model": f"{card.name} {card.version}",
        "weights_sha256": card.weights_sha256,
        "val_ids_sha256": hashlib.sha256("\n".join(r.image_id for r in data.val).encode())
        .hexdigest(),
        "per_label": per_label,
        "mean_auroc_scored": _r(float(np.mean([a for a in aucs if a is not None]))),
        "ece_scored_pooled": _r(M.expected_calibration_error(yv, pv)),
        "flags_per_normal": flags_per_normal(targets, full, thresholds, seed=cfg.seed),
        "abnormal_proxy_max_finding": proxy,
        "thresholds": "its card's (Youden's J on its own validation split)",
    }
    if card.gradcam_layer:
        train_side = data.inner + data.calib
        m = card.input
        result["localization"] = localization(
            model, card.gradcam_layer, train_side, data.val, data.val_images, m.normalization,
            m.channels, sources=NIH_BOXES)
        result["localization_chestx_det"] = localization(
            model, card.gradcam_layer, train_side, data.val, data.val_images, m.normalization,
            m.channels, sources=CHESTX_DET_BOXES)
    return result


def inner_split_score(cfg: TrainConfig, model: Any) -> dict[str, Any]:
    """Recipe selection numbers on the calibration split (training patients only)."""
    from cxr_viewer.training.measure import predict_probabilities as predict

    data = prepare_eval_data(cfg)
    m = cfg.model
    raw = predict(model, data.calib_images, m.normalization, m.channels).astype(np.float64)
    calibration = fit_calibration(data.calib_targets, raw)
    cal = calibrate_columns(raw, list(MODEL_LABEL_NAMES), calibration)
    _, aucs = choose_abnormal(data.calib_targets, cal)
    per = {}
    for j in SCORED_INDICES:
        keep = data.calib_targets[:, j] >= 0
        per[MODEL_LABEL_NAMES[j]] = _r(M.auroc(data.calib_targets[keep, j], raw[keep, j]))
    return {"mean_auroc_scored": _r(mean_scored_auroc(data.calib_targets, raw)),
            "per_label": per, "abnormal_auroc": aucs, "n": len(data.calib)}


# ------------------------------------------------------------------------------------------------
# Card, report
# ------------------------------------------------------------------------------------------------
#: Card metric sections that ``reproduce`` recomputes and compares (2.0 cards).
COMPARED_SECTIONS_V2 = (
    "mean_auroc_scored",
    "mean_auroc_scored_ci95",
    "per_label",
    "ece_scored_pooled",
    "ece_scored_pooled_uncalibrated",
    "brier_scored_pooled",
    "calibration",
    "operating_points",
    "operating_validation",
    "abnormal",
    "inner_split",
    "localization",
    "localization_chestx_det",
)


def card_metrics_v2(result: dict[str, Any], timing: dict[str, Any] | None) -> dict[str, Any]:
    split = {k: v for k, v in result["split"].items() if k != "val_ids"}
    metrics: dict[str, Any] = {
        "measured_on": (
            f"validation patients of {split['root']} (NIH ChestX-ray14): {split['val_images']} "
            f"images of {split['val_patients']} patients ({split['val_normals']} normal "
            "radiographs) that no bundled model has trained on: model 1.1.0's validation "
            "patients plus a seeded 25% of the nih_random621 patients. Used once, after the "
            "recipe, calibration, operating points and Abnormal score were chosen on the "
            f"calibration split ({split['calibration_images']} images of "
            f"{split['calibration_patients']} training patients the weights were not fitted on). "
            "Sensitivity/specificity are at the balanced operating point (90% specificity on the "
            "calibration split), not tuned on this set."
        ),
        "split": split,
        "bootstrap": f"{N_BOOT} resamples of validation patients (percentile 95% CI); "
        "sensitivity/specificity CIs: Wilson score 95%",
    }
    for key in COMPARED_SECTIONS_V2 + ("scored_labels", "reliability"):
        if key in result:
            metrics[key] = result[key]
    if timing:
        metrics["training"] = timing
    return metrics


def reliability_png(result: dict[str, Any], path: str | Path, title: str = "") -> None:
    """Reliability diagram of the 9 scored findings pooled on validation, before and after
    calibration (bars: share positive per 10 probability bins; diagonal: perfect)."""
    import cv2

    side, margin, top = 360, 50, 40
    img = np.full((top + side + 2 * margin, 2 * (side + 2 * margin), 3), 255, np.uint8)
    if title:
        cv2.putText(img, title, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    ece = {"uncalibrated": result.get("ece_scored_pooled_uncalibrated"),
           "calibrated": result.get("ece_scored_pooled")}
    for k, key in enumerate(("uncalibrated", "calibrated")):
        x0 = k * (side + 2 * margin) + margin
        y0 = top + margin // 2
        cv2.rectangle(img, (x0, y0), (x0 + side, y0 + side), (0, 0, 0), 1)
        cv2.line(img, (x0, y0 + side), (x0 + side, y0), (170, 170, 170), 1, cv2.LINE_AA)
        for b in result["reliability"][key]:
            bx = x0 + int(b["bin"] * side / 10)
            h = int((b["frac_pos"] or 0.0) * side)
            cv2.rectangle(img, (bx + 3, y0 + side - h), (bx + side // 10 - 3, y0 + side),
                          (200, 120, 40), -1)
            cx = x0 + int((b["mean_p"] or 0.0) * side)
            cy = y0 + side - int((b["frac_pos"] or 0.0) * side)
            cv2.circle(img, (cx, cy), 4, (0, 0, 200), -1, cv2.LINE_AA)
            cv2.putText(img, str(b["n"]), (bx + 4, y0 + side - h - 4), cv2.FONT_HERSHEY_SIMPLEX,
                        0.3, (60, 60, 60), 1, cv2.LINE_AA)
        e = ece[key]
        label = f"{key}: ECE {e:.3f}" if e is not None else key
        cv2.putText(img, label, (x0 + 6, y0 + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
        cv2.putText(img, "predicted probability (bin)", (x0 + side // 2 - 90, y0 + side + 20),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
        cv2.putText(img, "share positive", (x0 - 45, y0 - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (60, 60, 60), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}"


def _ci(c: Any) -> str:
    if not c or c[0] is None:
        return "-"
    return f"{c[0]:.2f}-{c[1]:.2f}"


def report_markdown_v2(
    card: Any, result: dict[str, Any], baseline: dict[str, Any] | None, reproduced: str = ""
) -> str:
    """The model report of a 2.0 card, with 1.1.0 beside it when ``baseline`` is given."""
    from cxr_viewer.training.measure import POOL_EXCLUDE
    from cxr_viewer.training.report_header import report_header

    m = card.metrics
    split = m["split"]
    v = ".".join(card.version.split(".")[:2])  # "2.1": the columns of this model
    lines = report_header(card, reproduced, ("- Experiments and recipe choice: `experiments.md`.",))
    mean, ci = result["mean_auroc_scored"], result["mean_auroc_scored_ci95"]
    ab = result["abnormal"]
    bal = result["operating_validation"]["balanced"]["flags_per_normal"]
    loc = result.get("localization", {})
    eff = loc.get("per_finding", {}).get("Pleural effusion", {})
    pooled = loc.get("pooled_other_except_cardiomegaly", {})
    lows = [n for n in result["scored_labels"]
            if (result["per_label"][n]["auroc"] or 0) < 0.65]

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    lines += [
        "## Targets (validation patients)",
        "",
        f"| target | {v} | 95% CI | status |",
        "| --- | --- | --- | --- |",
        f"| mean AUROC, 9 scored findings >= 0.78 (stretch 0.80) | {_f(mean)} | {_ci(ci)} | "
        f"{met((mean or 0) >= 0.78)} |",
        f"| no scored finding below 0.65 | {len(lows)} below ({', '.join(lows) or 'none'}) | | "
        f"{met(not lows)} |",
        f"| Abnormal vs normal AUROC >= 0.85 | {_f(ab['auroc'])} | {_ci(ab['auroc_ci95'])} | "
        f"{met((ab['auroc'] or 0) >= 0.85)} |",
        f"| flags per normal radiograph <= 0.5 (balanced) | {_f(bal['mean'])} | "
        f"{_ci(bal['ci95'])} | {met((bal['mean'] or 9) <= 0.5)} |",
        f"| ECE <= 0.05 (pooled, calibrated) | {_f(result['ece_scored_pooled'])} | | "
        f"{met((result['ece_scored_pooled'] or 1) <= 0.05)} |",
        f"| effusion pointing game >= 0.6 (NIH boxes) | {_f(eff.get('pointing_game'))} | | "
        f"{met((eff.get('pointing_game') or 0) >= 0.6)} |",
        f"| pooled other boxed findings >= prior + 0.15 (NIH boxes) | "
        f"{_f(pooled.get('pointing_game'))} (prior {_f(pooled.get('prior_pointing_game'))}) | | "
        f"{met((pooled.get('pointing_game') or 0) >= (pooled.get('prior_pointing_game') or 1) + 0.15)} |",
        "",
        f"Validation: {split['val_images']} images of {split['val_patients']} patients, "
        f"{split['val_normals']} of them normal radiographs (few: the normal-image numbers have "
        "wide intervals). The hidden test set of the project may differ; read the intervals, "
        "not the point estimates.",
        "",
    ]
    b = baseline or {}
    bp = b.get("per_label", {})
    lines += [
        f"## Per finding: {v} beside 1.1.0 on the same validation patients",
        "",
        f"{v}: calibrated probabilities, balanced operating point (threshold for 90% specificity "
        "on the calibration split). 1.1.0: its card's Youden thresholds (chosen on its own "
        "validation patients, which are part of this set, so its sens/spec are optimistic).",
        "",
        f"| output | n pos / n | AUROC {v} (95% CI) | AUROC 1.1.0 (95% CI) | AP {v} | threshold "
        f"| sens (95% CI) | spec (95% CI) | ECE {v} | ECE 1.1.0 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    opv = result["operating_validation"]["balanced"]["per_label"]
    for name in MODEL_LABEL_NAMES:
        p = result["per_label"][name]
        o = opv[name]
        q = bp.get(name, {})
        tag = "" if name in result["scored_labels"] else " (extra)"
        lines.append(
            f"| {name}{tag} | {p['n_pos']} / {p['n']} | {_f(p['auroc'])} ({_ci(p['auroc_ci95'])}) "
            f"| {_f(q.get('auroc'))} ({_ci(q.get('auroc_ci95'))}) | {_f(p['ap'])} | "
            f"{_f(o['threshold'])} | {_f(o['sensitivity'])} ({_ci(o['sensitivity_ci95'])}) | "
            f"{_f(o['specificity'])} ({_ci(o['specificity_ci95'])}) | {_f(p['ece'])} | "
            f"{_f(q.get('ece'))} |"
        )
    lines += [
        "",
        f"Mean AUROC over the 9 scored findings: {v} **{_f(mean)}** ({_ci(ci)}); 1.1.0 "
        f"{_f(b.get('mean_auroc_scored'))}. Pooled ECE of the 9: {v} {_f(result['ece_scored_pooled'])} "
        f"calibrated ({_f(result['ece_scored_pooled_uncalibrated'])} before calibration); "
        f"1.1.0 {_f(b.get('ece_scored_pooled'))}. Reliability diagram: `reliability.png`.",
        "",
        "## Operating modes",
        "",
        "Thresholds per finding chosen on the calibration split (training patients) for the "
        "mode's specificity; measured here on validation. Flags per normal radiograph: mean "
        "number of the 9 scored findings flagged on a validation image NIH labels No Finding "
        "(bootstrap 95% CI).",
        "",
        "| mode | target spec | mean sens (9 scored) | mean spec (9 scored) | flags per normal "
        "(95% CI) | normals with any flag | Abnormal sens | Abnormal spec |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode in MODES:
        ov = result["operating_validation"][mode]
        sens = [ov["per_label"][n]["sensitivity"] for n in result["scored_labels"]]
        spec = [ov["per_label"][n]["specificity"] for n in result["scored_labels"]]
        sens = [s for s in sens if s is not None] or [float("nan")]
        spec = [s for s in spec if s is not None] or [float("nan")]
        fl = ov["flags_per_normal"]
        ao = ab.get("operating_points", {}).get(mode, {})
        lines.append(
            f"| {mode} | {MODE_SPECIFICITY[mode]:.2f} | "
            f"{_f(_r(float(np.mean(sens))))} | {_f(_r(float(np.mean(spec))))} | {_f(fl['mean'])} "
            f"({_ci(fl['ci95'])}) | {_f(fl['share_with_any_flag'])} | "
            f"{_f(ao.get('sensitivity'))} ({_ci(ao.get('sensitivity_ci95'))}) | "
            f"{_f(ao.get('specificity'))} ({_ci(ao.get('specificity_ci95'))}) |"
        )
    bfl = b.get("flags_per_normal")
    if bfl:
        lines += ["", f"1.1.0 at its card's thresholds on the same {bfl['n_normal']} normal "
                  f"radiographs: {_f(bfl['mean'])} flags per normal ({_ci(bfl['ci95'])}), "
                  f"{_f(bfl['share_with_any_flag'])} with at least one flag."]
    proxy = b.get("abnormal_proxy_max_finding")
    lines += [
        "",
        "## Abnormal (triage) score",
        "",
        f"Score: {ab['source']} of the calibrated outputs (chosen on the calibration split, AUROC "
        f"there by source: {ab['calibration_split_auroc_by_source']}), Platt-scaled on the "
        f"calibration split into P(abnormal) (a, b = {ab.get('calibration')}; ECE on validation "
        f"{_f(ab.get('ece'))}; the prevalence of abnormal radiographs here is "
        f"{ab['n_abnormal'] / max(ab['n_abnormal'] + ab['n_normal'], 1):.0%}, so most values are "
        "high: sort by it, do not read it as a screening-population probability). Normal vs abnormal on validation "
        f"({ab['n_normal']} normal, {ab['n_abnormal']} abnormal): AUROC **{_f(ab['auroc'])}** "
        f"({_ci(ab['auroc_ci95'])}); sensitivity at 80% specificity "
        f"{_f(ab['sensitivity_at_specificity_80'])} ({_ci(ab['sensitivity_at_specificity_80_ci95'])}),"
        f" at 90% specificity {_f(ab['sensitivity_at_specificity_90'])} "
        f"({_ci(ab['sensitivity_at_specificity_90_ci95'])}).",
    ]
    if proxy:
        lines += ["", f"1.1.0 has no No-finding output; as a proxy, its highest finding "
                  f"probability separates normal from abnormal with AUROC {_f(proxy['auroc'])} "
                  f"({_ci(proxy['auroc_ci95'])})."]
    for key, title in (("localization", "NIH boxes"), ("localization_chestx_det", "ChestX-Det boxes")):
        lo = result.get(key)
        if not lo:
            continue
        bl = b.get(key, {})
        lines += [
            "",
            f"## Heat-map localization: {title}",
            "",
            f"Boxes: {lo['boxes']}. CAM: {lo['cam']}. IoU: {lo['iou_threshold']}. "
            f"Prior: {lo['prior']}.",
            "",
            f"| finding | pairs | pointing game {v} | pointing game 1.1.0 | prior | mIoU {v} | "
            "mIoU 1.1.0 | mIoU prior |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        rows = list(lo["per_finding"].items()) + [
            ("pooled, excl. " + " & ".join(POOL_EXCLUDE), lo["pooled_other_except_cardiomegaly"])
        ]
        brows = dict(bl.get("per_finding", {}))
        brows["pooled, excl. " + " & ".join(POOL_EXCLUDE)] = bl.get(
            "pooled_other_except_cardiomegaly", {})
        for name, s in rows:
            q = brows.get(name, {})
            lines.append(
                f"| {name} | {s['n']} | {_f(s['pointing_game'])} | {_f(q.get('pointing_game'))} "
                f"| {_f(s['prior_pointing_game'])} | {_f(s['miou'])} | {_f(q.get('miou'))} | "
                f"{_f(s['prior_miou'])} |"
            )
    tr = m.get("training")
    if tr:
        import json

        lines += ["", "## Training", "", "```", json.dumps(tr, indent=2), "```"]
    lines += ["", "ROC curves: `roc.png`. Reliability: `reliability.png`. All numbers: "
              f"`metrics.json` ({v}) and `baseline-1.1.0.json` (1.1.0 on the same patients).", ""]
    return "\n".join(lines)
