"""Training entry point: config -> records -> patient split -> cache -> tf.data -> fit -> bundle.

Checkpoints every epoch (``BackupAndRestore``: weights, optimizer and epoch), so a killed run
resumes where it stopped when started again with the same config.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from cxr_viewer.training.config import TrainConfig
from cxr_viewer.training.data import (  # noqa: F401 - moved there: evaluate uses them too
    PreparedData,
    load_records,
    prepare_data,
    split_records,
)
from cxr_viewer.training.labels import MODEL_LABEL_NAMES, SCORED_INDICES
from cxr_viewer.training.metrics import auroc
from cxr_viewer.training.models import build_for_config, warmup_cosine_adamw

SCORED = list(SCORED_INDICES)


def configure_tensorflow(cfg: TrainConfig) -> None:
    """Seed everything and bound the thread pools (must run before TensorFlow builds ops)."""
    import keras
    import tensorflow as tf

    if cfg.threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(cfg.threads)
            tf.config.threading.set_inter_op_parallelism_threads(cfg.threads)
        except RuntimeError:
            pass  # already initialised in this process (e.g. a second run inside tests)
    keras.utils.set_random_seed(cfg.seed)
    if cfg.mixed_precision and tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")


def make_strategy(cfg: TrainConfig) -> Any:
    """``tf.distribute`` strategy: TF_CONFIG -> MultiWorkerMirrored, >1 GPU -> Mirrored."""
    import tensorflow as tf

    mode = cfg.distribute
    if mode == "auto":
        if os.environ.get("TF_CONFIG"):
            mode = "multiworker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            mode = "mirrored"
        else:
            mode = "none"
    if mode == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if mode == "mirrored":
        return tf.distribute.MirroredStrategy()
    if mode == "none":
        return tf.distribute.get_strategy()
    raise ValueError(f"unknown distribute mode {mode!r}")


class _EpochLog:
    """Per-epoch wall time and validation AUROC over the scored labels, printed and appended
    to ``history.jsonl`` (monitoring only: the final epoch's weights are kept, no selection)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        import keras

        class EpochLog(keras.callbacks.Callback):
            def __init__(self, val_ds: Any, val_targets: np.ndarray, path: Path) -> None:
                super().__init__()
                self.val_ds, self.val_targets, self.path = val_ds, val_targets, path
                self.t0 = 0.0

            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                train_s = time.perf_counter() - self.t0
                probs = self.model.predict(self.val_ds, verbose=0)
                if isinstance(probs, dict):
                    probs = probs["predictions"]
                p = np.clip(probs, 1e-6, 1 - 1e-6)
                known = self.val_targets >= 0
                y = np.clip(self.val_targets, 0, 1)
                bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
                val_bce = float((bce * known).sum() / max(known.sum(), 1))
                aucs = {}
                for j in SCORED:
                    y = self.val_targets[:, j]
                    keep = y >= 0
                    aucs[MODEL_LABEL_NAMES[j]] = auroc(y[keep], probs[keep, j])
                vals = [v for v in aucs.values() if np.isfinite(v)]
                entry = {
                    "epoch": epoch + 1,
                    "train_seconds": round(train_s, 1),
                    "loss": float((logs or {}).get("loss", float("nan"))),
                    "val_bce_unweighted": round(val_bce, 5),
                    "val_mean_auroc_scored": float(np.mean(vals)) if vals else None,
                    "val_auroc": {k: round(v, 4) for k, v in aucs.items()},
                    "time": time.strftime("%H:%M:%S"),
                }
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry) + "\n")
                print(
                    f"epoch {entry['epoch']}: {train_s:.1f}s loss {entry['loss']:.4f} "
                    f"val BCE {val_bce:.4f} val mean AUROC "
                    f"{entry['val_mean_auroc_scored']}",
                    flush=True,
                )

        return EpochLog(*args, **kwargs)


