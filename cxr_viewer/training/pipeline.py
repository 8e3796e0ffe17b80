"""``tf.data`` pipelines over the uint8 cache: shuffle, batch, augment on the batch, prefetch.

Augmentation (training only): small rotation, scale and shift (one affine per image, applied with
``ImageProjectiveTransformV3``, outside pixels black as in the letterbox), brightness, contrast and
gamma. No left-right flip: chest anatomy is lateralised (heart on the left, a flipped film is a
different, rare anatomy), so a flipped image is not a plausible training example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class AugmentConfig:
    rotation_deg: float = 7.0
    scale: float = 0.10  # zoom in [1 - scale, 1 + scale]
    shift: float = 0.06  # translation as a fraction of the side
    brightness: float = 0.08  # additive, in [0, 1] units
    contrast: float = 0.20  # multiplicative around the image mean, in [1 - c, 1 + c]
    gamma: float = 0.20  # gamma in [1 - g, 1 + g]


def _random_transforms(n: Any, size: Any, cfg: AugmentConfig, seed_gen: Any) -> Any:
    """(n, 8) projective transforms (output pixel -> input pixel) for a ``size`` grid."""
    import tensorflow as tf

    theta = seed_gen.uniform([n], -1.0, 1.0) * (cfg.rotation_deg * math.pi / 180.0)
    s = 1.0 + seed_gen.uniform([n], -cfg.scale, cfg.scale)
    tx = seed_gen.uniform([n], -cfg.shift, cfg.shift) * size
    ty = seed_gen.uniform([n], -cfg.shift, cfg.shift) * size
    c = size / 2.0  # continuous centre (pixel i covers [i, i + 1))
    cos, sin = tf.cos(theta) / s, tf.sin(theta) / s
    # output point p samples input M @ (p - c - t) + c, M = R(theta) / s
    a0, a1 = cos, -sin
    b0, b1 = sin, cos
    a2 = c - a0 * (c + tx) - a1 * (c + ty)
    b2 = c - b0 * (c + tx) - b1 * (c + ty)
    zeros = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def _warp(images: Any, transforms: Any) -> Any:
    """Apply continuous-coordinate transforms of an image grid to ``images`` (any side):
    the transforms are rescaled so that the same geometric change hits every resolution."""
    import tensorflow as tf

    # ImageProjectiveTransformV3 samples pixel centres at integer coordinates; shift by 1/2.
    a0, a1, a2, b0, b1, b2 = (transforms[:, k] for k in range(6))
    a2 = a2 + 0.5 * (a0 + a1) - 0.5
    b2 = b2 + 0.5 * (b0 + b1) - 0.5
    zeros = tf.zeros_like(a0)
    t = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=t,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def _scale_transforms(transforms: Any, factor: float) -> Any:
    """Transforms of a grid ``factor`` times the size (same geometry in normalised units)."""
    import tensorflow as tf

    k = tf.constant([1, 1, factor, 1, 1, factor, 1, 1], tf.float32)
    return transforms * k


def _intensity(images: Any, cfg: AugmentConfig, seed_gen: Any) -> Any:
    import tensorflow as tf

    n = tf.shape(images)[0]
    gamma = 1.0 + seed_gen.uniform([n, 1, 1, 1], -cfg.gamma, cfg.gamma)
    x = tf.pow(tf.clip_by_value(images, 1e-6, 1.0), gamma)
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    contrast = 1.0 + seed_gen.uniform([n, 1, 1, 1], -cfg.contrast, cfg.contrast)
    bright = seed_gen.uniform([n, 1, 1, 1], -cfg.brightness, cfg.brightness)
    x = (x - mean) * contrast + mean + bright
    return tf.clip_by_value(x, 0.0, 1.0)


def normalize(x: Any, normalization: str, channels: int) -> Any:
    """[0, 1] one-channel batch -> model input (card ``normalization`` and ``channels``)."""
    import tensorflow as tf

    if channels == 3:
        x = tf.repeat(x, 3, axis=-1)
    if normalization == "unit":
        return x
    if normalization == "minus_one_one":
        return x * 2.0 - 1.0
    if normalization == "imagenet_torch":
        return (x - tf.constant(IMAGENET_MEAN)[:channels]) / tf.constant(IMAGENET_STD)[:channels]
    if normalization == "imagenet_caffe":
        bgr_mean = tf.constant([103.939, 116.779, 123.68])[:channels]
        return x[..., ::-1] * 255.0 - bgr_mean
    raise ValueError(f"unknown normalization {normalization!r}")


def make_dataset(
    images: np.ndarray,
    targets: np.ndarray | None,
    batch_size: int,
    training: bool,
    seed: int = 0,
    augment: AugmentConfig | None = None,
    normalization: str = "unit",
    channels: int = 1,
    box_masks: np.ndarray | None = None,
    box_weights: np.ndarray | None = None,
    cam_grid: int = 16,
) -> Any:
    """Build a ``tf.data.Dataset`` of (x, y) (or x alone when ``targets`` is None).

    With ``box_masks`` (N, G, G, L) uint8 and ``box_weights`` (N, L), y is a dict
    ``{"predictions": targets, "box_map": (B, cam_grid, cam_grid, 2L)}``: the box masks warped
    with the image's augmentation and average-pooled to the Grad-CAM grid, then the per-label
    weights broadcast over the grid (see ``losses.masked_box_map_bce``).

    Parameters
    ----------
    images
        (N, S, S) uint8 cache.
    targets
        (N, L) float32 with -1 for not-annotated labels.
    training
        Shuffle each epoch and augment (when ``augment`` is given); otherwise keep the order.
    """
    import tensorflow as tf

    images = np.ascontiguousarray(images)
    n = len(images)
    indices = tf.data.Dataset.range(n)
    img_t = tf.constant(images)
    tgt_t = None if targets is None else tf.constant(np.asarray(targets, np.float32))
    if training:
        indices = indices.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = indices.batch(batch_size, drop_remainder=False)
    seed_gen = tf.random.Generator.from_seed(seed) if (training and augment) else None
    size = images.shape[1]
    masks_t = weights_t = None
    if box_masks is not None and tgt_t is not None:
        masks_t = tf.constant(np.ascontiguousarray(box_masks))
        weights_t = tf.constant(np.asarray(box_weights, np.float32))
        mask_grid = box_masks.shape[1]
        if mask_grid % cam_grid:
            raise ValueError(f"mask grid {mask_grid} is not a multiple of the CAM grid {cam_grid}")

    def load(idx: Any) -> Any:
        x = tf.cast(tf.gather(img_t, idx), tf.float32)[..., None] / 255.0
        masks = None
        if masks_t is not None:
            masks = tf.cast(tf.gather(masks_t, idx), tf.float32)
        if seed_gen is not None:
            transforms = _random_transforms(tf.shape(x)[0], float(size), augment, seed_gen)
            x = _warp(x, transforms)
            if masks is not None:
                masks = _warp(masks, _scale_transforms(transforms, mask_grid / size))
            x = _intensity(x, augment, seed_gen)
        x = normalize(x, normalization, channels)
        if tgt_t is None:
            return x
        y = tf.gather(tgt_t, idx)
        if masks is None:
            return x, y
        pool = mask_grid // cam_grid
        soft = tf.nn.avg_pool2d(masks, pool, pool, "VALID")
        w = tf.gather(weights_t, idx)[:, None, None, :] * tf.ones_like(soft)
        return x, {"predictions": y, "box_map": tf.concat([soft, w], axis=-1)}

    # The Generator is stateful: map sequentially (the model, not the pipeline, is the bottleneck).
    ds = ds.map(load, num_parallel_calls=1 if seed_gen is not None else tf.data.AUTOTUNE)
    return ds.prefetch(2)
