"""Self-supervised pretraining of the compact CNN's encoder: masked-patch inpainting.

No pretrained weights can be downloaded here, so the encoder can only learn from the
radiographs it holds. The objective is SimMIM-style masked image modelling adapted to a CNN
(cheap on a CPU: one forward pass per image, no second view and no large batch as a contrastive
objective would need):

- each training image gets the usual training augmentation (rotation, scale, shift, intensity);
- a random ``mask_ratio`` of its ``patch`` x ``patch`` squares is blacked out;
- the encoder (every layer of the classifier up to ``cam_features``, 1/16 of the input) feeds a
  light decoder (1x1 conv, two nearest-upsample + 3x3 conv stages, no skip connections, so the
  deep features must carry the content) that predicts the augmented, unmasked image at
  1/``target_factor`` of the input side;
- the loss is the mean absolute error on the masked squares plus ``visible_weight`` times the
  error on the visible ones.

Only the *pixels* of the fitted images are used (no labels). The caller decides which images:
``run_training`` passes the training patients' images (inner-train + calibration split), never
the held-out validation patients'. The encoder weights are saved to
``<pretrain_dir>/encoder.keras``; :func:`transfer_encoder` copies them, layer by layer by name,
into a freshly built classifier (the classifier head stays freshly initialised).

TensorFlow/Keras are imported inside functions only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from cxr_viewer.training.pipeline import (
    AugmentConfig,
    _intensity,
    _random_transforms,
    _warp,
    normalize,
)

ENCODER_FILE = "encoder.keras"


def make_pretrain_dataset(
    images: np.ndarray,
    batch_size: int,
    seed: int,
    augment: AugmentConfig | None,
    mask_ratio: float,
    patch: int,
    target_factor: int,
    normalization: str = "unit",
    channels: int = 1,
) -> Any:
    """``tf.data`` of (masked input, y) with y = (target, mask) stacked on the last axis at
    1/``target_factor`` of the side; images (N, S, S) uint8, S a multiple of ``patch`` and of
    ``target_factor``."""
    import tensorflow as tf

    images = np.ascontiguousarray(images)
    n, size = len(images), images.shape[1]
    if size % patch or patch % target_factor:
        raise ValueError(f"image side {size} must be a multiple of patch {patch}, "
                         f"and patch a multiple of target_factor {target_factor}")
    grid = size // patch
    img_t = tf.constant(images)
    seed_gen = tf.random.Generator.from_seed(seed)
    ds = tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=False)

    def load(idx: Any) -> Any:
        x = tf.cast(tf.gather(img_t, idx), tf.float32)[..., None] / 255.0
        b = tf.shape(x)[0]
        if augment is not None:
            x = _warp(x, _random_transforms(b, float(size), augment, seed_gen))
            x = _intensity(x, augment, seed_gen)
        cells = tf.cast(seed_gen.uniform([b, grid, grid, 1]) < mask_ratio, tf.float32)
        full = tf.repeat(tf.repeat(cells, patch, axis=1), patch, axis=2)
        small = tf.repeat(tf.repeat(cells, patch // target_factor, axis=1),
                          patch // target_factor, axis=2)
        target = tf.nn.avg_pool2d(x, target_factor, target_factor, "VALID")
        x_in = normalize(x * (1.0 - full), normalization, channels)
        return x_in, tf.concat([target, small], axis=-1)

    return ds.map(load, num_parallel_calls=1).prefetch(2)


def inpainting_loss(visible_weight: float = 0.1) -> Any:
    """``(y_true, y_pred) -> per-example loss``: y_true = (target, mask) on the last axis."""
    import tensorflow as tf

    def loss(y_true: Any, y_pred: Any) -> Any:
        target, mask = y_true[..., :1], y_true[..., 1:]
        err = tf.abs(tf.cast(y_pred, tf.float32) - target)
        masked = tf.reduce_sum(err * mask, axis=[1, 2, 3]) / tf.maximum(
            tf.reduce_sum(mask, axis=[1, 2, 3]), 1.0)
        visible = tf.reduce_sum(err * (1.0 - mask), axis=[1, 2, 3]) / tf.maximum(
            tf.reduce_sum(1.0 - mask, axis=[1, 2, 3]), 1.0)
        return masked + visible_weight * visible

    loss.__name__ = "inpainting_loss"
    return loss


def encoder_of(classifier: Any) -> Any:
    """The classifier's layers up to the Grad-CAM layer, as a model sharing its weights."""
    import keras

    from cxr_viewer.training.models import CAM_LAYER

    return keras.Model(classifier.inputs, classifier.get_layer(CAM_LAYER).output,
                       name="encoder")


