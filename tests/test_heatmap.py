"""Heat-map colouring and blending (cxr_viewer.imaging.heatmap)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cxr_viewer.imaging.heatmap import (
    CAM_METHODS,
    COLORMAPS,
    OverlaySettings,
    blend,
    cam_to_uint8,
    colorize,
)


def test_colorize_jet_runs_blue_to_red_and_threshold_sets_alpha():
    cam = np.array([[0.0, 0.1, 0.5, 1.0]], dtype=np.float32)
    rgba = colorize(cam, "jet", threshold=0.3)
    assert rgba.shape == (1, 4, 4) and rgba.dtype == np.uint8
    low, high = rgba[0, 0], rgba[0, 3]
    assert low[2] > 100 and low[0] == 0  # jet 0: blue, in RGB order
    assert high[0] > 100 and high[2] == 0  # jet 1: red
    assert list(rgba[0, :, 3]) == [0, 0, 255, 255]


@pytest.mark.parametrize("name", list(COLORMAPS))
def test_every_offered_colormap_works_and_differs_from_grey(name):
    cam = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    rgb = colorize(cam, name)[..., :3].astype(int)
    assert not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))


def test_blend_opacity_and_threshold():
    display = np.full((4, 4), 100, dtype=np.uint8)
    cam = np.zeros((4, 4), dtype=np.float32)
    cam[0, 0] = 1.0
    assert np.array_equal(blend(display, cam, opacity=0.0), np.dstack([display] * 3))
    out = blend(display, cam, colormap="jet", opacity=1.0, threshold=0.5)
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    assert np.array_equal(out[0, 0], colorize(cam, "jet")[0, 0, :3])  # opaque where shown
    assert np.all(out[1:, :] == 100)  # below the threshold: the radiograph itself
    half = blend(display, cam, opacity=0.5, threshold=0.5)[0, 0].astype(int)
    expected = (100 + colorize(cam, "jet")[0, 0, :3].astype(int)) / 2
    assert np.all(np.abs(half - expected) <= 1)


def test_blend_accepts_rgb_display():
    display = np.zeros((3, 5, 3), dtype=np.uint8)
    assert blend(display, np.ones((3, 5), np.float32), opacity=0.5).shape == (3, 5, 3)


def test_blend_refuses_mismatches():
    display = np.zeros((4, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="heat map is"):
        blend(display, np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        blend(display.astype(np.uint16), np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="unknown colormap"):
        blend(display, np.zeros((4, 4), np.float32), colormap="rainbowish")
    with pytest.raises(ValueError, match="opacity"):
        blend(display, np.zeros((4, 4), np.float32), opacity=1.5)


def test_cam_to_uint8_scales_to_the_maximum():
    cam = np.array([[0.0, 0.2], [0.4, 0.8]], dtype=np.float32)
    assert cam_to_uint8(cam).tolist() == [[0, 64], [128, 255]]
    assert cam_to_uint8(np.zeros((2, 2))).max() == 0
    with pytest.raises(ValueError, match="NaN"):
        cam_to_uint8(np.array([[np.nan, 1.0]]))


def test_overlay_settings_is_frozen_and_names_known_choices():
    s = OverlaySettings()
    assert s.colormap in COLORMAPS and s.method in CAM_METHODS
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.opacity = 0.9  # type: ignore[misc]
    assert dataclasses.replace(s, visible=True).visible


def test_overlay_gain_is_the_probability_relative_to_the_operating_threshold():
    from cxr_viewer.imaging.heatmap import overlay_plan

    on = OverlaySettings()
    # a flagged rare finding (calibrated 16 %, threshold 15 %): full strength, no note
    plan = overlay_plan(0.16, 0.15, on)
    assert plan.draw and plan.gain == 1.0 and plan.reason == ""
    # below its threshold: not drawn by default; on request faded by p / threshold
    assert not overlay_plan(0.04, 0.32, on).draw
    asked = overlay_plan(0.04, 0.32, dataclasses.replace(on, below_threshold=True))
    assert asked.draw and asked.gain == pytest.approx(0.125)
    assert asked.reason == "below threshold: shown on request"
    # no threshold known: the probability itself; scaling off: 1
    assert overlay_plan(0.3, None, on).gain == pytest.approx(0.3)
    assert overlay_plan(0.04, 0.32, dataclasses.replace(on, scale_by_probability=False,
                                            below_threshold=True)).gain == 1.0
    # no probability yet: drawn unscaled
    assert overlay_plan(None, 0.5, on) == overlay_plan(None, None, on)
