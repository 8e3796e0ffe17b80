"""Resize policies and their inverse (cxr_viewer.imaging.geometry)."""

from __future__ import annotations

import numpy as np
import pytest

from cxr_viewer.imaging.geometry import fit_transform


def _peak(a: np.ndarray) -> tuple[int, int]:
    r, c = np.unravel_index(int(np.argmax(a)), a.shape)
    return int(r), int(c)


def test_letterbox_keeps_aspect_and_pads_centred():
    t = fit_transform((300, 200), (64, 64), "letterbox")
    assert t.target_box == (0, 64, 10, 53)  # 200 * 64/300 = 42.67 -> 43 columns, centred
    img = np.full((300, 200), 200, dtype=np.uint8)
    out = t.apply(img)
    assert out.shape == (64, 64) and out.dtype == np.uint8
    assert np.all(out[:, :10] == 0) and np.all(out[:, 53:] == 0)
    assert np.all(out[:, 10:53] == 200)


def test_stretch_and_crop_fill_the_target():
    img = np.arange(120 * 80, dtype=np.float32).reshape(120, 80)
    stretch = fit_transform(img.shape, (32, 32), "stretch")
    assert stretch.apply(img).shape == (32, 32)
    assert stretch.scale == pytest.approx((32 / 120, 32 / 80))
    crop = fit_transform(img.shape, (32, 32), "crop")
    assert crop.source_box == (20, 100, 0, 80)  # the centred 80x80 square
    assert crop.apply(img).shape == (32, 32)


def test_apply_keeps_a_channel_axis():
    img = np.zeros((50, 70, 1), dtype=np.float32)
    out = fit_transform((50, 70), (32, 32), "letterbox").apply(img)
    assert out.shape == (32, 32, 1)


@pytest.mark.parametrize("policy", ["letterbox", "stretch", "crop"])
@pytest.mark.parametrize("shape", [(300, 200), (180, 260), (97, 97)])
def test_points_round_trip(policy, shape):
    t = fit_transform(shape, (64, 64), policy)
    for r, c in [(0.0, 0.0), (shape[0] / 2, shape[1] / 3), (shape[0] - 1.0, shape[1] - 1.0)]:
        back = t.to_source(*t.to_target(r, c))
        assert back == pytest.approx((r, c))


@pytest.mark.parametrize("policy", ["letterbox", "stretch", "crop"])
@pytest.mark.parametrize("shape", [(300, 200), (180, 260)])
def test_invert_map_puts_a_peak_back_where_it_was(policy, shape):
    """A blob in the original -> model grid -> low-res map -> back: the peak lands on the blob."""
    t = fit_transform(shape, (64, 64), policy)
    centre = (int(shape[0] * 0.4), int(shape[1] * 0.6))
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    blob = np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * 12.0**2))
    on_grid = t.apply(blob.astype(np.float32))
    low = on_grid.reshape(16, 4, 16, 4).mean(axis=(1, 3))  # a 16x16 "conv layer" map
    back = t.invert_map(low, shape)
    assert back.shape == shape and back.dtype == np.float32
    r, c = _peak(back)
    # the coarse map peaks at a cell centre: within half a cell (4 grid pixels) of the blob
    tol_r, tol_c = 0.5 * 4 / t.scale[0] + 1, 0.5 * 4 / t.scale[1] + 1
    assert abs(r - centre[0]) <= tol_r and abs(c - centre[1]) <= tol_c


def test_invert_map_of_full_resolution_map_is_close_to_the_original():
    shape = (150, 100)
    t = fit_transform(shape, (96, 96), "letterbox")
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    smooth = (np.sin(rows / 20.0) * np.cos(cols / 15.0)).astype(np.float32)
    back = t.invert_map(t.apply(smooth))
    assert np.abs(back - smooth).max() < 0.05


def test_crop_zeroes_what_the_model_never_saw():
    t = fit_transform((100, 200), (32, 32), "crop")
    back = t.invert_map(np.ones((8, 8), dtype=np.float32))
    r0, r1, c0, c1 = t.source_box
    assert (r0, r1, c0, c1) == (0, 100, 50, 150)
    assert np.all(back[:, :c0] == 0) and np.all(back[:, c1:] == 0)
    assert np.all(back[:, c0:c1] == 1)


def test_letterbox_padding_is_not_mapped_back():
    """Attention painted only on the letterbox padding maps to nothing in the image."""
    t = fit_transform((200, 100), (64, 64), "letterbox")
    cam = np.zeros((64, 64), dtype=np.float32)
    _, _, c0, c1 = t.target_box
    cam[:, : c0 - 1] = 1.0
    cam[:, c1 + 1 :] = 1.0
    assert t.invert_map(cam).max() == 0.0


def test_refusals():
    with pytest.raises(ValueError, match="unknown resize policy"):
        fit_transform((10, 10), (4, 4), "squash")
    t = fit_transform((10, 10), (4, 4), "stretch")
    with pytest.raises(ValueError, match="fitted"):
        t.apply(np.zeros((11, 10)))
    with pytest.raises(ValueError, match="differs"):
        t.invert_map(np.zeros((4, 4)), (12, 10))