def with_decoder(encoder: Any, target_factor: int, width: int = 64) -> Any:
    """Encoder (1/16) -> light decoder -> (B, S / target_factor, S / target_factor, 1)."""
    import keras
    from keras import layers

    ups = 16 // target_factor
    if ups < 1 or 16 % target_factor or ups & (ups - 1):
        raise ValueError(f"target_factor must be 1, 2, 4, 8 or 16, not {target_factor}")
    x = layers.Conv2D(width, 1, name="dec_proj")(encoder.output)
    x = layers.ReLU(name="dec_proj_relu")(x)
    ch, k = width, 0
    while ups > 1:
        ch = max(16, ch // 2)
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"dec_up{k}")(x)
        x = layers.Conv2D(ch, 3, padding="same", name=f"dec_conv{k}")(x)
        x = layers.ReLU(name=f"dec_relu{k}")(x)
        ups //= 2
        k += 1
    out = layers.Conv2D(1, 3, padding="same", activation="sigmoid", dtype="float32",
                        name="reconstruction")(x)
    return keras.Model(encoder.inputs, out, name="masked_autoencoder")


def transfer_encoder(classifier: Any, encoder_path: str | Path) -> int:
    """Copy the pretrained encoder's weights into ``classifier`` (layers matched by name; the
    classifier head and anything the encoder lacks keep their initial weights). Returns the
    number of layers copied; refuses a shape mismatch (another width or architecture)."""
    from cxr_viewer.training.measure import load_keras_model

    encoder = load_keras_model(encoder_path)
    copied = 0
    for layer in encoder.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        try:
            target = classifier.get_layer(layer.name)
        except ValueError:
            continue
        mine = target.get_weights()
        if [w.shape for w in mine] != [w.shape for w in weights]:
            raise ValueError(f"{encoder_path}: layer {layer.name} does not match the classifier "
                             f"({[w.shape for w in weights]} vs {[w.shape for w in mine]})")
        target.set_weights(weights)
        copied += 1
    if not copied:
        raise ValueError(f"{encoder_path}: no layer of the encoder matches the classifier")
    return copied


def run_pretraining(cfg: Any, images: np.ndarray, out_dir: str | Path, log: bool = True) -> Path:
    """Pretrain the encoder of ``cfg``'s classifier on ``images`` (N, S, S) uint8 with the
    masked-inpainting objective of ``cfg.pretrain``; returns ``<out_dir>/encoder.keras``.

    Resumable: an existing ``encoder.keras`` is returned as is; a killed run continues from its
    last finished epoch (``BackupAndRestore``). Per-epoch loss and wall time go to
    ``<out_dir>/history.jsonl``.
    """
    import keras

    from cxr_viewer.training.models import build_for_config, warmup_cosine_adamw

    p = cfg.pretrain
    out_dir = Path(out_dir)
    encoder_path = out_dir / ENCODER_FILE
    if encoder_path.is_file():
        if log:
            print(f"pretrain: reusing {encoder_path}", flush=True)
        return encoder_path
    out_dir.mkdir(parents=True, exist_ok=True)
    m = cfg.model
    if m.architecture != "compact":
        raise ValueError("pretraining needs the compact architecture")
    ds = make_pretrain_dataset(images, p.batch_size, cfg.seed, cfg.augment, p.mask_ratio,
                               p.patch, p.target_factor, m.normalization, m.channels)
    steps = int(np.ceil(len(images) / p.batch_size))
    base, _ = build_for_config(cfg)
    model = with_decoder(encoder_of(base), p.target_factor, p.decoder_width)
    model.compile(optimizer=warmup_cosine_adamw(p.learning_rate, p.weight_decay, p.epochs,
                                                p.warmup_epochs, steps),
                  loss=inpainting_loss(p.visible_weight))
    history = out_dir / "history.jsonl"

    class EpochLog(keras.callbacks.Callback):
        t0 = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            entry = {"epoch": epoch + 1, "seconds": round(time.perf_counter() - self.t0, 1),
                     "loss": round(float((logs or {}).get("loss", float("nan"))), 5),
                     "time": time.strftime("%H:%M:%S")}
            with history.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
            if log:
                print(f"pretrain epoch {entry['epoch']}: {entry['seconds']}s "
                      f"loss {entry['loss']}", flush=True)

    if log:
        print(f"pretrain: {len(images)} images, {steps} steps/epoch, {p.epochs} epochs, "
              f"{model.count_params():,} parameters (encoder + decoder)", flush=True)
    model.fit(ds, epochs=p.epochs, verbose=0, callbacks=[
        keras.callbacks.BackupAndRestore(str(out_dir / "backup"), delete_checkpoint=False),
        EpochLog(),
    ])
    encoder = encoder_of(base)
    tmp = out_dir / ("tmp-" + ENCODER_FILE)
    encoder.save(tmp)
    tmp.replace(encoder_path)
    return encoder_path
