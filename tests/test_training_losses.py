"""Masked, class-weighted BCE and the box-map loss."""

from __future__ import annotations

import numpy as np
import pytest

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


def _cam_pack(cover: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(B, h, w, L) coverage and (B, L) pair weights -> the (B, h, w, 2L) y_true of the loss."""
    w = np.broadcast_to(weight[:, None, None, :], cover.shape).astype(np.float32)
    return np.concatenate([cover.astype(np.float32), w], -1)


def test_cam_box_loss_value_by_hand() -> None:
    from cxr_viewer.training.losses import cam_box_loss

    cam = np.zeros((1, 2, 2, 2), np.float32)
    cam[0, :, :, 0] = [[2.0, 0.0], [-1.0, 0.5]]
    cam[0, :, :, 1] = 3.0  # label 1 is not supervised on this image: must not count
    cover = np.zeros((1, 2, 2, 2), np.float32)
    cover[0, 0, :, 0] = [1.0, 0.5]  # top row inside the box (right cell half covered)
    value = float(cam_box_loss(temperature=1.0, evidence=0.5)(
        _cam_pack(cover, np.array([[1.0, 0.0]])), cam)[0])
    z = np.array([2.0, 0.0, -1.0, 0.5])
    p = np.exp(z) / np.exp(z).sum()
    mass = -np.log(p[0] + 0.5 * p[1])
    ev = (np.log1p(np.exp(-2.0)) + 0.5 * np.log1p(np.exp(0.0))) / 1.5
    np.testing.assert_allclose(value, mass + 0.5 * ev, rtol=1e-5)
    # temperature rescales the map before the softmax
    value_t = float(cam_box_loss(temperature=2.0, evidence=0.0)(
        _cam_pack(cover, np.array([[1.0, 0.0]])), cam)[0])
    p2 = np.exp(z / 2) / np.exp(z / 2).sum()
    np.testing.assert_allclose(value_t, -np.log(p2[0] + 0.5 * p2[1]), rtol=1e-5)


def test_cam_box_loss_supervises_only_boxed_pairs() -> None:
    import tensorflow as tf

    from cxr_viewer.training.losses import cam_box_loss

    loss = cam_box_loss()
    rng = np.random.default_rng(0)
    cam = tf.Variable(rng.normal(size=(2, 4, 4, 3)).astype(np.float32))
    cover = np.zeros((2, 4, 4, 3), np.float32)
    cover[0, 1:3, 1:3, 0] = 1.0  # image 0, label 0: boxed, supervised
    cover[1, 0:2, 0:2, 2] = 1.0  # image 1, label 2: a box but weight 0 -> ignored
    weight = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # weight>0 without a box -> ignored
    with tf.GradientTape() as tape:
        value = loss(_cam_pack(cover, weight), cam)
    grad = tape.gradient(value, cam).numpy()
    assert float(value[1]) == 0.0 and float(value[0]) > 0.0
    assert np.all(grad[1] == 0.0) and np.all(grad[0, ..., 1:] == 0.0)
    g = grad[0, ..., 0]
    assert np.all(g[1:3, 1:3] < 0) and np.all(np.delete(g.ravel(), [5, 6, 9, 10]) > 0)


def test_cam_box_loss_prefers_a_map_peaking_in_the_box() -> None:
    from cxr_viewer.training.losses import cam_box_loss

    loss = cam_box_loss()
    cover = np.zeros((1, 4, 4, 1), np.float32)
    cover[0, 3, 0, 0] = 1.0
    y = _cam_pack(cover, np.ones((1, 1)))
    inside = np.zeros((1, 4, 4, 1), np.float32)
    inside[0, 3, 0, 0] = 4.0
    outside = np.zeros((1, 4, 4, 1), np.float32)
    outside[0, 0, 3, 0] = 4.0
    flat_negative = np.full((1, 4, 4, 1), -4.0, np.float32)  # ReLU'd: an all-zero heat map
    assert float(loss(y, inside)[0]) < float(loss(y, outside)[0])
    assert float(loss(y, inside)[0]) < float(loss(y, flat_negative)[0])
    # the map's level does not change the inside mass, but the evidence term prefers positive
    assert float(cam_box_loss(evidence=0.0)(y, flat_negative)[0]) == pytest.approx(
        float(cam_box_loss(evidence=0.0)(y, np.zeros_like(flat_negative))[0]), rel=1e-5)
