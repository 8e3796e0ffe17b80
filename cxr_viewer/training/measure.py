"""Measuring a model on records: probabilities, classification metrics, heat-map localization.

The pieces both evaluations (``evaluate`` for 1.x cards, ``evaluate_v2`` for cards with
calibration and operating points) are built on; a module of its own so that neither of those
imports the other.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from cxr_viewer.training import metrics as M
from cxr_viewer.training.datasets import Record
from cxr_viewer.training.labels import (
    MODEL_LABEL_NAMES,
    MODEL_LABELS,
    SCORED_INDICES,
    model_label_for_box,
)

SCORED = list(SCORED_INDICES)
LOCALIZATION_BOX_SOURCES = ("NIH_BBox_List_2017",)
CAM_IOU_THRESHOLD = 0.5
N_BOOT = 1000
#: Findings excluded from the pooled "other findings" localization score (the issue's rule:
#: effusion is reported on its own; a location prior already hits 1.00 for cardiomegaly).
POOL_EXCLUDE = ("Cardiomegaly", "Pleural effusion")


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_keras_model(path: str | Path) -> Any:
    """Load a ``.keras`` file without compiling, with ``safe_mode=True`` (as the app does)."""
    import keras

    return keras.saving.load_model(str(path), compile=False, safe_mode=True)


def _model_input(images: np.ndarray, normalization: str, channels: int) -> np.ndarray:
    from cxr_viewer.inference.preprocess import normalize

    return np.stack([normalize(img, normalization, channels) for img in images]).astype(np.float32)


def predict_probabilities(
    model: Any,
    images: np.ndarray,
    normalization: str = "unit",
    channels: int = 1,
    batch: int = 32,
    tta: list[list[float]] | None = None,
) -> np.ndarray:
    """Sigmoid outputs for (N, S, S) uint8 letterboxed images -> (N, labels) float32.

    With ``tta``, each image's copies (``inference.predict.tta_batch``, as the app makes them)
    are averaged in logit space, exactly as ``ModelBundle.predict`` does."""
    if tta:
        from cxr_viewer.inference.predict import average_tta, tta_batch

        rows = []
        for i in range(len(images)):
            x = _model_input(images[i : i + 1], normalization, channels)
            rows.append(average_tta(np.asarray(model(tta_batch(x, tta), training=False))))
        return np.asarray(rows, np.float32)
    out = []
    for i in range(0, len(images), batch):
        x = _model_input(images[i : i + batch], normalization, channels)
        out.append(np.asarray(model(x, training=False), np.float32))
    return np.concatenate(out) if out else np.zeros((0, len(MODEL_LABELS)), np.float32)


class _GradCam:
    """All-label Grad-CAM: the app's fast path (``inference.gradcam.CamEngine``) when present,
    otherwise the same computation here (jacobian of the logits w.r.t. the layer activations)."""

    def __init__(self, model: Any, layer: str, input_shape: tuple[int, int, int]) -> None:
        try:
            from cxr_viewer.inference.gradcam import CamEngine

            self._engine: Any = CamEngine(model, layer, input_shape)
            self.implementation = "cxr_viewer.inference.gradcam.CamEngine (fast all-label Grad-CAM)"
        except ImportError:
            self._engine = None
            self._fn = self._build(model, layer)
            self.implementation = "cxr_viewer.training.evaluate._GradCam (GradientTape)"

    @staticmethod
    def _build(model: Any, layer: str) -> Any:
        import keras
        import tensorflow as tf

        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        clone.layers[-1].activation = keras.activations.linear
        grad_model = keras.Model(clone.inputs, [clone.get_layer(layer).output, clone.outputs[0]])

        @tf.function
        def fn(x: Any) -> Any:
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(x)
                feats, logits = grad_model(x, training=False)
            jac = tape.batch_jacobian(logits, feats)
            w = tf.reduce_mean(jac, axis=[2, 3])
            return tf.nn.relu(tf.einsum("bhwc,blc->blhw", feats, w))[0]

        return fn

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(1, S, S, C) -> raw CAMs (labels, h, w)."""
        if self._engine is not None:
            return self._engine.gradcam_all(x)[0]
        return self._fn(x).numpy()