def _timing(history_path: Path, epochs: int, fit_s: float, total_s: float) -> dict[str, Any]:
    """Wall times from the per-epoch history (so a resumed run still reports every epoch)."""
    import tensorflow as tf

    per_epoch: dict[int, float] = {}
    if history_path.is_file():
        for line in history_path.read_text().splitlines():
            entry = json.loads(line)
            per_epoch[int(entry["epoch"])] = float(entry["train_seconds"])
    seconds = [per_epoch[e] for e in sorted(per_epoch)]
    return {
        "epochs": epochs,
        "train_seconds_all_epochs": round(sum(seconds), 1),
        "median_epoch_seconds": round(float(np.median(seconds)), 1) if seconds else None,
        "fit_seconds_this_session": round(fit_s, 1),
        "total_seconds_this_session": round(total_s, 1),
        "hardware": f"{os.cpu_count()} CPU cores (shared with other work), "
        f"{len(tf.config.list_physical_devices('GPU'))} GPU(s)",
    }


def run_training(cfg: TrainConfig, log: bool = True, finalize: bool = True) -> Path:
    """Train the model of ``cfg``; write ``<run_dir>/final.keras`` and, when ``finalize``, the
    bundle ``<bundle_dir>/{model.keras, model.json}`` with thresholds and validation metrics.

    Returns
    -------
    Path
        The bundle folder (or the run folder when ``finalize`` is False).
    """
    if cfg.ensemble_seeds:
        return _run_ensemble(cfg, log=log, finalize=finalize)
    configure_tensorflow(cfg)
    import keras

    from cxr_viewer.training.losses import (
        cam_box_loss,
        masked_box_map_bce,
        masked_weighted_bce,
        positive_weights,
    )
    from cxr_viewer.training.pipeline import make_dataset

    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    t_start = time.perf_counter()
    data = prepare_data(cfg, log=log)
    (run_dir / "split.json").write_text(
        json.dumps(
            {
                "train": [r.image_id for r in data.train],
                "val": [r.image_id for r in data.val],
                "train_patients": len({r.patient_id for r in data.train}),
                "val_patients": len({r.patient_id for r in data.val}),
                "holdout": None if data.holdout is None else [r.image_id for r in data.holdout],
            }
        )
    )
    if log:
        print(
            f"data: {len(data.train)} train / {len(data.val)} val images "
            f"({time.perf_counter() - t_start:.1f}s to read and cache)",
            flush=True,
        )
    m = cfg.model
    strategy = make_strategy(cfg)
    global_batch = cfg.batch_size * strategy.num_replicas_in_sync
    use_boxes = cfg.box_supervision > 0
    if use_boxes and m.architecture != "compact":
        raise ValueError("box_supervision needs the compact architecture")
    if cfg.box_loss not in ("map_bce", "cam"):
        raise ValueError(f"unknown box_loss {cfg.box_loss!r} (map_bce | cam)")
    masks = weights = None
    cam_grid = m.input_size // 16
    if use_boxes:
        from cxr_viewer.training.preprocess import box_targets

        masks, weights = box_targets(data.train, m.input_size, cam_grid * 4, cfg.box_sources)
        if cfg.box_loss == "cam":  # supervise only the boxed (image, label) pairs
            weights = weights * (masks.max(axis=(1, 2)) > 0)
        if log:
            n_box = int((weights * (masks.reshape(len(masks), -1, masks.shape[-1]).max(1) > 0))
                        .sum())
            print(f"box supervision ({cfg.box_loss}): {n_box} (image, label) box maps, "
                  f"weight {cfg.box_supervision}", flush=True)
    train_ds = make_dataset(
        data.train_images, data.train_targets, global_batch, True, cfg.seed, cfg.augment,
        m.normalization, m.channels, box_masks=masks, box_weights=weights, cam_grid=cam_grid,
    )
    val_x = make_dataset(
        data.val_images, None, global_batch, False, normalization=m.normalization,
        channels=m.channels,
    )
    steps = int(np.ceil(len(data.train) / global_batch))
    pos_w = positive_weights(data.train_targets, cfg.pos_weight_max, cfg.pos_weight_power)
    encoder_path = None
    if cfg.pretrain.epochs > 0:
        from cxr_viewer.training.pretrain import run_pretraining

        # Pixels of the training patients only (fit + calibration split when there is one);
        # the held-out validation patients' images are never seen, not even unlabelled.
        both_training = cfg.tuning or cfg.calibration_fraction > 0
        pixels = (np.concatenate([data.train_images, data.val_images]) if both_training
                  else np.asarray(data.train_images))
        encoder_path = run_pretraining(
            cfg, pixels, cfg.pretrain.run_dir or run_dir / "pretrain", log=log)
    with strategy.scope():
        base, cam_layer = build_for_config(cfg)
        if encoder_path is not None:
            from cxr_viewer.training.pretrain import transfer_encoder

            n_copied = transfer_encoder(base, encoder_path)
            if log:
                print(f"pretrain: {n_copied} encoder layers copied from {encoder_path}",
                      flush=True)
        if use_boxes:
            from cxr_viewer.training.models import OUTPUT_LAYER, with_box_head, with_cam_head

            if cfg.box_loss == "cam":
                model = with_cam_head(base, cam_layer)
                box_loss = cam_box_loss(cfg.cam_temperature, cfg.cam_evidence)
            else:
                model = with_box_head(base, cam_layer)
                box_loss = masked_box_map_bce()
            loss: Any = {
                OUTPUT_LAYER: masked_weighted_bce(pos_w, smoothing=cfg.label_smoothing),
                "box_map": box_loss,
            }
            loss_weights: Any = {OUTPUT_LAYER: 1.0, "box_map": cfg.box_supervision}
        else:
            model = base
            loss = masked_weighted_bce(pos_w, smoothing=cfg.label_smoothing)
            loss_weights = None
        optimizer = warmup_cosine_adamw(cfg.learning_rate, cfg.weight_decay, cfg.epochs,
                                        cfg.warmup_epochs, steps)
        model.compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights)
    if log:
        print(f"model: {base.name}, {base.count_params():,} parameters, {steps} steps/epoch",
              flush=True)
    history_path = run_dir / "history.jsonl"
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), delete_checkpoint=False),
        _EpochLog(val_x, data.val_targets, history_path),
    ]
    t_fit = time.perf_counter()
    model.fit(train_ds, epochs=cfg.epochs, callbacks=callbacks, verbose=0)
    fit_s = time.perf_counter() - t_fit
    # Export an uncompiled copy: the bundle must not depend on the custom training loss.
    export, _ = build_for_config(cfg)
    export.set_weights(base.get_weights())
    export.save(run_dir / "final.keras")
    timing = _timing(history_path, cfg.epochs, fit_s, time.perf_counter() - t_start)
    (run_dir / "timing.json").write_text(json.dumps(timing) + "\n")
    if log:
        print(f"training done: {timing}", flush=True)
    if not finalize:
        return run_dir
    from cxr_viewer.training.evaluate import finalize_bundle

    return finalize_bundle(cfg, run_dir / "final.keras", cam_layer, log=log)


