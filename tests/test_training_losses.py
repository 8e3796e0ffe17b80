"""Masked, class-weighted BCE and the box-map loss."""

from __future__ import annotations

import numpy as np

from cxr_viewer.training.losses import masked_box_map_bce, masked_weighted_bce, positive_weights


def _bce(y: float, p: float, w: float = 1.0) -> float:
    return -(w * y * np.log(p) + (1 - y) * np.log(1 - p))


def test_positive_weights() -> None:
    t = np.array([[1, 0, -1], [0, 0, 0], [0, 0, 1], [0, 0, 0]], float)
    w = positive_weights(t, max_weight=10.0, power=1.0)
    np.testing.assert_allclose(w, [3.0, 1.0, 2.0])  # label 1 has no positive -> 1
    assert positive_weights(t, max_weight=2.5, power=1.0)[0] == 2.5


def test_masked_labels_give_no_loss_and_no_gradient() -> None:
    import tensorflow as tf

    loss = masked_weighted_bce([2.0, 1.0, 1.0])
    y = tf.constant([[1.0, -1.0, 0.0]])
    p = tf.Variable([[0.7, 0.01, 0.2]])
    with tf.GradientTape() as tape:
        value = loss(y, p)
    expected = (_bce(1, 0.7, 2.0) + _bce(0, 0.2)) / 2
    np.testing.assert_allclose(value.numpy(), [expected], rtol=1e-5)
    grad = tape.gradient(value, p).numpy()
    assert grad[0, 1] == 0.0
    assert grad[0, 0] < 0 < grad[0, 2]


def test_all_masked_example_is_zero() -> None:
    loss = masked_weighted_bce([1.0, 1.0])
    assert float(loss(np.array([[-1.0, -1.0]], np.float32), np.array([[0.3, 0.9]], np.float32))[0]) == 0.0


def test_box_map_loss_weights() -> None:
    loss = masked_box_map_bce()
    pred = np.full((1, 2, 2, 2), 0.5, np.float32)
    pred[0, 0, 0, 0] = 0.9
    target = np.zeros((1, 2, 2, 2), np.float32)
    target[0, 0, 0, 0] = 1.0
    weight = np.zeros((1, 2, 2, 2), np.float32)
    weight[..., 0] = 1.0  # label 1 unsupervised: its 0.5 predictions must not count
    value = float(loss(np.concatenate([target, weight], -1), pred)[0])
    expected = (_bce(1, 0.9) + 3 * _bce(0, 0.5)) / 4
    np.testing.assert_allclose(value, expected, rtol=1e-5)