def _box_groups(
    record: Record, sources: tuple[str, ...] = LOCALIZATION_BOX_SOURCES
) -> dict[str, list[M.BoxXYXY]]:
    groups: dict[str, list[M.BoxXYXY]] = defaultdict(list)
    for b in record.boxes:
        if b.source not in sources:
            continue
        label = model_label_for_box(b.finding)
        if label is not None:
            groups[label].append((b.x1, b.y1, b.x2, b.y2))
    return groups


def _image_shape(record: Record) -> tuple[int, int]:
    import cv2

    img = cv2.imread(str(record.image_path), cv2.IMREAD_UNCHANGED)
    if img is None:
        from cxr_viewer.training.preprocess import display_image

        img = display_image(record.image_path)
    return int(img.shape[0]), int(img.shape[1])


def localization(
    model: Any,
    cam_layer: str,
    train: list[Record],
    val: list[Record],
    val_images: np.ndarray,
    normalization: str = "unit",
    channels: int = 1,
    sources: tuple[str, ...] = LOCALIZATION_BOX_SOURCES,
) -> dict[str, Any]:
    """Pointing game and mIoU of Grad-CAM vs the location prior on the validation boxes of
    ``sources`` (the prior is built from the training records' boxes of the same sources)."""
    from cxr_viewer.imaging.geometry import fit_transform

    size = val_images.shape[1]
    # location prior per label, from the training images' boxes
    prior_boxes: dict[str, list[list[M.BoxXYXY]]] = defaultdict(list)
    prior_shapes: dict[str, list[tuple[int, int]]] = defaultdict(list)
    shape_cache: dict[Path, tuple[int, int]] = {}

    def shape_of(rec: Record) -> tuple[int, int]:
        if rec.image_path not in shape_cache:
            shape_cache[rec.image_path] = _image_shape(rec)
        return shape_cache[rec.image_path]

    for rec in train:
        for label, boxes in _box_groups(rec, sources).items():
            prior_boxes[label].append(boxes)
            prior_shapes[label].append(shape_of(rec))
    priors = {
        label: M.location_prior(prior_boxes[label], prior_shapes[label]) for label in prior_boxes
    }
    cam = _GradCam(model, cam_layer, (size, size, channels))
    pairs: list[dict[str, Any]] = []
    for i, rec in enumerate(val):
        groups = _box_groups(rec, sources)
        if not groups:
            continue
        shape = shape_of(rec)
        transform = fit_transform(shape, (size, size), "letterbox")
        raw = cam(_model_input(val_images[i : i + 1], normalization, channels))
        for label, boxes in groups.items():
            j = MODEL_LABEL_NAMES.index(label)
            full = transform.invert_map(raw[j], shape)
            prior = priors.get(label)
            entry: dict[str, Any] = {
                "image_id": rec.image_id,
                "label": label,
                "hit": M.pointing_game_hit(full, boxes),
                "iou": M.cam_iou(full, boxes, CAM_IOU_THRESHOLD),
            }
            if prior is not None:
                import cv2

                prior_full = cv2.resize(prior, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
                entry["prior_hit"] = M.pointing_game_hit(prior_full, boxes)
                entry["prior_iou"] = M.cam_iou(prior_full, boxes, CAM_IOU_THRESHOLD)
            pairs.append(entry)

    def summary(sel: list[dict[str, Any]]) -> dict[str, Any]:
        with_prior = [p for p in sel if "prior_hit" in p]
        return {
            "n": len(sel),
            "pointing_game": float(np.mean([p["hit"] for p in sel])) if sel else None,
            "miou": float(np.mean([p["iou"] for p in sel])) if sel else None,
            "prior_pointing_game": float(np.mean([p["prior_hit"] for p in with_prior]))
            if with_prior else None,
            "prior_miou": float(np.mean([p["prior_iou"] for p in with_prior]))
            if with_prior else None,
        }

    per_label = {
        label: summary([p for p in pairs if p["label"] == label])
        for label in MODEL_LABEL_NAMES
        if any(p["label"] == label for p in pairs)
    }
    pooled = summary([p for p in pairs if p["label"] not in POOL_EXCLUDE])
    return {
        "boxes": "radiologist boxes (" + ", ".join(sources) + ") of the "
        "validation images, one (image, finding) pair per finding boxed on an image",
        "cam": cam.implementation + f"; layer {cam_layer!r}; mapped back to the original pixels",
        "iou_threshold": f"CAM >= {CAM_IOU_THRESHOLD} x its maximum vs the union of the boxes",
        "prior": "fixed map: count of training-split boxes of the finding covering each point "
        "(normalised coordinates), peak where they overlap most",
        "per_finding": per_label,
        "pooled_other_except_cardiomegaly": {**pooled, "excluded": list(POOL_EXCLUDE)},
    }


def classification_metrics(
    targets: np.ndarray,
    probs: np.ndarray,
    patients: list[str],
    thresholds: dict[str, float] | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-label metrics over the annotated images; thresholds chosen by Youden's J unless
    given (name -> threshold)."""
    groups = np.asarray(patients)
    per_label: dict[str, Any] = {}
    for j, (name, finding) in enumerate(MODEL_LABELS):
        keep = targets[:, j] >= 0
        y, p, g = targets[keep, j], probs[keep, j], groups[keep]
        n_pos = int(y.sum())
        thr = thresholds[name] if thresholds and name in thresholds else M.youden_threshold(y, p)
        sens, spec = M.sensitivity_specificity(y, p, thr)
        lo, hi, n_valid = M.bootstrap_ci(M.auroc, y, p, g, n_boot=n_boot, seed=seed + j)
        per_label[name] = {
            "finding": finding,
            "n": int(keep.sum()),
            "n_pos": n_pos,
            "auroc": _r(M.auroc(y, p)),
            "auroc_ci95": [_r(lo), _r(hi)],
            "ap": _r(M.average_precision(y, p)),
            "prevalence": _r(n_pos / max(int(keep.sum()), 1)),
            "threshold": float(thr),  # full precision: the card's threshold reproduces sens/spec
            "sensitivity": _r(sens),
            "specificity": _r(spec),
            "ece": _r(M.expected_calibration_error(y, p)),
            "brier": _r(M.brier_score(y, p)),
        }
    scored = [MODEL_LABEL_NAMES[j] for j in SCORED]
    aucs = [per_label[n]["auroc"] for n in scored if per_label[n]["auroc"] is not None]

    def mean_auc(idx: np.ndarray) -> float:
        vals = [M.auroc(targets[idx, j], probs[idx, j]) for j in SCORED]
        vals = [v for v in vals if np.isfinite(v)]
        return float(np.mean(vals)) if vals else float("nan")

    uniq, inverse = np.unique(groups, return_inverse=True)
    members = [np.nonzero(inverse == k)[0] for k in range(len(uniq))]
    rng = np.random.default_rng(seed + 1000)
    boots = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), len(uniq))
        boots.append(mean_auc(np.concatenate([members[k] for k in pick])))
    boots = [b for b in boots if np.isfinite(b)]
    ys = np.concatenate([targets[:, j] for j in SCORED])
    ps = np.concatenate([probs[:, j] for j in SCORED])
    ok = ys >= 0
    return {
        "per_label": per_label,
        "mean_auroc_scored": _r(float(np.mean(aucs))) if aucs else None,
        "mean_auroc_scored_ci95": [_r(float(np.quantile(boots, 0.025))),
                                   _r(float(np.quantile(boots, 0.975)))] if boots else None,
        "scored_labels": scored,
        "ece_scored_pooled": _r(M.expected_calibration_error(ys[ok], ps[ok])),
        "brier_scored_pooled": _r(M.brier_score(ys[ok], ps[ok])),
    }


def _r(v: float | None, nd: int = 4) -> float | None:
    if v is None or not np.isfinite(v):
        return None
    return round(float(v), nd)
