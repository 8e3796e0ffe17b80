"""tf.data pipeline: unaugmented batches are the cache / 255; augmentation moves the box masks
with the image."""

from __future__ import annotations

import numpy as np

from cxr_viewer.training.pipeline import AugmentConfig, make_dataset

NO_AUG = AugmentConfig(rotation_deg=0, scale=0, shift=0, brightness=0, contrast=0, gamma=0)


def test_unaugmented_batches_equal_the_cache() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 32, 32), dtype=np.uint8)
    targets = rng.integers(0, 2, (5, 3)).astype(np.float32)
    batches = list(make_dataset(images, targets, 2, training=False))
    assert [b[0].shape[0] for b in batches] == [2, 2, 1]
    x = np.concatenate([b[0].numpy() for b in batches])
    np.testing.assert_allclose(x[..., 0], images / 255.0, atol=1e-6)
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), targets)
    # identity augmentation keeps the pixels (shuffled order only)
    (xa, ya), = list(make_dataset(images, targets, 5, training=True, augment=NO_AUG))
    order = [int(np.argmin(np.abs(images / 255.0 - a[..., 0]).sum(axis=(1, 2)))) for a in xa.numpy()]
    assert sorted(order) == list(range(5))
    np.testing.assert_allclose(xa.numpy()[..., 0], images[order] / 255.0, atol=1e-5)


def test_augmentation_stays_in_range_and_varies() -> None:
    images = np.full((4, 32, 32), 128, np.uint8)
    ds = make_dataset(images, np.zeros((4, 1), np.float32), 4, True, seed=1, augment=AugmentConfig())
    x1 = next(iter(ds))[0].numpy()
    assert x1.min() >= 0.0 and x1.max() <= 1.0
    assert np.std([a.mean() for a in x1]) > 0  # each image gets its own intensity change


def test_box_masks_follow_the_image() -> None:
    size, grid = 64, 16
    images = np.zeros((8, size, size), np.uint8)
    images[:, 16:32, 36:52] = 255  # a bright square ...
    masks = np.zeros((8, grid, grid, 2), np.uint8)
    masks[:, 4:8, 9:13, 0] = 1  # ... and its box on the 16-px mask grid
    weights = np.tile(np.array([1.0, 0.0], np.float32), (8, 1))
    aug = AugmentConfig(rotation_deg=20, scale=0.2, shift=0.15, brightness=0, contrast=0,
                        gamma=0)
    ds = make_dataset(images, np.ones((8, 2), np.float32), 8, True, seed=2, augment=aug,
                      box_masks=masks, box_weights=weights, cam_grid=4)
    x, y = next(iter(ds))
    box_map = y["box_map"].numpy()
    assert box_map.shape == (8, 4, 4, 4)
    np.testing.assert_array_equal(box_map[..., 2], 1.0)  # weights broadcast
    np.testing.assert_array_equal(box_map[..., 3], 0.0)
    for img, bm in zip(x.numpy()[..., 0], box_map[..., 0], strict=True):
        # pool the warped image to the 4x4 grid: the same cells must light up
        pooled = img.reshape(4, 16, 4, 16).mean(axis=(1, 3))
        np.testing.assert_allclose(pooled, bm, atol=0.08)
    assert not np.allclose(box_map[0, ..., 0], box_map[1, ..., 0])  # it did move
