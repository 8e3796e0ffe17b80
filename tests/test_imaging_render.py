"""DisplayRenderer (LUT fast path), presets and the pixel readout."""

from __future__ import annotations

import numpy as np
import pytest

from cxr_viewer.imaging.presets import (
    AutoWindow,
    FullRange,
    HeaderVOILut,
    HeaderWindow,
    ManualWindow,
    default_preset,
    presets_for,
)
from cxr_viewer.imaging.render import DisplayRenderer, pixel_value_at, render_display
from cxr_viewer.imaging.window import VOI
from cxr_viewer.io.types import ImageData, VOILut, VOIWindow


def _image(frames, **kw) -> ImageData:
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[np.newaxis]
    return ImageData(path="mem", frames=frames, **kw)


@pytest.fixture
def ramp() -> ImageData:
    rng = np.random.default_rng(1)
    px = rng.integers(-500, 3000, (3, 60, 80)).astype(np.int16)
    lut = VOILut(first_mapped=-100, bits=12, data=np.linspace(0, 4095, 2000).astype(np.uint16))
    return _image(
        px, photometric="MONOCHROME1", windows=(VOIWindow(1000, 2000, "A"),), voi_luts=(lut,)
    )


@pytest.mark.parametrize(
    "voi",
    [
        VOI.window(1000, 2000),
        VOI.window(40, 3, "SIGMOID"),
        VOI.window(-10, 700, "LINEAR_EXACT"),
        VOI.lut(0),
    ],
)
@pytest.mark.parametrize("invert", [False, True])
def test_lut_path_equals_reference_path(ramp, voi, invert):
    r = DisplayRenderer(ramp)
    assert r.uses_lut
    for frame in range(3):
        np.testing.assert_array_equal(
            r.render(voi, invert=invert, frame=frame),
            render_display(ramp, voi, invert=invert, frame=frame),
        )


def test_region_and_step(ramp):
    r = DisplayRenderer(ramp)
    voi = VOI.window(1000, 2000)
    full = render_display(ramp, voi, frame=1)
    np.testing.assert_array_equal(
        r.render(voi, frame=1, region=(10, 50, 5, 70), step=3), full[10:50:3, 5:70:3]
    )
    np.testing.assert_array_equal(r.render(voi, frame=1, region=(-5, 999, -5, 999)), full)
    assert r.render(voi, region=(30, 30, 0, 10)).shape == (0, 0)


def test_float_rescale_renders_through_stored_lut():
    stored = np.arange(0, 1000, dtype=np.uint16).reshape(10, 100)
    values = (stored * 0.3 + 1.5).astype(np.float32)
    image = _image(values, stored=stored[np.newaxis], rescale_slope=0.3, rescale_intercept=1.5)
    r = DisplayRenderer(image)
    assert r.uses_lut
    voi = VOI.window(150, 200)
    np.testing.assert_array_equal(r.render(voi), render_display(image, voi))


def test_float_data_without_stored_falls_back():
    image = _image(np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10))
    r = DisplayRenderer(image)
    assert not r.uses_lut
    voi = FullRange().resolve(image)
    np.testing.assert_array_equal(r.render(voi), render_display(image, voi))


def test_lut_cache_is_reused(ramp):
    r = DisplayRenderer(ramp)
    voi = VOI.window(1000, 2000)
    assert r.lut_for(voi) is r.lut_for(voi)
    assert r.lut_for(voi) is not r.lut_for(voi, invert=True)


def test_pixel_value_at(ramp):
    stored = np.array([[[10, 20]]], np.uint16)
    image = _image(np.array([[[-1004, -994]]], np.int16), stored=stored, units="HU")
    assert pixel_value_at(image, 0, 1) == (20.0, -994.0, "HU")
    assert pixel_value_at(ramp, 0, 0)[0] == pixel_value_at(ramp, 0, 0)[1]
    with pytest.raises(IndexError):
        pixel_value_at(image, 1, 0)


def test_full_range_is_dcmtk_min_max():
    image = _image(np.array([[-100, 0, 411]], np.int16))
    voi = FullRange().resolve(image)
    assert (voi.center, voi.width, voi.function) == ((-100 + 411 + 1) / 2, 512.0, "LINEAR")
    assert render_display(image, voi).tolist() == [[0, 49, 255]]


def test_auto_window_uses_percentiles():
    px = np.concatenate([np.zeros(10), np.arange(1000), np.full(10, 50000)]).reshape(1, -1)
    image = _image(px.astype(np.int32))
    voi = AutoWindow(1.0, 99.0).resolve(image)
    lo, hi = np.percentile(px, [1.0, 99.0])
    assert voi.center == pytest.approx((lo + hi + 1) / 2) and voi.width == pytest.approx(
        hi - lo + 1
    )
    flat = _image(np.full((4, 4), 7, np.uint8))
    assert AutoWindow().resolve(flat) == FullRange().resolve(flat)


def test_presets_order_labels_and_default(ramp):
    presets = presets_for(ramp)
    assert presets == [HeaderWindow(0), HeaderVOILut(0), AutoWindow(), FullRange()]
    assert presets[0].label_for(ramp) == "A" and presets[0].resolve(ramp).center == 1000
    assert presets[1].resolve(ramp) == VOI.lut(0, label="VOI LUT 1")
    assert default_preset(ramp) == HeaderWindow(0)
    assert default_preset(_image(np.zeros((2, 2), np.uint8))) == FullRange()
    manual = ManualWindow(40, 400, "SIGMOID")
    assert manual.resolve(ramp) == VOI.window(40, 400, "SIGMOID", label=manual.label)
    with pytest.raises(IndexError):
        HeaderWindow(3).resolve(ramp)


def test_8bit_png_opens_as_stored_not_stretched(tmp_path):
    """An 8-bit raster is a display image already: the default render is the identity, so the
    model sees at inference the same grey levels it was trained on (NIH PNGs as stored)."""
    from PIL import Image

    from cxr_viewer.imaging.presets import AsStored, default_preset, presets_for
    from cxr_viewer.imaging.render import render_display
    from cxr_viewer.io.loader import load_image

    rng = np.random.default_rng(3)
    arr = rng.integers(20, 178, size=(40, 50), dtype=np.uint8)  # does not span 0..255
    path = tmp_path / "low_contrast.png"
    Image.fromarray(arr).save(path)
    image = load_image(path)
    preset = default_preset(image)
    assert isinstance(preset, AsStored)
    assert AsStored() in presets_for(image)
    out = render_display(image, preset.resolve(image))
    np.testing.assert_array_equal(out, arr)
