"""Masked, class-weighted binary cross-entropy for multi-label training.

Targets of -1 mark labels a data set does not annotate: they contribute neither loss nor gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def positive_weights(targets: np.ndarray, max_weight: float = 10.0, power: float = 0.5) -> np.ndarray:
    """Per-label weight of the positive term: ``clip((neg / pos) ** power, 1, max_weight)``.

    Parameters
    ----------
    targets
        (n_images, n_labels) with 1 / 0 / -1 (not annotated, ignored).
    """
    t = np.asarray(targets, np.float64)
    pos = (t == 1).sum(axis=0)
    neg = (t == 0).sum(axis=0)
    ratio = np.where(pos > 0, neg / np.maximum(pos, 1), 1.0)
    return np.clip(ratio**power, 1.0, max_weight).astype(np.float32)


def masked_weighted_bce(
    pos_weight: Sequence[float], epsilon: float = 1e-6, smoothing: float = 0.0
) -> Callable[[Any, Any], Any]:
    """Loss function ``(y_true, y_pred) -> per-example loss`` for sigmoid outputs.

    Each example's loss is the mean over its annotated labels of
    ``-(w_j * y * log p + (1 - y) * log(1 - p))``; an example with no annotated label gives 0.
    ``smoothing`` s moves the targets to ``y (1 - s) + s / 2`` (text-mined labels are ~90%
    right); the positive weight still applies to the positive part.
    """
    import tensorflow as tf

    weights = tf.constant(np.asarray(pos_weight, np.float32))

    def loss(y_true: Any, y_pred: Any) -> Any:
        y_true = tf.cast(y_true, tf.float32)
        p = tf.clip_by_value(tf.cast(y_pred, tf.float32), epsilon, 1.0 - epsilon)
        mask = tf.cast(y_true >= 0.0, tf.float32)
        y = tf.clip_by_value(y_true, 0.0, 1.0)
        if smoothing:
            y = y * (1.0 - smoothing) + 0.5 * smoothing
        per_label = -(weights * y * tf.math.log(p) + (1.0 - y) * tf.math.log(1.0 - p))
        return tf.reduce_sum(per_label * mask, axis=-1) / tf.maximum(tf.reduce_sum(mask, axis=-1), 1.0)

    loss.__name__ = "masked_weighted_bce"
    return loss


def masked_box_map_bce(epsilon: float = 1e-6) -> Callable[[Any, Any], Any]:
    """Loss of the auxiliary box map: per-location BCE between the per-location probabilities
    (B, h, w, L) and the box coverage (soft targets in [0, 1]), each label weighted by its
    weight (0: not supervised on this image). ``y_true`` packs (targets, weights) along the last
    axis: (B, h, w, 2L).
    """
    import tensorflow as tf

    def loss(y_true: Any, y_pred: Any) -> Any:
        y_true = tf.cast(y_true, tf.float32)
        n = tf.shape(y_pred)[-1]
        target, weight = y_true[..., :n], y_true[..., n:]
        p = tf.clip_by_value(tf.cast(y_pred, tf.float32), epsilon, 1.0 - epsilon)
        bce = -(target * tf.math.log(p) + (1.0 - target) * tf.math.log(1.0 - p))
        per_example = tf.reduce_sum(bce * weight, axis=[1, 2, 3])
        norm = tf.maximum(tf.reduce_sum(weight, axis=[1, 2, 3]), 1.0)
        return per_example / norm

    loss.__name__ = "masked_box_map_bce"
    return loss


def cam_box_loss(
    temperature: float = 1.0, evidence: float = 0.5, epsilon: float = 1e-6
) -> Callable[[Any, Any], Any]:
    """Loss of the class activation map on the boxed findings only (``box_loss = "cam"``).

    ``y_pred`` is the raw class activation map (B, h, w, L): ``features . W_c`` of the class-
    specific linear head, without bias or sigmoid (what Grad-CAM shows, up to the ReLU and a
    positive factor). ``y_true`` packs (coverage, weights) along the last axis as for
    :func:`masked_box_map_bce`: coverage in [0, 1] is the fraction of each map cell inside a box.
    Only (image, label) pairs with weight > 0 *and* some box coverage are supervised; every
    other pair (negatives, positives without a box, unannotated) gives neither loss nor gradient.

    Per supervised pair, with ``p = softmax(cam / temperature)`` over the h*w locations:

    - inside mass: ``-log(sum(coverage * p))``: the map's mass must lie in the box (its peak
      moves there; the pointing game), independent of the map's overall level;
    - positive evidence (weight ``evidence``): coverage-weighted mean of ``softplus(-cam)``
      inside the box, so the map is positive there (a ReLU'd CAM that is all zero shows nothing).

    Each example's loss is the mean over its supervised pairs (0 when it has none).
    """
    import tensorflow as tf

    def loss(y_true: Any, y_pred: Any) -> Any:
        y_true = tf.cast(y_true, tf.float32)
        cam = tf.cast(y_pred, tf.float32)
        n = tf.shape(cam)[-1]
        cover, weight = y_true[..., :n], y_true[..., n:]
        batch = tf.shape(cam)[0]
        cam_f = tf.reshape(tf.transpose(cam, [0, 3, 1, 2]), [batch, n, -1])  # (B, L, hw)
        cov_f = tf.reshape(tf.transpose(cover, [0, 3, 1, 2]), [batch, n, -1])
        w = tf.reduce_max(weight, axis=[1, 2])  # (B, L): the weight is constant over the map
        area = tf.reduce_sum(cov_f, axis=-1)
        pair = tf.cast((w > 0) & (area > 0), tf.float32) * w
        log_p = tf.nn.log_softmax(cam_f / temperature, axis=-1)
        inside = tf.reduce_sum(cov_f * tf.exp(log_p), axis=-1)
        mass = -tf.math.log(tf.clip_by_value(inside, epsilon, 1.0))
        ev = tf.reduce_sum(cov_f * tf.nn.softplus(-cam_f), axis=-1) / tf.maximum(area, epsilon)
        per_pair = (mass + evidence * ev) * pair
        return tf.reduce_sum(per_pair, axis=-1) / tf.maximum(tf.reduce_sum(pair, axis=-1), 1.0)

    loss.__name__ = "cam_box_loss"
    return loss
