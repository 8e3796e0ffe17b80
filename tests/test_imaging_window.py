"""VOI transforms with pinned values (worked by hand from PS3.3 C.11.2.1.2 and dcmtk's formula)."""

from __future__ import annotations

import numpy as np
import pytest

from cxr_viewer.imaging.window import (
    VOI,
    apply_voi,
    apply_voi_lut,
    window_linear,
    window_linear_exact,
    window_sigmoid,
)
from cxr_viewer.io.types import VOILut


def test_linear_c128_w256_is_identity_on_8_bit():
    # W-1 = 255, borders 0 and 255, gradient 1: f(x) = x exactly.
    x = np.arange(256)
    np.testing.assert_array_equal(apply_voi(x, VOI.window(128, 256)), x)
    np.testing.assert_array_equal(apply_voi(x, VOI.window(128, 256), inverted=True), 255 - x)
    np.testing.assert_array_equal(apply_voi(np.array([-5, 300]), VOI.window(128, 256)), [0, 255])


def test_linear_pinned_values_and_truncation():
    # C=100 W=21: borders 89.5 / 109.5, f = ((x - 99.5) / 20 + 0.5) * 255
    x = np.array([89, 90, 100, 109, 110])
    assert window_linear(x, 100, 21).tolist() == [0.0, 6.375, 133.875, 248.625, 255.0]
    assert apply_voi(x, VOI.window(100, 21)).tolist() == [0, 6, 133, 248, 255]
    # MONOCHROME1 truncates after inversion: floor(255 - f), not 255 - floor(f).
    assert apply_voi(x, VOI.window(100, 21), inverted=True).tolist() == [255, 248, 121, 6, 0]


def test_linear_width_one_is_a_threshold():
    out = apply_voi(np.array([99, 100, 101]), VOI.window(100, 1))
    assert out.tolist() == [0, 255, 255]


def test_linear_exact_pinned_values():
    # C=100 W=20: <= 90 -> 0, > 110 -> 255, else ((x - 100) / 20 + 0.5) * 255
    x = np.array([90, 91, 95, 100, 110, 111])
    np.testing.assert_allclose(
        window_linear_exact(x, 100, 20), [0.0, 12.75, 63.75, 127.5, 255.0, 255.0], atol=1e-9
    )
    assert apply_voi(x, VOI.window(100, 20, "LINEAR_EXACT")).tolist() == [0, 12, 63, 127, 255, 255]


def test_sigmoid_pinned_values():
    # 255 / (1 + exp(-4 (x - 100) / 50)): x=75 -> 30.397, 100 -> 127.5, 125 -> 224.603
    x = np.array([75, 100, 125])
    np.testing.assert_allclose(window_sigmoid(x, 100, 50), [30.3968, 127.5, 224.6032], atol=1e-3)
    assert apply_voi(x, VOI.window(100, 50, "SIGMOID")).tolist() == [30, 127, 224]
    assert apply_voi(x, VOI.window(100, 50, "SIGMOID"), inverted=True).tolist() == [224, 127, 30]


def test_voi_lut_lookup_clamps_and_scales_by_descriptor_bits():
    lut = VOILut(first_mapped=10, bits=8, data=np.array([0, 64, 128, 255], np.uint16))
    x = np.array([5, 10, 11, 12, 13, 100])
    assert apply_voi(x, VOI.lut(0), (lut,)).tolist() == [0, 0, 64, 128, 255, 255]
    # dcmtk: low + e * (high - low + 1) / 2**bits; inverted: 255 - e * 254 / 256
    assert apply_voi(x, VOI.lut(0), (lut,), inverted=True).tolist() == [255, 255, 191, 128, 1, 1]
    lut12 = VOILut(first_mapped=0, bits=12, data=np.array([0, 4095, 2048], np.uint16))
    np.testing.assert_allclose(apply_voi_lut(np.array([0, 1, 2]), lut12), [0.0, 255.9375, 128.0])
    assert apply_voi(np.array([0, 1, 2]), VOI.lut(0), (lut12,)).tolist() == [0, 255, 128]


def test_voi_lut_missing_index_raises():
    with pytest.raises(IndexError):
        apply_voi(np.zeros(2), VOI.lut(1), ())


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(center=1, width=0),
        dict(center=1, width=-3),
        dict(center=float("nan"), width=3),
        dict(center=1, width=3, function="GAMMA"),
    ],
)
def test_invalid_windows_are_rejected(kwargs):
    with pytest.raises(ValueError):
        VOI.window(**kwargs)


def test_voi_is_hashable_and_frozen():
    a, b = VOI.window(40, 400), VOI.window(40.0, 400.0)
    assert a == b and hash(a) == hash(b) and not a.is_lut and VOI.lut(0).is_lut