def _run_ensemble(cfg: TrainConfig, log: bool, finalize: bool) -> Path:
    """Train one member per seed on the same split, then average their logits in one model."""
    from dataclasses import replace

    from cxr_viewer.training.evaluate import load_keras_model
    from cxr_viewer.training.models import CAM_LAYER, ensemble

    run_dir = Path(cfg.run_dir)
    members = []
    timings = []
    for seed in cfg.ensemble_seeds:
        member_cfg = replace(
            cfg,
            seed=seed,
            split_seed=cfg.split_seed_value,
            ensemble_seeds=(),
            run_dir=str(run_dir / f"member-{seed}"),
        )
        if log:
            print(f"ensemble member seed {seed}: {member_cfg.run_dir}", flush=True)
        member_dir = run_training(member_cfg, log=log, finalize=False)
        members.append(load_keras_model(member_dir / "final.keras"))
        timings.append(json.loads((member_dir / "timing.json").read_text()))
    model = ensemble(members)
    model.save(run_dir / "final.keras")
    timing = {
        "members": len(members),
        "epochs": cfg.epochs,
        "train_seconds_all_epochs": round(
            sum(t["train_seconds_all_epochs"] for t in timings), 1
        ),
        "per_member": timings,
    }
    (run_dir / "timing.json").write_text(json.dumps(timing) + "\n")
    if not finalize:
        return run_dir
    from cxr_viewer.training.evaluate import finalize_bundle

    return finalize_bundle(cfg, run_dir / "final.keras", CAM_LAYER, log=log)
